"""Saved Cypher queries: the investigation queries in ``spillover/neo4j/cypher/investigate/*.cypher``.

:func:`list_saved_queries`, :func:`saved_query` and :func:`run_saved_query` (``spillover
query``): each query has a header saying what it answers and which parameters it takes;
:class:`Param` checks every value before it reaches the server. The queries that read
the write-back's results (:mod:`spillover.neo4j.writeback`) answer only while those are
current (:func:`results_status`, :class:`StaleResults`). :func:`query_params` gives the
parameters of the red-flag queries of :mod:`spillover.audit.findings`.

The driver is imported only by the functions that run a query or read its values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, OptionError, SpilloverError
from ..facts.model import APPLICANT, LoanStatus
from ..files.write import atomic_file, neutralize
from ..policy import Policy, default_policy
from ..rules import (
    APPLIED_WITH,
    ROLES,
    UNVERIFIED_TIE_CODES,
    Verdict,
    owns_kind,
    use_kind,
)
from .statements import cypher_folder

if TYPE_CHECKING:
    import neo4j

__all__ = [
    "DEFAULT_MIN_BORROWERS",
    "DEFAULT_MIN_IDENTITIES",
    "FORMATS",
    "RULE_PARAMS",
    "Param",
    "QueryResult",
    "SavedQuery",
    "StaleResults",
    "format_result",
    "list_saved_queries",
    "plain",
    "query_params",
    "results_status",
    "run_saved_query",
    "saved_query",
    "write_result",
]


class StaleResults(SpilloverError):
    """The audit results in the graph are not current (stale, incomplete or absent): a
    saved query that reads them refuses to answer."""


#: values the command line passes unless told otherwise, from the rules: the verdict
#: strings (``$spillover``, ``$own_conduct``, ``$unexplained``)
RULE_PARAMS: Mapping[str, str] = {v.name.lower(): v.value for v in Verdict}

#: the largest and smallest integers Neo4j holds (64-bit); a parameter is checked
#: against them (or its declared range) before it reaches the server
INT_RANGE = (-(2**63), 2**63 - 1)
#: how deeply a ``json`` parameter may nest lists and maps
JSON_DEPTH = 20


def _boolean(text: str) -> bool:
    return {"true": True, "false": False}[text.strip().lower()]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number Neo4j takes")


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _string_list(text: str) -> list[Any]:
    value = _json(text)
    if not isinstance(value, list):
        raise ValueError("")
    return value


def _instant(value: str | date) -> str:
    """An ISO date or date-time (a ``date``/``datetime``; UTC when it has no offset) as the
    ISO date-time in UTC that Cypher's ``datetime()`` reads: ``2026-12-01T00:00:00+00:00``.
    ValueError when it is no date (``garbage``, ``2026-13-01``)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC).isoformat()
    except OverflowError:
        raise ValueError("out of the range of dates") from None


#: how ``--param NAME=TEXT`` is read for each parameter type (``list``: a JSON list of
#: strings, e.g. ``["defaulted", "overdue"]``; ``json``: any JSON value Neo4j takes)
_TYPES: Mapping[str, Callable[[str], Any]] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": _boolean,
    "list": _string_list,
    "json": _json,
    "datetime": _instant,
}
#: what each type is, in messages
_TYPE_TEXT: Mapping[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "float": "a number",
    "boolean": "true or false",
    "list": 'a JSON list of strings (e.g. ["a", "b"])',
    "json": "a JSON value",
    "datetime": "an ISO date or date-time (e.g. 2026-12-01 or 2026-12-01T08:00:00+08:00)",
}

