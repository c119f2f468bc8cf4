"""Fuzzing the loaders: any folder is either loaded or refused with a DataError, never another
exception, and the fast (Arrow) and the exact loader agree on it (same data, or the same problems).

The folders are the Jiang case with a few random edits: a cell set to a tricky value,
stray bytes, lines duplicated, dropped or cut, tables turned into JSONL with odd JSON
values. The Parquet form of each folder (every table that converts, tests/parquet_forms.py)
gets the same answer from both loaders as the CSV form. Seeded (``derandomize``) so that CI runs the same examples every time;
``SPILLOVER_FUZZ_EXAMPLES`` raises the count for a longer local run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parquet_forms import outcome as parquet_outcome
from parquet_forms import to_parquet
from scenario import Scenario
from spillover.data import fast as fastload
from spillover.data.exact import load_folder
from spillover.errors import DataError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.columns import columns_from_dataset
from spillover.facts.phones import display_phone, mobile_pattern, normalize_phone
from spillover.synth.population import _MOBILE_PREFIXES

TABLES = ("people", "platforms", "phones", "loans", "loan_links", "blacklist", "sharing")
#: the tables edited in the records version of the case (examples/jiang_records)
RECORD_TABLES = ("records", "matches", "loans", "blacklist", "people", "platforms")
EXAMPLES = int(os.environ.get("SPILLOVER_FUZZ_EXAMPLES", "250"))

#: values that have broken (or nearly broken) a loader
ATOMS = [
    "", " ", "\t", '"', '""', ",", "\n", "\r", "\r\n", "\x00", "\x1c", "\u3000", "\ufeff", "é",
    "𝟙", "١٢٣", "０", "=1+1", "0000-01-01", "1899-12-31", "1900-01-01", "2100-12-31",
    "2101-01-01", "2023-02-29", "2024-02-29", "9999-12-31", "2023-1-01", "1e400", "nan", "NaN",
    "inf", "-1", "-0", "0.5", ".5", "5.", "1_000", "9" * 400, "1506800ABCD", "12345",
    "+8613957112345", "13957112345", " 13957112345", "14012345678", "+86 139 5711 2345",
    "139-5711-2345", "+1 650 253 0000", "+999 123", "330106198203154015", "330106198203154016",
    "33010619820315401x", "jiang", "xu_yan", "li_na", "quickcash", "tianyan", "E-QC-PH",
    "E-TY-J", "E-QT-J", "XY-QC-1", "person", "phone", "true", "FALSE", "yes", "2", "bank",
    "online_lender", "repaid", "defaulted", "reference",
]  # fmt: skip

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ATOMS),
    st.lists(st.integers(), max_size=2),
    st.just({"a": 1}),
)

CELL_TEXT = st.one_of(
    st.sampled_from(ATOMS),
    st.lists(st.sampled_from(ATOMS), min_size=2, max_size=3).map("".join),
    st.text(max_size=6),
)

#: values that matter to records, matches and the loans and entries that name a record
RECORD_ATOMS = [
    *ATOMS, "QC-R-XU", "TY-R-XU", "QT-R-J", "record", "known", "phone_only", "name_and_phone",
    "new_identity", "1", "0", "1.0", "1.5", "0.62", "-6.1", "+0.5", "1e-3", "33010619820315401X",
    "33010619820315401x", "xiaoyu", "[]", "[{}]", "null",
    '[{"field": "phone", "level": "exact", "agreed": true, "log2_bayes_factor": 8.3}]',
    '[{"field": "phone", "level": "exact", "agreed": true, "log2_bayes_factor": "8.3"}]',
    '[{"field": "email", "level": "exact", "agreed": true, "log2_bayes_factor": 8.3}]',
]  # fmt: skip

RECORD_CELL_TEXT = st.one_of(
    st.sampled_from(RECORD_ATOMS),
    st.lists(st.sampled_from(RECORD_ATOMS), min_size=2, max_size=3).map("".join),
    st.text(max_size=6),
)


def _rows(folder: Path, table: str) -> list[list[str]]:
    with (folder / f"{table}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def edits(
    draw: st.DrawFn, tables: tuple[str, ...] = TABLES, cells: Any = CELL_TEXT
) -> list[tuple[Any, ...]]:
    """A few edits, each a tuple naming what to do; applied by :func:`apply`."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(tables))
        kind = draw(
            st.sampled_from(["cell", "cell", "cell", "bytes", "line", "cut", "jsonl", "header"])
        )
        row, col = draw(st.integers(0, 20)), draw(st.integers(0, 10))
        if kind == "cell":
            out.append((kind, table, row, col, draw(cells)))
        elif kind == "bytes":
            out.append(
                (kind, table, draw(st.integers(0, 4000)), draw(st.binary(min_size=1, max_size=3)))
            )
        elif kind == "line":
            out.append((kind, table, row, draw(st.integers(0, 20)), draw(st.booleans())))
        elif kind == "cut":
            out.append((kind, table, draw(st.integers(0, 4000))))
        elif kind == "jsonl":
            field = draw(st.one_of(st.integers(0, 10), st.just("raw")))
            value = draw(st.text(max_size=8)) if field == "raw" else draw(JSON_VALUES)
            out.append((kind, table, row, field, value))
        else:
            out.append((kind, table, col, draw(st.sampled_from(["dup", "pad", "drop", "empty"]))))
    return out


