"""Read and validate a data folder (docs/contract.md §1) into a :class:`~spillover.facts.model.Dataset`.

A table is ``NAME.csv``, ``NAME.jsonl`` or ``NAME.parquet`` (a Parquet file or a folder
of parts, :mod:`spillover.data.parquet`). The load is all or nothing: every defect found
is reported (up to a cap per file) as ``file:line: field: what is wrong`` and nothing
of a refused folder is returned. Validation runs in two passes: each row on its own (pydantic models in
:mod:`spillover.data.rows`), then every reference across tables.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import DataError, OptionError, Problem
from ..facts.model import (
    Dataset,
    Entry,
    Loan,
    LoanLink,
    Match,
    MatchLevel,
    Person,
    PhonePeriod,
    Platform,
    Record,
    Sharing,
    SubjectKind,
)
from ..facts.phones import DEFAULT_REGION, check_region
from ..rules import MatchKey
from . import parquet as parquetio
from .contract import CSV, REQUIRED_TABLES, SUFFIXES, TABLES, field_kinds, required_columns
from .rows import JsonFloat, JsonInt, Row

__all__ = [
    "DEFAULT_MAX_ERRORS",
    "Located",
    "Problems",
    "checked_region",
    "error_text",
    "jsonl_line_problems",
    "load_folder",
    "loan_of",
    "read_table",
    "read_valid_table",
    "table_file",
    "table_paths",
]

DEFAULT_MAX_ERRORS = 50
#: the longest CSV cell read (Python's csv module stops at 131,072 characters by default)
_MAX_CELL = 1 << 30


@dataclass(frozen=True, slots=True)
class Located:
    """A validated row and where it came from."""

    file: str
    line: int
    row: Any


@dataclass(slots=True)
class _Rejected:
    """What the reader of one table could not take: the raw mappings of the rows it
    refused (their keys are not reported again as unknown), and whether it refused the
    table as a whole (its header or Parquet schema, an unreadable file): then no
    reference to the table is reported as unknown either (docs/contract.md §1)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    whole: bool = False


