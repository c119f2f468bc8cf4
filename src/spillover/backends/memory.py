"""The embedded backend: a networkx multigraph built from a validated data folder.

Nodes are ``KIND:ID`` references; edges are keyed by the same relationship names
as in Neo4j (:mod:`spillover.rules`: ``OWNS``, ``BORROWED``, ``AT``,
``APPLIED_WITH``, ``LINKS`` with its ``role``, ``ON``, ``LISTS``, ``COPIED_FROM``,
``SHARES_WITH``), so that a graph view or a GraphML export reads like the database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date
from functools import cached_property

import networkx as nx

from ..facts.columns import Columns, columns_from_dataset
from ..facts.graph import neighbourhood_by_expand
from ..facts.model import (
    Dataset,
    Entry,
    FrontierFacts,
    Loan,
    Match,
    PhonePeriod,
    PhoneUse,
    PlatformKind,
    Record,
    Sharing,
    Surroundings,
    record_name,
    ref,
    split_ref,
)
from ..facts.phones import display_phone
from ..rules import (
    APPLICANT,
    AT,
    BORROWED,
    COPIED_FROM,
    HELD_BY,
    LISTS,
    MATCHED_TO,
    ON,
    OWNS,
    ROLES,
    SHARES_WITH,
    loan_in_time,
)

__all__ = ["MemoryBackend", "build_graph"]


def build_graph(data: Dataset) -> nx.MultiDiGraph[str]:
    """The linkage graph of ``data``; nodes are ``KIND:ID`` references, each with its fact.

    >>> from spillover.data.exact import load_folder
    >>> from spillover.examples import jiang_case_path
    >>> g = build_graph(load_folder(jiang_case_path()))
    >>> g.nodes["person:jiang"]["kind"]
    'person'
    """
    g: nx.MultiDiGraph[str] = nx.MultiDiGraph()
    _add_nodes(g, data)
    _add_edges(g, data)
    return g


def _add_nodes(g: nx.MultiDiGraph[str], data: Dataset) -> None:
    """Every node with its fact: people, platforms, owned phones, records, loans (each
    followed by its applicant phone when new), link phones, entries (each followed by its
    subject phone when new)."""
    for p in data.people.values():
        g.add_node(ref("person", p.person_id), kind="person", fact=p)
    for pl in data.platforms.values():
        g.add_node(ref("platform", pl.platform_id), kind="platform", fact=pl)
    for phone, periods in data.phone_periods.items():
        g.add_node(ref("phone", phone), kind="phone", periods=periods)
    for record in data.records.values():
        g.add_node(ref("record", record.record_id), kind="record", fact=record)
    for loan in data.loans.values():
        g.add_node(ref("loan", loan.loan_id), kind="loan", fact=loan)
        if loan.applicant_phone is not None:
            _ensure_phone(g, loan.applicant_phone)
    for link in data.links:
        _ensure_phone(g, link.phone)
    for entry in data.entries.values():
        g.add_node(ref("entry", entry.entry_id or ""), kind="entry", fact=entry)
        if entry.subject_kind == "phone":
            _ensure_phone(g, entry.subject)


def _add_edges(g: nx.MultiDiGraph[str], data: Dataset) -> None:
    """Every relationship, in the order of the facts (their nodes are all there)."""
    for phone, periods in data.phone_periods.items():
        for period in periods:
            if period.owner_id is not None:
                g.add_edge(ref("person", period.owner_id), ref("phone", phone), OWNS, period=period)
    for record in data.records.values():
        node = ref("record", record.record_id)
        g.add_edge(node, ref("platform", record.platform_id), HELD_BY)
        match = data.matches.get(record.record_id)
        if match is not None:
            g.add_edge(node, ref("person", match.person_id), MATCHED_TO, match=match)
    for loan in data.loans.values():
        node = ref("loan", loan.loan_id)
        g.add_edge(ref("person", loan.borrower_id), node, BORROWED)
        g.add_edge(node, ref("platform", loan.platform_id), AT)
        if loan.applicant_phone is not None:
            g.add_edge(
                node,
                ref("phone", loan.applicant_phone),
                ROLES[APPLICANT].stored_as,
                role=APPLICANT,
                verified=loan.phone_verified,
            )
    for link in data.links:
        role = ROLES[link.role.value]
        # several links of one loan to one phone differ by role: the role keys them
        g.add_edge(
            ref("loan", link.loan_id),
            ref("phone", link.phone),
            f"{role.stored_as} {role.name}",
            role=role.name,
        )
    for entry in data.entries.values():
        node = ref("entry", entry.entry_id or "")
        g.add_edge(node, ref("platform", entry.platform_id), ON)
        g.add_edge(node, entry.subject_ref, LISTS)
    for entry in data.entries.values():
        if entry.copied_from is not None:
            g.add_edge(
                ref("entry", entry.entry_id or ""), ref("entry", entry.copied_from), COPIED_FROM
            )
    for s in data.sharing:
        g.add_edge(
            ref("platform", s.from_platform),
            ref("platform", s.to_platform),
            SHARES_WITH,
            since=s.since,
        )


def _ensure_phone(g: nx.MultiDiGraph[str], phone: str) -> None:
    node = ref("phone", phone)
    if node not in g:
        g.add_node(node, kind="phone", periods=())


class MemoryBackend:
    """Graph facts from a validated :class:`Dataset` in memory, indexed by person and
    phone; :attr:`graph` gives the same data as a networkx graph on demand."""

    name = "memory"
    round_trips = False

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self._sharing = tuple(data.sharing)
        self._entry_ids = sorted(data.entries)
        # the facts around each person and phone, indexed once (dicts, no graph)
        self._own: dict[str, list[Loan]] = {}
        self._owned: dict[str, set[str]] = {}
        # each phone's uses, made once (an expand hands them out as they are)
        self._uses: dict[str, list[PhoneUse]] = {}
        for loan in data.loans.values():
            self._own.setdefault(loan.borrower_id, []).append(loan)
            if loan.applicant_phone is not None:
                self._uses.setdefault(loan.applicant_phone, []).append(
                    PhoneUse(loan.applicant_phone, APPLICANT, loan)
                )
        for link in data.links:
            self._uses.setdefault(link.phone, []).append(
                PhoneUse(link.phone, link.role.value, data.loans[link.loan_id])
            )
        for phone, periods in data.phone_periods.items():
            for period in periods:
                if period.owner_id is not None:
                    self._owned.setdefault(period.owner_id, set()).add(phone)
        self._phones = (
            set(data.phone_periods)
            | set(self._uses)
            | {e.subject for e in data.entries.values() if e.subject_kind == "phone"}
        )

    @cached_property
    def graph(self) -> nx.MultiDiGraph[str]:
        """The data as a networkx graph (:func:`build_graph`), built on first use: for
        graph views and exports; explanations do not need it."""
        return build_graph(self.data)

    def entries(self, ids: Collection[str]) -> dict[str, Entry]:
        return {i: self.data.entries[i] for i in ids if i in self.data.entries}

    def iter_entries(self, batch_size: int = 1000) -> Iterator[list[Entry]]:
        for start in range(0, len(self._entry_ids), batch_size):
            yield [self.data.entries[i] for i in self._entry_ids[start : start + batch_size]]

    def sharing(self) -> tuple[Sharing, ...]:
        return self._sharing

    def names(self, refs: Collection[str]) -> dict[str, str]:
        out = {}
        for node in refs:
            kind, ident = split_ref(node)
            if kind == "phone":
                out[node] = display_phone(ident)
            elif kind == "person" and ident in self.data.people:
                out[node] = self.data.people[ident].name
            elif kind == "platform" and ident in self.data.platforms:
                out[node] = self.data.platforms[ident].name
            elif kind == "record" and ident in self.data.records:
                out[node] = record_name(self.data.records[ident])
        return out

    def platform_kinds(self, ids: Collection[str]) -> dict[str, PlatformKind]:
        platforms = self.data.platforms
        return {i: platforms[i].kind for i in ids if i in platforms}

    def matches(self, record_ids: Collection[str]) -> dict[str, Match]:
        found = self.data.matches
        return {r: found[r] for r in record_ids if r in found}

    def record_platforms(self, record_ids: Collection[str]) -> dict[str, str]:
        records = self.data.records
        return {r: records[r].platform_id for r in record_ids if r in records}

    @cached_property
    def _matched(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record_id, match in self.data.matches.items():
            out.setdefault(match.person_id, []).append(record_id)
        return out

    def matched_records(self, persons: Collection[str]) -> tuple[tuple[Record, Match], ...]:
        matched = self._matched
        found = sorted({r for p in persons for r in matched.get(p, ())})
        return tuple((self.data.records[r], self.data.matches[r]) for r in found)

    def exists(self, node: str) -> bool:
        kind, ident = split_ref(node)
        if kind == "phone":
            return ident in self._phones
        found = {
            "person": self.data.people,
            "platform": self.data.platforms,
            "loan": self.data.loans,
            "entry": self.data.entries,
            "record": self.data.records,
        }.get(kind)
        return found is not None and ident in found

    def expand(
        self, persons: Collection[str], phones: Collection[str], until: date
    ) -> FrontierFacts:
        own_loans: list[Loan] = []
        numbers = set(phones)
        bounded = until != date.max  # date.max: every loan (no filter to run)
        for person in persons:
            mine = self._own.get(person, ())
            own_loans.extend(
                (loan for loan in mine if loan_in_time(loan.applied_at, until)) if bounded else mine
            )
            numbers |= self._owned.get(person, set())
        uses: list[PhoneUse] = []
        periods: list[PhonePeriod] = []
        for phone in sorted(numbers):
            if phone not in self._phones:
                continue
            periods.extend(self.data.phone_periods.get(phone, ()))
            named = self._uses.get(phone, ())
            uses.extend(
                (use for use in named if loan_in_time(use.loan.applied_at, until))
                if bounded
                else named
            )
        return FrontierFacts(tuple(periods), tuple(own_loans), tuple(uses))

    def neighbourhood(
        self, persons: Collection[str], phones: Collection[str], platforms: Collection[str] = ()
    ) -> FrontierFacts:
        return neighbourhood_by_expand(self, persons, phones, platforms)

    @cached_property
    def _named_on(self) -> dict[str, list[PhoneUse]]:
        out: dict[str, list[PhoneUse]] = {}
        for uses in self._uses.values():
            for use in uses:
                out.setdefault(use.loan.loan_id, []).append(use)
        return out

    @cached_property
    def _listings(self) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {}
        for entry_id in self._entry_ids:
            entry = self.data.entries[entry_id]
            out.setdefault(entry.subject_ref, []).append(entry)
        return out

    def surroundings(self, loans: Collection[str], subjects: Collection[str]) -> Surroundings:
        named = self._named_on
        listings = self._listings
        return Surroundings(
            tuple(u for loan in dict.fromkeys(loans) for u in named.get(loan, ())),
            tuple(e for s in dict.fromkeys(subjects) for e in listings.get(s, ())),
        )

    def columns(self) -> Columns:
        return columns_from_dataset(self.data)

    def close(self) -> None:
        return None