def apply(folder: Path, edit: tuple[Any, ...]) -> None:
    kind, table = edit[0], edit[1]
    path = folder / f"{table}.csv"
    if not path.is_file():
        return  # already turned into JSONL (or removed) by an earlier edit
    if kind in ("cell", "header", "jsonl"):
        try:
            rows = _rows(folder, table)
        except (UnicodeDecodeError, csv.Error):
            return  # an earlier edit broke the file; leave it so
        if not rows:
            return
    if kind == "cell":
        _, _, row, col, value = edit
        target = rows[row % len(rows)]
        if target:
            target[col % len(target)] = value
        path.write_bytes(_csv_bytes(rows))
    elif kind == "header":
        _, _, col, how = edit
        header = rows[0]
        if not header:
            return
        name = header[col % len(header)]
        if how == "dup":
            rows = [[*r, r[col % len(r)] if r else ""] for r in rows]
        elif how == "pad":
            header[col % len(header)] = f" {name} "
        elif how == "drop":
            rows = [[c for i, c in enumerate(r) if i != col % len(header)] for r in rows]
        else:
            header[col % len(header)] = ""
        path.write_bytes(_csv_bytes(rows))
    elif kind == "bytes":
        _, _, at, data = edit
        old = path.read_bytes()
        at %= len(old) + 1
        path.write_bytes(old[:at] + data + old[at:])
    elif kind == "line":
        _, _, row, other, copy = edit
        lines = path.read_bytes().split(b"\n")
        if copy:
            lines.insert(row % len(lines), lines[other % len(lines)])
        else:
            del lines[row % len(lines)]
        path.write_bytes(b"\n".join(lines))
    elif kind == "cut":
        old = path.read_bytes()
        path.write_bytes(old[: edit[2] % (len(old) + 1)])
    else:  # to JSONL, with one field (or a whole line) replaced
        _, _, row, field, value = edit
        header, body = rows[0], rows[1:]
        objects: list[dict[str, Any]] = [
            {k: v for k, v in zip(header, r, strict=False) if v != ""} for r in body
        ]
        lines = [json.dumps(o, ensure_ascii=False) for o in objects]
        if lines:
            i = row % len(lines)
            if field == "raw":
                lines[i] = value
            else:
                key = header[field % len(header)] if header else "x"
                lines[i] = json.dumps({**objects[i], key: value}, ensure_ascii=False)
        path.unlink()
        (folder / f"{table}.jsonl").write_bytes(
            "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n"
        )


def outcome(load: Any, folder: Path) -> tuple[str, Any]:
    """``("ok", dataset)`` or ``("refused", message)``; any other exception fails the test."""
    try:
        return "ok", load(folder)
    except DataError as exc:
        return "refused", (str(exc), exc.total)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SPILLOVER_FUZZ_EXAMPLES" not in os.environ,  # a long local run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits())
def test_loaders_refuse_cleanly_and_agree(changes: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(jiang_case_path(), folder)
        for edit in changes:
            apply(folder, edit)
        exact = outcome(load_folder, folder)
        fast = outcome(fastload.read_dataset, folder)
        assert fast == exact
        columns = outcome(fastload.read_columns, folder)
        assert columns[0] == exact[0]
        if exact[0] == "refused":
            assert columns[1] == exact[1]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SPILLOVER_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits(RECORD_TABLES, RECORD_CELL_TEXT))
