"""Read and validate a data folder (CONTRACT §1) into a :class:`~spillover.model.Dataset`.

The load is all or nothing: every defect found is reported (up to a cap per
file) as ``file:line: field: what is wrong`` and nothing of a refused folder is
returned. Validation runs in two passes: each row on its own (pydantic models in
:mod:`spillover.rows`), then every reference across tables.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import DataError, Problem
from .model import (
    Dataset,
    Entry,
    Loan,
    LoanLink,
    Person,
    PhonePeriod,
    Platform,
    Sharing,
    SubjectKind,
)
from .phones import DEFAULT_REGION
from .rows import REQUIRED_TABLES, TABLES, Row, required_columns

__all__ = ["DEFAULT_MAX_ERRORS", "Located", "load_folder", "read_table", "table_file"]


DEFAULT_MAX_ERRORS = 50


@dataclass(frozen=True, slots=True)
class Located:
    """A validated row and where it came from."""

    file: str
    line: int
    row: Any


class _Problems:
    """Collects problems with a cap per file."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[Problem] = []
        self.per_file: dict[str, int] = defaultdict(int)
        self.truncated = False

    def add(self, file: str, line: int, field: str, message: str) -> None:
        if self.per_file[file] >= self.cap:
            self.truncated = True
            return
        self.per_file[file] += 1
        self.items.append(Problem(file, line, field, message))


