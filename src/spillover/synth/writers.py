"""The drawn world written as the data folder's tables and the ground truth's.

Every column is assembled as an (n, width) uint8 matrix padded with NUL bytes; a row is
its columns joined by commas, and the NULs are dropped when a chunk is written, so that a
million rows take seconds. One writer per table (``write_people``, ..., the ground truth's
``write_truth_*``) over :class:`Out`, what they all read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.contract import FALSE, TRUE, columns
from ..facts.resident_id import CHECK_CHARACTERS, CHECK_WEIGHTS
from .params import YEAR, SynthParams
from .population import (
    BANK,
    BROKER,
    CITIES,
    DEFAULTED,
    GIVEN,
    INFORMAL,
    LENDER,
    MECHANISMS,
    MISSING,
    OVERDUE,
    REASONS,
    ROLES,
    STATUSES,
    SURNAMES,
    Entries,
    Links,
    Loans,
    People,
    Phones,
    Platforms,
    day_number,
    id_width,
    iso_day,
)

__all__ = [
    "CITY_NAMES",
    "Dates",
    "Listing",
    "Out",
    "Progress",
    "Writer",
    "bool_cells",
    "first_bad_days",
    "id_cells",
    "id_numbers",
    "lookup_table",
    "phone_cells",
    "write_blacklist",
    "write_links",
    "write_loans",
    "write_people",
    "write_phones",
    "write_platforms",
    "write_sharing",
    "write_truth_entries",
    "write_truth_loans",
    "write_truth_people",
    "write_truth_platforms",
]

#: ``progress(stage, done, total)``: called at the start and end of every stage
#: and after every chunk written.
Progress = Callable[[str, int, int], None]

# ---------------------------------------------------------------------------------------------
# byte-matrix CSV assembly: every column is an (n, width) uint8 matrix padded with NUL bytes;
# a row is its columns joined by commas, and the NULs are dropped when the chunk is written.


def lookup_table(strings: Sequence[str]) -> np.ndarray:
    """Lookup matrix of ``strings``; one extra all-NUL row at the end, so index -1 is empty."""
    encoded = [s.encode() for s in strings]
    width = max([1, *map(len, encoded)])
    out = np.zeros((len(encoded) + 1, width), np.uint8)
    for i, text in enumerate(encoded):
        out[i, : len(text)] = np.frombuffer(text, np.uint8)
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = 48 + v % 10
        v //= 10
    return out


def _number(values: np.ndarray) -> np.ndarray:
    """Decimal digits without leading zeros."""
    v = np.asarray(values, dtype=np.int64)
    width = len(str(int(v.max()))) if v.size else 1
    out = _digits(v, width)
    if width > 1:
        lead = np.cumprod(out[:, :-1] == 48, axis=1).astype(bool)
        out[:, :-1][lead] = 0
    return out


def id_cells(prefix: bytes, values: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded ``values + 1``; a negative value gives an empty cell."""
    values = np.asarray(values)
    missing = values < 0
    out = np.concatenate(
        [
            np.broadcast_to(np.frombuffer(prefix, np.uint8), (values.size, len(prefix))),
            _digits(np.where(missing, 0, values + 1), width),
        ],
        axis=1,
    )
    out[missing] = 0
    return out


def phone_cells(numbers: np.ndarray) -> np.ndarray:
    """E.164 ``+86`` + 11 digits; a negative number gives an empty cell."""
    missing = numbers < 0
    out = np.concatenate(
        [
            np.broadcast_to(np.frombuffer(b"+86", np.uint8), (numbers.size, 3)),
            _digits(np.where(missing, 0, numbers), 11),
        ],
        axis=1,
    )
    out[missing] = 0
    return out


