"""Make a Neo4j database equal a validated data folder.

The folder is validated in full first (the same rules and messages as the
embedded loader); nothing is written when anything is wrong. Then:

1. the database's dataset marker (one ``(:Dataset)`` node) is checked: a database
   that holds another dataset is refused unless ``replace`` (see :func:`check_dataset`);
2. what the database holds is read back in keyset pages (skipped when it is empty)
   and compared with what a fresh ingest of the folder would write, row by row
   (nodes with all their properties and the relationships their rows write);
3. the differences are written: removals first (relationships, then nodes), then
   added and changed rows, each table in ``UNWIND $rows`` batches through managed
   write transactions (retried by the driver on transient errors).

Every write is keyed on constrained keys and sets all properties of what it
writes (``SET n = $props``), every removal matches by key: a retried batch, a
rerun after a failure part-way, or a second ingest of the same folder converge
on the same graph, and the second ingest of an unchanged folder writes nothing.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import neo4j
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from neo4j.exceptions import DriverError, Neo4jError, TransientError

from ..data.fast import read_dataset
from ..data.outputs import check_outside
from ..errors import BackendUnavailable, SpilloverError, UsageProblem
from ..facts.model import Dataset, match_props
from ..facts.phones import DEFAULT_REGION
from ..text.safe import printable
from .schema import WRITE_BACK_PROPERTIES
from .statements import cypher, statements

if TYPE_CHECKING:  # pragma: no cover - types only
    from ..facts.columns import Columns

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_WORKERS",
    "INDEX_KEY_BYTES",
    "INDEX_PAIR_BYTES",
    "TABLE_ROWS",
    "IngestSummary",
    "KeysTooLong",
    "apply_schema",
    "check_key_sizes",
    "check_options",
    "columns_keys",
    "dataset_keys",
    "graph_counts",
    "ingest_dataset",
    "ingest_folder",
    "mix_and_batch",
    "node_props",
    "now",
    "phone_numbers",
    "table_rows",
    "wipe",
    "write_marker",
]


DEFAULT_BATCH = 5000
DEFAULT_WORKERS = 2
DEFAULT_WIPE_BATCH = 10_000
READ_PAGE = 10_000
#: Ingest gives up on a batch after this many seconds of driver retries (the driver's
#: default is 30 s); a server that went away is reported sooner.
INGEST_RETRY_SECONDS = 10.0
#: A batch that deadlocked for the whole retry time is tried again, up to this many times.
DEADLOCK_ATTEMPTS = 6
DEADLOCK = "Neo.TransientError.Transaction.DeadlockDetected"
#: Rows of the node tables written concurrently are sorted by key and each of the
#: ``workers`` lanes writes one contiguous run of them: no two lanes touch a node.
LOCK_ORDER: dict[str, Callable[[dict[str, Any]], Any]] = {
    "owner_periods": lambda row: (row["phone"], row["owner_id"]),
    "loan_links": lambda row: (row["phone"], row["loan_id"], row["role"]),
    "phones": lambda row: row["props"]["number"],
    "people": lambda row: row["props"]["id"],
}
#: The two nodes a row of a relationship table written concurrently links (start, end):
#: those tables are written "mixed and batched" (:func:`mix_and_batch`), so that
#: transactions running side by side never lock the same node and cannot deadlock.
ENDS: dict[str, tuple[str, str]] = {
    "owner_periods": ("owner_id", "phone"),
    "loan_links": ("loan_id", "phone"),
}
#: The name of a dataset given to :func:`ingest_dataset` without one.
DEFAULT_DATASET = "dataset"

#: (table, concurrent) in the order upserts run: nodes before what links them.
#: Tables whose rows link to a few very dense nodes (every loan and entry to one of
#: a few dozen platforms) run one batch at a time: concurrent batches would
#: deadlock on those nodes' locks.
TABLES: tuple[tuple[str, bool], ...] = (
    ("platforms", False),
    ("people", True),
    ("phones", True),
    ("owner_periods", True),
    ("records", False),
    ("loans", False),
    ("loan_links", True),
    ("blacklist", False),
    ("copies", False),
    ("sharing", False),
)
#: Tables reported only when the folder or the database holds some of their rows.
OPTIONAL_TABLES = frozenset({"records"})
#: Removals run before upserts, relationships before nodes, one batch at a time.
REMOVAL_ORDER = (
    "copies",
    "sharing",
    "loan_links",
    "owner_periods",
    "blacklist",
    "loans",
    "records",
    "phones",
    "people",
    "platforms",
)

Progress = Callable[[str, int, int], None]
Rows = list[dict[str, Any]]
#: Lanes of one round run side by side (a thread each, its batches in order); rounds
#: run one after the other.
Rounds = list[list[Rows]]
Key = Hashable
#: per table: key -> (the value compared with the database, the parameter row of the upsert)
Wanted = dict[str, dict[Any, tuple[Any, Any]]]
#: per table: key -> the value read back from the database
Held = dict[str, dict[Key, Any]]


@dataclass(frozen=True, slots=True)
class TableChange:
    """Rows of one table that an ingest adds, changes (any property or relationship) and removes."""

    added: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.changed + self.removed


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest did (or, for a plan, would do)."""

    dataset: str
    changes: dict[str, TableChange]
    #: nodes per label and relationships per type after the ingest (a plan: nodes per label now)
    counts: dict[str, int]
    seconds: float
    applied: bool = True
    #: the dataset the database held before (None: it held no marker)
    previous: str | None = None
    #: nodes and relationships deleted by --wipe (or that a plan with wipe would delete)
    wiped: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    #: the dataset marker's data version after the ingest (raised by one when it changed
    #: anything; see :func:`data_version_of`)
    data_version: int = 0
    #: True when the database held current write-back results that this ingest made stale
    #: (the saved queries refuse them until ``spillover audit --write-back`` runs again)
    stale_results: bool = False

    @property
    def elements(self) -> int:
        """Nodes plus relationships in the database after the ingest (every node has one label)."""
        return sum(self.counts.values())

    @property
    def unchanged(self) -> bool:
        """True when the ingest added, changed and removed nothing."""
        return all(c.total == 0 for c in self.changes.values())


