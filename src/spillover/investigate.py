"""Investigating in Neo4j: audit results written into the graph, and saved Cypher queries.

* :func:`write_back` (``spillover audit --write-back``) explains every entry of a
  Neo4j graph with :func:`spillover.core.explain` (all paths up to the policy's
  ``max_paths``, exactly what ``spillover explain`` lists) and stores on each
  ``Entry`` its ``contamination``, ``verdict``, ``reason_codes``, the policy and the
  audit time, and one ``(:Entry)-[:TRACED_TO]->(:Loan)`` per explanation path, to
  the path's origin loan, carrying the path's rank, responsibility, hops and its
  route (the nodes and stored relationships it walks), so that Cypher can follow
  the spread in both directions. A rerun replaces the previous results.
* :func:`list_saved_queries`, :func:`saved_query` and :func:`run_saved_query`: the
  investigation queries in ``spillover/cypher/investigate/*.cypher``, each with a
  header saying what it answers and which parameters it takes.

The graph is read once (:meth:`~spillover.backends.neo4j.Neo4jBackend.columns`) and
explained in memory over the batch pass's index (no round trip per entry).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core import Explanation, ExplanationPath, explain
from .errors import NotFoundError, OptionError, SpilloverError
from .model import split_ref
from .outfiles import atomic_file, neutralize
from .policy import Policy, default_policy
from .queries import cypher, cypher_folder
from .rules import AT as AT_REL
from .rules import (
    BORROWED,
    CHAIN_STEP,
    COPY_STEP,
    LINKS,
    LISTING_STEP,
    ORIGIN_STEP,
    OWNS,
    ROLES,
    SHARING_STEP,
    Verdict,
    loan_kind,
    owns_kind,
    role_of,
)
from .rules import COPIED_FROM as COPIED_FROM_REL
from .rules import ON as ON_REL
from .rules import SHARES_WITH as SHARES_WITH_REL

if TYPE_CHECKING:
    import neo4j

    from .backends.neo4j import Neo4jBackend
    from .columns import Columns

__all__ = [
    "DEFAULT_BATCH",
    "FORMATS",
    "LABELS",
    "RULE_PARAMS",
    "WRITE_BACK_PROPERTIES",
    "Param",
    "QueryResult",
    "SavedQuery",
    "WriteBackSummary",
    "explanations_of",
    "format_result",
    "list_saved_queries",
    "plain",
    "run_saved_query",
    "saved_query",
    "trace_rows",
    "walks_of",
    "write_back",
    "write_result",
]

Progress = Callable[[str, int, int], None]

#: entries per write transaction
DEFAULT_BATCH = 1000

#: the properties the write-back sets on every Entry (an ingest ignores them when it
#: compares an entry with its row, and drops them with its TRACED_TO when it rewrites it)
WRITE_BACK_PROPERTIES = (
    "contamination",
    "verdict",
    "reason_codes",
    "policy_name",
    "policy_version",
    "policy_digest",
    "audited_at",
)

#: the node label of each kind of node reference (spillover.model.ref)
LABELS = {
    "person": "Person",
    "phone": "Phone",
    "loan": "Loan",
    "platform": "Platform",
    "entry": "Entry",
}

#: the stored relationship each explanation step walks, by the step's name (the rules')
_WALKS: Mapping[str, str] = {
    loan_kind(subject=True).rel_for(): BORROWED,
    owns_kind(True).rel_for(): OWNS,
    CHAIN_STEP.rel_for(): BORROWED,
    ORIGIN_STEP.rel_for(): AT_REL,
    SHARING_STEP.rel_for(): SHARES_WITH_REL,
    LISTING_STEP.rel_for(): ON_REL,
    COPY_STEP.rel_for(): COPIED_FROM_REL,
    **{r.rel: r.stored_as for r in ROLES.values()},
}


def walks_of(rel: str) -> tuple[str, str]:
    """The stored relationship an explanation step named ``rel`` walks, and the link role
    that tells it apart (``LINKS {role}``; ``""`` for every other relationship)."""
    stored = _WALKS[rel]
    role = role_of(rel)
    return stored, role.name if role is not None and stored == LINKS else ""


# ---------------------------------------------------------------------------
# Write-back
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteBackSummary:
    """What a write-back stored: entries, TRACED_TO relationships, per verdict, the time."""

    entries: int
    traces: int
    verdicts: dict[str, int]
    audited_at: datetime
    seconds: float
    explain_seconds: float
    write_seconds: float
    cleared: int

    @property
    def elements(self) -> int:
        """Graph elements written: the entries updated plus the relationships created."""
        return self.entries + self.traces


def _searchable(columns: Columns) -> Columns:
    """Columns the embedded backend can explain over when the source gave no display
    fields (Neo4j's export): ids stand in for names, and a loan's status day is the day
    it became known (the search reads only that)."""
    if columns.details is not None:
        return columns
    from .columns import Details

    n_loans, n_entries = len(columns.loan_ids), len(columns.entry_ids)
    return replace(
        columns,
        details=Details(
            person_name=np.asarray(columns.person_ids, dtype=object),
            platform_name=np.asarray(columns.platform_ids, dtype=object),
            loan_amount=np.full(n_loans, np.nan),
            loan_status_at=np.asarray(columns.loan_known, dtype=np.int64),
            loan_phone_verified=np.asarray(columns.loan_phone_verified, dtype=np.int8),
            entry_stated_reason=np.full(n_entries, "", dtype=object),
        ),
    )


def explanations_of(
    columns: Columns,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Explanation]:
    """Every entry of a graph given as columns, explained as ``spillover explain`` does
    (all paths up to ``max_paths``, default the policy's), in entry id order."""
    from .backends.arrays import ArrayBackend

    policy = policy or default_policy()
    backend = ArrayBackend(_searchable(columns))
    total = len(columns.entry_ids)
    done = 0
    for batch in backend.iter_entries(DEFAULT_BATCH):
        for entry in batch:
            yield explain(backend, entry, policy, max_paths=max_paths, diagnose=False)
        done += len(batch)
        if progress:
            progress("explain", done, total)


def trace_rows(path: ExplanationPath, rank: int) -> dict[str, Any]:
    """The properties of one ``TRACED_TO`` relationship: the path's rank, responsibility,
    hops, and its route: the nodes (``labels``, ``keys``), and per step the explanation's
    name (``steps``), the stored relationship walked (``walks``), the link role
    (``roles``) and the owner period (``periods``, for ``OWNS``), ``""`` where none."""
    nodes = [path.steps[0].source, *(s.target for s in path.steps)]
    labels, keys = [], []
    for node in nodes:
        kind, ident = split_ref(node)
        labels.append(LABELS[kind])
        keys.append(ident)
    walks, roles, periods = [], [], []
    for s in path.steps:
        stored, role = walks_of(s.rel)
        walks.append(stored)
        roles.append(role)
        periods.append(s.at.isoformat() if stored == OWNS and s.at is not None else "")
    return {
        "loan": path.origin.loan_id,
        "rank": rank,
        "responsibility": path.responsibility,
        "hops": path.hops,
        "labels": labels,
        "keys": keys,
        "steps": [s.rel for s in path.steps],
        "walks": walks,
        "roles": roles,
        "periods": periods,
    }


def _entry_row(e: Explanation) -> dict[str, Any]:
    return {
        "id": e.entry.entry_id,
        "contamination": e.contamination,
        "verdict": e.verdict.value,
        "reason_codes": list(e.reason_codes),
        "traces": [trace_rows(p, rank) for rank, p in enumerate(e.paths, start=1)],
    }


def _write(driver: neo4j.Driver, database: str, name: str, **params: Any) -> list[Any]:
    import neo4j as _neo4j

    records, _, _ = driver.execute_query(
        cypher(name), params, database_=database, routing_=_neo4j.RoutingControl.WRITE
    )
    return records


def write_back(
    backend: Neo4jBackend,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> WriteBackSummary:
    """Explain every entry in the Neo4j graph and store the results on it.

    Each ``Entry`` gets ``contamination``, ``verdict``, ``reason_codes``,
    ``policy_name``, ``policy_version``, ``policy_digest`` and ``audited_at``; its
    ``TRACED_TO`` relationships are replaced by one per explanation path (ranked as
    ``spillover explain`` lists them). Batches of ``batch_size`` entries are written
    with ``UNWIND`` in managed write transactions (each batch replaces what it writes,
    so a retried batch changes nothing). Entries this run did not see (ingested while
    it ran) lose any older result at the end: no stale result stays behind.
    """
    policy = policy or default_policy()
    audited_at = now or datetime.now(UTC)
    start = time.perf_counter()
    if progress:
        progress("read graph", 0, 1)
    columns = backend.columns()
    if progress:
        progress("read graph", 1, 1)
    driver, database = backend.driver, backend.database
    params = {
        "policy_name": policy.name,
        "policy_version": policy.version,
        "policy_digest": policy.digest,
        "audited_at": audited_at,
    }
    total = len(columns.entry_ids)
    entries = traces = 0
    verdicts: dict[str, int] = {}
    explain_seconds = write_seconds = 0.0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal write_seconds
        t = time.perf_counter()
        _write(driver, database, "writeback_entries", rows=batch, **params)
        write_seconds += time.perf_counter() - t
        if progress:
            progress("write-back", entries, total)
        batch.clear()

    t = time.perf_counter()
    for e in explanations_of(columns, policy, max_paths=max_paths):
        row = _entry_row(e)
        batch.append(row)
        entries += 1
        traces += len(row["traces"])
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
        if len(batch) >= batch_size:
            explain_seconds += time.perf_counter() - t
            flush()
            t = time.perf_counter()
    explain_seconds += time.perf_counter() - t
    if batch:
        flush()
    if progress:
        progress("write-back", entries, total)
    cleared = 0
    while True:
        n = _write(driver, database, "writeback_clear", audited_at=audited_at, limit=batch_size)[0][
            "cleared"
        ]
        cleared += n
        if n == 0:
            break
    return WriteBackSummary(
        entries=entries,
        traces=traces,
        verdicts=dict(sorted(verdicts.items())),
        audited_at=audited_at,
        seconds=time.perf_counter() - start,
        explain_seconds=explain_seconds,
        write_seconds=write_seconds,
        cleared=cleared,
    )


# ---------------------------------------------------------------------------
# Saved queries
# ---------------------------------------------------------------------------

#: values the command line passes unless told otherwise, from the rules: the verdict
#: strings (``$spillover``, ``$own_conduct``, ``$unexplained``)
RULE_PARAMS: Mapping[str, str] = {v.name.lower(): v.value for v in Verdict}

_TYPES: Mapping[str, Callable[[str], Any]] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": lambda v: {"true": True, "false": False}[v.strip().lower()],
    "json": json.loads,
}

_PARAM_LINE = re.compile(r"^//\s*@param\s+(\w+)\s*:\s*(\w+)(?:\s*=\s*(\S+))?\s*\.?\s*(.*)$")
_BROWSER_LINE = re.compile(r"^//\s*:param\s+(\w+)\s*=>\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a saved query takes: its type, its default (None: required) and what
    it means. A default ``Verdict.X`` is the rules' verdict string."""

    name: str
    type: str
    default: Any
    help: str

    def convert(self, text: str) -> Any:
        """The value of ``--param NAME=TEXT`` as this parameter's type."""
        try:
            return _TYPES[self.type](text)
        except (KeyError, ValueError, TypeError):
            raise OptionError(
                "--param",
                f"{self.name}={text!r}: not a{'n' if self.type[0] in 'ai' else ''} {self.type}",
            ) from None


@dataclass(frozen=True, slots=True)
class SavedQuery:
    """A saved investigation query: its name, header line, parameters and text."""

    name: str
    title: str
    params: tuple[Param, ...]
    browser: Mapping[str, str]
    text: str

    def bind(self, given: Mapping[str, str]) -> dict[str, Any]:
        """The parameters to run with: the given values (text, converted to each
        parameter's type), else the defaults; a missing required one is an error."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise OptionError(
                "--param",
                f"{self.name} takes no parameter {', '.join(unknown)} "
                f"(it takes: {', '.join(known) or 'none'})",
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.convert(given[p.name])
            elif p.default is not None:
                out[p.name] = p.default
            else:
                raise OptionError("--param", f"{self.name} needs --param {p.name}=... ({p.help})")
        return out


def _default(param_type: str, text: str | None) -> Any:
    if text is None:
        return None
    text = text.rstrip(".")
    if text.startswith("Verdict."):
        return Verdict[text.removeprefix("Verdict.")].value
    return _TYPES[param_type](text)


def _parse(name: str, text: str) -> SavedQuery:
    header = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line)
    if not header or not header[0].startswith(f"// {name}:"):
        raise SpilloverError(f"saved query {name}: the first line must be '// {name}: ...'")
    title = header[0].removeprefix(f"// {name}:").strip()
    params, browser = [], {}
    for line in header:
        m = _PARAM_LINE.match(line)
        if m:
            pname, ptype, default, help_text = m.groups()
            if ptype not in _TYPES:
                raise SpilloverError(f"saved query {name}: unknown type {ptype!r} of ${pname}")
            params.append(Param(pname, ptype, _default(ptype, default), help_text.strip()))
        m = _BROWSER_LINE.match(line)
        if m:
            browser[m.group(1)] = m.group(2)
    if not params:  # a red-flag query of `spillover findings`: its parameters come from there
        params = _finding_params(name, text)
    return SavedQuery(name, title, tuple(params), browser, text)


def _finding_params(name: str, text: str) -> list[Param]:
    """The parameters of a saved query whose header has no ``@param`` lines (the red-flag
    queries of :mod:`spillover.findings`): the ``$names`` its body uses, with the values
    ``spillover findings`` passes (from the rules and the default policy) as defaults."""
    from .findings import query_params

    defaults = query_params(default_policy()).get(name, {})
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    out = []
    for pname in sorted(set(re.findall(r"\$(\w+)", body))):
        value = defaults.get(pname)
        ptype = (
            "boolean"
            if isinstance(value, bool)
            else "integer"
            if isinstance(value, int)
            else "string"
            if isinstance(value, str) or value is None
            else "json"
        )
        out.append(Param(pname, ptype, value, "as spillover findings passes it (see the header)"))
    return out


@cache
def list_saved_queries() -> tuple[SavedQuery, ...]:
    """Every saved investigation query, by name."""
    return tuple(_parse(name, text) for name, text in cypher_folder("investigate").items())


def saved_query(name: str) -> SavedQuery:
    """The saved query ``name``; an unknown name is a NotFoundError listing the others."""
    for q in list_saved_queries():
        if q.name == name:
            return q
    names = ", ".join(q.name for q in list_saved_queries())
    raise NotFoundError(f"no saved query {name!r}; the saved queries are: {names}")


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The rows of a saved query, as plain JSON-ready values."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


def plain(value: Any) -> Any:
    """A driver value as plain JSON-ready data: nodes and relationships as maps of their
    labels or type and properties, paths as their nodes and relationships, dates as text."""
    import neo4j.graph
    import neo4j.time

    if isinstance(value, neo4j.graph.Node):
        return {"labels": sorted(value.labels), **{k: plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Relationship):
        return {
            "type": value.type,
            "start": _node_key(value.start_node),
            "end": _node_key(value.end_node),
            **{k: plain(v) for k, v in value.items()},
        }
    if isinstance(value, neo4j.graph.Path):
        return {
            "nodes": [plain(n) for n in value.nodes],
            "relationships": [plain(r) for r in value.relationships],
        }
    if isinstance(value, neo4j.time.Date | neo4j.time.DateTime):
        return value.iso_format()
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _node_key(node: Any) -> str | None:
    if node is None:
        return None
    for key in ("id", "number"):
        if key in node:
            return str(node[key])
    return None


def run_saved_query(
    driver: neo4j.Driver, database: str, name: str, params: Mapping[str, str] | None = None
) -> QueryResult:
    """Run the saved query ``name`` (read only) with ``params`` given as text."""
    import neo4j as _neo4j

    query = saved_query(name)
    bound = query.bind(params or {})
    records, _, keys = driver.execute_query(
        query.text, bound, database_=database, routing_=_neo4j.RoutingControl.READ
    )
    return QueryResult(name, tuple(keys), tuple({k: plain(r[k]) for k in keys} for r in records))


FORMATS = ("text", "json", "csv")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "labels" in value:
        return f"({':'.join(value['labels'])} {_node_key(value)})"
    if isinstance(value, dict) and "relationships" in value:
        parts = [_cell(value["nodes"][0])]
        for rel, node in zip(value["relationships"], value["nodes"][1:], strict=True):
            forward = rel["end"] == _node_key(node)
            role = f" {rel['role']}" if "role" in rel else ""
            parts.append(f"-[:{rel['type']}{role}]->" if forward else f"<-[:{rel['type']}{role}]-")
            parts.append(_cell(node))
        return "".join(parts)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def format_result(result: QueryResult, fmt: str) -> str:
    """The rows as an aligned text table, JSON (a list of objects) or CSV (formula-safe)."""
    if fmt == "json":
        return json.dumps(list(result.rows), indent=2, ensure_ascii=False) + "\n"
    table = [[_cell(r[c]) for c in result.columns] for r in result.rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([neutralize(v) for v in row] for row in table)
        return out.getvalue()
    if fmt != "text":
        raise OptionError("--format", f"unknown format {fmt!r}")
    if not table:
        return f"{result.name}: no rows\n"
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(result.columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def write_result(result: QueryResult, fmt: str, out: str | Path) -> Path:
    """Write the formatted rows to ``out`` atomically."""
    out = Path(out)
    if out.is_dir():
        raise SpilloverError(f"{out}: is a directory; give a file name for --out")
    if not out.parent.is_dir():
        raise SpilloverError(f"{out}: folder {out.parent} does not exist")
    with atomic_file(out) as handle:
        handle.write(format_result(result, fmt))
    return out