class Dates:
    """ISO date strings for every day of a range, as a lookup matrix."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        days = np.arange(first, last + 1).astype("datetime64[D]")
        text = np.datetime_as_string(days).astype("S10")
        self.matrix = np.concatenate(
            [text.view(np.uint8).reshape(-1, 10), np.zeros((1, 10), np.uint8)]
        )

    def iso(self, days: np.ndarray) -> np.ndarray:
        """The ISO date of every day in ``days`` (empty for ``MISSING``)."""
        idx = np.where(days == MISSING, -1, days - self.first)
        return self.matrix[idx]

    def compact(self, days: np.ndarray) -> np.ndarray:
        """``YYYYMMDD`` (for resident ID numbers)."""
        return self.iso(days)[:, [0, 1, 2, 3, 5, 6, 8, 9]]


_BOOL = lookup_table([FALSE, TRUE])


def bool_cells(values: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """The boolean spellings of ``values`` (empty where ``missing``)."""
    idx = np.asarray(values, dtype=np.int64)
    if missing is not None:
        idx = np.where(missing, -1, idx)
    return _BOOL[idx]


Builder = Callable[[slice], list[np.ndarray]]


class Writer:
    """Writes a table in chunks of rows, reporting its progress."""

    def __init__(self, report: Progress, chunk: int = 200_000) -> None:
        self.report = report
        self.chunk = chunk

    def write(self, path: Path, stage: str, header: Sequence[str], n: int, build: Builder) -> int:
        """Write ``n`` rows to ``path`` under ``header``, ``build`` giving the columns of
        every chunk; the rows written."""
        self.report(stage, 0, n)
        with path.open("wb") as handle:
            handle.write((",".join(header) + "\n").encode())
            for lo in range(0, n, self.chunk):
                hi = min(n, lo + self.chunk)
                parts: list[np.ndarray] = []
                comma = np.full((hi - lo, 1), 44, np.uint8)
                for i, column in enumerate(build(slice(lo, hi))):
                    if i:
                        parts.append(comma)
                    parts.append(column)
                parts.append(np.full((hi - lo, 1), 10, np.uint8))
                flat = np.concatenate(parts, axis=1).ravel()
                handle.write(flat[flat != 0].tobytes())
                self.report(stage, hi, n)
        return n


def _write_text(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return len(rows)


# ---------------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True)
class Out:
    """What every table writer reads: the generated population, the folder, the id
    widths and the day formats (one row builder per table below)."""

    out: Path
    people: People
    phones: Phones
    plat: Platforms
    loans: Loans
    links: Links
    entries: Entries
    p: SynthParams
    writer: Writer
    pw: int  # digits of a person id
    lw: int  # of a loan id
    ew: int  # of an entry id
    dates: Dates
    plat_ids: np.ndarray

    @classmethod
    def of(
        cls,
        out: Path,
        people: People,
        phones: Phones,
        plat: Platforms,
        loans: Loans,
        links: Links,
        entries: Entries,
        p: SynthParams,
        writer: Writer,
    ) -> Out:
        """What the writers read, for the drawn world to be written to ``out``."""
        start, end = day_number(p.start), day_number(p.end)
        return cls(
            out,
            people,
            phones,
            plat,
            loans,
            links,
            entries,
            p,
            writer,
            pw=id_width(people.n),
            lw=id_width(loans.n),
            ew=id_width(entries.n),
            dates=Dates(start - 90 * YEAR, end + 1),
            plat_ids=lookup_table(plat.ids),
        )


CITY_NAMES = lookup_table([c[0] for c in CITIES])
_ROLE_NAMES = lookup_table(ROLES)


_ID_WEIGHTS = np.array(CHECK_WEIGHTS, np.int64)
_ID_CHECK = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), np.uint8)


def id_numbers(people: People, dates: Dates, idx: np.ndarray) -> np.ndarray:
    """The resident ID numbers of people ``idx`` (empty for those without one)."""
    city_code = np.array([c[1] for c in CITIES], np.int64)
    first17 = np.concatenate(
        [
            _digits(city_code[people.city_true[idx]] * 100 + people.district[idx], 6),
            dates.compact(people.birth[idx]),
            _digits(people.seq[idx], 3),
        ],
        axis=1,
    )
    total = ((first17.astype(np.int64) - 48) @ _ID_WEIGHTS) % 11
    id_number = np.concatenate([first17, _ID_CHECK[total][:, None]], axis=1)
    id_number[~people.has_id[idx]] = 0
    return id_number


def write_people(o: Out) -> int:
    """Write ``people.csv``; the rows written."""
    people, dates, pw = o.people, o.dates, o.pw
    surname = lookup_table(SURNAMES)
    given1 = lookup_table(GIVEN)
    given2 = lookup_table([g.lower() for g in GIVEN])
    cities = CITY_NAMES
    space = np.full((1, 1), 32, np.uint8)

    def people_rows(s: slice) -> list[np.ndarray]:
        m = s.stop - s.start
        idx = np.arange(s.start, s.stop)
        id_number = id_numbers(people, dates, idx)
        return [
            id_cells(b"P", idx, pw),
            np.concatenate(
                [
                    surname[people.surname[s]],
                    np.broadcast_to(space, (m, 1)),
                    given1[people.given1[s]],
                    given2[people.given2[s]],
                ],
                axis=1,
            ),
            id_number,
            cities[people.city[s]],
        ]

    return o.writer.write(
        o.out / "people.csv",
        "write people",
        columns("people"),
        people.n,
        people_rows,
    )


def write_platforms(o: Out) -> int:
    """Write ``platforms.csv``; the rows written."""
    plat = o.plat
    kinds = {
        BANK: "bank",
        BROKER: "data_broker",
        LENDER: "online_lender",
        INFORMAL: "online_lender",
    }
    verifies = {BANK: TRUE, BROKER: "", LENDER: TRUE, INFORMAL: FALSE}
    return _write_text(
        o.out / "platforms.csv",
        (*columns("platforms"), "verifies_phone"),  # an extra column the loaders ignore
        [
            (plat.ids[i], plat.names[i], kinds[int(c)], verifies[int(c)])
            for i, c in enumerate(plat.cls)
        ],
    )


def write_phones(o: Out) -> int:
    """One row per owner period, sorted by number then since."""
    phones, dates, pw = o.phones, o.dates, o.pw
    m = phones.number.size
    prev = np.flatnonzero(phones.prev_owner >= 0)
    r_number = np.concatenate([phones.number, phones.number[prev]])
    r_owner = np.concatenate(
        [
            np.where(phones.cur_known, phones.cur_owner, -1),
            np.where(phones.prev_known[prev], phones.prev_owner[prev], -1),
        ]
    )
    r_verified = np.concatenate([phones.cur_verified, phones.prev_verified[prev]]).astype(np.int64)
    r_verified = np.where(r_owner < 0, -1, r_verified)
    r_since = np.concatenate([phones.cur_since, phones.prev_since[prev]])
    r_until = np.concatenate([np.full(m, MISSING, np.int64), phones.prev_until[prev]])
    order = np.lexsort((r_since, r_number))

    def phone_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            phone_cells(r_number[o]),
            id_cells(b"P", r_owner[o], pw),
            _BOOL[r_verified[o]],
            dates.iso(r_since[o]),
            dates.iso(r_until[o]),
        ]

    return o.writer.write(
        o.out / "phones.csv",
        "write phones",
        columns("phones"),
        order.size,
        phone_rows,
    )


def write_loans(o: Out) -> int:
    """Write ``loans.csv``; the rows written."""
    loans, phones, dates, pw, lw, plat_ids = o.loans, o.phones, o.dates, o.pw, o.lw, o.plat_ids
    statuses = lookup_table(STATUSES)

    def loan_rows(s: slice) -> list[np.ndarray]:
        return [
            id_cells(b"L", np.arange(s.start, s.stop), lw),
            plat_ids[loans.platform[s]],
            id_cells(b"P", loans.borrower[s], pw),
            dates.iso(loans.applied[s]),
            statuses[loans.status[s]],
            phone_cells(phones.number[loans.phone[s]]),
            bool_cells(loans.verified[s]),
            _number(loans.amount[s]),
            dates.iso(loans.status_at[s]),
        ]

    return o.writer.write(
        o.out / "loans.csv",
        "write loans",
        [c for c in columns("loans") if c != "borrower_record"],  # borrowers by id only
        loans.n,
        loan_rows,
    )


def write_links(o: Out) -> int:
    """Write ``loan_links.csv``; the rows written."""
    links, phones, lw = o.links, o.phones, o.lw
    roles = _ROLE_NAMES

    def link_rows(s: slice) -> list[np.ndarray]:
        return [
            id_cells(b"L", links.loan[s], lw),
            phone_cells(phones.number[links.phone[s]]),
            roles[links.role[s]],
        ]

    return o.writer.write(
        o.out / "loan_links.csv",
        "write loan_links",
        columns("loan_links"),
        links.loan.size,
        link_rows,
    )


@dataclass(frozen=True)
class Listing:
    """Entry ids in order of listing day, then platform: the order both the blacklist
    and its ground truth are written in, and the cells they share."""

    o: Out
    order: np.ndarray
    rank: np.ndarray

    @classmethod
    def of(cls, o: Out) -> Listing:
        """The entries' order in ``blacklist.csv`` (by day, then platform) and every entry's
        rank there."""
        e = o.entries
        order = np.lexsort((np.arange(e.n), e.plat, e.listed))
        rank = np.empty(e.n, np.int64)
        rank[order] = np.arange(e.n)
        return cls(o, order, rank)

    def subjects(self, rows: np.ndarray) -> np.ndarray:
        """The subject cells of the entries ``rows`` (a person id or a phone)."""
        e, phones = self.o.entries, self.o.phones
        person = id_cells(b"P", np.where(e.kind[rows] == 0, e.subj[rows], 0), self.o.pw)
        phone = phone_cells(phones.number[np.where(e.kind[rows] == 1, e.subj[rows], 0)])
        width = max(person.shape[1], phone.shape[1])
        out_ = np.zeros((rows.size, width), np.uint8)
        is_person = e.kind[rows] == 0
        out_[is_person, : person.shape[1]] = person[is_person]
        out_[~is_person, : phone.shape[1]] = phone[~is_person]
        return out_

    def source(self, rows: np.ndarray, column: np.ndarray) -> np.ndarray:
        """The entry id cells that ``column`` names for the entries ``rows`` (empty for
        none)."""
        ref = column[rows]
        return id_cells(b"E", np.where(ref >= 0, self.rank[np.maximum(ref, 0)], -1), self.o.ew)


_KINDS = lookup_table(("person", "phone"))


def write_blacklist(o: Out, listing: Listing) -> int:
    """Write ``blacklist.csv``; the rows written."""
    e, dates, ew, plat_ids = o.entries, o.dates, o.ew, o.plat_ids
    order, rank = listing.order, listing.rank
    kinds_t = _KINDS
    reasons = lookup_table(REASONS)
    subjects, source = listing.subjects, listing.source

    def entry_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            id_cells(b"E", rank[o], ew),
            plat_ids[e.plat[o]],
            kinds_t[e.kind[o]],
            subjects(o),
            dates.iso(e.listed[o]),
            reasons[e.reason[o]],
            source(o, e.src),
        ]

    return o.writer.write(
        o.out / "blacklist.csv",
        "write blacklist",
        columns("blacklist"),
        e.n,
        entry_rows,
    )


def write_sharing(o: Out) -> int:
    """Write ``sharing.csv``; the rows written."""
    plat = o.plat
    return _write_text(
        o.out / "sharing.csv",
        columns("sharing"),
        [
            (plat.ids[a], plat.ids[b], iso_day(int(since)))
            for a, b, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True)
        ],
    )


def first_bad_days(o: Out) -> np.ndarray:
    """Per person, the first day one of their loans was known overdue or defaulted."""
    loans = o.loans
    delinquent = (loans.status == OVERDUE) | (loans.status == DEFAULTED)
    first_bad = np.full(o.people.n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_bad, loans.borrower[delinquent], loans.status_at[delinquent])
    return first_bad


def write_truth_entries(o: Out, listing: Listing, gt: Path, first_bad: np.ndarray) -> int:
    """Write the ground truth's ``entries.csv`` (how every entry came about); the rows
    written."""
    e, loans, phones, dates = o.entries, o.loans, o.phones, o.dates
    pw, lw, ew, plat_ids = o.pw, o.lw, o.ew, o.plat_ids
    order, rank = listing.order, listing.rank
    kinds_t, roles = _KINDS, _ROLE_NAMES
    subjects, source = listing.subjects, listing.source
    cause_borrower = loans.borrower[e.cause]
    subject_person = np.where(e.kind == 0, e.subj, phones.owner_at(e.subj, e.listed))
    spill = subject_person != cause_borrower
    subject_delinquent = (subject_person >= 0) & (
        first_bad[np.maximum(subject_person, 0)] <= e.listed
    )
    mechanisms = lookup_table(MECHANISMS)

    def truth_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            id_cells(b"E", rank[o], ew),
            plat_ids[e.plat[o]],
            kinds_t[e.kind[o]],
            subjects(o),
            dates.iso(e.listed[o]),
            bool_cells(spill[o]),
            id_cells(b"L", e.cause[o], lw),
            id_cells(b"P", cause_borrower[o], pw),
            mechanisms[e.mech[o]],
            id_cells(b"E", rank[e.root[o]], ew),
            mechanisms[e.mech[e.root[o]]],
            roles[e.role[o]],
            phone_cells(np.where(e.via[o] >= 0, phones.number[np.maximum(e.via[o], 0)], -1)),
            id_cells(b"P", e.linked[o], pw),
            id_cells(b"P", subject_person[o], pw),
            bool_cells(subject_delinquent[o]),
            source(o, e.src_true),
        ]

    return o.writer.write(
        gt / "entries.csv",
        "write ground_truth/entries",
        (
            "entry_id",
            "platform_id",
            "subject_kind",
            "subject",
            "listed_at",
            "is_spillover",
            "cause_loan_id",
            "cause_borrower_id",
            "mechanism",
            "root_entry_id",
            "root_mechanism",
            "link_role",
            "via_phone",
            "linked_person_id",
            "subject_person_id",
            "subject_delinquent",
            "true_source",
        ),
        e.n,
        truth_rows,
    )


def write_truth_people(o: Out, gt: Path, first_bad: np.ndarray) -> int:
    """Write the ground truth's ``people.csv``; the rows written."""
    people, loans, pw = o.people, o.loans, o.pw
    n, end, cities = people.n, day_number(o.p.end), CITY_NAMES
    defaulted = np.zeros(n, bool)
    defaulted[loans.borrower[loans.status == DEFAULTED]] = True
    n_loans = np.bincount(loans.borrower, minlength=n)

    def truth_people(s: slice) -> list[np.ndarray]:
        return [
            id_cells(b"P", np.arange(s.start, s.stop), pw),
            bool_cells(defaulted[s]),
            bool_cells(first_bad[s] <= end),
            bool_cells(people.risky[s]),
            _number(people.community[s]),
            cities[people.city_true[s]],
            _number(n_loans[s]),
        ]

    return o.writer.write(
        gt / "people.csv",
        "write ground_truth/people",
        ("person_id", "defaulted", "delinquent", "risky", "community", "city", "loans"),
        n,
        truth_people,
    )


