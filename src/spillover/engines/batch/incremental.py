"""Re-audit only what a correction changed (issue 23): from the difference between the
columns of two versions of one dataset, the entries of the new version whose answer can
have moved (:func:`affected_entries`), and the pass restricted to them (:func:`reaudit`).

An entry's search reads only the facts it can reach: its subject's ties to loans, each
loan's facts, its borrower's ties, ... up to the policy's ``max_loans`` loans, and the
reach of each origin platform to the entry's listing (sharing agreements, the copy chain).
So an entry whose reachable facts are the same in both versions has the same answer, and
the entries a correction can reach are found backwards from the changed facts:

* **seeds**: the people whose ties changed, i.e. every person a changed fact ties to a loan
  (the borrower of a changed loan, every owner of a number named by a changed loan or link
  or whose owner periods changed, the owners of changed periods, people added or removed),
  and the numbers whose uses or owners changed (for phone subjects);
* **within the depth**: a person subject is reached when it can put a seed on its search's
  frontier within ``max_loans - 1`` loans (walking back: a loan whose borrower is reached
  makes every person tied to it reached); a phone subject when its number is a seed or one
  of its loans' borrowers is reached within ``max_loans - 2`` loans;
* **forward over sharing and copies**: an entry changed or added, and every entry listed on
  a platform a changed sharing agreement leads to, with every entry copied from them
  (their copy chains' labels change).

The search walks the new version's ties: a path of unchanged facts is the same in both
versions, and a path through a changed fact reaches a seed first. Platform records and
matches are compared whole: when they differ, every entry is re-audited (a correction
by remedy removes matches rarely; the full pass is always right).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...facts import csr
from ...facts.columns import Columns
from ...facts.model import SubjectKind
from ...facts.phonecodes import codes_in, string_array
from .audit import audit_entries, audit_pass
from .index import CodedGraph
from .result import AuditResult

__all__ = [
    "FactChanges",
    "affected_entries",
    "entries_to_reaudit",
    "fact_changes",
    "index_changes",
    "reached_from",
    "reaudit",
]


@dataclass(frozen=True)
class FactChanges:
    """What differs between two versions' columns, as ids and numbers (text), from both
    sides: ``everything`` when the difference cannot be followed (records or matches)."""

    persons: pa.Array  # people whose ties changed (seeds)
    phones: pa.Array  # numbers whose uses or owners changed (seeds)
    loans: pa.Array  # loans changed, added or removed
    entries: pa.Array  # entries changed or added (in the new version)
    platforms: pa.Array  # platforms a changed sharing agreement leads to
    everything: bool = False
    #: the persons, phones and loans as codes of the new version's index, when known
    #: (:func:`index_changes`): no lookup of the text in the whole index then
    codes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def none(self) -> bool:
        """Nothing changed."""
        return not self.everything and not any(
            len(x) for x in (self.persons, self.phones, self.loans, self.entries, self.platforms)
        )


def _text(values: np.ndarray | pa.Array) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(np.asarray(values))
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    if pa.types.is_null(arr.type) or pa.types.is_binary(arr.type):
        return string_array(values)
    return pc.cast(arr, pa.string())


def _same(a: Sequence[np.ndarray | pa.Array], b: Sequence[np.ndarray | pa.Array]) -> bool:
    if len(a[0]) != len(b[0]):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype != object:
            if not np.array_equal(x, y):
                return False
        elif not _text(x).equals(_text(y)):
            return False
    return True


def _keys(columns: Sequence[np.ndarray | pa.Array]) -> pa.Array:
    texts = [_text(c) for c in columns]
    if len(texts) == 1:
        return texts[0]
    joined: pa.Array = pc.binary_join_element_wise(*texts, "\x1f")
    return joined


def _diff(
    a: Sequence[np.ndarray | pa.Array], b: Sequence[np.ndarray | pa.Array]
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of table ``a`` not in ``b`` and of ``b`` not in ``a`` (each a row index array)."""
    if _same(a, b):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ka, kb = _keys(a), _keys(b)
    in_b = pc.is_in(ka, value_set=kb).to_numpy(zero_copy_only=False)
    in_a = pc.is_in(kb, value_set=ka).to_numpy(zero_copy_only=False)
    return np.nonzero(~in_b)[0], np.nonzero(~in_a)[0]


