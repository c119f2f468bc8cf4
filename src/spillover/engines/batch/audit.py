"""The batch pass: every entry's best path in a few vectorized layers (:class:`Index`).

The same layered search as :func:`spillover.engines.ties.find_ties`, for all entries at
once, as named steps over a small state (:class:`_PassState`):

* :func:`_entries`: the entries in entry_id order, their subjects coded;
* :func:`_start`: the person subjects on the first frontier, seen;
* per layer (one loan deeper each), :func:`_person_ties` and, on the first,
  :func:`_phone_ties`: the ties to loans the frontier offers (candidate labels);
* :func:`_best_per_loan`: one label per entry and loan, less what an earlier layer beats;
* :func:`_record_origins`: each entry's best origin so far;
* :func:`_to_borrowers`: the next frontier, from each loan to its borrower;
* :func:`_result` and :func:`_reason_codes`: the best paths read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pyarrow as pa

from ...facts import csr
from ...facts.model import SubjectKind
from ...facts.phonecodes import codes_in, string_array
from .index import CodedGraph
from .reach import Reach, entry_reach
from .result import AuditResult, path_codes
from .tables import LAYER_BITS, LOAN_KIND, MATCH_KEYS, OWNS_UNVERIFIED, SUBJECT_PHONE_KIND

__all__ = [
    "Index",
    "LayerLabels",
    "OriginLabels",
    "Progress",
    "audit_entries",
    "audit_pass",
    "origins_pass",
]

Progress = Callable[[str, int, int], None]

#: the dtype of the entry, loan and label codes a pass's labels carry (narrower than the
#: index's int64 codes; checked against the graph's sizes in :func:`_start`)
LABEL_CODE = np.int32
#: the dtype of a label's summary (tie kind code * 2 + owner unverified, < 2**LAYER_BITS)
SUMMARY_CODE = np.int8 if LAYER_BITS < 8 else np.int16


class Index(CodedGraph):
    """Integer-coded ties of a graph, ready for :meth:`audit` passes."""

    def audit(self, progress: Progress | None = None) -> AuditResult:
        """Best path of every entry, as the core would explain it (without diagnostics)
        (:func:`audit_pass`)."""
        return audit_pass(self, progress)


def audit_pass(ix: CodedGraph, progress: Progress | None = None) -> AuditResult:
    """Best path of every entry, as the core would explain it (without diagnostics).

    The same layered search as :func:`spillover.engines.ties.find_ties`, for all entries
    at once: :func:`_start` (the subjects), then per layer :func:`_person_ties` and
    :func:`_phone_ties` (candidate labels), :func:`_best_per_loan` (one label per entry
    and loan), :func:`_record_origins` and :func:`_to_borrowers` (the next frontier);
    :func:`_result` reads the best paths back.
    """
    state, reach = _layers(ix, _entries(ix), progress, keep=0)
    return _result(ix, state, reach)


def audit_entries(
    ix: CodedGraph, rows: np.ndarray, progress: Progress | None = None
) -> AuditResult:
    """The pass of :func:`audit_pass` restricted to some entries: ``rows`` (indices in
    entry_id order), and the entries their copy chains were copied from (reach labels a
    copy from its source's). Each entry's search is its own, so every row of the result
    equals that entry's row of the whole pass (the re-audit of only what changed:
    :mod:`.incremental`)."""
    full = _entries(ix)
    n = len(full.ids)
    keep = np.zeros(n, dtype=bool)
    keep[np.asarray(rows, dtype=np.int64)] = True
    step = np.nonzero(keep)[0]
    while len(step):  # close over the copy sources
        src = full.copied[step]
        src = src[src >= 0]
        step = np.unique(src[~keep[src]])
        keep[step] = True
    sel = np.nonzero(keep)[0]
    place = np.full(n, -1, dtype=np.int64)
    place[sel] = np.arange(len(sel))
    take = pa.array(sel)
    phone = full.subject_phone[sel]
    sub = _Entries(
        ids=full.ids.take(take),
        platform=full.platform[sel],
        kind=full.kind.take(take),
        subject=full.subject.take(take),
        listed=full.listed[sel],
        copied=np.where(full.copied[sel] >= 0, place[np.maximum(full.copied[sel], 0)], -1),
        subject_person=full.subject_person[sel],
        subject_phone=phone,
        phone_rows=np.nonzero(phone >= 0)[0],
        owner_now=full.owner_now[sel],
        match=full.match[sel],
        start_factor=full.start_factor[sel],
    )
    state, reach = _layers(ix, sub, progress, keep=0)
    return _result(ix, state, reach)


def _layers(
    ix: CodedGraph, entries: _Entries, progress: Progress | None, keep: int
) -> tuple[_PassState, Reach]:
    """The layers of a pass: ``keep`` 0 for each entry's best path alone (a label must
    beat the entry's best origin so far), else every origin loan's best label that can
    be among the entry's ``keep`` best paths (-1: every origin loan)."""
    n = len(entries.ids)
    if progress:
        progress("reach", 0, n)
    reach = entry_reach(ix, entries.platform, entries.listed, entries.copied)
    if progress:
        progress("reach", n, n)
    state = _start(ix, entries, keep)
    max_loans = ix.policy.max_loans
    for depth in range(1, max_loans + 1):
        candidates = _person_ties(ix, state, depth, reach)
        if depth == 1:
            candidates += _phone_ties(ix, state)
        if not candidates:
            break
        labels = _best_per_loan(state, candidates)
        state.layers.append(labels)
        _record_origins(ix, state, labels, depth, reach)
        if progress:
            progress("layers", depth, max_loans)
        if depth == max_loans:
            break
        _to_borrowers(ix, state, labels)
        if not keep:  # (the keys ranked the next frontier; only the paths read them later)
            labels.key = np.empty(0, dtype=labels.key.dtype)
    return state, reach


