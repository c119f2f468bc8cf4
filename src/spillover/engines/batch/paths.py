"""Every entry's explanation paths from one batch pass (:func:`every_path`).

:func:`~spillover.engines.batch.audit.origins_pass` keeps, for all entries at once, the
best label per (entry, origin loan) that can be among the entry's ``max_paths`` best
paths; this module reads each kept path back, layer by layer, into the steps
:func:`spillover.engines.search.explain` gives it (the same kinds, factors, codes and
days, made by the same :func:`~spillover.engines.explanation.rule_step`), and adds the
route on to the listing with the per-entry search's own
:func:`~spillover.engines.search.compute_reach` and
:func:`~spillover.engines.search.route_steps` (one reach per distinct copy chain of
platforms and days). :func:`path_columns` (the write-back's) gives the same paths as
columns: each distinct piece of a path made once, as raw steps from the columns (no
``Step`` objects), the reaches of every chain at once (compute_reach's labels relaxed
with numpy), and the paths put together from the pieces with column operations. So the
write-back of every entry's paths costs one pass and the reading back, not one search per
entry; ``explain`` of one entry keeps the per-entry search. The paths, their ranks and routes are the per-entry search's (a property test
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
    COPY_STEP,
    LISTING_STEP,
    NO_PATH,
    ORIGIN_STEP,
    SHARING_STEP,
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

__all__ = ["EntryPaths", "PathColumns", "every_path", "path_chunks", "path_columns"]


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


#: a step as a segment keeps it: its name, target node, day and code
Raw = tuple[str, str, date | None, str | None]


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
        self.platform_code = {p: i for i, p in enumerate(self.platform_ids)}
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
        self._loan_refs: dict[int, str] = {}
        self._phone_refs: dict[int, str] = {}
        self.entry_refs: list[str] | None = None
        #: the steps whose day the columns keep (path_columns' days_of)
        self.days_of: frozenset[str] = frozenset()
        self.chains = np.zeros((0, 1), dtype=np.int64)

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

    def shape(self, e: int) -> tuple[tuple[str, int, bool], ...]:
        """Entry ``e``'s listing as its reach depends on it: per entry of its chain the
        platform, the day's place among the agreements' start days and whether it is the
        day of the one before (entries of one shape share their reach)."""
        chain = self.chain(e)
        return tuple(
            (
                x.platform_id,
                bisect.bisect_right(self.starts, x.listed_at.toordinal()),
                k > 0 and x.listed_at == chain[k - 1].listed_at,
            )
            for k, x in enumerate(chain)
        )

    def chain_rows(self) -> np.ndarray:
        """Every entry's :meth:`chain` as entry indices: one row per entry, the entry
        first, -1 past the chain's end."""
        found = self.found
        n = len(self.entry_ids)
        # the copy each entry goes on to (-1: none in time), and the entries on a loop of
        # copies: a chain ends where it would come back to the first of those it met
        parent = found.entry_copied.astype(np.int64)
        has = parent >= 0
        has[has] = found.entry_listed[parent[has]] <= found.entry_listed[has]
        parent = np.where(has, parent, -1)
        looped = _on_loops(parent)
        current = np.arange(n, dtype=np.int64)
        first_looped = np.where(looped, current, -1)
        rows = [current]
        alive = parent >= 0
        while alive.any():
            up = np.where(alive, parent[current], -1)
            ok = (up >= 0) & (up != first_looped)
            rows.append(np.where(ok, up, -1))
            current = np.where(ok, up, current)
            first_looped = np.where(
                (first_looped < 0) & ok & looped[current], current, first_looped
            )
            alive = ok
        return np.stack(rows[:-1] if len(rows) > 1 else rows, axis=1)

    def shape_codes(self) -> tuple[np.ndarray, list[int]]:
        """Every entry's :meth:`shape` as a number (the shapes numbered in the order of
        the first entry of each), and that first entry of each shape; keeps the chains
        (:meth:`chain_rows`) for :meth:`listings_raw`."""
        found = self.found
        self.chains = chains = self.chain_rows()
        if not len(chains):
            return np.zeros(0, dtype=np.int64), []
        on = chains >= 0
        rows = np.where(on, chains, 0)
        place = np.searchsorted(
            np.asarray(self.starts, dtype=np.int64), found.entry_listed, "right"
        )
        listed = found.entry_listed[rows]
        same = np.zeros(chains.shape, dtype=np.int64)
        same[:, 1:] = listed[:, 1:] == listed[:, :-1]
        platform = found.entry_platform[rows].astype(np.int64)
        code = (platform * (len(self.starts) + 1) + place[rows]) * 2 + same
        code[~on] = -1
        _, first, inverse = np.unique(code, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)
        number = np.empty(len(order), dtype=np.int64)
        number[order] = np.arange(len(order))
        shape_of: np.ndarray = number[inverse.reshape(-1)]
        return shape_of, first[order].tolist()

    def listings_raw(
        self, entry: np.ndarray, target: np.ndarray, platform: np.ndarray
    ) -> tuple[list[str], list[list[Raw]]]:
        """For each entry, the steps from ``platform`` to its chain at ``target`` and along
        the copies to the entry (:func:`spillover.engines.search.listing_steps`'), raw
        (after :meth:`shape_codes`): each one's first node and steps."""
        found, days_of = self.found, self.days_of
        if self.entry_refs is None:
            self.entry_refs = [ref("entry", x) for x in self.entry_ids]
        names = self.entry_refs
        listed = found.entry_listed.tolist()
        listing_day, copy_day = _LISTED in days_of, _COPY_REL in days_of
        places = [ref("platform", x) for x in self.platform_ids]
        steps: list[list[Raw]] = []
        for row, t in zip(self.chains[entry].tolist(), target.tolist(), strict=True):
            at = row[t]
            day = _day(listed[at]) if listing_day else None
            run: list[Raw] = [(_LISTED, names[at], day, LISTING_STEP.code)]
            for i in range(t, 0, -1):
                dst = row[i - 1]
                day = _day(listed[dst]) if copy_day else None
                run.append((_COPY_REL, names[dst], day, COPY_STEP.code))
            steps.append(run)
        return [places[x] for x in platform.tolist()], steps

    def routes(self, entries: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The reach of each entry's chain (:func:`spillover.engines.search.compute_reach`'s
        labels, all chains at once) as two tables, a row per entry and a column per
        platform code: the next platform on the route (-1: a target; -2: none reaches
        the listing from there) and the place in the chain of the target reached.

        The labels are compute_reach's, as keys that order them the same way (smaller is
        better: the later deadline, then fewer hops, then the earlier place in the chain,
        then the smaller next platform, a target's first), relaxed along every usable
        agreement until none improves: an agreement is usable from every label better than
        one it is usable from, and passes a label on only to a worse one, so this ends
        with the best label of each platform, the one compute_reach settles."""
        found = self.found
        n_platforms = max(len(self.platform_ids), 1)
        chains = self.chains[np.asarray(entries, dtype=np.int64)]
        n, width = chains.shape
        on = chains >= 0
        days = found.entry_listed[np.where(on, chains, 0)]
        top = int(days[on].max()) if on.any() else 0
        # key = (((top - day) * hops_n + hops) * width + place) * (platforms + 1) + next + 1
        hops_n, next_n = n_platforms + 1, n_platforms + 1
        none = np.iinfo(np.int64).max
        key = np.full((n, n_platforms), none, dtype=np.int64)
        rows = np.arange(n)
        for place in range(width - 1, -1, -1):
            at = on[:, place]
            label = ((top - days[at, place]) * hops_n * width + place) * next_n
            platform = found.entry_platform[chains[at, place]].astype(np.int64)
            np.minimum.at(key, (rows[at], platform), label)
        edges = [
            (
                self.platform_code[s.from_platform],
                self.platform_code[s.to_platform],
                None if s.since is None else top - s.since.toordinal(),
            )
            for s in self.sharing
        ]
        # every label is final after a round per platform; past a budget of agreements
        # relaxed (a long line of platforms moves a label one platform a round), one
        # search per chain instead
        rounds = min(n_platforms + 1, max(2, _RELAXED // max(len(edges), 1)))
        changed = False
        for _ in range(rounds):
            changed = False
            for source, into, late in edges:
                k = key[:, into]
                usable = k != none
                if late is not None:  # the agreement starts no later than the deadline
                    usable &= k // (hops_n * width * next_n) <= late
                if not usable.any():
                    continue
                rest = k[usable] // next_n  # ((top - day) * hops_n + hops) * width + place
                label = (rest + width) * next_n + into + 1  # one hop more, on to ``into``
                better = label < key[usable, source]
                if better.any():
                    key[np.nonzero(usable)[0][better], source] = label[better]
                    changed = True
            if not changed:
                break
        if changed:
            return self.routes_by_search(entries)
        reached = key != none
        nxt = np.where(reached, key % next_n - 1, -2)
        target = np.where(reached, key // next_n % width, -1)
        return nxt, target

    def routes_by_search(self, entries: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`routes` from :func:`spillover.engines.search.compute_reach` of each
        entry's chain."""
        n_platforms = max(len(self.platform_ids), 1)
        nxt = np.full((len(entries), n_platforms), -2, dtype=np.int64)
        target = np.full((len(entries), n_platforms), -1, dtype=np.int64)
        code = self.platform_code
        for row, e in enumerate(entries):
            reach = compute_reach(self.chain(e), self.sharing)
            for platform, hop in reach.next_hop.items():
                nxt[row, code[platform]] = -1 if hop is None else code[hop]
                target[row, code[platform]] = reach.target[platform]
        return nxt, target

    def reach(self, e: int) -> Reach:
        """The reach of entry ``e``'s listing for its routes (``deadline`` left empty),
        computed once per chain of the same shape: its platforms, and its days as the
        search compares them (with the agreements' start days, and with each other)."""
        chain = self.chain(e)
        key = self.shape(e)
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

    # -- the same steps as raw tuples (the columns'), without Step or Loan objects -----

    def loan_ref(self, code: int) -> str:
        """Loan ``code``'s node reference."""
        name = self._loan_refs.get(code)
        if name is None:
            name = self._loan_refs[code] = ref("loan", self.ix.loans[code].as_py())
        return name

    def borrower_raw(self, code: int) -> tuple[str, list[Raw]]:
        """:meth:`to_borrower`'s steps, raw: its first node and steps."""
        ix = self.ix
        node = self.loan_ref(code)
        borrower = self.person(int(ix.loan_borrower[code]))
        match = int(ix.loan_match[code])
        if match < 0:
            return node, [(_CHAIN_REL, borrower, None, CHAIN_STEP.code)]
        assert self.records is not None  # a loan's match comes from its record
        record = ref(SubjectKind.RECORD.value, self.records[code])
        kind = match_kind(MATCH_KEYS[match])
        return node, [
            (_CHAIN_REL, record, None, CHAIN_STEP.code),
            (kind.rel_for(), borrower, None, kind.code),
        ]

    def ties_raw(
        self, k: int, label: np.ndarray, person: np.ndarray, entry: np.ndarray
    ) -> tuple[list[str], list[list[Raw]]]:
        """:meth:`tie`'s steps for each label of layer ``k`` (from its person, of its
        entry), raw: each one's first node and steps."""
        ix, found, layer, days_of = self.ix, self.found, self.found.layers[k], self.days_of
        code = layer.loan[label]
        key, summary = layer.key[label], layer.summary[label]
        phone = key // 8 % self.n_phone_keys - 1
        phone_first = found.entry_phone[entry] >= 0 if k == 0 else np.zeros(len(label), dtype=bool)
        record = self.records[code] if self.records is not None else None
        match = ix.loan_match[code]
        loan_nodes = [ref("loan", x) for x in ix.loans.take(code).to_pylist()]
        person_nodes = [
            ref("person", x) for x in ix.persons.take(np.maximum(person, 0)).to_pylist()
        ]
        sources: list[str] = []
        steps: list[list[Raw]] = []
        for u, (
            loan_node,
            role,
            kind_at,
            verified,
            who,
            number,
            since,
            alone,
            applied,
        ) in enumerate(
            zip(
                loan_nodes,
                (key % 8).tolist(),
                (summary // 2).tolist(),
                (summary % 2 == 0).tolist(),
                person_nodes,
                phone.tolist(),
                self.since[k][label].tolist(),
                phone_first.tolist(),
                ix.loan_applied[code].tolist(),
                strict=True,
            )
        ):
            kind = TIE_KINDS[kind_at]
            rel = kind.rel_for(ROLE_NAMES[role] if role != OWN else None)
            use: Raw = (rel, loan_node, _day(applied) if rel in days_of else None, kind.code)
            if role == OWN:
                on = record[u] if record is not None else ""
                sources.append(who)
                if not on:
                    steps.append([use])
                    continue
                m = int(match[u])
                by = match_kind(MATCH_KEYS[m].value if m >= 0 else "")
                steps.append(
                    [(by.rel_for(), ref(SubjectKind.RECORD.value, on), None, by.code), use]
                )
                continue
            phone_node = self.phone_ref(number)
            if alone:
                sources.append(phone_node)
                steps.append([use])
                continue
            owns = owns_kind(verified)
            day = None if since == NEVER else _day(since)
            sources.append(who)
            steps.append([(owns.rel_for(), phone_node, day, owns.code), use])
        return sources, steps

    def phone_ref(self, code: int) -> str:
        """Phone ``code``'s node reference."""
        name = self._phone_refs.get(code)
        if name is None:
            name = self._phone_refs[code] = ref("phone", self.ix.phones.text(code))
        return name


# -- every path as columns (the write-back's) ---------------------------------------------


@dataclass(frozen=True)
class PathColumns:
    """Every entry's paths as :func:`every_path` gives them, as columns: per entry (entry_id
    order) its score and codes and ``first``, where its paths begin (``first[-1]``: the
    paths); per path (entry, then rank) its origin loan id, rounded responsibility,
    ``hops``, ``start`` (its first node: index in ``nodes``) and, from ``off[p]`` to
    ``off[p + 1]`` in ``node`` and ``kind``, each step's target node and kind (index in
    ``kinds``: the step's name and day, the day kept only for the steps named in
    :func:`path_columns`'s ``days_of``, and never for the origin and sharing steps of a
    route, whose piece serves every origin on its platform). ``nodes`` holds node
    references (:func:`spillover.facts.model.ref`)."""

    entry_ids: list[str]
    contamination: list[float]
    verdict: list[str]
    reason_codes: list[tuple[str, ...]]
    first: np.ndarray
    loan: list[str]
    responsibility: list[float]
    hops: np.ndarray
    start: np.ndarray
    off: np.ndarray
    node: np.ndarray
    kind: np.ndarray
    nodes: list[str]
    kinds: list[tuple[str, date | None]]


class _Segments:
    """The distinct runs of steps the paths are made of (a tie, a loan to its borrower, a
    route), each once: its first node (``source``) and, from ``off[s]`` to
    ``off[s + 1]`` in ``target``, ``kind`` and ``code``, its steps' target nodes, kinds
    and codes. Nodes and kinds are numbered in the order they are first met."""

    def __init__(self, days_of: frozenset[str]) -> None:
        self.days_of = days_of
        self.nodes: list[str] = []
        self.kinds: list[tuple[str, date | None]] = []
        self._node: dict[str, int] = {}
        self._kind: dict[tuple[str, date | None], int] = {}
        self.source: list[int] = []
        self.off: list[int] = [0]
        self.target: list[int] = []
        self.kind: list[int] = []
        self.code: list[str | None] = []
        #: per entry: the segment of its match (-1), the shape of its listing
        self.match: np.ndarray | None = None
        self.shape_of: np.ndarray | None = None
        #: an entry of each shape
        self.shape_entry: list[int] = []
        #: per shape and platform: the next platform of the route, and the target
        #: (:meth:`_Reader.routes`)
        self.routes: tuple[np.ndarray, np.ndarray] | None = None
        #: per shape and origin platform (shape * platforms + platform): the platforms'
        #: nodes from the origin's along sharing, and the end (target * platforms + last
        #: platform)
        self.walks: dict[int, tuple[list[str], int]] = {}

    def add(self, steps: tuple[Step, ...]) -> int:
        """A new segment of ``steps``; its id."""
        raw: list[Raw] = [(s.rel, s.target, s.at, s.code) for s in steps]
        return int(self.put_many([steps[0].source], [raw])[0])

    def put_many(self, sources: list[str], steps: list[list[Raw]]) -> np.ndarray:
        """New segments, one per source and its steps (each step its name, target node, day
        and code, as the step would have them); their ids."""
        known_kinds, known_nodes, days_of = self._kind, self._node, self.days_of
        nodes, kinds = self.nodes, self.kinds
        source, off, target, kind, code = self.source, self.off, self.target, self.kind, self.code
        begin = len(source)
        for first, run in zip(sources, steps, strict=True):
            for rel, node, at, reason in run:
                key = (rel, at if rel in days_of else None)
                number = known_kinds.setdefault(key, len(kinds))  # a new one: the next number
                if number == len(kinds):
                    kinds.append(key)
                kind.append(number)
                number = known_nodes.setdefault(node, len(nodes))
                if number == len(nodes):
                    nodes.append(node)
                target.append(number)
                code.append(reason)
            number = known_nodes.setdefault(first, len(nodes))
            if number == len(nodes):
                nodes.append(first)
            source.append(number)
            off.append(len(target))
        return np.arange(begin, len(source), dtype=np.int64)


def path_columns(
    ix: CodedGraph,
    max_paths: int | None = None,
    progress: Progress | None = None,
    *,
    days_of: frozenset[str] = frozenset(),
) -> PathColumns:
    """Every entry's paths, as :func:`every_path` gives them, as :class:`PathColumns`:
    the steps of each distinct tie, loan-to-borrower and route made once, and the paths
    put together from them with column operations (no step objects per path)."""
    return next(path_chunks(ix, max_paths, progress, days_of=days_of, size=None))


def path_chunks(
    ix: CodedGraph,
    max_paths: int | None = None,
    progress: Progress | None = None,
    *,
    days_of: frozenset[str] = frozenset(),
    size: int | None = 5000,
) -> Iterator[PathColumns]:
    """:func:`path_columns` ``size`` entries at a time (None: all at once), in entry_id
    order, after one pass: a chunk is ready while the next ones are made (``nodes`` and
    ``kinds`` are one list, grown by each chunk, that every chunk refers to)."""
    policy = ix.policy
    limit = max_paths if max_paths is not None else policy.max_paths
    found = origins_pass(ix, limit, progress)
    reader = _Reader(ix, found, policy)
    reader.days_of = days_of
    segs = _Segments(days_of)
    n_entries = len(found.entry_ids)
    first = np.searchsorted(found.entry, np.arange(n_entries + 1))
    entry_ids = found.entry_ids.to_pylist()
    step = size or max(n_entries, 1)
    for lo in range(0, max(n_entries, 1), step):
        hi = min(lo + step, n_entries)
        yield _chunk(reader, segs, first, entry_ids, lo, hi)


def _chunk(
    reader: _Reader, segs: _Segments, first: np.ndarray, entry_ids: list[str], lo: int, hi: int
) -> PathColumns:
    """The :class:`PathColumns` of entries ``lo`` to ``hi``."""
    found, ix = reader.found, reader.ix
    a, b = int(first[lo]), int(first[hi])
    parts = _path_segments(reader, segs, a, b)  # per path, its segment ids in order (-1: none)
    seq = np.stack(parts, axis=1) if parts else np.zeros((0, 0), dtype=np.int64)
    valid = seq >= 0
    flat = seq[valid]
    seg_off = np.asarray(segs.off, dtype=np.int64)
    counts = np.diff(seg_off)[flat]
    at = np.repeat(seg_off[flat] - np.concatenate(([0], np.cumsum(counts)))[:-1], counts)
    at += np.arange(int(counts.sum()))
    node = np.asarray(segs.target, dtype=np.int64)[at]
    kind = np.asarray(segs.kind, dtype=np.int64)[at]
    per_path = np.zeros(b - a, dtype=np.int64)
    np.add.at(per_path, np.nonzero(valid)[0], counts)
    first_seg = seq[np.arange(len(seq)), np.argmax(valid, axis=1)] if len(seq) else flat
    start = np.asarray(segs.source, dtype=np.int64)[first_seg]
    chunk_first = first[lo : hi + 1] - a
    responsibility = [rounded(x) for x in found.responsibility[a:b].tolist()]
    scores = _scores(seq, segs, chunk_first, responsibility, reader.policy)
    return PathColumns(
        entry_ids=entry_ids[lo:hi],
        contamination=scores[0],
        verdict=scores[1],
        reason_codes=scores[2],
        first=chunk_first,
        loan=ix.loans.take(found.loan[a:b]).to_pylist(),
        responsibility=responsibility,
        hops=found.depth[a:b],
        start=start,
        off=np.concatenate(([0], np.cumsum(per_path))),
        node=node,
        kind=kind,
        nodes=segs.nodes,
        kinds=segs.kinds,
    )


def _path_segments(reader: _Reader, segs: _Segments, a: int, b: int) -> list[np.ndarray]:
    """Per path ``a`` to ``b``, its segments as columns in step order: the entry's match
    (a listed record), then per layer the loan before to its borrower and the tie, then
    the route."""
    found, ix = reader.found, reader.ix
    n = b - a
    entry, depth = found.entry[a:b], found.depth[a:b]
    columns: list[np.ndarray] = []
    # a listed record, through its match to its person
    if segs.match is None:
        segs.match = np.full(len(found.entry_ids), -1, dtype=np.int64)
        for e in np.nonzero(found.entry_match >= 0)[0].tolist():
            m = int(found.entry_match[e])
            record = ref(SubjectKind.RECORD.value, found.entry_subject[e].as_py())
            person = reader.person(int(found.entry_person[e]))
            step = rule_step(match_kind(MATCH_KEYS[m]), record, person, None)
            segs.match[e] = segs.add((step,))
    columns.append(segs.match[entry])
    # the label of each path at each layer (-1 past its depth)
    depth_max = int(depth.max()) if n else 0
    labels = np.full((n, depth_max), -1, dtype=np.int64)
    for d in range(depth_max, 0, -1):
        at = depth == d
        labels[at, d - 1] = found.label[a:b][at]
        for k in range(d - 1, 0, -1):
            labels[at, k - 1] = found.layers[k].previous[labels[at, k]]
    loan_before = np.full(n, -1, dtype=np.int64)
    for k in range(depth_max):
        on = labels[:, k] >= 0
        if k:
            borrower = np.full(n, -1, dtype=np.int64)
            borrower[on] = _borrower_segments(reader, segs, loan_before[on])
            columns.append(borrower)
        tie = np.full(n, -1, dtype=np.int64)
        tie[on] = _tie_segments(reader, segs, k, labels[on, k], entry[on], loan_before[on])
        columns.append(tie)
        loan_before[on] = found.layers[k].loan[labels[on, k]]
    columns.extend(_route_segments(reader, segs, entry, found.loan[a:b], ix))
    return columns


def _borrower_segments(reader: _Reader, segs: _Segments, loans: np.ndarray) -> np.ndarray:
    """The segment from each loan to its borrower."""
    distinct, inverse = np.unique(loans, return_inverse=True)
    sources, steps = [], []
    for c in distinct.tolist():
        source, run = reader.borrower_raw(c)
        sources.append(source)
        steps.append(run)
    ids = segs.put_many(sources, steps)
    out: np.ndarray = ids[inverse] if len(ids) else np.zeros(0, dtype=np.int64)
    return out


def _tie_segments(
    reader: _Reader,
    segs: _Segments,
    k: int,
    label: np.ndarray,
    entry: np.ndarray,
    loan_before: np.ndarray,
) -> np.ndarray:
    """The tie segment of each (layer ``k``) label, one per distinct tie."""
    found, ix = reader.found, reader.ix
    layer = found.layers[k]
    if k == 0:
        person = found.entry_person[entry].astype(np.int64)
        phone_first = (found.entry_phone[entry] >= 0).astype(np.int64)
    else:
        person = ix.loan_borrower[loan_before].astype(np.int64)
        phone_first = np.zeros(len(label), dtype=np.int64)
    key = np.stack(
        (
            person,
            layer.loan[label],
            layer.key[label] % (8 * reader.n_phone_keys),
            layer.summary[label],
            reader.since[k][label],
            phone_first,
        ),
        axis=1,
    ).astype(np.int64)
    if not len(key):
        return np.zeros(0, dtype=np.int64)
    first, inverse = _unique_rows(key)
    ids = segs.put_many(*reader.ties_raw(k, label[first], person[first], entry[first]))
    out: np.ndarray = ids[inverse]
    return out


def _on_loops(parent: np.ndarray) -> np.ndarray:
    """Which nodes of the graph ``parent`` (each node's one successor, -1: none) lie on a
    loop: those left once the nodes nothing leads to are taken away, again and again."""
    n = len(parent)
    on = parent >= 0
    into = np.bincount(parent[on], minlength=n)
    left = np.ones(n, dtype=bool)
    ready = np.nonzero(into == 0)[0]
    while len(ready):
        left[ready] = False
        up = parent[ready]
        up = up[up >= 0]
        np.subtract.at(into, up, 1)
        up = np.unique(up)
        ready = up[(into[up] == 0) & left[up]]
    return left & on


def _unique_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``key`` in order (as ``np.unique(key, axis=0)`` sorts them):
    the first row of each, and each row's distinct row."""
    order = np.lexsort(key.T[::-1])  # stable: equal rows stay in row order
    ordered = key[order]
    new = np.ones(len(key), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    first: np.ndarray = order[new]
    return first, inverse


def _route_segments(
    reader: _Reader, segs: _Segments, entry: np.ndarray, loan: np.ndarray, ix: CodedGraph
) -> list[np.ndarray]:
    """The route of each path, as two segments: from its origin loan to its platform and
    along sharing (one per shape of listing, :meth:`_Reader.shape`, and origin
    platform), then to the listing and along its copies (one per entry and target)."""
    if not len(entry):
        return [np.zeros(0, dtype=np.int64)] * 2
    n_platforms = max(len(reader.platform_ids), 1)
    if segs.shape_of is None:
        segs.shape_of, segs.shape_entry = reader.shape_codes()
    of_entry, shape_entry = segs.shape_of, segs.shape_entry
    key = of_entry[entry] * n_platforms + ix.loan_platform[loan].astype(np.int64)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    end = np.empty(len(first), dtype=np.int64)  # target * platforms + last platform
    if segs.routes is None:
        segs.routes = reader.routes(shape_entry)
    next_hop, target = segs.routes
    sources: list[str] = []
    runs: list[list[Raw]] = []
    for u, (k, code) in enumerate(zip(key[first].tolist(), loan[first].tolist(), strict=True)):
        walk = segs.walks.get(k)
        if walk is None:  # the platforms from the origin's along sharing, and the end
            shape, platform = divmod(k, n_platforms)
            platforms = [platform]
            nxt = int(next_hop[shape, platform])
            while nxt >= 0:
                platform = nxt
                platforms.append(platform)
                nxt = int(next_hop[shape, platform])
            last = int(target[shape, platform]) * n_platforms + platform
            names = [ref("platform", reader.platform_ids[x]) for x in platforms]
            walk = segs.walks[k] = (names, last)
        nodes, end[u] = walk
        # from the origin to its platform and along sharing (route_steps' steps, without
        # their days: this piece serves every origin on the platform)
        steps: list[Raw] = [(_ORIGIN_REL, nodes[0], None, ORIGIN_STEP.code)]
        steps.extend((_SHARING_REL, node, None, SHARING_STEP.code) for node in nodes[1:])
        sources.append(reader.loan_ref(code))
        runs.append(steps)
    hops = segs.put_many(sources, runs)[inverse]
    key = entry.astype(np.int64) * (n_platforms * _MAX_CHAIN) + end[inverse]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    target, final = np.divmod(key[first] % (n_platforms * _MAX_CHAIN), n_platforms)
    listing = segs.put_many(*reader.listings_raw(entry[first], target, final))
    return [hops, listing[inverse]]


_LISTED = LISTING_STEP.rel_for()
_CHAIN_REL = CHAIN_STEP.rel_for()
_day = date.fromordinal
_ORIGIN_REL = ORIGIN_STEP.rel_for()
_SHARING_REL = SHARING_STEP.rel_for()
_COPY_REL = COPY_STEP.rel_for()

#: agreements relaxed at most (times the rounds) by :meth:`_Reader.routes` before it
#: searches chain by chain instead
_RELAXED = 5_000

#: copies a chain follows at most, for a key (an entry's chain is far shorter)
_MAX_CHAIN = 1 << 20


def _scores(
    seq: np.ndarray,
    segs: _Segments,
    first: np.ndarray,
    responsibility: list[float],
    policy: Policy,
) -> tuple[list[float], list[str], list[tuple[str, ...]]]:
    """Per entry its contamination, verdict and reason codes (its best path's)."""
    contamination: list[float] = []
    verdict: list[str] = []
    codes: list[tuple[str, ...]] = []
    known: dict[float | None, tuple[float, str]] = {}
    off = segs.off
    for e in range(len(first) - 1):
        best = int(first[e]) if first[e + 1] > first[e] else -1
        value = responsibility[best] if best >= 0 else None
        got = known.get(value)
        if got is None:
            result = score(value, policy)
            got = known[value] = (result.contamination, result.verdict.value)
        contamination.append(got[0])
        verdict.append(got[1])
        if best < 0:
            codes.append((NO_PATH,))
            continue
        codes.append(
            reason_codes(
                c for s in seq[best].tolist() if s >= 0 for c in segs.code[off[s] : off[s + 1]]
            )
        )
    return contamination, verdict, codes
