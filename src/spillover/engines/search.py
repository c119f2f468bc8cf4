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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from ..errors import NotFoundError
from ..facts.graph import GraphBackend
from ..facts.model import (
    Entry,
    Loan,
    Match,
    PhonePeriod,
    Sharing,
    SubjectKind,
    ref,
    split_ref,
)
from ..policy import Policy, default_policy
from ..rules import (
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
    match_kind,
    reason_codes,
    relay_day,
    rounded,
    score,
)
from .explanation import Explanation, ExplanationPath, Step, rule_step, step_match
from .ties import (
    ExplanationFacts,
    FactMemo,
    PersonTie,
    TiePath,
    count_paths,
    find_ties,
    owner_on,
    person_ties,
)

__all__ = [
    "Explanation",
    "ExplanationFacts",
    "ExplanationPath",
    "FactMemo",
    "PersonTie",
    "Reach",
    "Step",
    "TiePath",
    "check",
    "compute_reach",
    "copy_chain",
    "count_paths",
    "entries_about",
    "explain",
    "explain_about_person",
    "explain_all",
    "explain_entries",
    "explain_entry",
    "fact_memo",
    "find_ties",
    "listing_steps",
    "origin_reaches",
    "owner_on",
    "person_ties",
    "proposed_entry",
    "route_steps",
    "step_match",
    "with_sources",
]


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


def copy_chain(
    entry: Entry,
    backend: GraphBackend,
    *,
    ignore_dates: bool = False,
    known: Mapping[str, Entry] | None = None,
) -> tuple[Entry, ...]:
    """``entry`` and the entries it was copied from, as long as every copy is in time
    (``ignore_dates``: whatever their days, as the diagnosis of an unexplained entry
    asks). ``known``: entries by id fetched already (:func:`with_sources`), the backend
    asked only for the others."""
    chain = [entry]
    current = entry
    seen = {entry.entry_id}
    while current.copied_from is not None and current.copied_from not in seen:
        source = current.copied_from
        parent = known[source] if known and source in known else None
        parent = parent or backend.entries([source]).get(source)
        if parent is None or (not ignore_dates and parent.listed_at > current.listed_at):
            break
        chain.append(parent)
        seen.add(parent.entry_id)
        current = parent
    return tuple(chain)


