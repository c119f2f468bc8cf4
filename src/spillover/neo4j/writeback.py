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
import hashlib
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
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
from ..facts.columns import Columns, Details, columns_digest
from ..facts.model import split_ref
from ..memory import kept_heap, small_pages
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
from ..version import __version__
from .commits import Commit, Commits, last_commit
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
    "mark_parts",
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
    #: the entries whose TRACED_TO this run found as it would write them (their digest,
    #: ``traces_digest``, and their number unchanged) and left untouched, without sending
    #: or comparing them; counted in ``traces`` too
    entries_unchanged: int = 0
    #: the run found the graph, the policy and every entry's results as the last
    #: completed run read and left them (the seal on the dataset marker): it made no path
    #: and wrote only the run's marks on every entry (``audited_at``, ``audit_run``,
    #: ``traces_digest``)
    graph_unchanged: bool = False
    #: False when the run found nothing committed to the database since the last
    #: completed run finished (``results_chain`` on the dataset marker): it wrote its
    #: marks without reading the graph or the entries (``graph_unchanged`` is then true)
    graph_read: bool = True

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
    check_traces: bool = False,
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

    Each entry also gets ``traces_digest``, a digest of its traces under this run: a
    later run sends an entry whose traces digest the same (under the run that wrote them)
    and whose ``TRACED_TO`` are as many as its traces without them, and leaves its
    ``TRACED_TO`` as they are (``entries_unchanged`` in the summary). A ``TRACED_TO``
    altered by hand keeps the entry's digest: ``check_traces=True`` reads back and
    compares every entry's ``TRACED_TO`` (and puts back any altered one).

    A completed run seals its results on the dataset marker (:func:`_seal`); a later
    ``"pass"`` run without ``check_traces`` that finds the seal holding for the graph it
    reads makes no path and writes only its marks on every entry (``graph_unchanged``);
    one that finds nothing committed to the database since that run finished
    (:func:`_chained`, by the driver's bookmarks: :mod:`spillover.neo4j.commits`) does
    so without reading the graph (``graph_read`` False).

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
        with small_pages(), kept_heap():  # as an audit (spillover.memory)
            commits = Commits()
            claim = _claim_run(backend, run, params, commits)
            data_version = claim.data_version
            plan = _Plan(policy, max_paths, batch_size, method, check_traces)
            wrote = _write_every_entry(backend, run, params, claim, plan, tally, progress, commits)
            chain = functools.partial(_chain, policy=policy, max_paths=max_paths)
            cleared, finished = _clear_and_finish(
                backend, run, tally, batch_size, wrote.seals, commits, chain
            )
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
        read_seconds=wrote.read_seconds or 0.0,
        traces_created=tally.created,
        traces_deleted=tally.deleted,
        entries_unchanged=tally.unchanged,
        graph_unchanged=wrote.unchanged,
        graph_read=wrote.read_seconds is not None,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a run makes every entry's paths (:func:`_explain_batches`: the policy, the
    paths kept per entry, the entries per batch, the method), and whether it reads back
    every entry's ``TRACED_TO`` (``check_traces``)."""

    policy: Policy
    max_paths: int | None
    batch_size: int
    method: str
    check_traces: bool


@dataclass(frozen=True, slots=True)
class _Wrote:
    """How a run wrote every entry's results: the seconds its read of the graph took
    (None: it read none, :func:`_write_sealed`), whether it kept the last completed
    run's results (the graph as that run left it), and the seals it leaves."""

    read_seconds: float | None
    unchanged: bool
    seals: _Seals


def _write_every_entry(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    claim: _Claim,
    plan: _Plan,
    tally: _Tally,
    progress: Progress | None,
    commits: Commits,
) -> _Wrote:
    """Write every entry's results: only this run's marks, without reading the graph,
    when nothing was committed since the last completed run finished (:func:`_chained`,
    :func:`_write_sealed`); else read the graph and every entry's results and write
    every entry's paths, or only this run's marks when the last completed run's seal
    holds for what was read (:func:`_sealed`)."""
    if (
        plan.method == "pass"
        and not plan.check_traces
        and _chained(claim, commits, plan.policy, plan.max_paths)
        and _write_sealed(backend, run, params, claim, tally, progress, commits)
    ):
        return _Wrote(None, True, _Seals(claim.results_graph, claim.results_read))
    tally.restart()
    t = time.perf_counter()
    keep = functools.partial(_keepable, claim, params, run) if plan.method == "pass" else None
    columns, seen, kept = _read_graph(backend, progress, not plan.check_traces, keep)
    read_seconds = time.perf_counter() - t
    tally.total = len(columns.entry_ids)
    paths = _Paths(columns, plan)
    keys = _GraphKeys(paths)
    if kept is not None and not _sealed(kept, claim, keys):
        kept = None
    results, unchanged = _write_results(
        backend, run, params, paths, seen, kept, tally, progress, commits
    )
    seals = keys.seals(results.digest(), claim if unchanged else None)
    return _Wrote(read_seconds, unchanged, seals)


@dataclass(frozen=True, slots=True)
class _Paths:
    """The graph a run read and how it makes every entry's paths of it."""

    columns: Columns
    plan: _Plan


def _write_results(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    paths: _Paths,
    seen: Seen | None,
    kept: _Kept | None,
    tally: _Tally,
    progress: Progress | None,
    commits: Commits,
) -> tuple[_Results, bool]:
    """Write every entry's results: only this run's marks when ``kept`` (the sealed
    results of the last run, :func:`_sealed`), else every entry's paths; should an entry
    move before its marks are written, every path after all (the entries read again).
    The results written (what the run seals) and whether they were ``kept``."""
    if kept is not None:
        size = paths.plan.batch_size * 10
        if _write_kept(backend, run, params, kept, tally, progress, size, commits):
            return kept.results, True
        tally.restart()
        seen = _traces_seen(backend)
    results = _Results()
    plan = paths.plan
    batches = _explain_batches(
        paths.columns, plan.policy, plan.max_paths, plan.batch_size, plan.method
    )
    _write_all(backend, run, params, results.adding(batches), tally, progress, commits, seen)
    return results, False


