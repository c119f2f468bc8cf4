"""The audit's results written into a Neo4j graph (``spillover audit --write-back``).

:func:`write_back` explains every entry of a Neo4j graph (all paths up to the policy's
``max_paths``, exactly what :func:`spillover.engines.search.explain` lists, from one
batch pass: :func:`spillover.engines.batch.paths.every_path`) and stores on each ``Entry`` its
``contamination``, ``verdict``, ``reason_codes``, the policy and the audit time, and one
``(:Entry)-[:TRACED_TO]->(:Loan)`` per explanation path, to the path's origin loan,
carrying the path's rank, responsibility, hops and its route (the nodes and stored
relationships it walks), so that Cypher can follow the spread in both directions. A
rerun replaces the previous results; the saved queries of :mod:`spillover.neo4j.saved`
read them.

The graph is read once (:meth:`~spillover.neo4j.store.Neo4jBackend.columns`) and
explained in memory by the batch pass (no round trip, and no search, per entry).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.arrays import ArrayBackend
from ..engines.batch import Index
from ..engines.batch.paths import EntryPaths, PathColumns, every_path, path_chunks
from ..engines.search import Explanation, ExplanationPath, explain
from ..errors import SpilloverError
from ..facts.columns import Columns, Details
from ..facts.model import split_ref
from ..policy import Policy, default_policy
from ..rules import AT as AT_REL
from ..rules import (
    BORROWED,
    CHAIN_STEP,
    COPY_STEP,
    LINKS,
    LISTING_STEP,
    MATCH_KINDS,
    ORIGIN_STEP,
    OWNS,
    ROLES,
    SHARING_STEP,
    loan_kind,
    owns_kind,
    role_of,
)
from ..rules import COPIED_FROM as COPIED_FROM_REL
from ..rules import MATCHED_TO as MATCHED_TO_REL
from ..rules import ON as ON_REL
from ..rules import SHARES_WITH as SHARES_WITH_REL
from .saved import StaleResults
from .schema import LABELS
from .statements import cypher

if TYPE_CHECKING:
    import neo4j

    from .store import Neo4jBackend

__all__ = [
    "DEFAULT_BATCH",
    "METHODS",
    "WriteBackRefused",
    "WriteBackSummary",
    "entry_paths_of",
    "explanations_of",
    "stored_results",
    "trace_rows",
    "walks_of",
    "write_back",
]


Progress = Callable[[str, int, int], None]

#: entries per write transaction
DEFAULT_BATCH = 1000

#: how the write-back finds every entry's paths: one batch pass, or one search per entry
METHODS = ("pass", "per-entry")

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
    # a platform record's match, walked record -> person (an entry that lists a record)
    # or person -> record (on to a loan that names its borrower by the record)
    **{k.rel_for(): MATCHED_TO_REL for k in MATCH_KINDS.values()},
}


@functools.cache
def walks_of(rel: str) -> tuple[str, str]:
    """The stored relationship an explanation step named ``rel`` walks, and the link role
    that tells it apart (``LINKS {role}``; ``""`` for every other relationship)."""
    stored = _WALKS[rel]
    role = role_of(rel)
    return stored, role.name if role is not None and stored == LINKS else ""


@dataclass(frozen=True, slots=True)
class WriteBackSummary:
    """What a write-back stored: entries, TRACED_TO relationships, per verdict, the time
    (``seconds`` in all; ``explain_seconds`` finding the paths and ``write_seconds`` in
    the write transactions overlap: a batch is written while the next one is made)."""

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
    #: the seconds reading the graph took
    read_seconds: float = 0.0
    #: the TRACED_TO relationships this run created and deleted: an entry's relationship
    #: equal to one of its paths is kept as it is (a rerun whose paths did not move
    #: creates and deletes none); ``traces`` counts every path stored, kept or created
    traces_created: int = 0
    traces_deleted: int = 0

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
    (``roles``) and the owner period (``periods``, for ``OWNS``), ``""`` where none.

    A platform record on the path is a ``Record`` node: its match step walks the stored
    ``MATCHED_TO`` (record -> person, or person -> record), and the step from a record
    to the loan that names its borrower by it walks ``BORROWED``, which the graph stores
    from the record's person (``Loan.borrower_record`` names the record)."""
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