def _tables(c: Columns) -> dict[str, list[np.ndarray | pa.Array]]:
    loans = [
        c.loan_ids,
        c.loan_platform,
        c.loan_borrower,
        c.loan_applied,
        c.loan_known,
        c.loan_status,
        c.loan_applicant_phone,
        c.loan_phone_verified,
    ]
    if c.loan_record is not None:
        loans.append(c.loan_record)
    return {
        "people": [c.person_ids],
        "periods": [
            c.period_phone,
            c.period_owner,
            c.period_verified,
            c.period_since,
            c.period_until,
        ],
        "loans": loans,
        "links": [c.link_loan, c.link_phone, c.link_role],
        "entries": [
            c.entry_ids,
            c.entry_platform,
            c.entry_kind,
            c.entry_subject,
            c.entry_listed,
            c.entry_copied_from,
        ],
        "sharing": [c.share_from, c.share_to, c.share_since],
    }


def _pick(column: np.ndarray | pa.Array, rows: np.ndarray) -> pa.Array:
    return string_array(column).take(pa.array(rows, pa.int64()))


def _both(a: Columns, b: Columns, name: str, rows: tuple[np.ndarray, np.ndarray]) -> pa.Array:
    """Column ``name`` of the changed rows of both sides, as one text array."""
    return pa.concat_arrays([_pick(getattr(a, name), rows[0]), _pick(getattr(b, name), rows[1])])


def _nonempty(values: pa.Array) -> pa.Array:
    out: pa.Array = pc.unique(values.filter(pc.not_equal(values, "")))
    return out


def fact_changes(a: Columns, b: Columns) -> FactChanges:
    """The changed facts between ``a`` (before) and ``b`` (after), as seeds (module doc)."""
    empty = pa.array([], pa.string())
    if dict(a.records) != dict(b.records) or dict(a.matches) != dict(b.matches):
        return FactChanges(empty, empty, empty, empty, empty, everything=True)
    ta, tb = _tables(a), _tables(b)
    d = {name: _diff(ta[name], tb[name]) for name in ta}
    loans = _nonempty(_both(a, b, "loan_ids", d["loans"]))
    # the links of changed loans (of either side: a kept link is in b)
    of_loans = pc.is_in(string_array(b.link_loan), value_set=loans).to_numpy(zero_copy_only=False)
    phones = pa.concat_arrays(
        [
            _both(a, b, "link_phone", d["links"]),
            _both(a, b, "period_phone", d["periods"]),
            _both(a, b, "loan_applicant_phone", d["loans"]),
            _pick(b.link_phone, np.nonzero(of_loans)[0]),
        ]
    )
    persons = pa.concat_arrays(
        [
            _both(a, b, "person_ids", d["people"]),
            _both(a, b, "period_owner", d["periods"]),
            _both(a, b, "loan_borrower", d["loans"]),
        ]
    )
    share_to = _both(a, b, "share_to", d["sharing"])
    return FactChanges(
        persons=_nonempty(persons),
        phones=_nonempty(phones),
        loans=loans,
        entries=_nonempty(_pick(b.entry_ids, d["entries"][1])),
        platforms=_forward(a, b, _nonempty(share_to)),
    )


def reached_from(start: Iterable[str], edges: set[tuple[str, str]]) -> set[str]:
    """``start`` and every node reached from it along ``edges`` (pairs ``(from, to)``).

    >>> sorted(reached_from(["a"], {("a", "b"), ("b", "c"), ("d", "a")}))
    ['a', 'b', 'c']
    """
    seen = set(start)
    todo = list(seen)
    while todo:
        here = todo.pop()
        for f, t in edges:
            if f == here and t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def _forward(a: Columns, b: Columns, start: pa.Array) -> pa.Array:
    """The platforms ``start`` leads to over the sharing agreements of either side (any day)."""
    if not len(start):
        return start
    edges = {
        (f, t)
        for c in (a, b)
        for f, t in zip(
            string_array(c.share_from).to_pylist(),
            string_array(c.share_to).to_pylist(),
            strict=True,
        )
    }
    seen = reached_from(start.to_pylist(), edges)
    return pa.array(sorted(seen), pa.string())


