"""The embedded backend: a networkx multigraph built from a validated data folder.

Nodes are ``KIND:ID`` references; edges are keyed by the same relationship names
as in Neo4j (:mod:`spillover.rules`: ``OWNS``, ``BORROWED``, ``AT``,
``APPLIED_WITH``, ``LINKS`` with its ``role``, ``ON``, ``LISTS``, ``COPIED_FROM``,
``SHARES_WITH``), so that a graph view or a GraphML export reads like the database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date
from typing import TYPE_CHECKING

import networkx as nx

from ..model import Dataset, Entry, FrontierFacts, PhoneUse, Sharing, ref, split_ref
from ..phones import display_phone
from ..rules import (
    APPLICANT,
    AT,
    BORROWED,
    COPIED_FROM,
    LISTS,
    ON,
    OWNS,
    ROLES,
    SHARES_WITH,
)

if TYPE_CHECKING:
    from ..columns import Columns

__all__ = ["MemoryBackend", "build_graph"]


def build_graph(data: Dataset) -> nx.MultiDiGraph:
    """The linkage graph of ``data``; nodes are ``KIND:ID`` references, each with its fact.

    >>> from spillover.loader import load_folder
    >>> from spillover.examples import jiang_case_path
    >>> g = build_graph(load_folder(jiang_case_path()))
    >>> g.nodes["person:jiang"]["kind"]
    'person'
    """
    g = nx.MultiDiGraph()
    for p in data.people.values():
        g.add_node(ref("person", p.person_id), kind="person", fact=p)
    for p in data.platforms.values():
        g.add_node(ref("platform", p.platform_id), kind="platform", fact=p)
    for phone, periods in data.phone_periods.items():
        g.add_node(ref("phone", phone), kind="phone", periods=periods)
        for period in periods:
            if period.owner_id is not None:
                g.add_edge(ref("person", period.owner_id), ref("phone", phone), OWNS, period=period)
    for loan in data.loans.values():
        node = ref("loan", loan.loan_id)
        g.add_node(node, kind="loan", fact=loan)
        g.add_edge(ref("person", loan.borrower_id), node, BORROWED)
        g.add_edge(node, ref("platform", loan.platform_id), AT)
        if loan.applicant_phone is not None:
            _ensure_phone(g, loan.applicant_phone)
            g.add_edge(
                node,
                ref("phone", loan.applicant_phone),
                ROLES[APPLICANT].stored_as,
                role=APPLICANT,
                verified=loan.phone_verified,
            )
    for link in data.links:
        _ensure_phone(g, link.phone)
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
        g.add_node(node, kind="entry", fact=entry)
        g.add_edge(node, ref("platform", entry.platform_id), ON)
        if entry.subject_kind == "phone":
            _ensure_phone(g, entry.subject)
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
    return g


def _ensure_phone(g: nx.MultiDiGraph, phone: str) -> None:
    node = ref("phone", phone)
    if node not in g:
        g.add_node(node, kind="phone", periods=())


class MemoryBackend:
    """Graph facts from an in-memory :func:`build_graph` graph."""

    name = "memory"
    round_trips = False

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self.graph = build_graph(data)
        self._sharing = tuple(data.sharing)
        self._entry_ids = sorted(data.entries)

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
            elif kind in ("person", "platform") and node in self.graph:
                out[node] = self.graph.nodes[node]["fact"].name
        return out

    def exists(self, node: str) -> bool:
        return node in self.graph

    def expand(
        self, persons: Collection[str], phones: Collection[str], until: date
    ) -> FrontierFacts:
        g = self.graph
        own_loans = []
        phone_nodes = {ref("phone", p) for p in phones}
        for person in persons:
            node = ref("person", person)
            if node not in g:
                continue
            for _, target, key in g.out_edges(node, keys=True):
                if key == BORROWED:
                    loan = g.nodes[target]["fact"]
                    if loan.applied_at <= until:
                        own_loans.append(loan)
                elif key == OWNS:
                    phone_nodes.add(target)
        uses = []
        periods = []
        for node in sorted(phone_nodes):
            if node not in g:
                continue
            periods.extend(g.nodes[node]["periods"])
            for source, _, attrs in g.in_edges(node, data=True):
                if "role" not in attrs:
                    continue
                loan = g.nodes[source]["fact"]
                if loan.applied_at <= until:
                    uses.append(PhoneUse(split_ref(node)[1], attrs["role"], loan))
        return FrontierFacts(tuple(periods), tuple(own_loans), tuple(uses))

    def neighbourhood(self, persons: Collection[str], phones: Collection[str]) -> FrontierFacts:
        people = {p for p in persons if ref("person", p) in self.graph}
        for _ in range(2):
            people |= self._tied_borrowers(people, ())
        from_phones = self._tied_borrowers((), phones)
        people |= from_phones | self._tied_borrowers(from_phones, ())
        full = self.expand(sorted(people), sorted(phones), date.max)
        return FrontierFacts(full.periods, full.own_loans, full.uses, frozenset(people))

    def _tied_borrowers(self, persons: Collection[str], phones: Collection[str]) -> set[str]:
        """Borrowers of loans naming ``phones`` or a phone any of ``persons`` ever owned."""
        exp = self.expand(sorted(persons), sorted(phones), date.max)
        return {use.loan.borrower_id for use in exp.uses}

    def columns(self) -> Columns:
        from ..columns import columns_from_dataset

        return columns_from_dataset(self.data)

    def close(self) -> None:
        return None
