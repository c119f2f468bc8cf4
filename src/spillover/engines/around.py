"""The part of a graph that the searches of some entries read, as columns: the batch pass
over a few entries of a backend where reading the whole graph is a long wait (Neo4j).

An entry's search reads only what it can reach (:mod:`.batch.incremental` relies on the
same): from its subject (the person a listed record resolves to, or a phone), each
person's own loans and the loans naming a number they owned, each number's owner
periods, each loan's borrower, up to ``policy.max_loans`` loans deep; and the reach of
the origin platforms to the listing (the sharing agreements, the entry's copy chain).
:func:`reachable_columns` walks those layers breadth first with no date bound and no
pruning (a superset of every search's), keeping every fact of each person and number it
comes to (:class:`~spillover.engines.ties.FactMemo`), so that the batch pass over these
columns gives the entries the answers it gives over the whole graph (a property test on
every backend holds the two to each other: tests/test_behaviour.py).

On Neo4j each layer is one ``expand`` request (not the three-layer ``neighbourhood``
an explanation starts with: Neo4j answers that for each start person apart, 1.8-2.6 s
for the 249 owners of a number reassigned 2,000 times, where the three expands take
0.2 s). That view is scored by one pass over its 2,000 loans instead of 249 searches of
them in Python (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

import numpy as np

from ..facts.columns import Columns, columns_from_facts
from ..facts.graph import GraphBackend
from ..facts.model import APPLICANT, Entry, LinkRole, Loan, LoanLink, Match, SubjectKind
from ..policy import Policy, default_policy
from .search import with_sources
from .ties import FactMemo

__all__ = ["reachable_columns"]


def reachable_columns(
    backend: GraphBackend,
    entries: Sequence[Entry],
    policy: Policy | None = None,
    memo: FactMemo | None = None,
) -> Columns:
    """The columns of every fact the searches of ``entries`` (recorded ones) can read: the
    batch pass over them (:class:`~spillover.engines.batch.Index`) scores these entries
    as over the whole graph. ``memo`` (filled here; a new one when None): the facts of
    each person and number come to, for explanations of the same entries after it
    (:func:`~spillover.engines.search.explain_entries`).

    >>> from spillover import open_folder, examples
    >>> from spillover.engines.batch import Index, rows
    >>> backend = open_folder(examples.jiang_case_path())
    >>> entry = backend.entries(["E-WL-J"])["E-WL-J"]
    >>> cols = reachable_columns(backend, [entry])
    >>> [(r["entry_id"], r["verdict"]) for r in rows(Index(cols).audit(), default_policy())]
    [('E-WL-J', 'spillover')]
    """
    policy = policy or default_policy()
    memo = memo if memo is not None else FactMemo()
    listed = with_sources(backend, entries)
    memo.keep_entries(listed)
    records = sorted({e.subject for e in listed if e.subject_kind == SubjectKind.RECORD})
    matches = backend.matches(records) if records else {}
    persons = list(
        dict.fromkeys(
            [e.subject for e in listed if e.subject_kind == SubjectKind.PERSON]
            + [m.person_id for m in matches.values()]
        )
    )
    phones = list(dict.fromkeys(e.subject for e in listed if e.subject_kind == SubjectKind.PHONE))
    loans, numbers = _reached(backend, memo, persons, phones, policy.max_loans)
    borrowed = sorted({x.borrower_record for x in loans.values() if x.borrower_record})
    unmatched = [r for r in borrowed if r not in matches]
    if unmatched:
        matches |= backend.matches(unmatched)
    # every owner period and use of each number reached (its uses' loans are all reached)
    periods = [p for n in numbers for p in memo.periods[n]]
    links = [
        LoanLink(u.loan.loan_id, u.phone, LinkRole(u.role))
        for n in numbers
        for u in memo.uses[n]
        if u.role != APPLICANT
    ]
    people = {
        *persons,
        *(x.borrower_id for x in loans.values()),
        *(p.owner_id for p in periods if p.owner_id),
        *(m.person_id for m in matches.values()),
    }
    sharing = backend.sharing()
    platforms = {
        *(x.platform_id for x in loans.values()),
        *(e.platform_id for e in listed),
        *(s.from_platform for s in sharing),
        *(s.to_platform for s in sharing),
    }
    cols = columns_from_facts(
        sorted(people),
        sorted(platforms),
        periods,
        list(loans.values()),
        links,
        listed,
        sharing,
    )
    if not matches:
        return cols
    return _with_matches(cols, list(loans.values()), matches)


def _reached(
    backend: GraphBackend, memo: FactMemo, persons: list[str], phones: list[str], depth: int
) -> tuple[dict[str, Loan], list[str]]:
    """Every loan within ``depth`` loans of ``persons`` and ``phones`` (breadth first, no
    date bound) by id, and every number on the way (the start phones, the numbers each
    person ever owned); the facts of each person and number kept in ``memo`` (one
    ``expand`` per layer for those it does not hold yet)."""
    loans: dict[str, Loan] = {}
    numbers = dict.fromkeys(phones)
    seen = set(persons)
    for layer in range(1, depth + 1):
        if not persons and not phones:
            break
        new_persons, new_phones = memo.unknown(persons, phones)
        if new_persons or new_phones:
            memo.keep(new_persons, new_phones, backend.expand(new_persons, new_phones, date.max))
        facts = memo.take(persons, phones)
        numbers.update(dict.fromkeys(n for p in persons for n in memo.numbers[p]))
        reached = [*facts.own_loans, *(u.loan for u in facts.uses)]
        loans.update((x.loan_id, x) for x in reached)
        if layer == depth:
            break
        persons = sorted({x.borrower_id for x in reached} - seen)
        phones = []
        seen.update(persons)
    return loans, list(numbers)


def _with_matches(cols: Columns, loans: list[Loan], matches: dict[str, Match]) -> Columns:
    """``cols`` with each loan's borrower record and the matches of the records."""
    record = np.asarray([x.borrower_record or "" for x in loans], dtype=object)
    return replace(cols, loan_record=record, matches=matches)
