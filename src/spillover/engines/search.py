"""The core: what an explanation path is and how it is scored (docs/contract.md §3).

This module is backend-neutral. It asks a :class:`~spillover.backends.GraphBackend`
for graph facts (``expand``, ``sharing``, ``entries``) and decides everything else:

* **Ties** (subject -> origin loan). The linkage graph is walked from the subject
  in layers, one loan per layer, up to ``policy.max_loans`` loans deep:

  - ``person -BORROWED-> loan``: the person's own loan (factor ``own_loan``);
  - ``person -OWNS-> phone -ROLE-> loan``: a phone the person owned *on the loan's
    application day* is named on someone else's loan (factors ``owns_*`` and the role's);
  - ``phone -ROLE-> loan`` when the subject is a phone;
  - ``loan -BORROWED_BY-> person``: from a linked loan to its borrower, to go on to
    the borrower's other loans (factor ``borrower_of_linked_loan``).

  Every loan on a path was applied for no later than the listing.
* **Origins**: an overdue or defaulted loan (``policy.origin_statuses``) whose
  platform reaches the listing platform in time (below).
* **Reach** (origin platform -> listing). The entry's ``copied_from`` chain gives
  targets ``(platform, listed_at)``; a copy counts only when it is no earlier than
  what it copies. Sharing agreements ``from -> to`` (from ``since`` on) relay a
  default known at time ``t`` to ``to`` at ``max(t, since)``. The core computes, for
  every platform, the latest day a default known there still reaches a target in
  time; an origin counts when it was applied for, and reached its status, by then.
  Relaying steps carry factor 1.0: they move knowledge, not responsibility.

A path's ``responsibility`` is the product of its step factors; an
explanation's ``contamination`` is ``1 - responsibility`` of the best path, or 1
when no path exists (``unexplained``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from ..errors import NotFoundError
from ..facts.graph import GraphBackend
from ..facts.model import (
    Entry,
    FrontierFacts,
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
    CHAIN_STEP,
    COPY_STEP,
    IGNORES_DATES,
    LISTING_STEP,
    MATCHED_TO,
    NO_PATH,
    NO_ROUTE,
    NO_TIE,
    ORIGIN_STEP,
    SHARING_STEP,
    UNRESOLVED_RECORD,
    StepKind,
    Verdict,
    factor,
    loan_in_time,
    loan_kind,
    match_kind,
    owns_kind,
    reason_codes,
    relay_day,
    rounded,
    score,
    subject_phone_kind,
    use_kind,
)

__all__ = [
    "Explanation",
    "ExplanationFacts",
    "ExplanationPath",
    "PersonTie",
    "Reach",
    "Step",
    "TiePath",
    "check",
    "compute_reach",
    "copy_chain",
    "count_paths",
    "explain",
    "explain_about_person",
    "explain_all",
    "explain_entry",
    "find_ties",
    "origin_reaches",
    "owner_on",
    "person_ties",
    "proposed_entry",
    "route_steps",
    "step_match",
]


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of an explanation, in the direction subject -> origin -> listing."""

    source: str
    rel: str
    target: str
    factor: float
    at: date | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ExplanationPath:
    """One path from the subject to an origin loan and on to the listing.

    ``responsibility`` is the product of the step factors (rounded); ``depth`` the
    loans on the tie (1: the origin is tied to the subject directly), written out as
    ``hops``.
    """

    origin: Loan
    responsibility: float
    depth: int
    steps: tuple[Step, ...]

    @property
    def hops(self) -> int:
        """``depth`` under its name in the JSON and the audit rows."""
        return self.depth


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an entry lists its subject: the paths found, best first, and what they score.

    ``contamination`` and ``verdict`` come from the best path (:func:`spillover.rules.score`);
    ``reason_codes`` are the best path's codes, or why no path was found; ``names`` holds
    display names of the nodes the explanation mentions.
    """

    entry: Entry
    contamination: float
    verdict: Verdict
    paths: tuple[ExplanationPath, ...]
    reason_codes: tuple[str, ...]
    policy: Policy
    names: dict[str, str] = field(default_factory=dict)
    #: the match of every platform record on the paths (the waterfall of each match step)
    matches: dict[str, Match] = field(default_factory=dict)
    #: every time-respecting path from the subject to an origin (each tie walk counted,
    #: as the remedy counts the paths it must break); ``paths`` holds the best one to each
    #: origin loan, up to ``max_paths`` of them
    paths_total: int = 0
    #: the origin loans some path reaches (``paths`` shows up to ``max_paths`` of them)
    origins_total: int = 0

    @property
    def best(self) -> ExplanationPath | None:
        """The path with the highest responsibility (None: no path, ``unexplained``)."""
        return self.paths[0] if self.paths else None


def step_match(step: Step, e: Explanation) -> Match | None:
    """The match behind a ``MATCHED_TO`` step (None for any other step)."""
    if step.rel != MATCHED_TO:
        return None
    for node in (step.source, step.target):
        kind, ident = split_ref(node)
        if kind == SubjectKind.RECORD.value:
            return e.matches.get(ident)
    return None


# ---------------------------------------------------------------------------
# Reach: latest departure from every platform to the entry's copy chain
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reach:
    """For each platform, the latest day a default known there still reaches a target in time,
    the next platform on that route (None at a target) and the target reached."""

    deadline: dict[str, date]
    next_hop: dict[str, str | None]
    target: dict[str, int]
    since: dict[tuple[str, str], date | None]
    chain: tuple[Entry, ...]


def copy_chain(entry: Entry, backend: GraphBackend) -> tuple[Entry, ...]:
    """``entry`` and the entries it was copied from, as long as every copy is in time."""
    chain = [entry]
    current = entry
    seen = {entry.entry_id}
    while current.copied_from is not None and current.copied_from not in seen:
        parent = backend.entries([current.copied_from]).get(current.copied_from)
        if parent is None or parent.listed_at > current.listed_at:
            break
        chain.append(parent)
        seen.add(parent.entry_id)
        current = parent
    return tuple(chain)


def compute_reach(
    chain: tuple[Entry, ...], sharing: Iterable[Sharing], *, ignore_dates: bool = False
) -> Reach:
    """Latest-departure labels over the sharing graph (a small Dijkstra on platforms).

    A label is better with a later deadline, then fewer hops, then an earlier place
    in the copy chain, then the smaller next platform id, so the chosen route is the
    same on every backend. A label passes along an agreement only to a worse one (one
    hop more), and an agreement usable from a label is usable from every better one, so
    the labels are settled best first, each platform once: the work is the agreements
    (times a log), where relaxing every agreement until nothing changed cost the
    agreements times the hops of the longest route.
    """
    far = date.max
    labels: dict[str, tuple[date, int, int, str]] = {}
    for index, e in enumerate(chain):
        deadline = far if ignore_dates else e.listed_at
        label = (deadline, 0, index, "")
        if e.platform_id not in labels or _better(label, labels[e.platform_id]):
            labels[e.platform_id] = label
    edges = list(sharing)
    since = {(s.from_platform, s.to_platform): s.since for s in edges}
    into: dict[str, list[Sharing]] = {}
    for s in edges:
        into.setdefault(s.to_platform, []).append(s)
    heap = [(_order(label), platform) for platform, label in labels.items()]
    heapq.heapify(heap)
    settled: set[str] = set()
    while heap:
        key, here = heapq.heappop(heap)
        if here in settled or key != _order(labels[here]):
            continue
        settled.add(here)
        to_label = labels[here]
        for s in into.get(here, ()):
            if not ignore_dates and s.since is not None and s.since > to_label[0]:
                continue
            label = (to_label[0], to_label[1] + 1, to_label[2], s.to_platform)
            current = labels.get(s.from_platform)
            if current is None or _better(label, current):
                labels[s.from_platform] = label
                heapq.heappush(heap, (_order(label), s.from_platform))
    return Reach(
        deadline={p: lab[0] for p, lab in labels.items()},
        next_hop={p: (lab[3] or None) for p, lab in labels.items()},
        target={p: lab[2] for p, lab in labels.items()},
        since=since,
        chain=chain,
    )


def _order(a: tuple[date, int, int, str]) -> tuple[int, int, int, str]:
    return (-a[0].toordinal(), a[1], a[2], a[3])


def _better(a: tuple[date, int, int, str], b: tuple[date, int, int, str]) -> bool:
    return _order(a) < _order(b)


def origin_reaches(loan: Loan, reach: Reach) -> bool:
    """Whether a default on ``loan`` is known at its platform in time to reach the listing."""
    deadline = reach.deadline.get(loan.platform_id)
    return deadline is not None and loan.applied_at <= deadline and loan.known_at <= deadline


def route_steps(loan: Loan, reach: Reach, proposed: bool) -> tuple[Step, ...]:
    """Steps from the origin loan to its platform, along sharing, to the listing."""
    at = loan.known_at
    platform = loan.platform_id
    steps = [_step(ORIGIN_STEP, ref("loan", loan.loan_id), ref("platform", platform), at)]
    nxt = reach.next_hop[platform]
    while nxt is not None:
        at = relay_day(at, reach.since[(platform, nxt)])
        steps.append(_step(SHARING_STEP, ref("platform", platform), ref("platform", nxt), at))
        platform, nxt = nxt, reach.next_hop[nxt]
    index = reach.target[platform]
    if proposed and index == 0:
        return tuple(steps)
    listed = reach.chain[index]
    steps.append(
        _step(
            LISTING_STEP,
            ref("platform", platform),
            ref("entry", listed.entry_id or ""),
            listed.listed_at,
        )
    )
    for i in range(index, 0, -1):
        src, dst = reach.chain[i], reach.chain[i - 1]
        steps.append(
            _step(
                COPY_STEP,
                ref("entry", src.entry_id or ""),
                ref("entry", dst.entry_id or ""),
                dst.listed_at,
            )
        )
    return tuple(steps)


def _step(
    kind: StepKind,
    source: str,
    target: str,
    at: date | None,
    policy: Policy | None = None,
    role: str | None = None,
) -> Step:
    """A step of ``kind``: its name, factor and code as the rules give them."""
    return Step(
        source,
        kind.rel_for(role),
        target,
        1.0 if policy is None else factor(policy, kind),
        at,
        kind.code,
    )


# ---------------------------------------------------------------------------
# Ties: layered best-path search from the subject, one loan per layer
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TiePath:
    """A tie path (subject -> loan), or a partial one: its responsibility, loans so far, steps, and tie-break key.

    Labels compare by :meth:`rank`: higher responsibility, then fewer loans, then
    ``key``. The key has a fixed shape per layer, ``(phone, role, loan)`` for each
    tie (``""`` for an own loan) and then the borrower when the chain goes on, so
    that it orders paths the same way everywhere (the batch kernel in
    :mod:`spillover.engines.batch` reproduces it with integer codes).
    """

    responsibility: float
    depth: int  # loans so far
    steps: tuple[Step, ...]
    loans: tuple[Loan, ...] = ()
    key: tuple[str, ...] = ()

    def rank(self) -> tuple[float, int, tuple[str, ...]]:
        """The order of paths: higher responsibility, then fewer loans, then ``key``."""
        return (-self.responsibility, self.depth, self.key)

    def tie(self, loan: Loan, phone: str, role: str, *steps: Step) -> TiePath:
        """This label extended by a tie to ``loan`` (through ``phone`` in ``role``, or own)."""
        responsibility = self.responsibility
        for s in steps:
            responsibility *= s.factor
        key = (*self.key, ref("phone", phone) if phone else "", role, ref("loan", loan.loan_id))
        return TiePath(responsibility, self.depth + 1, self.steps + steps, (*self.loans, loan), key)

    def chain(self, step: Step, match: Step | None = None) -> TiePath:
        """This label extended from its last loan to that loan's borrower (through the
        match step of the record the loan names its borrower by, if any)."""
        if match is None:
            return TiePath(
                self.responsibility * step.factor,
                self.depth,
                (*self.steps, step),
                self.loans,
                (*self.key, step.target),
            )
        return TiePath(
            self.responsibility * step.factor * match.factor,
            self.depth,
            (*self.steps, step, match),
            self.loans,
            (*self.key, match.target),
        )


def owner_on(periods: Iterable[PhonePeriod], day: date) -> PhonePeriod | None:
    """The owner period of ``periods`` (one phone's) covering ``day``, if any."""
    for period in periods:
        if period.covers(day):
            return period
    return None


@dataclass(frozen=True, slots=True)
class PersonTie:
    """One step of a tie walk from a person to a loan: their own loan (``use`` None), or a
    loan naming a phone they owned on the application day (``use``, with the owner
    ``period``)."""

    loan: Loan
    use: PhoneUse | None = None
    period: PhonePeriod | None = None


def person_ties(found: FrontierFacts) -> dict[str, list[PersonTie]]:
    """The ties of each person an ``expand`` answer covers, as every tie walk takes them:
    their own loans, then the loans naming a phone they owned on the application day (not
    as the loan's borrower), each in the answer's order. :func:`count_paths` and the
    remedy's walks (:mod:`spillover.engines.remedy`) step with these."""
    periods: dict[str, list[PhonePeriod]] = {}
    for period in found.periods:
        periods.setdefault(period.phone, []).append(period)
    ties: dict[str, list[PersonTie]] = {}
    for loan in found.own_loans:
        ties.setdefault(loan.borrower_id, []).append(PersonTie(loan))
    for use in found.uses:
        held = owner_on(periods.get(use.phone, ()), use.loan.applied_at)
        owner = held.owner_id if held else None
        if owner is not None and owner != use.loan.borrower_id:
            ties.setdefault(owner, []).append(PersonTie(use.loan, use, held))
    return ties


class ExplanationFacts:
    """The graph facts of one explanation, fetched in as few round trips as possible.

    On a backend where every call is a round trip (Neo4j), the first request fetches
    the whole three-layer neighbourhood of the subject in one
    (:meth:`GraphBackend.neighbourhood`); later layers are answered from it while
    their people are covered, else from :meth:`GraphBackend.expand`. Facts are
    fetched without a date bound and filtered here, so the main search and the
    diagnosis (which ignores dates) share them.
    """

    def __init__(self, backend: GraphBackend) -> None:
        self.backend = backend
        self.seen: dict[tuple[tuple[str, ...], tuple[str, ...]], FrontierFacts] = {}
        self.around: FrontierFacts | None = None
        self.around_phones: frozenset[str] = frozenset()

    def expand(self, persons: list[str], phones: list[str], until: date) -> FrontierFacts:
        """The facts :meth:`GraphBackend.expand` gives, each frontier fetched only once."""
        key = (tuple(persons), tuple(phones))
        full = self.seen.get(key)
        if full is None:
            if self.around is None:
                if self.backend.round_trips:
                    self.around = self.backend.neighbourhood(persons, phones)
                    self.around_phones = frozenset(phones)
                else:
                    self.around = FrontierFacts()  # covers nobody: every layer asks expand
            if (
                self.around.covers
                and set(persons) <= self.around.covers
                and set(phones) <= self.around_phones
            ):
                full = _part(self.around, set(persons), set(phones))
            else:
                full = self.backend.expand(persons, phones, date.max)
            self.seen[key] = full
        if until == date.max:
            return full
        return FrontierFacts(
            full.periods,
            tuple(loan for loan in full.own_loans if loan_in_time(loan.applied_at, until)),
            tuple(use for use in full.uses if loan_in_time(use.loan.applied_at, until)),
        )


def _part(around: FrontierFacts, persons: set[str], phones: set[str]) -> FrontierFacts:
    """What :meth:`GraphBackend.expand` would give for ``persons`` and ``phones``, taken
    from a neighbourhood that covers them."""
    numbers = phones | {p.phone for p in around.periods if p.owner_id in persons}
    return FrontierFacts(
        tuple(p for p in around.periods if p.phone in numbers),
        tuple(loan for loan in around.own_loans if loan.borrower_id in persons),
        tuple(use for use in around.uses if use.phone in numbers),
    )


@dataclass
class _TieSearch:
    """What a tie search carries from layer to layer: the best rank each node was reached
    with, the labels of the next layer's people and phones, the origins found so far."""

    policy: Policy
    is_origin: Callable[[Loan], bool]
    seen: dict[str, tuple[float, int, tuple[str, ...]]]
    persons: dict[str, TiePath]
    phones: dict[str, TiePath]
    origins: dict[str, TiePath] = field(default_factory=dict)
    #: who owned a phone subject on the listing day (for the owner-changed kinds)
    subject_owner_now: str | None = None


#: the best label reaching each loan of a layer, with the loan
_Reached = dict[str, tuple[TiePath, Loan]]


def find_ties(
    backend: GraphBackend | ExplanationFacts,
    subject_kind: SubjectKind,
    subject: str,
    until: date,
    policy: Policy,
    *,
    is_origin: Callable[[Loan], bool],
    listing_day: date | None = None,
    via: Step | None = None,
) -> dict[str, TiePath]:
    """Best tie path from the subject to every origin loan, keyed by loan id.

    ``is_origin(loan)`` says whether a reached loan may originate the listing; ``via``:
    the match step of a listed platform record to ``subject`` (its person), which every
    path starts with. Each layer offers the ties :func:`_from_people` and
    :func:`_from_phones` find (the best per loan kept), then :func:`_to_borrowers` records
    the origins and goes on from each loan to its borrower.
    """
    search = _start_search(subject_kind, subject, policy, is_origin, via)
    for layer in range(1, policy.max_loans + 1):
        if not search.persons and not search.phones:
            break
        facts: FrontierFacts = backend.expand(sorted(search.persons), sorted(search.phones), until)
        periods: dict[str, list[PhonePeriod]] = {}
        for known in facts.periods:
            periods.setdefault(known.phone, []).append(known)
        if layer == 1 and subject_kind == SubjectKind.PHONE and listing_day is not None:
            now = owner_on(periods.get(subject, ()), listing_day)
            search.subject_owner_now = now.owner_id if now else None
        reached: _Reached = {}
        _from_people(
            search, facts, periods, layer == 1 and subject_kind == SubjectKind.PERSON, reached
        )
        _from_phones(search, facts, periods, reached)
        search.persons, search.phones = _to_borrowers(search, reached, layer), {}
    return search.origins


def _start_search(
    subject_kind: SubjectKind,
    subject: str,
    policy: Policy,
    is_origin: Callable[[Loan], bool],
    via: Step | None,
) -> _TieSearch:
    """The search before its first layer: the subject (through ``via``) seen, on the frontier."""
    start = TiePath(1.0, 0, ()) if via is None else TiePath(via.factor, 0, (via,))
    return _TieSearch(
        policy,
        is_origin,
        seen={ref(subject_kind.value, subject): start.rank()},
        persons={subject: start} if subject_kind == SubjectKind.PERSON else {},
        phones={subject: start} if subject_kind == SubjectKind.PHONE else {},
    )


def _offer(reached: _Reached, label: TiePath, loan: Loan) -> None:
    """Keep ``label`` for ``loan`` if it beats the layer's best so far."""
    current = reached.get(loan.loan_id)
    if current is None or label.rank() < current[0].rank():
        reached[loan.loan_id] = (label, loan)


def _from_people(
    search: _TieSearch,
    facts: FrontierFacts,
    periods: dict[str, list[PhonePeriod]],
    subject_layer: bool,
    reached: _Reached,
) -> None:
    """Ties from the frontier people: their own loans (``subject_layer``: the subject's
    own, OWN_DEFAULT), then loans naming a phone they owned on the application day."""
    policy = search.policy
    for loan in facts.own_loans:
        base = search.persons.get(loan.borrower_id)
        if base is None:
            continue
        kind = loan_kind(subject=subject_layer)
        person_node = ref("person", loan.borrower_id)
        if loan.borrower_record is None:
            step = _step(kind, person_node, ref("loan", loan.loan_id), loan.applied_at, policy)
            _offer(reached, base.tie(loan, "", "", step), loan)
            continue
        # the person -> the platform record they were matched to -> its loan
        record_node = ref("record", loan.borrower_record)
        match = _match_step(loan, person_node, record_node, policy)
        step = _step(kind, record_node, ref("loan", loan.loan_id), loan.applied_at, policy)
        _offer(reached, base.tie(loan, "", "", match, step), loan)
    for use in facts.uses:
        loan = use.loan
        period = owner_on(periods.get(use.phone, ()), loan.applied_at)
        if period is None or period.owner_id is None or period.owner_id == loan.borrower_id:
            continue
        base = search.persons.get(period.owner_id)
        if base is None:
            continue
        phone_node = ref("phone", use.phone)
        owns = _step(
            owns_kind(period.verified),
            ref("person", period.owner_id),
            phone_node,
            period.since,
            policy,
        )
        step = _step(
            use_kind(use.role, loan.phone_verified),
            phone_node,
            ref("loan", loan.loan_id),
            loan.applied_at,
            policy,
            use.role,
        )
        _offer(reached, base.tie(loan, use.phone, use.role, owns, step), loan)


def _from_phones(
    search: _TieSearch,
    facts: FrontierFacts,
    periods: dict[str, list[PhonePeriod]],
    reached: _Reached,
) -> None:
    """Ties from a phone subject to the loans naming it (first layer only)."""
    for use in facts.uses:
        base = search.phones.get(use.phone)
        if base is None:
            continue
        loan = use.loan
        period = owner_on(periods.get(use.phone, ()), loan.applied_at)
        owner = period.owner_id if period else None
        now = search.subject_owner_now
        kind = subject_phone_kind(
            use.role,
            loan.phone_verified,
            borrower_owned=owner is not None and owner == loan.borrower_id,
            owner_changed=now is not None and now != owner,
        )
        step = _step(
            kind,
            ref("phone", use.phone),
            ref("loan", loan.loan_id),
            loan.applied_at,
            search.policy,
            use.role,
        )
        _offer(reached, base.tie(loan, use.phone, use.role, step), loan)


def _to_borrowers(search: _TieSearch, reached: _Reached, layer: int) -> dict[str, TiePath]:
    """Record the layer's origins (loans not reached as well before), and go on from each
    loan to its borrower (through the record the loan names them by): the next frontier,
    the best label per person, seen."""
    policy, seen = search.policy, search.seen
    next_persons: dict[str, TiePath] = {}
    for loan_id in sorted(reached):
        label, loan = reached[loan_id]
        node = ref("loan", loan_id)
        if node in seen and seen[node] <= label.rank():
            continue
        seen[node] = label.rank()
        if search.is_origin(loan):
            current = search.origins.get(loan_id)
            if current is None or label.rank() < current.rank():
                search.origins[loan_id] = label
        if layer == policy.max_loans:
            continue
        borrower = ref("person", loan.borrower_id)
        if loan.borrower_record is None:
            nxt = label.chain(_step(CHAIN_STEP, node, borrower, None, policy))
        else:  # the loan -> its borrower's record -> the person it was matched to
            record_node = ref("record", loan.borrower_record)
            nxt = label.chain(
                _step(CHAIN_STEP, node, record_node, None, policy),
                _match_step(loan, record_node, borrower, policy),
            )
        if borrower in seen and seen[borrower] <= nxt.rank():
            continue
        current = next_persons.get(loan.borrower_id)
        if current is None or nxt.rank() < current.rank():
            next_persons[loan.borrower_id] = nxt
    for person, label in next_persons.items():
        seen[ref("person", person)] = label.rank()
    return next_persons


def count_paths(
    facts: GraphBackend | ExplanationFacts,
    subject_kind: SubjectKind,
    subject: str,
    until: date,
    policy: Policy,
    *,
    is_origin: Callable[[Loan], bool],
) -> int:
    """How many tie walks lead from the subject to an origin loan: every walk the search
    could take (the layers, dates and owner periods of :func:`find_ties`, a borrower
    never entered twice on one walk), not only the best one to each loan. This is the
    count of paths a remedy must break (:mod:`spillover.engines.remedy` enumerates the same
    walks; like it, a walk that goes on from a loan to its borrower and ends at that
    same loan as the borrower's own is counted too).

    The walks are counted, not listed: per layer, each (person, people on the walk so
    far) carries the number of walks that end there (on the last layer, where no walk
    goes on, each person alone), and one ``expand`` per layer answers for all of them.
    """
    total = 0
    states: dict[tuple[str, frozenset[str]], int] = {}

    def reached(loan: Loan, depth: int, visited: frozenset[str], walks: int) -> None:
        nonlocal total
        if is_origin(loan):
            total += walks
        if depth < policy.max_loans and loan.borrower_id not in visited:
            # who was on the walk matters only while it goes on: on the last layer the
            # walks that end at one person are counted together
            last = depth + 1 >= policy.max_loans
            key = (loan.borrower_id, frozenset() if last else visited | {loan.borrower_id})
            nxt[key] = nxt.get(key, 0) + walks

    nxt: dict[tuple[str, frozenset[str]], int] = {}
    depth = 0
    if subject_kind == SubjectKind.PHONE:
        first = facts.expand([], [subject], until)
        for use in first.uses:
            if use.phone == subject:
                reached(use.loan, 1, frozenset(), 1)
        states, depth = nxt, 1
    else:
        states = {(subject, frozenset({subject})): 1}
    while states and depth < policy.max_loans:
        nxt = {}
        ties = person_ties(facts.expand(sorted({person for person, _ in states}), [], until))
        for (person, visited), walks in states.items():
            for tie in ties.get(person, ()):
                reached(tie.loan, depth + 1, visited, walks)
        states, depth = nxt, depth + 1
    return total


def _match_step(loan: Loan, source: str, target: str, policy: Policy) -> Step:
    """The match step of the record a loan names its borrower by (either direction)."""
    return _step(match_kind(loan.matched_by or ""), source, target, None, policy)


# ---------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------


def explain(
    backend: GraphBackend,
    entry: Entry,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    diagnose: bool = True,
) -> Explanation:
    """Explain one blacklisting, recorded (``entry.entry_id`` set) or proposed (None).

    The steps: the reach of the listing, the subject resolved (:func:`_resolve_subject`),
    the tie search (:func:`find_ties`), the best paths on to the listing
    (:func:`_shown_paths`), their score and codes (:func:`_codes`), the matches on them
    (:func:`_path_matches`) and the count of every path.

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> e = explain(backend, backend.entries(["E-WL-J"])["E-WL-J"])
    >>> e.verdict.value, e.contamination >= 0.9
    ('spillover', True)
    """
    policy = policy or default_policy()
    proposed = entry.entry_id is None
    chain = (entry,) if proposed else copy_chain(entry, backend)
    sharing = backend.sharing()
    reach = compute_reach(chain, sharing)
    statuses = policy.origin_statuses

    def is_origin(loan: Loan) -> bool:
        return loan.status in statuses and origin_reaches(loan, reach)

    facts = ExplanationFacts(backend)
    resolved = _resolve_subject(backend, entry, policy)
    if resolved is None:
        return _unresolved(backend, entry, policy)
    subject_kind, subject, via, matches = resolved
    ties = find_ties(
        facts,
        subject_kind,
        subject,
        entry.listed_at,
        policy,
        is_origin=is_origin,
        listing_day=entry.listed_at,
        via=via,
    )
    limit = max_paths if max_paths is not None else policy.max_paths
    shown, paths = _shown_paths(ties, reach, proposed, limit)
    result = score(paths[0].responsibility if paths else None, policy)
    codes = _codes(paths)
    if not paths and diagnose:
        codes += (_diagnose(facts, entry, chain, sharing, policy, subject_kind, subject),)
    matches.update(_path_matches(backend, paths, set(matches)))
    total = (
        count_paths(facts, subject_kind, subject, entry.listed_at, policy, is_origin=is_origin)
        if ties
        else 0
    )
    return Explanation(
        entry,
        result.contamination,
        result.verdict,
        tuple(paths),
        codes,
        policy,
        _names(backend, entry, paths, _loans_shown(ties, shown)),
        matches,
        total,
        len(ties),
    )


def _resolve_subject(
    backend: GraphBackend, entry: Entry, policy: Policy
) -> tuple[SubjectKind, str, Step | None, dict[str, Match]] | None:
    """Where the search starts: the entry's subject, or for a listed platform record the
    person it was matched to, through the match step (``via``), with that match; None
    for a record that resolves to no person (it has no path)."""
    if entry.subject_kind != SubjectKind.RECORD:
        return entry.subject_kind, entry.subject, None, {}
    matches = backend.matches([entry.subject])
    found = matches.get(entry.subject)
    if found is None:
        return None
    via = _step(
        match_kind(found.matched_by),
        entry.subject_ref,
        ref("person", found.person_id),
        None,
        policy,
    )
    return SubjectKind.PERSON, found.person_id, via, matches


def _shown_paths(
    ties: dict[str, TiePath], reach: Reach, proposed: bool, limit: int
) -> tuple[list[TiePath], list[ExplanationPath]]:
    """The best ``limit`` tie paths (responsibility, then loans, then origin loan id), and
    each as an explanation path on to the listing."""
    ranked = sorted(
        ties.values(), key=lambda lab: (-lab.responsibility, lab.depth, lab.loans[-1].loan_id)
    )
    shown = ranked[:limit]
    paths = []
    for label in shown:
        loan = label.loans[-1]
        steps = label.steps + route_steps(loan, reach, proposed)
        paths.append(ExplanationPath(loan, rounded(label.responsibility), label.depth, steps))
    return shown, paths


def _codes(paths: list[ExplanationPath]) -> tuple[str, ...]:
    """The reason codes of the best path, or NO_PATH (the diagnosis follows)."""
    if paths:
        return reason_codes(s.code for s in paths[0].steps)
    return (NO_PATH,)


def _loans_shown(ties: dict[str, TiePath], shown: list[TiePath]) -> dict[str, Loan]:
    """Only the loans on the paths given: their borrowers and platforms name them."""
    given = {loan.loan_id for label in shown for loan in label.loans}
    return {
        loan.loan_id: loan
        for label in ties.values()
        for loan in label.loans
        if loan.loan_id in given
    }


def _path_matches(
    backend: GraphBackend, paths: list[ExplanationPath], known: set[str]
) -> dict[str, Match]:
    """The matches of the platform records on ``paths`` not ``known`` yet."""
    on_paths = {
        split_ref(node)[1]
        for p in paths
        for s in p.steps
        if s.rel == MATCHED_TO
        for node in (s.source, s.target)
        if split_ref(node)[0] == SubjectKind.RECORD.value
    } - known
    return backend.matches(sorted(on_paths)) if on_paths else {}


def _unresolved(backend: GraphBackend, entry: Entry, policy: Policy) -> Explanation:
    """The explanation of an entry on a platform record that resolves to no person."""
    result = score(None, policy)
    return Explanation(
        entry,
        result.contamination,
        result.verdict,
        (),
        (NO_PATH, UNRESOLVED_RECORD),
        policy,
        _names(backend, entry, [], {}),
    )


def _diagnose(
    backend: ExplanationFacts,
    entry: Entry,
    chain: tuple[Entry, ...],
    sharing: tuple[Sharing, ...],
    policy: Policy,
    subject_kind: SubjectKind,
    subject: str,
) -> str:
    """Why nothing explains the entry: dates, platform routes, or no tie at all.

    One search ignoring dates finds every overdue or defaulted loan tied to the
    subject (which loans the search visits does not depend on which count as
    origins); their platforms tell the cases apart.
    """
    loose = compute_reach(chain, sharing, ignore_dates=True)
    statuses = policy.origin_statuses
    tied = find_ties(
        backend,
        subject_kind,
        subject,
        date.max,
        policy,
        is_origin=lambda loan: loan.status in statuses,
    )
    if not tied:
        return NO_TIE
    if any(label.loans[-1].platform_id in loose.deadline for label in tied.values()):
        return IGNORES_DATES
    return NO_ROUTE


def _names(
    backend: GraphBackend, entry: Entry, paths: list[ExplanationPath], loans: dict[str, Loan]
) -> dict[str, str]:
    """Display names for the nodes on ``paths`` (only those), the entry's subject and
    platform; a loan on them is named by its borrower and platform (``loans``: the loans
    on ``paths``), so those two are named as well. Nothing the search only touched on the
    way (another origin's loans, their borrowers) is named: the names a check answers with
    are those of the paths it returns (docs/contract.md §3)."""
    refs = {entry.subject_ref, ref("platform", entry.platform_id)}
    for p in paths:
        for s in p.steps:
            refs.update((s.source, s.target))
    for loan in loans.values():
        if ref("loan", loan.loan_id) in refs:
            refs.update((ref("person", loan.borrower_id), ref("platform", loan.platform_id)))
    names = backend.names(sorted(refs))
    for loan in loans.values():
        node = ref("loan", loan.loan_id)
        if node in refs:
            borrower = names.get(ref("person", loan.borrower_id), loan.borrower_id)
            platform = names.get(ref("platform", loan.platform_id), loan.platform_id)
            names[node] = f"{borrower}'s loan at {platform}"
    return names


def proposed_entry(
    platform_id: str, subject_kind: SubjectKind | str, subject: str, at: date
) -> Entry:
    """The entry ``platform_id`` would record listing ``subject`` on ``at`` (no ``entry_id``)."""
    return Entry(None, platform_id, SubjectKind(subject_kind), subject, at)


def check(
    backend: GraphBackend,
    platform_id: str,
    subject_kind: SubjectKind | str,
    subject: str,
    at: date | None = None,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
) -> Explanation:
    """Explain a blacklisting that is only proposed: ``platform_id`` listing ``subject`` on ``at``."""
    at = at or date.today()
    kind = SubjectKind(subject_kind)
    e = explain(
        backend, proposed_entry(platform_id, kind, subject, at), policy, max_paths=max_paths
    )
    # the explanation names every existing person and platform it mentions, so an unknown
    # one shows here without a round trip of its own (the search found nothing for it)
    if ref("platform", platform_id) not in e.names:
        raise NotFoundError(f"unknown platform {platform_id!r}")
    if kind == SubjectKind.PERSON and ref("person", subject) not in e.names:
        raise NotFoundError(f"unknown person {subject!r}")
    if kind == SubjectKind.RECORD and ref("record", subject) not in e.names:
        raise NotFoundError(f"unknown record {subject!r}")
    return e


def explain_entry(
    backend: GraphBackend,
    entry_id: str,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
) -> Explanation:
    """Explain the recorded blacklist entry ``entry_id`` (:class:`NotFoundError` if unknown).

    >>> from spillover import open_folder, examples
    >>> e = explain_entry(open_folder(examples.jiang_case_path()), "E-QT-J")
    >>> e.verdict, e.contamination, e.reason_codes
    (<Verdict.SPILLOVER: 'spillover'>, 0.95, ('EMERGENCY_CONTACT', 'SHARED_BLACKLIST'))
    >>> e.best.origin.loan_id, e.names[e.entry.subject_ref]
    ('XY-AX-1', 'Jiang (bakery owner)')
    """
    entry = backend.entries([entry_id]).get(entry_id)
    if entry is None:
        raise NotFoundError(f"unknown blacklist entry {entry_id!r}")
    return explain(backend, entry, policy, max_paths=max_paths)


def explain_all(
    backend: GraphBackend,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    batch_size: int = 1000,
) -> Iterator[Explanation]:
    """Explain every recorded entry, in ``entry_id`` order."""
    policy = policy or default_policy()
    for batch in backend.iter_entries(batch_size):
        for entry in batch:
            yield explain(backend, entry, policy, max_paths=max_paths)


def explain_about_person(
    backend: GraphBackend,
    person_id: str,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
) -> list[Explanation]:
    """Explanations of every entry that lists ``person_id`` or a phone they owned on the listing day."""
    if not backend.exists(ref("person", person_id)):
        raise NotFoundError(f"unknown person {person_id!r}")
    periods = [
        p for p in backend.expand([person_id], [], date.max).periods if p.owner_id == person_id
    ]
    out = []
    for batch in backend.iter_entries():
        for entry in batch:
            if entry.subject_kind == SubjectKind.PERSON:
                hit = entry.subject == person_id
            elif entry.subject_kind == SubjectKind.RECORD:
                match = backend.matches([entry.subject]).get(entry.subject)
                hit = match is not None and match.person_id == person_id
            else:
                hit = any(p.phone == entry.subject and p.covers(entry.listed_at) for p in periods)
            if hit:
                out.append(explain(backend, entry, policy, max_paths=max_paths))
    return out
