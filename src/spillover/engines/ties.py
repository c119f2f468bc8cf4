"""Ties (subject -> origin loan): the layered best-path search of one subject
(:func:`find_ties`), and the count of every tie walk (:func:`count_paths`).

The linkage graph is walked from the subject in layers, one loan per layer, up to
``policy.max_loans`` loans deep (:mod:`spillover.engines.search` lists the ties); every walk
steps from a person to a loan as :func:`person_ties` says: their own loans, and loans
naming a phone they owned on the application day.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date

from ..facts.graph import GraphBackend
from ..facts.model import (
    Entry,
    FrontierFacts,
    Loan,
    PhonePeriod,
    PhoneUse,
    SubjectKind,
    ref,
)
from ..policy import Policy
from ..rules import (
    CHAIN_STEP,
    loan_in_time,
    loan_kind,
    match_kind,
    owns_kind,
    subject_phone_kind,
    use_kind,
)
from .explanation import Step, rule_step

__all__ = [
    "ExplanationFacts",
    "FactMemo",
    "OwnerPeriods",
    "PersonTie",
    "TiePath",
    "count_paths",
    "find_ties",
    "owner_on",
    "owner_periods",
    "person_ties",
]


# ---------------------------------------------------------------------------
# Ties: layered best-path search from the subject, one loan per layer
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TiePath:
    """A tie path (subject -> loan), or a partial one: its responsibility, loans so far,
    steps, and tie-break key.

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
    """The owner period of ``periods`` (one phone's) covering ``day``, if any (a scan:
    for many lookups on one phone, :class:`OwnerPeriods`)."""
    for period in periods:
        if period.covers(day):
            return period
    return None


@dataclass(frozen=True, slots=True)
class OwnerPeriods:
    """The owner periods of one phone in the order of their first day, found by day in
    logarithmic time: a number reassigned n times, named on n loans, costs n log n, not n
    squared. Periods of one number never overlap (docs/contract.md §1), so the one
    covering a day is the last to begin on or before it, if it has not ended."""

    periods: tuple[PhonePeriod, ...]
    starts: tuple[date, ...]

    @classmethod
    def of(cls, periods: Iterable[PhonePeriod]) -> OwnerPeriods:
        """``periods`` (one phone's), sorted by their first day (an open start first)."""
        ordered = sorted(periods, key=lambda p: p.since or date.min)
        return cls(tuple(ordered), tuple(p.since or date.min for p in ordered))

    def on(self, day: date) -> PhonePeriod | None:
        """The period covering ``day``, if any (as :func:`owner_on`)."""
        at = bisect_right(self.starts, day) - 1
        if at >= 0 and self.periods[at].covers(day):
            return self.periods[at]
        return None


def owner_periods(periods: Iterable[PhonePeriod]) -> dict[str, OwnerPeriods]:
    """Every phone's :class:`OwnerPeriods`, from the owner periods of any phones."""
    by_phone: dict[str, list[PhonePeriod]] = {}
    for period in periods:
        by_phone.setdefault(period.phone, []).append(period)
    return {phone: OwnerPeriods.of(held) for phone, held in by_phone.items()}


_NO_PERIODS = OwnerPeriods((), ())


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
    ties: dict[str, list[PersonTie]] = {}
    for person, loan, use, held in _each_tie(found):
        ties.setdefault(person, []).append(PersonTie(loan, use, held))
    return ties


def _each_tie(
    found: FrontierFacts,
) -> Iterator[tuple[str, Loan, PhoneUse | None, PhonePeriod | None]]:
    """Each tie of :func:`person_ties` as ``(person, loan, use, period)``, in its order."""
    for loan in found.own_loans:
        yield loan.borrower_id, loan, None, None
    periods = owner_periods(found.periods)
    for use in found.uses:
        held = periods.get(use.phone, _NO_PERIODS).on(use.loan.applied_at)
        owner = held.owner_id if held else None
        if owner is not None and owner != use.loan.borrower_id:
            yield owner, use.loan, use, held