class DatasetMismatch(SpilloverError):
    """The database holds another dataset (or unmarked data) and ``replace`` was not given."""


# ---------------------------------------------------------------------------
# Ids Neo4j's indexes hold

#: The longest key, in bytes of UTF-8, that a range index of Neo4j 5 holds: every node
#: key (``id``, ``number``) is in one, the index of its uniqueness constraint
#: (``cypher/schema.cypher``). A longer one fails its write part-way through an ingest.
INDEX_KEY_BYTES = 8164
#: The longest pair the two-key index ``entry_subject`` holds: an entry's
#: ``subject_kind`` and ``subject`` together (so a person or record id that an entry
#: lists may be 8155 bytes long, a phone 8156).
INDEX_PAIR_BYTES = 8161
#: Texts of at most this many characters are shorter than any limit above, whatever
#: their characters (4 bytes each at most, with the longest ``subject_kind``)
_SURELY_SHORT = (INDEX_PAIR_BYTES - len("person")) // 4
#: Ids listed in the message (the count says how many there are in all).
_KEYS_SHOWN = 10

#: (table, column) of the folder -> its values (Arrow strings or any iterable of text)
Keys = Mapping[tuple[str, str], Any]


class KeysTooLong(SpilloverError):
    """The folder holds ids longer than Neo4j's indexes take; nothing was written."""


#: the node keys Neo4j indexes, as (table, column) of the folder, with the attribute that
#: holds them in a :class:`~spillover.facts.model.Dataset` and in the loader's
#: :class:`~spillover.facts.columns.Columns` (phone numbers are E.164: short)
_INDEXED: tuple[tuple[str, str, str, str], ...] = (
    ("people", "person_id", "people", "person_ids"),
    ("platforms", "platform_id", "platforms", "platform_ids"),
    ("loans", "loan_id", "loans", "loan_ids"),
    ("blacklist", "entry_id", "entries", "entry_ids"),
    ("records", "record_id", "records", "records"),
)


def dataset_keys(data: Dataset) -> tuple[Keys, Any, Any]:
    """The node keys of ``data`` Neo4j indexes, and its entries' subject kinds and
    subjects (the arguments of :func:`check_key_sizes`)."""
    keys = {(table, column): getattr(data, held) for table, column, held, _ in _INDEXED}
    entries = data.entries.values()
    return keys, [e.subject_kind.value for e in entries], [e.subject for e in entries]


def columns_keys(data: Columns) -> tuple[Keys, Any, Any]:
    """:func:`dataset_keys` of the loader's columns (the bulk load reads no Dataset)."""
    keys = {(table, column): getattr(data, held) for table, column, _, held in _INDEXED}
    return keys, data.entry_kind, data.entry_subject


