"""Bulk first loads into Neo4j: the files of ``neo4j-admin database import full``.

The MERGE ingest (:mod:`spillover.neo4j.ingest`) makes a database equal a folder, batch
by batch, through Bolt; at about 22,000 graph elements per second it takes hours
for a population of millions. A *first* load into an empty database can instead
go through Neo4j's offline importer, which writes the store files directly:

1. the folder is validated in full (the same rules and messages as every command;
   :func:`spillover.data.fast.read_columns`);
2. the database is checked: one that holds any node is refused unless
   ``overwrite`` (:class:`DatabaseNotEmpty`);
3. the node and relationship files are written (:func:`write_import_files`) whole
   columns at a time from the columnar loader's Arrow columns, each file following
   the ``cypher/ingest_*.cypher`` statement that writes the same elements: the same
   labels, keys, properties and property types, the same relationships;
4. ``neo4j-admin database import full`` runs on them (:func:`run_import`), through a
   command that stops the server around it (``scripts/neo4j-local admin``, or the
   Docker wrapper ``scripts/neo4j-docker-admin``; Neo4j Community cannot stop a
   single database while the server runs);
5. once the server answers again, the schema (``cypher/schema.cypher``) is applied
   and the ``(:Dataset)`` marker written, as the MERGE ingest does.

The result is the graph a MERGE ingest of the folder into an empty database writes
(tests/test_bulk.py compares the two node by node and relationship by relationship).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from neo4j.exceptions import DriverError, Neo4jError
from pyarrow import csv as pacsv

from ..data.fast import read_columns
from ..data.outputs import check_outside
from ..errors import BackendUnavailable, SpilloverError
from ..facts.columns import (
    EPOCH_ORDINAL,
    FOREVER,
    NEVER,
    Columns,
    Details,
    columns_from_dataset,
)
from ..facts.model import Dataset, Match, PlatformKind, Record, SubjectKind, match_props
from ..facts.phonecodes import string_array
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_folder
from .ingest import (
    apply_schema,
    check_key_sizes,
    columns_keys,
    dataset_name,
    element_counts,
    graph_counts,
    node_props,
    now,
    write_marker,
)
from .store import Neo4jSettings, connect

__all__ = [
    "ADMIN_ENV",
    "BulkSummary",
    "DatabaseNotEmpty",
    "ImportFailed",
    "ImportFiles",
    "bulk_ingest",
    "default_admin",
    "default_import_threads",
    "import_arguments",
    "import_progress",
    "run_import",
    "write_import_files",
]

#: The environment variable naming the command that runs ``neo4j-admin`` for ``--bulk``.
ADMIN_ENV = "SPILLOVER_NEO4J_ADMIN"
#: How long to wait for the server to answer again after the import (seconds).
RECONNECT_SECONDS = 300.0

Progress = Callable[[str, int, int], None]


class DatabaseNotEmpty(SpilloverError):
    """A bulk load into a database that holds data, without ``overwrite``."""


class ImportFailed(SpilloverError):
    """``neo4j-admin database import full`` failed (its last lines are in the message)."""


# ---------------------------------------------------------------------------
# Columns as the importer reads them

#: the importer's type of each Arrow type a property column has
_IMPORT_TYPES: dict[pa.DataType, str] = {
    pa.string(): "string",
    pa.bool_(): "boolean",
    pa.int64(): "long",
    pa.float64(): "double",
    pa.date32(): "date",
}
_NEWLINE = r"[\r\n]"


def _text(values: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A text column as one Arrow ``string`` array (the importer's ``string`` column)."""
    return string_array(values).cast(pa.string())


