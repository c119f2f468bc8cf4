"""The exploration view: the ego network of a person or a phone, as a plain typed graph.

:func:`neighborhood` walks a :class:`~spillover.backends.GraphBackend` outwards from
one person or phone, ``hops`` steps over people, phones and loans (a person owns
phones and borrowed loans; a phone is owned by people and named on loans; a loan
has a borrower and names phones), and hangs on every node what an investigator
reads next to it: a loan's platform, the blacklist entries listing a person or a
phone (each with its contamination and verdict, computed by the core, the same on
every backend) and those entries' platforms; on a person also the platform records
resolved to them (``MATCHED_TO``, with how they were matched), each with its platform
and the entries listing it. Platforms, records and entries are leaves: the walk does
not go on through them (a platform touches everything).

The result is a :class:`Neighborhood` of small frozen dataclasses, capped at
``max_nodes`` (a hub phone can be named on thousands of loans): nodes are taken
layer by layer, each layer in a fixed order (people, phones, loans; then by id),
and what did not fit is counted in :attr:`Neighborhood.omitted` and said in
:attr:`Neighborhood.note`. The same data gives the same view on every backend.

:func:`write_view` writes it as JSON, GraphML (scalar attributes only, for Gephi or
yEd) or one offline HTML file (Neo4j's ``neo4j-viz``; ``pip install 'spillover[view]'``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

import networkx as nx
import numpy as np

from ..data.outputs import check_outside, check_parent_folder
from ..engines.around import reachable_columns
from ..engines.batch import CodedGraph, Index
from ..engines.batch import rows as pass_rows
from ..engines.batch.audit import audit_entries
from ..engines.search import explain_entries
from ..engines.ties import FactMemo
from ..errors import NotFoundError, OptionError, SpilloverError
from ..facts.graph import GraphBackend
from ..facts.model import (
    Entry,
    Loan,
    LoanStatus,
    Match,
    PhonePeriod,
    PhoneUse,
    Record,
    record_name,
    ref,
    split_ref,
)
from ..facts.phonecodes import codes_in
from ..facts.phones import display_phone
from ..files.write import atomic_file
from ..policy import Policy, default_policy
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
    Verdict,
)
from ..text.safe import printable, xml_text
from ..text.wording import count

__all__ = [
    "DEFAULT_HOPS",
    "DEFAULT_MAX_NODES",
    "FORMATS",
    "KIND_COLOURS",
    "VERDICT_COLOURS",
    "Neighborhood",
    "ViewEdge",
    "ViewNode",
    "check_view_out",
    "neighborhood",
    "to_html",
    "to_json",
    "to_networkx",
    "write_view",
]

DEFAULT_HOPS = 3
DEFAULT_MAX_NODES = 500
FORMATS = ("html", "graphml", "json")

#: the order nodes of one layer are taken in, and the kinds a view holds
KINDS = ("person", "phone", "loan", "platform", "entry", "record")
_LEAVES = ("platform", "entry", "record")

#: node colours by kind (entries are coloured by verdict instead)
KIND_COLOURS: Mapping[str, str] = {
    "person": "#4e79a7",
    "phone": "#59a14f",
    "loan": "#edc948",
    "platform": "#9c755f",
    "entry": "#bab0ac",
    "record": "#76b7b2",
}
#: entry colours by verdict
VERDICT_COLOURS: Mapping[Verdict, str] = {
    Verdict.SPILLOVER: "#e15759",
    Verdict.OWN_CONDUCT: "#79706e",
    Verdict.UNEXPLAINED: "#f28e2b",
}
#: loans in these statuses are drawn darker (they can start a spread)
_BAD_LOAN_COLOUR = "#b07aa1"
_BAD_STATUSES = (LoanStatus.OVERDUE.value, LoanStatus.DEFAULTED.value)

Scalar = str | int | float | bool

_PLURAL = {
    "person": "people",
    "phone": "phones",
    "loan": "loans",
    "platform": "platforms",
    "entry": "entries",
    "record": "records",
}


@dataclass(frozen=True, slots=True)
class ViewNode:
    """A node: ``id`` is its reference (``person:jiang``), ``attrs`` scalar fields only."""

    id: str
    kind: str
    label: str
    hop: int
    attrs: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ViewEdge:
    """A stored relationship (:mod:`spillover.rules` names) with its day(s) in ``attrs``."""

    source: str
    target: str
    rel: str
    attrs: Mapping[str, Scalar] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes the edge itself: its ends, its relationship and its label."""
        return (self.source, self.target, self.rel, _edge_label(self))