def _byte_lengths(values: Any) -> np.ndarray:
    """Each text's length in bytes of UTF-8 (one too short to reach any index limit may
    give its characters instead: it never matters)."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return np.asarray(pc.binary_length(values).to_numpy(zero_copy_only=False), np.int64)
    return np.fromiter(
        (len(v) if len(v) <= _SURELY_SHORT else len(v.encode("utf-8")) for v in values),
        np.int64,
    )


def _text_at(values: Any, i: Any) -> str:
    value = values[int(i)]
    return str(value.as_py() if isinstance(value, pa.Scalar) else value)


def _shown(text: str) -> str:
    return "'" + printable(text[:40]) + ("…'" if len(text) > 40 else "'")


def check_key_sizes(keys: Keys, kinds: Any, subjects: Any) -> None:
    """Refuse (:class:`KeysTooLong`, before anything is written) a folder with an id
    Neo4j's indexes cannot hold: a node key longer than :data:`INDEX_KEY_BYTES`, or an
    entry whose ``subject_kind`` and ``subject`` together pass :data:`INDEX_PAIR_BYTES`.
    ``keys``: per (table, column) the ids; ``kinds``, ``subjects``: the entries' (see
    :func:`dataset_keys`, :func:`columns_keys`)."""
    found: list[str] = []
    total = 0
    for (table, column), ids in keys.items():
        values = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else list(ids)
        lengths = _byte_lengths(values)
        for i in np.flatnonzero(lengths > INDEX_KEY_BYTES):
            total += 1
            text = _text_at(values, i)
            found.append(f"{table}: {column} {_shown(text)} ({lengths[i]} bytes)")
    if not isinstance(subjects, pa.Array | pa.ChunkedArray):
        kinds, subjects = list(kinds), list(subjects)
    size = _byte_lengths(subjects)
    pair = size + _byte_lengths(kinds)
    for i in np.flatnonzero(pair > INDEX_PAIR_BYTES):
        total += 1
        text = _text_at(subjects, i)
        found.append(
            f"blacklist: subject {_shown(text)} ({size[i]} bytes, "
            f"{pair[i]} with its subject_kind {_text_at(kinds, i)})"
        )
    if not total:
        return
    more = [f"... and {total - _KEYS_SHOWN} more"] if total > _KEYS_SHOWN else []
    raise KeysTooLong(
        "\n  ".join(
            [
                f"Neo4j cannot hold this folder, and nothing was written: its indexes take "
                f"ids of at most {INDEX_KEY_BYTES} bytes in UTF-8 (an entry's subject and "
                f"subject_kind together: {INDEX_PAIR_BYTES}), and {total} "
                f"{'id here is' if total == 1 else 'ids here are'} longer (the embedded "
                "backend, --data, reads the folder as it is):",
                *found[:_KEYS_SHOWN],
                *more,
            ]
        )
    )


# ---------------------------------------------------------------------------
# What a fresh ingest of the folder writes


def node_props(**values: Any) -> dict[str, Any]:
    """Node or relationship properties as Neo4j stores them: no null values."""
    return {k: v for k, v in values.items() if v is not None}


#: One row of a table: (key, the value compared with the database, the parameter row of the upsert)
TableRow = tuple[Any, Any, dict[str, Any]]


def _platform_rows(data: Dataset) -> Iterator[TableRow]:
    for p in data.platforms.values():
        props = node_props(id=p.platform_id, name=p.name, kind=p.kind.value)
        yield p.platform_id, props, {"props": props}


def _people_rows(data: Dataset) -> Iterator[TableRow]:
    for p in data.people.values():
        props = node_props(id=p.person_id, name=p.name, id_number=p.id_number, city=p.city)
        yield p.person_id, props, {"props": props}


def phone_numbers(data: Dataset) -> set[str]:
    """Every number the folder names: owner periods, applicant phones, links, phone subjects."""
    numbers: set[str] = set(data.phone_periods)
    numbers.update(
        loan.applicant_phone for loan in data.loans.values() if loan.applicant_phone is not None
    )
    numbers.update(link.phone for link in data.links)
    numbers.update(e.subject for e in data.entries.values() if e.subject_kind.value == "phone")
    return numbers


def _phone_rows(data: Dataset) -> Iterator[TableRow]:
    for n in phone_numbers(data):
        props = {"number": n}
        yield n, props, {"props": props}


def _period_rows(data: Dataset) -> Iterator[TableRow]:
    for number, owned in data.phone_periods.items():
        for p in owned:
            if p.owner_id is None:
                continue
            props = node_props(
                period=p.since.isoformat() if p.since else "",
                since=p.since,
                until=p.until,
                verified=p.verified,
            )
            yield (
                (number, p.owner_id, props["period"]),
                props,
                {"phone": number, "owner_id": p.owner_id, "props": props},
            )


def _loan_rows(data: Dataset) -> Iterator[TableRow]:
    for loan in data.loans.values():
        props = node_props(
            id=loan.loan_id,
            platform_id=loan.platform_id,
            borrower_id=loan.borrower_id,
            applied_at=loan.applied_at,
            status=loan.status.value,
            status_at=loan.status_at,
            amount=loan.amount,
            applicant_phone=loan.applicant_phone,
            phone_verified=loan.phone_verified,
            borrower_record=loan.borrower_record,
            matched_by=loan.matched_by,
        )
        applied = node_props(verified=loan.phone_verified)
        compare = (
            props,
            (loan.borrower_id,),
            (loan.platform_id,),
            ((loan.applicant_phone, applied.get("verified")),) if loan.applicant_phone else (),
        )
        yield loan.loan_id, compare, {"props": props, "applied": applied}


def _link_rows(data: Dataset) -> Iterator[TableRow]:
    for link in data.links:
        row = {"loan_id": link.loan_id, "phone": link.phone, "role": link.role.value}
        yield (link.loan_id, link.phone, link.role.value), True, row


def _entry_rows(data: Dataset) -> Iterator[TableRow]:
    """Entries; the compare value's third part is what the entry LISTS: (kind, key) pairs."""
    for e in data.entries.values():
        props = node_props(
            id=e.entry_id,
            platform_id=e.platform_id,
            subject_kind=e.subject_kind.value,
            subject=e.subject,
            listed_at=e.listed_at,
            stated_reason=e.stated_reason,
            copied_from=e.copied_from,
        )
        kind = e.subject_kind.value
        lists = (
            ()
            if (kind == "person" and e.subject not in data.people)
            or (kind == "record" and e.subject not in data.records)
            else ((kind, e.subject),)
        )
        yield e.entry_id, (props, (e.platform_id,), lists), {"props": props}