def _entry_row(e: Explanation | EntryPaths) -> dict[str, Any]:
    return {
        "id": e.entry_id if isinstance(e, EntryPaths) else e.entry.entry_id,
        "contamination": e.contamination,
        "verdict": e.verdict.value,
        "reason_codes": list(e.reason_codes),
        "traces": [trace_rows(p, rank) for rank, p in enumerate(e.paths, start=1)],
    }


def entry_paths_of(
    columns: Columns,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    method: str = "pass",
) -> Iterator[EntryPaths | Explanation]:
    """Every entry's paths, in entry id order, as ``spillover explain`` lists them (all
    paths up to ``max_paths``, default the policy's): from one batch pass over the
    columns (``method="pass"``: :func:`spillover.engines.batch.paths.every_path`), or one
    per-entry search per entry (``"per-entry"``: :func:`explanations_of`). Both give the
    same paths, ranks and routes."""
    if method == "pass":
        return every_path(Index(columns, policy or default_policy()), max_paths)
    if method == "per-entry":
        return explanations_of(columns, policy, max_paths=max_paths)
    raise WriteBackRefused(f"unknown write-back method {method!r} ({', '.join(METHODS)})")


class WriteBackRefused(SpilloverError):
    """A write-back that could not start, or did not complete (its run is then marked
    incomplete on the dataset marker, and the saved queries refuse its results)."""


Row = dict[str, Any]