_PARAM_LINE = re.compile(
    r"^//\s*@param\s+(\w+)\s*:\s*(\w+)(?:\[\s*(-?\d*)\s*\.\.\s*(-?\d*)\s*\])?"
    r"(?:\s*=\s*(\S+))?\s*\.?\s*(.*)$"
)
_BROWSER_LINE = re.compile(r"^//\s*:param\s+(\w+)\s*=>\s*(.+?)\s*$")
_NEEDS_LINE = re.compile(r"^//\s*@needs\s*:\s*write-back\s*$")


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value cannot be a Neo4j parameter (None: it can)."""
    if depth > JSON_DEPTH:
        return f"nested more than {JSON_DEPTH} deep"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return _text_problem(value) if isinstance(value, str) else None
    if isinstance(value, int):
        return None if INT_RANGE[0] <= value <= INT_RANGE[1] else "an integer beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "a number that is not finite"
    if isinstance(value, list):
        for v in value:
            problem = _json_problem(v, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return "a map whose keys are not all strings"
            problem = _text_problem(k) or _json_problem(v, depth + 1)
            if problem:
                return problem
        return None
    return f"a {type(value).__name__}"


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text that is not valid Unicode (a lone surrogate or undecodable bytes)"
    return None


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a saved query takes: its type, its default (None: required), what it
    means, and for numbers the range it must lie in (``minimum``/``maximum``, inclusive;
    None: Neo4j's 64-bit range for integers, any finite number for floats). A default
    ``Verdict.X`` is the rules' verdict string."""

    name: str
    type: str
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None

    def _bad(self, shown: str, why: str) -> OptionError:
        return OptionError("--param", f"{self.name}={shown}: {why}")

    def convert(self, text: str) -> Any:
        """The value of ``--param NAME=TEXT`` as this parameter's type, checked (type,
        range) as :meth:`check` does; a wrong one is an :class:`OptionError`."""
        shown = _shown(text)
        if not isinstance(text, str):
            raise self._bad(shown, f"not {_TYPE_TEXT.get(self.type, self.type)}")
        problem = _text_problem(text)
        if problem:
            raise self._bad(shown, problem)
        try:
            value = _TYPES[self.type](text)
        except (KeyError, ValueError, TypeError) as exc:
            detail = f" ({exc})" if self.type in ("json", "list") and str(exc) else ""  # JSON's why
            raise self._bad(shown, f"not {_TYPE_TEXT.get(self.type, self.type)}{detail}") from None
        return self.check(value, shown)

    def _number(self, value: Any, shown: str, want: str) -> int | float:
        """``value`` if it is a number of this parameter's type within its range."""
        if isinstance(value, bool) or not isinstance(
            value, int if self.type == "integer" else (int, float)
        ):
            raise self._bad(shown, f"not {want}")
        if self.type == "float":
            value = float(value)
            if not math.isfinite(value):
                raise self._bad(shown, "not a finite number")
        low, high = self.minimum, self.maximum
        if self.type == "integer":  # what Neo4j holds, within the declared range
            low = max(INT_RANGE[0], low) if low is not None else INT_RANGE[0]
            high = min(INT_RANGE[1], high) if high is not None else INT_RANGE[1]
        if (low is not None and value < low) or (high is not None and value > high):
            raise self._bad(shown, f"out of range: {_range_text(low, high)}")
        return value  # type: ignore[no-any-return]

    def check(self, value: Any, shown: str | None = None) -> Any:
        """``value`` if it is of this parameter's type and within its range; otherwise
        an :class:`OptionError` saying what is wrong (before anything reaches Neo4j)."""
        shown = _shown(value) if shown is None else shown
        want = _TYPE_TEXT.get(self.type, self.type)
        if self.type == "string":
            if not isinstance(value, str):
                raise self._bad(shown, f"not {want}")
            problem = _text_problem(value)
            if problem:
                raise self._bad(shown, problem)
            if self.default is None and not value.strip():
                raise self._bad(shown, "empty (give a value)")
            return value
        if self.type == "datetime":
            if not isinstance(value, str | date):
                raise self._bad(shown, f"not {want}")
            try:
                return _instant(value)
            except ValueError:
                raise self._bad(shown, f"not {want}") from None
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise self._bad(shown, f"not {want}")
            return value
        if self.type in ("integer", "float"):
            return self._number(value, shown, want)
        if self.type == "list" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise self._bad(shown, f"not {want}")
        problem = _json_problem(value)
        if problem:
            raise self._bad(shown, f"{problem}, which Neo4j does not take")
        return value