def _copy_rows(data: Dataset) -> Iterator[TableRow]:
    for e in data.entries.values():
        if e.copied_from is not None and e.copied_from in data.entries:
            row = {"entry_id": e.entry_id, "copied_from": e.copied_from}
            yield (e.entry_id, e.copied_from), True, row


def _record_rows(data: Dataset) -> Iterator[TableRow]:
    """Platform records; the compare value's third part is the person it was matched to."""
    for r in data.records.values():
        props = node_props(
            id=r.record_id,
            platform_id=r.platform_id,
            name=r.name,
            id_number=r.id_number,
            phone=r.phone,
            birth_date=r.birth_date,
            city=r.city,
            person_id=r.person_id,
        )
        match = data.matches.get(r.record_id)
        matched = match_props(match) if match is not None else None
        yield (
            r.record_id,
            (props, (r.platform_id,), ((match.person_id, matched),) if match else ()),
            {"props": props, "person_id": match.person_id if match else None, "match": matched},
        )


def _sharing_rows(data: Dataset) -> Iterator[TableRow]:
    for s in data.sharing:
        props = node_props(since=s.since)
        row = {"from_platform": s.from_platform, "to_platform": s.to_platform, "props": props}
        yield (s.from_platform, s.to_platform), props, row


#: How each table's rows are built from a dataset (the MERGE ingest and ``--bulk`` alike).
TABLE_ROWS: dict[str, Callable[[Dataset], Iterator[TableRow]]] = {
    "platforms": _platform_rows,
    "people": _people_rows,
    "phones": _phone_rows,
    "owner_periods": _period_rows,
    "records": _record_rows,
    "loans": _loan_rows,
    "loan_links": _link_rows,
    "blacklist": _entry_rows,
    "copies": _copy_rows,
    "sharing": _sharing_rows,
}


def table_rows(data: Dataset, table: str) -> Iterator[TableRow]:
    """The rows a fresh ingest of ``data`` writes into ``table``: (key, compared value, upsert row)."""
    return TABLE_ROWS[table](data)


def wanted_rows(data: Dataset) -> Wanted:
    """Per table, what a fresh ingest of ``data`` writes, keyed like the database read-back."""
    return {
        table: {key: (compare, row) for key, compare, row in table_rows(data, table)}
        for table in TABLE_ROWS
    }


# ---------------------------------------------------------------------------
# What the database holds


def _native(value: Any) -> Any:
    if isinstance(value, neo4j.time.Date):
        return value.to_native()
    if isinstance(value, neo4j.time.DateTime | neo4j.time.Time):
        return value.to_native()
    return value


def _plain(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _native(v) for k, v in props.items()}


def _pages(
    driver: neo4j.Driver, database: str, name: str, page: int = READ_PAGE
) -> Iterator[list[neo4j.Record]]:
    after = ""
    while True:
        records, _, _ = driver.execute_query(
            cypher(name),
            after=after,
            limit=page,
            database_=database,
            routing_=neo4j.RoutingControl.READ,
        )
        if records:
            yield records
        if len(records) < page:
            return
        after = records[-1]["key"]


