"""The graph as flat columns: what loaders and graph stores hand to the batch pass.

This module sits below both sides: :mod:`spillover.data.fast` (a data folder read
with Arrow) and every :class:`~spillover.backends.GraphBackend` (``columns()``)
produce :class:`Columns`; :mod:`spillover.engines.batch` consumes them. It depends on
nothing but numpy, the fact classes and the phone keys (:mod:`spillover.facts.phonecodes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .model import Dataset, Entry, Loan, LoanLink, Match, PhonePeriod, Record, Sharing
from .phonecodes import PhoneCodes

__all__ = [
    "EPOCH_ORDINAL",
    "FOREVER",
    "NEVER",
    "Codes",
    "Columns",
    "Details",
    "columns_digest",
    "columns_from_dataset",
    "columns_from_facts",
]

NEVER = np.int64(-(2**40))  # a day before every day (missing `since`)
FOREVER = np.int64(2**40)  # a day after every day (missing `until`)
#: the ordinal of 1970-01-01 (day 0 of Arrow's date32 and of numpy's datetime64[D])
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day(d: date | None, missing: np.int64) -> np.int64:
    return missing if d is None else np.int64(d.toordinal())


@dataclass(frozen=True)
class Details:
    """What an explanation shows beyond the search, in the rows of :class:`Columns`:
    display names and the loan and entry fields the search does not use."""

    person_name: np.ndarray  # str, per person_ids row
    platform_name: np.ndarray  # str, per platform_ids row
    loan_amount: np.ndarray  # float, nan when missing
    loan_status_at: np.ndarray  # int64 ordinal, NEVER when missing
    loan_phone_verified: np.ndarray  # int8: -1 missing, 0 false, 1 true
    entry_stated_reason: np.ndarray  # str, "" = none
    #: the rest of the people's and platforms' fields (a data folder gives them; a
    #: graph store's export need not): what a bulk load writes as their properties
    person_id_number: np.ndarray | None = None  # str, "" = none
    person_city: np.ndarray | None = None  # str, "" = none
    platform_kind: np.ndarray | None = None  # str, "" = not given (the kind ``other``)


@dataclass(frozen=True)
class Codes:
    """References between the rows of :class:`Columns`, already resolved.

    A loader that checks every reference of a folder (:mod:`spillover.data.fast`)
    finds, on the way, the row each id refers to and the order of each id column;
    handed over with the columns, they spare the batch pass's index hashing and
    sorting the same strings again. Each ``*_order`` lists the rows of an id
    column in the order of its ids (as strings); every other field is, per row of
    the referring column, the row of the id it names in the referred column (-1:
    none). Phone numbers are numbered by :class:`~spillover.facts.phonecodes.PhoneCodes`
    (integers, not strings). Sources without codes get them from
    :func:`spillover.engines.batch.codes_of`.
    """

    person_order: np.ndarray  # rows of person_ids, by id
    platform_order: np.ndarray  # rows of platform_ids, by id
    loan_order: np.ndarray  # rows of loan_ids, by id
    entry_order: np.ndarray  # rows of entry_ids, by id
    period_owner: np.ndarray  # row in person_ids, -1 = unknown
    loan_platform: np.ndarray  # row in platform_ids
    loan_borrower: np.ndarray  # row in person_ids
    link_loan: np.ndarray  # row in loan_ids
    entry_platform: np.ndarray  # row in platform_ids
    entry_person: np.ndarray  # row in person_ids of a person subject, -1 for a phone
    entry_copied_from: np.ndarray  # row in entry_ids, -1 = none
    share_from: np.ndarray  # row in platform_ids
    share_to: np.ndarray  # row in platform_ids
    #: every phone number of the columns, as integers (code = rank in text order)
    phones: PhoneCodes
    period_phone: np.ndarray  # phone code
    loan_applicant_phone: np.ndarray  # phone code, -1 = none
    link_phone: np.ndarray  # phone code
    entry_phone: np.ndarray  # phone code of a phone subject, -1 for a person


@dataclass(frozen=True)
class Columns:
    """The graph as flat columns (one array per field); see :func:`columns_from_dataset`."""

    person_ids: np.ndarray  # str, any order
    platform_ids: np.ndarray
    # phone owner periods
    period_phone: np.ndarray  # str (E.164)
    period_owner: np.ndarray  # str, "" = unknown
    period_verified: np.ndarray  # bool
    period_since: np.ndarray  # int64 ordinal, NEVER when missing
    period_until: np.ndarray  # int64 ordinal, FOREVER when missing
    # loans
    loan_ids: np.ndarray
    loan_platform: np.ndarray
    loan_borrower: np.ndarray
    loan_applied: np.ndarray  # int64 ordinal
    loan_known: np.ndarray  # int64 ordinal: status_at, else applied_at
    loan_status: np.ndarray  # str
    loan_applicant_phone: np.ndarray  # str, "" = none
    loan_phone_verified: np.ndarray  # bool (missing = False)
    # loan links
    link_loan: np.ndarray
    link_phone: np.ndarray
    link_role: np.ndarray
    # entries
    entry_ids: np.ndarray
    entry_platform: np.ndarray
    entry_kind: np.ndarray  # "person" | "phone"
    entry_subject: np.ndarray
    entry_listed: np.ndarray  # int64 ordinal
    entry_copied_from: np.ndarray  # str, "" = none
    # sharing
    share_from: np.ndarray
    share_to: np.ndarray
    share_since: np.ndarray  # int64 ordinal, NEVER when missing
    #: names and display fields, when the source gave them (a data folder does)
    details: Details | None = None
    #: the references between rows, when the source resolved them (a data folder does)
    codes: Codes | None = None
    #: identity linkage (docs/contract.md §1): per loan row, the platform record that names
    #: its borrower ("" none; None: no loan does); the records and each one's match
    loan_record: np.ndarray | None = None
    records: Mapping[str, Record] = field(default_factory=dict)
    matches: Mapping[str, Match] = field(default_factory=dict)


def columns_digest(columns: Columns, *, in_order: bool = False) -> bytes:
    """A 256-bit digest (BLAKE2b) of the graph ``columns`` hold, whatever the order of
    their rows: each table (the arrays of one prefix, ``person_*``, ``loan_*``... with
    the :class:`Details` of its rows) digested in one order of its own (:func:`_order`:
    its rows sorted), every array by name with its type and values; the records and
    matches by id, with every field. A store may return the rows of an unchanged graph
    in another order (Neo4j does when it plans a read again): they digest the same; any
    value changed, added or removed, and any value moved to another row, changes it.
    :class:`Codes` are not digested: they are the references of the rows digested,
    resolved. ``in_order``: the rows in the order they come (no sort, so cheaper; the
    same rows in another order digest otherwise, and never as the sorted digest does).

    >>> one = columns_from_facts(["jiang", "xu"], ["p1"], [], [], [], [], [])
    >>> other = columns_from_facts(["xu", "jiang"], ["p1"], [], [], [], [], [])
    >>> third = columns_from_facts(["xu", "jiang", "li"], ["p1"], [], [], [], [], [])
    >>> columns_digest(one) == columns_digest(other), columns_digest(one) == columns_digest(third)
    (True, False)
    >>> columns_digest(one, in_order=True) == columns_digest(other, in_order=True)
    False
    """
    h = hashlib.blake2b(digest_size=32, person=b"rows as read" if in_order else b"rows sorted")
    for name, table in _tables(columns).items():
        h.update(f"t{name}:".encode())
        order = None if in_order else _order(list(table.values()))
        for field_name, values in table.items():
            h.update(f"{field_name}=".encode())
            _digest_array(h, values if order is None else values.take(order))
    for name in ("records", "matches"):
        mapping = getattr(columns, name)
        h.update(f"{name}=".encode())
        _digest_into(h, {key: mapping[key] for key in sorted(mapping)})
    return h.digest()


def _tables(columns: Columns) -> dict[str, dict[str, pa.Array]]:
    """The arrays of ``columns`` and of its :class:`Details` as Arrow arrays, by table
    (the prefix of their name: ``person_ids`` and ``details.person_name`` are both the
    people's), each table's in the order of the fields, the tables in the order of
    their first field."""
    tables: dict[str, dict[str, pa.Array]] = {}
    sources: list[tuple[str, Any]] = [("", columns)]
    if columns.details is not None:
        sources.append(("details.", columns.details))
    for prefix, source in sources:
        for f in dataclasses.fields(source):
            values = getattr(source, f.name)
            if isinstance(values, np.ndarray | pa.Array | pa.ChunkedArray):
                table = tables.setdefault(f.name.split("_", 1)[0], {})
                table[prefix + f.name] = _arrow(prefix + f.name, values)
    for name, table in tables.items():
        sizes = {field_name: len(values) for field_name, values in table.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"columns_digest: the {name} columns differ in length: {sizes}")
    return tables


def _arrow(name: str, values: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one Arrow array (a TypeError naming the column when Arrow cannot
    hold them: values of mixed types)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"columns_digest: cannot digest the {name} column: {exc}") from None


def _order(table: list[pa.Array]) -> pa.Array | None:
    """The rows of a table (one array per field, of one length) in an order of their
    own, whatever order they came in: by the first field when no two rows share it (an
    id), else by every field, the first first (rows that tie are equal in every field,
    so either order digests the same). None: one row or none."""
    if len(table[0]) < 2:
        return None
    order = pc.sort_indices(table[0])
    first = table[0].take(order)
    if first.null_count < 2 and not pc.any(pc.equal(first[1:], first[:-1])).as_py():
        return order
    rows = pa.table({str(i): values for i, values in enumerate(table)})
    return pc.sort_indices(rows, sort_keys=[(str(i), "ascending") for i in range(len(table))])


def _digest_array(h: Any, values: pa.Array) -> None:
    """Feed an Arrow array to the hash ``h``: its type, length, which values are null,
    and its values (text as its offsets and bytes, the rest as numpy's bytes)."""
    h.update(f"a{values.type}:{len(values)}:{values.null_count}:".encode())
    if values.null_count:
        h.update(values.is_valid().to_numpy(zero_copy_only=False).tobytes())
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        width = np.int64 if pa.types.is_large_string(kind) else np.int32
        _, offsets_buffer, data = values.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=width)
        offsets = offsets[values.offset : values.offset + len(values) + 1]
        h.update((offsets - offsets[0]).tobytes())
        if data is not None:
            h.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
        return
    plain = values.to_numpy(zero_copy_only=False)
    if plain.dtype == object:
        h.update(repr(plain.tolist()).encode())  # repr quotes and escapes every value
    else:
        h.update(np.ascontiguousarray(plain).tobytes())


def _digest_into(h: Any, value: object) -> None:
    """Feed ``value`` (a record, a match, their fields) to the hash ``h``, typed and
    delimited (:func:`columns_digest`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"d{type(value).__name__}:".encode())
        for f in dataclasses.fields(value):
            h.update(f"{f.name}=".encode())
            _digest_into(h, getattr(value, f.name))
    elif isinstance(value, Mapping):
        h.update(f"m{len(value)}:".encode())
        for key, item in value.items():
            h.update(f"{key!r}=".encode())
            _digest_into(h, item)
    elif value is None or isinstance(value, str | int | float | date | tuple):
        h.update(f"v{value!r};".encode())
    else:
        raise TypeError(f"columns_digest: cannot digest a {type(value).__name__}")


def _strs(values: Sequence[str]) -> np.ndarray:
    return np.asarray(values, dtype=object)


def columns_from_dataset(data: Dataset) -> Columns:
    """Flatten a validated :class:`Dataset` into :class:`Columns` (with :class:`Details`)."""
    loans = list(data.loans.values())
    columns = columns_from_facts(
        list(data.people),
        list(data.platforms),
        [p for ps in data.phone_periods.values() for p in ps],
        loans,
        list(data.links),
        list(data.entries.values()),
        list(data.sharing),
    )
    details = Details(
        person_name=_strs([p.name for p in data.people.values()]),
        platform_name=_strs([p.name for p in data.platforms.values()]),
        loan_amount=np.array(
            [np.nan if x.amount is None else x.amount for x in loans], dtype=float
        ),
        loan_status_at=np.array([_day(x.status_at, NEVER) for x in loans], dtype=np.int64),
        loan_phone_verified=np.array(
            [-1 if x.phone_verified is None else int(x.phone_verified) for x in loans],
            dtype=np.int8,
        ),
        entry_stated_reason=_strs([e.stated_reason or "" for e in data.entries.values()]),
        person_id_number=_strs([p.id_number or "" for p in data.people.values()]),
        person_city=_strs([p.city or "" for p in data.people.values()]),
        platform_kind=_strs([p.kind.value for p in data.platforms.values()]),
    )
    if data.records or any(x.borrower_record for x in loans):
        return replace(
            columns,
            details=details,
            loan_record=_strs([x.borrower_record or "" for x in loans]),
            records=data.records,
            matches=data.matches,
        )
    return replace(columns, details=details)


def columns_from_facts(
    person_ids: Sequence[str],
    platform_ids: Sequence[str],
    periods: Sequence[PhonePeriod],
    loans: Sequence[Loan],
    links: Sequence[LoanLink],
    entries: Sequence[Entry],
    sharing: Sequence[Sharing],
) -> Columns:
    """:class:`Columns` from lists of facts (a dataset's, or a backend's export)."""
    return Columns(
        person_ids=_strs(person_ids),
        platform_ids=_strs(platform_ids),
        period_phone=_strs([p.phone for p in periods]),
        period_owner=_strs([p.owner_id or "" for p in periods]),
        period_verified=np.array([p.verified for p in periods], dtype=bool),
        period_since=np.array([_day(p.since, NEVER) for p in periods], dtype=np.int64),
        period_until=np.array([_day(p.until, FOREVER) for p in periods], dtype=np.int64),
        loan_ids=_strs([x.loan_id for x in loans]),
        loan_platform=_strs([x.platform_id for x in loans]),
        loan_borrower=_strs([x.borrower_id for x in loans]),
        loan_applied=np.array([x.applied_at.toordinal() for x in loans], dtype=np.int64),
        loan_known=np.array([x.known_at.toordinal() for x in loans], dtype=np.int64),
        loan_status=_strs([x.status.value for x in loans]),
        loan_applicant_phone=_strs([x.applicant_phone or "" for x in loans]),
        loan_phone_verified=np.array([bool(x.phone_verified) for x in loans], dtype=bool),
        link_loan=_strs([x.loan_id for x in links]),
        link_phone=_strs([x.phone for x in links]),
        link_role=_strs([x.role.value for x in links]),
        entry_ids=_strs([e.entry_id or "" for e in entries]),
        entry_platform=_strs([e.platform_id for e in entries]),
        entry_kind=_strs([e.subject_kind.value for e in entries]),
        entry_subject=_strs([e.subject for e in entries]),
        entry_listed=np.array([e.listed_at.toordinal() for e in entries], dtype=np.int64),
        entry_copied_from=_strs([e.copied_from or "" for e in entries]),
        share_from=_strs([s.from_platform for s in sharing]),
        share_to=_strs([s.to_platform for s in sharing]),
        share_since=np.array([_day(s.since, NEVER) for s in sharing], dtype=np.int64),
    )