def affected_entries(ix: CodedGraph, changes: FactChanges) -> np.ndarray:
    """The entries of ``ix`` (indices in entry_id order) whose answer can differ from the
    other version's, under ``changes`` (module doc): the ones a re-audit must score.

    The walk back from the seeds touches only the people, loans and numbers it reaches
    (ties by person, uses by number), plus one look at the links per loan depth."""
    codes = ix.codes
    order = codes.entry_order
    n = len(order)
    if changes.everything:
        return np.arange(n, dtype=np.int64)
    walk = _Walk(ix)
    reached = walk.reached_people(changes)
    max_loans = ix.policy.max_loans
    person_ok = np.zeros(len(ix.persons) + 1, dtype=bool)
    person_ok[reached[min(max_loans - 1, len(reached) - 1)]] = True
    subject = csr.recode(ix.person_rank, codes.entry_person[order])
    subject = _record_subjects(ix, subject)
    hit = person_ok[subject]  # -1 (a phone subject) reads the spare slot: False
    # phone subjects: the number a seed, or a borrower of its loans reached one loan later
    phone_ok = np.zeros(len(ix.phones) + 1, dtype=bool)
    seeds = changes.codes[1] if changes.codes else ix.phones.codes(changes.phones)
    phone_ok[seeds[seeds >= 0]] = True
    if max_loans >= 2:
        phone_ok[walk.phones_of(walk.own_loans(reached[max_loans - 2]))] = True
    phone = np.asarray(codes.entry_phone, dtype=np.int64)[order]
    hit |= phone_ok[phone]
    return np.nonzero(hit | _reach_changed(ix, changes))[0]


def _record_subjects(ix: CodedGraph, subject: np.ndarray) -> np.ndarray:
    """Record subjects start from their matched person (as the pass does)."""
    cols = ix.cols
    if not cols.matches:
        return subject
    order = ix.codes.entry_order
    kinds = string_array(cols.entry_kind).take(pa.array(order)).to_pylist()
    subjects = string_array(cols.entry_subject).take(pa.array(order)).to_pylist()
    found = [
        (i, cols.matches[s].person_id)
        for i, (k, s) in enumerate(zip(kinds, subjects, strict=True))
        if k == SubjectKind.RECORD.value and s in cols.matches
    ]
    if found:
        out = subject.copy()
        at = np.array([i for i, _ in found], dtype=np.int64)
        out[at] = codes_in(ix.persons, pa.array([p for _, p in found], pa.string()))
        return out
    return subject


class _Walk:
    """The ties of an index walked backwards from a few people or loans."""

    def __init__(self, ix: CodedGraph) -> None:
        self.ix = ix
        self.link_loan = csr.recode(ix.loan_rank, ix.codes.link_loan)
        self.link_phone = np.asarray(ix.codes.link_phone, dtype=np.int64)
        self.applicant = np.asarray(ix.codes.loan_applicant_phone, dtype=np.int64)[ix.loan_order]

    def own_loans(self, people: np.ndarray) -> np.ndarray:
        """The loans ``people`` borrowed (their ties without a number)."""
        ix = self.ix
        _label, tie = csr.gather(ix.t_ptr, people)
        loans: np.ndarray = ix.t_loan[tie[ix.t_phone[tie] < 0]]
        return loans

    def phones_of(self, loans: np.ndarray) -> np.ndarray:
        """The numbers ``loans`` name (applicant and links)."""
        mark = np.zeros(len(self.ix.loans), dtype=bool)
        mark[loans] = True
        app = self.applicant[loans]
        return np.unique(np.concatenate([app[app >= 0], self.link_phone[mark[self.link_loan]]]))

    def tied_to(self, loans: np.ndarray) -> np.ndarray:
        """The people tied to ``loans``: their borrowers and the owners of the numbers they
        name on the application day (the uses of those numbers)."""
        ix = self.ix
        mark = np.zeros(len(ix.loans), dtype=bool)
        mark[loans] = True
        _label, use = csr.gather(ix.u_ptr, self.phones_of(loans))
        owner = ix.u_owner[use[mark[ix.u_loan[use]]]]
        return np.unique(np.concatenate([ix.loan_borrower[loans], owner[owner >= 0]]))

    def reached_people(self, changes: FactChanges) -> list[np.ndarray]:
        """Per j = 0 .. max_loans - 1: the people (codes) that put a seed on their search's
        frontier within j loans."""
        ix = self.ix
        if changes.codes is not None:
            people, phone, loans = changes.codes
        else:
            people = codes_in(ix.persons, changes.persons)
            phone = ix.phones.codes(changes.phones)
            loans = codes_in(ix.loans, changes.loans)
        _label, period = csr.gather(ix.p_ptr, phone[phone >= 0])  # every owner, any day
        seeds = np.concatenate([people, ix.p_owner[period], ix.loan_borrower[loans[loans >= 0]]])
        out = [np.unique(seeds[seeds >= 0])]
        for _ in range(1, ix.policy.max_loans):
            now = out[-1]
            out.append(np.union1d(now, self.tied_to(self.own_loans(now))))
        return out