def held_rows(
    driver: neo4j.Driver,
    database: str,
    counts: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> Held:
    """Per table, what the database holds, in the same shape as :func:`wanted_rows`' values."""
    counts = counts or {}
    held: Held = {table: {} for table, _ in TABLES}

    def pages(name: str, label: str) -> Iterator[neo4j.Record]:
        total, done = counts.get(label, 0), 0
        stage = f"read {label}"
        if progress is not None:
            progress(stage, 0, total)
        for records in _pages(driver, database, name):
            yield from records
            done += len(records)
            if progress is not None:
                progress(stage, done, max(total, done))

    for r in pages("sync_platforms", "Platform"):
        held["platforms"][r["key"]] = _plain(r["props"])
    for r in pages("sync_people", "Person"):
        held["people"][r["key"]] = _plain(r["props"])
    for r in pages("sync_phones", "Phone"):
        number = r["key"]
        held["phones"][number] = _plain(r["props"])
        for owner, props in r["owners"]:
            plain = _plain(props)
            key = (number, owner, plain.get("period"))
            # a duplicate key (not written by an ingest) never compares equal: rewritten
            held["owner_periods"][key] = None if key in held["owner_periods"] else plain
    for r in pages("sync_loans", "Loan"):
        loan_id = r["key"]
        held["loans"][loan_id] = (
            _plain(r["props"]),
            tuple(sorted(r["borrowers"])),
            tuple(sorted(r["platforms"])),
            tuple(sorted((n, _plain(a).get("verified")) for n, a in r["applied"])),
        )
        for number, role in r["links"]:
            held["loan_links"][(loan_id, number, role)] = True
    for r in pages("sync_records", "Record"):
        held["records"][r["key"]] = (
            _plain(r["props"]),
            tuple(sorted(r["platforms"])),
            tuple(sorted(((p, _plain(m)) for p, m in r["matches"]), key=lambda pm: pm[0])),
        )
    for r in pages("sync_entries", "Entry"):
        entry_id = r["key"]
        props = {k: v for k, v in r["props"].items() if k not in WRITE_BACK_PROPERTIES}
        held["blacklist"][entry_id] = (
            _plain(props),
            tuple(sorted(r["platforms"])),
            tuple(sorted((kind, ident) for kind, ident in r["lists"])),
        )
        for source in r["copies"]:
            held["copies"][(entry_id, source)] = True
    records, _, _ = driver.execute_query(
        cypher("sync_sharing"), database_=database, routing_=neo4j.RoutingControl.READ
    )
    for r in records:
        held["sharing"][(r["from_platform"], r["to_platform"])] = _plain(r["props"])
    return held


# ---------------------------------------------------------------------------
# The difference


@dataclass(frozen=True)
class Diff:
    """Rows to upsert (added or changed) and keys to remove, per table."""

    upserts: dict[str, list[dict[str, Any]]]
    removals: dict[str, list[dict[str, Any]]]
    changes: dict[str, TableChange]


def _removal_row(table: str, key: Any) -> dict[str, Any]:
    if table == "owner_periods":
        return {"phone": key[0], "owner_id": key[1], "period": key[2]}
    if table == "loan_links":
        return {"loan_id": key[0], "phone": key[1], "role": key[2]}
    if table == "copies":
        return {"entry_id": key[0], "copied_from": key[1]}
    if table == "sharing":
        return {"from_platform": key[0], "to_platform": key[1]}
    return {"key": key}


def diff(wanted: Wanted, held: Held) -> Diff:
    """What to write so that a database holding ``held`` holds exactly ``wanted``."""
    upserts: dict[str, list[dict[str, Any]]] = {}
    removals: dict[str, list[dict[str, Any]]] = {}
    changes: dict[str, TableChange] = {}
    for table, _ in TABLES:
        want, have = wanted[table], held.get(table, {})
        rows: list[dict[str, Any]] = []
        added = changed = 0
        for key, (compare, row) in want.items():
            if key not in have:
                added += 1
                rows.append(row)
            elif have[key] != compare:
                changed += 1
                rows.append(row)
        gone = [_removal_row(table, key) for key in have if key not in want]
        upserts[table], removals[table] = rows, gone
        if table in OPTIONAL_TABLES and not want and not have:
            continue  # a folder without platform records reports its tables as before
        changes[table] = TableChange(added, changed, len(gone))
    return Diff(upserts, removals, changes)


# ---------------------------------------------------------------------------
# The dataset marker


@dataclass(frozen=True, slots=True)
class Marker:
    """What the database says about itself: its dataset marker, and whether it holds any graph."""

    props: dict[str, Any] | None
    has_data: bool

    @property
    def name(self) -> str | None:
        return None if self.props is None else self.props.get("name")

    @property
    def unfinished(self) -> bool:
        """Whether an ingest has not finished: it is running, or it was cut short (a
        killed process, a server that went away), and the graph may mix the rows of the
        folder before and of the one it was making the database equal (``complete`` is
        false from an ingest's first write to its last: docs/graph-model.md). False for
        a database without a marker."""
        return self.props is not None and self.props.get("complete") is False


def read_marker(driver: neo4j.Driver, database: str) -> Marker:
    records, _, _ = driver.execute_query(
        cypher("dataset_get"), database_=database, routing_=neo4j.RoutingControl.READ
    )
    record = records[0]
    props = record["marker"]
    return Marker(None if props is None else _plain(props), bool(record["has_data"]))


def check_dataset(marker: Marker, name: str, *, replace: bool = False) -> None:
    """Refuse to make a database equal a folder of another dataset (unless ``replace``).

    A dataset is identified by its name (``--dataset``, by default the folder's name),
    recorded in the database by the first ingest. A corrected folder of the same dataset
    carries the same name and is accepted whatever its rows; a folder of another name is
    refused, and so is a database holding a graph with no marker (written by hand or by an
    older spillover), because the ingest would delete what the folder lacks.
    """
    if replace:
        return
    if marker.name is not None and marker.name != name:
        where = marker.props.get("folder") if marker.props else None
        raise DatasetMismatch(
            f"the database holds dataset {marker.name!r}"
            + (f" (from {where})" if where else "")
            + f", not {name!r}: pass --dataset {marker.name} if this folder is a corrected "
            "copy of it, or --replace to replace it with this folder"
        )
    if marker.name is None and marker.has_data:
        raise DatasetMismatch(
            "the database holds a graph with no dataset marker (written by hand or by an "
            "older spillover): pass --replace to make it equal this folder"
        )


def write_marker(driver: neo4j.Driver, database: str, props: dict[str, Any]) -> None:
    """Set the marker's properties ``props`` (a None value removes that property); the
    properties not named (the write-back's ``results_*`` and ``writeback_*``) stay."""
    driver.execute_query(
        cypher("dataset_set"), props={"key": "spillover", **props}, database_=database
    )


# ---------------------------------------------------------------------------
# Writing


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _write(tx: neo4j.ManagedTransaction, query: str, rows: list[dict[str, Any]]) -> None:
    # idempotent: upserts MERGE on constrained keys and SET every property, removals
    # match by key; so a retry changes nothing
    tx.run(query, rows=rows).consume()


def apply_schema(driver: neo4j.Driver, database: str) -> None:
    """Constraints and indexes (``IF NOT EXISTS``), then wait until they are online."""
    for statement in statements("schema"):
        driver.execute_query(statement, database_=database)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)