@dataclass
class _Tally:
    """What a write-back has done so far (read when it stops part-way)."""

    total: int = 0
    entries: int = 0
    traces: int = 0
    written: int = 0
    created: int = 0
    deleted: int = 0
    unchanged: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    explain_seconds: float = 0.0
    write_seconds: float = 0.0

    def count(self, verdicts: Iterable[str]) -> None:
        """Count the verdicts of the entries of a batch."""
        for verdict in verdicts:
            self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1

    def restart(self) -> None:
        """Nothing done yet (the total kept)."""
        for name, value in vars(_Tally(total=self.total)).items():
            setattr(self, name, value)


def _write_all(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    batches: Iterator[tuple[_Batch, float]],
    tally: _Tally,
    progress: Progress | None,
    commits: Commits,
    seen: Seen | None = None,
) -> None:
    """Write every batch, in order, each in its transaction: one writer thread writes a
    batch while this one makes the next (the server works while the paths are read
    back), and a batch is sent only once the one before it is written. An entry whose
    traces did not move since ``seen`` is sent without them (:func:`_send`)."""

    def write(batch: _Batch, written: int) -> tuple[_Written, float]:
        t = time.perf_counter()
        done = _write_batch(backend, run, params, batch, written, tally.total, commits, seen)
        return done, time.perf_counter() - t

    def wait(pending: Future[tuple[_Written, float]]) -> None:
        done, seconds = pending.result()
        tally.written += done.entries
        tally.created += done.created
        tally.deleted += done.deleted
        tally.unchanged += done.unchanged
        tally.write_seconds += seconds
        if progress:
            progress("write-back", tally.written, tally.total)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-back") as writer:
        pending: Future[tuple[_Written, float]] | None = None
        for batch, seconds in batches:
            tally.explain_seconds += seconds
            tally.entries += batch.entries
            tally.traces += batch.traces
            tally.count(batch.verdicts)
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


def _tx(
    backend: Neo4jBackend, work: Callable[[neo4j.ManagedTransaction], Any], commits: Commits
) -> Any:
    """``work`` in one managed write transaction (retried on transient errors), its commit
    counted in ``commits`` (every write transaction of a run changes the dataset marker,
    so it commits a number of its own); a :class:`_TakenOver` it raises rolls it back and
    stops the run (:func:`_taken_over`)."""
    with backend.driver.session(database=backend.database) as session:
        try:
            done = session.execute_write(work)
        except _TakenOver as exc:
            raise _taken_over(exc.run) from None
        commits.add(last_commit(session.last_bookmarks().raw_values))
        return done


class _TakenOver(Exception):
    """Another write-back took the dataset marker over from ``run`` (:func:`_claim`)."""

    def __init__(self, run: str) -> None:
        super().__init__(run)
        self.run = run


def _claim(tx: neo4j.ManagedTransaction, run: str, written: int, total: int) -> None:
    """Lock the dataset marker and check that run ``run`` still owns it (idempotent);
    :class:`_TakenOver` (the transaction rolled back) when another run does."""
    record = tx.run(cypher("writeback_claim"), run=run, written=written, total=total).single()
    if record is None:
        raise _TakenOver(run)


@dataclass(frozen=True, slots=True)
class _Claim:
    """The dataset marker as a run claimed it: the data version the run reads, and the
    last completed run's id, seals (``results_graph`` and ``results_read``,
    :class:`_Seals`; ``""`` when none) and data version."""

    data_version: int
    results_run: str
    results_graph: str
    results_data_version: int | None
    results_read: str
    #: the last completed run's ``results_chain`` (:func:`_chain`; ``""`` when none),
    #: entries and ``TRACED_TO`` written
    results_chain: str = ""
    results_entries: int = 0
    results_traces: int = 0


def _claim_run(backend: Neo4jBackend, run: str, params: Row, commits: Commits) -> _Claim:
    """Mark run ``run`` on the dataset marker as the write-back in progress; the marker
    as it found it (:class:`_Claim`). Refused while an ingest has not finished. Sets
    ``params["earlier_run"]``, the last completed run (None: none), for
    ``writeback_entries`` (an entry no run scored was added since that run)."""

    def start(tx: neo4j.ManagedTransaction) -> Any:
        return tx.run(cypher("writeback_start"), run=run, **params).single()

    started = _tx(backend, start, commits)
    if not started["complete"]:
        raise WriteBackRefused(
            f"an ingest of dataset {started['name']!r}"
            + (f" from {started['folder']}" if started["folder"] else "")
            + f" started at {started['ingest_started_at']} and has not finished: "
            "run the ingest again (it finishes the job), then write back"
        )
    results_data_version = started["results_data_version"]
    params["earlier_run"] = started["results_run"] or None
    return _Claim(
        int(started["data_version"]),
        started["results_run"] or "",
        started["results_graph"] or "",
        None if results_data_version is None else int(results_data_version),
        started["results_read"] or "",
        started["results_chain"] or "",
        int(started["results_entries"] or 0),
        int(started["results_traces"] or 0),
    )


def _read_graph(
    backend: Neo4jBackend,
    progress: Progress | None,
    digests: bool = True,
    keep: Callable[[Seen], _Kept | None] | None = None,
) -> tuple[Columns, Seen | None, _Kept | None]:
    """The whole graph as columns (one read), and (``digests``) each entry's run, traces
    digest and number of ``TRACED_TO`` (read beside it: :data:`Seen`), with what ``keep``
    makes of them (in the same thread, while the columns are read)."""
    if progress:
        progress("read graph", 0, 1)

    def entries() -> tuple[Seen, _Kept | None]:
        seen = _traces_seen(backend)
        return seen, keep(seen) if keep is not None else None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-back-read") as reader:
        traces = reader.submit(entries) if digests else None
        columns = backend.columns()
        seen, kept = traces.result() if traces is not None else (None, None)
    if progress:
        progress("read graph", 1, 1)
    return columns, seen, kept