def _reach_changed(ix: CodedGraph, changes: FactChanges) -> np.ndarray:
    """Entries changed or added, or listed where a changed agreement leads, and every
    entry copied (at any remove) from one of them."""
    cols, codes = ix.cols, ix.codes
    order = codes.entry_order
    ids = string_array(cols.entry_ids).take(pa.array(order))
    mark = pc.is_in(ids, value_set=changes.entries).to_numpy(zero_copy_only=False)
    if len(changes.platforms):
        platform = string_array(cols.entry_platform).take(pa.array(order))
        mark |= pc.is_in(platform, value_set=changes.platforms).to_numpy(zero_copy_only=False)
    mark = np.asarray(mark, dtype=bool)
    copied = csr.recode(csr.rank(order), codes.entry_copied_from[order])
    has = copied >= 0
    while True:
        more = has & ~mark
        more[more] = mark[copied[more]]
        if not more.any():
            return mark
        mark |= more


def _same_universe(a: CodedGraph, b: CodedGraph) -> bool:
    """Both indexes code people, loans, numbers, platforms and entries alike."""
    return (
        a.persons.equals(b.persons)
        and a.loans.equals(b.loans)
        and a.platforms.equals(b.platforms)
        and a.phones.texts is None
        and b.phones.texts is None
        and np.array_equal(a.phones.keys, b.phones.keys)
        and a.entry_ids_by_code().equals(b.entry_ids_by_code())
    )


def _group_changed(
    ptr_a: np.ndarray,
    ptr_b: np.ndarray,
    cols_a: Sequence[np.ndarray],
    cols_b: Sequence[np.ndarray],
) -> np.ndarray:
    """Per group of two CSR tables with the same groups (a number's owner periods, its
    uses): whether its rows differ (in number, or any column at the same place)."""
    if np.array_equal(ptr_a, ptr_b) and all(
        np.array_equal(x, y) for x, y in zip(cols_a, cols_b, strict=True)
    ):
        return np.zeros(len(ptr_a) - 1, dtype=bool)
    count_a, count_b = np.diff(ptr_a), np.diff(ptr_b)
    changed: np.ndarray = count_a != count_b
    group = np.repeat(np.arange(len(count_a)), count_a)
    row_a = np.arange(ptr_a[0], ptr_a[-1])
    ok = ~changed[group]
    row_a, group = row_a[ok], group[ok]
    row_b = ptr_b[group] + (row_a - ptr_a[group])
    differ = np.zeros(len(row_a), dtype=bool)
    for x, y in zip(cols_a, cols_b, strict=True):
        differ |= x[row_a] != y[row_b]
    changed[group[differ]] = True
    return changed


def _use_phone(ix: CodedGraph) -> np.ndarray:
    return np.repeat(np.arange(len(ix.phones)), np.diff(ix.u_ptr))


def _use_roles(ix: CodedGraph) -> np.ndarray:
    """Per use, the roles its loan names its number in, as one bit mask: the uses of a
    number are sorted by loan, and one loan's roles for it come in the data's order
    (applicant first, then the links as listed), which two folders with the same facts
    may list differently: the mask compares them whatever that order."""
    loan = ix.u_loan[ix.u_ptr[0] :]
    key = _use_phone(ix) * (len(ix.loans) + 1) + loan
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    run = np.cumsum(start) - 1
    mask = np.bincount(run, weights=np.left_shift(1, ix.u_role[ix.u_ptr[0] :]))
    out = np.zeros(len(ix.u_loan), dtype=np.int64)
    out[ix.u_ptr[0] :] = mask[run].astype(np.int64)
    return out