def element_counts(driver: neo4j.Driver, database: str) -> tuple[int, int]:
    """Nodes and relationships in the database (from the count store)."""
    records, _, _ = driver.execute_query(
        cypher("element_counts"), database_=database, routing_=neo4j.RoutingControl.READ
    )
    return int(records[0]["nodes"]), int(records[0]["relationships"])


def wipe(
    driver: neo4j.Driver,
    database: str,
    batch: int = DEFAULT_WIPE_BATCH,
    progress: Progress | None = None,
    poll: float = 0.5,
) -> int:
    """Delete every node and relationship; return how many of them went.

    Relationships first, then nodes, each with ``CALL { ... } IN TRANSACTIONS OF
    batch ROWS`` in an auto-commit transaction: every transaction is small (no
    dense node is ever deleted with its relationships in one go), so this works
    within a small server heap. ``progress("wipe", done, total)`` is called while
    it runs (from the count store, polled every ``poll`` seconds).
    """
    nodes, rels = element_counts(driver, database)
    total = nodes + rels
    if total == 0:
        if progress is not None:
            progress("wipe", 0, 0)
        return 0
    for name in ("wipe_relationships", "wipe_nodes"):
        _run_watched(driver, database, cypher(name), {"batch": batch}, total, progress, poll)
    return total


def _run_watched(
    driver: neo4j.Driver,
    database: str,
    query: str,
    params: dict[str, Any],
    total: int,
    progress: Progress | None,
    poll: float,
) -> None:
    """Run an auto-commit query (``IN TRANSACTIONS``), reporting progress meanwhile."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with driver.session(database=database) as session:
                session.run(query, params).consume()
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="spillover-wipe", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll)
        if progress is not None:
            try:
                nodes, rels = element_counts(driver, database)
            except (DriverError, Neo4jError):
                continue
            progress("wipe", total - nodes - rels, total)
    if failure:
        raise failure[0]


def _lane(key: Any, lanes: int) -> int:
    # crc32, not hash(): the same lanes in every process
    return zlib.crc32(str(key).encode("utf-8")) % lanes


def mix_and_batch(rows: Rows, ends: tuple[str, str], lanes: int) -> Rounds:
    """Rows of a relationship table in rounds of lanes that share no node.

    Each row goes to the cell (lane of its start node, lane of its end node); round
    ``r`` holds the cells ``(i, (i + r) % lanes)`` for every ``i``: two cells of one
    round differ in both their start lane and their end lane, so transactions of
    different lanes never lock the same node (the "mix and batch" way of loading
    relationships in parallel). Rows keep their order within a cell.

    >>> rows = [{"loan": f"L{i}", "phone": f"P{i % 7}"} for i in range(40)]
    >>> rounds = mix_and_batch(rows, ("loan", "phone"), 2)
    >>> sum(len(lane) for lanes in rounds for lane in lanes)
    40
    >>> [set.intersection(*({r["phone"] for r in lane} for lane in lanes)) for lanes in rounds]
    [set(), set()]
    """
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    start, end = ends
    cells: dict[tuple[int, int], Rows] = {}
    for row in rows:
        cell = (_lane(row[start], lanes), _lane(row[end], lanes))
        cells.setdefault(cell, []).append(row)
    return [[cells.get((i, (i + r) % lanes), []) for i in range(lanes)] for r in range(lanes)]


def _runs(rows: Rows, lanes: int) -> Rounds:
    """One round: ``rows`` (sorted by key) cut into ``lanes`` contiguous runs."""
    size = -(-len(rows) // lanes) if rows else 0
    return [[rows[i * size : (i + 1) * size] for i in range(lanes)]] if size else []


def _write_batch(session: neo4j.Session, query: str, batch: Rows) -> None:
    for attempt in itertools.count(1):
        try:
            session.execute_write(_write, query, batch)
            return
        except TransientError as exc:
            # The server is up, but this batch kept losing lock races with a
            # concurrent one for the driver's whole retry time: try again, a while
            # longer. A server that went away raises other errors and fails fast.
            if exc.code != DEADLOCK or attempt >= DEADLOCK_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.2, 1.0) * attempt)


def _write_table(
    driver: neo4j.Driver,
    database: str,
    query: str,
    rounds: Rounds,
    *,
    batch_size: int,
    stage: str,
    progress: Progress | None,
) -> None:
    local = threading.local()
    sessions: list[neo4j.Session] = []
    lock = threading.Lock()
    written: queue.SimpleQueue[int] = queue.SimpleQueue()

    def write(batch: Rows) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = driver.session(
                database=database, max_transaction_retry_time=INGEST_RETRY_SECONDS
            )
            with lock:
                sessions.append(session)
        _write_batch(session, query, batch)
        written.put(len(batch))

    def write_lane(lane: Rows) -> None:
        for batch in _batches(lane, batch_size):
            write(batch)

    total = sum(len(lane) for lanes in rounds for lane in lanes)
    done = 0

    def report() -> None:
        nonlocal done
        while not written.empty():
            done += written.get()
            if progress is not None:
                progress(stage, done, total)

    if progress is not None:
        progress(stage, 0, total)
    width = max((len(lanes) for lanes in rounds), default=1)
    try:
        with ThreadPoolExecutor(max_workers=width) as pool:
            for lanes in rounds:
                pending = {pool.submit(write_lane, lane) for lane in lanes if lane}
                while pending:
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                    report()
                    for future in finished:
                        future.result()
        report()
    finally:
        for session in sessions:
            session.close()


def _upsert_rounds(table: str, rows: Rows, workers: int) -> Rounds:
    """How a table's upserts run: mixed and batched, in sorted runs, or in one lane."""
    if workers > 1 and table in ENDS:
        return mix_and_batch(sorted(rows, key=LOCK_ORDER[table]), ENDS[table], workers)
    if workers > 1 and table in LOCK_ORDER:
        return _runs(sorted(rows, key=LOCK_ORDER[table]), workers)
    return [[rows]]