@dataclass(frozen=True, slots=True)
class Neighborhood:
    """The ego network of ``subject`` (a node reference) up to ``hops`` steps."""

    subject: str
    label: str
    hops: int
    max_nodes: int
    nodes: tuple[ViewNode, ...]
    edges: tuple[ViewEdge, ...]
    #: nodes found but left out by the cap, by kind
    omitted: Mapping[str, int]
    #: the layer at which the cap was reached (None: everything within ``hops`` is shown)
    cut_at_hop: int | None

    @property
    def note(self) -> str:
        """What the view shows and what it leaves out, in one sentence."""
        before, label, after = self.note_parts()
        return before + label + after

    def note_parts(self) -> tuple[str, str, str]:
        """:attr:`note` in three parts: the text before the subject's label, the label,
        the text after it (so that HTML can isolate the label, a name from the data)."""
        nodes, edges = count(len(self.nodes), "node"), count(len(self.edges), "relationship")
        before = f"{nodes} and {edges} within {self.hops} hop(s) of "
        if self.cut_at_hop is None:
            return before, self.label, "; nothing left out."
        counts = ", ".join(
            f"{n} {kind if n == 1 else _PLURAL[kind]}" for kind, n in self.omitted.items() if n
        )
        return (
            before,
            self.label,
            f"; capped at {self.max_nodes} nodes: left out {counts} found at hop "
            f"{self.cut_at_hop}, and everything beyond them (raise --max-nodes to see more).",
        )


def _day(d: date | None) -> str:
    return "" if d is None else d.isoformat()


def _clean(attrs: Mapping[str, Scalar | None]) -> dict[str, Scalar]:
    return {k: v for k, v in attrs.items() if v is not None and v != ""}


def _period_text(p: PhonePeriod) -> str:
    owner = p.owner_id
    check = "verified" if p.verified else "unverified"
    return f"{owner} {_day(p.since) or '...'}..{_day(p.until) or 'now'} ({check})"