class FactMemo:
    """The facts of several explanations of one run, kept by person and by phone, so
    that each is fetched once (explanations of many entries on a backend where every
    call is a round trip: :func:`spillover.engines.search.explain_entries`).

    What :meth:`GraphBackend.expand` gives for a frontier (no date bound) is the union
    of what it gives for each of its people (their own loans, the numbers they ever
    owned) and each number (its owner periods, the loans naming it): the memo keeps
    those parts and answers a frontier all of whose people and numbers it holds.

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> memo = FactMemo()
    >>> memo.keep(["jiang"], [], backend.expand(["jiang"], [], date.max))
    >>> memo.unknown(["jiang", "xu_yan"], [])
    (['xu_yan'], [])
    >>> [loan.loan_id for loan in memo.take(["jiang"], []).own_loans]
    ['J-2019-BIZ']
    """

    def __init__(self) -> None:
        self.own_loans: dict[str, tuple[Loan, ...]] = {}
        self.numbers: dict[str, tuple[str, ...]] = {}  # person -> numbers they ever owned
        self.periods: dict[str, tuple[PhonePeriod, ...]] = {}  # number -> owner periods
        self.uses: dict[str, tuple[PhoneUse, ...]] = {}  # number -> loans naming it
        #: display names a neighbourhood gave (a hint, as FrontierFacts.names)
        self.names: dict[str, str] = {}
        #: entries by id: those explained and every entry they were copied from (their
        #: copy chains, followed without a round trip per step)
        self.entries: dict[str, Entry] = {}

    def unknown(self, persons: Iterable[str], phones: Iterable[str]) -> tuple[list[str], list[str]]:
        """The people and numbers of a frontier whose facts are not kept yet."""
        return (
            [p for p in persons if p not in self.own_loans],
            [n for n in phones if n not in self.uses],
        )

    def keep(self, persons: Collection[str], phones: Collection[str], facts: FrontierFacts) -> None:
        """Keep ``facts``: what :meth:`GraphBackend.expand` gave for ``persons`` and
        ``phones`` with no date bound (so it holds everything about each of them)."""
        people = set(persons)
        own: dict[str, list[Loan]] = {p: [] for p in people}
        numbers: dict[str, list[str]] = {p: [] for p in people}
        for loan in facts.own_loans:
            if loan.borrower_id in own:
                own[loan.borrower_id].append(loan)
        periods: dict[str, list[PhonePeriod]] = {}
        for period in facts.periods:
            periods.setdefault(period.phone, []).append(period)
            if period.owner_id in numbers:
                numbers[period.owner_id].append(period.phone)
        uses: dict[str, list[PhoneUse]] = {}
        for use in facts.uses:
            uses.setdefault(use.phone, []).append(use)
        # every number the answer covers: those asked for and those of the people asked for
        covered = set(phones).union(*numbers.values())
        for person in people:
            self.own_loans[person] = tuple(own[person])
            self.numbers[person] = tuple(dict.fromkeys(numbers[person]))
        for number in covered:
            self.periods[number] = tuple(periods.get(number, ()))
            self.uses[number] = tuple(uses.get(number, ()))

    def keep_entries(self, entries: Iterable[Entry]) -> None:
        """Keep recorded entries by id (``entries``: the copy chains' steps, read by
        :func:`~spillover.engines.search.copy_chain` without a round trip each)."""
        self.entries.update((e.entry_id, e) for e in entries if e.entry_id is not None)

    def keep_neighbourhood(self, around: FrontierFacts, phones: Collection[str]) -> None:
        """Keep a neighbourhood (:meth:`GraphBackend.neighbourhood` of ``phones`` and some
        people): everything about the people it covers and the numbers asked for."""
        self.keep(around.covers, phones, around)
        self.names.update(around.names)

    def take(self, persons: Collection[str], phones: Collection[str]) -> FrontierFacts:
        """What :meth:`GraphBackend.expand` gives for a frontier the memo holds whole
        (no date bound), people and numbers in the order asked, then numbers owned."""
        numbers = dict.fromkeys(phones)
        for person in persons:
            numbers.update(dict.fromkeys(self.numbers[person]))
        return FrontierFacts(
            tuple(p for n in numbers for p in self.periods[n]),
            tuple(loan for person in persons for loan in self.own_loans[person]),
            tuple(u for n in numbers for u in self.uses[n]),
        )