def _traces_seen(backend: Neo4jBackend) -> Seen:
    """Per entry its ``audit_run``, ``traces_digest``, number of ``TRACED_TO`` and stored
    answer (:class:`_Stored`)."""
    import neo4j as _neo4j

    records, _, _ = backend.driver.execute_query(
        cypher("writeback_traces"),
        database_=backend.database,
        routing_=_neo4j.RoutingControl.READ,
    )
    r = records[0]
    return {
        i: _Stored(run, digest, int(n), None if a[-1] else tuple(a[:-1]))
        for i, run, digest, n, a in zip(
            r["id"], r["run"], r["digest"], r["traces"], r["answer"], strict=True
        )
    }


def _graph_key(
    columns: Columns, policy: Policy, max_paths: int | None, *, in_order: bool = False
) -> bytes:
    """What a run's paths and answers follow from: the graph read (every column, whatever
    the order of the rows, or ``in_order`` as read:
    :func:`~spillover.facts.columns.columns_digest`), the policy's scoring fields, the
    paths kept per entry and spillover's version."""
    h = hashlib.blake2b(digest_size=32, person=b"spillover-graph")
    h.update(_run_fields(policy, max_paths))
    h.update(columns_digest(columns, in_order=in_order))
    return h.digest()


def _run_fields(policy: Policy, max_paths: int | None) -> bytes:
    """What a run's paths and answers follow from besides the graph: spillover's version,
    the policy's scoring fields and the paths kept per entry."""
    return repr(
        (
            __version__,
            policy.name,
            policy.version,
            policy.digest,
            sorted(policy.factors.items()),
            policy.max_loans,
            max_paths if max_paths is not None else policy.max_paths,
            sorted(str(s) for s in policy.origin_statuses),
            policy.spillover_at,
        )
    ).encode()


def _chain(commit: Commit | None, policy: Policy, max_paths: int | None) -> str | None:
    """A completed run's ``results_chain`` on the dataset marker: ``commit``, its last
    commit before its finish when nobody else committed from its start on
    (:meth:`~spillover.neo4j.commits.Commits.unbroken`), and a digest of
    :func:`_run_fields`; None when ``commit`` is None. A later run whose own start is
    the second commit after ``commit`` (the finish came right after it, then nothing
    but that start) under the same fields finds the graph and every entry's results as
    that run left them, without reading them (:func:`_chained`)."""
    if commit is None:
        return None
    fields = hashlib.blake2b(_run_fields(policy, max_paths), digest_size=16).hexdigest()
    return f"{commit.database}:{commit.number}:{fields}"


def _chained(claim: _Claim, commits: Commits, policy: Policy, max_paths: int | None) -> bool:
    """Whether nothing was committed between the finish of the last completed run and
    this run's start (``commits``, holding the start alone), under the same
    :func:`_run_fields`, and that run's results are current (its data version is the
    one this run reads)."""
    start = commits.unbroken()
    if (
        start is None
        or not claim.results_chain
        or not claim.results_graph
        or claim.results_data_version != claim.data_version
    ):
        return False
    before = Commit(start.database, start.number - 2)
    return claim.results_chain == _chain(before, policy, max_paths)


def _seal(graph: bytes, results: bytes) -> str:
    """A run's seal on the dataset marker: the graph it read (:func:`_graph_key`) and the
    results it left on every entry (:class:`_Results`), so that these results follow
    from this graph. Not bound to the run (whichever run left a seal, it holds for the
    graph and results it covers): every entry's traces digest is (:func:`_bound`), and a
    seal is checked only when every entry carries the last completed run's results
    (:func:`_keepable`)."""
    h = hashlib.blake2b(digest_size=16, person=b"spillover-seal2")
    h.update(graph + results)
    return h.hexdigest()


class _GraphKeys:
    """The keys of the graph a run read (:func:`_graph_key`): of its rows in the order
    read (cheap: :attr:`read`) and whatever their order (:meth:`graph`, made when
    first asked), and the seals a run leaves with them (:meth:`seals`)."""

    def __init__(self, paths: _Paths) -> None:
        self.paths = paths
        plan = paths.plan
        self.read = _graph_key(paths.columns, plan.policy, plan.max_paths, in_order=True)
        self._graph: bytes | None = None

    def graph(self) -> bytes:
        """The key of the graph read whatever the order of its rows."""
        if self._graph is None:
            plan = self.paths.plan
            self._graph = _graph_key(self.paths.columns, plan.policy, plan.max_paths)
        return self._graph

    def seals(self, results: bytes, kept: _Claim | None) -> _Seals:
        """The seals of a run that leaves ``results``: ``kept``, the claim of the last
        run whose results it kept (its seal held for this graph and these results: its
        seal of the graph whatever the order is kept, not made again)."""
        graph = kept.results_graph if kept is not None else _seal(self.graph(), results)
        return _Seals(graph, _seal(self.read, results))


@dataclass(frozen=True, slots=True)
class _Seals:
    """What a completed run leaves on the dataset marker: ``results_graph`` (its seal of
    the graph whatever the order of the rows) and ``results_read`` (of the rows in the
    order it read them: the next run that reads them so checks no more)."""

    graph: str
    read: str