class _Builder:
    """Collects nodes (in the order taken, under the cap) and edges (kept when both ends are)."""

    def __init__(self, backend: GraphBackend, policy: Policy, max_nodes: int) -> None:
        self.backend = backend
        self.policy = policy
        self.max_nodes = max_nodes
        self.nodes: dict[str, ViewNode] = {}
        self.edges: dict[tuple[str, str, str, str], ViewEdge] = {}
        self.omitted: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.cut_at_hop: int | None = None
        self.loans: dict[str, Loan] = {}
        self.periods: dict[str, set[PhonePeriod]] = {}
        self.entries: dict[str, Entry] = {}
        self.records: dict[str, Record] = {}
        #: (contamination, verdict, reason codes) of the entries shown, by entry id, from
        #: one batch pass (:func:`_pass_scores`), the others by
        #: :func:`~spillover.engines.search.explain_entries`
        self.scores: dict[str, tuple[float, str, str]] = {}

    def full(self) -> bool:
        return len(self.nodes) >= self.max_nodes

    def take(self, node: str, hop: int, left_out: set[str]) -> bool:
        """Add ``node`` unless the view is full (then count it as left out, once)."""
        if node in self.nodes:
            return True
        if self.full():
            if node not in left_out:
                left_out.add(node)
                self.omitted[split_ref(node)[0]] += 1
                self.cut_at_hop = hop if self.cut_at_hop is None else self.cut_at_hop
            return False
        self.nodes[node] = ViewNode(node, split_ref(node)[0], "", hop)
        return True

    def edge(self, source: str, target: str, rel: str, **attrs: Scalar | None) -> None:
        e = ViewEdge(source, target, rel, _clean(attrs))
        self.edges.setdefault(e.key, e)

    # -- facts to edges -----------------------------------------------------------------

    def period(self, p: PhonePeriod) -> None:
        self.periods.setdefault(p.phone, set()).add(p)
        if p.owner_id is not None:
            self.edge(
                ref("person", p.owner_id),
                ref("phone", p.phone),
                OWNS,
                since=_day(p.since),
                until=_day(p.until),
                verified=p.verified,
            )

    def loan(self, loan: Loan) -> None:
        self.loans[loan.loan_id] = loan
        node = ref("loan", loan.loan_id)
        self.edge(ref("person", loan.borrower_id), node, BORROWED, applied_at=_day(loan.applied_at))
        self.edge(
            node,
            ref("platform", loan.platform_id),
            AT,
            status=loan.status.value,
            since=_day(loan.known_at),
        )

    def use(self, use: PhoneUse) -> None:
        self.loan(use.loan)
        role = ROLES[use.role]
        attrs: dict[str, Scalar | None] = {
            "role": use.role,
            "applied_at": _day(use.loan.applied_at),
        }
        if use.role == APPLICANT:
            attrs["sms_verified"] = bool(use.loan.phone_verified)
        self.edge(ref("loan", use.loan.loan_id), ref("phone", use.phone), role.stored_as, **attrs)

    def entry(self, e: Entry) -> None:
        self.entries[e.entry_id or ""] = e
        node = ref("entry", e.entry_id or "")
        self.edge(node, e.subject_ref, LISTS, listed_at=_day(e.listed_at))
        self.edge(node, ref("platform", e.platform_id), ON, listed_at=_day(e.listed_at))
        if e.copied_from is not None:
            self.edge(node, ref("entry", e.copied_from), COPIED_FROM, listed_at=_day(e.listed_at))

    def record(self, record: Record, match: Match) -> None:
        self.records[record.record_id] = record
        node = ref("record", record.record_id)
        self.edge(
            node,
            ref("person", match.person_id),
            MATCHED_TO,
            matched_by=match.matched_by.value,
            match_probability=match.match_probability,
            matched_with=match.matched_with,
        )
        self.edge(node, ref("platform", record.platform_id), HELD_BY)


def _order(node: str) -> tuple[int, str]:
    kind, ident = split_ref(node)
    return (KINDS.index(kind), ident)


def neighborhood(
    backend: GraphBackend,
    subject: str,
    subject_kind: str = "person",
    *,
    hops: int = DEFAULT_HOPS,
    max_nodes: int = DEFAULT_MAX_NODES,
    policy: Policy | None = None,
) -> Neighborhood:
    """The ego network of a person (``subject_kind="person"``, an id) or a phone (a
    number in E.164 form) up to ``hops`` steps, capped at ``max_nodes`` nodes.

    >>> from spillover import open_folder, examples
    >>> view = neighborhood(open_folder(examples.jiang_case_path()), "jiang", hops=3)
    >>> view.label, "person:xu_yan" in {n.id for n in view.nodes}
    ('Jiang (bakery owner)', True)
    """
    if subject_kind not in ("person", "phone"):
        raise SpilloverError(f"a view starts from a person or a phone, not a {subject_kind}")
    if hops < 0 or max_nodes < 1:
        raise SpilloverError("hops must be 0 or more and max_nodes 1 or more")
    start = ref(subject_kind, subject)
    if not backend.exists(start):
        raise NotFoundError(f"unknown {subject_kind} {subject!r}")
    b = _Builder(backend, policy or default_policy(), max_nodes)
    layer = [start]
    seen = {start}
    for hop in range(hops + 1):
        left_out: set[str] = set()
        records_of = _matched_records(b, [n for n in layer if split_ref(n)[0] == "person"])
        subjects = [n for n in layer if split_ref(n)[0] != "loan"]
        subjects += [r for records in records_of.values() for r in records]
        by_subject: dict[str, list[Entry]] = {}
        for e in backend.surroundings((), subjects).entries:
            b.entry(e)
            by_subject.setdefault(e.subject_ref, []).append(e)
        kept = []
        for node in layer:
            if not b.take(node, hop, left_out):
                continue
            kept.append(node)
            for leaf in _leaves(b, node, by_subject, records_of):
                b.take(leaf, hop, left_out)
        if hop == hops or b.cut_at_hop is not None:
            break
        layer = _next_layer(b, kept, seen)
        if not layer:
            break
        if b.full():
            # full exactly after this layer: the next one is counted as left out
            for node in layer:
                b.take(node, hop + 1, left_out)
            break
    return _finish(b, start, hops)