# -- the state of one pass ----------------------------------------------------------------


@dataclass(frozen=True)
class _Entries:
    """The entries of a pass, in entry_id order, with their subjects as codes."""

    ids: pa.Array
    platform: np.ndarray  # platform code
    kind: pa.Array  # "person" | "phone"
    subject: pa.Array
    listed: np.ndarray  # ordinal day
    copied: np.ndarray  # entry index of copied_from, -1 = none
    subject_person: np.ndarray  # person code, -1 for a phone subject
    subject_phone: np.ndarray  # phone code, -1 for a person subject
    phone_rows: np.ndarray  # the entries whose subject is a phone
    owner_now: np.ndarray  # person code owning the subject phone on the listing day, -1
    #: a record subject's match (index in MATCH_KEYS, -1: none) and its factor (1.0: none)
    match: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start_factor: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _Best:
    """Each entry's best origin so far (the arrays are updated in place)."""

    responsibility: np.ndarray  # -1 while none
    depth: np.ndarray  # loans on the path, 0 while none
    loan: np.ndarray  # loan code, -1 while none
    label: np.ndarray  # index of its label in layer ``depth`` (layers[depth - 1])

    @classmethod
    def empty(cls, n: int) -> _Best:
        return cls(
            np.full(n, -1.0),
            np.zeros(n, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
        )


@dataclass(frozen=True)
class _Frontier:
    """Person labels a layer starts from: entry, person, responsibility, rank of the key."""

    entry: np.ndarray
    person: np.ndarray
    responsibility: np.ndarray
    rank: np.ndarray  # dense rank of the label's key among the frontier's labels


@dataclass(frozen=True)
class _Candidates:
    """Ties to loans offered at one layer, before the best per (entry, loan) is chosen.

    ``key`` orders equal responsibilities like the core's string keys; ``parent``
    is the frontier label the tie extends (-1 from a phone subject); ``summary`` is
    ``tie kind code * 2 + owner unverified`` (for the reason codes). Entry, loan and
    parent are int32 (:data:`LABEL_CODE`; the pass widens them where it multiplies them
    into keys, :meth:`_PassState.node_key`), the summary int8.
    """

    entry: np.ndarray
    loan: np.ndarray
    responsibility: np.ndarray
    key: np.ndarray
    parent: np.ndarray
    summary: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Candidates]) -> _Candidates:
        if len(parts) == 1:
            return parts[0]
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("entry", "loan", "responsibility", "key", "parent", "summary")
            )
        )