class _Results:
    """Every entry's results as a run leaves them, digested in entry id order (the read
    order does not count): its id, answer (contamination, verdict, reason codes), number
    of traces and their digest (:func:`_content_digests`), kept as columns."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._contamination: list[float] = []
        self._verdicts: list[str] = []
        self._codes: list[str] = []
        self._traces: list[int] = []
        self._contents: list[bytes] = []
        self._digest: bytes | None = None

    def extend(
        self,
        ids: Iterable[Any],
        contamination: Iterable[Any],
        verdicts: Iterable[Any],
        codes: Iterable[Any],
        traces: Iterable[int],
        contents: Iterable[bytes],
    ) -> None:
        self._ids.extend(map(str, ids))
        self._contamination.extend(map(float, contamination))
        self._verdicts.extend(map(str, verdicts))
        self._codes.extend("\x1f".join(map(str, c or ())) for c in codes)
        self._traces.extend(traces)
        self._contents.extend(contents)
        self._digest = None

    def adding(self, batches: Iterator[tuple[_Batch, float]]) -> Iterator[tuple[_Batch, float]]:
        """``batches``, each added as it passes."""
        for batch, seconds in batches:
            e = batch.entry
            self.extend(
                e["ids"],
                e["contamination"],
                e["verdict"],
                e["reason_codes"],
                np.diff(batch.first).tolist(),
                batch.digests,
            )
            yield batch, seconds

    def digest(self) -> bytes:
        """The digest of every entry's results (made once until more are added)."""
        if self._digest is None:
            self._digest = self._made_digest()
        return self._digest

    def _made_digest(self) -> bytes:
        order = sorted(range(len(self._ids)), key=self._ids.__getitem__)
        h = hashlib.blake2b(digest_size=32, person=b"spillover-res")
        for column in (self._ids, self._verdicts, self._codes):
            texts = [column[i] for i in order]
            h.update(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)).tobytes())
            h.update("\0".join(texts).encode("utf-8", "surrogatepass"))
        h.update(np.asarray(self._contamination, dtype=np.float64)[order].tobytes())
        h.update(np.asarray(self._traces, dtype=np.int64)[order].tobytes())
        h.update(b"".join(self._contents[i] for i in order))
        return h.digest()


@dataclass(frozen=True, slots=True)
class _Kept:
    """Every entry as read, in the order read, when each holds the last completed run's
    results under this policy: the digest of those results (:class:`_Results`) and each
    entry's traces digest moved to this run (``digests``)."""

    entries: list[tuple[str, _Stored]]
    results: _Results
    digests: list[str]


def _keepable(claim: _Claim, params: Row, run: str, seen: Seen) -> _Kept | None:
    """``seen`` as a :class:`_Kept` when the marker holds a seal for the data version
    read, and every entry holds the results of the run that sealed them, under this
    run's policy (``params``), with a traces digest; else None."""
    if not claim.results_graph or claim.results_data_version != claim.data_version:
        return None
    policy = (params["policy_name"], params["policy_version"], params["policy_digest"])
    entries = list(seen.items())
    contents: list[bytes] = []
    for _, old in entries:
        if old.run != claim.results_run or old.answer is None or old.answer[3:] != policy:
            return None
        content = _unbound(old.digest, old.run)
        if content is None:
            return None
        contents.append(content)
    answers = [old.answer or () for _, old in entries]
    results = _Results()
    results.extend(
        (entry_id for entry_id, _ in entries),
        (a[0] for a in answers),
        (a[1] for a in answers),
        (a[2] for a in answers),
        (old.traces for _, old in entries),
        contents,
    )
    results.digest()  # made here, beside the read of the graph (kept until checked)
    return _Kept(entries, results, [_bound(content, run) for content in contents])


def _sealed(kept: _Kept, claim: _Claim, keys: _GraphKeys) -> bool:
    """Whether the entries of ``kept`` are those of the graph read and the last completed
    run's seal holds for this graph (``keys``) and their results: its seal of the rows
    in the order read when they came in that order, else its seal of the graph whatever
    the order of the rows (sorting them: :func:`_graph_key`)."""
    entry_ids = keys.paths.columns.entry_ids
    if {entry_id for entry_id, _ in kept.entries} != set(entry_ids.tolist()):
        return False
    results = kept.results.digest()
    if claim.results_read and _seal(keys.read, results) == claim.results_read:
        return True
    return _seal(keys.graph(), results) == claim.results_graph


class _Moved(Exception):
    """An entry's results moved between the read and the write (the batch is rolled back)."""


#: transactions that write a sealed run's marks at once: the server writes each on a
#: core of its own (the entries of two are never the same)
MARK_WRITERS = 2