def write_back(
    backend: Neo4jBackend,
    policy: Policy | None = None,
    *,
    max_paths: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    now: datetime | None = None,
    method: str = "pass",
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
    answer only for a complete run on the current data
    (:func:`~spillover.neo4j.saved.results_status`).
    Raises :class:`WriteBackRefused` when an ingest has not finished, when the write-back
    stops part-way (the server went away, a transaction was killed) and when another
    write-back took over while it ran (and for an unknown ``method``: ``"pass"``, every
    entry's paths from one batch pass, or ``"per-entry"``, one search per entry, the
    same paths, ranks and routes: :func:`entry_paths_of`); :class:`~spillover.neo4j.saved.StaleResults` when
    an ingest changed the data while it ran (the results are stored, and marked stale).
    """
    import neo4j as _neo4j

    if method not in METHODS:
        raise WriteBackRefused(f"unknown write-back method {method!r} ({', '.join(METHODS)})")
    policy = policy or default_policy()
    audited_at = now or datetime.now(UTC)
    run = uuid.uuid4().hex
    start = time.perf_counter()
    params: Row = {
        "policy_name": policy.name,
        "policy_version": policy.version,
        "policy_digest": policy.digest,
        "audited_at": audited_at,
    }
    tally = _Tally()
    try:
        data_version = _claim_run(backend, run, params)
        t = time.perf_counter()
        columns = _read_graph(backend, progress)
        read_seconds = time.perf_counter() - t
        tally.total = len(columns.entry_ids)
        batches = _explain_batches(columns, policy, max_paths, batch_size, method)
        _write_all(backend, run, params, batches, tally, progress)
        cleared = _clear_unseen(backend, run, tally, batch_size)
        finished = _finish_run(backend, run, tally.written, tally.traces)
    except (_neo4j.exceptions.DriverError, _neo4j.exceptions.Neo4jError) as exc:
        raise _stopped(exc, run, tally.written, tally.total) from None
    _check_finished(finished, run, data_version)
    return WriteBackSummary(
        entries=tally.entries,
        traces=tally.traces,
        verdicts=dict(sorted(tally.verdicts.items())),
        audited_at=audited_at,
        seconds=time.perf_counter() - start,
        explain_seconds=tally.explain_seconds,
        write_seconds=tally.write_seconds,
        cleared=cleared,
        run=run,
        data_version=data_version,
        read_seconds=read_seconds,
        traces_created=tally.created,
        traces_deleted=tally.deleted,
    )


@dataclass
class _Tally:
    """What a write-back has done so far (read when it stops part-way)."""

    total: int = 0
    entries: int = 0
    traces: int = 0
    written: int = 0
    created: int = 0
    deleted: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    explain_seconds: float = 0.0
    write_seconds: float = 0.0


def _write_all(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    batches: Iterator[tuple[_Batch, float]],
    tally: _Tally,
    progress: Progress | None,
) -> None:
    """Write every batch, in order, each in its transaction: one writer thread writes a
    batch while this one makes the next (the server works while the paths are read
    back), and a batch is sent only once the one before it is written."""

    def write(batch: _Batch, written: int) -> tuple[_Written, float]:
        t = time.perf_counter()
        done = _write_batch(backend, run, params, batch, written, tally.total)
        return done, time.perf_counter() - t

    def wait(pending: Future[tuple[_Written, float]]) -> None:
        done, seconds = pending.result()
        tally.written += done.entries
        tally.created += done.created
        tally.deleted += done.deleted
        tally.write_seconds += seconds
        if progress:
            progress("write-back", tally.written, tally.total)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-back") as writer:
        pending: Future[tuple[_Written, float]] | None = None
        for batch, seconds in batches:
            tally.explain_seconds += seconds
            tally.entries += batch.entries
            tally.traces += batch.traces
            for verdict in batch.verdicts:
                tally.verdicts[verdict] = tally.verdicts.get(verdict, 0) + 1
            if pending is not None:
                wait(pending)
            pending = writer.submit(write, batch, tally.written)
        if pending is not None:
            wait(pending)
    if progress:
        progress("write-back", tally.entries, tally.total)


# The steps of a write-back. Each transaction function can run again when the driver
# retries it (idempotent: it sets absolute values, and replaces what it writes); every
# write after the start first checks that this run still owns the dataset marker.


def _tx(backend: Neo4jBackend, work: Callable[[neo4j.ManagedTransaction], Any]) -> Any:
    """``work`` in one managed write transaction (retried on transient errors)."""
    with backend.driver.session(database=backend.database) as session:
        return session.execute_write(work)


def _claimed(tx: neo4j.ManagedTransaction, run: str, written: int, total: int) -> bool:
    """Lock the dataset marker and check that run ``run`` still owns it (idempotent)."""
    record = tx.run(cypher("writeback_claim"), run=run, written=written, total=total).single()
    return record is not None


def _claim_run(backend: Neo4jBackend, run: str, params: Row) -> int:
    """Mark run ``run`` on the dataset marker as the write-back in progress; the data
    version it reads. Refused while an ingest has not finished."""

    def start(tx: neo4j.ManagedTransaction) -> Any:
        return tx.run(cypher("writeback_start"), run=run, **params).single()

    started = _tx(backend, start)
    if not started["complete"]:
        raise WriteBackRefused(
            f"an ingest of dataset {started['name']!r}"
            + (f" from {started['folder']}" if started["folder"] else "")
            + f" started at {started['ingest_started_at']} and has not finished: "
            "run the ingest again (it finishes the job), then write back"
        )
    return int(started["data_version"])


def _read_graph(backend: Neo4jBackend, progress: Progress | None) -> Columns:
    """The whole graph as columns (one read)."""
    if progress:
        progress("read graph", 0, 1)
    columns = backend.columns()
    if progress:
        progress("read graph", 1, 1)
    return columns


@dataclass(frozen=True, slots=True)
class _Batch:
    """One write transaction's entries: the columns ``writeback_entries.cypher`` takes
    (``params``), how many entries and traces, and each entry's verdict."""

    params: Row
    entries: int
    traces: int
    verdicts: list[str]


#: the steps whose day the write-back stores (an OWNS step's owner period)
_DAYS_OF = frozenset(rel for rel, stored in _WALKS.items() if stored == OWNS)


def _explain_batches(
    columns: Columns, policy: Policy, max_paths: int | None, size: int, method: str
) -> Iterator[tuple[_Batch, float]]:
    """The results of every entry, in batches of ``size`` entries, each with the seconds
    its explaining took (the batch pass's counted in the first)."""
    t = time.perf_counter()
    if method == "pass":
        tables = _Tables()
        chunks = path_chunks(Index(columns, policy), max_paths, days_of=_DAYS_OF, size=size * 5)
        for found in chunks:
            tables.grow(found)
            for lo in range(0, len(found.entry_ids), size):
                yield _sliced(found, tables, lo, lo + size), time.perf_counter() - t
                t = time.perf_counter()
        return
    rows: list[Row] = []
    for e in entry_paths_of(columns, policy, max_paths=max_paths, method=method):
        rows.append(_entry_row(e))
        if len(rows) >= size:
            yield _from_rows(rows), time.perf_counter() - t
            rows = []
            t = time.perf_counter()
    if rows:
        yield _from_rows(rows), time.perf_counter() - t


@dataclass(slots=True)
class _Tables:
    """What :class:`PathColumns` names by index, as the write-back stores it: per node its
    label and key, per step kind its step, walk, role and period (grown chunk by chunk)."""

    label: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    step: list[str] = field(default_factory=list)
    walk: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    period: list[str] = field(default_factory=list)

    def grow(self, found: PathColumns) -> None:
        """Add the nodes and kinds ``found`` names that are not in yet."""
        for node in found.nodes[len(self.label) :]:
            kind, ident = split_ref(node)
            self.label.append(LABELS[kind])
            self.key.append(ident)
        for rel, at in found.kinds[len(self.step) :]:
            stored, role = walks_of(rel)
            self.step.append(rel)
            self.walk.append(stored)
            self.role.append(role)
            self.period.append(at.isoformat() if stored == OWNS and at is not None else "")


def _sliced(found: PathColumns, tables: _Tables, lo: int, hi: int) -> _Batch:
    """Entries ``lo`` to ``hi`` of ``found`` as one batch (the nodes and kinds numbered
    afresh, each sent once)."""
    hi = min(hi, len(found.entry_ids))
    a, b = int(found.first[lo]), int(found.first[hi])
    start, end = int(found.off[a]), int(found.off[b])
    words, node = np.unique(
        np.concatenate((found.start[a:b], found.node[start:end])), return_inverse=True
    )
    kinds, kind = np.unique(found.kind[start:end], return_inverse=True)
    verdicts = found.verdict[lo:hi]
    params: Row = {
        "ids": found.entry_ids[lo:hi],
        "contamination": found.contamination[lo:hi],
        "verdict": verdicts,
        "reason_codes": [list(c) for c in found.reason_codes[lo:hi]],
        "first": (found.first[lo : hi + 1] - a).tolist(),
        "loan": found.loan[a:b],
        "responsibility": found.responsibility[a:b],
        "hops": found.hops[a:b].tolist(),
        "start": node[: b - a].tolist(),
        "off": (found.off[a : b + 1] - start).tolist(),
        "node": node[b - a :].tolist(),
        "kind": kind.tolist(),
        "word_label": [tables.label[w] for w in words.tolist()],
        "word_key": [tables.key[w] for w in words.tolist()],
        **{
            f"kind_{name}": [getattr(tables, name)[k] for k in kinds.tolist()]
            for name in _KIND_FIELDS
        },
    }
    return _Batch(params, hi - lo, b - a, verdicts)


def _from_rows(rows: list[Row]) -> _Batch:
    """Entry rows (:func:`_entry_row`) as one batch's columns (:func:`_sliced`'s)."""
    words: dict[tuple[str, str], int] = {}
    kinds: dict[tuple[str, str, str, str], int] = {}
    first: list[int] = [0]
    off: list[int] = [0]
    start: list[int] = []
    node: list[int] = []
    kind: list[int] = []
    loan: list[str] = []
    responsibility: list[float] = []
    hops: list[int] = []
    for row in rows:
        for tr in row["traces"]:
            pairs = zip(tr["labels"], tr["keys"], strict=True)
            nodes = [words.setdefault(w, len(words)) for w in pairs]
            start.append(nodes[0])
            node.extend(nodes[1:])
            steps = zip(tr["steps"], tr["walks"], tr["roles"], tr["periods"], strict=True)
            kind.extend(kinds.setdefault(k, len(kinds)) for k in steps)
            off.append(len(node))
            loan.append(tr["loan"])
            responsibility.append(tr["responsibility"])
            hops.append(tr["hops"])
        first.append(len(loan))
    verdicts = [row["verdict"] for row in rows]
    params: Row = {
        "ids": [row["id"] for row in rows],
        "contamination": [row["contamination"] for row in rows],
        "verdict": verdicts,
        "reason_codes": [row["reason_codes"] for row in rows],
        "first": first,
        "loan": loan,
        "responsibility": responsibility,
        "hops": hops,
        "start": start,
        "off": off,
        "node": node,
        "kind": kind,
        "word_label": [w[0] for w in words],
        "word_key": [w[1] for w in words],
        **{f"kind_{name}": [k[i] for k in kinds] for i, name in enumerate(_KIND_FIELDS)},
    }
    return _Batch(params, len(rows), len(loan), verdicts)


_KIND_FIELDS = ("step", "walk", "role", "period")


@dataclass(frozen=True, slots=True)
class _Written:
    """What one write transaction did: entries written, TRACED_TO created and deleted."""

    entries: int
    created: int
    deleted: int


def _written(result: neo4j.Result, key: str) -> _Written:
    """The count ``key`` of a write statement's one record, and its relationship counters."""
    record = result.single()
    counters = result.consume().counters
    return _Written(
        int(record[key]) if record is not None else 0,
        counters.relationships_created,
        counters.relationships_deleted,
    )


def _write_batch(
    backend: Neo4jBackend, run: str, params: Row, batch: _Batch, written: int, total: int
) -> _Written:
    """Write one batch of results (``UNWIND $rows``): the entries it wrote, the
    relationships it created and deleted. ``written``: the entries the earlier batches
    wrote."""

    def work(tx: neo4j.ManagedTransaction) -> _Written | None:
        if not _claimed(tx, run, written + batch.entries, total):
            return None
        statement = cypher("writeback_entries")
        return _written(tx.run(statement, run=run, **params, **batch.params), "written")

    done: _Written | None = _tx(backend, work)
    if done is None:
        raise _taken_over(run)
    return done


def _clear_unseen(backend: Neo4jBackend, run: str, tally: _Tally, limit: int) -> int:
    """Remove older results from the entries this run did not write, ``limit`` entries
    per transaction; how many it cleared (their relationships counted in ``tally``)."""

    def work(tx: neo4j.ManagedTransaction) -> _Written | None:
        if not _claimed(tx, run, tally.written, tally.total):
            return None
        return _written(tx.run(cypher("writeback_clear"), run=run, limit=limit), "cleared")

    cleared = 0
    while True:
        n: _Written | None = _tx(backend, work)
        if n is None:
            raise _taken_over(run)
        cleared += n.entries
        tally.deleted += n.deleted
        if n.entries == 0:
            return cleared


def _finish_run(backend: Neo4jBackend, run: str, written: int, traces: int) -> Any:
    """Make run ``run``'s results the current ones on the dataset marker: its record
    (``data_version``), or None when another write-back took the marker over."""

    def work(tx: neo4j.ManagedTransaction) -> Any:
        return tx.run(
            cypher("writeback_finish"),
            run=run,
            entries=written,
            traces=traces,
            finished_at=datetime.now(UTC),
        ).single()

    return _tx(backend, work)


def stored_results(driver: neo4j.Driver, database: str) -> list[dict[str, Any]]:
    """The write-back's results as stored in the graph: per entry (in id order) its ``id``,
    its properties (``props``, without the run's own ``audited_at`` and ``audit_run``) and
    its ``TRACED_TO`` as ``[loan id, properties]`` in rank order (``[None, None]`` when it
    has none). Two runs that stored the same results give equal lists (how the tests and
    ``benchmarks/bench_writeback.py`` compare write-back graphs)."""
    import neo4j as _neo4j

    records, _, _ = driver.execute_query(
        cypher("writeback_state"), database_=database, routing_=_neo4j.RoutingControl.READ
    )
    return [r.data() for r in records]


def _check_finished(finished: Any, run: str, data_version: int) -> None:
    """Refuse a run that lost the marker, or whose data changed while it ran."""
    if finished is None:
        raise _taken_over(run)
    if int(finished["data_version"]) != data_version:
        raise StaleResults(
            f"the data changed while the write-back ran (an ingest raised the data version "
            f"from {data_version} to {finished['data_version']}): its results are stored "
            "but stale, and the saved queries refuse them: run spillover audit "
            "--write-back again"
        )


def _stopped(exc: Exception, run: str, written: int, total: int) -> WriteBackRefused:
    """The refusal of a write-back the server or driver stopped part-way."""
    first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return WriteBackRefused(
        f"the write-back stopped after writing {written} of {total} entries "
        f"({type(exc).__name__}: {first}); its run {run} stays marked incomplete on "
        "the dataset marker, and the saved queries that read the results refuse "
        "them until a write-back completes: run spillover audit --write-back again"
    )


def _taken_over(run: str) -> WriteBackRefused:
    return WriteBackRefused(
        f"another write-back started while run {run} was writing and took the dataset "
        "marker over: this run stopped; the saved queries answer once a write-back "
        "completes (run spillover audit --write-back again if none is running)"
    )
