"""The one small interface every graph store implements.

A backend supplies graph facts; it never decides what a path means or how it
scores. That is the core's job (:mod:`spillover.engines.search`), so that the same data
gives the same explanations on every backend.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .model import Entry, FrontierFacts, Match, PlatformKind, Record, Sharing, Surroundings

if TYPE_CHECKING:
    from .columns import Columns

__all__ = ["GraphBackend", "neighbourhood_by_expand"]


@runtime_checkable
class GraphBackend(Protocol):
    """Graph facts, asked for in batches.

    - :meth:`entries`: blacklist entries by id (missing ids are left out);
    - :meth:`iter_entries`: every entry, in ``entry_id`` order, in batches;
    - :meth:`sharing`: every sharing agreement between platforms;
    - :meth:`names`: display names of people, platforms and phones (``person:jiang`` -> ``Jiang``);
      people and platforms not in the graph are left out;
    - :meth:`platform_kinds`: what each platform is (lender, data broker, bank, other);
    - :meth:`exists`: whether a node reference is in the graph;
    - :meth:`expand`: the people, phones and loans one hop around a frontier;
    - :meth:`neighbourhood`: the same for a whole three-layer search, in one go;
    - :meth:`surroundings`: the phones named on given loans, the entries listing given
      people and phones (for graph views and red flags, not for explanations);
    - :meth:`columns`: everything at once, as flat columns, for batch passes;
    - :meth:`matches`: the person each platform record resolves to, and how;
    - :meth:`record_platforms`: the platform that holds each platform record;
    - :meth:`matched_records`: the platform records resolved to given people, and how.
    """

    name: str
    #: whether each call is a round trip to a server (then the core batches requests)
    round_trips: bool

    def entries(self, ids: Collection[str]) -> dict[str, Entry]:
        """The blacklist entries with these ids, by id; ids not in the graph are left out."""
        ...

    def iter_entries(self, batch_size: int = 1000) -> Iterator[list[Entry]]:
        """Every blacklist entry, in ``entry_id`` order, in lists of up to ``batch_size``."""
        ...

    def sharing(self) -> tuple[Sharing, ...]:
        """Every data-sharing agreement between platforms."""
        ...

    def names(self, refs: Collection[str]) -> dict[str, str]:
        """Display names by node reference (``person:jiang`` -> ``Jiang``, a phone its
        number in human form); people and platforms not in the graph are left out."""
        ...

    def platform_kinds(self, ids: Collection[str]) -> dict[str, PlatformKind]:
        """What each platform is (``platforms.kind``; ``other`` when not given), by id;
        ids not in the graph are left out."""
        ...

    def exists(self, node: str) -> bool:
        """Whether the node reference (``KIND:ID``) is in the graph."""
        ...

    def expand(
        self, persons: Collection[str], phones: Collection[str], until: date
    ) -> FrontierFacts:
        """Loans borrowed by ``persons``; loans applied for on or before ``until`` that name
        one of ``phones`` or a phone any of ``persons`` ever owned; and every owner period
        of those phones."""
        ...

    def neighbourhood(
        self, persons: Collection[str], phones: Collection[str], platforms: Collection[str] = ()
    ) -> FrontierFacts:
        """Everything a search of up to three layers from ``persons`` and ``phones`` needs,
        at once: the facts :meth:`expand` gives (with no date bound) for every person
        within two ties of a start person, within one tie of a borrower of a loan naming
        a start phone, and for the start phones; ``covers`` names those people.
        (A tie: a person owns a phone named on another person's loan.) A backend where a
        call is a round trip also gives ``names``: those of the people covered, of the
        borrowers and platforms of the loans given and of ``platforms`` (ids); the
        embedded backends leave it empty."""
        ...

    def surroundings(self, loans: Collection[str], subjects: Collection[str]) -> Surroundings:
        """Every phone named on the loans ``loans`` (ids; as the applicant's number or by a
        link, one :class:`~spillover.facts.model.PhoneUse` each) and every blacklist entry that
        lists one of ``subjects`` (node references ``person:ID`` or ``phone:NUMBER``).
        Unknown ids are left out."""
        ...

    def columns(self) -> Columns:
        """The whole graph as flat columns, for the batch kernel (:mod:`spillover.engines.batch`)."""
        ...

    def matches(self, record_ids: Collection[str]) -> dict[str, Match]:
        """The person each platform record resolves to, and how (docs/contract.md §1), by
        record id; unresolved and unknown records are left out."""
        ...

    def record_platforms(self, record_ids: Collection[str]) -> dict[str, str]:
        """The platform that holds each platform record (``records.platform_id``), by record
        id; unknown records are left out."""
        ...

    def matched_records(self, persons: Collection[str]) -> tuple[tuple[Record, Match], ...]:
        """The platform records resolved to one of ``persons`` (ids: ``records.person_id``
        or a ``matches`` row, the graph's ``MATCHED_TO``), each with its match, in
        ``record_id`` order; unknown people and people with no record are left out."""
        ...

    def close(self) -> None:
        """Release what the backend holds (a driver it opened); embedded backends hold nothing."""
        ...


def neighbourhood_by_expand(
    backend: GraphBackend,
    persons: Collection[str],
    phones: Collection[str],
    platforms: Collection[str] = (),
) -> FrontierFacts:
    """:meth:`GraphBackend.neighbourhood` answered with :meth:`GraphBackend.expand`
    (for embedded backends, where a call is not a round trip; no ``names``, so
    ``platforms`` is not used)."""

    def tied_borrowers(persons: Collection[str], phones: Collection[str]) -> set[str]:
        facts = backend.expand(sorted(persons), sorted(phones), date.max)
        return {use.loan.borrower_id for use in facts.uses}

    people = {p for p in persons if backend.exists(f"person:{p}")}
    for _ in range(2):
        people |= tied_borrowers(people, ())
    from_phones = tied_borrowers((), phones)
    people |= from_phones | tied_borrowers(from_phones, ())
    full = backend.expand(sorted(people), sorted(phones), date.max)
    return FrontierFacts(full.periods, full.own_loans, full.uses, frozenset(people))