def _shown(value: Any, limit: int = 60) -> str:
    """A given value as a message shows it: quoted, escaped, cut short."""
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"from {low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


@dataclass(frozen=True, slots=True)
class SavedQuery:
    """A saved investigation query: its name, header line, parameters and text;
    ``needs_results``: it reads the write-back's results (``// @needs: write-back``)
    and answers only while they are current."""

    name: str
    title: str
    params: tuple[Param, ...]
    browser: Mapping[str, str]
    text: str
    needs_results: bool = False

    def bind(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters to run with: the given values (text is converted to each
        parameter's type; other values must already be of it), each checked (type,
        range), else the defaults; an unknown, wrong or missing one is an
        :class:`OptionError`."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known), key=str)
        if unknown:
            names = ", ".join(
                u if isinstance(u, str) and not _text_problem(u) else _shown(u) for u in unknown
            )
            raise OptionError(
                "--param",
                f"{self.name} takes no parameter {names} (it takes: {', '.join(known) or 'none'})",
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                value = given[p.name]
                out[p.name] = p.convert(value) if isinstance(value, str) else p.check(value)
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
    needs_results = False
    for line in header:
        m = _PARAM_LINE.match(line)
        if m:
            pname, ptype, low, high, default, help_text = m.groups()
            if ptype not in _TYPES:
                raise SpilloverError(f"saved query {name}: unknown type {ptype!r} of ${pname}")
            params.append(
                Param(
                    pname,
                    ptype,
                    _default(ptype, default),
                    help_text.strip(),
                    int(low) if low else None,
                    int(high) if high else None,
                )
            )
        m = _BROWSER_LINE.match(line)
        if m:
            browser[m.group(1)] = m.group(2)
        needs_results = needs_results or bool(_NEEDS_LINE.match(line))
    if not params:  # a red-flag query of `spillover findings`: its parameters come from there
        params = _finding_params(name, text)
    return SavedQuery(name, title, tuple(params), browser, text, needs_results)


#: a phone is a hub when named as a contact by this many unrelated borrowers
DEFAULT_MIN_BORROWERS = 5
#: a phone fans out when on the platform records of this many identities (ID number, else name)
DEFAULT_MIN_IDENTITIES = 3


def query_params(
    policy: Policy,
    min_borrowers: int = DEFAULT_MIN_BORROWERS,
    min_identities: int = DEFAULT_MIN_IDENTITIES,
) -> dict[str, dict[str, Any]]:
    """The $parameters of each red-flag query (the saved queries of :mod:`spillover.audit.findings`),
    from the rules and the policy."""
    unverified_roles = [r for r in ROLES if use_kind(r, True).code in UNVERIFIED_TIE_CODES]
    unchecked_roles = [
        r
        for r in ROLES
        if use_kind(r, False).code in UNVERIFIED_TIE_CODES and r not in unverified_roles
    ]
    statuses = sorted(s.value for s in policy.origin_statuses)
    return {
        "unverified_applicant_phone": {},
        "shared_phone_hubs": {"min_borrowers": min_borrowers},
        "listed_only_unverified": {
            "statuses": statuses,
            "applicant": APPLICANT,
            "applied_with": APPLIED_WITH,
            "unverified_roles": unverified_roles,
            "unchecked_roles": unchecked_roles,
            "owner_unverified": owns_kind(False).code in UNVERIFIED_TIE_CODES,
        },
        "copies_after_repaid": {"repaid": LoanStatus.REPAID.value},
        "phone_only_record_links": {},
        "clusters_without_id_number": {},
        "record_phone_fanout": {"min_identities": min_identities},
    }


def _finding_params(name: str, text: str) -> list[Param]:
    """The parameters of a saved query whose header has no ``@param`` lines (the red-flag
    queries of :mod:`spillover.audit.findings`): the ``$names`` its body uses, with the values
    ``spillover findings`` passes (from the rules and the default policy) as defaults."""
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
            else "list"
            if isinstance(value, list) and all(isinstance(v, str) for v in value)
            else "json"
        )
        out.append(
            Param(
                pname,
                ptype,
                value,
                "as spillover findings passes it (see the header)",
                # the thresholds (min_borrowers, min_identities) count people or identities
                minimum=1 if ptype == "integer" else None,
            )
        )
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
    driver: neo4j.Driver, database: str, name: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run the saved query ``name`` (read only) with ``params`` (text as ``--param``
    gives it, or values of each parameter's type), checked before anything is sent.

    A query that reads the write-back's results (``trace_entry``, ``spread_from``,
    ``most_harmed``, ``platform_spillover``) runs only while they are current: in the
    same read transaction, the dataset marker is read before and after it, and stale,
    incomplete or absent results (or a marker that changed meanwhile) raise
    :class:`StaleResults` saying why and what to run.
    """
    import neo4j as _neo4j

    query = saved_query(name)
    bound = query.bind(params or {})
    if not query.needs_results:
        records, _, keys = driver.execute_query(
            query.text, bound, database_=database, routing_=_neo4j.RoutingControl.READ
        )
        return QueryResult(
            name, tuple(keys), tuple({k: plain(r[k]) for k in keys} for r in records)
        )
    status = saved_query("results_status").text

    def work(tx: neo4j.ManagedTransaction) -> tuple[list[str], list[dict[str, Any]]]:
        before = tx.run(status).single()
        assert before is not None
        if before["state"] != "current":
            raise StaleResults(_refusal(name, before.data()))
        result = tx.run(query.text, bound)
        keys = list(result.keys())
        rows = [{k: plain(r[k]) for k in keys} for r in result]
        after = tx.run(status).single()
        assert after is not None
        if after.data() != before.data():
            raise StaleResults(
                f"{name}: the audit results changed while the query ran (an ingest or a "
                "write-back wrote meanwhile): run it again"
            )
        return keys, rows

    with driver.session(database=database, default_access_mode=_neo4j.READ_ACCESS) as session:
        keys, rows = session.execute_read(work)
    return QueryResult(name, tuple(keys), tuple(rows))


def results_status(driver: neo4j.Driver, database: str) -> dict[str, Any]:
    """The state of the write-back's results (the saved query ``results_status``'s row):
    ``state`` is ``current``, ``stale``, ``incomplete`` or ``none``."""
    return dict(run_saved_query(driver, database, "results_status").rows[0])


def _refusal(name: str, status: Mapping[str, Any]) -> str:
    """Why the saved query ``name`` does not answer from results in state ``status``."""
    again = "run spillover audit --write-back"
    live = (
        " (spillover explain ENTRY_ID and spillover audit read the graph as it is now, "
        "without the write-back)"
    )
    state = status["state"]
    if state == "stale":
        return (
            f"{name}: the audit results in the graph are stale: the write-back of "
            f"{plain(status['results_audited_at'])} read data version "
            f"{status['results_data_version']}, and an ingest has changed the data since "
            f"(now data version {status['data_version']}"
            + (f", changed at {status['data_changed_at']}" if status["data_changed_at"] else "")
            + f"); their paths and scores may name links and loans that are gone or "
            f"changed: {again} again{live}"
        )
    if state == "incomplete":
        written, total = status["writeback_written"], status["writeback_total"]
        progress = f", {written} of {total} entries written" if total is not None else ""
        older = (
            f"; the other entries hold the results of run {status['results_run']} "
            f"({status['results_policy_name']} {status['results_policy_version']})"
            if status["results_run"]
            else ""
        )
        return (
            f"{name}: the audit results in the graph are incomplete: the write-back "
            f"{status['writeback_run']} ({status['writeback_policy_name']} "
            f"{status['writeback_policy_version']}) started at "
            f"{plain(status['writeback_started_at'])} has not finished (still running, or "
            f"interrupted{progress}){older}; {name} does not mix two runs: wait for the "
            f"running write-back, or {again} again{live}"
        )
    return (
        f"{name}: no complete audit results in the graph (no write-back recorded on the "
        f"dataset marker, or one by a spillover from before runs were recorded): {again} "
        f"first{live}"
    )


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