#: a frontier as asked for: its people and its numbers
_Frontier = tuple[tuple[str, ...], tuple[str, ...]]


class ExplanationFacts:
    """The graph facts of one explanation, fetched in as few round trips as possible.

    On a backend where every call is a round trip (Neo4j), the first request fetches
    the whole three-layer neighbourhood of the subject in one
    (:meth:`GraphBackend.neighbourhood`); later layers are answered from it while
    their people are covered, else from :meth:`GraphBackend.expand`; the names that
    neighbourhood gives (:attr:`known_names`) spare the explanation's ``names`` call.
    Facts are fetched without a date bound and filtered here, so the main search and
    the diagnosis (which ignores dates) share them.
    """

    def __init__(
        self,
        backend: GraphBackend,
        platforms: Collection[str] = (),
        memo: FactMemo | None = None,
    ) -> None:
        self.backend = backend
        #: the platforms whose names the neighbourhood gives as well (the listing's routes)
        self.platforms = sorted(platforms)
        #: facts kept from earlier explanations of the same run (several entries), if any
        self.memo = memo
        self.seen: dict[_Frontier, FrontierFacts] = {}
        #: the same, bounded by a day (the search and the count of paths ask alike)
        self.bounded: dict[tuple[_Frontier, date], FrontierFacts] = {}
        self.around: FrontierFacts | None = None
        self.around_phones: frozenset[str] = frozenset()

    @property
    def known_names(self) -> Mapping[str, str]:
        """The display names fetched with the neighbourhood so far (none on embedded
        backends): more than an explanation shows, so pick from them."""
        if self.around is not None:
            return self.around.names
        return self.memo.names if self.memo is not None else {}

    def expand(self, persons: list[str], phones: list[str], until: date) -> FrontierFacts:
        """The facts :meth:`GraphBackend.expand` gives, each frontier fetched only once
        (and, with a :class:`FactMemo`, each person and phone once over several
        explanations)."""
        key = (tuple(persons), tuple(phones))
        bounded = self.bounded.get((key, until))
        if bounded is not None:
            return bounded
        full = self.seen.get(key)
        if full is None and self.memo is not None:
            new_persons, new_phones = self.memo.unknown(persons, phones)
            if new_persons or new_phones:
                self.memo.keep(new_persons, new_phones, self._fetch(new_persons, new_phones))
            full = self.memo.take(persons, phones)
        elif full is None:
            full = self._fetch(persons, phones)
        self.seen[key] = full
        if until == date.max:
            return full
        bounded = FrontierFacts(
            full.periods,
            tuple(loan for loan in full.own_loans if loan_in_time(loan.applied_at, until)),
            tuple(use for use in full.uses if loan_in_time(use.loan.applied_at, until)),
        )
        self.bounded[(key, until)] = bounded
        return bounded

    def _fetch(self, persons: list[str], phones: list[str]) -> FrontierFacts:
        """The facts of a frontier from the neighbourhood when it covers it, else from
        :meth:`GraphBackend.expand` (the first request fetches the neighbourhood)."""
        if self.around is None:
            if self.backend.round_trips:
                self.around = self.backend.neighbourhood(persons, phones, self.platforms)
                self.around_phones = frozenset(phones)
                if self.memo is not None:
                    self.memo.keep_neighbourhood(self.around, phones)
            else:
                self.around = FrontierFacts()  # covers nobody: every layer asks expand
        if (
            self.around.covers
            and set(persons) <= self.around.covers
            and set(phones) <= self.around_phones
        ):
            return _part(self.around, set(persons), set(phones))
        return self.backend.expand(persons, phones, date.max)


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
        if layer == policy.max_loans:
            # on the last layer a loan matters only as an origin: no walk goes on from it
            facts = _origins_only(facts, is_origin)
        periods = owner_periods(facts.periods)
        if layer == 1 and subject_kind == SubjectKind.PHONE and listing_day is not None:
            now = periods.get(subject, _NO_PERIODS).on(listing_day)
            search.subject_owner_now = now.owner_id if now else None
        reached: _Reached = {}
        _from_people(
            search, facts, periods, layer == 1 and subject_kind == SubjectKind.PERSON, reached
        )
        _from_phones(search, facts, periods, reached)
        search.persons, search.phones = _to_borrowers(search, reached, layer), {}
    return search.origins