class Problems:
    """Collects problems with a cap per file; counts every problem, shown or not (the
    exact loader's, and the simulator's for its rule files)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[Problem] = []
        self.per_file: dict[str, int] = defaultdict(int)
        self.total = 0

    @property
    def truncated(self) -> bool:
        """Whether some problems were counted but not kept (over the cap of a file)."""
        return self.total > len(self.items)

    def add(self, file: str, line: int, field: str, message: str) -> None:
        """Count one problem; keep it unless ``file`` already has ``cap`` of them."""
        self.total += 1
        if self.per_file[file] >= self.cap:
            return
        self.per_file[file] += 1
        self.items.append(Problem(file, line, field, message))

    def error(self) -> DataError:
        """The :class:`~spillover.errors.DataError` of the problems kept."""
        return DataError(self.items, self.truncated, self.total, self.cap)


def _is_table(path: Path) -> bool:
    if path.suffix == parquetio.SUFFIX:
        return parquetio.is_table_path(path)
    return path.is_file()


def table_paths(folder: Path, table: str) -> list[Path]:
    """Every form of ``table`` present in ``folder`` (more than one is an error).

    >>> from spillover.examples import jiang_case_path
    >>> [p.name for p in table_paths(jiang_case_path(), "loans")]
    ['loans.csv']
    """
    return [
        folder / f"{table}{suffix}" for suffix in SUFFIXES if _is_table(folder / f"{table}{suffix}")
    ]


def table_file(folder: Path, table: str) -> Path | None:
    """The file (or Parquet folder) holding ``table`` in ``folder``, if any."""
    found = table_paths(folder, table)
    return found[0] if found else None


def odd_table_paths(folder: Path, table: str) -> list[Path]:
    """``NAME.csv`` / ``NAME.jsonl`` / ``NAME.parquet`` entries that exist but are not a table
    (a folder named ``.csv``, a broken link, a device): never taken for a missing table."""
    out = []
    for suffix in SUFFIXES:
        candidate = folder / f"{table}{suffix}"
        if os.path.lexists(candidate) and not _is_table(candidate):
            out.append(candidate)
    return out


def _what_is(path: Path) -> str:
    if path.is_dir():
        return "a directory"
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    return "not a regular file"


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _bad_bytes(text: str) -> str | None:
    """The first undecodable byte of a line read with ``surrogateescape``, described."""
    found = _ESCAPED_BYTE.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    return f"not UTF-8: byte 0x{byte:02x} at column {found.start() + 1}"


class _Lines:
    """Physical lines of a text file read with ``surrogateescape``: counts them and
    remembers the first undecodable spot of each bad line."""

    def __init__(self, handle: io.TextIOWrapper) -> None:
        self.handle = handle
        self.count = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        for text in self.handle:
            self.count += 1
            if self.count == 1 and text.startswith("\ufeff"):
                text = text[1:]
            problem = _bad_bytes(text)
            if problem is not None:
                self.bad[self.count] = problem
            yield text

    def bad_between(self, first: int, last: int) -> tuple[int, str] | None:
        for line in range(first, last + 1):
            if line in self.bad:
                return line, self.bad[line]
        return None


def _open_text(path: Path) -> io.TextIOWrapper:
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8", errors="surrogateescape", newline="")


def _column_positions(
    names: Sequence[str],
    needed: Iterable[str],
    problems: Problems,
    where: str,
    line: int,
    kind: str,
) -> tuple[dict[str, int], bool]:
    """Each column's first position (1-based) in a CSV header or a Parquet schema
    (``kind``), and whether it is usable: a column given twice or a required one
    missing is a problem at ``where``:``line``."""
    ok = True
    first_seen: dict[str, int] = {}
    for position, column in enumerate(names, start=1):
        if column in first_seen:
            problems.add(
                where,
                line,
                column or f"({kind})",
                f"column {column!r} appears twice in the {kind} "
                f"(columns {first_seen[column]} and {position})",
            )
            ok = False
        first_seen.setdefault(column, position)
    for column in needed:
        if column not in first_seen:
            problems.add(where, line, column, f"required column is missing from the {kind}")
            ok = False
    return first_seen, ok


def _csv_rows(
    path: Path, problems: Problems, needed: list[str], rejected: _Rejected
) -> Iterator[tuple[int, dict[str, Any]]]:
    name = str(path)
    if csv.field_size_limit() < _MAX_CELL:
        csv.field_size_limit(_MAX_CELL)  # as long as Arrow's (the fast loader) allows
    with _open_text(path) as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            problems.add(name, 1, "(header)", "file is empty; a header row is required")
            rejected.whole = True
            return
        except csv.Error as exc:
            problems.add(name, 1, "(header)", f"unreadable: {exc}")
            rejected.whole = True
            return
        bad = lines.bad_between(1, lines.count)
        if bad is not None:
            problems.add(name, bad[0], "(header)", bad[1])
            rejected.whole = True
            return
        header = [h.strip() for h in header]
        _, header_ok = _column_positions(header, needed, problems, name, 1, "header")
        if not header_ok:
            rejected.whole = True
            return
        last = lines.count
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.add(name, last + 1, "(row)", f"unreadable: {exc}")
                last = lines.count
                continue
            first, last = last + 1, lines.count
            bad = lines.bad_between(first, last)
            if bad is not None:
                problems.add(name, bad[0], "(row)", bad[1])
                if values:
                    rejected.rows.append(dict(zip(header, values, strict=False)))
                continue
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                problems.add(
                    name, last, "(row)", f"expected {len(header)} cells, found {len(values)}"
                )
                rejected.rows.append(dict(zip(header, values, strict=False)))
                continue
            yield last, dict(zip(header, values, strict=True))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotJson(Exception):
    """A literal Python's ``json`` reads but JSON has not (``NaN``, ``Infinity``)."""


def _no_constant(literal: str) -> Any:
    raise _NotJson(literal)


def _jsonl_rows(
    path: Path, problems: Problems, rejected: _Rejected
) -> Iterator[tuple[int, dict[str, Any]]]:
    name = str(path)
    with _open_text(path) as handle:
        lines = _Lines(handle)
        for text in lines:
            line = lines.count
            if line in lines.bad:
                problems.add(name, line, "(row)", lines.bad[line])
                continue
            value, found = _json_line(text)
            for field_name, message in found:
                problems.add(name, line, field_name, message)
            if value is None:  # a blank line, or no JSON object
                continue
            if found:
                rejected.rows.append(value)
                continue
            yield line, value