def test_loaders_agree_on_records_and_matches(changes: list[tuple[Any, ...]]) -> None:
    """The records version of the case (records, matches, loans and entries naming a
    record), edited: the fast loader's checks of identity linkage give the exact loader's
    answer (same dataset and columns, or the same problems)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(jiang_records_path(), folder, ignore=shutil.ignore_patterns("*.md"))
        for edit in changes:
            apply(folder, edit)
        exact = outcome(load_folder, folder)
        assert outcome(fastload.read_dataset, folder) == exact
        columns = outcome(fastload.read_columns, folder)
        assert columns[0] == exact[0]
        if exact[0] == "refused":
            assert columns[1] == exact[1]
        else:
            assert same_columns(columns[1], columns_from_dataset(exact[1]))


def same_columns(a: Any, b: Any) -> bool:
    """Two :class:`~spillover.facts.columns.Columns` hold the same values."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            if not same_columns(x, y):
                return False
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def test_the_fast_loader_reads_the_records_case_itself() -> None:
    """The records case is read by the fast path (not handed to the exact loader), and
    gives the exact loader's dataset and columns."""
    linkage = fastload._fast(jiang_records_path(), "CN", None)[2]
    assert linkage is not None and set(linkage.records) == {"QC-R-XU", "TY-R-XU", "QT-R-J"}
    exact = load_folder(jiang_records_path())
    assert fastload.read_dataset(jiang_records_path()) == exact
    assert same_columns(fastload.read_columns(jiang_records_path()), columns_from_dataset(exact))


@settings(
    max_examples=max(EXAMPLES // 2, 1),
    deadline=None,
    derandomize="SPILLOVER_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits())
def test_the_parquet_form_gets_the_answer_of_the_csv_form(changes: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "csv" / "data"
        shutil.copytree(jiang_case_path(), folder)
        for edit in changes:
            apply(folder, edit)
        other = Path(tmp) / "pq" / "data"
        shutil.copytree(folder, other, symlinks=True)
        converted = to_parquet(other)
        kind, found = parquet_outcome(load_folder, folder, converted)
        if kind == "refused":
            found = ([m.replace(str(folder), str(other)) for m in found[0]], found[1])
        expected = (kind, found)
        assert parquet_outcome(load_folder, other) == expected
        assert parquet_outcome(fastload.read_dataset, other) == expected
        columns = parquet_outcome(fastload.read_columns, other)
        assert columns[0] == kind
        if kind == "refused":
            assert columns[1] == found


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.from_regex(r"\A\+?86?1[0-9]{10}\Z") | st.from_regex(r"\A1[0-9]{10}\Z"))
def test_the_fast_phone_pattern_only_takes_valid_numbers(text: str) -> None:
    """What the fast loader takes without asking phonenumbers is valid, and the same number."""
    e164, national = mobile_pattern("CN")
    if re.match(e164, text):
        assert normalize_phone(text) == text
        # normalize_phone and display_phone take such a number without phonenumbers too
        number = phonenumbers.parse(text, None)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == text
        international = phonenumbers.PhoneNumberFormat.INTERNATIONAL
        assert display_phone(text) == phonenumbers.format_number(number, international)
    if re.match(national, text):
        assert normalize_phone(text) == "+86" + text


def test_mainland_mobiles_are_read_and_shown_as_phonenumbers_does() -> None:
    """5,000 random numbers of the mainland mobile pattern (seeded): normalize_phone and
    display_phone, which take them without phonenumbers, give what phonenumbers gives."""
    e164 = re.compile(mobile_pattern("CN")[0])
    rng = random.Random(22)
    international = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    seen = 0
    while seen < 5000:
        text = f"+861{rng.randint(3, 9)}{rng.randrange(10**9):09d}"
        if not e164.match(text):
            continue
        seen += 1
        number = phonenumbers.parse(text, None)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == text
        assert normalize_phone(text) == text
        assert display_phone(text) == phonenumbers.format_number(number, international), text


def test_generated_numbers_are_valid() -> None:
    """The synthetic generator, the test scenarios and the packaged case make valid numbers."""
    for prefix in _MOBILE_PREFIXES:
        for rest in ("00000000", "12345678", "99999999"):
            assert normalize_phone(f"{prefix}{rest}") == f"+86{prefix}{rest}"
    s = Scenario()
    for _ in range(3):
        normalize_phone(s.new_phone())
    load_folder(jiang_case_path())


def test_the_fast_loader_knows_every_space_python_strips() -> None:
    """A value padded with any of them goes to the exact loader (which trims it)."""
    assert "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) == fastload.SPACES