def table_file(folder: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``folder`` (``NAME.csv`` or ``NAME.jsonl``), if any."""
    for suffix in (".csv", ".jsonl"):
        candidate = folder / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _raw_rows(path: Path, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, mapping)`` for every data row of a CSV or JSONL file."""
    name = str(path)
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                header = next(reader)
            except StopIteration:
                problems.add(name, 1, "(header)", "file is empty; a header row is required")
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                problems.add(name, 1, "(header)", f"unreadable: {exc}")
                return
            header = [h.strip() for h in header]
            line = reader.line_num
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except (UnicodeDecodeError, csv.Error) as exc:
                    problems.add(name, line + 1, "(row)", f"unreadable: {exc}")
                    return
                line = reader.line_num
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    problems.add(
                        name, line, "(row)", f"expected {len(header)} cells, found {len(values)}"
                    )
                    continue
                yield line, dict(zip(header, values, strict=True))
    else:
        with path.open(encoding="utf-8-sig") as handle:
            line = 0
            while True:
                try:
                    text = handle.readline()
                except UnicodeDecodeError as exc:
                    problems.add(name, line + 1, "(row)", f"not UTF-8: {exc}")
                    return
                if not text:
                    return
                line += 1
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    problems.add(name, line, "(row)", f"not valid JSON: {exc.msg}")
                    continue
                if not isinstance(value, dict):
                    problems.add(name, line, "(row)", "each line must be a JSON object")
                    continue
                yield line, value


def _error_text(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err.get("type") == "missing" or ("input" in err and err["input"] is None):
        return "required value is missing"
    return msg


def read_table(
    path: Path, model: type[Row], problems: _Problems, region: str, rejected: set[str] | None = None
) -> list[Located]:
    """Validate every row of one file; problems go to ``problems``.

    The first column's raw value of every refused row goes to ``rejected``, so that
    references to it are not reported a second time as unknown.
    """
    name = str(path)
    out: list[Located] = []
    needed = required_columns(model)
    key = next(iter(model.model_fields))
    checked_header = False
    context = {"region": region}
    for line, raw in _raw_rows(path, problems):
        if not checked_header and path.suffix == ".csv":
            missing = [c for c in needed if c not in raw]
            for column in missing:
                problems.add(name, 1, column, "required column is missing from the header")
            if missing:
                return out
        checked_header = True
        try:
            row = model.model_validate(raw, context=context)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err.get("loc", ())) or "(row)"
                problems.add(name, line, loc, _error_text(err))
            if rejected is not None and isinstance(raw.get(key), str):
                rejected.add(raw[key].strip())
            continue
        out.append(Located(name, line, row))
    return out


def load_folder(
    folder: str | Path, *, region: str = DEFAULT_REGION, max_errors: int = DEFAULT_MAX_ERRORS
) -> Dataset:
    """Load and validate a data folder; raise :class:`DataError` listing every defect.

    >>> from spillover.examples import jiang_case_path
    >>> data = load_folder(jiang_case_path())
    >>> data.people["jiang"].city
    'Hangzhou'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError([Problem(str(folder), 0, "(folder)", "not a directory")])
    problems = _Problems(max_errors)
    tables: dict[str, list[Located]] = {}
    rejected: set[str] = set()
    for table, model in TABLES.items():
        both = [
            folder / f"{table}{s}" for s in (".csv", ".jsonl") if (folder / f"{table}{s}").is_file()
        ]
        if len(both) > 1:
            problems.add(
                str(both[1]),
                0,
                "(table)",
                f"both {both[0].name} and {both[1].name} exist; keep one",
            )
        path = table_file(folder, table)
        if path is None:
            if table in REQUIRED_TABLES:
                problems.add(
                    str(folder / f"{table}.csv"),
                    0,
                    "(table)",
                    f"required table {table!r} is missing ({table}.csv or {table}.jsonl)",
                )
            tables[table] = []
            continue
        tables[table] = read_table(path, model, problems, region, rejected)
    dataset = _link(tables, problems, rejected)
    if problems.items:
        raise DataError(problems.items, problems.truncated)
    return dataset


def _unique(rows: list[Located], key: str, problems: _Problems) -> dict[str, Located]:
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


def _link(tables: dict[str, list[Located]], problems: _Problems, rejected: set[str]) -> Dataset:
    """Second pass: keys unique, references known, phone periods disjoint, copy chains acyclic."""
    people = _unique(tables["people"], "person_id", problems)
    platforms = _unique(tables["platforms"], "platform_id", problems)
    loans = _unique(tables["loans"], "loan_id", problems)
    entries = _unique(tables["blacklist"], "entry_id", problems)

    def known(
        item: Located, field: str, value: str | None, pool: dict[str, Located], what: str
    ) -> None:
        if value is not None and value not in pool and value not in rejected:
            problems.add(item.file, item.line, field, f"unknown {what} {value!r}")

    periods: dict[str, list[Located]] = defaultdict(list)
    for item in tables["phones"]:
        known(item, "owner_id", item.row.owner_id, people, "person_id")
        periods[item.row.phone].append(item)
    for phone, items in periods.items():
        ordered = sorted(items, key=lambda i: (i.row.since is not None, i.row.since or 0, i.line))
        for before, after in itertools.pairwise(ordered):
            if (
                before.row.until is None
                or after.row.since is None
                or before.row.until >= after.row.since
            ):
                problems.add(
                    after.file,
                    after.line,
                    "since",
                    f"owner period of {phone} overlaps the one on line {before.line}",
                )
    for item in loans.values():
        known(item, "platform_id", item.row.platform_id, platforms, "platform_id")
        known(item, "borrower_id", item.row.borrower_id, people, "person_id")
    link_keys: dict[tuple[str, str, str], int] = {}
    for item in tables["loan_links"]:
        known(item, "loan_id", item.row.loan_id, loans, "loan_id")
        key = (item.row.loan_id, item.row.phone, item.row.role.value)
        if key in link_keys:
            problems.add(
                item.file, item.line, "role", f"duplicate link (first on line {link_keys[key]})"
            )
        link_keys.setdefault(key, item.line)
    for item in entries.values():
        known(item, "platform_id", item.row.platform_id, platforms, "platform_id")
        known(item, "copied_from", item.row.copied_from, entries, "entry_id")
        if item.row.subject_kind == SubjectKind.PERSON:
            known(item, "subject", item.row.subject, people, "person_id")
    for entry_id, item in entries.items():
        seen = {entry_id}
        parent = item.row.copied_from
        while parent is not None and parent in entries:
            if parent in seen:
                problems.add(
                    item.file,
                    item.line,
                    "copied_from",
                    f"copy chain of {entry_id!r} loops back to {parent!r}",
                )
                break
            seen.add(parent)
            parent = entries[parent].row.copied_from
    pairs: dict[tuple[str, str], int] = {}
    for item in tables["sharing"]:
        known(item, "from_platform", item.row.from_platform, platforms, "platform_id")
        known(item, "to_platform", item.row.to_platform, platforms, "platform_id")
        pair = (item.row.from_platform, item.row.to_platform)
        if pair[0] == pair[1]:
            problems.add(item.file, item.line, "to_platform", "a platform cannot share with itself")
        elif pair in pairs:
            problems.add(
                item.file,
                item.line,
                "to_platform",
                f"duplicate sharing (first on line {pairs[pair]})",
            )
        pairs.setdefault(pair, item.line)

    if problems.items:
        return Dataset({}, {}, {}, {})
    return Dataset(
        people={k: Person(**v.row.model_dump()) for k, v in people.items()},
        platforms={k: Platform(**v.row.model_dump()) for k, v in platforms.items()},
        phone_periods={
            phone: tuple(
                PhonePeriod(
                    i.row.phone, i.row.owner_id, bool(i.row.verified), i.row.since, i.row.until
                )
                for i in sorted(items, key=lambda i: (i.row.since is not None, i.row.since or 0))
            )
            for phone, items in periods.items()
        },
        loans={k: Loan(**v.row.model_dump()) for k, v in loans.items()},
        links=tuple(LoanLink(**i.row.model_dump()) for i in tables["loan_links"]),
        entries={k: Entry(**v.row.model_dump()) for k, v in entries.items()},
        sharing=tuple(Sharing(**i.row.model_dump()) for i in tables["sharing"]),
    )
