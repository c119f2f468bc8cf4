"""Bulk first loads into Neo4j: the files of ``neo4j-admin database import full``.

The MERGE ingest (:mod:`spillover.ingest`) makes a database equal a folder, batch
by batch, through Bolt; at about 22,000 graph elements per second it takes hours
for a population of millions. A *first* load into an empty database can instead
go through Neo4j's offline importer, which writes the store files directly:

1. the folder is validated in full (the same rules and messages as every command);
2. the database is checked: one that holds any node is refused unless
   ``overwrite`` (:class:`DatabaseNotEmpty`);
3. the node and relationship files are written (:func:`write_import_files`), from
   the very rows the MERGE ingest writes (:func:`spillover.ingest.wanted_rows`):
   the same labels, keys, properties and property types, the same relationships;
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

import math
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from .backends.neo4j import Neo4jSettings, connect
from .errors import BackendUnavailable, SpilloverError
from .fastload import read_dataset
from .ingest import (
    _now,
    _props,
    _write_marker,
    apply_schema,
    dataset_name,
    element_counts,
    graph_counts,
    table_rows,
)
from .model import Dataset
from .outfiles import atomic_folder
from .phones import DEFAULT_REGION

__all__ = [
    "ADMIN_ENV",
    "BulkSummary",
    "DatabaseNotEmpty",
    "ImportFailed",
    "ImportFiles",
    "bulk_ingest",
    "default_admin",
    "import_arguments",
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
# Values as the importer reads them

_TYPES: tuple[tuple[type, str], ...] = (
    # bool before int: a bool is an int in Python, a boolean in Neo4j
    (bool, "boolean"),
    (int, "long"),
    (float, "double"),
    (datetime, "datetime"),
    (date, "date"),
    (str, "string"),
)


def _type_of(value: Any) -> str:
    for kind, name in _TYPES:
        if isinstance(value, kind):
            return name
    raise TypeError(f"no import type for {type(value).__name__} value {value!r}")


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _cell(value: Any) -> str:
    """One CSV field: strings always quoted (so ``""`` is an empty string, not a
    missing property), a missing value empty and unquoted (no property).

    >>> [_cell(v) for v in ("a\\"b", "", None, True, 2, 1.5, date(2024, 3, 1))]
    ['"a""b"', '""', '', 'true', '2', '1.5', '2024-03-01']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be imported")
        return repr(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _columns(rows: Sequence[dict[str, Any]], skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(property, import type) of every property any row has, in first-seen order."""
    types: dict[str, str] = {}
    skipped = set(skip)
    for row in rows:
        for key, value in row.items():
            if key in skipped:
                continue
            kind = _type_of(value)
            seen = types.setdefault(key, kind)
            if seen != kind:
                # the MERGE ingest would store each value with its own type; one
                # column has one type: refuse rather than import something else
                raise SpilloverError(
                    f"property {key!r} holds both {seen} and {kind} values: "
                    "cannot write it as one import column"
                )
    return list(types.items())


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
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.nodes: list[tuple[str, str]] = []
        self.relationships: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.multiline = False
        #: rows of the folder's tables, as the MERGE ingest counts them
        self.rows = 0

    def _write(self, name: str, header: list[str], lines: Iterable[str]) -> int:
        count = 0
        with open(self.folder / name, "w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(header) + "\n")
            chunk: list[str] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) >= 50_000:
                    text = "\n".join(chunk) + "\n"
                    self.multiline = self.multiline or "\r" in text or text.count("\n") > len(chunk)
                    handle.write(text)
                    count += len(chunk)
                    chunk = []
            if chunk:
                text = "\n".join(chunk) + "\n"
                self.multiline = self.multiline or "\r" in text or text.count("\n") > len(chunk)
                handle.write(text)
                count += len(chunk)
        return count

    def node_file(self, label: str, key: str, rows: Sequence[dict[str, Any]]) -> None:
        """``rows``: each node's properties (the key among them)."""
        columns = _columns(rows, skip=(key,))
        header = [f"{key}:ID({label})"] + [f"{name}:{kind}" for name, kind in columns]
        names = [name for name, _ in columns]
        lines = (
            ",".join([_quote(row[key])] + [_cell(row.get(name)) for name in names]) for row in rows
        )
        file = f"nodes-{label}.csv"
        self.counts[label] = self.counts.get(label, 0) + self._write(file, header, lines)
        self.nodes.append((label, file))

    def relationship_file(
        self,
        rel_type: str,
        start: str,
        end: str,
        rows: Sequence[tuple[str, str, dict[str, Any]]],
        suffix: str = "",
    ) -> None:
        """``rows``: (start key, end key, properties); ``start``/``end``: the id groups (labels)."""
        columns = _columns([props for _, _, props in rows])
        header = [f":START_ID({start})", f":END_ID({end})"]
        header += [f"{name}:{kind}" for name, kind in columns]
        names = [name for name, _ in columns]
        lines = (
            ",".join([_quote(a), _quote(b)] + [_cell(props.get(name)) for name in names])
            for a, b, props in rows
        )
        file = f"relationships-{rel_type}{suffix}.csv"
        self.counts[rel_type] = self.counts.get(rel_type, 0) + self._write(file, header, lines)
        self.relationships.append((rel_type, file))


def _write_files(data: Dataset, folder: Path, marker: dict[str, Any] | None) -> _Writer:
    """Every node and relationship a MERGE ingest of ``data`` into an empty database writes.

    The rows are the MERGE ingest's upsert rows (:func:`spillover.ingest.table_rows`),
    read the way the ``cypher/ingest_*.cypher`` statements read them; one table is
    held in memory at a time.
    """
    w = _Writer(folder)

    def rows(table: str) -> list[dict[str, Any]]:
        found = [row for _, _, row in table_rows(data, table)]
        w.rows += len(found)
        return found

    w.node_file("Platform", "id", [r["props"] for r in rows("platforms")])
    w.node_file("Person", "id", [r["props"] for r in rows("people")])
    w.node_file("Phone", "number", [r["props"] for r in rows("phones")])
    # ingest_owner_periods: (Person {id: owner_id})-[:OWNS props]->(Phone {number: phone})
    w.relationship_file(
        "OWNS",
        "Person",
        "Phone",
        [(r["owner_id"], r["phone"], r["props"]) for r in rows("owner_periods")],
    )
    # ingest_loans: the Loan, its BORROWED, AT, and APPLIED_WITH (the row's `applied` properties)
    loans = rows("loans")
    w.node_file("Loan", "id", [r["props"] for r in loans])
    w.relationship_file(
        "BORROWED",
        "Person",
        "Loan",
        [(r["props"]["borrower_id"], r["props"]["id"], {}) for r in loans],
    )
    w.relationship_file(
        "AT", "Loan", "Platform", [(r["props"]["id"], r["props"]["platform_id"], {}) for r in loans]
    )
    w.relationship_file(
        "APPLIED_WITH",
        "Loan",
        "Phone",
        [
            (r["props"]["id"], r["props"]["applicant_phone"], r["applied"])
            for r in loans
            if r["props"].get("applicant_phone") is not None
        ],
    )
    del loans
    # ingest_loan_links: LINKS {role}
    w.relationship_file(
        "LINKS",
        "Loan",
        "Phone",
        [(r["loan_id"], r["phone"], {"role": r["role"]}) for r in rows("loan_links")],
    )
    # ingest_blacklist: the Entry, its ON, and LISTS a known person or a phone
    entries = list(table_rows(data, "blacklist"))
    w.rows += len(entries)
    w.node_file("Entry", "id", [row["props"] for _, _, row in entries])
    w.relationship_file(
        "ON",
        "Entry",
        "Platform",
        [(row["props"]["id"], row["props"]["platform_id"], {}) for _, _, row in entries],
    )
    for kind, label in (("person", "Person"), ("phone", "Phone")):
        listed: list[tuple[str, str, dict[str, Any]]] = [
            (row["props"]["id"], subject, {})
            for _, compare, row in entries
            for listed_kind, subject in compare[2]  # what the entry lists, as the ingest decides
            if listed_kind == kind
        ]
        w.relationship_file("LISTS", "Entry", label, listed, suffix=f"-{label}")
    del entries
    # ingest_copies, ingest_sharing
    w.relationship_file(
        "COPIED_FROM",
        "Entry",
        "Entry",
        [(r["entry_id"], r["copied_from"], {}) for r in rows("copies")],
    )
    w.relationship_file(
        "SHARES_WITH",
        "Platform",
        "Platform",
        [(r["from_platform"], r["to_platform"], r["props"]) for r in rows("sharing")],
    )
    if marker is not None:
        w.node_file("Dataset", "key", [{"key": "spillover", **marker, "rows": w.rows}])
    return w


def write_import_files(
    data: Dataset, out: str | Path, marker: dict[str, Any] | None = None
) -> ImportFiles:
    """Write the node and relationship files of ``data`` into the new (or empty) folder ``out``.

    ``marker``: the properties of the ``(:Dataset {key: "spillover"})`` marker to
    import with the graph (``rows`` is added), as the MERGE ingest leaves it.

    One CSV file per label and relationship type (two for ``LISTS``: to a person, to
    a phone), each with its header line; the folder appears only when complete.
    Node keys are import ids in one id space per label (``id:ID(Person)``,
    ``number:ID(Phone)``), so they are stored as the same string properties the
    MERGE ingest writes; every other column is typed from the values (``date``,
    ``boolean``, ``double``, ``long``, ``string``). See :func:`import_arguments`.
    """
    start = time.perf_counter()
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SpilloverError(f"{target} exists and is not an empty folder")
    with atomic_folder(target) as tmp:
        w = _write_files(data, tmp, marker)
    return ImportFiles(
        target,
        tuple(w.nodes),
        tuple(w.relationships),
        w.counts,
        w.multiline,
        time.perf_counter() - start,
        w.rows,
    )


def import_arguments(
    files: ImportFiles, database: str, *, overwrite: bool, folder: str | None = None
) -> list[str]:
    """The arguments of ``neo4j-admin`` that import ``files`` into ``database``.

    ``folder`` is where the command sees the files (default: relative names, for a
    command run in the files' folder).

    >>> f = ImportFiles(Path("out"), (("Person", "nodes-Person.csv"),),
    ...                 (("OWNS", "relationships-OWNS.csv"),), {"Person": 1, "OWNS": 0})
    >>> import_arguments(f, "neo4j", overwrite=False)  # doctest: +NORMALIZE_WHITESPACE
    ['database', 'import', 'full', '--nodes=Person=nodes-Person.csv',
     '--relationships=OWNS=relationships-OWNS.csv', 'neo4j']
    """
    prefix = "" if folder is None else folder.rstrip("/") + "/"
    args = ["database", "import", "full"]
    args += [f"--nodes={label}={prefix}{name}" for label, name in files.nodes]
    args += [f"--relationships={kind}={prefix}{name}" for kind, name in files.relationships]
    if files.multiline:
        args.append("--multiline-fields=true")
    if overwrite:
        args.append("--overwrite-destination=true")
    args.append(database)
    return args


def run_import(
    admin: Sequence[str], files: ImportFiles, database: str, *, overwrite: bool
) -> float:
    """Run ``ADMIN database import full ...`` in the files' folder; return the seconds it took.

    ``admin`` is the command that runs ``neo4j-admin`` for the server's home with the
    server stopped (and starts it again after). Raises :class:`ImportFailed`.
    """
    program = admin[0] if admin else "neo4j-admin"
    if os.sep in program and not os.path.isabs(program):
        # the command runs in the files' folder: a relative path is the caller's
        program = os.path.abspath(program)
    args = [program, *admin[1:], *import_arguments(files, database, overwrite=overwrite)]
    start = time.perf_counter()
    try:
        out = subprocess.run(
            args,
            cwd=files.folder,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError as exc:
        raise ImportFailed(f"cannot run {shlex.join(admin)}: {exc}") from None
    if out.returncode != 0:
        lines = [
            line
            for line in (out.stderr + "\n" + out.stdout).splitlines()
            if line.strip() and not line.strip().startswith("at ")
        ]
        tail = "; ".join(lines[-3:]) or f"exit code {out.returncode}"
        raise ImportFailed(f"the import failed ({shlex.join(admin)}): {tail}")
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
    """
    start = time.perf_counter()
    started_at = _now()
    path = Path(folder)
    name = dataset or dataset_name(path)
    data = read_dataset(path, region=region)
    read_seconds = time.perf_counter() - start
    if data.records or data.matches:
        raise SpilloverError(
            f"{path} holds platform records: a bulk load does not write them yet; "
            "load it with the MERGE ingest (spillover ingest without --bulk)"
        )
    if files_only and files is None:
        raise SpilloverError("files_only needs a folder for the files")
    replaced = 0
    database = settings.database if settings is not None else "neo4j"
    if not files_only:
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
    scratch: Path | None = None
    if files is None:
        scratch = Path(tempfile.mkdtemp(prefix="spillover-bulk-"))
        target = scratch / "import"
    else:
        target = Path(files)
    try:
        if progress is not None:
            progress("write import files", 0, 1)
        marker = _props(
            name=name,
            folder=str(path.resolve()),
            first_ingest_at=started_at,
            started_at=started_at,
            finished_at=_now(),
            complete=True,
        )
        written = write_import_files(data, target, marker)
        del data  # the importer needs the memory more
        if progress is not None:
            progress("write import files", 1, 1)
        if files_only:
            return BulkSummary(
                name,
                written.counts,
                written,
                read_seconds,
                seconds=time.perf_counter() - start,
                imported=False,
                arguments=import_arguments(written, database, overwrite=True),
            )
        assert settings is not None
        if progress is not None:
            progress("import", 0, 1)
        import_seconds = run_import(admin, written, database, overwrite=True)
        if progress is not None:
            progress("import", 1, 1)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    schema_start = time.perf_counter()
    driver = _reconnect(settings, reconnect_seconds)
    try:
        apply_schema(driver, database)
        _write_marker(driver, database, {**marker, "finished_at": _now(), "rows": written.rows})
        counts = graph_counts(driver, database)
    except (DriverError, Neo4jError) as exc:
        raise BackendUnavailable(f"lost Neo4j after the import: {exc}") from None
    finally:
        driver.close()
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


def default_admin() -> list[str]:
    """The ``neo4j-admin`` command: ``$SPILLOVER_NEO4J_ADMIN`` split like a shell, else ``neo4j-admin``."""
    return shlex.split(os.environ.get(ADMIN_ENV, "")) or ["neo4j-admin"]
