"""Investigating in Neo4j: audit results written into the graph, and saved Cypher queries.

* :func:`write_back` (``spillover audit --write-back``) explains every entry of a
  Neo4j graph with :func:`spillover.engines.search.explain` (all paths up to the policy's
  ``max_paths``, exactly what ``spillover explain`` lists) and stores on each
  ``Entry`` its ``contamination``, ``verdict``, ``reason_codes``, the policy and the
  audit time, and one ``(:Entry)-[:TRACED_TO]->(:Loan)`` per explanation path, to
  the path's origin loan, carrying the path's rank, responsibility, hops and its
  route (the nodes and stored relationships it walks), so that Cypher can follow
  the spread in both directions. A rerun replaces the previous results.
* :func:`list_saved_queries`, :func:`saved_query` and :func:`run_saved_query`: the
  investigation queries in ``spillover/neo4j/cypher/investigate/*.cypher``, each with a
  header saying what it answers and which parameters it takes.

The graph is read once (:meth:`~spillover.neo4j.store.Neo4jBackend.columns`) and
explained in memory over the batch pass's index (no round trip per entry).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engines.search import Explanation, ExplanationPath, explain
from ..errors import NotFoundError, OptionError, SpilloverError
from ..facts.model import APPLICANT, LoanStatus, split_ref
from ..files.write import atomic_file, neutralize
from ..policy import Policy, default_policy
from ..rules import (
    APPLIED_WITH,
    BORROWED,
    CHAIN_STEP,
    COPY_STEP,
    LINKS,
    LISTING_STEP,
    ORIGIN_STEP,
    OWNS,
    ROLES,
    SHARING_STEP,
    UNVERIFIED_TIE_CODES,
    Verdict,
    loan_kind,
    owns_kind,
    role_of,
    use_kind,
)
from ..rules import AT as AT_REL
from ..rules import COPIED_FROM as COPIED_FROM_REL
from ..rules import ON as ON_REL
from ..rules import SHARES_WITH as SHARES_WITH_REL
from .schema import LABELS
from .statements import cypher, cypher_folder

if TYPE_CHECKING:
    import neo4j

    from ..facts.columns import Columns
    from .store import Neo4jBackend

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MIN_BORROWERS",
    "DEFAULT_MIN_IDENTITIES",
    "FORMATS",
    "RULE_PARAMS",
    "Param",
    "QueryResult",
    "SavedQuery",
    "StaleResults",
    "WriteBackRefused",
    "WriteBackSummary",
    "explanations_of",
    "format_result",
    "list_saved_queries",
    "plain",
    "query_params",
    "results_status",
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
    #: this run's id (``audit_run`` on every entry it wrote; ``results_run`` on the marker)
    run: str = ""
    #: the data version the run read (the dataset marker's ``data_version``)
    data_version: int = 0

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
    from ..facts.columns import Details

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
    from ..backends.arrays import ArrayBackend

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


class WriteBackRefused(SpilloverError):
    """A write-back that could not start, or did not complete (its run is then marked
    incomplete on the dataset marker, and the saved queries refuse its results)."""


class StaleResults(SpilloverError):
    """The audit results in the graph are not current (stale, incomplete or absent): a
    saved query that reads them refuses to answer."""


def _tx(
    driver: neo4j.Driver, database: str, work: Callable[[neo4j.ManagedTransaction], Any]
) -> Any:
    with driver.session(database=database) as session:
        return session.execute_write(work)


def _claimed(tx: neo4j.ManagedTransaction, run: str, written: int, total: int) -> bool:
    """Lock the dataset marker and check that run ``run`` still owns it (idempotent)."""
    record = tx.run(cypher("writeback_claim"), run=run, written=written, total=total).single()
    return record is not None


def write_back(  # noqa: C901 (to split, issue 20)
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
    ``policy_name``, ``policy_version``, ``policy_digest``, ``audited_at`` and
    ``audit_run`` (this run's id); its ``TRACED_TO`` relationships are replaced by one
    per explanation path (ranked as ``spillover explain`` lists them). Batches of
    ``batch_size`` entries are written with ``UNWIND`` in managed write transactions
    (each batch replaces what it writes, so a retried batch changes nothing). Entries
    this run did not see (ingested while it ran) lose any older result at the end: no
    stale result stays behind.

    The run marks itself on the dataset marker: ``writeback_*`` while it runs (a run
    cut short stays marked incomplete), ``results_*`` once every entry holds its
    results, with the data version it read (an ingest that changes the data raises the
    data version: the results are then stale). The saved queries that read the results
    answer only for a complete run on the current data (:func:`results_status`).
    Raises :class:`WriteBackRefused` when an ingest has not finished, when the write-back
    stops part-way (the server went away, a transaction was killed) and when another
    write-back took over while it ran; :class:`StaleResults` when an ingest changed the
    data while it ran (the results are stored, and marked stale).
    """
    import neo4j as _neo4j

    policy = policy or default_policy()
    audited_at = now or datetime.now(UTC)
    run = uuid.uuid4().hex
    start = time.perf_counter()
    driver, database = backend.driver, backend.database
    params: dict[str, Any] = {
        "policy_name": policy.name,
        "policy_version": policy.version,
        "policy_digest": policy.digest,
        "audited_at": audited_at,
    }
    entries = traces = written = total = 0
    try:
        started = _tx(
            driver,
            database,
            lambda tx: tx.run(cypher("writeback_start"), run=run, **params).single(),
        )
        if not started["complete"]:
            raise WriteBackRefused(
                f"an ingest of dataset {started['name']!r}"
                + (f" from {started['folder']}" if started["folder"] else "")
                + f" started at {started['ingest_started_at']} and has not finished: "
                "run the ingest again (it finishes the job), then write back"
            )
        data_version = int(started["data_version"])
        if progress:
            progress("read graph", 0, 1)
        columns = backend.columns()
        if progress:
            progress("read graph", 1, 1)
        total = len(columns.entry_ids)
        verdicts: dict[str, int] = {}
        explain_seconds = write_seconds = 0.0
        batch: list[dict[str, Any]] = []

        def write_batch(tx: neo4j.ManagedTransaction) -> int | None:
            if not _claimed(tx, run, written + len(batch), total):
                return None
            record = tx.run(cypher("writeback_entries"), rows=batch, run=run, **params).single()
            return int(record["written"]) if record is not None else 0

        def flush() -> None:
            nonlocal write_seconds, written
            t = time.perf_counter()
            done = _tx(driver, database, write_batch)
            if done is None:
                raise _taken_over(run)
            written += done
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

        def clear(tx: neo4j.ManagedTransaction) -> int | None:
            if not _claimed(tx, run, written, total):
                return None
            record = tx.run(cypher("writeback_clear"), run=run, limit=batch_size).single()
            return int(record["cleared"]) if record is not None else 0

        cleared = 0
        while True:
            n = _tx(driver, database, clear)
            if n is None:
                raise _taken_over(run)
            cleared += n
            if n == 0:
                break
        finished = _tx(
            driver,
            database,
            lambda tx: tx.run(
                cypher("writeback_finish"),
                run=run,
                entries=written,
                traces=traces,
                finished_at=datetime.now(UTC),
            ).single(),
        )
    except (_neo4j.exceptions.DriverError, _neo4j.exceptions.Neo4jError) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise WriteBackRefused(
            f"the write-back stopped after writing {written} of {total} entries "
            f"({type(exc).__name__}: {first}); its run {run} stays marked incomplete on "
            "the dataset marker, and the saved queries that read the results refuse "
            "them until a write-back completes: run spillover audit --write-back again"
        ) from None
    if finished is None:
        raise _taken_over(run)
    if int(finished["data_version"]) != data_version:
        raise StaleResults(
            f"the data changed while the write-back ran (an ingest raised the data version "
            f"from {data_version} to {finished['data_version']}): its results are stored "
            "but stale, and the saved queries refuse them: run spillover audit "
            "--write-back again"
        )
    return WriteBackSummary(
        entries=entries,
        traces=traces,
        verdicts=dict(sorted(verdicts.items())),
        audited_at=audited_at,
        seconds=time.perf_counter() - start,
        explain_seconds=explain_seconds,
        write_seconds=write_seconds,
        cleared=cleared,
        run=run,
        data_version=data_version,
    )


def _taken_over(run: str) -> WriteBackRefused:
    return WriteBackRefused(
        f"another write-back started while run {run} was writing and took the dataset "
        "marker over: this run stopped; the saved queries answer once a write-back "
        "completes (run spillover audit --write-back again if none is running)"
    )


# ---------------------------------------------------------------------------
# Saved queries
# ---------------------------------------------------------------------------

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


#: how ``--param NAME=TEXT`` is read for each parameter type (``list``: a JSON list of
#: strings, e.g. ``["defaulted", "overdue"]``; ``json``: any JSON value Neo4j takes)
_TYPES: Mapping[str, Callable[[str], Any]] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": _boolean,
    "list": _string_list,
    "json": _json,
}
#: what each type is, in messages
_TYPE_TEXT: Mapping[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "float": "a number",
    "boolean": "true or false",
    "list": 'a JSON list of strings (e.g. ["a", "b"])',
    "json": "a JSON value",
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
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise self._bad(shown, f"not {want}")
            return value
        if self.type in ("integer", "float"):
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
            return value
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