def apply_diff(
    d: Diff,
    driver: neo4j.Driver,
    database: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> None:
    """Write the differences: removals (relationships, then nodes), then upserts in table order.

    Tables marked concurrent are written by ``workers`` threads (each batch its own
    transaction) that never touch the same node: node tables in sorted runs, the
    relationship tables mixed and batched (:func:`mix_and_batch`). The others run one
    batch at a time. A deadlock would still be retried.
    """
    for table in REMOVAL_ORDER:
        if d.removals[table]:
            _write_table(
                driver,
                database,
                cypher(f"remove_{table}"),
                [[d.removals[table]]],
                batch_size=batch_size,
                stage=f"remove {table}",
                progress=progress,
            )
    for table, concurrent in TABLES:
        if d.upserts[table]:
            _write_table(
                driver,
                database,
                cypher(f"ingest_{table}"),
                _upsert_rounds(table, d.upserts[table], workers if concurrent else 1),
                batch_size=batch_size,
                stage=table,
                progress=progress,
            )


def graph_counts(driver: neo4j.Driver, database: str) -> dict[str, int]:
    """Nodes per label and relationships per type."""
    records, _, _ = driver.execute_query(
        cypher("counts"), database_=database, routing_=neo4j.RoutingControl.READ
    )
    return {r["name"]: int(r["n"]) for r in records}


def now() -> str:
    """The current UTC time as the dataset marker stores it (ISO 8601, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _lost(exc: BaseException, driver: neo4j.Driver) -> SpilloverError:
    """One clean line for a server that went away or refused a write mid-ingest."""
    first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    if isinstance(exc, Neo4jError) and not exc.is_retryable():
        return SpilloverError(f"Neo4j refused the ingest: {first}")
    return BackendUnavailable(
        f"lost Neo4j during the ingest ({type(exc).__name__}: {first}); every batch is "
        "written whole or not at all: run the same ingest again to finish it"
    )


def ingest_dataset(
    data: Dataset,
    driver: neo4j.Driver,
    database: str,
    *,
    dataset: str = DEFAULT_DATASET,
    folder: str | None = None,
    replace: bool = False,
    wipe_first: bool = False,
    plan: bool = False,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> IngestSummary:
    """Make the database hold exactly ``data``; with ``plan``, only say what that would change.

    Raises :class:`DatasetMismatch` when the database holds another dataset and neither
    ``replace`` nor ``wipe_first`` is given, and a one-line
    :class:`~spillover.errors.BackendUnavailable` when the server goes away part-way
    (a rerun finishes the job: the ingest starts from what the database then holds).
    """
    start = time.perf_counter()
    try:
        return _ingest(
            data,
            driver,
            database,
            dataset=dataset,
            folder=folder,
            replace=replace,
            wipe_first=wipe_first,
            plan=plan,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            start=start,
        )
    except (DriverError, Neo4jError) as exc:
        raise _lost(exc, driver) from None


def _ingest(
    data: Dataset,
    driver: neo4j.Driver,
    database: str,
    *,
    dataset: str,
    folder: str | None,
    replace: bool,
    wipe_first: bool,
    plan: bool,
    batch_size: int,
    workers: int,
    progress: Progress | None,
    start: float,
) -> IngestSummary:
    check_key_sizes(*dataset_keys(data))
    if not plan:
        # first, so that even the marker query names only labels the database knows
        apply_schema(driver, database)
    marker = before = read_marker(driver, database)
    if not wipe_first:
        check_dataset(marker, dataset, replace=replace)
    wanted = wanted_rows(data)
    rows = {table: len(v) for table, v in wanted.items()}
    wiped = 0
    if wipe_first:
        if plan:
            wiped = sum(element_counts(driver, database))
        else:
            wiped = wipe(driver, database, progress=progress)
        marker = Marker(None, False)
    counts: dict[str, int] = {}
    held: Held = {}
    if marker.has_data:
        records, _, _ = driver.execute_query(
            cypher("label_counts"), database_=database, routing_=neo4j.RoutingControl.READ
        )
        counts = dict(records[0])
        held = held_rows(driver, database, counts, progress)
    d = diff(wanted, held)
    if plan:
        return IngestSummary(
            dataset,
            d.changes,
            counts,
            time.perf_counter() - start,
            applied=False,
            previous=marker.name,
            wiped=wiped,
            rows=rows,
        )
    changes_data = wiped > 0 or any(c.total for c in d.changes.values())
    old_version = data_version_of(before)
    stamp: dict[str, Any] = {
        "name": dataset,
        "folder": folder,
        "started_at": now(),
        "complete": False,
        "finished_at": None,
        "rows": None,
    }
    if marker.props is not None and marker.name == dataset:
        stamp["first_ingest_at"] = marker.props.get("first_ingest_at")
    stamp["first_ingest_at"] = stamp.get("first_ingest_at") or stamp["started_at"]
    if changes_data:
        # before the first change: the written-back results (results_data_version) are
        # stale from here on, whether this ingest finishes or not
        stamp.update(data_version=old_version + 1, data_changed_at=stamp["started_at"])
    write_marker(driver, database, stamp)
    apply_diff(d, driver, database, batch_size=batch_size, workers=workers, progress=progress)
    stamp.update(complete=True, finished_at=now(), rows=sum(rows.values()))
    write_marker(driver, database, stamp)
    results = before.props or {}
    stale = (
        changes_data
        and not wiped
        and results.get("results_run") is not None
        and results.get("writeback_run") is None
        and results.get("results_data_version") == old_version
    )
    return IngestSummary(
        dataset,
        d.changes,
        graph_counts(driver, database),
        time.perf_counter() - start,
        previous=marker.name,
        wiped=wiped,
        rows=rows,
        data_version=stamp.get("data_version", old_version),
        stale_results=stale,
    )


def data_version_of(marker: Marker) -> int:
    """The data version a dataset marker records (0: none recorded). Every ingest that
    changes the data raises it by one before its first change; the write-back records
    the version it read (``results_data_version``), and its results are current only
    while the two are equal."""
    value = (marker.props or {}).get("data_version")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def check_options(
    *,
    bulk: bool,
    plan: bool = False,
    replace: bool = False,
    wipe: bool = False,
    overwrite: bool = False,
    neo4j_admin: str | None = None,
    files: str | Path | None = None,
    files_only: bool = False,
    import_threads: int | None = None,
    folder: str | Path | None = None,
) -> None:
    """Refuse ``spillover ingest`` options that do not go together
    (:class:`~spillover.errors.UsageProblem`): the bulk load's options without ``bulk``,
    the incremental ingest's (``plan``, ``replace``, ``wipe``) with it, ``files_only``
    without ``files``; then import ``files`` that would go into the data folder
    ``folder`` (:class:`~spillover.errors.OptionError`,
    :func:`spillover.data.outputs.check_outside`)."""
    if not bulk and (overwrite or neo4j_admin or files or files_only or import_threads):
        raise UsageProblem(
            "--overwrite, --neo4j-admin, --files, --files-only and --import-threads go with --bulk"
        )
    if bulk:
        if plan or replace or wipe:
            raise UsageProblem(
                "--bulk replaces the whole database: use --overwrite, not "
                "--plan, --replace or --wipe"
            )
        if files_only and files is None:
            raise UsageProblem("--files-only needs --files DIR")
        if files is not None and folder is not None:
            check_outside(files, folder, option="--files", data_option="FOLDER")


def ingest_folder(
    folder: str | Path,
    driver: neo4j.Driver,
    database: str,
    *,
    dataset: str | None = None,
    region: str = DEFAULT_REGION,
    replace: bool = False,
    wipe_first: bool = False,
    plan: bool = False,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> IngestSummary:
    """Validate ``folder`` in full, then make the database equal it (see :func:`ingest_dataset`).

    ``dataset`` names the dataset (default: the folder's name). Raises DataError before any write.
    """
    path = Path(folder)
    data = read_dataset(path, region=region)
    return ingest_dataset(
        data,
        driver,
        database,
        dataset=dataset or dataset_name(path),
        folder=str(path.resolve()),
        replace=replace,
        wipe_first=wipe_first,
        plan=plan,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
    )


def dataset_name(folder: str | Path) -> str:
    """The default dataset name of a folder: its own name."""
    return Path(folder).resolve().name or DEFAULT_DATASET
