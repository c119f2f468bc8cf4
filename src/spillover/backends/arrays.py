"""The embedded backend over column arrays: graph facts from the batch pass's index.

A data folder read as :class:`~spillover.facts.columns.Columns` (Arrow checks, no Python
object per row) is indexed once by :class:`~spillover.engines.batch.Index`, the same
integer-coded structure the batch audit runs on: loans by borrower, owner periods
and loan uses by phone. :class:`ArrayBackend` answers the
:class:`~spillover.backends.GraphBackend` questions from it and builds Python facts
(:class:`~spillover.facts.model.Loan`, ...) only for the few nodes an explanation
touches, so that ``explain`` or ``check`` on a folder costs no more than an audit
of it. :class:`~spillover.backends.memory.MemoryBackend` (a Dataset, and a
networkx graph on demand) remains for graph views.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engines.batch import ROLE_NAMES, Index
from ..facts.columns import FOREVER, NEVER, Columns, Details, columns_from_dataset
from ..facts.graph import neighbourhood_by_expand
from ..facts.model import (
    APPLICANT,
    Dataset,
    Entry,
    FrontierFacts,
    Loan,
    LoanStatus,
    Match,
    PhonePeriod,
    PhoneUse,
    PlatformKind,
    Record,
    Sharing,
    SubjectKind,
    Surroundings,
    record_name,
    split_ref,
)
from ..facts.phones import display_phone
from ..rules import loan_in_time

__all__ = ["ArrayBackend"]


def _list(values: np.ndarray | pa.Array | pa.ChunkedArray) -> list[Any]:
    return values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else list(values)


def _text(values: np.ndarray | pa.Array | pa.ChunkedArray, row: int) -> str:
    value = values[row]
    return str(value.as_py() if isinstance(value, pa.Scalar) else value)


def _day(ordinal: int, missing: np.int64) -> date | None:
    return None if ordinal == missing else date.fromordinal(int(ordinal))


#: below this many ids, look them up by binary search instead of hashing the universe
_FEW = 64


def _positions(ids: list[str], universe: pa.Array) -> list[int]:
    """The index of each id in the *sorted* ``universe``, -1 where absent.

    A few ids (one explanation's frontier) are found by binary search: hashing the
    whole universe for every call would cost milliseconds per call at 100k people.
    """
    if not ids:
        return []
    if len(ids) < _FEW:
        out = []
        for ident in ids:
            i = bisect.bisect_left(universe, ident, key=_as_py)
            out.append(i if i < len(universe) and universe[i].as_py() == ident else -1)
        return out
    found = pc.index_in(pa.array(ids, pa.string()), value_set=universe)
    return [-1 if i is None else i for i in found.to_pylist()]


def _as_py(value: Any) -> Any:
    return value.as_py()


class ArrayBackend:
    """Graph facts from column arrays (a data folder, or a :class:`Dataset`)."""

    name = "memory"
    round_trips = False

    def __init__(self, columns: Columns) -> None:
        if columns.details is None:
            raise ValueError("ArrayBackend needs columns with details (names, amounts, ...)")
        self.cols = columns
        self.details: Details = columns.details
        self.index = index = Index(columns)
        npers = len(index.persons)
        # own loans by borrower, owner periods by owner (CSR over person codes)
        self._by_borrower = np.argsort(index.loan_borrower, kind="stable")
        self._borrower_ptr = np.searchsorted(
            index.loan_borrower[self._by_borrower], np.arange(npers + 1)
        )
        self._by_owner = np.argsort(index.p_owner, kind="stable")
        self._owner_ptr = np.searchsorted(index.p_owner[self._by_owner], np.arange(npers + 1))
        self._loans: dict[int, Loan] = {}

    @classmethod
    def from_dataset(cls, data: Dataset) -> ArrayBackend:
        """The backend over a :class:`Dataset`'s columns (:func:`columns_from_dataset`)."""
        return cls(columns_from_dataset(data))

    # -- lookups -------------------------------------------------------------------------

    @cached_property
    def _entry_rows(self) -> dict[str, int]:
        return {e: i for i, e in enumerate(_list(self.cols.entry_ids))}

    @cached_property
    def _person_rows(self) -> np.ndarray:
        """The column row of each person code (codes sort like the ids)."""
        rows: np.ndarray = pc.sort_indices(
            pa.array(_list(self.cols.person_ids), pa.string())
        ).to_numpy()
        return rows

    @cached_property
    def _platform_rows(self) -> np.ndarray:
        """The column row of each platform code."""
        rows: np.ndarray = pc.sort_indices(
            pa.array(_list(self.cols.platform_ids), pa.string())
        ).to_numpy()
        return rows

    def _loan(self, code: int) -> Loan:
        loan = self._loans.get(code)
        if loan is None:
            ix, cols, d = self.index, self.cols, self.details
            row = int(ix.loan_order[code])
            phone = _text(cols.loan_applicant_phone, row)
            verified = int(d.loan_phone_verified[row])
            amount = float(d.loan_amount[row])
            loan = Loan(
                loan_id=ix.loans[code].as_py(),
                platform_id=ix.platforms[int(ix.loan_platform[code])].as_py(),
                borrower_id=ix.persons[int(ix.loan_borrower[code])].as_py(),
                applied_at=date.fromordinal(int(ix.loan_applied[code])),
                status=LoanStatus(_text(cols.loan_status, row)),
                applicant_phone=phone or None,
                phone_verified=None if verified < 0 else bool(verified),
                amount=None if np.isnan(amount) else amount,
                status_at=_day(d.loan_status_at[row], NEVER),
            )
            record = _text(cols.loan_record, row) if cols.loan_record is not None else ""
            if record:
                loan = replace(
                    loan,
                    borrower_record=record,
                    matched_by=cols.matches[record].matched_by.value,
                )
            self._loans[code] = loan
        return loan

    def _period(self, i: int) -> PhonePeriod:
        ix = self.index
        owner = int(ix.p_owner[i])
        return PhonePeriod(
            ix.phones.text(int(ix.p_phone[i])),
            ix.persons[owner].as_py() if owner >= 0 else None,
            bool(ix.p_verified[i]),
            _day(ix.p_since[i], NEVER),
            _day(ix.p_until[i], FOREVER),
        )

    def _entry(self, row: int) -> Entry:
        cols = self.cols
        copied = _text(cols.entry_copied_from, row)
        return Entry(
            _text(cols.entry_ids, row),
            _text(cols.entry_platform, row),
            SubjectKind(_text(cols.entry_kind, row)),
            _text(cols.entry_subject, row),
            date.fromordinal(int(cols.entry_listed[row])),
            _text(self.details.entry_stated_reason, row) or None,
            copied or None,
        )

    # -- the GraphBackend questions --------------------------------------------------------

    def entries(self, ids: Collection[str]) -> dict[str, Entry]:
        rows = self._entry_rows
        return {i: self._entry(rows[i]) for i in ids if i in rows}

    def iter_entries(self, batch_size: int = 1000) -> Iterator[list[Entry]]:
        rows = self._entry_rows
        ordered = sorted(rows)
        for start in range(0, len(ordered), batch_size):
            yield [self._entry(rows[i]) for i in ordered[start : start + batch_size]]

    @cached_property
    def _sharing(self) -> tuple[Sharing, ...]:
        cols = self.cols
        return tuple(
            Sharing(a, b, _day(s, NEVER))
            for a, b, s in zip(
                _list(cols.share_from), _list(cols.share_to), cols.share_since, strict=True
            )
        )

    def sharing(self) -> tuple[Sharing, ...]:
        return self._sharing

    def platform_kinds(self, ids: Collection[str]) -> dict[str, PlatformKind]:
        wanted = list(ids)
        kinds = self.details.platform_kind
        out: dict[str, PlatformKind] = {}
        for ident, code in zip(wanted, _positions(wanted, self.index.platforms), strict=True):
            if code >= 0:
                given = "" if kinds is None else kinds[int(self._platform_rows[code])]
                given = given.as_py() if isinstance(given, pa.Scalar) else given
                out[ident] = PlatformKind(given) if given else PlatformKind.OTHER
        return out

    def names(self, refs: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for kind, universe, rows_of, names in (
            ("person", self.index.persons, self._person_rows, self.details.person_name),
            ("platform", self.index.platforms, self._platform_rows, self.details.platform_name),
        ):
            wanted = [n for n in refs if split_ref(n)[0] == kind]
            codes = _positions([split_ref(n)[1] for n in wanted], universe)
            found.update(
                (n, _text(names, int(rows_of[c])))
                for n, c in zip(wanted, codes, strict=True)
                if c >= 0
            )
        out: dict[str, str] = {}  # in the order asked, like the other backends
        for node in refs:
            kind, ident = split_ref(node)
            if kind == "phone":
                out[node] = display_phone(ident)
            elif node in found:
                out[node] = found[node]
            elif kind == "record" and ident in self.cols.records:
                out[node] = record_name(self.cols.records[ident])
        return out

    def matches(self, record_ids: Collection[str]) -> dict[str, Match]:
        found = self.cols.matches
        return {r: found[r] for r in record_ids if r in found}

    def record_platforms(self, record_ids: Collection[str]) -> dict[str, str]:
        records = self.cols.records
        return {r: records[r].platform_id for r in record_ids if r in records}

    @cached_property
    def _matched(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record_id, match in self.cols.matches.items():
            out.setdefault(match.person_id, []).append(record_id)
        return out

    def matched_records(self, persons: Collection[str]) -> tuple[tuple[Record, Match], ...]:
        matched, cols = self._matched, self.cols
        found = sorted({r for p in persons for r in matched.get(p, ())})
        return tuple((cols.records[r], cols.matches[r]) for r in found)

    def exists(self, node: str) -> bool:
        kind, ident = split_ref(node)
        if kind == "phone":
            return bool(self.index.phones.codes(pa.array([ident], pa.string()))[0] >= 0)
        universe = {
            "person": self.index.persons,
            "platform": self.index.platforms,
            "loan": self.index.loans,
        }.get(kind)
        if universe is not None:
            return _positions([ident], universe)[0] >= 0
        if kind == "record":
            return ident in self.cols.records
        return kind == "entry" and ident in self._entry_rows

    def expand(
        self, persons: Collection[str], phones: Collection[str], until: date
    ) -> FrontierFacts:
        ix = self.index
        day = until.toordinal() if until != date.max else FOREVER
        own: list[Loan] = []
        asked = pa.array(list(phones), pa.string())
        numbers = {int(c) for c in ix.phones.codes(asked) if c >= 0}
        for p in _positions(list(persons), ix.persons):
            if p < 0:
                continue
            for code in self._by_borrower[self._borrower_ptr[p] : self._borrower_ptr[p + 1]]:
                if loan_in_time(ix.loan_applied[code], day):
                    own.append(self._loan(int(code)))
            owned = self._by_owner[self._owner_ptr[p] : self._owner_ptr[p + 1]]
            numbers.update(int(c) for c in ix.p_phone[owned])
        periods: list[PhonePeriod] = []
        uses: list[PhoneUse] = []
        for c in sorted(numbers):  # codes sort like the numbers
            periods.extend(self._period(i) for i in range(ix.p_ptr[c], ix.p_ptr[c + 1]))
            number = ix.phones.text(c)
            # (by loan id; one loan's roles for the number as the data gives them: the
            # applicant phone first, then the links in loan_links' order)
            for u in range(ix.u_ptr[c], ix.u_ptr[c + 1]):
                code = int(ix.u_loan[u])
                if loan_in_time(ix.loan_applied[code], day):
                    uses.append(PhoneUse(number, ROLE_NAMES[ix.u_role[u]], self._loan(code)))
        return FrontierFacts(tuple(periods), tuple(own), tuple(uses))

    def neighbourhood(
        self, persons: Collection[str], phones: Collection[str], platforms: Collection[str] = ()
    ) -> FrontierFacts:
        return neighbourhood_by_expand(self, persons, phones, platforms)

    @cached_property
    def _links_by_loan(self) -> dict[str, list[tuple[str, str]]]:
        cols = self.cols
        out: dict[str, list[tuple[str, str]]] = {}
        for loan, phone, role in zip(
            _list(cols.link_loan), _list(cols.link_phone), _list(cols.link_role), strict=True
        ):
            out.setdefault(loan, []).append((phone, role))
        return out

    @cached_property
    def _listings(self) -> dict[str, list[int]]:
        cols = self.cols
        rows = self._entry_rows
        out: dict[str, list[int]] = {}
        kinds, subjects, ids = (
            _list(cols.entry_kind),
            _list(cols.entry_subject),
            _list(cols.entry_ids),
        )
        for i in sorted(range(len(ids)), key=ids.__getitem__):
            out.setdefault(f"{kinds[i]}:{subjects[i]}", []).append(rows[ids[i]])
        return out

    def surroundings(self, loans: Collection[str], subjects: Collection[str]) -> Surroundings:
        wanted = list(dict.fromkeys(loans))
        uses: list[PhoneUse] = []
        for loan_id, code in zip(wanted, _positions(wanted, self.index.loans), strict=True):
            if code < 0:
                continue
            loan = self._loan(code)
            if loan.applicant_phone is not None:
                uses.append(PhoneUse(loan.applicant_phone, APPLICANT, loan))
            uses.extend(PhoneUse(p, r, loan) for p, r in self._links_by_loan.get(loan_id, ()))
        listings = self._listings
        entries = tuple(
            self._entry(row) for s in dict.fromkeys(subjects) for row in listings.get(s, ())
        )
        return Surroundings(tuple(uses), entries)

    def columns(self) -> Columns:
        return self.cols

    def close(self) -> None:
        return None