def write_truth_loans(o: Out, gt: Path) -> int:
    """Write the ground truth's ``loans.csv``; the rows written."""
    loans, pw, lw = o.loans, o.pw, o.lw

    def truth_loans(s: slice) -> list[np.ndarray]:
        return [
            id_cells(b"L", np.arange(s.start, s.stop), lw),
            bool_cells(loans.misused[s]),
            id_cells(b"P", loans.user[s], pw),
        ]

    return o.writer.write(
        gt / "loans.csv",
        "write ground_truth/loans",
        ("loan_id", "misused_phone", "applicant_phone_user_id"),
        loans.n,
        truth_loans,
    )


def write_truth_platforms(o: Out, gt: Path) -> int:
    """Write the ground truth's ``platforms.csv``; the rows written."""
    plat = o.plat
    return _write_text(
        gt / "platforms.csv",
        (
            "platform_id",
            "class",
            "lists_applicant_phone",
            "lists_contacts",
            "lists_owner",
            "lists_address_book",
            "uploads_address_book",
            "resolves_phones",
        ),
        [
            (
                plat.ids[i],
                ("bank", "data_broker", "verifying_lender", "informal_lender")[int(c)],
                *(
                    TRUE if flag[i] else FALSE
                    for flag in (
                        plat.lists_app,
                        plat.lists_contacts,
                        plat.lists_owner,
                        plat.lists_ab,
                        plat.uploads_ab,
                        plat.resolves,
                    )
                ),
            )
            for i, c in enumerate(plat.cls)
        ],
    )