def _matched_records(b: _Builder, persons: list[str]) -> dict[str, list[str]]:
    """The platform records resolved to ``persons`` (references), by person, each a record
    reference in ``record_id`` order (and the edges to them)."""
    if not persons:
        return {}
    out: dict[str, list[str]] = {}
    for record, match in b.backend.matched_records([split_ref(n)[1] for n in persons]):
        b.record(record, match)
        out.setdefault(ref("person", match.person_id), []).append(ref("record", record.record_id))
    return out


def _leaves(
    b: _Builder,
    node: str,
    by_subject: Mapping[str, list[Entry]],
    records_of: Mapping[str, list[str]],
) -> list[str]:
    """What hangs on ``node``, in the order taken: a loan's platform; the entries listing
    a person or a phone, each followed by its platform; then a person's records, each
    followed by its platform and the entries listing it (each with its platform)."""
    kind, ident = split_ref(node)
    if kind == "loan":
        return [ref("platform", b.loans[ident].platform_id)] if ident in b.loans else []

    def listed(subject: str) -> list[str]:
        out: list[str] = []
        for e in sorted(by_subject.get(subject, ()), key=lambda e: e.entry_id or ""):
            out += [ref("entry", e.entry_id or ""), ref("platform", e.platform_id)]
        return out

    leaves = listed(node)
    for record in records_of.get(node, ()):
        leaves += [record, ref("platform", b.records[split_ref(record)[1]].platform_id)]
        leaves += listed(record)
    return leaves


def _next_layer(b: _Builder, kept: list[str], seen: set[str]) -> list[str]:
    """The people, phones and loans one step from ``kept``, not seen before (and the
    edges to them)."""
    persons = [split_ref(n)[1] for n in kept if n.startswith("person:")]
    phones = [split_ref(n)[1] for n in kept if n.startswith("phone:")]
    loans = [split_ref(n)[1] for n in kept if n.startswith("loan:")]
    found: set[str] = set()
    if persons or phones:
        facts = b.backend.expand(persons, phones, date.max)
        asked_persons, asked_phones = set(persons), set(phones)
        for p in facts.periods:
            b.period(p)
            if p.phone in asked_phones or p.owner_id in asked_persons:
                found.add(ref("phone", p.phone))
                if p.owner_id is not None:
                    found.add(ref("person", p.owner_id))
        for loan in facts.own_loans:
            b.loan(loan)
            found.add(ref("loan", loan.loan_id))
        for use in facts.uses:
            b.use(use)
            if use.phone in asked_phones:
                found.add(ref("loan", use.loan.loan_id))
    if loans:
        for use in b.backend.surroundings(loans, ()).uses:
            b.use(use)
            found.add(ref("phone", use.phone))
        for ident in loans:
            known = b.loans.get(ident)
            if known is not None:
                found.add(ref("person", known.borrower_id))
    new = sorted(found - seen, key=_order)
    seen.update(new)
    return new


