"""The Parquet form of a CSV data folder, and the messages the loaders give on it.

A CSV table is turned into ``NAME.parquet`` (text columns, an empty cell "") when
its rows map one to one onto physical lines (row N is line N + 1, the header line 1):
UTF-8 without a byte-order mark, no blank line, no line break inside a cell, every
row as long as the header. The loaders must then refuse the Parquet form with the
problems of the CSV form, renamed by :func:`parquet_message` (line L of ``NAME.csv``
is row L - 1 of ``NAME.parquet``, its header the Parquet schema, line 0).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spillover.errors import DataError, Problem

TABLES = ("people", "platforms", "phones", "loans", "loan_links", "blacklist", "sharing")


def convertible_rows(path: Path) -> list[list[str]] | None:
    """The rows of a CSV table whose Parquet form numbers rows as the CSV numbers lines."""
    if not path.is_file() or path.is_symlink():
        return None
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text or not text:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None
    if len(rows) != len(lines) or not rows or any(not r for r in rows):
        return None
    if any(len(r) != len(rows[0]) for r in rows) or any("\n" in c for r in rows for c in r):
        return None
    return rows


def write_parquet(path: Path, rows: list[list[str]], parts: int = 1) -> None:
    """``rows`` (a header, then data) as a Parquet table of text columns: one file, or a
    folder of ``parts`` part files (and the extra files Spark writes next to them).

    An empty cell stays an empty text, not a null: both are a missing value, but a
    required enum column says "Input should be ..." for an empty cell and "required
    value is missing" for a null, as JSONL does for a missing field."""
    header, body = rows[0], rows[1:]
    table = pa.Table.from_arrays(
        [pa.array([r[i] for r in body], pa.string()) for i in range(len(header))],
        names=header,
    )
    if parts == 1:
        pq.write_table(table, path)
        return
    path.mkdir()
    step = -(-len(body) // parts) if body else 1
    for k in range(parts):
        pq.write_table(table.slice(k * step, step), path / f"part-{k:05d}-x.snappy.parquet")
    (path / "_SUCCESS").write_bytes(b"")
    (path / ".part-00000-x.snappy.parquet.crc").write_bytes(b"\x00\x01")


def to_parquet(folder: Path, parts: int = 1) -> set[str]:
    """Turn every convertible ``NAME.csv`` of ``folder`` into ``NAME.parquet``; the tables turned."""
    done = set()
    for table in TABLES:
        path = folder / f"{table}.csv"
        rows = convertible_rows(path)
        if rows is None:
            continue
        write_parquet(folder / f"{table}.parquet", rows, parts)
        path.unlink()
        done.add(table)
    return done


def parquet_message(problem: Problem, converted: set[str]) -> str:
    """The problem as the loaders report it on the Parquet form of its table."""
    name = Path(problem.file).name
    table = name.removesuffix(".csv")
    if not name.endswith(".csv") or table not in converted:
        return str(problem)
    file = str(Path(problem.file).with_name(f"{table}.parquet"))
    message = re.sub(r"(on line )(\d+)", lambda m: f"{m[1]}{int(m[2]) - 1}", problem.message)
    message = message.replace(" the header", " the schema")
    field = "(schema)" if problem.field == "(header)" else problem.field
    return str(Problem(file, max(problem.line - 1, 0), field, message))


def outcome(load: Any, folder: Path, converted: set[str] = frozenset()) -> tuple[str, Any]:
    """``("ok", dataset)`` or ``("refused", (problems, total))``, the problems of tables in
    ``converted`` renamed as the Parquet form of the folder must report them."""
    try:
        return "ok", load(folder)
    except DataError as exc:
        return "refused", ([parquet_message(p, set(converted)) for p in exc.problems], exc.total)