def _origins_only(facts: FrontierFacts, is_origin: Callable[[Loan], bool]) -> FrontierFacts:
    """``facts`` with only the loans that may originate the listing (owner periods kept)."""
    return FrontierFacts(
        facts.periods,
        tuple(loan for loan in facts.own_loans if is_origin(loan)),
        tuple(use for use in facts.uses if is_origin(use.loan)),
    )


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
    periods: dict[str, OwnerPeriods],
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
            step = rule_step(kind, person_node, ref("loan", loan.loan_id), loan.applied_at, policy)
            _offer(reached, base.tie(loan, "", "", step), loan)
            continue
        # the person -> the platform record they were matched to -> its loan
        record_node = ref("record", loan.borrower_record)
        match = _match_step(loan, person_node, record_node, policy)
        step = rule_step(kind, record_node, ref("loan", loan.loan_id), loan.applied_at, policy)
        _offer(reached, base.tie(loan, "", "", match, step), loan)
    for use in facts.uses:
        loan = use.loan
        period = periods.get(use.phone, _NO_PERIODS).on(loan.applied_at)
        if period is None or period.owner_id is None or period.owner_id == loan.borrower_id:
            continue
        base = search.persons.get(period.owner_id)
        if base is None:
            continue
        phone_node = ref("phone", use.phone)
        owns = rule_step(
            owns_kind(period.verified),
            ref("person", period.owner_id),
            phone_node,
            period.since,
            policy,
        )
        step = rule_step(
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
    periods: dict[str, OwnerPeriods],
    reached: _Reached,
) -> None:
    """Ties from a phone subject to the loans naming it (first layer only)."""
    for use in facts.uses:
        base = search.phones.get(use.phone)
        if base is None:
            continue
        loan = use.loan
        period = periods.get(use.phone, _NO_PERIODS).on(loan.applied_at)
        owner = period.owner_id if period else None
        now = search.subject_owner_now
        kind = subject_phone_kind(
            use.role,
            loan.phone_verified,
            borrower_owned=owner is not None and owner == loan.borrower_id,
            owner_changed=now is not None and now != owner,
        )
        step = rule_step(
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
            nxt = label.chain(rule_step(CHAIN_STEP, node, borrower, None, policy))
        else:  # the loan -> its borrower's record -> the person it was matched to
            record_node = ref("record", loan.borrower_record)
            nxt = label.chain(
                rule_step(CHAIN_STEP, node, record_node, None, policy),
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
        loans: dict[str, list[Loan]] = {}
        for person, loan, _, _ in _each_tie(
            facts.expand(sorted({person for person, _ in states}), [], until)
        ):
            loans.setdefault(person, []).append(loan)
        for (person, visited), walks in states.items():
            for loan in loans.get(person, ()):
                reached(loan, depth + 1, visited, walks)
        states, depth = nxt, depth + 1
    return total


def _match_step(loan: Loan, source: str, target: str, policy: Policy) -> Step:
    """The match step of the record a loan names its borrower by (either direction)."""
    return rule_step(match_kind(loan.matched_by or ""), source, target, None, policy)