def _json_line(text: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """One JSONL line (read with ``surrogateescape``, its bytes good) as the exact loader
    reads it: the object and its problems ``(field, message)``. None and no problem: a
    blank line (skipped); None and a problem: no JSON object; an object and a problem:
    it holds a lone surrogate."""
    if not text.strip():
        return None, []
    try:
        # a number keeps its literal: a text field reads it as written (Spark too)
        value = json.loads(
            text.rstrip("\r\n"),
            object_pairs_hook=_no_duplicate_keys,
            parse_float=JsonFloat,
            parse_int=JsonInt,
            parse_constant=_no_constant,
        )
    except _NotJson as exc:
        return None, [("(row)", f"not valid JSON: {exc} is not a JSON value")]
    except json.JSONDecodeError as exc:
        what = exc.msg.removesuffix(" at")
        return None, [("(row)", f"not valid JSON: {what} at column {exc.colno}")]
    except _DuplicateKey as exc:
        return None, [(exc.key or "(row)", "field appears twice in this object")]
    except RecursionError:
        return None, [("(row)", "not valid JSON: nested too deeply")]
    except ValueError:  # an integer with more digits than Python converts (4300)
        return None, [("(row)", "not valid JSON: a number has too many digits")]
    if not isinstance(value, dict):
        return None, [("(row)", "each line must be a JSON object")]
    found = []
    for key, item in value.items():
        if _SURROGATE.search(key):  # the key is no field name the report can show
            found.append(("(row)", _LONE_SURROGATE))
        elif _holds_surrogate(item):
            found.append((key, _LONE_SURROGATE))
    return value, found


_LONE_SURROGATE = "text holds a lone surrogate (not valid Unicode)"


def _holds_surrogate(value: Any) -> bool:
    """Whether a JSON value holds a lone surrogate in any of its strings (a nested one, an
    object's key too: docs/contract.md §1, "a JSON string holding a lone surrogate").
    Walked with a stack, not by recursion: JSON nested nearly as deep as the parser takes
    must not run out of Python's stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return False


def jsonl_line_problems(data: bytes) -> list[tuple[str, str]]:
    """The problems the exact loader reports for one line of a JSONL table (its bytes, the
    line break removed), each ``(field, message)`` as in its report: none for a line it
    reads as an object or skips as blank. The Spark audit words its refusal of a line
    with these (one definition of the words).

    >>> jsonl_line_problems(b'{"person_id": "a"} {"person_id": "b"}')
    [('(row)', 'not valid JSON: Extra data at column 20')]
    >>> jsonl_line_problems(b'[{"person_id": "a"}]'), jsonl_line_problems(b'{"a": 1}')
    ([('(row)', 'each line must be a JSON object')], [])
    """
    text = data.decode("utf-8", errors="surrogateescape")
    bad = _bad_bytes(text)
    if bad is not None:
        return [("(row)", bad)]
    return _json_line(text)[1]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _arrow_reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _texts(column: pa.ChunkedArray, field: str, bad: dict[int, tuple[str, str]]) -> list[Any]:
    """A string column's values; a value that is not UTF-8 is read with ``surrogateescape``
    and its row goes to ``bad`` (first problem per row)."""
    try:
        column.validate(full=True)
        values: list[Any] = column.to_pylist()
        return values
    except pa.ArrowInvalid:
        pass
    out: list[Any] = []
    for i, data in enumerate(column.cast(pa.binary()).to_pylist()):
        if data is None:
            out.append(None)
            continue
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            out.append(data.decode("utf-8", "surrogateescape"))
            at = len(data[: exc.start].decode("utf-8", "replace")) + 1
            bad.setdefault(i, (field, f"not UTF-8: byte 0x{data[exc.start]:02x} at character {at}"))
    return out


def _other_cells_blank(table: pa.Table, row: int, skip: set[int]) -> bool:
    """Every cell of ``row`` outside the columns ``skip`` is missing."""
    for index in range(table.num_columns):
        if index in skip:
            continue
        try:
            if not _blank(table.column(index)[row].as_py()):
                return False
        except (UnicodeDecodeError, pa.ArrowException):
            return False
    return True


def _parquet_rows(
    path: Path, problems: Problems, model: type[Row], rejected: _Rejected
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a Parquet table (a file or a folder of parts), numbered 1, 2, ... across the
    parts; problems of a part's schema name the part at line 0 (docs/contract.md §1)."""
    name = str(path)
    try:
        files = parquetio.parts(path)
    except parquetio.PartsError as exc:
        problems.add(str(exc.path), 0, "(table)", exc.message)
        rejected.whole = True
        return
    kinds = field_kinds(model)
    needed = required_columns(model)
    line = 0
    for part in files:
        try:
            with pq.ParquetFile(part) as handle:
                table = handle.read()
        except (pa.ArrowException, OSError) as exc:
            problems.add(
                str(part), 0, "(table)", f"not a readable Parquet file: {_arrow_reason(exc)}"
            )
            rejected.whole = True
            return
        where = str(part)
        names = [c.strip() for c in table.column_names]
        first_seen, header_ok = _column_positions(names, needed, problems, where, 0, "schema")
        used = {c: first_seen[c] - 1 for c in kinds if c in first_seen}
        for column, index in used.items():
            wrong = parquetio.column_problem(kinds[column], table.column(index).type)
            if wrong is not None:
                problems.add(where, 0, column, wrong)
                header_ok = False
        if not header_ok:
            rejected.whole = True  # a part's rows are not read: none of the table's keys known
            line += table.num_rows
            continue
        bad: dict[int, tuple[str, str]] = {}
        values: dict[str, list[Any]] = {}
        for column, index in used.items():
            data = parquetio.decoded(table.column(index))
            if pa.types.is_string(data.type) or pa.types.is_large_string(data.type):
                values[column] = _texts(data, column, bad)
            else:
                values[column] = data.to_pylist()
        skip = set(used.values())
        for i in range(table.num_rows):
            raw = {column: cells[i] for column, cells in values.items()}
            if i in bad:
                problems.add(name, line + i + 1, bad[i][0], bad[i][1])
                rejected.rows.append(raw)
                continue
            if all(_blank(v) for v in raw.values()) and _other_cells_blank(table, i, skip):
                continue  # a row of missing values: skipped, as a blank CSV line is
            yield line + i + 1, raw
        line += table.num_rows


def _raw_rows(
    path: Path, problems: Problems, model: type[Row], rejected: _Rejected
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, mapping)`` for every readable data row of a CSV, JSONL or Parquet table.

    Rows that cannot be read (bad bytes, wrong number of cells) are reported and
    their raw mappings go to ``rejected.rows`` (so references to them are not
    reported again); reading goes on with the next row. A table refused as a whole
    (its header, its schema) sets ``rejected.whole``.
    """
    if path.suffix == CSV:
        yield from _csv_rows(path, problems, required_columns(model), rejected)
    elif path.suffix == parquetio.SUFFIX:
        yield from _parquet_rows(path, problems, model, rejected)
    else:
        yield from _jsonl_rows(path, problems, rejected)


def error_text(err: ErrorDetails) -> str:
    """One pydantic error as the loaders print it: the message without pydantic's
    ``Value error, `` / ``Assertion failed, `` prefix (the Spark validator prints the same)."""
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err.get("type") == "missing" or ("input" in err and err["input"] is None):
        return "required value is missing"
    return msg


def read_valid_table(
    folder: Path,
    table: str,
    region: str = DEFAULT_REGION,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> list[Row]:
    """The rows of one table of ``folder`` (any form), each checked by the contract's row
    rules (docs/contract.md §1); a defect raises :class:`DataError` with the usual
    file:line:field messages. References to other tables are not checked here
    (:func:`load_folder` checks the folder as a whole).

    >>> from spillover.examples import jiang_records_path
    >>> rows = read_valid_table(jiang_records_path(), "records")
    >>> sorted(r.record_id for r in rows)[:2]
    ['QC-R-XU', 'QT-R-J']
    """
    check_region(region)
    problems = Problems(max_errors)
    found = table_paths(folder, table)
    if not found:
        problems.add(str(folder / f"{table}{CSV}"), 0, "(table)", f"table {table!r} is missing")
        raise problems.error()
    if len(found) > 1:
        names = " and ".join(p.name for p in found)
        problems.add(str(found[0]), 0, "(table)", f"both {names}: keep one form of the table")
        raise problems.error()
    rows = read_table(found[0], TABLES[table], problems, region)
    if problems.total:
        raise problems.error()
    return [located.row for located in rows]


def read_table(
    path: Path, model: type[Row], problems: Problems, region: str, rejected: set[str] | None = None
) -> list[Located]:
    """Validate every row of one file; problems go to ``problems``.

    The first column's raw value of every refused row goes to ``rejected``, so that
    references to it are not reported a second time as unknown.
    """
    rows, keys, _ = _read_table(path, model, problems, region)
    if rejected is not None:
        rejected.update(keys)
    return rows


def _read_table(
    path: Path, model: type[Row], problems: Problems, region: str
) -> tuple[list[Located], set[str], bool]:
    """:func:`read_table`: the rows, the keys of the refused rows and whether the table
    was refused as a whole."""
    name = str(path)
    out: list[Located] = []
    key = next(iter(model.model_fields))
    context = {"region": region}
    unreadable = _Rejected()
    try:
        for line, raw in _raw_rows(path, problems, model, unreadable):
            try:
                row = model.model_validate(raw, context=context)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err.get("loc", ())) or "(row)"
                    problems.add(name, line, loc, error_text(err))
                unreadable.rows.append(raw)
                continue
            out.append(Located(name, line, row))
    except OSError as exc:
        problems.add(name, 0, "(table)", f"cannot be read: {exc.strerror or exc}")
        unreadable.whole = True
    keys = {raw[key].strip() for raw in unreadable.rows if isinstance(raw.get(key), str)}
    return out, keys, unreadable.whole


def load_folder(
    folder: str | Path,
    *,
    region: str = DEFAULT_REGION,
    max_errors: int = DEFAULT_MAX_ERRORS,
    unnamed_loans: bool = False,
) -> Dataset:
    """Load and validate a data folder; raise :class:`DataError` listing every defect.

    A loan that names its borrower only by a record that resolves to no one names no one:
    it is out of the graph, and so out of the dataset. With ``unnamed_loans`` it is kept
    all the same, with the borrower ``""``, after the other loans, and its links after
    the other links (for writing every row of the folder, as the export and
    ``remedy --apply`` do; such a dataset is not for a graph). The same dataset as
    :func:`spillover.data.export.with_unnamed_loans` of the one loaded without, from one
    read of the tables.

    >>> from spillover.examples import jiang_case_path
    >>> data = load_folder(jiang_case_path())
    >>> data.people["jiang"].city
    'Hangzhou'
    """
    folder = Path(folder)
    region = checked_region(region)
    if not folder.is_dir():
        what = "does not exist" if not os.path.lexists(folder) else "is not a directory"
        raise DataError([Problem(str(folder), 0, "(folder)", f"the data folder {what}")])
    problems = Problems(max_errors)
    tables: dict[str, list[Located]] = {}
    rejected: set[str] = set()
    refused_tables: set[str] = set()
    for table, model in TABLES.items():
        both = table_paths(folder, table)
        for other in both[1:]:
            problems.add(
                str(other),
                0,
                "(table)",
                f"both {both[0].name} and {other.name} exist; keep one",
            )
        odd = odd_table_paths(folder, table)
        for candidate in odd:
            problems.add(
                str(candidate),
                0,
                "(table)",
                f"{candidate.name} is {_what_is(candidate)}, not a file",
            )
        path = table_file(folder, table)
        if path is None:
            if table in REQUIRED_TABLES and not odd:
                problems.add(
                    str(folder / f"{table}{CSV}"),
                    0,
                    "(table)",
                    f"required table {table!r} is missing ({_forms(table)})",
                )
            if table in REQUIRED_TABLES or odd:
                # refused as a whole: references to its rows are not unknown rows too
                refused_tables.add(table)
            tables[table] = []
            continue
        tables[table], keys, whole = _read_table(path, model, problems, region)
        rejected.update(keys)
        if whole:
            refused_tables.add(table)
    dataset = _link(tables, problems, rejected, frozenset(refused_tables), unnamed_loans)
    if problems.total:
        raise problems.error()
    return dataset


def _forms(table: str) -> str:
    """``people.csv, people.jsonl or people.parquet``."""
    names = [f"{table}{suffix}" for suffix in SUFFIXES]
    return ", ".join(names[:-1]) + " or " + names[-1]


def checked_region(region: str) -> str:
    """The region code of ``--region`` checked and normalized (``cn`` -> ``CN``); an
    unknown one raises :class:`~spillover.errors.OptionError` naming ``--region``."""
    try:
        return check_region(region)
    except ValueError as exc:
        raise OptionError("--region", str(exc)) from None


def _unique(rows: list[Located], key: str, problems: Problems) -> dict[str, Located]:
    seen: dict[str, Located] = {}
    for item in rows:
        value = getattr(item.row, key)
        if value in seen:
            first = seen[value]
            problems.add(
                item.file, item.line, key, f"duplicate {key} {value!r} (first on line {first.line})"
            )
            continue
        seen[value] = item
    return seen


#: the table a reference names, by the kind of key it is
_TABLE_OF_KEY = {
    "person_id": "people",
    "platform_id": "platforms",
    "loan_id": "loans",
    "record_id": "records",
    "entry_id": "blacklist",
}


@dataclass(frozen=True, slots=True)
class _Linking:
    """What the second pass checks references against: the problems found so far, the
    keys of refused rows and the tables refused as a whole (references to them are not
    reported again as unknown) and the rows by their keys."""

    problems: Problems
    rejected: set[str]
    refused_tables: frozenset[str]
    people: dict[str, Located]
    platforms: dict[str, Located]
    loans: dict[str, Located]
    entries: dict[str, Located]

    def known(
        self, item: Located, field: str, value: str | None, pool: dict[str, Located], what: str
    ) -> None:
        """A problem when ``value`` is given but not a key of ``pool`` (nor refused)."""
        if value is None or value in pool or value in self.rejected:
            return
        if _TABLE_OF_KEY[what] not in self.refused_tables:
            self.problems.add(item.file, item.line, field, f"unknown {what} {value!r}")


def _link(
    tables: dict[str, list[Located]],
    problems: Problems,
    rejected: set[str],
    refused_tables: frozenset[str],
    unnamed_loans: bool = False,
) -> Dataset:
    """Second pass: keys unique, references known, phone periods disjoint, copy chains
    acyclic; one step per table, in file order (so the problems come in that order)."""
    state = _Linking(
        problems,
        rejected,
        refused_tables,
        people=_unique(tables["people"], "person_id", problems),
        platforms=_unique(tables["platforms"], "platform_id", problems),
        loans=_unique(tables["loans"], "loan_id", problems),
        entries=_unique(tables["blacklist"], "entry_id", problems),
    )
    periods = _link_phones(state, tables["phones"])
    records = _link_records(state, tables["records"])
    matches = _link_matches(state, tables["matches"], records)
    resolved = _resolve(records, matches)
    _link_loans(state, records, resolved)
    _link_loan_links(state, tables["loan_links"])
    _link_blacklist(state, records)
    _link_sharing(state, tables["sharing"])
    if problems.total:
        return Dataset({}, {}, {}, {})
    return _linked_dataset(state, tables, periods, records, resolved, unnamed_loans)


def _link_phones(state: _Linking, rows: list[Located]) -> dict[str, list[Located]]:
    """Owners known; the owner periods of one number do not overlap. Returns the periods
    of each number."""
    periods: dict[str, list[Located]] = defaultdict(list)
    for item in rows:
        state.known(item, "owner_id", item.row.owner_id, state.people, "person_id")
        periods[item.row.phone].append(item)
    for phone, items in periods.items():
        ordered = sorted(items, key=lambda i: (i.row.since is not None, i.row.since or 0, i.line))
        for before, after in itertools.pairwise(ordered):
            if (
                before.row.until is None
                or after.row.since is None
                or before.row.until >= after.row.since
            ):
                state.problems.add(
                    after.file,
                    after.line,
                    "since",
                    f"owner period of {phone} overlaps the one on line {before.line}",
                )
    return periods


def _link_records(state: _Linking, rows: list[Located]) -> dict[str, Located]:
    """Record ids unique; their platforms and persons known."""
    records = _unique(rows, "record_id", state.problems)
    for item in records.values():
        state.known(item, "platform_id", item.row.platform_id, state.platforms, "platform_id")
        state.known(item, "person_id", item.row.person_id, state.people, "person_id")
    return records


def _link_matches(
    state: _Linking, rows: list[Located], records: dict[str, Located]
) -> dict[str, Located]:
    """One match per record, of a known record, to a known person that agrees with the
    record's own ``person_id``, never matched with itself."""
    matches = _unique(rows, "record_id", state.problems)
    for item in matches.values():
        row = item.row
        state.known(item, "record_id", row.record_id, records, "record_id")
        state.known(item, "person_id", row.person_id, state.people, "person_id")
        state.known(item, "matched_with", row.matched_with, records, "record_id")
        given = records[row.record_id].row.person_id if row.record_id in records else None
        if given is not None and given != row.person_id:
            state.problems.add(
                item.file,
                item.line,
                "person_id",
                f"record {row.record_id!r} is person {given!r} by records.person_id, "
                f"not {row.person_id!r}",
            )
        if row.matched_with is not None and row.matched_with == row.record_id:
            state.problems.add(item.file, item.line, "matched_with", "a record cannot match itself")
    return matches


def _link_loans(state: _Linking, records: dict[str, Located], resolved: dict[str, Match]) -> None:
    """Platforms and borrowers known; a borrower record held by the loan's platform and
    resolving to the loan's borrower."""
    for item in state.loans.values():
        row = item.row
        state.known(item, "platform_id", row.platform_id, state.platforms, "platform_id")
        state.known(item, "borrower_id", row.borrower_id, state.people, "person_id")
        record_id = row.borrower_record
        state.known(item, "borrower_record", record_id, records, "record_id")
        if record_id not in records:
            continue
        held_by = records[record_id].row.platform_id
        if held_by != row.platform_id:
            state.problems.add(
                item.file,
                item.line,
                "borrower_record",
                f"record {record_id!r} is held by {held_by!r}, not by the loan's "
                f"platform {row.platform_id!r}",
            )
        person = resolved[record_id].person_id if record_id in resolved else None
        if row.borrower_id is not None and person != row.borrower_id:
            state.problems.add(
                item.file,
                item.line,
                "borrower_record",
                f"record {record_id!r} resolves to "
                + (f"person {person!r}" if person else "no person")
                + f", not to borrower_id {row.borrower_id!r}",
            )


def _link_loan_links(state: _Linking, rows: list[Located]) -> None:
    """Loans known; no link given twice."""
    link_keys: dict[tuple[str, str, str], int] = {}
    for item in rows:
        state.known(item, "loan_id", item.row.loan_id, state.loans, "loan_id")
        key = (item.row.loan_id, item.row.phone, item.row.role.value)
        if key in link_keys:
            state.problems.add(
                item.file, item.line, "role", f"duplicate link (first on line {link_keys[key]})"
            )
        link_keys.setdefault(key, item.line)


def _link_blacklist(state: _Linking, records: dict[str, Located]) -> None:
    """Platforms, copied entries and subjects known; copy chains end."""
    entries = state.entries
    for item in entries.values():
        state.known(item, "platform_id", item.row.platform_id, state.platforms, "platform_id")
        state.known(item, "copied_from", item.row.copied_from, entries, "entry_id")
        if item.row.subject_kind == SubjectKind.PERSON:
            state.known(item, "subject", item.row.subject, state.people, "person_id")
        elif item.row.subject_kind == SubjectKind.RECORD:
            state.known(item, "subject", item.row.subject, records, "record_id")
    loops = _loop_entry_points({k: v.row.copied_from for k, v in entries.items()})
    for entry_id, item in entries.items():
        if entry_id in loops:
            state.problems.add(
                item.file,
                item.line,
                "copied_from",
                f"copy chain of {entry_id!r} loops back to {loops[entry_id]!r}",
            )


def _link_sharing(state: _Linking, rows: list[Located]) -> None:
    """Platforms known; no platform shares with itself; no pair given twice."""
    pairs: dict[tuple[str, str], int] = {}
    for item in rows:
        platforms = state.platforms
        state.known(item, "from_platform", item.row.from_platform, platforms, "platform_id")
        state.known(item, "to_platform", item.row.to_platform, platforms, "platform_id")
        pair = (item.row.from_platform, item.row.to_platform)
        if pair[0] == pair[1]:
            state.problems.add(
                item.file, item.line, "to_platform", "a platform cannot share with itself"
            )
        elif pair in pairs:
            state.problems.add(
                item.file,
                item.line,
                "to_platform",
                f"duplicate sharing (first on line {pairs[pair]})",
            )
        pairs.setdefault(pair, item.line)


def _linked_dataset(
    state: _Linking,
    tables: dict[str, list[Located]],
    periods: dict[str, list[Located]],
    records: dict[str, Located],
    resolved: dict[str, Match],
    unnamed_loans: bool = False,
) -> Dataset:
    """The checked rows as a :class:`~spillover.facts.model.Dataset` (``unnamed_loans``:
    :func:`load_folder`)."""
    # a loan on a record that resolves to no person names no one: it stays out of the graph
    graph_loans: dict[str, Loan] = {}
    unnamed: dict[str, Loan] = {}
    for k, v in state.loans.items():
        loan = _loan(v.row, resolved)
        if loan is not None:
            graph_loans[k] = loan
        elif unnamed_loans:
            unnamed[k] = loan_of(v.row, "")
    return Dataset(
        people={k: Person(**v.row.model_dump()) for k, v in state.people.items()},
        platforms={k: Platform(**v.row.model_dump()) for k, v in state.platforms.items()},
        phone_periods={
            phone: tuple(
                PhonePeriod(
                    i.row.phone, i.row.owner_id, bool(i.row.verified), i.row.since, i.row.until
                )
                for i in sorted(items, key=lambda i: (i.row.since is not None, i.row.since or 0))
            )
            for phone, items in periods.items()
        },
        loans={**graph_loans, **unnamed},
        links=(
            *(
                LoanLink(**i.row.model_dump())
                for i in tables["loan_links"]
                if i.row.loan_id in graph_loans
            ),
            *(
                LoanLink(**i.row.model_dump())
                for i in tables["loan_links"]
                if i.row.loan_id in unnamed
            ),
        ),
        entries={k: Entry(**v.row.model_dump()) for k, v in state.entries.items()},
        sharing=tuple(Sharing(**i.row.model_dump()) for i in tables["sharing"]),
        records={k: Record(**v.row.model_dump()) for k, v in records.items()},
        matches=resolved,
    )


def _resolve(records: dict[str, Located], matches: dict[str, Located]) -> dict[str, Match]:
    """Each record's person (docs/contract.md §1): ``records.person_id`` when given
    (``known``), else its ``matches`` row; records with neither stay unresolved."""
    out: dict[str, Match] = {}
    for record_id, item in records.items():
        if item.row.person_id is not None:
            out[record_id] = Match(record_id, item.row.person_id, 1.0, MatchKey.KNOWN)
    for record_id, item in matches.items():
        row = item.row
        if record_id in out or record_id not in records:
            continue
        out[record_id] = Match(
            record_id,
            row.person_id,
            row.match_probability,
            row.matched_by,
            row.matched_with,
            row.match_weight,
            tuple(
                MatchLevel(w.field, w.level, w.agreed, w.log2_bayes_factor)
                for w in row.waterfall or ()
            ),
        )
    return out


def _loan(row: Any, resolved: dict[str, Match]) -> Loan | None:
    """The loan of a validated row, its borrower resolved (None: an unresolved record)."""
    match = resolved.get(row.borrower_record) if row.borrower_record is not None else None
    borrower = row.borrower_id if match is None else match.person_id
    if borrower is None:
        return None
    return loan_of(row, borrower, None if match is None else match.matched_by.value)


def loan_of(row: Any, borrower: str, matched_by: str | None = None) -> Loan:
    """The :class:`Loan` of a validated ``loans`` row with the ``borrower`` given (its
    record's person, its ``borrower_id``, or ``""`` for the export's loan on an unresolved
    record) and, when a record named the borrower, that record's ``matched_by``."""
    return Loan(
        row.loan_id,
        row.platform_id,
        borrower,
        row.applied_at,
        row.status,
        row.applicant_phone,
        row.phone_verified,
        row.amount,
        row.status_at,
        row.borrower_record,
        matched_by,
    )


def _loop_entry_points(parent_of: dict[str, str | None]) -> dict[str, str]:
    """For every entry whose copy chain runs into a loop: the first entry met twice when
    following the chain from it (an entry on the loop: itself). Linear time."""
    done: dict[str, str | None] = {}  # entry -> loop entry point, or None (chain ends)
    for start in parent_of:
        if start in done:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        node: str | None = start
        while node is not None and node in parent_of and node not in done:
            if node in on_path:
                break
            on_path[node] = len(path)
            path.append(node)
            node = parent_of[node]
        if node is not None and node in on_path:  # a new loop: path[k:] is the loop
            k = on_path[node]
            for member in path[k:]:
                done[member] = member
            tail_answer: str | None = node
            path = path[:k]
        elif node is not None and node in done:
            tail_answer = done[node]
        else:
            tail_answer = None
        for member in path:
            done[member] = tail_answer
    return {k: v for k, v in done.items() if v is not None}