@dataclass
class _Layer:
    """The labels kept at one layer (one per entry and loan), and which of them went
    on to their loan's borrower (``to_person``: label index of each next frontier label)."""

    entry: np.ndarray
    loan: np.ndarray
    responsibility: np.ndarray
    key: np.ndarray
    parent: np.ndarray
    summary: np.ndarray
    to_person: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class _PassState:
    """What one pass carries from layer to layer."""

    entries: _Entries
    n_nodes: int  # node codes: loans, then people, then phones
    best: _Best
    frontier: _Frontier | None = None
    layers: list[_Layer] = field(default_factory=list)
    #: (entry, node) keys reached at earlier steps with their best responsibility, one
    #: chunk per step, sorted by key; each made again when asked (:func:`_label_keys`,
    #: :func:`_borrower_keys`) from the labels the pass keeps anyway, not held twice
    seen: list[Callable[[], tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    #: per entry, the responsibility a label must beat to matter (the best origin's so
    #: far when ``keep`` is 0; else the ``keep``-th best origin loan's, -1 while fewer)
    bar: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: 0: the best path alone; else how many paths per entry matter (-1: all)
    keep: int = 0
    #: with ``keep``: the origin labels of every layer, (depth, label indices)
    found: list[tuple[int, np.ndarray]] = field(default_factory=list)
    #: the person ties split for a pass that cuts each label's own loans (None: every
    #: origin loan kept, ``keep`` -1)
    ties: _TieRows | None = None

    def node_key(self, entry: np.ndarray, node: np.ndarray) -> np.ndarray:
        key: np.ndarray = entry.astype(np.int64) * self.n_nodes + node
        return key

    def seen_responsibility(self, keys: np.ndarray) -> np.ndarray:
        """The best responsibility each key was reached with before, -1 when never."""
        out = np.full(len(keys), -1.0)
        for chunk in self.seen:
            ks, rs = chunk()
            if len(ks):
                pos = np.minimum(np.searchsorted(ks, keys), len(ks) - 1)
                out = np.where(ks[pos] == keys, np.maximum(out, rs[pos]), out)
        return out

    def remember(self, keys: np.ndarray, responsibility: np.ndarray) -> None:
        """Keys reached (held: the subjects, before any layer)."""
        o = np.argsort(keys, kind="stable")
        ks, rs = keys[o], responsibility[o]
        self.seen.append(lambda: (ks, rs))


@dataclass(frozen=True)
class _TieRows:
    """The index's person ties (positions in its ``t_*`` columns) in two CSRs by person:
    the ties through a phone (``phone_ptr``, ``phone_tie``), and the own loans
    (``own_ptr``, ``own_tie``) in the order the pass ranks them as origins: their first
    factor (a listed record's match), highest first, then loan code."""

    phone_ptr: np.ndarray
    phone_tie: np.ndarray
    own_ptr: np.ndarray
    own_tie: np.ndarray

    @classmethod
    def of(cls, ix: CodedGraph) -> _TieRows:
        n = len(ix.persons)
        person = np.full(len(ix.t_loan), -1, dtype=np.int64)
        first = int(ix.t_ptr[0])  # (ties of no person sort first)
        person[first:] = np.repeat(np.arange(n), np.diff(ix.t_ptr))
        own = ix.t_kind < 0
        phone_tie = np.flatnonzero(~own & (person >= 0))
        own_tie = np.flatnonzero(own & (person >= 0))  # (by person, then loan)
        f1 = ix.t_f1[own_tie]
        if len(f1) and (f1 != f1[0]).any():
            own_tie = own_tie[np.lexsort((ix.t_loan[own_tie], -f1, person[own_tie]))]
        return cls(csr.ptr(person[phone_tie], n), phone_tie, csr.ptr(person[own_tie], n), own_tie)


def _label_keys(n_nodes: int, layer: _Layer) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """The (entry, loan) keys of a layer's labels and their responsibilities, made when
    asked (the layer keeps its labels in the order of these keys: :func:`_best_per_loan`)."""
    return lambda: (layer.entry.astype(np.int64) * n_nodes + layer.loan, layer.responsibility)


def _borrower_keys(
    ix: CodedGraph, n_nodes: int, layer: _Layer
) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """The (entry, borrower) keys and responsibilities of the frontier labels a layer's
    labels went on to (``to_person``, in the order of these keys: :func:`_to_borrowers`),
    made again when asked, as :func:`_to_borrowers` made them."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        at = layer.to_person
        loan = layer.loan[at]
        person = ix.person_base + ix.loan_borrower[loan]
        key = layer.entry[at].astype(np.int64) * n_nodes + person
        return key, _across_chain(ix, layer.responsibility[at], loan)

    return make


def _across_chain(ix: CodedGraph, responsibility: np.ndarray, loan: np.ndarray) -> np.ndarray:
    """The responsibility of labels on ``loan`` carried on to its borrower: loan
    -BORROWED_BY-> borrower, through the loan's record's match step if any."""
    out: np.ndarray = responsibility * ix.chain_factor * ix.loan_match_f[loan]
    return out


# -- the pass, step by step ------------------------------------------------------------


def _entries(ix: CodedGraph) -> _Entries:
    """The entries in entry_id order, their subjects coded, the phone subjects' owners."""
    cols, codes = ix.cols, ix.codes
    order = codes.entry_order
    eorder = pa.array(order)
    ids = string_array(cols.entry_ids).take(eorder)
    kind = string_array(cols.entry_kind).take(eorder)
    subject = string_array(cols.entry_subject).take(eorder)
    listed = np.asarray(cols.entry_listed, dtype=np.int64)[order]
    person = csr.recode(ix.person_rank, codes.entry_person[order])
    phone = np.asarray(codes.entry_phone, dtype=np.int64)[order]
    owner_now = np.full(len(ids), -1, dtype=np.int64)
    phone_rows = np.nonzero(phone >= 0)[0]
    if len(phone_rows):
        period = ix.period_at(phone[phone_rows], listed[phone_rows])
        owner_now[phone_rows] = np.append(ix.p_owner, -1)[period]
    # a record subject starts from its person, through the match step
    match = np.full(len(ids), -1, dtype=np.int64)
    start_factor = np.ones(len(ids))
    if cols.matches:
        kinds, subjects = kind.to_pylist(), subject.to_pylist()
        rows = [i for i, k in enumerate(kinds) if k == SubjectKind.RECORD.value]
        found = [(i, cols.matches[subjects[i]]) for i in rows if subjects[i] in cols.matches]
        if found:
            at = np.array([i for i, _ in found], dtype=np.int64)
            person[at] = codes_in(ix.persons, pa.array([m.person_id for _, m in found]))
            match[at] = [MATCH_KEYS.index(m.matched_by) for _, m in found]
            start_factor[at] = ix.match_factor[match[at]]
    return _Entries(
        ids=ids,
        platform=csr.recode(ix.platform_rank, codes.entry_platform[order]),
        kind=kind,
        subject=subject,
        listed=listed,
        copied=csr.recode(csr.rank(order), codes.entry_copied_from[order]),
        subject_person=person,
        subject_phone=phone,
        phone_rows=phone_rows,
        owner_now=owner_now,
        match=match,
        start_factor=start_factor,
    )


def _start(ix: CodedGraph, entries: _Entries, keep: int = 0) -> _PassState:
    """The search before its first layer: person subjects on the frontier, seen."""
    n = len(entries.ids)
    best = _Best.empty(n)
    state = _PassState(
        entries=entries,
        n_nodes=ix.phone_base + len(ix.phones) + 1,
        best=best,
        bar=best.responsibility if keep == 0 else np.full(n, -1.0),
        keep=keep,
        ties=_TieRows.of(ix) if keep >= 0 else None,
    )
    if max(n, len(ix.loans)) > np.iinfo(LABEL_CODE).max:
        raise ValueError("too many entries or loans for the pass's label codes")
    rows = np.nonzero(entries.subject_person >= 0)[0].astype(LABEL_CODE)
    person = entries.subject_person[rows]
    start = entries.start_factor[rows]
    state.remember(state.node_key(rows, ix.person_base + person), start)
    state.frontier = _Frontier(
        entry=rows,
        person=person,
        responsibility=start,
        rank=np.zeros(len(rows), dtype=np.int64),
    )
    return state


#: at most about this many ties gathered at once by :func:`_person_ties` (a frontier
#: label's ties are never split)
GATHER_ROWS = 1 << 22


def _person_ties(ix: CodedGraph, state: _PassState, depth: int, reach: Reach) -> list[_Candidates]:
    """Ties from the frontier people to loans: their own loans, and loans naming a
    phone they owned on the application day; gathered a part of the frontier at a time
    (:data:`GATHER_ROWS`). Of a label's own loans only its best origins are taken
    (:func:`_own_origins`): n entries reaching one borrower of n loans gathered n x n
    ties (a number reassigned 16,000 times, its owners' listings simulated: 83 million
    rows, a MemoryError under 3 GB; its owners listed, the every-path pass of the
    write-back: 128 million rows, 10 GB)."""
    fr = state.frontier
    if fr is None or not len(fr.entry):
        return []
    if state.ties is None:
        counts = ix.t_ptr[fr.person + 1] - ix.t_ptr[fr.person]
    else:
        rows = state.ties
        counts = rows.phone_ptr[fr.person + 1] - rows.phone_ptr[fr.person]
        counts += np.minimum(rows.own_ptr[fr.person + 1] - rows.own_ptr[fr.person], 1)
    part = (np.cumsum(counts) - counts) // GATHER_ROWS
    bounds = [*np.flatnonzero(np.diff(part, prepend=-1)).tolist(), len(fr.entry)]
    out = []
    for lo, hi in pairwise(bounds):
        found = _person_ties_of(ix, state, depth, reach, lo, hi)
        if found is not None:
            out.append(found)
    return out


def _person_ties_of(
    ix: CodedGraph, state: _PassState, depth: int, reach: Reach, lo: int, hi: int
) -> _Candidates | None:
    """The ties of the frontier labels ``lo``..``hi`` (:func:`_person_ties`)."""
    fr = state.frontier
    assert fr is not None
    if state.ties is None:
        label, tie = csr.gather(ix.t_ptr, fr.person[lo:hi])
    else:
        label, tie = _cut_ties(ix, state, depth, reach, lo, hi)
    label += lo
    entry = fr.entry[label]
    loan = ix.t_loan[tie]
    # in time (filtered first, before the factors are computed: less memory at once)
    keep = ix.loan_applied[loan] <= state.entries.listed[entry]
    label, tie, entry, loan = label[keep], tie[keep], entry[keep], loan[keep]
    own_kind = LOAN_KIND[int(depth == 1)]  # only the subject's own loan is OWN_DEFAULT
    kind = np.where(ix.t_kind[tie] >= 0, ix.t_kind[tie], own_kind)
    responsibility = fr.responsibility[label] * ix.t_f1[tie] * ix.kind_factor[kind]
    # and able to matter (beat the entry's best origin so far, or its keep-th: every
    # later factor is <= 1 and a tie with more loans loses)
    keep = responsibility > state.bar[entry]
    label, tie, entry, loan = label[keep], tie[keep], entry[keep], loan[keep]
    if not len(label):
        return None
    kind = kind[keep]
    n_phone_keys = len(ix.phones) + 1  # phone key: phone code + 1 (0 = own loan)
    return _Candidates(
        entry=entry.astype(LABEL_CODE, copy=False),
        loan=loan.astype(LABEL_CODE),
        responsibility=responsibility[keep],
        key=(fr.rank[label] * n_phone_keys + ix.t_phone[tie] + 1) * 8 + ix.t_role[tie],
        parent=label.astype(LABEL_CODE),
        summary=(kind * 2 + (ix.t_owns[tie] == OWNS_UNVERIFIED)).astype(SUMMARY_CODE),
    )


def _cut_ties(
    ix: CodedGraph, state: _PassState, depth: int, reach: Reach, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ties of the frontier labels ``lo``..``hi`` a pass that cuts own loans looks
    at, (label - ``lo``, tie): every tie through a phone (as :func:`csr.gather` gives
    them), then of each label's own loans its best origins (:func:`_own_origins`). (The
    order of a label's ties decides nothing: the pass picks per (entry, loan) by
    responsibility and key, and an own loan's key is none of a phone tie's.)"""
    fr, rows = state.frontier, state.ties
    assert fr is not None and rows is not None
    label, at = csr.gather(rows.phone_ptr, fr.person[lo:hi])
    own_label, own_tie = _own_origins(ix, state, depth, reach, lo, hi)
    return np.concatenate([label, own_label]), np.concatenate([rows.phone_tie[at], own_tie])


def _own_origins(
    ix: CodedGraph, state: _PassState, depth: int, reach: Reach, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Of each frontier label's (``lo``..``hi``) own loans, the ``keep`` best origins
    (one in a pass for the best path alone) that reach the listing in time and can
    matter (beat the entry's bar): (label - ``lo``, tie). Its person's own loans are
    read in rank order (:class:`_TieRows`: responsibility, then loan id, as
    :func:`_record_origins` and :func:`origins_pass` rank them), a window at a time, until
    it has them or none is left that beats the bar.

    A label's own loan goes on to its borrower, the label's own person, reached already
    with at least its responsibility: it can only be an origin. Of a label's own
    origins, one past its ``keep`` best is outranked by those (distinct loans of the same
    layer, whose best labels are at least as good), so it cannot be among the entry's
    ``keep`` best paths. (A later layer's tie to the same loan, which the dropped label
    would have beaten, is outranked by them as well, and its borrower is reached
    already.) Gathering every own loan of every label before cutting cost entries x
    loans where many entries reach one borrower of many loans."""
    fr, rows = state.frontier, state.ties
    assert fr is not None and rows is not None
    n = hi - lo
    person, entry_of = fr.person[lo:hi], fr.entry[lo:hi]
    start = rows.own_ptr[person].copy()
    end = rows.own_ptr[person + 1]
    held = fr.responsibility[lo:hi]
    step = ix.kind_factor[LOAN_KIND[int(depth == 1)]]  # (the loan step, as the pass's)
    need = np.full(n, max(state.keep, 1), dtype=np.int64)
    bar = state.bar[entry_of]
    labels, ties = [], []
    active = np.flatnonzero(end > start)
    width = int(need[0]) if n else 1
    while len(active):
        span = np.minimum(end[active] - start[active], width)
        at, pos = csr.ranges(start[active], span)
        label = active[at]
        tie = rows.own_tie[pos]
        loan, entry = ix.t_loan[tie], entry_of[label]
        ok = ix.loan_applied[loan] <= state.entries.listed[entry]
        ok &= ix.loan_origin[loan]
        ok &= ix.loan_known[loan] <= reach.deadline[entry, reach.column[ix.loan_platform[loan]]]
        hit = np.flatnonzero(ok)
        hit = hit[_ranks(label[hit]) <= need[label[hit]]]
        labels.append(label[hit])
        ties.append(tie[hit])
        need -= np.bincount(label[hit], minlength=n)
        start[active] += span
        active = active[(need[active] > 0) & (start[active] < end[active])]
        # (in rank order: once one cannot beat the bar, none after it can)
        nxt = rows.own_tie[start[active]]
        active = active[held[active] * ix.t_f1[nxt] * step > bar[active]]
        width = max(1, min(width * 2, GATHER_ROWS // max(len(active), 1)))
    if not labels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(labels), np.concatenate(ties)


def _phone_ties(ix: CodedGraph, state: _PassState) -> list[_Candidates]:
    """Ties from phone subjects to the loans naming them (first layer only)."""
    entries = state.entries
    rows = entries.phone_rows
    if not len(rows):
        return []
    label, use = csr.gather(ix.u_ptr, entries.subject_phone[rows])
    entry = rows[label]
    loan = ix.u_loan[use]
    keep = ix.loan_applied[loan] <= entries.listed[entry]
    use, entry, loan = use[keep], entry[keep], loan[keep]
    owner = ix.u_owner[use]
    borrower_owned = (owner >= 0) & (owner == ix.loan_borrower[loan])
    now = entries.owner_now[entry]
    owner_changed = (now >= 0) & (now != owner)
    kind = SUBJECT_PHONE_KIND[
        ix.u_role[use],
        ix.u_sms[use],
        borrower_owned.astype(np.int64),
        owner_changed.astype(np.int64),
    ]
    return [
        _Candidates(
            entry=entry.astype(LABEL_CODE),
            loan=loan.astype(LABEL_CODE),
            responsibility=1.0 * ix.kind_factor[kind],
            key=(entries.subject_phone[entry] + 1) * 8 + ix.u_role[use],
            parent=np.full(len(entry), -1, dtype=LABEL_CODE),
            summary=(kind * 2).astype(SUMMARY_CODE),
        )
    ]


def _first_per_group(
    group: np.ndarray, responsibility: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct group (ascending): the index of its best candidate (highest
    responsibility, then lowest key, then first), and the group.

    The same as the first per group of ``np.lexsort((key, -responsibility, group))``,
    with one stable sort by group (the candidates come nearly in group order, which
    the stable sort runs through) and the three-key sort only over groups of two or more.
    """
    o = np.argsort(group, kind="stable")
    g = group[o]
    first = np.ones(len(o), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    starts = np.flatnonzero(first)
    best = o[starts]
    later = np.flatnonzero(~first)
    if len(later):
        shared = np.zeros(len(o), dtype=bool)
        shared[later] = True
        shared[later - 1] = True  # (the first of each group of two or more)
        pos = np.flatnonzero(shared)
        sub = o[pos]
        so = np.lexsort((key[sub], -responsibility[sub], g[pos]))
        sorted_sub = g[pos][so]
        win = np.ones(len(so), dtype=bool)
        win[1:] = sorted_sub[1:] != sorted_sub[:-1]
        won = so[win]
        best[np.searchsorted(starts, pos[won], side="right") - 1] = sub[won]
    return best, g[starts]


def _best_per_loan(state: _PassState, parts: list[_Candidates]) -> _Layer:
    """The best candidate per (entry, loan) by responsibility then key, less what an
    earlier layer beats (same or better responsibility with fewer loans)."""
    c = _Candidates.concat(parts)
    parts.clear()  # (the caller's list: the parts are freed once concatenated)
    if len(c.entry) > np.iinfo(LABEL_CODE).max:  # label indices (parent, to_person)
        raise ValueError("too many candidate labels for the pass's label codes")
    o, kept = _first_per_group(state.node_key(c.entry, c.loan), c.responsibility, c.key)
    better = state.seen_responsibility(kept) < c.responsibility[o]
    o = o[better]
    del kept, better
    layer = _Layer(
        entry=c.entry[o],
        loan=c.loan[o],
        responsibility=c.responsibility[o],
        key=c.key[o],
        parent=c.parent[o],
        summary=c.summary[o],
    )
    state.seen.append(_label_keys(state.n_nodes, layer))  # (in key order: group order)
    return layer


def _record_origins(
    ix: CodedGraph, state: _PassState, labels: _Layer, depth: int, reach: Reach
) -> None:
    """Keep each entry's best origin: an origin loan of this layer that reaches the
    listing in time and beats the best so far (responsibility, loans, loan id)."""
    plat = ix.loan_platform[labels.loan]
    ok = ix.loan_origin[labels.loan] & (
        ix.loan_known[labels.loan] <= reach.deadline[labels.entry, reach.column[plat]]
    )
    oi = np.nonzero(ok)[0]
    if not len(oi):
        return
    if state.keep:
        _keep_origins(state, labels, depth, oi)
    oi = oi[np.lexsort((labels.loan[oi], -labels.responsibility[oi], labels.entry[oi]))]
    oe, op, ol = labels.entry[oi], labels.responsibility[oi], labels.loan[oi]
    firsts = np.ones(len(oe), dtype=bool)
    firsts[1:] = oe[1:] != oe[:-1]
    oi, oe, op, ol = oi[firsts], oe[firsts], op[firsts], ol[firsts]
    best = state.best
    better = (op > best.responsibility[oe]) | (
        (op == best.responsibility[oe])
        & ((best.depth[oe] > depth) | ((best.depth[oe] == depth) & (ol < best.loan[oe])))
    )
    oi, oe = oi[better], oe[better]
    best.responsibility[oe] = labels.responsibility[oi]
    best.depth[oe] = depth
    best.loan[oe] = labels.loan[oi]
    best.label[oe] = oi


def _to_borrowers(ix: CodedGraph, state: _PassState, labels: _Layer) -> None:
    """The next frontier: from each loan label to the loan's borrower, best per
    (entry, person), with the rank of its key among the new labels."""
    person = ix.loan_borrower[labels.loan]
    responsibility = _across_chain(ix, labels.responsibility, labels.loan)
    group = state.node_key(labels.entry, ix.person_base + person)
    # else nothing further can win
    idx = np.nonzero(responsibility > state.bar[labels.entry])[0]
    idx = idx[state.seen_responsibility(group[idx]) < responsibility[idx]]
    o = idx[np.lexsort((labels.loan[idx], labels.key[idx], -responsibility[idx], group[idx]))]
    first = np.ones(len(o), dtype=bool)
    first[1:] = group[o][1:] != group[o][:-1]
    idx = o[first]  # (in the order of their keys, group)
    # dense rank of the new labels' keys (key of the loan label, then the borrower)
    key, loan, who = labels.key[idx], labels.loan[idx], person[idx]
    ko = np.lexsort((who, loan, key))
    change = np.ones(len(ko), dtype=bool)
    change[1:] = (
        (key[ko][1:] != key[ko][:-1])
        | (loan[ko][1:] != loan[ko][:-1])
        | (who[ko][1:] != who[ko][:-1])
    )
    rank = np.empty(len(ko), dtype=np.int64)
    rank[ko] = np.cumsum(change)
    labels.to_person = idx.astype(LABEL_CODE)
    state.seen.append(_borrower_keys(ix, state.n_nodes, labels))
    state.frontier = _Frontier(
        entry=labels.entry[idx], person=who, responsibility=responsibility[idx], rank=rank
    )


def _result(ix: CodedGraph, state: _PassState, reach: Reach) -> AuditResult:
    entries, best = state.entries, state.best
    found = best.loan >= 0
    origin = np.where(found, best.loan, -1)
    # (the origin's borrower and platform read where there is one: a graph may hold no
    # loan at all, the part of it a few entries reach: engines/around.py)
    borrower = np.full(len(origin), -1, dtype=ix.loan_borrower.dtype)
    borrower[found] = ix.loan_borrower[origin[found]]
    platform = np.full(len(origin), -1, dtype=ix.loan_platform.dtype)
    platform[found] = ix.loan_platform[origin[found]]
    return AuditResult(
        entry_ids=entries.ids,
        platform_ids=ix.platforms.take(pa.array(entries.platform)),
        subject_kinds=entries.kind,
        subjects=entries.subject,
        listed=entries.listed,
        responsibility=np.where(found, best.responsibility, np.nan),
        depth=np.where(found, best.depth, 0),
        origin_loan=origin,
        origin_borrower=borrower,
        origin_platform=platform,
        reason_codes=_reason_codes(ix, state, reach),
        index=ix,
    )


def _reason_codes(ix: CodedGraph, state: _PassState, reach: Reach) -> np.ndarray:
    """Reason codes of every entry's best path, in step order (as the core lists them).

    Each best path is summarised by a small integer signature (its tie kinds per
    layer, and whether it was shared or copied); the text is built once per
    distinct signature (:func:`_signature_codes`), and once per distinct path through a
    platform record's match step (:func:`_matched_codes`).
    """
    best = state.best
    found = best.loan >= 0
    per_layer, layer_match = _layer_summaries(ix, state)
    plat = np.zeros(len(best.loan), dtype=ix.loan_platform.dtype)  # (read where found)
    plat[found] = ix.loan_platform[best.loan[found]]
    rows = np.arange(len(best.loan))
    col = reach.column[plat]
    shared = found & reach.shared[rows, col]
    copied = found & reach.copied[rows, col]
    out = _signature_codes(best.depth, shared, copied, per_layer)
    # paths through a platform record's match step (a record subject, or a loan named
    # by a record): their codes are built per distinct signature with the matches
    touched = found & ((state.entries.match >= 0) | (layer_match >= 0).any(axis=1))
    if touched.any():
        at = np.nonzero(touched)[0]
        out[at] = _matched_codes(
            at, best.depth, shared, copied, state.entries.match, per_layer, layer_match
        )
    return out


def _layer_summaries(ix: CodedGraph, state: _PassState) -> tuple[np.ndarray, np.ndarray]:
    """Per entry and layer (layer 1 first) of its best path: the summary of the layer's
    tie (kind code * 2 + owner unverified), and the record match of the layer's loan
    (index in MATCH_KEYS, -1: none); read back from the best label, layer by layer."""
    best, layers = state.best, state.layers
    n = len(best.loan)
    found = best.loan >= 0
    per_layer = np.zeros((n, len(layers)), dtype=np.int64)
    layer_match = np.full((n, len(layers)), -1, dtype=np.int64)
    layer = np.where(found, best.depth - 1, -1)
    idx = best.label.copy()
    for k in range(len(layers) - 1, -1, -1):
        at = np.nonzero(found & (layer == k))[0]
        if not len(at):
            continue
        per_layer[at, k] = layers[k].summary[idx[at]]
        layer_match[at, k] = ix.loan_match[layers[k].loan[idx[at]]]
        if k > 0:
            parent = layers[k].parent[idx[at]]
            idx[at] = layers[k - 1].to_person[parent]
            layer[at] = k - 1
    return per_layer, layer_match


def _signature_codes(
    depth: np.ndarray, shared: np.ndarray, copied: np.ndarray, per_layer: np.ndarray
) -> np.ndarray:
    """The codes of every path from one integer per path (depth, shared, copied, then each
    layer's summary), built once per distinct signature."""
    n_layers = per_layer.shape[1]
    bits = LAYER_BITS
    if 2 + (max(n_layers, 1)).bit_length() + bits * n_layers > 62:
        raise ValueError("too many layers to summarise paths in 64 bits")
    signature = depth * 4 + shared * 2 + copied
    for k in range(n_layers):
        signature = (signature << bits) + per_layer[:, k]
    distinct, inverse = np.unique(signature, return_inverse=True)
    texts = np.empty(len(distinct), dtype=object)
    for j, sig in enumerate(distinct.tolist()):
        summaries: list[int] = []
        for _ in range(n_layers):
            summaries.insert(0, sig & ((1 << bits) - 1))
            sig >>= bits
        texts[j] = " ".join(path_codes(summaries[: sig // 4], bool(sig & 2), bool(sig & 1)))
    out: np.ndarray = texts[inverse.ravel()]
    return out


def _matched_codes(
    at: np.ndarray,
    depth: np.ndarray,
    shared: np.ndarray,
    copied: np.ndarray,
    entry_match: np.ndarray,
    per_layer: np.ndarray,
    layer_match: np.ndarray,
) -> list[str]:
    """The codes of the paths ``at`` that pass a platform record's match step, built once
    per distinct (signature, matches)."""
    keys: dict[tuple[int, ...], str] = {}
    out: list[str] = []
    for i, d, sh, co, m in zip(
        at.tolist(),
        depth[at].tolist(),
        shared[at].tolist(),
        copied[at].tolist(),
        entry_match[at].tolist(),
        strict=True,
    ):
        key = (d, sh, co, m, *per_layer[i, :d].tolist(), *layer_match[i, :d].tolist())
        if key not in keys:
            keys[key] = " ".join(
                path_codes(
                    per_layer[i, :d].tolist(),
                    bool(sh),
                    bool(co),
                    entry_match=m,
                    loan_matches=layer_match[i, :d].tolist(),
                )
            )
        out.append(keys[key])
    return out


# -- every origin: the paths of every entry ---------------------------------------------


@dataclass(frozen=True)
class LayerLabels:
    """The labels one layer kept (:class:`OriginLabels`): per label its loan code, its key
    (phone code + 1 and role code: ``key // 8 % n_phone_keys - 1``, ``key % 8``), its
    summary (tie kind code * 2 + owner unverified) and the label of the layer before it
    extends (-1 on the first layer)."""

    loan: np.ndarray
    key: np.ndarray
    summary: np.ndarray
    previous: np.ndarray


@dataclass(frozen=True)
class OriginLabels:
    """Every entry's paths, as :func:`spillover.engines.search.explain` ranks them: per
    path (entry index, then rank) its entry, rank (1: the best), origin loan code,
    responsibility (unrounded), loans (``depth``) and label index in layer ``depth``;
    ``layers``: the labels, to read each path's ties back layer by layer. ``entry_ids``,
    ``entry_platform``, ``entry_listed`` and ``entry_copied`` (entry index, -1) describe
    the entries in entry_id order; ``entry_match`` a record subject's match (index in
    MATCH_KEYS, -1) and ``entry_phone`` a phone subject's phone code (-1)."""

    entry: np.ndarray
    rank: np.ndarray
    loan: np.ndarray
    responsibility: np.ndarray
    depth: np.ndarray
    label: np.ndarray
    layers: list[LayerLabels]
    entry_ids: pa.Array
    entry_kind: pa.Array
    entry_subject: pa.Array
    entry_platform: np.ndarray
    entry_listed: np.ndarray
    entry_copied: np.ndarray
    entry_person: np.ndarray
    entry_phone: np.ndarray
    entry_match: np.ndarray


def origins_pass(
    ix: CodedGraph, max_paths: int | None = None, progress: Progress | None = None
) -> OriginLabels:
    """Every entry's best path to each origin loan, the ``max_paths`` best of them (None:
    every one) ranked as :func:`spillover.engines.search.explain` ranks them
    (responsibility, then loans, then origin loan id): the same layered search as
    :func:`audit_pass`, which keeps a label while it can still be among the entry's
    ``max_paths`` best paths (not only while it can beat the best)."""
    keep = -1 if max_paths is None else max_paths
    if keep == 0:
        raise ValueError("max_paths must be at least 1")
    state, _ = _layers(ix, _entries(ix), progress, keep)
    depth_parts, label_parts = [], []
    for d, oi in state.found:
        depth_parts.append(np.full(len(oi), d, dtype=np.int64))
        label_parts.append(oi)
    depth = np.concatenate(depth_parts) if depth_parts else np.zeros(0, dtype=np.int64)
    label = np.concatenate(label_parts) if label_parts else np.zeros(0, dtype=np.int64)
    entry = np.zeros(len(label), dtype=np.int64)
    loan = np.zeros(len(label), dtype=np.int64)
    responsibility = np.zeros(len(label))
    for k in np.unique(depth).tolist():
        at = depth == k
        layer = state.layers[k - 1]
        entry[at] = layer.entry[label[at]]
        loan[at] = layer.loan[label[at]]
        responsibility[at] = layer.responsibility[label[at]]
    # the best label of each (entry, origin loan), then the entry's best ones in order
    o = np.lexsort((loan, depth, -responsibility, entry))
    # a loan's first label in rank order is its best (a later layer's label for the same
    # loan passed the seen check only if strictly better)
    _, first = np.unique(entry[o] * max(len(ix.loans), 1) + loan[o], return_index=True)
    o = o[np.sort(first)]
    rank = _ranks(entry[o])
    if keep > 0:
        o, rank = o[rank <= keep], rank[rank <= keep]
    entries = state.entries
    return OriginLabels(
        entry=entry[o],
        rank=rank,
        loan=loan[o],
        responsibility=responsibility[o],
        depth=depth[o],
        label=label[o],
        layers=_layer_labels(state),
        entry_ids=entries.ids,
        entry_kind=entries.kind,
        entry_subject=entries.subject,
        entry_platform=entries.platform,
        entry_listed=entries.listed,
        entry_copied=entries.copied,
        entry_person=entries.subject_person,
        entry_phone=entries.subject_phone,
        entry_match=entries.match,
    )


def _ranks(entry: np.ndarray) -> np.ndarray:
    """1, 2, ... along each run of equal (sorted) entries."""
    n = len(entry)
    start = np.ones(n, dtype=bool)
    start[1:] = entry[1:] != entry[:-1]
    first_at = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank: np.ndarray = np.arange(n) - first_at + 1
    return rank


def _layer_labels(state: _PassState) -> list[LayerLabels]:
    """Each layer's labels with the label of the layer before that each extends."""
    out = []
    for k, layer in enumerate(state.layers):
        if k == 0:
            previous = np.full(len(layer.loan), -1, dtype=np.int64)
        else:
            before = state.layers[k - 1].to_person
            previous = np.where(layer.parent >= 0, before[np.maximum(layer.parent, 0)], -1)
        out.append(LayerLabels(layer.loan, layer.key, layer.summary, previous))
    return out


def _keep_origins(state: _PassState, labels: _Layer, depth: int, oi: np.ndarray) -> None:
    """Keep the layer's origin labels ``oi``, and raise each entry's bar to the
    responsibility of its ``keep``-th best origin loan so far (a label no better cannot
    be among the entry's ``keep`` best paths, nor can any label it leads to: their
    factors are <= 1 and they hold more loans)."""
    state.found.append((depth, oi))
    if state.keep < 0:
        return
    entry = np.concatenate([state.layers[d - 1].entry[i] for d, i in state.found])
    loan = np.concatenate([state.layers[d - 1].loan[i] for d, i in state.found])
    resp = np.concatenate([state.layers[d - 1].responsibility[i] for d, i in state.found])
    o = np.lexsort((-resp, loan, entry))
    first = np.ones(len(o), dtype=bool)
    first[1:] = (entry[o][1:] != entry[o][:-1]) | (loan[o][1:] != loan[o][:-1])
    o = o[first]
    o = o[np.lexsort((-resp[o], entry[o]))]
    rank = _ranks(entry[o])
    at = o[rank == state.keep]
    state.bar[entry[at]] = np.maximum(state.bar[entry[at]], resp[at])