def _optional(values: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A text column where ``""`` means "not given": no property (null).

    >>> _optional(np.array(["a", ""], dtype=object)).to_pylist()
    ['a', None]
    """
    text = _text(values)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _days(ordinals: np.ndarray, missing: np.int64 | None = None) -> pa.Array:
    """Day ordinals as dates; ``missing`` (NEVER, FOREVER) as no property.

    >>> _days(np.array([738946, NEVER]), NEVER).to_pylist()
    [datetime.date(2024, 3, 1), None]
    """
    days = np.asarray(ordinals, dtype=np.int64)
    mask = None if missing is None else days == missing
    return pa.array((days - EPOCH_ORDINAL).astype(np.int32), pa.date32(), mask=mask)


def _where(mask: np.ndarray | pa.Array, *columns: pa.Array) -> list[pa.Array]:
    selected = pa.array(mask) if isinstance(mask, np.ndarray) else mask
    return [column.filter(selected) for column in columns]


def _present(values: pa.Array) -> np.ndarray:
    """Rows where a text column holds a value (not null, not ``""``)."""
    return np.asarray(pc.fill_null(pc.not_equal(values, ""), False).to_numpy(zero_copy_only=False))


def _member(values: pa.Array, pool: np.ndarray | pa.Array | Iterable[str]) -> np.ndarray:
    """Rows whose value is one of ``pool``'s."""
    keys = pool if isinstance(pool, np.ndarray | pa.Array) else np.asarray(list(pool), dtype=object)
    found = pc.is_in(values, value_set=_text(keys))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


# ---------------------------------------------------------------------------
# The files


@dataclass(frozen=True)
class ImportFiles:
    """The files written for ``neo4j-admin database import full``, and what they hold."""

    folder: Path
    #: (label, file name) per node file, (type, file name) per relationship file
    nodes: tuple[tuple[str, str], ...]
    relationships: tuple[tuple[str, str], ...]
    #: nodes per label and relationships per type, as the importer will create them
    counts: dict[str, int]
    #: some string holds a line break: the importer needs --multiline-fields=true
    multiline: bool = False
    seconds: float = 0.0
    #: rows of the folder's tables, as the MERGE ingest counts them (the marker's ``rows``)
    rows: int = 0

    @property
    def elements(self) -> int:
        """Nodes plus relationships in the files."""
        return sum(self.counts.values())


class _Writer:
    """Writes whole Arrow columns as the importer's CSV files (``pyarrow.csv``): every
    valid value quoted (so ``""`` is an empty string, not a missing property; the
    importer reads quoted numbers, booleans and dates by their column's type), a null
    empty and unquoted (no property)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.nodes: list[tuple[str, str]] = []
        self.relationships: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.multiline = False
        #: per label, the key of each node in import-id order
        self.keys: dict[str, pa.Array] = {}
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulk-files")
        self.pending: list[Future[bool]] = []

    def _write(self, name: str, header: list[str], columns: list[pa.Array]) -> int:
        """Write one file in the background (Arrow's CSV writer and regex checks release
        the GIL: the next file's columns are built meanwhile); return its rows."""
        table = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
        self.pending.append(self.pool.submit(self._write_now, name, header, table))
        return int(table.num_rows)

    def _write_now(self, name: str, header: list[str], table: pa.Table) -> bool:
        """Write ``table`` under ``header``; True when some string holds a line break."""
        multiline = False
        for column in table.columns:
            if pa.types.is_string(column.type) and len(column):
                multiline = multiline or bool(
                    pc.any(pc.match_substring_regex(column, _NEWLINE)).as_py()
                )
        with open(self.folder / name, "wb") as handle:
            handle.write((",".join(header) + "\n").encode("utf-8"))
            if table.num_rows:
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                pacsv.write_csv(table, handle, options)
        return multiline

    def finish(self) -> None:
        """Wait for every file (raising the first error) and stop the writer threads."""
        try:
            for done in self.pending:
                self.multiline = done.result() or self.multiline
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pending = []

    @staticmethod
    def _properties(props: dict[str, pa.Array]) -> tuple[list[str], list[pa.Array]]:
        header = []
        for name, column in props.items():
            kind = _IMPORT_TYPES.get(column.type)
            if kind is None:
                raise TypeError(f"no import type for property {name!r} of type {column.type}")
            header.append(f"{name}:{kind}")
        return header, list(props.values())

    def node_file(self, label: str, key: str, props: dict[str, pa.Array]) -> None:
        """``props``: each property's column, the key's among them. The node's import id
        is its row number (``--id-type=integer``: the importer maps integers much faster
        than strings); the key is an ordinary string property, as the MERGE ingest
        writes it."""
        header, columns = self._properties(props)
        keys = props[key]
        if keys.null_count or len(pc.unique(keys)) != len(keys):
            raise SpilloverError(f"{label} keys ({key}) must be given and unique")
        self.keys[label] = keys
        ids = pa.array(np.arange(len(keys), dtype=np.int64))
        file = f"nodes-{label}.csv"
        count = self._write(file, [f":ID({label})", *header], [ids, *columns])
        self.counts[label] = self.counts.get(label, 0) + count
        self.nodes.append((label, file))

    def _ids(self, label: str, keys: pa.Array) -> pa.Array:
        """The import ids of the ``label`` nodes with these keys (written before)."""
        ids = pc.index_in(keys, value_set=self.keys[label])
        if ids.null_count:
            missing = keys.filter(pc.is_null(ids))[0].as_py()
            raise SpilloverError(f"no {label} node {missing!r} for a relationship to end at")
        return ids.cast(pa.int64())

    def relationship_file(
        self,
        rel_type: str,
        start: tuple[str, pa.Array],
        end: tuple[str, pa.Array],
        props: dict[str, pa.Array] | None = None,
        suffix: str = "",
    ) -> None:
        """``start``/``end``: the label and the key of each relationship's end node."""
        header, columns = self._properties(props or {})
        file = f"relationships-{rel_type}{suffix}.csv"
        count = self._write(
            file,
            [f":START_ID({start[0]})", f":END_ID({end[0]})", *header],
            [self._ids(*start), self._ids(*end), *columns],
        )
        self.counts[rel_type] = self.counts.get(rel_type, 0) + count
        self.relationships.append((rel_type, file))


def _record_props(records: Iterable[Record]) -> dict[str, pa.Array]:
    rows = list(records)

    def column(values: list[Any], kind: pa.DataType | None = None) -> pa.Array:
        return pa.array(values, kind or pa.string())

    return {
        "id": column([r.record_id for r in rows]),
        "platform_id": column([r.platform_id for r in rows]),
        "name": column([r.name for r in rows]),
        "id_number": column([r.id_number for r in rows]),
        "phone": column([r.phone for r in rows]),
        "birth_date": column([r.birth_date for r in rows], pa.date32()),
        "city": column([r.city for r in rows]),
        "person_id": column([r.person_id for r in rows]),
    }


def _match_props(matches: Sequence[Match]) -> dict[str, pa.Array]:
    """The ``MATCHED_TO`` properties (:func:`spillover.facts.model.match_props`), as columns."""
    props = [match_props(m) for m in matches]
    kinds = {
        "matched_by": pa.string(),
        "match_probability": pa.float64(),
        "matched_with": pa.string(),
        "match_weight": pa.float64(),
        "waterfall": pa.string(),
    }
    names = {k for p in props for k in p}
    if names - kinds.keys():
        raise TypeError(f"no import column for match properties {sorted(names - kinds.keys())}")
    return {k: pa.array([p.get(k) for p in props], kind) for k, kind in kinds.items()}


def _write_files(c: Columns, folder: Path, marker: dict[str, Any] | None) -> tuple[_Writer, int]:
    """Every node and relationship a MERGE ingest of ``c`` into an empty database writes,
    whole columns at a time; returns the writer and the rows the MERGE ingest counts.

    Each file follows the statement of the MERGE ingest that writes the same elements
    (``cypher/ingest_*.cypher`` reading :data:`spillover.neo4j.ingest.TABLE_ROWS`'s rows):
    the same properties with the same types, a missing value no property.
    tests/test_bulk.py holds the two to the same graph.
    """
    w = _Writer(folder)
    try:
        rows = _add_files(w, c, marker)
    finally:
        w.finish()
    return w, rows


def _add_files(w: _Writer, c: Columns, marker: dict[str, Any] | None) -> int:
    """Build each file's columns and hand them to ``w``, in the order the importer's
    arguments list them (a relationship's end nodes first); the rows the MERGE ingest
    counts."""
    d = c.details
    if d is None or d.person_id_number is None or d.person_city is None or d.platform_kind is None:
        raise SpilloverError("a bulk load needs a data folder's columns (with every field)")
    person_ids, applicant = _text(c.person_ids), _text(c.loan_applicant_phone)
    rows = _add_platforms(w, c, d)
    rows += _add_people(w, person_ids, d)
    rows += _add_phones(w, c, applicant)
    rows += _add_owner_periods(w, c)
    rows += _add_records(w, c, person_ids)
    rows += _add_loans(w, c, d, applicant)
    rows += _add_loan_links(w, c)
    entry_ids, copied_from = _text(c.entry_ids), _optional(c.entry_copied_from)
    rows += _add_entries(w, c, d, person_ids, entry_ids, copied_from)
    rows += _add_copies(w, entry_ids, copied_from)
    rows += _add_sharing(w, c)
    if marker is not None:
        props = {"key": "spillover", **marker, "rows": rows}
        w.node_file("Dataset", "key", {k: pa.array([v]) for k, v in props.items()})
    return rows


def _add_platforms(w: _Writer, c: Columns, d: Details) -> int:
    """ingest_platforms: the Platform nodes (no kind given: ``other``)."""
    platform_ids, kind = _text(c.platform_ids), _text(d.platform_kind)
    w.node_file(
        "Platform",
        "id",
        {
            "id": platform_ids,
            "name": _text(d.platform_name),
            "kind": pc.if_else(pc.equal(kind, ""), PlatformKind.OTHER.value, kind),
        },
    )
    return len(platform_ids)


def _add_people(w: _Writer, person_ids: pa.Array, d: Details) -> int:
    """ingest_people: the Person nodes."""
    w.node_file(
        "Person",
        "id",
        {
            "id": person_ids,
            "name": _text(d.person_name),
            "id_number": _optional(d.person_id_number),
            "city": _optional(d.person_city),
        },
    )
    return len(person_ids)


def _add_phones(w: _Writer, c: Columns, applicant: pa.Array) -> int:
    """ingest_phones: every number the folder names (spillover.neo4j.ingest.phone_numbers)."""
    entry_kind, entry_subject = _text(c.entry_kind), _text(c.entry_subject)
    is_phone = np.asarray(pc.equal(entry_kind, SubjectKind.PHONE.value).to_numpy(False), bool)
    numbers = pc.unique(
        pa.chunked_array(
            [
                _text(c.period_phone),
                *_where(_present(applicant), applicant),
                _text(c.link_phone),
                *_where(is_phone, entry_subject),
            ],
            pa.string(),
        )
    )
    w.node_file("Phone", "number", {"number": numbers})
    return len(numbers)


def _add_owner_periods(w: _Writer, c: Columns) -> int:
    """ingest_owner_periods: (Person)-[:OWNS {period, since, until, verified}]->(Phone)."""
    owner = _text(c.period_owner)
    since = _days(c.period_since, NEVER)
    owner, phone, since, until, verified = _where(
        _present(owner),
        owner,
        _text(c.period_phone),
        since,
        _days(c.period_until, FOREVER),
        pa.array(np.asarray(c.period_verified, dtype=bool)),
    )
    period = pc.fill_null(since.cast(pa.string()), "")  # an open start: the empty string
    w.relationship_file(
        "OWNS",
        ("Person", owner),
        ("Phone", phone),
        {"period": period, "since": since, "until": until, "verified": verified},
    )
    return len(owner)


def _add_records(w: _Writer, c: Columns, person_ids: pa.Array) -> int:
    """ingest_records: the Record, HELD_BY its platform, MATCHED_TO its person."""
    records = list(c.records.values())
    if not records:
        return 0
    props = _record_props(records)
    w.node_file("Record", "id", props)
    w.relationship_file("HELD_BY", ("Record", props["id"]), ("Platform", props["platform_id"]))
    matched = [c.matches[r.record_id] for r in records if r.record_id in c.matches]
    known = set(person_ids.to_pylist())
    matched = [m for m in matched if m.person_id in known]
    w.relationship_file(
        "MATCHED_TO",
        ("Record", pa.array([m.record_id for m in matched], pa.string())),
        ("Person", pa.array([m.person_id for m in matched], pa.string())),
        _match_props(matched),
    )
    return len(records)


def _loan_props(c: Columns, d: Details, applicant: pa.Array) -> dict[str, pa.Array]:
    """The Loan nodes' properties, as columns."""
    verified_code = np.asarray(d.loan_phone_verified, dtype=np.int8)
    amount = np.asarray(d.loan_amount, dtype=float)
    loan: dict[str, pa.Array] = {
        "id": _text(c.loan_ids),
        "platform_id": _text(c.loan_platform),
        "borrower_id": _text(c.loan_borrower),
        "applied_at": _days(c.loan_applied),
        "status": _text(c.loan_status),
        "status_at": _days(np.asarray(d.loan_status_at), NEVER),
        "amount": pa.array(amount, pa.float64(), mask=np.isnan(amount)),
        "applicant_phone": _optional(applicant),
        "phone_verified": pa.array(verified_code == 1, mask=verified_code < 0),
    }
    if c.loan_record is not None:
        record = _optional(c.loan_record)
        loan["borrower_record"] = record
        loan["matched_by"] = pa.array(
            [
                None if r is None or r not in c.matches else c.matches[r].matched_by.value
                for r in record.to_pylist()
            ],
            pa.string(),
        )
    return loan


def _add_loans(w: _Writer, c: Columns, d: Details, applicant: pa.Array) -> int:
    """ingest_loans: the Loan, BORROWED, AT, and APPLIED_WITH {verified}."""
    loan = _loan_props(c, d, applicant)
    loan_ids = loan["id"]
    w.node_file("Loan", "id", loan)
    w.relationship_file("BORROWED", ("Person", loan["borrower_id"]), ("Loan", loan_ids))
    w.relationship_file("AT", ("Loan", loan_ids), ("Platform", loan["platform_id"]))
    applied_ids, applied_phone, applied_verified = _where(
        _present(applicant), loan_ids, applicant, loan["phone_verified"]
    )
    w.relationship_file(
        "APPLIED_WITH",
        ("Loan", applied_ids),
        ("Phone", applied_phone),
        {"verified": applied_verified},
    )
    return len(loan_ids)


def _add_loan_links(w: _Writer, c: Columns) -> int:
    """ingest_loan_links: LINKS {role}."""
    link_loan = _text(c.link_loan)
    w.relationship_file(
        "LINKS",
        ("Loan", link_loan),
        ("Phone", _text(c.link_phone)),
        {"role": _text(c.link_role)},
    )
    return len(link_loan)


def _add_entries(
    w: _Writer,
    c: Columns,
    d: Details,
    person_ids: pa.Array,
    entry_ids: pa.Array,
    copied_from: pa.Array,
) -> int:
    """ingest_blacklist: the Entry, ON its platform, LISTS a known person, a record or a
    phone (one file per listed label)."""
    entry_platform = _text(c.entry_platform)
    entry_kind, entry_subject = _text(c.entry_kind), _text(c.entry_subject)
    w.node_file(
        "Entry",
        "id",
        {
            "id": entry_ids,
            "platform_id": entry_platform,
            "subject_kind": entry_kind,
            "subject": entry_subject,
            "listed_at": _days(c.entry_listed),
            "stated_reason": _optional(d.entry_stated_reason),
            "copied_from": copied_from,
        },
    )
    w.relationship_file("ON", ("Entry", entry_ids), ("Platform", entry_platform))
    lists = (
        ("Person", SubjectKind.PERSON, person_ids),
        ("Record", SubjectKind.RECORD, list(c.records)),
        ("Phone", SubjectKind.PHONE, None),
    )
    for label, subject_kind, known_ids in lists:
        listed = np.asarray(pc.equal(entry_kind, subject_kind.value).to_numpy(False), bool)
        if known_ids is not None:
            listed &= _member(entry_subject, known_ids)
        if label == "Record" and not c.records:
            continue
        ids, subjects = _where(listed, entry_ids, entry_subject)
        w.relationship_file("LISTS", ("Entry", ids), (label, subjects), suffix=f"-{label}")
    return len(entry_ids)


def _add_copies(w: _Writer, entry_ids: pa.Array, copied_from: pa.Array) -> int:
    """ingest_copies: COPIED_FROM an entry of the folder."""
    copies = _present(copied_from) & _member(pc.fill_null(copied_from, ""), entry_ids)
    copy_ids, copy_of = _where(copies, entry_ids, copied_from)
    w.relationship_file("COPIED_FROM", ("Entry", copy_ids), ("Entry", copy_of))
    return len(copy_ids)


def _add_sharing(w: _Writer, c: Columns) -> int:
    """ingest_sharing: SHARES_WITH {since}."""
    share_from = _text(c.share_from)
    w.relationship_file(
        "SHARES_WITH",
        ("Platform", share_from),
        ("Platform", _text(c.share_to)),
        {"since": _days(c.share_since, NEVER)},
    )
    return len(share_from)


def write_import_files(
    data: Dataset | Columns, out: str | Path, marker: dict[str, Any] | None = None
) -> ImportFiles:
    """Write the node and relationship files of ``data`` into the new (or empty) folder ``out``.

    ``data``: a folder's :class:`~spillover.facts.columns.Columns` (:func:`spillover.data.fast.read_columns`),
    or its :class:`~spillover.facts.model.Dataset`. ``marker``: the properties of the
    ``(:Dataset {key: "spillover"})`` marker to import with the graph (``rows`` is
    added), as the MERGE ingest leaves it.

    One CSV file per label and relationship type (``LISTS``: one per listed label),
    each with its header line; the folder appears only when complete. Node keys are
    import ids in one id space per label (``id:ID(Person)``, ``number:ID(Phone)``),
    so they are stored as the same string properties the MERGE ingest writes; every
    other column has the type of its values (``date``, ``boolean``, ``double``,
    ``string``). Written column by column with ``pyarrow.csv``. See
    :func:`import_arguments`.
    """
    start = time.perf_counter()
    columns = columns_from_dataset(data) if isinstance(data, Dataset) else data
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SpilloverError(f"{target} exists and is not an empty folder")
    with atomic_folder(target) as tmp:
        w, rows = _write_files(columns, tmp, marker)
    return ImportFiles(
        target,
        tuple(w.nodes),
        tuple(w.relationships),
        w.counts,
        w.multiline,
        time.perf_counter() - start,
        rows,
    )


def default_import_threads() -> int:
    """Worker threads for the importer: three per processor (its default is one). Its
    stages wait on the disk between bursts of work; on 2 cores, 6 threads imported 1M
    people in 61 s where 2 took 74-79 s (docs/benchmarks.md)."""
    return 3 * (os.cpu_count() or 1)


def import_arguments(
    files: ImportFiles,
    database: str,
    *,
    overwrite: bool,
    folder: str | None = None,
    threads: int | None = None,
) -> list[str]:
    """The arguments of ``neo4j-admin`` that import ``files`` into ``database``.

    ``folder`` is where the command sees the files (default: relative names, for a
    command run in the files' folder); ``threads``: the importer's worker threads
    (default: its own choice, one per processor).

    >>> f = ImportFiles(Path("out"), (("Person", "nodes-Person.csv"),),
    ...                 (("OWNS", "relationships-OWNS.csv"),), {"Person": 1, "OWNS": 0})
    >>> import_arguments(f, "neo4j", overwrite=False)  # doctest: +NORMALIZE_WHITESPACE
    ['database', 'import', 'full', '--id-type=integer', '--nodes=Person=nodes-Person.csv',
     '--relationships=OWNS=relationships-OWNS.csv', 'neo4j']
    """
    prefix = "" if folder is None else folder.rstrip("/") + "/"
    args = ["database", "import", "full", "--id-type=integer"]
    if threads is not None:
        args.append(f"--threads={threads}")
    args += [f"--nodes={label}={prefix}{name}" for label, name in files.nodes]
    args += [f"--relationships={kind}={prefix}{name}" for kind, name in files.relationships]
    if files.multiline:
        args.append("--multiline-fields=true")
    if overwrite:
        args.append("--overwrite-destination=true")
    args.append(database)
    return args


#: the importer's stage lines ("(2/4) Relationship import 2026-...") and its progress
#: lines (ten-dot groups, then "45% ...")
_STAGE = re.compile(r"^\((\d+)/(\d+)\) (.+?)(?: \d{4}-\d{2}-\d{2}.*)?$")
_PERCENT = re.compile(r"^[. ]+\s(\d{1,3})%")


def import_progress(lines: Iterable[str], progress: Progress) -> Iterator[str]:
    """Pass ``lines`` (the importer's output) through, reporting each stage's share done
    as ``progress("import: STAGE", percent, 100)``.

    >>> seen = []
    >>> out = ["(1/4) Node import 2026-11-29 02:55:40.729+0000",
    ...        ".......... .......... .......... .......... ..........   5% ∆1s [1s]",
    ...        "(2/4) Relationship import 2026-11-29 02:56:18.401+0000"]
    >>> _ = list(import_progress(out, lambda *a: seen.append(a)))
    >>> seen
    [('import: node import', 0, 100), ('import: node import', 5, 100), ('import: relationship import', 0, 100)]
    """
    stage: str | None = None
    for line in lines:
        text = line.rstrip("\n")
        found = _STAGE.match(text)
        if found:
            stage = "import: " + found.group(3).strip().lower()
            progress(stage, 0, 100)
        elif stage is not None and (percent := _PERCENT.match(text)):
            progress(stage, min(int(percent.group(1)), 100), 100)
        yield text


def run_import(
    admin: Sequence[str],
    files: ImportFiles,
    database: str,
    *,
    overwrite: bool,
    threads: int | None = None,
    progress: Progress | None = None,
) -> float:
    """Run ``ADMIN database import full ...`` in the files' folder; return the seconds it took.

    ``admin`` is the command that runs ``neo4j-admin`` for the server's home with the
    server stopped (and starts it again after). The importer's stages are reported to
    ``progress`` as they go (:func:`import_progress`). Raises :class:`ImportFailed`
    with the last lines of its output.
    """
    program = admin[0] if admin else "neo4j-admin"
    if os.sep in program and not os.path.isabs(program):
        # the command runs in the files' folder: a relative path is the caller's
        program = os.path.abspath(program)
    args = [
        program,
        *admin[1:],
        *import_arguments(files, database, overwrite=overwrite, threads=threads),
    ]
    start = time.perf_counter()
    tail: deque[str] = deque(maxlen=60)
    try:
        with subprocess.Popen(
            args,
            cwd=files.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            lines: Iterable[str] = proc.stdout
            if progress is not None:
                lines = import_progress(lines, progress)
            for line in lines:
                if line.strip() and not line.strip().startswith("at "):
                    tail.append(line.rstrip("\n"))
            returncode = proc.wait()
    except OSError as exc:
        raise ImportFailed(f"cannot run {shlex.join(admin)}: {exc}") from None
    if returncode != 0:
        last = [line for line in tail if not _PERCENT.match(line)]
        message = "; ".join(last[-3:]) or f"exit code {returncode}"
        raise ImportFailed(f"the import failed ({shlex.join(admin)}): {message}")
    return time.perf_counter() - start


# ---------------------------------------------------------------------------
# The whole load


@dataclass(frozen=True)
class BulkSummary:
    """What a bulk load did, phase by phase."""

    dataset: str
    #: nodes per label and relationships per type in the database after the load
    #: (with ``files_only``: in the files)
    counts: dict[str, int]
    files: ImportFiles
    read_seconds: float
    import_seconds: float = 0.0
    schema_seconds: float = 0.0
    seconds: float = 0.0
    #: nodes and relationships the database held before (replaced with ``overwrite``)
    replaced: int = 0
    imported: bool = True
    arguments: list[str] = field(default_factory=list)

    @property
    def elements(self) -> int:
        """Nodes plus relationships loaded (the marker not counted)."""
        return sum(v for k, v in self.counts.items() if k != "Dataset")


def _reconnect(settings: Neo4jSettings, timeout: float) -> neo4j.Driver:
    """A new driver once the restarted server answers (the old driver's bookmarks name
    transactions of the replaced store: a new one starts afresh)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect(settings)
        except BackendUnavailable as exc:
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"Neo4j did not answer within {timeout:.0f} s after the import ({exc}); "
                    "start it, then run `spillover ingest` (without --bulk) on the same "
                    "folder: it applies the schema and checks the graph"
                ) from None
            time.sleep(1.0)


def bulk_ingest(
    folder: str | Path,
    settings: Neo4jSettings | None,
    *,
    admin: Sequence[str] = ("neo4j-admin",),
    dataset: str | None = None,
    region: str = DEFAULT_REGION,
    overwrite: bool = False,
    files: str | Path | None = None,
    files_only: bool = False,
    reconnect_seconds: float = RECONNECT_SECONDS,
    progress: Progress | None = None,
    threads: int | None = None,
) -> BulkSummary:
    """Validate ``folder``, write its import files, import them, apply schema and marker.

    ``settings`` reach the running server: its database must hold no node (else
    :class:`DatabaseNotEmpty`, unless ``overwrite``). ``admin`` runs ``neo4j-admin``
    with the server stopped (see the module docs); the import always replaces the
    database's store (``--overwrite-destination``: Neo4j creates the default database,
    empty, at the first start). ``files`` keeps the import files in that new folder
    (default: a temporary folder, removed at the end). With ``files_only`` nothing
    touches Neo4j (``settings`` may be None): the files are written into ``files`` and
    the summary's ``arguments`` are the ``neo4j-admin`` arguments to import them.
    ``threads``: the importer's worker threads (default: :func:`default_import_threads`).
    ``files`` that would go into ``folder`` (the folder itself, inside it or holding it)
    are refused first (:class:`~spillover.errors.OptionError`, naming ``--files``).
    """
    if files is not None:
        check_outside(files, folder, option="--files", data_option="FOLDER")
    threads = default_import_threads() if threads is None else threads
    if threads < 1:
        raise SpilloverError(f"the importer needs at least one thread, not {threads}")
    start = time.perf_counter()
    started_at = now()
    path = Path(folder)
    name = dataset or dataset_name(path)
    data = read_columns(path, region=region)
    check_key_sizes(*columns_keys(data))
    read_seconds = time.perf_counter() - start
    if files_only and files is None:
        raise SpilloverError("files_only needs a folder for the files")
    database = settings.database if settings is not None else "neo4j"
    replaced = 0 if files_only else _prepare(settings, database, overwrite=overwrite)
    scratch: Path | None = None
    if files is None:
        scratch = Path(tempfile.mkdtemp(prefix="spillover-bulk-"))
        target = scratch / "import"
    else:
        target = Path(files)
    try:
        written, marker = _write_files_of(data, target, name, path, started_at, progress)
        del data  # the importer needs the memory more
        if files_only:
            return BulkSummary(
                name,
                written.counts,
                written,
                read_seconds,
                seconds=time.perf_counter() - start,
                imported=False,
                arguments=import_arguments(written, database, overwrite=True, threads=threads),
            )
        import_seconds = run_import(
            admin, written, database, overwrite=True, threads=threads, progress=progress
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    schema_start = time.perf_counter()
    assert settings is not None
    counts = _after_import(settings, database, marker, written.rows, reconnect_seconds)
    return BulkSummary(
        name,
        counts,
        written,
        read_seconds,
        import_seconds,
        time.perf_counter() - schema_start,
        time.perf_counter() - start,
        replaced,
    )


def _prepare(settings: Neo4jSettings | None, database: str, *, overwrite: bool) -> int:
    """Check that the server answers and that ``database`` may be replaced; the nodes
    and relationships it holds (refused unless ``overwrite``: :class:`DatabaseNotEmpty`)."""
    if settings is None:
        raise SpilloverError("a bulk load needs the Neo4j settings of the server")
    driver = connect(settings)
    try:
        replaced = sum(element_counts(driver, database))
    except (DriverError, Neo4jError) as exc:
        raise BackendUnavailable(f"cannot reach Neo4j before the import: {exc}") from None
    finally:
        driver.close()
    if replaced and not overwrite:
        raise DatabaseNotEmpty(
            f"database {database!r} holds {replaced} nodes and relationships: a bulk "
            "load replaces the whole database; pass --overwrite to replace them, or "
            "ingest without --bulk"
        )
    return replaced


def _write_files_of(
    data: Columns,
    target: Path,
    name: str,
    path: Path,
    started_at: str,
    progress: Progress | None,
) -> tuple[ImportFiles, dict[str, Any]]:
    """Write the import files of ``data`` into ``target``, with the dataset marker of a
    complete first ingest; the files and the marker."""
    if progress is not None:
        progress("write import files", 0, 1)
    marker = node_props(
        name=name,
        folder=str(path.resolve()),
        first_ingest_at=started_at,
        started_at=started_at,
        finished_at=now(),
        complete=True,
        # the first version of the data; no write-back results (results_*) yet
        data_version=1,
        data_changed_at=started_at,
    )
    written = write_import_files(data, target, marker)
    if progress is not None:
        progress("write import files", 1, 1)
    return written, marker


def _after_import(
    settings: Neo4jSettings,
    database: str,
    marker: dict[str, Any],
    rows: int,
    reconnect_seconds: float,
) -> dict[str, int]:
    """Once the server answers again: apply the schema and write the dataset marker, as
    the MERGE ingest does; the nodes per label and relationships per type it holds."""
    driver = _reconnect(settings, reconnect_seconds)
    try:
        apply_schema(driver, database)
        write_marker(driver, database, {**marker, "finished_at": now(), "rows": rows})
        return graph_counts(driver, database)
    except (DriverError, Neo4jError) as exc:
        raise BackendUnavailable(f"lost Neo4j after the import: {exc}") from None
    finally:
        driver.close()


def default_admin() -> list[str]:
    """The ``neo4j-admin`` command: ``$SPILLOVER_NEO4J_ADMIN`` split like a shell, else ``neo4j-admin``."""
    return shlex.split(os.environ.get(ADMIN_ENV, "")) or ["neo4j-admin"]
