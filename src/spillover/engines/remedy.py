"""Remedies: the smallest set of source records whose correction clears a listing.

A listing is *cleared* when, after the records are corrected (removed from the
data), nothing explains it except the subject's own conduct: its contamination
falls below the policy's ``spillover_at`` or it becomes ``unexplained``. For a
``spillover`` entry every explanation path rests on other people's debts, so the
remedy must cut **every** path, not only the best one.

How it is computed (``docs/disputes.md`` has the reader's version):

1. **All paths.** Every tie walk the per-entry search could take (the same layers,
   dates and owner periods as :func:`spillover.engines.ties.find_ties`, without keeping only
   the best walk per loan) from the subject to an origin loan, and for each origin
   every route to the listing: sharing agreements in force in time, then the
   entry's copy chain. Each path is a chain of *records*: an owner period of a phone
   (not the subject's own), an applicant phone on a loan, a loan link, a sharing
   agreement, a copy. The subject's own records (their loans, their owner periods),
   loans and their borrowers, and the listing itself are not correctable
   (infinite capacity). A listed platform record resolves as
   :func:`spillover.engines.search.explain` resolves it: its walks are the walks of the person
   it resolves to, after the *match* when linkage made it (a ``matches`` row), which
   is then a correctable record on every one of them ("this record is not that
   person"); a record the data names its person by (``known``) or that stands as a
   person of its own (``new_identity``) is that person's own record, and an
   unresolved record has no path.
2. **Minimum cut.** The chains are laid into one flow network (one vertex per
   record, split into in and out with the record's capacity) from the subject to
   the listing, and networkx's maximum flow gives a minimum vertex cut. Capacities:
   1 for a loan link, an applicant phone, an owner period and a copy; a sharing
   agreement carries every listing a platform passes on, not only this subject's,
   so it costs more than all the narrow records together (a remedy uses as few
   sharing agreements as it can, then as few records as it can).
3. **Ties** between cuts of equal cost go to the cut nearest the subject (the set of
   vertices reachable from the subject in the residual network of a maximum flow,
   which is the same for every maximum flow): a record about the subject's own phone
   comes before one further down the chain. Records the cut holds that no real path
   needs (the network joins chains at shared records) are then dropped, in reverse
   record order, each only if every path stays cut. Records are listed in record
   order (:meth:`Record.sort_key`).

:func:`remedy` answers for one entry, :func:`subject_remedy` for every entry on a
person or a phone (one cut over all of their entries, the records that clear the
most entries first).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import networkx as nx

from ..errors import NotFoundError
from ..facts.graph import GraphBackend
from ..facts.model import (
    Entry,
    Loan,
    Match,
    PhonePeriod,
    PhoneUse,
    Sharing,
    SubjectKind,
    ref,
    split_ref,
)
from ..policy import Policy, default_policy
from ..rules import (
    APPLICANT,
    COPY_STEP,
    ORIGIN_STEP,
    SHARING_STEP,
    MatchKey,
    Verdict,
    loan_in_time,
)
from .explanation import Explanation
from .search import copy_chain, entries_about, explain, fact_memo
from .ties import ExplanationFacts, FactMemo, PersonTie, person_ties

__all__ = [
    "APPLICANT_PHONE",
    "COPY",
    "HOLDER",
    "LOAN_LINK",
    "MATCH",
    "OWNER_PERIOD",
    "RECORD_KINDS",
    "SHARING",
    "Contact",
    "RankedRecord",
    "Record",
    "Remedy",
    "SubjectRemedy",
    "contact_order",
    "entries_on_subject",
    "path_records",
    "records_and_remedy",
    "remedy",
    "remedy_for",
    "subject_remedy",
]

#: the kinds of correctable source records, in the order a remedy lists them (the match of
#: a listed platform record first: it is the first record of every path it is on)
MATCH = "match"
LOAN_LINK = "loan_link"
APPLICANT_PHONE = "applicant_phone"
OWNER_PERIOD = "owner_period"
COPY = "copy"
SHARING = "sharing"
RECORD_KINDS = (MATCH, APPLICANT_PHONE, LOAN_LINK, OWNER_PERIOD, COPY, SHARING)
_KIND_ORDER = {k: i for i, k in enumerate(RECORD_KINDS)}

_UNBOUNDED_PATHS = 10**9
#: a contact that holds a record on a tie but is not on the listing's route
HOLDER = "holds_record"


@dataclass(frozen=True, slots=True)
class Record:
    """One correctable source record.

    - ``applicant_phone``: ``loan_id``'s applicant phone is ``phone`` (loans.applicant_phone);
    - ``loan_link``: ``phone`` is linked to ``loan_id`` in ``role`` (a loan_links row);
    - ``owner_period``: ``owner_id`` owned ``phone`` from ``since`` (a phones row);
    - ``copy``: entry ``entry_id`` was copied from ``copied_from`` (blacklist.copied_from);
    - ``sharing``: ``from_platform`` passes its blacklist to ``to_platform`` (a sharing row);
    - ``match``: the platform record ``record_id`` was matched to ``person_id`` by
      ``matched_by`` (a ``matches`` row, made by linkage).

    ``platform_id`` is the platform that holds the record (the loan's lender, the
    copying platform, the sharing platform, the platform holding the matched record;
    None for an owner period, which the phone's carrier holds).
    """

    kind: str
    platform_id: str | None = None
    loan_id: str | None = None
    phone: str | None = None
    role: str | None = None
    owner_id: str | None = None
    since: date | None = None
    entry_id: str | None = None
    copied_from: str | None = None
    from_platform: str | None = None
    to_platform: str | None = None
    record_id: str | None = None
    person_id: str | None = None
    matched_by: str | None = None

    def sort_key(self) -> tuple[Any, ...]:
        """Record order: kind (match, applicant phone, link, owner period, copy, sharing),
        then the holding platform, then the record's own fields."""
        return (
            _KIND_ORDER[self.kind],
            self.platform_id or "",
            self.loan_id or "",
            self.phone or "",
            self.role or "",
            self.owner_id or "",
            self.since.isoformat() if self.since else "",
            self.entry_id or "",
            self.copied_from or "",
            self.from_platform or "",
            self.to_platform or "",
            self.record_id or "",
            self.person_id or "",
            self.matched_by or "",
        )


def _use_record(use: PhoneUse) -> Record:
    loan = use.loan
    if use.role == APPLICANT:
        return Record(APPLICANT_PHONE, loan.platform_id, loan_id=loan.loan_id, phone=use.phone)
    return Record(LOAN_LINK, loan.platform_id, loan_id=loan.loan_id, phone=use.phone, role=use.role)


def _period_record(period: PhonePeriod) -> Record:
    return Record(
        OWNER_PERIOD, None, phone=period.phone, owner_id=period.owner_id, since=period.since
    )


def _sharing_record(s: Sharing) -> Record:
    return Record(
        SHARING, s.from_platform, from_platform=s.from_platform, to_platform=s.to_platform
    )


def _match_record(match: Match, platform_id: str | None) -> Record:
    return Record(
        MATCH,
        platform_id,
        record_id=match.record_id,
        person_id=match.person_id,
        matched_by=match.matched_by.value,
    )


#: matches that are the person's own record, not a claim linkage made about them
_OWN_MATCHES = frozenset({MatchKey.KNOWN, MatchKey.NEW_IDENTITY})


def _copy_record(copy: Entry, source: Entry) -> Record:
    return Record(COPY, copy.platform_id, entry_id=copy.entry_id, copied_from=source.entry_id)


# ---------------------------------------------------------------------------
# All paths of one entry
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Walk:
    """A tie walk from the subject to an origin loan: its correctable records, in order."""

    records: tuple[Record, ...]
    origin: Loan


@dataclass
class _EntryPaths:
    """Every path of one entry: tie walks, and what the routes from an origin need."""

    entry: Entry
    chain: tuple[Entry, ...]
    sharing: tuple[Sharing, ...]
    walks: list[_Walk]
    copies: tuple[Record, ...] = ()  # copies[k]: chain[k] copied from chain[k + 1]
    loans: dict[str, Loan] = field(default_factory=dict)  # every loan a walk passes
    #: the sharing agreements by the platform that passes its blacklist on (built on first use)
    _out: dict[str, list[Sharing]] = field(default_factory=dict)
    _records: dict[Sharing, Record] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.copies = tuple(
            _copy_record(self.chain[k], self.chain[k + 1]) for k in range(len(self.chain) - 1)
        )

    def sharing_record(self, s: Sharing) -> Record:
        """The record of the sharing agreement ``s`` (made once per agreement)."""
        r = self._records.get(s)
        if r is None:
            r = self._records[s] = _sharing_record(s)
        return r

    def targets(self, loan: Loan) -> list[int]:
        """The copy-chain places an origin may reach: those listed no earlier than it was
        applied for and reached its status."""
        return [
            i
            for i, e in enumerate(self.chain)
            if loan.applied_at <= e.listed_at and loan.known_at <= e.listed_at
        ]

    def route_open(self, loan: Loan, removed: frozenset[Record]) -> bool:
        """Whether some route from ``loan``'s platform to the listing avoids ``removed``."""
        if not self._out and self.sharing:
            for s in self.sharing:
                self._out.setdefault(s.from_platform, []).append(s)
        for i in self.targets(loan):
            if any(self.copies[k] in removed for k in range(i)):
                continue
            deadline = self.chain[i].listed_at
            goal = self.chain[i].platform_id
            seen = {loan.platform_id}
            queue = deque([loan.platform_id])
            while queue:
                here = queue.popleft()
                if here == goal:
                    return True
                for s in self._out.get(here, ()):
                    if (
                        s.to_platform not in seen
                        and (s.since is None or s.since <= deadline)
                        and self.sharing_record(s) not in removed
                    ):
                        seen.add(s.to_platform)
                        queue.append(s.to_platform)
        return False

    def explained(self, removed: frozenset[Record]) -> bool:
        """Whether any path survives the removal of ``removed``."""
        checked: dict[str, bool] = {}
        cut: dict[int, bool] = {}  # by walk records (walks through a person share them)
        for walk in self.walks:
            hit = cut.get(id(walk.records))
            if hit is None:
                hit = cut[id(walk.records)] = not removed.isdisjoint(walk.records)
            if hit:
                continue
            loan = walk.origin
            if loan.loan_id not in checked:
                checked[loan.loan_id] = self.route_open(loan, removed)
            if checked[loan.loan_id]:
                return True
        return False


def _entry_paths(
    backend: GraphBackend, entry: Entry, policy: Policy, memo: FactMemo | None = None
) -> _EntryPaths:
    """Every tie walk (up to ``policy.max_loans`` loans) from the subject to an origin that
    reaches the listing in time, with the entry's copy chain and the sharing agreements
    (``memo``: the facts fetched for the entry's explanation on Neo4j)."""
    known = memo.entries if memo is not None else None
    paths = _EntryPaths(entry, copy_chain(entry, backend, known=known), backend.sharing(), [])
    start = _walk_start(backend, entry)
    if start is None:
        return paths  # an unresolved record: no path
    subject_person, records = start
    facts = ExplanationFacts(backend, memo=memo)
    walker = _TieWalker(paths, facts, policy, entry.listed_at, subject_person)
    if subject_person is not None:
        walker.from_person(subject_person, 0, records, frozenset({subject_person}))
    else:
        walker.from_phone(entry.subject)
    return paths


def _walk_start(
    backend: GraphBackend, entry: Entry
) -> tuple[str | None, tuple[Record, ...]] | None:
    """Where the walks start: the subject person (None for a phone subject) and the records
    every walk begins with; for a listed platform record, as explain resolves it, the
    person it resolves to through its match (a correctable record unless the record is
    that person's own); None for an unresolved record."""
    if entry.subject_kind != SubjectKind.RECORD:
        return (entry.subject if entry.subject_kind == SubjectKind.PERSON else None), ()
    match = backend.matches([entry.subject]).get(entry.subject)
    if match is None:
        return None
    if match.matched_by in _OWN_MATCHES:
        return match.person_id, ()
    held = backend.record_platforms([entry.subject]).get(entry.subject)
    return match.person_id, (_match_record(match, held),)


def _use_order(tie: PersonTie) -> tuple[str, str, str]:
    use = tie.use
    return (tie.loan.loan_id, use.phone, use.role) if use else (tie.loan.loan_id, "", "")


@dataclass
class _TieWalker:
    """Walks every tie walk of one entry depth first (the steps of
    :func:`spillover.engines.ties.person_ties`), adding those that end at an origin
    to ``paths``."""

    paths: _EntryPaths
    facts: ExplanationFacts
    policy: Policy
    until: date
    subject_person: str | None
    #: per origin-status loan: whether some route reaches the listing
    reachable: dict[str, bool] = field(default_factory=dict)
    #: per person reached: the steps from them (:meth:`steps`)
    steps_of: dict[str, list[tuple[Loan, tuple[Record, ...]]]] = field(default_factory=dict)

    def is_origin(self, loan: Loan) -> bool:
        if loan.status not in self.policy.origin_statuses:
            return False
        if loan.loan_id not in self.reachable:
            self.reachable[loan.loan_id] = self.paths.route_open(loan, frozenset())
        return self.reachable[loan.loan_id]

    def reach(
        self, loan: Loan, depth: int, records: tuple[Record, ...], visited: frozenset[str]
    ) -> None:
        """A walk reaches ``loan`` with ``depth`` loans: kept if an origin, and goes on to
        the borrower (one not on the walk yet) while loans are left."""
        self.paths.loans[loan.loan_id] = loan
        if self.is_origin(loan):
            self.paths.walks.append(_Walk(records, loan))
        if depth < self.policy.max_loans and loan.borrower_id not in visited:
            self.from_person(loan.borrower_id, depth, records, visited | {loan.borrower_id})

    def from_person(
        self, person: str, depth: int, records: tuple[Record, ...], visited: frozenset[str]
    ) -> None:
        """The walk goes on from ``person``: their own loans, then loans naming a phone
        they owned on the application day (its owner period a record unless the subject's)."""
        for loan, step in self.steps(person):
            self.reach(loan, depth + 1, (*records, *step) if step else records, visited)

    def steps(self, person: str) -> list[tuple[Loan, tuple[Record, ...]]]:
        """The steps from ``person`` in walk order, each a loan and the records it adds
        (the same on every walk that reaches the person: found once per person)."""
        found = self.steps_of.get(person)
        if found is not None:
            return found
        ties = person_ties(self.facts.expand([person], [], self.until)).get(person, [])
        found = [
            (tie.loan, ())
            for tie in sorted((t for t in ties if t.use is None), key=lambda t: t.loan.loan_id)
        ]
        for tie in sorted((t for t in ties if t.use is not None), key=_use_order):
            if tie.use is None or tie.period is None:
                continue
            if not loan_in_time(tie.loan.applied_at, self.until):
                continue
            own = () if person == self.subject_person else (_period_record(tie.period),)
            found.append((tie.loan, (*own, _use_record(tie.use))))
        self.steps_of[person] = found
        return found

    def from_phone(self, phone: str) -> None:
        """The walks of a phone subject: from the loans naming it."""
        f = self.facts.expand([], [phone], self.until)
        for use in sorted(f.uses, key=lambda u: (u.loan.loan_id, u.phone, u.role)):
            if use.phone == phone and loan_in_time(use.loan.applied_at, self.until):
                self.reach(use.loan, 1, (_use_record(use),), frozenset())


# ---------------------------------------------------------------------------
# The minimum cut
# ---------------------------------------------------------------------------

_S, _T = ("source",), ("sink",)


def _network(entries: list[_EntryPaths]) -> tuple[nx.DiGraph[Any], set[Record]]:
    """One flow network for the paths of ``entries`` (records shared between them).

    The edges are gathered first and only those on some path from the source to the
    sink are kept (a copy-chain place offers every sharing agreement in force, many of
    them on no route to any place of the chain); then each set of vertices whose uncapacitated
    edges all lead to the same vertices (the records before a hub person, each leading
    to every loan of the hub) is joined to them through one hub vertex, not one edge
    per pair. Neither changes which cuts there are or what they cost, nor the minimum
    cut nearest the subject.
    """
    succ: dict[Any, dict[Any, None]] = {}
    records: dict[Record, None] = {}

    def edge(u: Any, v: Any) -> None:
        succ.setdefault(u, {})[v] = None

    def through(prev: Any, record: Record) -> Any:
        records[record] = None
        edge(prev, ("in", record))
        return ("out", record)

    for n, ep in enumerate(entries):
        _entry_network(n, ep, edge, through)
    narrow = sum(1 for r in records if r.kind != SHARING)
    capacity = {("in", r): narrow + 1 if r.kind == SHARING else 1 for r in records}
    for r in records:
        edge(("in", r), ("out", r))
    live = _on_some_path(succ)
    g: nx.DiGraph[Any] = nx.DiGraph()
    g.add_node(_S)
    g.add_node(_T)
    for u, vs in _hubs(live).items():
        cap = capacity.get(u)  # an in vertex: its one edge, to its out vertex
        for v in vs:
            if cap is None:
                g.add_edge(u, v)
            else:
                g.add_edge(u, v, capacity=cap)
    return g, set(records)


def _entry_network(n: int, ep: _EntryPaths, edge: Any, through: Any) -> None:
    """The edges of entry ``n``'s paths: its walks, routes and copy chain.

    The routes are laid once, not once per place of the copy chain. A sharing agreement
    has one record vertex whichever place it serves, so with a vertex per place and
    platform (as first written) an agreement in force at a place led from that place's
    platform to the agreement's platform at every place it is in force at: an agreement
    leads on to another out of the platform it reaches when both are in force at some
    place (at the latest one), and to a place on that platform listed on or after its
    day. Here a platform is one vertex (``("platform", n, p)``: every agreement out of it
    in force at the latest place) and each platform's places hang on a ladder by listing
    day (``("listed", n, p, k)``: the places on ``p`` listed on its ``k``-th day or
    later); an origin reaches its platform and the places it may list. Every record
    reaches the same records and places as before (a chain of ``m`` places offered every
    agreement ``m`` times over), and only uncapacitated vertices changed, so the cuts,
    their costs and the cut nearest the subject are the same.
    """
    origins: dict[str, Loan] = {}
    tails: dict[int, Any] = {}  # by walk records (walks through a person share them)
    for walk in ep.walks:
        prev: Any = tails.get(id(walk.records))
        if prev is None:
            prev = _S
            for record in walk.records:
                prev = through(prev, record)
            tails[id(walk.records)] = prev
        edge(prev, ("origin", n, walk.origin.loan_id))
        origins[walk.origin.loan_id] = walk.origin
    targets_used: set[int] = set()
    reached: list[tuple[str, str, date]] = []  # origin, platform, first day it may list
    for loan_id, loan in sorted(origins.items()):
        places = ep.targets(loan)
        if places:
            targets_used.update(places)
            reached.append((loan_id, loan.platform_id, max(loan.applied_at, loan.known_at)))
    if targets_used:
        days = _place_ladders(n, ep, sorted(targets_used), edge)
        latest = max(ep.chain[i].listed_at for i in targets_used)
        for loan_id, platform, first in reached:
            edge(("origin", n, loan_id), ("platform", n, platform))
            _onto_ladder(n, platform, first, days, edge, ("origin", n, loan_id))
        for s in ep.sharing:
            if s.since is None or s.since <= latest:
                out = through(("platform", n, s.from_platform), ep.sharing_record(s))
                edge(out, ("platform", n, s.to_platform))
                _onto_ladder(n, s.to_platform, s.since, days, edge, out)
    for i in range(max(targets_used, default=0), 0, -1):
        out = through(("target", n, i), ep.copies[i - 1])
        edge(out, ("target", n, i - 1))
    edge(("target", n, 0), _T)


def _place_ladders(n: int, ep: _EntryPaths, places: list[int], edge: Any) -> dict[str, list[date]]:
    """Per platform, the listing days of ``places`` on it, in order; ``("listed", n, p,
    k)`` leads to the places listed on the ``k``-th of them and to ``k + 1``."""
    on: dict[str, dict[date, list[int]]] = {}
    for i in places:
        on.setdefault(ep.chain[i].platform_id, {}).setdefault(ep.chain[i].listed_at, []).append(i)
    days: dict[str, list[date]] = {}
    for p, by_day in on.items():
        days[p] = sorted(by_day)
        for k, d in enumerate(days[p]):
            for i in by_day[d]:
                edge(("listed", n, p, k), ("target", n, i))
            if k + 1 < len(days[p]):
                edge(("listed", n, p, k), ("listed", n, p, k + 1))
    return days


def _onto_ladder(
    n: int, p: str, first: date | None, days: dict[str, list[date]], edge: Any, u: Any
) -> None:
    """An edge from ``u`` to the places on platform ``p`` listed on ``first`` or later."""
    here = days.get(p)
    if not here:
        return
    k = 0 if first is None else bisect.bisect_left(here, first)
    if k < len(here):
        edge(u, ("listed", n, p, k))


def _on_some_path(succ: dict[Any, dict[Any, None]]) -> dict[Any, list[Any]]:
    """The edges of ``succ`` on some path from the source to the sink."""
    reached = {_S}
    stack = [_S]
    while stack:
        for v in succ.get(stack.pop(), ()):
            if v not in reached:
                reached.add(v)
                stack.append(v)
    pred: dict[Any, list[Any]] = {}
    for u in reached:
        for v in succ.get(u, ()):
            pred.setdefault(v, []).append(u)
    reaching = {_T} if _T in reached else set()
    stack = list(reaching)
    while stack:
        for u in pred.get(stack.pop(), ()):
            if u not in reaching:
                reaching.add(u)
                stack.append(u)
    return {
        u: [v for v in succ.get(u, ()) if v in reaching]
        for u in reached
        if u in reaching and u != _T
    }


def _hubs(edges: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
    """``edges`` with each group of vertices whose uncapacitated edges lead to the same
    vertices (two or more of each) joined to them through one hub vertex."""
    groups: dict[frozenset[Any], list[Any]] = {}
    for u, vs in edges.items():
        if u[0] != "in" and len(vs) > 1:
            groups.setdefault(frozenset(vs), []).append(u)
    out = dict(edges)
    for k, us in enumerate(groups.values()):
        if len(us) > 1:
            hub = ("hub", k)
            for u in us:
                out[u] = [hub]
            out[hub] = list(edges[us[0]])
    return out


def _min_cut(entries: list[_EntryPaths]) -> tuple[Record, ...] | None:
    """The minimum cut nearest the subject, without records no real path needs (None: no
    finite cut exists, some path has no correctable record)."""
    live = [ep for ep in entries if ep.walks]
    if not live:
        return ()
    g, _ = _network(live)
    try:
        # Dinitz: all shortest augmenting paths per phase (a hub of n loans is one phase,
        # where Edmonds-Karp searches the whole network once per path: n searches). The
        # cut read below is the same for every maximum flow.
        residual = nx.flow.dinitz(g, _S, _T, capacity="capacity")
    except nx.NetworkXUnbounded:
        return None
    if residual.graph["flow_value"] >= residual.graph["inf"]:
        return None
    near: set[Any] = {_S}
    queue = deque([_S])
    while queue:
        u = queue.popleft()
        for v, attr in residual[u].items():
            if v not in near and attr["flow"] < attr["capacity"]:
                near.add(v)
                queue.append(v)
    cut = {n[1] for n in near if n[0] == "in" and ("out", n[1]) not in near}
    return tuple(sorted(_spare_dropped(live, cut), key=Record.sort_key))


#: records on the route from an origin to the listing (never on a tie walk)
_ROUTE_KINDS = frozenset({COPY, SHARING})


def _spare_dropped(live: list[_EntryPaths], cut: set[Record]) -> set[Record]:
    """``cut`` without the records no path needs: in reverse record order, each record
    is dropped when every path of every entry stays cut without it.

    Route records (copies, sharing agreements) sort after every tie-walk record, so they
    are looked at first, while every tie-walk record of the cut is still kept: a route
    record is spare when no walk the cut leaves whole has its origin's route reopened.
    Then the routes are settled, and a tie-walk record is spare when every walk with an
    open route that passes it holds another kept record: a count per walk, so the whole
    pass costs the length of the walks (not, as trying each record on every path did,
    records times paths).
    """
    kept = set(cut)
    frozen = frozenset(kept)
    if any(ep.explained(frozen) for ep in live):
        return kept  # not a cut: without any record the paths still stand
    order = sorted(cut, key=Record.sort_key, reverse=True)
    # walks no kept record cuts (cut by their routes), per entry: their origins
    whole = _uncut_origins(live, frozen)
    for record in order:
        if record.kind not in _ROUTE_KINDS:
            break
        trial = frozenset(kept - {record})
        if not any(
            ep.route_open(loan, trial)
            for ep, origins in zip(live, whole, strict=True)
            for loan in origins.values()
        ):
            kept.discard(record)
    hits, walks_of = _kept_on_open_walks(live, kept)
    for record in order:
        if record.kind in _ROUTE_KINDS:
            continue
        through = walks_of.get(record, ())
        if all(hits[i] > 1 for i in through):
            kept.discard(record)
            for i in through:
                hits[i] -= 1
    return kept


def _uncut_origins(live: list[_EntryPaths], cut: frozenset[Record]) -> list[dict[str, Loan]]:
    """Per entry: the origins of the walks no record of ``cut`` is on."""
    uncut: dict[int, bool] = {}  # by walk records (walks through a person share them)
    for ep in live:
        for w in ep.walks:
            if id(w.records) not in uncut:
                uncut[id(w.records)] = cut.isdisjoint(w.records)
    return [{w.origin.loan_id: w.origin for w in ep.walks if uncut[id(w.records)]} for ep in live]


def _kept_on_open_walks(
    live: list[_EntryPaths], kept: set[Record]
) -> tuple[list[int], dict[Record, list[int]]]:
    """Per walk whose origin's route ``kept`` leaves open: how many kept records are on
    it; and per kept record, those walks through it."""
    removed = frozenset(kept)
    hits: list[int] = []
    walks_of: dict[Record, list[int]] = {}
    kept_on: dict[int, set[Record]] = {}  # by walk records
    for ep in live:
        open_route: dict[str, bool] = {}
        for w in ep.walks:
            loan = w.origin
            if loan.loan_id not in open_route:
                open_route[loan.loan_id] = ep.route_open(loan, removed)
            if not open_route[loan.loan_id]:
                continue
            on = kept_on.get(id(w.records))
            if on is None:
                on = kept_on[id(w.records)] = {r for r in w.records if r in kept}
            for r in on:
                walks_of.setdefault(r, []).append(len(hits))
            hits.append(len(on))
    return hits, walks_of


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    """A platform the listing travelled through, in travel order.

    ``stage`` 0: a first lister (the platform of an origin loan, where the listing
    starts); 1, 2, ...: platforms that received it (sharing) or copied it, by hops
    from the first listers. ``first_day``: the first day the listing was known there;
    ``received_from``: the platform it came from that day and ``how`` (``origin``,
    ``sharing``, ``copy``, or ``holds_record``: a lender that holds a record on a tie
    whose loan's default reaches the listing from elsewhere, listed after the first
    listers of stage 0); ``records``: the remedy's records this platform holds.
    """

    platform_id: str
    stage: int
    first_day: date | None
    how: str
    received_from: str | None
    records: tuple[Record, ...]
    lists_subject: bool = False


@dataclass(frozen=True, slots=True)
class Remedy:
    """The remedy of one entry. ``records`` is empty when the entry needs none (its
    verdict is not ``spillover``); ``clearable`` is False when no finite set of records
    clears it."""

    entry: Entry
    verdict: Verdict
    contamination: float
    records: tuple[Record, ...]
    paths: int
    contacts: tuple[Contact, ...]
    policy: Policy
    names: dict[str, str] = field(default_factory=dict)
    clearable: bool = True

    @property
    def needed(self) -> bool:
        """Whether the entry rests on other people's debts (only then is there a remedy)."""
        return self.verdict == Verdict.SPILLOVER


@dataclass(frozen=True, slots=True)
class RankedRecord:
    """A record of a subject's remedy: the entries whose paths run through it, and how
    many entries are cleared once it and every record before it are corrected."""

    record: Record
    entries: tuple[str, ...]
    cleared_after: int


@dataclass(frozen=True, slots=True)
class SubjectRemedy:
    """Every entry on a subject with its remedy, and one cut over all of them."""

    subject_kind: SubjectKind
    subject: str
    remedies: tuple[Remedy, ...]
    explanations: tuple[Explanation, ...]
    records: tuple[RankedRecord, ...]
    spillover_entries: int
    clearable: bool
    policy: Policy
    names: dict[str, str] = field(default_factory=dict)


def _contacts(
    e: Explanation, records: tuple[Record, ...], chain: tuple[Entry, ...]
) -> tuple[Contact, ...]:
    """Platforms in the order the listing travelled, from every explanation path."""
    platform_of = {ref("entry", x.entry_id or ""): x.platform_id for x in chain}
    stage: dict[str, int] = {}
    day: dict[str, date | None] = {}
    how: dict[str, str] = {}
    source: dict[str, str | None] = {}

    def offer(p: str, s: int, d: date | None, h: str, frm: str | None) -> None:
        key = (s, d or date.max, frm or "")
        if p not in stage or key < (stage[p], day[p] or date.max, source[p] or ""):
            stage[p], day[p], how[p], source[p] = s, d, h, frm

    for path in e.paths:
        hops = 0
        for st in path.steps:
            if st.rel == ORIGIN_STEP.rel:
                p = split_ref(st.target)[1]
                offer(p, 0, st.at, ORIGIN_STEP.name, None)
            elif st.rel == SHARING_STEP.rel:
                hops += 1
                offer(
                    split_ref(st.target)[1], hops, st.at, SHARING_STEP.name, split_ref(st.source)[1]
                )
            elif st.rel == COPY_STEP.rel:
                hops += 1
                platform = platform_of.get(st.target)
                if platform is not None:
                    offer(platform, hops, st.at, COPY_STEP.name, platform_of.get(st.source))
    holders: dict[str, list[Record]] = {}
    for r in records:
        if r.platform_id is not None:
            holders.setdefault(r.platform_id, []).append(r)
    for p in holders:
        if p not in stage:  # holds a record on a tie, its loans' defaults reach elsewhere
            offer(p, 0, None, HOLDER, None)
    listing = e.entry.platform_id
    out = [
        Contact(p, stage[p], day[p], how[p], source[p], tuple(holders.get(p, ())), p == listing)
        for p in stage
    ]
    out.sort(key=contact_order)
    return tuple(out)


def contact_order(c: Contact) -> tuple[Any, ...]:
    """Travel order: stage, first listers before record holders, first day, platform id."""
    return (c.stage, c.how == HOLDER, c.first_day or date.max, c.platform_id)


def _with_names(
    backend: GraphBackend,
    names: dict[str, str],
    records: Iterable[Record],
    loans: dict[str, Loan],
    contacts: Iterable[Contact] = (),
) -> dict[str, str]:
    """``names`` with every node the records mention, loans named by borrower and platform
    (as in an explanation), and the platforms the listing travelled through (``contacts``:
    a platform that only copied the entry is on no path)."""
    records = list(records)
    refs = _record_refs(records)
    for c in contacts:
        refs.update(ref("platform", p) for p in (c.platform_id, c.received_from) if p)
    shown = [loans[r.loan_id] for r in records if r.loan_id in loans]
    for loan in shown:
        refs.update((ref("person", loan.borrower_id), ref("platform", loan.platform_id)))
    missing = refs - set(names)
    if missing:
        names.update(backend.names(sorted(missing)))
    for loan in shown:
        node = ref("loan", loan.loan_id)
        if node not in names:
            borrower = names.get(ref("person", loan.borrower_id), loan.borrower_id)
            platform = names.get(ref("platform", loan.platform_id), loan.platform_id)
            names[node] = f"{borrower}'s loan at {platform}"
    return names


def _all_paths(policy: Policy) -> int:
    return max(policy.max_paths, _UNBOUNDED_PATHS)


def _record_refs(records: Iterable[Record]) -> set[str]:
    refs: set[str] = set()
    for r in records:
        if r.phone:
            refs.add(ref("phone", r.phone))
        if r.owner_id:
            refs.add(ref("person", r.owner_id))
        if r.record_id:
            refs.add(ref("record", r.record_id))
        if r.person_id:
            refs.add(ref("person", r.person_id))
        for p in (r.platform_id, r.from_platform, r.to_platform):
            if p:
                refs.add(ref("platform", p))
    return refs


def remedy_for(
    backend: GraphBackend, explanation: Explanation, policy: Policy | None = None
) -> Remedy:
    """The remedy of an entry already explained with every path (``max_paths`` unbounded)."""
    policy = policy or explanation.policy
    ep = None
    if explanation.verdict == Verdict.SPILLOVER:
        ep = _entry_paths(backend, explanation.entry, policy)
    return _remedy_of(backend, explanation, ep, policy)


def _remedy_of(
    backend: GraphBackend, e: Explanation, ep: _EntryPaths | None, policy: Policy
) -> Remedy:
    """The remedy of the entry explained by ``e``, from its paths ``ep`` (walked when it
    rests on other people's debts; None otherwise)."""
    records: tuple[Record, ...] = ()
    paths = 0
    clearable = True
    loans: dict[str, Loan] = {}
    contacts: tuple[Contact, ...] = ()
    if e.verdict == Verdict.SPILLOVER:
        assert ep is not None
        paths = len(ep.walks)
        cut = _min_cut([ep])
        clearable = cut is not None
        records = cut or ()
        loans = ep.loans
        contacts = _contacts(e, records, ep.chain)
    names = _with_names(backend, dict(e.names), records, loans, contacts)
    return Remedy(
        e.entry, e.verdict, e.contamination, records, paths, contacts, policy, names, clearable
    )


def remedy(backend: GraphBackend, entry_id: str, policy: Policy | None = None) -> Remedy:
    """The smallest set of records whose correction clears the entry ``entry_id``.

    >>> from spillover import open_folder, examples
    >>> r = remedy(open_folder(examples.jiang_case_path()), "E-AX-PH")
    >>> sorted({x.loan_id for x in r.records})[:3]
    ['LN-HQ-1', 'XY-AX-1', 'XY-HQ-1']
    """
    policy = policy or default_policy()
    entry = _entry(backend, entry_id)
    return remedy_for(
        backend, explain(backend, entry, policy, max_paths=_all_paths(policy)), policy
    )


def _entry(backend: GraphBackend, entry_id: str) -> Entry:
    entry = backend.entries([entry_id]).get(entry_id)
    if entry is None:
        raise NotFoundError(f"unknown blacklist entry {entry_id!r}")
    return entry


def records_and_remedy(
    backend: GraphBackend, entry_id: str, policy: Policy | None = None
) -> tuple[frozenset[Record], Remedy]:
    """:func:`path_records` and :func:`remedy` of the entry ``entry_id`` from one walk of its
    paths (what ``spillover changes`` needs of an entry the correction lifts)."""
    policy = policy or default_policy()
    entry = _entry(backend, entry_id)
    ep = _entry_paths(backend, entry, policy)
    e = explain(backend, entry, policy, max_paths=_all_paths(policy))
    found = _remedy_of(backend, e, ep if e.verdict == Verdict.SPILLOVER else None, policy)
    return _on_paths(ep), found


def entries_on_subject(
    backend: GraphBackend, subject_kind: SubjectKind | str, subject: str
) -> list[Entry]:
    """Every entry on a person (listing them, a phone they owned on the listing day, or a
    platform record that resolves to them, as :func:`spillover.engines.search.explain_about_person`
    finds them) or on a phone, by listing day then entry id."""
    found = entries_about(backend, subject_kind, subject)
    return sorted(found, key=lambda x: (x.listed_at, x.entry_id or ""))


def _greedy_order(eps: list[_EntryPaths], cut: tuple[Record, ...]) -> list[RankedRecord]:
    """The records of ``cut`` in greedy order: each next record is the one that, with those
    before it, clears the most entries; then the one whose paths carry the most entries;
    then record order.

    An entry is cleared when none of its paths is left: a path is left while no chosen
    record is on its tie walk and its origin's route to the listing stays open. Adding a
    record clears an entry when it cuts every path the entry has left, so the state is
    kept per path and per (entry, record): how many of the entry's paths left the record
    would cut. Choosing a record updates only the paths it cuts and the entries they
    belong to, and a heap keyed as above gives the next record; the whole order costs
    about the length of the walks, times the few route records (copies, sharing
    agreements) the cut may hold. (Trying every record against every path at every step
    cost records squared times paths.)
    """
    state = _greedy_start(eps, cut)
    ranked: list[RankedRecord] = []
    while state.left:
        best = state.pop_best()
        state.left.discard(best)
        record = cut[best]
        if record.kind in _ROUTE_KINDS:
            touched = state.choose_route(record)
        else:
            touched = state.choose_walk_record(best)
        for n in sorted(touched):
            state.refresh(n)
        ranked.append(RankedRecord(record, state.touches[best], state.cleared))
    return ranked


@dataclass
class _Greedy:
    """The state of :func:`_greedy_order`: the paths (walks) of the entries with the cut's
    records on each, which are left, and per (entry, record) how many of the entry's paths
    left the record would cut; ``gain``: the entries each record would clear now, in
    ``heap``."""

    eps: list[_EntryPaths]
    cut: tuple[Record, ...]
    touches: list[tuple[str, ...]]  # the entries whose paths run through each record
    left: set[int]  # records not chosen yet
    route_left: list[int]  # the cut's route records (copies, sharing agreements)
    # the paths: entry, origin loan, the cut's records on the walk (by index)
    w_entry: list[int]
    w_origin: list[str]
    w_records: list[list[int]]
    walks_of_entry: list[list[int]]
    walks_of: dict[int, list[int]]  # the paths through each record
    origins: list[dict[str, Loan]]
    open_route: list[dict[str, bool]]  # per entry and origin: a route is still open
    alive: list[bool]
    left_paths: list[int]
    cleared: int
    chosen_routes: set[Record] = field(default_factory=set)
    first: list[int] = field(default_factory=list)  # walks of an entry before this are gone
    cuts: dict[tuple[int, int], int] = field(default_factory=dict)
    closes: dict[tuple[int, int], set[str]] = field(default_factory=dict)  # origins closed
    full: list[set[int]] = field(default_factory=list)  # records that alone clear the entry
    gain: list[int] = field(default_factory=list)
    heap: list[tuple[int, int, tuple[Any, ...], int]] = field(default_factory=list)

    def push(self, i: int) -> None:
        heapq.heappush(self.heap, (-self.gain[i], -len(self.touches[i]), self.cut[i].sort_key(), i))

    def pop_best(self) -> int:
        """The next record: most entries cleared, then most entries touched, then record order."""
        while True:
            neg, _, _, best = heapq.heappop(self.heap)
            if best in self.left and -neg == self.gain[best]:
                return best
            # else an entry pushed before the record's gain changed

    def shut(self, n: int, removed: frozenset[Record]) -> set[str]:
        """The origins of entry ``n`` whose routes are open but closed by ``removed``."""
        ep = self.eps[n]
        return {
            lid
            for lid, loan in self.origins[n].items()
            if self.open_route[n][lid] and not ep.route_open(loan, removed)
        }

    def settle_routes(self) -> None:
        """What each route record still in play would close, given the chosen routes."""
        removed = frozenset(self.chosen_routes)
        for n in range(len(self.eps)):
            for i in self.route_left:
                if i not in self.left:
                    continue
                shut = self.shut(n, removed | {self.cut[i]})
                self.closes[n, i] = shut
                self.cuts[n, i] = sum(
                    1 for w in self.walks_of_entry[n] if self.alive[w] and self.w_origin[w] in shut
                )

    def refresh(self, n: int) -> None:
        """The records that alone clear entry ``n`` now, and the gains that follow."""
        new: set[int] = set()
        if self.left_paths[n]:
            ws = self.walks_of_entry[n]
            while not self.alive[ws[self.first[n]]]:
                self.first[n] += 1
            # a record that clears the entry cuts every path left, this one among them
            for i in (*self.w_records[ws[self.first[n]]], *self.route_left):
                if i in self.left and self.cuts.get((n, i), 0) == self.left_paths[n]:
                    new.add(i)
        for i in self.full[n] - new:
            self.gain[i] -= 1
            self.push(i)
        for i in new - self.full[n]:
            self.gain[i] += 1
            self.push(i)
        self.full[n] = new

    def gone(self, w: int) -> None:
        """Path ``w`` is cut."""
        self.alive[w] = False
        n = self.w_entry[w]
        self.left_paths[n] -= 1
        if not self.left_paths[n]:
            self.cleared += 1
        for i in self.w_records[w]:
            self.cuts[n, i] -= 1
        for i in self.route_left:
            if self.w_origin[w] in self.closes.get((n, i), ()):
                self.cuts[n, i] -= 1

    def choose_route(self, record: Record) -> set[int]:
        """A route record is chosen: the paths whose origins it closes are cut; every
        entry is touched."""
        self.chosen_routes.add(record)
        removed = frozenset(self.chosen_routes)
        for n in range(len(self.eps)):
            shut = self.shut(n, removed)
            for lid in shut:
                self.open_route[n][lid] = False
            for w in self.walks_of_entry[n]:
                if self.alive[w] and self.w_origin[w] in shut:
                    self.gone(w)
        self.settle_routes()
        return set(range(len(self.eps)))

    def choose_walk_record(self, i: int) -> set[int]:
        """A record on tie walks is chosen: the paths through it are cut; the entries they
        belong to are touched."""
        touched: set[int] = set()
        for w in self.walks_of.get(i, ()):
            if self.alive[w]:
                self.gone(w)
                touched.add(self.w_entry[w])
        return touched


def _touches(eps: list[_EntryPaths], index: dict[Record, int]) -> list[tuple[str, ...]]:
    """The entries whose paths (tie walks or copy chain) run through each record of the cut."""
    touched: list[set[int]] = [set() for _ in index]
    for n, ep in enumerate(eps):
        for walk in ep.walks:
            for r in walk.records:
                if r in index:
                    touched[index[r]].add(n)
        for r in ep.copies:
            if r in index:
                touched[index[r]].add(n)
    return [tuple(eps[n].entry.entry_id or "" for n in sorted(ns)) for ns in touched]


def _greedy_start(eps: list[_EntryPaths], cut: tuple[Record, ...]) -> _Greedy:
    """The greedy state before the first choice: every path, which are alive (their
    origin's route open), the counts and gains, every record on the heap."""
    index = {r: i for i, r in enumerate(cut)}
    w_entry: list[int] = []
    w_origin: list[str] = []
    w_records: list[list[int]] = []
    walks_of_entry: list[list[int]] = []
    origins: list[dict[str, Loan]] = []
    for n, ep in enumerate(eps):
        mine: list[int] = []
        origins.append({})
        for walk in ep.walks:
            mine.append(len(w_entry))
            w_entry.append(n)
            w_origin.append(walk.origin.loan_id)
            w_records.append(sorted({index[r] for r in walk.records if r in index}))
            origins[n][walk.origin.loan_id] = walk.origin
        walks_of_entry.append(mine)
    walks_of: dict[int, list[int]] = {}
    for w, recs in enumerate(w_records):
        for i in recs:
            walks_of.setdefault(i, []).append(w)
    open_route = [
        {lid: ep.route_open(loan, frozenset()) for lid, loan in origins[n].items()}
        for n, ep in enumerate(eps)
    ]
    alive = [open_route[w_entry[w]][w_origin[w]] for w in range(len(w_entry))]
    left_paths = [sum(1 for w in ws if alive[w]) for ws in walks_of_entry]
    state = _Greedy(
        eps=eps,
        cut=cut,
        touches=_touches(eps, index),
        left=set(range(len(cut))),
        route_left=[i for i, r in enumerate(cut) if r.kind in _ROUTE_KINDS],
        w_entry=w_entry,
        w_origin=w_origin,
        w_records=w_records,
        walks_of_entry=walks_of_entry,
        walks_of=walks_of,
        origins=origins,
        open_route=open_route,
        alive=alive,
        left_paths=left_paths,
        cleared=sum(1 for x in left_paths if x == 0),
        first=[0] * len(eps),
        full=[set() for _ in eps],
        gain=[0] * len(cut),
    )
    for w, recs in enumerate(w_records):
        if alive[w]:
            for i in recs:
                state.cuts[w_entry[w], i] = state.cuts.get((w_entry[w], i), 0) + 1
    state.settle_routes()
    for n in range(len(eps)):
        state.refresh(n)
    for i in range(len(cut)):
        state.push(i)
    return state


def subject_remedy(
    backend: GraphBackend,
    subject: str,
    subject_kind: SubjectKind | str = SubjectKind.PERSON,
    policy: Policy | None = None,
) -> SubjectRemedy:
    """Every entry on ``subject`` with its own remedy, and one minimum cut over all of its
    spillover entries, ordered so that the records that clear the most entries come first
    (greedily: each next record is the one that, with those before it, clears the most
    entries; then the one whose paths carry the most entries; then record order)."""
    policy = policy or default_policy()
    kind = SubjectKind(subject_kind)
    entries = entries_on_subject(backend, kind, subject)
    # the entries' facts fetched once for their explanations and walks (on Neo4j)
    memo = fact_memo(backend, entries)
    explanations = [
        explain(backend, e, policy, max_paths=_all_paths(policy), memo=memo) for e in entries
    ]
    spill = [e for e in explanations if e.verdict == Verdict.SPILLOVER]
    # each spillover entry's walks, once: its own remedy and the cut over all of them
    eps = [_entry_paths(backend, e.entry, policy, memo) for e in spill]
    walked = {id(e): ep for e, ep in zip(spill, eps, strict=True)}
    remedies = [_remedy_of(backend, e, walked.get(id(e)), policy) for e in explanations]
    cut = _min_cut(eps)
    clearable = cut is not None
    ranked = _greedy_order(eps, cut) if cut else []
    names: dict[str, str] = {}
    for r in remedies:
        names.update(r.names)
    loans = {k: v for ep in eps for k, v in ep.loans.items()}
    names = _with_names(backend, names, (x.record for x in ranked), loans)
    if ref(kind.value, subject) not in names:
        names.update(backend.names([ref(kind.value, subject)]))
    return SubjectRemedy(
        kind,
        subject,
        tuple(remedies),
        tuple(explanations),
        tuple(ranked),
        len(spill),
        clearable,
        policy,
        names,
    )


def path_records(
    backend: GraphBackend, entry_id: str, policy: Policy | None = None
) -> frozenset[Record]:
    """Every correctable record on some explanation path of the entry ``entry_id``: the
    records its remedy chooses from (empty when nothing explains it through others).

    >>> from spillover import open_folder, examples
    >>> records = path_records(open_folder(examples.jiang_case_path()), "E-QT-J")
    >>> sorted({r.kind for r in records})
    ['applicant_phone', 'copy', 'loan_link', 'owner_period', 'sharing']
    """
    policy = policy or default_policy()
    return _on_paths(_entry_paths(backend, _entry(backend, entry_id), policy))


def _on_paths(ep: _EntryPaths) -> frozenset[Record]:
    """The correctable records on some path of ``ep``."""
    if not ep.walks:
        return frozenset()
    g, records = _network([ep])
    # a record lies on a path when the source reaches it and it reaches the sink (the
    # network offers every sharing agreement in force; only those on a route count)
    reached = nx.descendants(g, _S)
    reaching = nx.ancestors(g, _T)
    return frozenset(r for r in records if ("in", r) in reached and ("out", r) in reaching)
