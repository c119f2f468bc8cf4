"""Every entry's explanation paths from one batch pass (:func:`every_path`).

:func:`~spillover.engines.batch.audit.origins_pass` keeps, for all entries at once, the
best label per (entry, origin loan) that can be among the entry's ``max_paths`` best
paths; this module reads each kept path back, layer by layer, into the steps
:func:`spillover.engines.search.explain` gives it (the same kinds, factors, codes and
days, made by the same :func:`~spillover.engines.explanation.rule_step`), and adds the
route on to the listing with the per-entry search's own
:func:`~spillover.engines.search.compute_reach` and
:func:`~spillover.engines.search.route_steps` (one reach per distinct copy chain of
platforms and days). So the write-back of every entry's paths costs one pass and the
reading back, not one search per entry; ``explain`` of one entry keeps the per-entry
search. The paths, their ranks and routes are the per-entry search's (a property test
holds the two to each other on random worlds, on every backend).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np

from ...facts.columns import NEVER
from ...facts.model import Entry, Loan, LoanStatus, Sharing, SubjectKind, ref
from ...policy import Policy
from ...rules import (
    CHAIN_STEP,
    NO_PATH,
    TIE_KINDS,
    Verdict,
    match_kind,
    owns_kind,
    reason_codes,
    rounded,
    score,
)
from ..explanation import ExplanationPath, Step, rule_step
from ..search import Reach, compute_reach, route_steps
from .audit import OriginLabels, Progress, origins_pass
from .index import CodedGraph
from .tables import MATCH_KEYS, OWN, ROLE_NAMES

__all__ = ["EntryPaths", "every_path"]


@dataclass(frozen=True, slots=True)
class EntryPaths:
    """One entry's paths, best first, as ``spillover explain`` lists them (without the
    diagnosis of an unexplained entry), and what they score."""

    entry_id: str
    contamination: float
    verdict: Verdict
    reason_codes: tuple[str, ...]
    paths: tuple[ExplanationPath, ...]


def every_path(
    ix: CodedGraph, max_paths: int | None = None, progress: Progress | None = None
) -> Iterator[EntryPaths]:
    """Every entry of the index, in entry_id order, with its ``max_paths`` best paths
    (default the policy's) as :func:`spillover.engines.search.explain` gives them."""
    policy = ix.policy
    limit = max_paths if max_paths is not None else policy.max_paths
    found = origins_pass(ix, limit, progress)
    reader = _Reader(ix, found, policy)
    entry_ids = found.entry_ids.to_pylist()
    bounds = np.searchsorted(found.entry, np.arange(len(entry_ids) + 1))
    for e, entry_id in enumerate(entry_ids):
        first, last = int(bounds[e]), int(bounds[e + 1])
        paths: tuple[ExplanationPath, ...] = ()
        if last > first:
            reach = reader.reach(e)
            paths = tuple(reader.path(p, reach) for p in range(first, last))
        result = score(paths[0].responsibility if paths else None, policy)
        # no diagnosis code, as explain(diagnose=False) and the audit rows
        codes = reason_codes(s.code for s in paths[0].steps) if paths else (NO_PATH,)
        yield EntryPaths(entry_id, result.contamination, result.verdict, codes, paths)


class _Reader:
    """Reads the paths of an :class:`OriginLabels` back into steps (with caches of the
    ids, loans and reaches it needs)."""

    def __init__(self, ix: CodedGraph, found: OriginLabels, policy: Policy) -> None:
        self.ix, self.found, self.policy = ix, found, policy
        self.n_phone_keys = len(ix.phones) + 1
        cols = ix.cols
        self.records: np.ndarray | None = None
        if cols.loan_record is not None:
            self.records = np.asarray(cols.loan_record, dtype=object)[ix.loan_order]
        self.sharing = tuple(
            Sharing(a, b, None if s == NEVER else date.fromordinal(int(s)))
            for a, b, s in zip(
                np.asarray(cols.share_from, dtype=object).tolist(),
                np.asarray(cols.share_to, dtype=object).tolist(),
                np.asarray(cols.share_since).tolist(),
                strict=True,
            )
        )
        #: the agreements' start days, sorted (a listing day's place among them)
        self.starts = sorted({s.since.toordinal() for s in self.sharing if s.since is not None})
        self.statuses = np.asarray(cols.loan_status, dtype=object)[ix.loan_order]
        self.entry_ids = found.entry_ids.to_pylist()
        self.platform_ids = ix.platforms.to_pylist()
        # owner periods of every use tie of every layer (their since: the OWNS step's day)
        self.since: list[np.ndarray] = []
        for layer in found.layers:
            phone = layer.key // 8 % self.n_phone_keys - 1
            at = np.nonzero((phone >= 0) & (layer.key % 8 != OWN))[0]
            since = np.full(len(layer.key), NEVER, dtype=np.int64)
            if len(at):
                period = ix.period_at(phone[at], ix.loan_applied[layer.loan[at]])
                since[at] = np.append(ix.p_since, NEVER)[period]
            self.since.append(since)
        self._loans: dict[int, Loan] = {}
        self._persons: dict[int, str] = {}
        self._reach: dict[tuple[tuple[str, int, bool], ...], Reach] = {}
        self._chains: dict[int, tuple[Entry, ...]] = {}
        self._ties: dict[tuple[int, int, int, int, int, bool], tuple[Step, ...]] = {}
        self._borrowers: dict[int, tuple[Step, ...]] = {}

    # -- names and facts, once each ---------------------------------------------------

    def person(self, code: int) -> str:
        name = self._persons.get(code)
        if name is None:
            name = self._persons[code] = ref("person", self.ix.persons[code].as_py())
        return name

    def loan(self, code: int) -> Loan:
        loan = self._loans.get(code)
        if loan is None:
            ix = self.ix
            record = self.records[code] if self.records is not None else ""
            match = int(ix.loan_match[code])
            loan = Loan(
                loan_id=ix.loans[code].as_py(),
                platform_id=self.platform_ids[int(ix.loan_platform[code])],
                borrower_id=ix.persons[int(ix.loan_borrower[code])].as_py(),
                applied_at=date.fromordinal(int(ix.loan_applied[code])),
                status=LoanStatus(self.statuses[code]),
                status_at=date.fromordinal(int(ix.loan_known[code])),
                borrower_record=record or None,
                matched_by=MATCH_KEYS[match].value if match >= 0 else None,
            )
            self._loans[code] = loan
        return loan

    def chain(self, e: int) -> tuple[Entry, ...]:
        """The entry and those it was copied from, while each copy is in time (as
        :func:`spillover.engines.search.copy_chain` follows them)."""
        chain = self._chains.get(e)
        if chain is None:
            found = self.found
            rows, seen, current = [e], {e}, e
            while True:
                parent = int(found.entry_copied[current])
                if parent < 0 or parent in seen:
                    break
                if found.entry_listed[parent] > found.entry_listed[current]:
                    break
                rows.append(parent)
                seen.add(parent)
                current = parent
            chain = self._chains[e] = tuple(
                Entry(
                    self.entry_ids[i],
                    self.platform_ids[int(found.entry_platform[i])],
                    SubjectKind.PERSON,
                    "",
                    date.fromordinal(int(found.entry_listed[i])),
                )
                for i in rows
            )
        return chain

    def reach(self, e: int) -> Reach:
        """The reach of entry ``e``'s listing for its routes (``deadline`` left empty),
        computed once per chain of the same shape: its platforms, and its days as the
        search compares them (with the agreements' start days, and with each other)."""
        chain = self.chain(e)
        key = tuple(
            (
                x.platform_id,
                bisect.bisect_right(self.starts, x.listed_at.toordinal()),
                k > 0 and x.listed_at == chain[k - 1].listed_at,
            )
            for k, x in enumerate(chain)
        )
        known = self._reach.get(key)
        if known is None:
            known = self._reach[key] = compute_reach(chain, self.sharing)
        return Reach({}, known.next_hop, known.target, known.since, chain)

    # -- one path -----------------------------------------------------------------------

    def path(self, p: int, reach: Reach) -> ExplanationPath:
        """Path ``p`` (its index in the :class:`OriginLabels`) as explain gives it, on to
        the listing along ``reach`` (its entry's)."""
        found, ix, policy = self.found, self.ix, self.policy
        e, depth = int(found.entry[p]), int(found.depth[p])
        labels = [int(found.label[p])]
        for k in range(depth - 1, 0, -1):
            labels.append(int(found.layers[k].previous[labels[-1]]))
        labels.reverse()
        steps: list[Step] = []
        person = int(found.entry_person[e])
        match = int(found.entry_match[e])
        if match >= 0:  # a listed record, through its match to its person
            record = ref(SubjectKind.RECORD.value, found.entry_subject[e].as_py())
            steps.append(
                rule_step(match_kind(MATCH_KEYS[match]), record, self.person(person), None, policy)
            )
        loan = -1
        for k, i in enumerate(labels):
            if k:
                person = int(ix.loan_borrower[loan])
                chain = self._borrowers.get(loan)
                if chain is None:
                    chain = self._borrowers[loan] = self.to_borrower(loan)
                steps.extend(chain)
            loan = int(found.layers[k].loan[i])
            layer = found.layers[k]
            key = (
                person,
                loan,
                int(layer.key[i]) % (8 * self.n_phone_keys),
                int(layer.summary[i]),
                int(self.since[k][i]),
                k == 0 and int(found.entry_phone[e]) >= 0,
            )
            tie = self._ties.get(key)
            if tie is None:
                tie = self._ties[key] = self.tie(k, i, person, e)
            steps.extend(tie)
        origin = self.loan(loan)
        steps.extend(route_steps(origin, reach, False))
        return ExplanationPath(origin, rounded(float(found.responsibility[p])), depth, tuple(steps))

    def to_borrower(self, code: int) -> tuple[Step, ...]:
        """From a loan to its borrower (through the record it names them by, if any)."""
        ix, policy = self.ix, self.policy
        node = ref("loan", self.loan(code).loan_id)
        borrower = self.person(int(ix.loan_borrower[code]))
        match = int(ix.loan_match[code])
        if match < 0:
            return (rule_step(CHAIN_STEP, node, borrower, None, policy),)
        assert self.records is not None  # a loan's match comes from its record
        record = ref(SubjectKind.RECORD.value, self.records[code])
        return (
            rule_step(CHAIN_STEP, node, record, None, policy),
            rule_step(match_kind(MATCH_KEYS[match]), record, borrower, None, policy),
        )

    def tie(self, k: int, i: int, person: int, e: int) -> tuple[Step, ...]:
        """The steps of label ``i`` of layer ``k`` (0 first), from ``person`` (-1: the
        entry's phone subject) to the label's loan."""
        ix, policy, layer = self.ix, self.policy, self.found.layers[k]
        code = int(layer.loan[i])
        loan = self.loan(code)
        key, summary = int(layer.key[i]), int(layer.summary[i])
        kind = TIE_KINDS[summary // 2]
        role = key % 8
        loan_node = ref("loan", loan.loan_id)
        if role == OWN:
            owner = self.person(person)
            if loan.borrower_record is None:
                return (rule_step(kind, owner, loan_node, loan.applied_at, policy),)
            record = ref(SubjectKind.RECORD.value, loan.borrower_record)
            return (
                rule_step(match_kind(loan.matched_by or ""), owner, record, None, policy),
                rule_step(kind, record, loan_node, loan.applied_at, policy),
            )
        phone = ref("phone", ix.phones.text(key // 8 % self.n_phone_keys - 1))
        use = rule_step(kind, phone, loan_node, loan.applied_at, policy, ROLE_NAMES[role])
        if k == 0 and int(self.found.entry_phone[e]) >= 0:
            return (use,)
        since = int(self.since[k][i])
        owns = rule_step(
            owns_kind(not summary % 2),
            self.person(person),
            phone,
            None if since == NEVER else date.fromordinal(since),
            policy,
        )
        return (owns, use)