def with_sources(backend: GraphBackend, entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` (recorded ones), then every entry they were copied from, directly or
    through other copies, whatever the days (one ``entries`` call per step of the
    longest chain).

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> copy = backend.entries(["E-QT-J"])["E-QT-J"]
    >>> [e.entry_id for e in with_sources(backend, [copy])]
    ['E-QT-J', 'E-TY-J', 'E-QC-PH']
    """
    found = {e.entry_id: e for e in entries if e.entry_id is not None}
    wanted = {e.copied_from for e in found.values() if e.copied_from} - found.keys()
    while wanted:
        got = backend.entries(sorted(x for x in wanted if x is not None))
        found.update(got)
        wanted = {e.copied_from for e in got.values() if e.copied_from} - found.keys()
    return list(found.values())


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
    steps = [rule_step(ORIGIN_STEP, ref("loan", loan.loan_id), ref("platform", platform), at)]
    nxt = reach.next_hop[platform]
    while nxt is not None:
        at = relay_day(at, reach.since[(platform, nxt)])
        steps.append(rule_step(SHARING_STEP, ref("platform", platform), ref("platform", nxt), at))
        platform, nxt = nxt, reach.next_hop[nxt]
    index = reach.target[platform]
    if proposed and index == 0:
        return tuple(steps)
    return (*steps, *listing_steps(reach.chain, index, platform))


def listing_steps(chain: Sequence[Entry], index: int, platform: str) -> tuple[Step, ...]:
    """How a route ends: ``platform`` lists ``chain[index]``, then the copies from it back
    along ``chain`` to ``chain[0]`` (the entry explained)."""
    listed = chain[index]
    steps = [
        rule_step(
            LISTING_STEP,
            ref("platform", platform),
            ref("entry", listed.entry_id or ""),
            listed.listed_at,
        )
    ]
    for i in range(index, 0, -1):
        src, dst = chain[i], chain[i - 1]
        steps.append(
            rule_step(
                COPY_STEP,
                ref("entry", src.entry_id or ""),
                ref("entry", dst.entry_id or ""),
                dst.listed_at,
            )
        )
    return tuple(steps)


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
    memo: FactMemo | None = None,
) -> Explanation:
    """Explain one blacklisting, recorded (``entry.entry_id`` set) or proposed (None).

    The steps: the reach of the listing, the subject resolved (:func:`_resolve_subject`),
    the tie search (:func:`find_ties`), the best paths on to the listing
    (:func:`_shown_paths`), their score and codes (:func:`_codes`), the matches on them
    (:func:`_path_matches`) and the count of every path. ``memo``: facts kept from the
    explanations before this one (:func:`explain_entries`).

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> e = explain(backend, backend.entries(["E-WL-J"])["E-WL-J"])
    >>> e.verdict.value, e.contamination >= 0.9
    ('spillover', True)
    """
    policy = policy or default_policy()
    proposed = entry.entry_id is None
    known = memo.entries if memo is not None else None
    chain = (entry,) if proposed else copy_chain(entry, backend, known=known)
    sharing = backend.sharing()
    reach = compute_reach(chain, sharing)
    statuses = policy.origin_statuses

    def is_origin(loan: Loan) -> bool:
        return loan.status in statuses and origin_reaches(loan, reach)

    # the platforms a path may show (the listing's routes): named with the neighbourhood
    facts = ExplanationFacts(backend, {*reach.deadline, *(e.platform_id for e in chain)}, memo)
    resolved = _resolve_subject(backend, entry, policy)
    if resolved is None:
        return _unresolved(backend, entry, policy, diagnose)
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
        loose_chain = copy_chain(entry, backend, ignore_dates=True, known=known)
        codes += (_diagnose(facts, entry, loose_chain, sharing, policy, subject_kind, subject),)
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
        _names(backend, entry, paths, _loans_shown(ties, shown), facts.known_names),
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
    via = rule_step(
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


def _unresolved(backend: GraphBackend, entry: Entry, policy: Policy, diagnose: bool) -> Explanation:
    """The explanation of an entry on a platform record that resolves to no person (its
    diagnosis, ``RECORD_NOT_RESOLVED``, only when ``diagnose``: audit rows and the
    write-back carry none, docs/contract.md section 3)."""
    result = score(None, policy)
    return Explanation(
        entry,
        result.contamination,
        result.verdict,
        (),
        (NO_PATH, UNRESOLVED_RECORD) if diagnose else (NO_PATH,),
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
    origins); their platforms tell the cases apart, reached along sharing and along
    the copy ``chain`` (:func:`copy_chain` ignoring dates: a copy of a later entry is
    a route only by ignoring dates).
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
    backend: GraphBackend,
    entry: Entry,
    paths: list[ExplanationPath],
    loans: dict[str, Loan],
    known: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Display names for the nodes on ``paths`` (only those), the entry's subject and
    platform; a loan on them is named by its borrower and platform (``loans``: the loans
    on ``paths``), so those two are named as well. Nothing the search only touched on the
    way (another origin's loans, their borrowers) is named: the names a check answers with
    are those of the paths it returns (docs/contract.md §3). ``known``: names fetched
    already (with the neighbourhood, :attr:`ExplanationFacts.known_names`); only those
    wanted are taken from it, and the backend is asked for the rest alone."""
    refs = {entry.subject_ref, ref("platform", entry.platform_id)}
    for p in paths:
        for s in p.steps:
            refs.update((s.source, s.target))
    for loan in loans.values():
        if ref("loan", loan.loan_id) in refs:
            refs.update((ref("person", loan.borrower_id), ref("platform", loan.platform_id)))
    names = _wanted_names(backend, sorted(refs), known or {})
    for loan in loans.values():
        node = ref("loan", loan.loan_id)
        if node in refs:
            borrower = names.get(ref("person", loan.borrower_id), loan.borrower_id)
            platform = names.get(ref("platform", loan.platform_id), loan.platform_id)
            names[node] = f"{borrower}'s loan at {platform}"
    return names


def _wanted_names(
    backend: GraphBackend, wanted: list[str], known: Mapping[str, str]
) -> dict[str, str]:
    """``backend.names(wanted)``, with the names in ``known`` not asked for again; in the
    order of ``wanted`` (the embedded backends' order) when ``known`` helped."""
    if not known:
        return backend.names(wanted)
    missing = [r for r in wanted if r not in known]
    fetched = backend.names(missing) if missing else {}
    return {r: known[r] if r in known else fetched[r] for r in wanted if r in known or r in fetched}


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
    """Explain a blacklisting that is only proposed: ``platform_id`` listing ``subject`` on
    ``at`` (default: today in UTC, the day the check service takes, docs/service.md)."""
    at = at or datetime.now(UTC).date()
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


def explain_entries(
    backend: GraphBackend,
    entries: Sequence[Entry],
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    diagnose: bool = True,
    memo: FactMemo | None = None,
) -> list[Explanation]:
    """:func:`explain` of each of ``entries``, in their order, the same explanations.

    On a backend where every call is a round trip (Neo4j) the explanations share the
    facts they fetch (:class:`~spillover.engines.ties.FactMemo`): the neighbourhood of
    every person and phone they list comes first, in one request, and each later fact
    is fetched once, not once per entry (the owners of a number reassigned 2,000 times
    each fetched its 2,000 loans again). ``memo``: facts kept already (by
    :func:`~spillover.engines.around.reachable_columns` of the same entries, say), used
    instead of that first request.

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> found = backend.entries(["E-QT-J", "E-WL-J"])
    >>> [e.verdict.value for e in explain_entries(backend, list(found.values()))]
    ['spillover', 'spillover']
    """
    policy = policy or default_policy()
    if memo is None:
        memo = fact_memo(backend, entries)
    return [
        explain(backend, e, policy, max_paths=max_paths, diagnose=diagnose, memo=memo)
        for e in entries
    ]


def fact_memo(backend: GraphBackend, entries: Sequence[Entry]) -> FactMemo | None:
    """On a backend where each call is a round trip, a :class:`FactMemo` holding the
    neighbourhood of every person and phone ``entries`` list (one request) and every
    entry their copy chains lead to (:func:`with_sources`: a request per step of the
    longest chain, not per step of each), for their explanations to share; None on the
    others (their facts are in memory already)."""
    if not backend.round_trips or not entries:
        return None
    memo = FactMemo()
    memo.keep_entries(with_sources(backend, entries))
    persons = list(
        dict.fromkeys(e.subject for e in entries if e.subject_kind == SubjectKind.PERSON)
    )
    phones = list(dict.fromkeys(e.subject for e in entries if e.subject_kind == SubjectKind.PHONE))
    if persons or phones:
        platforms = sorted({e.platform_id for e in entries})
        memo.keep_neighbourhood(backend.neighbourhood(persons, phones, platforms), phones)
    return memo


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
        yield from explain_entries(backend, batch, policy, max_paths=max_paths)


def explain_about_person(
    backend: GraphBackend,
    person_id: str,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
) -> list[Explanation]:
    """Explanations of every entry that lists ``person_id``, a phone they owned on the
    listing day or a platform record resolved to them (:func:`entries_about`), in
    ``entry_id`` order."""
    hits = entries_about(backend, SubjectKind.PERSON, person_id)
    return explain_entries(backend, hits, policy, max_paths=max_paths)


def entries_about(
    backend: GraphBackend, subject_kind: SubjectKind | str, subject: str
) -> list[Entry]:
    """Every recorded entry on a person (listing them, a phone they owned on the listing
    day, or a platform record that resolves to them) or on a phone, in ``entry_id``
    order (:class:`NotFoundError` for an unknown subject). Found by their subjects
    (:meth:`GraphBackend.surroundings`), not by reading every entry of the graph.

    >>> from spillover import open_folder, examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> [e.entry_id for e in entries_about(backend, "person", "jiang")][:3]
    ['E-AX-PH', 'E-HQ-PH', 'E-JD-PH']
    """
    kind = SubjectKind(subject_kind)
    if not backend.exists(ref(kind.value, subject)):
        raise NotFoundError(f"unknown {kind.value} {subject!r}")
    periods: list[PhonePeriod] = []
    records: list[str] = []
    if kind == SubjectKind.PERSON:
        periods = [
            p for p in backend.expand([subject], [], date.max).periods if p.owner_id == subject
        ]
        records = [r.record_id for r, _ in backend.matched_records([subject])]
    subjects = [
        ref(kind.value, subject),
        *(ref("phone", n) for n in dict.fromkeys(p.phone for p in periods)),
        *(ref("record", r) for r in records),
    ]
    found = backend.surroundings((), subjects).entries
    # a record listed counts when it resolves to the person, as explain resolves it
    resolved = backend.matches(records) if records else {}
    out = [
        e
        for e in found
        if (e.subject_kind == kind and e.subject == subject)
        or (
            e.subject_kind == SubjectKind.PHONE
            and any(p.phone == e.subject and p.covers(e.listed_at) for p in periods)
        )
        or (
            e.subject_kind == SubjectKind.RECORD
            and e.subject in resolved
            and resolved[e.subject].person_id == subject
        )
    ]
    return sorted(out, key=lambda e: e.entry_id or "")