def mark_parts(total: int, size: int) -> list[tuple[int, int]]:
    """How a rerun over a sealed graph splits the marks of ``total`` entries into
    transactions of at most ``size`` entries, at least :data:`MARK_WRITERS` of them (to
    write on both of the server's cores) when there are entries enough: each one's
    ``(start, stop)`` in the entries; none for no entry.

    >>> mark_parts(5, 4), mark_parts(9, 3)
    ([(0, 2), (2, 5)], [(0, 3), (3, 6), (6, 9)])
    >>> mark_parts(1, 4), mark_parts(0, 4)
    ([(0, 1)], [])
    """
    if total < 0 or size < 1:
        raise ValueError(f"mark_parts: total {total} must be >= 0 and size {size} >= 1")
    count = max(min(MARK_WRITERS, total), -(-total // size))
    if not count:
        return []
    bounds = [round(total * k / count) for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(count) if bounds[k] < bounds[k + 1]]


def _write_kept(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    kept: _Kept,
    tally: _Tally,
    progress: Progress | None,
    size: int,
    commits: Commits,
) -> bool:
    """Write this run's marks on every entry of ``kept`` (``writeback_unchanged``: its
    answer and traces as read, its traces digest moved to this run), at most ``size``
    entries per transaction and :data:`MARK_WRITERS` transactions at once. Each
    transaction writes its entries first and locks the dataset marker last, checking
    that the run still owns it (so that the lock, held to the commit, does not make the
    others wait). False (that transaction rolled back, others maybe written) when an
    entry moved since the read."""
    parts = mark_parts(len(kept.entries), size)
    base = tally.written

    def write(lo: int, hi: int) -> Row:
        part = kept.entries[lo:hi]
        olds = [old for _, old in part]
        answers = [old.answer or () for old in olds]
        args: Row = {
            "ids": [entry_id for entry_id, _ in part],
            "expect": [old.digest for old in olds],
            "was_run": [old.run for old in olds],
            "count": [old.traces for old in olds],
            "digest": kept.digests[lo:hi],
            "contamination": [a[0] for a in answers],
            "verdict": [a[1] for a in answers],
            "reason_codes": [a[2] for a in answers],
        }

        def work(tx: neo4j.ManagedTransaction) -> None:
            done = _written(
                tx.run(cypher("writeback_unchanged"), run=run, **params, **args), "written"
            )
            # written once the transactions before this one are (a lower bound while
            # several run at once: each counts itself only)
            _claim(tx, run, base + hi - lo, tally.total)
            if done.missed:
                raise _Moved

        _tx(backend, work, commits)
        return args

    moved = False
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=MARK_WRITERS, thread_name_prefix="marks") as writers:
        for future in [writers.submit(write, lo, hi) for lo, hi in parts]:
            try:
                args = future.result()
            except _Moved:
                moved = True
                continue
            tally.written += len(args["ids"])
            tally.entries = tally.written
            tally.traces += sum(args["count"])
            tally.unchanged += len(args["ids"])
            tally.count(args["verdict"])
            if progress:
                progress("write-back", tally.written, tally.total)
    tally.write_seconds += time.perf_counter() - t
    return not moved


def _moves(was_run: str, run: str) -> list[dict[str, str]]:
    """Per byte of a traces digest (:func:`_bound`), each of its 256 values (two hex
    digits) under run ``was_run`` mapped to the value under ``run``: the parameter
    ``$moves`` of ``writeback_sealed.cypher``.

    >>> content = bytes(range(16))
    >>> old, new = _bound(content, "a"), _bound(content, "b")
    >>> "".join(m[old[2 * k : 2 * k + 2]] for k, m in enumerate(_moves("a", "b"))) == new
    True
    """
    delta = (_run_mask(was_run) ^ _run_mask(run)).to_bytes(16, "big")
    return [{f"{b:02x}": f"{b ^ d:02x}" for b in range(256)} for d in delta]


#: the most entries a rerun after which nothing was committed marks in one transaction
#: (a server's transaction memory is bounded): more are split by their digests
SEALED_PART = 100_000


def sealed_parts(total: int, size: int | None = None) -> list[tuple[str | None, str | None]]:
    """How a rerun after which nothing was committed splits the marks of ``total``
    entries into transactions of about ``size`` entries: each one's range of the first
    two hex digits of the entries' traces digests (uniform: digests of BLAKE2b), from
    ``lo`` (None: from the first) to ``hi`` excluded (None: to the last). One part,
    ``(None, None)``, for every entry (whatever its digest), when they are ``size``
    (default :data:`SEALED_PART`) or fewer.

    >>> sealed_parts(10, 100)
    [(None, None)]
    >>> sealed_parts(300, 100)
    [(None, '55'), ('55', 'aa'), ('aa', None)]
    """
    size = SEALED_PART if size is None else size
    if total < 0 or size < 1:
        raise ValueError(f"sealed_parts: total {total} must be >= 0 and size {size} >= 1")
    count = min(256, -(-total // size)) if total > size else 1
    bounds = [f"{256 * k // count:02x}" for k in range(1, count)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def _write_sealed(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    claim: _Claim,
    tally: _Tally,
    progress: Progress | None,
    commits: Commits,
) -> bool:
    """Write this run's marks on every entry without reading the graph
    (``writeback_sealed.cypher``; one transaction, or one per :func:`sealed_parts` when
    there are more than :data:`SEALED_PART` entries, one after the other), when nothing
    was committed since the last completed run finished (:func:`_chained`). Before it
    commits, each transaction checks that nobody committed since this run's last commit
    (a read's bookmark, on a session of its own): a change made meanwhile (an entry's
    answer or traces edited by hand, a loan repaid) rolls it back, and the run reads the
    graph as any run does. False (that transaction rolled back) then, and when an entry
    does not hold that run's results or the entries are not as many as it wrote."""
    tally.total = claim.results_entries
    if progress:
        progress("write-back", 0, tally.total)
    moves = _moves(claim.results_run, run)
    parts = sealed_parts(tally.total)
    verdicts: dict[str, int] = {}
    t = time.perf_counter()

    def work(tx: neo4j.ManagedTransaction, lo: str | None, hi: str | None) -> dict[str, int]:
        rows = list(
            tx.run(
                cypher("writeback_sealed"),
                run=run,
                was_run=claim.results_run,
                moves=moves,
                lo=lo,
                hi=hi,
                **params,
            )
        )
        done = {r["verdict"]: int(r["written"]) for r in rows}
        written = tally.written + sum(done.values())
        last = hi is None
        if any(r["missed"] for r in rows) or (last and written != tally.total):
            raise _Moved
        _claim(tx, run, written, tally.total)
        before = commits.unbroken()
        if before is None or _last_commit(backend) != before:
            raise _Moved
        return done

    try:
        for lo, hi in parts:
            done: dict[str, int] = _tx(backend, functools.partial(work, lo=lo, hi=hi), commits)
            tally.written += sum(done.values())
            for verdict, n in done.items():
                verdicts[verdict] = verdicts.get(verdict, 0) + n
            if progress:
                progress("write-back", tally.written, tally.total)
    except _Moved:
        return False
    finally:
        tally.write_seconds += time.perf_counter() - t
    tally.entries = tally.unchanged = tally.written
    tally.verdicts = verdicts
    tally.traces = claim.results_traces
    return True


def _last_commit(backend: Neo4jBackend) -> Commit | None:
    """The last transaction the database committed (the bookmark of a read)."""
    with backend.driver.session(database=backend.database) as session:
        session.run("RETURN 1").consume()
        return last_commit(session.last_bookmarks().raw_values)


@dataclass(frozen=True, slots=True)
class _Batch:
    """One write transaction's entries, as columns (:func:`_send` makes the parameters of
    ``writeback_entries.cypher`` from them): per entry its id, scores and where its paths
    begin (``first``); per path its loan, responsibility, hops, its first node (``start``)
    and, from ``off[p]`` to ``off[p + 1]`` in ``node`` and ``kind``, its steps, as numbers
    into ``tables``; each entry's traces digested (``digests``, :func:`_content_digests`)."""

    entry: Row
    first: np.ndarray
    loan: list[str]
    responsibility: np.ndarray
    hops: np.ndarray
    start: np.ndarray
    off: np.ndarray
    node: np.ndarray
    kind: np.ndarray
    tables: _Tables
    digests: list[bytes]

    @property
    def entries(self) -> int:
        return len(self.first) - 1

    @property
    def traces(self) -> int:
        return int(self.first[-1])

    @property
    def verdicts(self) -> list[str]:
        verdicts: list[str] = self.entry["verdict"]
        return verdicts


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


def _hash64(text: str) -> int:
    """A 64-bit digest of ``text`` (blake2b)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class _Tables:
    """What the batches name by index, as the write-back stores it: per node its label and
    key, per step kind its step, walk, role and period, each with a 64-bit digest (grown
    chunk by chunk), and the digests of the loan ids met."""

    label: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    step: list[str] = field(default_factory=list)
    walk: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    period: list[str] = field(default_factory=list)
    word_hash: list[int] = field(default_factory=list)
    kind_hash: list[int] = field(default_factory=list)
    loans: dict[str, int] = field(default_factory=dict)

    def grow(self, found: PathColumns) -> None:
        """Add the nodes and kinds ``found`` names that are not in yet."""
        for node in found.nodes[len(self.label) :]:
            kind, ident = split_ref(node)
            self.add_word(LABELS[kind], ident)
        for rel, at in found.kinds[len(self.step) :]:
            stored, role = walks_of(rel)
            period = at.isoformat() if stored == OWNS and at is not None else ""
            self.add_kind(rel, stored, role, period)

    def add_word(self, label: str, key: str) -> None:
        self.label.append(label)
        self.key.append(key)
        self.word_hash.append(_hash64(f"{label}\0{key}"))

    def add_kind(self, step: str, walk: str, role: str, period: str) -> None:
        self.step.append(step)
        self.walk.append(walk)
        self.role.append(role)
        self.period.append(period)
        self.kind_hash.append(_hash64(f"{step}\0{walk}\0{role}\0{period}"))

    def loan_hashes(self, loans: list[str]) -> np.ndarray:
        """The digest of each loan id."""
        known = self.loans
        for loan in loans:
            if loan not in known:
                known[loan] = _hash64(loan)
        return np.fromiter((known[x] for x in loans), np.uint64, len(loans))


def _content_digests(
    first: np.ndarray,
    loan: np.ndarray,
    responsibility: np.ndarray,
    hops: np.ndarray,
    start: np.ndarray,
    off: np.ndarray,
    node: np.ndarray,
    kind: np.ndarray,
) -> list[bytes]:
    """Per entry a 128-bit digest (blake2b) of its traces as stored, in rank order: per
    trace its loan, responsibility, hops, number of steps and first node, then per step
    its node and kind (``loan``, ``start``, ``node`` and ``kind`` given as 64-bit digests
    of the stored strings), and the number of traces."""
    steps = np.diff(off).astype(np.uint64)
    per_path = np.stack(
        (
            loan.astype(np.uint64),
            np.asarray(responsibility, dtype=np.float64).view(np.uint64),
            np.asarray(hops).astype(np.uint64),
            steps,
            start.astype(np.uint64),
        ),
        axis=1,
    ).tobytes()
    per_step = np.stack((node.astype(np.uint64), kind.astype(np.uint64)), axis=1).tobytes()
    bounds, offs = first.tolist(), off.tolist()
    digests: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        h = hashlib.blake2b(per_path[a * 40 : b * 40], digest_size=16)
        h.update(per_step[offs[a] * 16 : offs[b] * 16])
        h.update((b - a).to_bytes(4, "little"))
        digests.append(h.digest())
    return digests


def _batch(entry: Row, tables: _Tables, **paths: Any) -> _Batch:
    """A :class:`_Batch` of ``entry``'s columns and ``paths``' (numbered into ``tables``),
    with each entry's traces digested."""
    words = np.asarray(tables.word_hash, dtype=np.uint64)
    kinds = np.asarray(tables.kind_hash, dtype=np.uint64)
    digests = _content_digests(
        paths["first"],
        tables.loan_hashes(paths["loan"]),
        paths["responsibility"],
        paths["hops"],
        words[paths["start"]],
        paths["off"],
        words[paths["node"]],
        kinds[paths["kind"]],
    )
    return _Batch(entry=entry, tables=tables, digests=digests, **paths)


def _sliced(found: PathColumns, tables: _Tables, lo: int, hi: int) -> _Batch:
    """Entries ``lo`` to ``hi`` of ``found`` as one batch (its nodes and kinds numbered as
    in ``tables``)."""
    hi = min(hi, len(found.entry_ids))
    a, b = int(found.first[lo]), int(found.first[hi])
    start, end = int(found.off[a]), int(found.off[b])
    entry: Row = {
        "ids": found.entry_ids[lo:hi],
        "contamination": found.contamination[lo:hi],
        "verdict": found.verdict[lo:hi],
        "reason_codes": [list(c) for c in found.reason_codes[lo:hi]],
    }
    return _batch(
        entry,
        tables,
        first=found.first[lo : hi + 1] - a,
        loan=found.loan[a:b],
        responsibility=np.asarray(found.responsibility[a:b], dtype=np.float64),
        hops=np.asarray(found.hops[a:b], dtype=np.int64),
        start=np.asarray(found.start[a:b], dtype=np.int64),
        off=found.off[a : b + 1] - start,
        node=np.asarray(found.node[start:end], dtype=np.int64),
        kind=np.asarray(found.kind[start:end], dtype=np.int64),
    )


def _from_rows(rows: list[Row]) -> _Batch:
    """Entry rows (:func:`_entry_row`) as one batch (:func:`_sliced`'s)."""
    tables = _Tables()
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

    def word(w: tuple[str, str]) -> int:
        if w not in words:
            words[w] = len(words)
            tables.add_word(*w)
        return words[w]

    def kind_of(k: tuple[str, str, str, str]) -> int:
        if k not in kinds:
            kinds[k] = len(kinds)
            tables.add_kind(*k)
        return kinds[k]

    for row in rows:
        for tr in row["traces"]:
            nodes = [word(w) for w in zip(tr["labels"], tr["keys"], strict=True)]
            start.append(nodes[0])
            node.extend(nodes[1:])
            steps = zip(tr["steps"], tr["walks"], tr["roles"], tr["periods"], strict=True)
            kind.extend(kind_of(k) for k in steps)
            off.append(len(node))
            loan.append(tr["loan"])
            responsibility.append(tr["responsibility"])
            hops.append(tr["hops"])
        first.append(len(loan))
    entry: Row = {
        "ids": [row["id"] for row in rows],
        "contamination": [row["contamination"] for row in rows],
        "verdict": [row["verdict"] for row in rows],
        "reason_codes": [row["reason_codes"] for row in rows],
    }
    return _batch(
        entry,
        tables,
        first=np.asarray(first, dtype=np.int64),
        loan=loan,
        responsibility=np.asarray(responsibility, dtype=np.float64),
        hops=np.asarray(hops, dtype=np.int64),
        start=np.asarray(start, dtype=np.int64),
        off=np.asarray(off, dtype=np.int64),
        node=np.asarray(node, dtype=np.int64),
        kind=np.asarray(kind, dtype=np.int64),
    )


_KIND_FIELDS = ("step", "walk", "role", "period")


@functools.lru_cache(maxsize=16)
def _run_mask(run: str) -> int:
    """The 128-bit mask that binds a digest to run ``run``."""
    mask = hashlib.blake2b(run.encode(), digest_size=16, person=b"spillover-run").digest()
    return int.from_bytes(mask, "big")


def _bound(content: bytes, run: str) -> str:
    """An entry's ``traces_digest``: the digest of its traces (:func:`_content_digests`)
    under run ``run``, the two XORed (so a later run of a spillover that does not keep the
    digest, which sets ``audit_run`` and leaves the digest, invalidates it; and a run that
    finds the graph unchanged moves a digest to itself without the traces: :func:`_unbound`)."""
    return (int.from_bytes(content, "big") ^ _run_mask(run)).to_bytes(16, "big").hex()


def _unbound(digest: str, run: str) -> bytes | None:
    """The traces' digest that ``digest`` binds to run ``run`` (:func:`_bound`), or None
    when ``digest`` is not one."""
    if len(digest) != 32:
        return None
    try:
        value = int(digest, 16)
    except ValueError:
        return None
    return (value ^ _run_mask(run)).to_bytes(16, "big")


@dataclass(frozen=True, slots=True)
class _Stored:
    """One entry as the run read the graph (``writeback_traces.cypher``): the run that
    wrote its results (``""``: none), its traces_digest, how many TRACED_TO it has, and
    its answer as stored, ``(contamination, verdict, reason_codes, policy_name,
    policy_version, policy_digest)``, or None when it holds a ``stale_*`` property."""

    run: str
    digest: str
    traces: int
    answer: tuple[Any, ...] | None


#: per entry id, the entry as the run read the graph
Seen = dict[str, _Stored]


def _send(batch: _Batch, run: str, params: Row, seen: Seen | None) -> _Sent:
    """The parameters of ``writeback_entries.cypher`` for ``batch``, and of
    ``writeback_unchanged.cypher`` for those of its entries whose traces digest the same
    as the ones the graph held when read, under the run that wrote them, in the same
    number, and whose answer (under the run's policy, ``params``) is the one stored
    (``seen``; None: every entry with its traces, to ``writeback_entries``). An entry whose
    traces are the same and its answer not goes to ``writeback_entries`` without its
    traces."""
    counts = np.diff(batch.first)
    expect: list[str | None] = [None] * batch.entries
    was_run: list[str | None] = [None] * batch.entries
    skip = np.zeros(batch.entries, dtype=bool)
    same = np.zeros(batch.entries, dtype=bool)
    digest = [_bound(c, run) for c in batch.digests]
    if seen:
        policy = (params["policy_name"], params["policy_version"], params["policy_digest"])
        answers = zip(
            batch.entry["contamination"],
            batch.entry["verdict"],
            batch.entry["reason_codes"],
            strict=True,
        )
        for i, (entry_id, content, count, answer) in enumerate(
            zip(batch.entry["ids"], batch.digests, counts.tolist(), answers, strict=True)
        ):
            old = seen.get(entry_id)
            if (
                old is not None
                and old.run
                and old.traces == count
                and old.digest == _bound(content, old.run)
            ):
                expect[i], was_run[i], skip[i] = old.digest, old.run, True
                same[i] = old.answer == (*answer, *policy)
    # per entry, what either statement takes of it
    per_entry: Row = {
        **batch.entry,
        "expect": expect,
        "was_run": was_run,
        "count": counts.tolist(),
        "digest": digest,
    }
    pick = np.flatnonzero(same).tolist()
    rest = np.flatnonzero(~same)
    rest_list = rest.tolist()
    keep = np.repeat(~skip, counts)
    p = np.nonzero(keep)[0]
    lens = np.diff(batch.off)[p]
    off = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    at = np.repeat(batch.off[p] - off[:-1], lens) + np.arange(int(off[-1]), dtype=np.int64)
    words, node = np.unique(np.concatenate((batch.start[p], batch.node[at])), return_inverse=True)
    kinds, kind = np.unique(batch.kind[at], return_inverse=True)
    tables = batch.tables
    sent = np.where(skip, 0, counts)[rest]
    full: Row = {
        **_rows_of(per_entry, rest_list),
        "first": np.concatenate(([0], np.cumsum(sent))).tolist(),
        "loan": [batch.loan[j] for j in p.tolist()],
        "responsibility": batch.responsibility[p].tolist(),
        "hops": batch.hops[p].tolist(),
        "start": node[: len(p)].tolist(),
        "off": off.tolist(),
        "node": node[len(p) :].tolist(),
        "kind": kind.tolist(),
        "word_label": [tables.label[w] for w in words.tolist()],
        "word_key": [tables.key[w] for w in words.tolist()],
        **{
            f"kind_{name}": [getattr(tables, name)[k] for k in kinds.tolist()]
            for name in _KIND_FIELDS
        },
    }
    return _Sent(
        full if rest_list else None,
        _rows_of(per_entry, pick) if pick else None,
        int(skip.sum()),
    )


def _rows_of(columns: Row, rows: list[int]) -> Row:
    """The values of ``rows`` of each of ``columns`` (lists, one value per entry)."""
    return {name: [column[i] for i in rows] for name, column in columns.items()}


@dataclass(frozen=True, slots=True)
class _Sent:
    """What :func:`_send` makes of a batch: the parameters of ``writeback_entries`` (None:
    no entry goes there) and of ``writeback_unchanged`` (None: none goes there), and how
    many of the batch's entries keep their TRACED_TO as they are (in either)."""

    full: Row | None
    unchanged: Row | None
    kept: int


@dataclass(frozen=True, slots=True)
class _Written:
    """What one write transaction did: entries written, TRACED_TO created and deleted."""

    entries: int
    created: int
    deleted: int
    #: entries whose traces were left as they were (by their digest), written too
    unchanged: int = 0
    #: entries not written: their traces or answer had moved since the read (sent again)
    missed: int = 0


def _written(result: neo4j.Result, key: str) -> _Written:
    """The count ``key`` of a write statement's one record (and ``missed``, if it
    returns it), and its relationship counters."""
    record = result.single()
    counters = result.consume().counters
    return _Written(
        int(record[key]) if record is not None else 0,
        counters.relationships_created,
        counters.relationships_deleted,
        missed=int(record.get("missed", 0)) if record is not None else 0,
    )


def _write_batch(
    backend: Neo4jBackend,
    run: str,
    params: Row,
    batch: _Batch,
    written: int,
    total: int,
    commits: Commits,
    seen: Seen | None = None,
) -> _Written:
    """Write one batch of results (``UNWIND $rows``): the entries it wrote, the
    relationships it created and deleted. ``written``: the entries the earlier batches
    wrote. The entries whose traces did not move since ``seen`` go without them; when
    the graph moved under one of them since (the statement writes none of those and
    counts them ``missed``), the whole batch is sent again with every trace, in the
    same transaction."""
    sent = _send(batch, run, params, seen)

    def work(tx: neo4j.ManagedTransaction) -> _Written:
        _claim(tx, run, written + batch.entries, total)
        parts = [
            _written(tx.run(cypher(statement), run=run, **params, **args), "written")
            for statement, args in (
                ("writeback_unchanged", sent.unchanged),
                ("writeback_entries", sent.full),
            )
            if args is not None
        ]
        if not any(part.missed for part in parts):
            return _Written(
                sum(part.entries for part in parts),
                sum(part.created for part in parts),
                sum(part.deleted for part in parts),
                sent.kept,
            )
        every = _send(batch, run, params, None).full
        again = _written(
            tx.run(cypher("writeback_entries"), run=run, **params, **(every or {})), "written"
        )
        return _Written(
            again.entries,
            sum(part.created for part in parts) + again.created,
            sum(part.deleted for part in parts) + again.deleted,
        )

    done: _Written = _tx(backend, work, commits)
    return done


def _clear_and_finish(
    backend: Neo4jBackend,
    run: str,
    tally: _Tally,
    limit: int,
    seals: _Seals,
    commits: Commits,
    chain: Callable[[Commit | None], str | None],
) -> tuple[int, Any]:
    """Remove older results from the entries this run did not write, ``limit`` entries
    per transaction (their relationships counted in ``tally``), then make run ``run``'s
    results the current ones on the dataset marker, sealed with ``seals``
    (:class:`_Seals`), in the transaction that clears the last of them (often the only
    one). How many entries it cleared, and the marker's record (``data_version``), or
    None when not every entry it wrote carries its results (unless an ingest changed the
    data meanwhile: the results are then recorded stale, :func:`_check_finished`)."""

    def work(tx: neo4j.ManagedTransaction) -> tuple[_Written, Any]:
        _claim(tx, run, tally.written, tally.total)
        n = _written(tx.run(cypher("writeback_clear"), run=run, limit=limit), "cleared")
        if n.entries == limit:  # maybe more: commit these, clear on in a new transaction
            return n, _MORE
        finished = tx.run(
            cypher("writeback_finish"),
            run=run,
            entries=tally.written,
            traces=tally.traces,
            graph=seals.graph,
            read=seals.read,
            chain=chain(commits.unbroken()),
            finished_at=datetime.now(UTC),
        ).single()
        return n, finished

    cleared = 0
    while True:
        n, finished = _tx(backend, work, commits)
        cleared += n.entries
        tally.deleted += n.deleted
        if finished is not _MORE:
            return cleared, finished


#: a clearing transaction that left the finish to the next
_MORE = object()


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