def index_changes(a: CodedGraph, b: CodedGraph) -> FactChanges:
    """:func:`fact_changes` from the two indexes, on their integer codes (no text): the same
    seeds or more, much faster; the text comparison when the two do not code people, loans,
    numbers and entries alike (an id added or removed)."""
    if not _same_universe(a, b) or a.cols.loan_record is not None:
        return fact_changes(a.cols, b.cols)
    if dict(a.cols.records) != dict(b.cols.records) or dict(a.cols.matches) != dict(b.cols.matches):
        return fact_changes(a.cols, b.cols)
    phone = _group_changed(
        a.p_ptr,
        b.p_ptr,
        [a.p_owner, a.p_since, a.p_until, a.p_verified],
        [b.p_owner, b.p_since, b.p_until, b.p_verified],
    )
    period_owners = [ix.p_owner[phone[ix.p_phone]] for ix in (a, b)]
    phone |= _group_changed(
        a.u_ptr,
        b.u_ptr,
        [a.u_loan, _use_roles(a), a.u_owner, a.u_sms],
        [b.u_loan, _use_roles(b), b.u_owner, b.u_sms],
    )
    loan = np.zeros(len(a.loans), dtype=bool)
    for name in (
        "loan_platform",
        "loan_borrower",
        "loan_applied",
        "loan_known",
        "loan_origin",
        "loan_verified",
        "loan_match",
    ):
        loan |= getattr(a, name) != getattr(b, name)
    for ix in (a, b):  # the numbers a changed loan names
        phone[_use_phone(ix)[loan[ix.u_loan[ix.u_ptr[0] :]]]] = True
    persons = np.concatenate([*period_owners, a.loan_borrower[loan], b.loan_borrower[loan]])
    persons = np.unique(persons[persons >= 0])
    phones = np.nonzero(phone)[0]
    ta, tb = _tables(a.cols), _tables(b.cols)
    ea, eb = (
        [
            string_array(x).take(pa.array(ix.codes.entry_order))
            if not isinstance(x, np.ndarray)
            else x[ix.codes.entry_order]
            for x in t["entries"]
        ]
        for ix, t in ((a, ta), (b, tb))
    )
    entry = np.zeros(len(ea[0]), dtype=bool)
    for x, y in zip(ea, eb, strict=True):
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            entry |= x != y
        else:
            same = pc.equal(_text(x), _text(y)).to_numpy(zero_copy_only=False)
            entry |= ~np.asarray(same, dtype=bool)
    share = _diff(ta["sharing"], tb["sharing"])
    return FactChanges(
        persons=b.persons.take(pa.array(persons, pa.int64())),
        phones=pa.array([b.phones.text(int(c)) for c in phones], pa.string()),
        loans=b.loans.take(pa.array(np.nonzero(loan)[0], pa.int64())),
        entries=b.entry_ids_by_code().filter(pa.array(entry)),
        platforms=_forward(a.cols, b.cols, _nonempty(_both(a.cols, b.cols, "share_to", share))),
        codes=(persons, phones, np.nonzero(loan)[0]),
    )


def _changes(before: Columns | CodedGraph, ix: CodedGraph) -> FactChanges:
    if isinstance(before, CodedGraph):
        return index_changes(before, ix)
    return fact_changes(before, ix.cols)


def entries_to_reaudit(before: Columns | CodedGraph, ix: CodedGraph) -> np.ndarray:
    """The entries of ``ix`` (the new version; indices in entry_id order) whose answer can
    differ from ``before``'s (its columns, or its index: faster): every entry when the
    difference cannot be followed. Any engine may re-score them (the per-entry search on
    a backend of the new version, or the pass: :func:`reaudit`)."""
    changes = _changes(before, ix)
    if changes.everything:
        return np.arange(len(ix.codes.entry_order), dtype=np.int64)
    return affected_entries(ix, changes)


def reaudit(before: Columns | CodedGraph, ix: CodedGraph) -> tuple[np.ndarray, AuditResult]:
    """The entries of ``ix`` (the new version) to re-score against ``before`` (its columns or
    its index: faster), as indices in entry_id order, and their result (with the copy
    sources they need): every other entry's row is the one ``before``'s audit gave (tests
    hold this to a full pass)."""
    changes = _changes(before, ix)
    if changes.everything:
        return np.arange(len(ix.codes.entry_order), dtype=np.int64), audit_pass(ix)
    rows = affected_entries(ix, changes)
    return rows, audit_entries(ix, rows)