def _finish(b: _Builder, start: str, hops: int) -> Neighborhood:
    backend = b.backend
    kept = b.nodes
    # owner periods of the phones at the edge of the view (not expanded)
    missing = [split_ref(n)[1] for n in kept if n.startswith("phone:")]
    missing = [p for p in missing if p not in b.periods]
    if missing:
        for p in backend.expand((), missing, date.min).periods:
            if p.phone in missing:
                b.periods.setdefault(p.phone, set()).add(p)
    # entries copied from entries outside the view still name them; edges need both ends
    names = backend.names([n for n in kept if split_ref(n)[0] in ("person", "platform")])
    for s in backend.sharing():
        b.edge(
            ref("platform", s.from_platform),
            ref("platform", s.to_platform),
            SHARES_WITH,
            since=_day(s.since),
        )
    shown = [split_ref(n)[1] for n in kept if n.startswith("entry:")]
    memo = FactMemo() if backend.round_trips else None
    b.scores = _pass_scores(b, shown, memo)
    # the rest explained, sharing their facts (on Neo4j: those the pass's read kept)
    rest = [b.entries[e] for e in shown if e not in b.scores]
    for x in explain_entries(backend, rest, b.policy, max_paths=1, memo=memo):
        b.scores[x.entry.entry_id or ""] = (
            x.contamination,
            x.verdict.value,
            " ".join(x.reason_codes),
        )
    nodes = []
    for node in kept.values():
        kind, ident = split_ref(node.id)
        label, attrs = _describe(b, kind, ident, names)
        nodes.append(ViewNode(node.id, kind, label, node.hop, attrs))
    edges = tuple(
        sorted(
            (e for e in b.edges.values() if e.source in kept and e.target in kept),
            key=lambda e: e.key,
        )
    )
    return Neighborhood(
        start,
        names.get(
            start, display_phone(split_ref(start)[1]) if start.startswith("phone:") else start
        ),
        hops,
        b.max_nodes,
        tuple(nodes),
        edges,
        {k: n for k, n in b.omitted.items() if n},
        b.cut_at_hop,
    )


def _pass_scores(
    b: _Builder, entry_ids: list[str], memo: FactMemo | None
) -> dict[str, tuple[float, str, str]]:
    """The contamination, verdict and reason codes of the entries ``entry_ids`` from one
    batch pass restricted to them (:func:`~spillover.engines.batch.audit.audit_entries`):
    one :func:`~spillover.engines.search.explain` per entry costs a search of the whole
    hub each (a phone reassigned 4,000 times: 249 entries, 11 s). On an embedded backend
    the pass runs over its index (when built under the view's policy); on Neo4j, where
    the pass would read the whole graph for one view, over the facts these entries can
    reach (:func:`~spillover.engines.around.reachable_columns`, kept in ``memo`` for the
    explanations after it). The pass and ``explain`` give the same rows
    (tests/test_audit_pass.py); an entry without a path is left out (``explain`` adds
    its diagnosis to the codes, the pass does not)."""
    if not entry_ids:
        return {}
    ix: CodedGraph | None
    if b.backend.round_trips:
        listed = [b.entries[e] for e in entry_ids]
        ix = Index(reachable_columns(b.backend, listed, b.policy, memo), b.policy)
    else:
        built = getattr(b.backend, "index", None)
        ix = built if isinstance(built, CodedGraph) and built.policy == b.policy else None
        ix = ix or Index(b.backend.columns(), b.policy)
    in_order = ix.entry_ids_by_code()
    found = codes_in(in_order, entry_ids)
    rows = np.unique(found[found >= 0])
    return {
        str(row["entry_id"]): (
            cast(float, row["contamination"]),
            str(row["verdict"]),
            str(row["reason_codes"]),
        )
        for row in pass_rows(audit_entries(ix, rows), b.policy)
        if row["origin_loan_id"] is not None
    }


def _describe(
    b: _Builder, kind: str, ident: str, names: Mapping[str, str]
) -> tuple[str, dict[str, Scalar]]:
    node = ref(kind, ident)
    if kind == "phone":
        # known owners only (a period with an unknown subscriber is no tie, and Neo4j
        # stores periods as OWNS relationships from a person)
        known = [p for p in b.periods.get(ident, ()) if p.owner_id is not None]
        periods = sorted(known, key=lambda p: (_day(p.since), p.owner_id or ""))
        return display_phone(ident), _clean(
            {"number": ident, "owner_periods": "; ".join(_period_text(p) for p in periods)}
        )
    if kind == "loan":
        loan = b.loans[ident]
        return ident, _clean(
            {
                "loan_id": ident,
                "status": loan.status.value,
                "applied_at": _day(loan.applied_at),
                "status_at": _day(loan.status_at),
                "amount": loan.amount,
                "platform_id": loan.platform_id,
                "borrower_id": loan.borrower_id,
                "applicant_phone": loan.applicant_phone,
            }
        )
    if kind == "record":
        record = b.records[ident]
        return record_name(record), _clean(
            {"record_id": ident, "platform_id": record.platform_id, "name": record.name}
        )
    if kind == "entry":
        e = b.entries[ident]
        contamination, verdict, codes = b.scores[ident]
        return ident, _clean(
            {
                "entry_id": ident,
                "platform_id": e.platform_id,
                "listed_at": _day(e.listed_at),
                "subject": e.subject_ref,
                "stated_reason": e.stated_reason,
                "contamination": contamination,
                "verdict": verdict,
                "reason_codes": codes,
            }
        )
    return names.get(node, ident), {f"{kind}_id": ident, "name": names.get(node, ident)}


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def colour(node: ViewNode) -> str:
    """A node's colour: entries by verdict, loans that can start a spread darker, else by kind."""
    if node.kind == "entry" and "verdict" in node.attrs:
        return VERDICT_COLOURS[Verdict(str(node.attrs["verdict"]))]
    if node.kind == "loan" and node.attrs.get("status") in _BAD_STATUSES:
        return _BAD_LOAN_COLOUR
    return KIND_COLOURS[node.kind]


