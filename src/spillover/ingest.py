"""Write a validated data folder into Neo4j.

The folder is validated in full first (the same rules and messages as the
embedded loader); nothing is written when anything is wrong. Rows then go in
``UNWIND $rows`` batches through managed write transactions (retried by the
driver on transient errors). Every statement MERGEs on constrained keys, so a
retried batch, or a second ingest of the same data, changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j

from .fastload import read_dataset
from .model import Dataset
from .phones import DEFAULT_REGION
from .queries import cypher, statements

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_WORKERS",
    "IngestSummary",
    "apply_schema",
    "graph_counts",
    "ingest_dataset",
    "ingest_folder",
    "table_rows",
    "wipe",
]


DEFAULT_BATCH = 5000
DEFAULT_WORKERS = 2

#: (table, statement, concurrent) in the order they must run: nodes before what links
#: them. Statements that link rows to a few very dense nodes (every loan and entry to
#: one of a few dozen platforms) run one batch at a time: concurrent batches would
#: deadlock on those nodes' locks.
STEPS = (
    ("platforms", "ingest_platforms", False),
    ("people", "ingest_people", True),
    ("phones", "ingest_phones", True),
    ("loans", "ingest_loans", False),
    ("loan_links", "ingest_loan_links", True),
    ("blacklist", "ingest_blacklist", False),
    ("copies", "ingest_copies", False),
    ("sharing", "ingest_sharing", False),
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest did: rows written per step, the graph's counts after it, the time taken."""

    rows: dict[str, int]
    counts: dict[str, int]
    seconds: float

    @property
    def elements(self) -> int:
        """Nodes plus relationships in the database after the ingest (every node has one label)."""
        return sum(self.counts.values())


def table_rows(data: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The parameter rows of every ingest statement."""
    phones = [
        {
            "phone": p.phone,
            "owner_id": p.owner_id,
            "verified": p.verified,
            "since": p.since,
            "until": p.until,
            "period": p.since.isoformat() if p.since else "",
        }
        for periods in data.phone_periods.values()
        for p in periods
    ]
    return {
        "platforms": [
            {"platform_id": p.platform_id, "name": p.name, "kind": p.kind.value}
            for p in data.platforms.values()
        ],
        "people": [
            {"person_id": p.person_id, "name": p.name, "id_number": p.id_number, "city": p.city}
            for p in data.people.values()
        ],
        "phones": phones,
        "loans": [
            {
                "loan_id": loan.loan_id,
                "platform_id": loan.platform_id,
                "borrower_id": loan.borrower_id,
                "applied_at": loan.applied_at,
                "status": loan.status.value,
                "status_at": loan.status_at,
                "amount": loan.amount,
                "applicant_phone": loan.applicant_phone,
                "phone_verified": loan.phone_verified,
            }
            for loan in data.loans.values()
        ],
        "loan_links": [
            {"loan_id": link.loan_id, "phone": link.phone, "role": link.role.value}
            for link in data.links
        ],
        "blacklist": [
            {
                "entry_id": e.entry_id,
                "platform_id": e.platform_id,
                "subject_kind": e.subject_kind.value,
                "subject": e.subject,
                "listed_at": e.listed_at,
                "stated_reason": e.stated_reason,
                "copied_from": e.copied_from,
            }
            for e in data.entries.values()
        ],
        "copies": [
            {"entry_id": e.entry_id, "copied_from": e.copied_from}
            for e in data.entries.values()
            if e.copied_from is not None
        ],
        "sharing": [
            {"from_platform": s.from_platform, "to_platform": s.to_platform, "since": s.since}
            for s in data.sharing
        ],
    }


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _write(tx: neo4j.ManagedTransaction, query: str, rows: list[dict[str, Any]]) -> None:
    # idempotent: every statement MERGEs on constrained keys, so a retry changes nothing
    tx.run(query, rows=rows).consume()


def apply_schema(driver: neo4j.Driver, database: str) -> None:
    """Constraints and indexes (``IF NOT EXISTS``), then wait until they are online."""
    for statement in statements("schema"):
        driver.execute_query(statement, database_=database)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)


def wipe(driver: neo4j.Driver, database: str, batch: int = 10_000) -> int:
    """Delete every node and relationship, in batches; return how many nodes went."""
    total = 0

    def one(tx: neo4j.ManagedTransaction) -> int:
        return int(tx.run(cypher("wipe_batch"), limit=batch).single()["deleted"])  # type: ignore[index]

    with driver.session(database=database) as session:
        while True:
            deleted = session.execute_write(one)
            total += deleted
            if deleted == 0:
                return total


def graph_counts(driver: neo4j.Driver, database: str) -> dict[str, int]:
    """Nodes per label and relationships per type."""
    records, _, _ = driver.execute_query(
        cypher("counts"), database_=database, routing_=neo4j.RoutingControl.READ
    )
    return {r["name"]: int(r["n"]) for r in records}


def ingest_dataset(
    data: Dataset,
    driver: neo4j.Driver,
    database: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write a validated dataset; return rows written per step.

    ``workers`` batches of the same table are written concurrently.
    """
    apply_schema(driver, database)
    rows = table_rows(data)
    written: dict[str, int] = {}
    local = threading.local()
    sessions: list[neo4j.Session] = []
    lock = threading.Lock()

    def write(query: str, batch: list[dict[str, Any]]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = driver.session(database=database)
            with lock:
                sessions.append(session)
        session.execute_write(_write, query, batch)
        return len(batch)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for table, statement, concurrent in STEPS:
                query = cypher(statement)
                todo = rows[table]
                done = 0
                if progress is not None:
                    progress(table, 0, len(todo))
                # batches of one table run concurrently (each its own transaction; a
                # deadlock between two of them is retried by the driver: the writes are
                # idempotent MERGEs); tables run one after the other
                batches = _batches(todo, batch_size)
                counts = (
                    pool.map(lambda b, q=query: write(q, b), batches)
                    if concurrent
                    else (write(query, b) for b in batches)
                )
                for count in counts:
                    done += count
                    if progress is not None:
                        progress(table, done, len(todo))
                written[table] = done
    finally:
        for session in sessions:
            session.close()
    return written


def ingest_folder(
    folder: str | Path,
    driver: neo4j.Driver,
    database: str,
    *,
    region: str = DEFAULT_REGION,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    wipe_first: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Validate ``folder`` in full, then (optionally wipe and) write it. Raises DataError before any write."""
    data = read_dataset(folder, region=region)
    start = time.perf_counter()
    if wipe_first:
        wipe(driver, database)
    written = ingest_dataset(
        data, driver, database, batch_size=batch_size, workers=workers, progress=progress
    )
    return IngestSummary(written, graph_counts(driver, database), time.perf_counter() - start)