def _edge_label(e: ViewEdge) -> str:
    role = e.attrs.get("role")
    name = ROLES[str(role)].rel if role is not None else e.rel
    days = [str(e.attrs[k]) for k in ("since", "applied_at", "listed_at") if k in e.attrs]
    if "until" in e.attrs:
        days.append(f"until {e.attrs['until']}")
    if "matched_by" in e.attrs:  # a MATCHED_TO: what decided it
        days.append(str(e.attrs["matched_by"]))
    return " ".join([name, *days])


def to_json(view: Neighborhood) -> dict[str, Any]:
    """The view as a JSON-ready dict (docs/contract.md, "neighborhood")."""
    return {
        "subject": view.subject,
        "label": view.label,
        "hops": view.hops,
        "max_nodes": view.max_nodes,
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "hop": n.hop, **n.attrs}
            for n in view.nodes
        ],
        "edges": [
            {"source": e.source, "target": e.target, "rel": e.rel, **e.attrs} for e in view.edges
        ],
        "omitted": dict(view.omitted),
        "complete": view.cut_at_hop is None,
        "note": view.note,
    }


def to_networkx(view: Neighborhood) -> nx.MultiDiGraph[str]:
    """The view as a networkx graph with scalar attributes only (GraphML-ready)."""
    g: nx.MultiDiGraph[str] = nx.MultiDiGraph(
        subject=view.subject, hops=view.hops, max_nodes=view.max_nodes, note=view.note
    )
    for n in view.nodes:
        g.add_node(n.id, kind=n.kind, label=n.label, hop=n.hop, colour=colour(n), **n.attrs)
    for e in view.edges:
        g.add_edge(
            e.source, e.target, key=_edge_label(e), rel=e.rel, label=_edge_label(e), **e.attrs
        )
    return g


def xml_ready(g: nx.MultiDiGraph[str]) -> nx.MultiDiGraph[str]:
    """``g`` with every string in it (node ids, edge keys, attribute values) as XML 1.0
    can hold it (:func:`~spillover.text.safe.xml_text`: a name from the data with a
    control character, ``Xu\\x01Yan``, is written ``Xu\\\\x01Yan``)."""

    def text(value: Any) -> Any:
        return xml_text(value) if isinstance(value, str) else value

    def attrs(data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: text(v) for k, v in data.items()}

    out: nx.MultiDiGraph[str] = nx.MultiDiGraph(**attrs(g.graph))
    out.add_nodes_from((text(n), attrs(d)) for n, d in g.nodes(data=True))
    for u, v, k, d in g.edges(keys=True, data=True):
        out.add_edge(text(u), text(v), key=text(k), **attrs(d))
    return out


def to_html(view: Neighborhood) -> str:
    """One HTML file that works offline: Neo4j's ``neo4j-viz`` (its JavaScript inlined),
    nodes coloured by kind and verdict, dates on the relationships, and the note of
    what was left out above the graph."""
    try:
        from neo4j_viz import Node, Relationship, VisualizationGraph
    except ImportError:
        raise SpilloverError(
            "the HTML view needs neo4j-viz: pip install 'spillover[view]' "
            "(or write --format graphml or json)"
        ) from None
    nodes = [
        Node.model_validate(
            {
                "id": n.id,
                "caption": printable(n.label),  # drawn as text: no control or bidi mark acts
                "color": colour(n),
                "size": 44 if n.id == view.subject else 22 if n.kind in _LEAVES else 30,
                "properties": {"kind": n.kind, "hop": n.hop, **n.attrs},
            }
        )
        for n in view.nodes
    ]
    rels = [
        Relationship.model_validate(
            {
                "id": f"r{i}",
                "source": e.source,
                "target": e.target,
                "caption": _edge_label(e),
                "properties": {"type": e.rel, **e.attrs},
            }
        )
        for i, e in enumerate(view.edges)
    ]
    graph = VisualizationGraph(nodes, rels)
    html: str = graph.render(height="88vh", width="100%", theme="light").data
    # the subject's label is a name from the data: in the title (text only) its control and
    # bidi characters are escaped, in the page it is isolated (<bdi>)
    title = f"spillover: {_escape(printable(view.label))} ({view.hops} hop(s))"
    before, label, after = view.note_parts()
    note = f"{_escape(before)}<bdi>{_escape(label)}</bdi>{_escape(after)}"
    # (records only in a view that holds one: the view of a folder without records is
    # drawn as before)
    records = any(n.kind == "record" for n in view.nodes)
    legend = " ".join(
        f'<span style="color:{c}">&#9679;</span> {name}'
        for name, c in [
            *(
                (k, v)
                for k, v in KIND_COLOURS.items()
                if k not in ("entry", "record") or (k == "record" and records)
            ),
            ("overdue/defaulted loan", _BAD_LOAN_COLOUR),
            *((f"entry: {v.value}", c) for v, c in VERDICT_COLOURS.items()),
        ]
    )
    header = (
        '<header id="spillover-view" style="font:14px system-ui,sans-serif;padding:6px 12px;'
        'border-bottom:1px solid #ccc;background:#fff">'
        f'<strong id="spillover-subject"><bdi>{_escape(view.label)}</bdi></strong> '
        f'<span id="spillover-note">{note}</span><br>{legend}</header>'
    )
    html = html.replace("<title>neo4j-viz</title>", f"<title>{title}</title>", 1)
    body_at = html.find("<body")
    if body_at < 0:
        raise SpilloverError("neo4j-viz gave a page without a <body>: cannot add the note")
    body_end = html.index(">", body_at) + 1
    return html[:body_end] + header + html[body_end:]


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def check_view_out(out: str | Path, fmt: str, *, data: str | Path | None = None) -> Path:
    """Refuse, before the data is read, where :func:`write_view` could not write a view of
    the format ``fmt``: a file the loader would read as one of the tables of the data folder
    ``data`` (:func:`spillover.data.outputs.check_outside`), a folder, or a file whose folder
    does not exist (:class:`~spillover.errors.OptionError`, naming ``--out``). ``out`` as a
    path.

    >>> check_view_out("view.html", "html", data="data")
    PosixPath('view.html')
    """
    if fmt not in FORMATS:
        raise SpilloverError(f"unknown view format {fmt!r}: one of {', '.join(FORMATS)}")
    path = Path(out)
    if data is not None:
        check_outside(path, data, folder=False)
    if path.is_dir():
        raise OptionError("--out", f"{path} is a folder, not a file")
    check_parent_folder(path)
    return path


def write_view(
    view: Neighborhood, out: str | Path, fmt: str, *, data: str | Path | None = None
) -> Path:
    """Write ``view`` to ``out`` as ``html``, ``graphml`` or ``json`` (atomically).

    ``data``: the data folder the view was drawn from; a file there the loader would read
    as one of its tables is refused (:func:`check_view_out`)."""
    path = check_view_out(out, fmt, data=data)
    if fmt == "html":
        text = to_html(view)
    elif fmt == "json":
        text = json.dumps(to_json(view), indent=2, ensure_ascii=False) + "\n"
    else:  # graphml (check_view_out refused any other format)
        text = "\n".join(nx.generate_graphml(xml_ready(to_networkx(view)))) + "\n"
    with atomic_file(path, newline=None) as f:
        f.write(text)
    return path
