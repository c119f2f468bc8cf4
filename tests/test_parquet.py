"""Parquet data folders (docs/contract.md §1): the same rules and messages as CSV, on both loaders.

- the bad-input corpus (tests/test_bad_input.py) in Parquet form: every case whose
  tables convert is refused with the problems of its CSV form (renamed: NAME.parquet,
  row = line - 1), by the exact and the fast loader alike;
- native column types (date32, bool, numbers, decimals, dictionaries, nulls) read as the
  text of the CSV form is; wrong types, corrupt and empty files, folders of parts;
- ``synth --format parquet`` audits to the same bytes as the CSV form (memory, arrays)
  and ingests into Neo4j as the same graph.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from parquet_forms import convertible_rows, outcome, to_parquet, write_parquet
from spillover.audit.batch import audit, audit_folder
from spillover.backends.memory import MemoryBackend
from spillover.cli import cli
from spillover.data import fast as fastload
from spillover.data.contract import TABLES, field_kinds
from spillover.data.exact import load_folder
from spillover.data.formats import _typed, convert_folder
from spillover.errors import DataError
from spillover.examples import jiang_case_path
from spillover.neo4j.ingest import graph_counts, held_rows, ingest_folder, wipe
from spillover.synth.generate import generate
from test_bad_input import CASES, make_folder

# --- the bad-input corpus in Parquet form -----------------------------------------------


def _corpus_pair(case, tmp_path: Path) -> tuple[Path, Path, set[str]]:
    folder = make_folder(case, tmp_path / "csv")
    other = tmp_path / "pq" / "data"
    shutil.copytree(folder, other, symlinks=True)
    return folder, other, to_parquet(other)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_corpus_in_parquet_form_is_refused_alike(case, tmp_path: Path) -> None:
    folder, other, converted = _corpus_pair(case, tmp_path)
    expected = outcome(load_folder, folder, converted)
    assert expected[0] == "refused"
    expected = (
        "refused",
        ([m.replace(str(folder), str(other)) for m in expected[1][0]], expected[1][1]),
    )
    assert outcome(load_folder, other) == expected
    assert outcome(fastload.read_dataset, other) == expected
    assert outcome(fastload.read_columns, other)[1] == expected[1]


def test_most_of_the_corpus_is_expressible_in_parquet(tmp_path: Path) -> None:
    """The defect's own table converts in most cases (the rest are CSV-only: bytes, cells)."""
    turned = 0
    for i, case in enumerate(CASES):
        _, _, converted = _corpus_pair(case, tmp_path / str(i))
        turned += Path(case.file).stem in converted and case.file.endswith(".csv")
    assert turned >= 28


# --- native types, parts, and what is refused -------------------------------------------


def jiang_parquet(where: Path, typed: bool = True) -> Path:
    """The Jiang case with every table as Parquet (native types, or text columns)."""
    folder = where / "data"
    shutil.copytree(jiang_case_path(), folder)
    if typed:
        convert_folder(folder, "parquet")
    else:
        to_parquet(folder)
    return folder


def read(folder: Path, table: str) -> pa.Table:
    return pq.read_table(folder / f"{table}.parquet")


def put(folder: Path, table: str, data: pa.Table) -> None:
    pq.write_table(data, folder / f"{table}.parquet")


def with_column(
    table: str, name: str, values: pa.Array | Callable[[int], pa.Array]
) -> Callable[[Path], None]:
    """Replace a column (``values``: the array, or a function of the row count)."""

    def build(folder: Path) -> None:
        data = read(folder, table)
        column = values(data.num_rows) if callable(values) else values
        put(folder, table, data.set_column(data.column_names.index(name), name, column))

    return build


def with_value(table: str, row: int, name: str, value: object) -> Callable[[Path], None]:
    """Set one value (``row`` 1-based) keeping the column's type."""

    def build(folder: Path) -> None:
        data = read(folder, table)
        column = data.column(name)
        values = column.to_pylist()
        values[row - 1] = value
        with_column(table, name, pa.array(values, column.type))(folder)

    return build


def file_bytes(table: str, data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        path = folder / f"{table}.parquet"
        path.write_bytes(data(path.read_bytes()))

    return build


def as_parts(table: str, parts: int, spoil: int | None = None) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        data = read(folder, table)
        (folder / f"{table}.parquet").unlink()
        target = folder / f"{table}.parquet"
        target.mkdir()
        step = -(-data.num_rows // parts)
        for k in range(parts):
            pq.write_table(data.slice(k * step, step), target / f"part-{k:05d}.snappy.parquet")
        (target / "_SUCCESS").write_bytes(b"")
        if spoil is not None:
            (target / f"part-{spoil:05d}.snappy.parquet").write_bytes(b"PAR1 not really")

    return build


def not_utf8(folder: Path) -> None:
    data = read(folder, "people")
    names = data.column("name").to_pylist()
    names[1] = "Xu QQ Yan"
    data = data.set_column(1, "name", pa.array(names, pa.string()))
    path = folder / "people.parquet"
    pq.write_table(data, path, compression="none", use_dictionary=False, write_statistics=False)
    raw = path.read_bytes()
    assert raw.count(b"Xu QQ Yan") == 1
    path.write_bytes(raw.replace(b"Xu QQ Yan", b"Xu \xff\xfe Yan"))


def broken_link(folder: Path) -> None:
    (folder / "phones.parquet").unlink()
    (folder / "phones.parquet").symlink_to(folder / "nowhere.parquet")


def partitioned(folder: Path) -> None:
    as_parts("loans", 1)(folder)
    (folder / "loans.parquet" / "status=defaulted").mkdir()


def no_parts(folder: Path) -> None:
    (folder / "sharing.parquet").unlink()
    (folder / "sharing.parquet").mkdir()
    (folder / "sharing.parquet" / "_SUCCESS").write_bytes(b"")


def also_csv(folder: Path) -> None:
    shutil.copy(jiang_case_path() / "people.csv", folder / "people.csv")


def drop_column(table: str, name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        put(folder, table, read(folder, table).drop_columns([name]))

    return build


def twice(table: str, name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        data = read(folder, table)
        put(folder, table, data.append_column(f" {name}", data.column(name)))

    return build


@dataclass(frozen=True)
class Bad:
    name: str
    build: Callable[[Path], None]
    file: str
    line: int
    field: str
    words: str


BAD = [
    Bad(
        "date32-year-1",
        with_value("loans", 1, "applied_at", datetime.date(1, 1, 1)),
        "loans.parquet",
        1,
        "applied_at",
        "year 0001 is out of range",
    ),
    Bad(
        "date32-year-2101",
        with_value("blacklist", 2, "listed_at", datetime.date(2101, 1, 1)),
        "blacklist.parquet",
        2,
        "listed_at",
        "out of range: dates must lie in 1900-2100",
    ),
    Bad(
        "date32-status-before-applied",
        with_value("loans", 2, "status_at", datetime.date(2000, 1, 1)),
        "loans.parquet",
        2,
        "status_at",
        "is before applied_at",
    ),
    Bad(
        "float-nan",
        with_value("loans", 2, "amount", float("nan")),
        "loans.parquet",
        2,
        "amount",
        "finite",
    ),
    Bad(
        "float-inf",
        with_value("loans", 3, "amount", float("inf")),
        "loans.parquet",
        3,
        "amount",
        "finite",
    ),
    Bad(
        "float-negative",
        with_value("loans", 3, "amount", -5.0),
        "loans.parquet",
        3,
        "amount",
        "must not be negative",
    ),
    Bad(
        "null-required",
        with_value("people", 2, "name", None),
        "people.parquet",
        2,
        "name",
        "required value is missing",
    ),
    Bad(
        "null-required-enum",
        with_value("loan_links", 1, "role", None),
        "loan_links.parquet",
        1,
        "role",
        "required value is missing",
    ),
    Bad(
        "unknown-reference",
        with_value("loans", 3, "borrower_id", "nobody"),
        "loans.parquet",
        3,
        "borrower_id",
        "unknown person_id 'nobody'",
    ),
    Bad(
        "duplicate-key",
        with_value("people", 3, "person_id", "jiang"),
        "people.parquet",
        3,
        "person_id",
        "first on line 1",
    ),
    Bad(
        "int-date-column",
        with_column("loans", "applied_at", lambda n: pa.array(range(n), pa.int64())),
        "loans.parquet",
        0,
        "applied_at",
        "column type int64 is not accepted; expected a date (date32) or ISO text",
    ),
    Bad(
        "timestamp-date-column",
        with_column(
            "sharing",
            "since",
            lambda n: pa.array([datetime.datetime(2022, 1, 1)] * n, pa.timestamp("us")),
        ),
        "sharing.parquet",
        0,
        "since",
        "column type timestamp[us] is not accepted",
    ),
    Bad(
        "bool-text-column",
        with_column("platforms", "name", lambda n: pa.array([True] * n)),
        "platforms.parquet",
        0,
        "name",
        "column type bool is not accepted; expected text (string)",
    ),
    Bad(
        "int-bool-column",
        with_column("phones", "verified", lambda n: pa.array([1] * n, pa.int64())),
        "phones.parquet",
        0,
        "verified",
        "expected bool or text",
    ),
    Bad(
        "binary-text-column",
        with_column("people", "city", lambda n: pa.array([b"x"] * n, pa.binary())),
        "people.parquet",
        0,
        "city",
        "column type binary is not accepted",
    ),
    Bad(
        "missing-column",
        drop_column("platforms", "name"),
        "platforms.parquet",
        0,
        "name",
        "required column is missing from the schema",
    ),
    Bad(
        "column-twice",
        twice("people", "name"),
        "people.parquet",
        0,
        "name",
        "appears twice in the schema (columns 2 and 5)",
    ),
    Bad("not-utf8", not_utf8, "people.parquet", 2, "name", "not UTF-8: byte 0xff at character 4"),
    Bad(
        "corrupt-bytes",
        file_bytes("platforms", lambda d: b"garbage" * 50),
        "platforms.parquet",
        0,
        "(table)",
        "not a readable Parquet file",
    ),
    Bad(
        "empty-file",
        file_bytes("people", lambda d: b""),
        "people.parquet",
        0,
        "(table)",
        "not a readable Parquet file",
    ),
    Bad(
        "truncated-file",
        file_bytes("loans", lambda d: d[: len(d) // 2]),
        "loans.parquet",
        0,
        "(table)",
        "not a readable Parquet file",
    ),
    Bad(
        "spoiled-footer",
        file_bytes("blacklist", lambda d: d[:-12] + b"\xff" * 8 + d[-4:]),
        "blacklist.parquet",
        0,
        "(table)",
        "not a readable Parquet file",
    ),
    Bad(
        "corrupt-part",
        as_parts("people", 2, spoil=1),
        "people.parquet/part-00001.snappy.parquet",
        0,
        "(table)",
        "not a readable Parquet file",
    ),
    Bad(
        "no-parts",
        no_parts,
        "sharing.parquet",
        0,
        "(table)",
        "holds no Parquet part (*.parquet)",
    ),
    Bad(
        "partitioned",
        partitioned,
        "loans.parquet/status=defaulted",
        0,
        "(table)",
        "partitioned Parquet folders are not read",
    ),
    Bad(
        "csv-and-parquet",
        also_csv,
        "people.parquet",
        0,
        "(table)",
        "both people.csv and people.parquet exist; keep one",
    ),
    Bad(
        "broken-link",
        broken_link,
        "phones.parquet",
        0,
        "(table)",
        "phones.parquet is a broken symbolic link",
    ),
    Bad(
        "missing-table",
        lambda folder: (folder / "loans.parquet").unlink(),
        "loans.csv",
        0,
        "(table)",
        "(loans.csv, loans.jsonl or loans.parquet)",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_parquet_is_refused_with_file_row_and_field(case: Bad, tmp_path: Path) -> None:
    folder = jiang_parquet(tmp_path)
    case.build(folder)
    with pytest.raises(DataError) as exact:
        load_folder(folder)
    head = f"{folder / case.file}:{case.line}: {case.field}: "
    lines = [str(p) for p in exact.value.problems if str(p).startswith(head)]
    assert lines, f"no {head!r} in:\n{exact.value}"
    assert any(case.words in line for line in lines), lines
    assert outcome(fastload.read_dataset, folder) == outcome(load_folder, folder)
    assert outcome(fastload.read_columns, folder)[1] == outcome(load_folder, folder)[1]


WHOLE = ["int-date-column", "bool-text-column", "column-twice", "corrupt-bytes", "corrupt-part"]


@pytest.mark.parametrize("case", [c for c in BAD if c.name in WHOLE], ids=WHOLE)
def test_a_table_refused_whole_is_the_only_problem(case: Bad, tmp_path: Path) -> None:
    """A table refused for its schema or bytes: references to its rows (loan_links to
    loans, loans to people, ...) are not reported as unknown too (docs/contract.md §1)."""
    folder = jiang_parquet(tmp_path)
    case.build(folder)
    with pytest.raises(DataError) as exact:
        load_folder(folder)
    assert exact.value.total == len(exact.value.problems) == 1
    assert str(exact.value.problems[0]).startswith(f"{folder / case.file}:0: {case.field}: ")
    assert outcome(fastload.read_dataset, folder) == outcome(load_folder, folder)


@pytest.mark.parametrize("case", [c for c in BAD if "file" in c.name or "corrupt" in c.name])
def test_cli_refuses_a_corrupt_parquet_file_cleanly(case: Bad, tmp_path: Path) -> None:
    folder = jiang_parquet(tmp_path)
    case.build(folder)
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(cli, ["audit", "--data", str(folder), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{folder / case.file}:0: (table): not a readable Parquet file" in result.output
    assert not out.exists()


def typed_jiang(where: Path) -> tuple[Path, Path]:
    csv_folder = where / "csv"
    shutil.copytree(jiang_case_path(), csv_folder)
    return csv_folder, jiang_parquet(where / "pq")


ACCEPTED: dict[str, Callable[[Path], None]] = {
    "typed": lambda folder: None,
    "decimal-amounts": lambda folder: with_column(
        "loans",
        "amount",
        pa.array(
            [
                None if a is None else Decimal(str(a))
                for a in read(folder, "loans")["amount"].to_pylist()
            ],
            pa.decimal128(12, 2),
        ),
    )(folder),
    "float32-int-and-text": lambda folder: (
        with_column("loans", "amount", read(folder, "loans")["amount"].cast(pa.float32()))(folder),
        with_column("phones", "since", read(folder, "phones")["since"].cast(pa.string()))(folder),
    ),
    "dictionary-and-large-string": lambda folder: (
        with_column("loans", "status", read(folder, "loans")["status"].dictionary_encode())(folder),
        with_column("people", "name", read(folder, "people")["name"].cast(pa.large_string()))(
            folder
        ),
        with_column(
            "blacklist", "listed_at", read(folder, "blacklist")["listed_at"].cast(pa.date64())
        )(folder),
    ),
    "parts": lambda folder: (as_parts("loans", 3)(folder), as_parts("blacklist", 2)(folder)),
    "text-columns": lambda folder: None,
}


def _same_values(folder: Path, csv_folder: Path, name: str) -> None:
    if name == "float32-int-and-text":  # float32 amounts hold other numbers than the text
        return
    assert load_folder(folder) == load_folder(csv_folder)


@pytest.mark.parametrize("name", ACCEPTED)
def test_native_types_read_as_the_csv_form(name: str, tmp_path: Path) -> None:
    csv_folder, folder = typed_jiang(tmp_path)
    if name == "text-columns":
        shutil.rmtree(folder)
        folder = jiang_parquet(tmp_path / "text", typed=False)
    ACCEPTED[name](folder)
    _same_values(folder, csv_folder, name)
    exact = load_folder(folder)
    assert fastload.read_dataset(folder) == exact
    # the columnar fast path takes it (no detour through the exact loader)
    columns = fastload._fast(folder, "CN", None)[0]
    assert sorted(columns.entry_ids.to_pylist()) == sorted(exact.entries)


def test_a_row_of_nulls_is_skipped_like_a_blank_line(tmp_path: Path) -> None:
    csv_folder, folder = typed_jiang(tmp_path)
    data = read(folder, "people")
    blank = pa.table({n: pa.nulls(1, data.schema.field(n).type) for n in data.column_names})
    put(folder, "people", pa.concat_tables([data.slice(0, 2), blank, data.slice(2)]))
    assert load_folder(folder) == load_folder(csv_folder)
    assert fastload.read_dataset(folder) == load_folder(csv_folder)
    with_value("people", 4, "name", None)(folder)  # line 4 is now the row after the blank one
    with pytest.raises(DataError, match=r"people.parquet:4: name: required value is missing"):
        load_folder(folder)


def test_typed_columns_hold_the_types_of_the_fields(tmp_path: Path) -> None:
    folder = jiang_parquet(tmp_path)
    want = {"text": pa.string(), "bool": pa.bool_(), "date": pa.date32(), "number": pa.float64()}
    present = [t for t in TABLES if (folder / f"{t}.parquet").exists()]
    assert {"people", "loans", "blacklist"} <= set(present)
    for table in present:
        model = TABLES[table]
        schema = pq.read_schema(folder / f"{table}.parquet")
        for field, kind in field_kinds(model).items():
            if field in schema.names:
                assert schema.field(field).type == want[kind], (table, field)


def test_parts_number_rows_across_the_folder(tmp_path: Path) -> None:
    folder = jiang_parquet(tmp_path)
    with_value("loans", 6, "status", "lost")(folder)
    as_parts("loans", 3)(folder)  # 7 loans: parts of 3, 3, 1 rows; row 6 is in the second
    with pytest.raises(DataError) as exc:
        load_folder(folder)
    assert [str(p) for p in exc.value.problems] == [
        f"{folder / 'loans.parquet'}:6: status: Input should be 'current', 'repaid', "
        "'overdue' or 'defaulted'"
    ]


def test_convertible_rows_refuses_what_would_shift_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    for text in ("a,b\n1,2\n\n3,4\n", 'a,b\n"1\n",2\n', "\ufeffa,b\n1,2\n", "a,b\n1\n", ""):
        path.write_text(text, encoding="utf-8")
        assert convertible_rows(path) is None, text
    path.write_text("a,b\n1,\n,\n", encoding="utf-8")
    assert convertible_rows(path) == [["a", "b"], ["1", ""], ["", ""]]
    write_parquet(tmp_path / "t.parquet", [["a", "b"], ["1", ""]], parts=2)
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == [{"a": "1", "b": ""}]


# --- synth --format parquet: the same audit, the same graph -----------------------------


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("forms")
    out = {}
    for fmt in ("csv", "jsonl", "parquet"):
        out[fmt] = where / fmt / "synth"
        generate(1500, 5, out[fmt], format=fmt)
    return out


def _written(folder: Path) -> list[str]:
    """The contract tables synth wrote in CSV form (records only with ``records=True``)."""
    return [t for t in TABLES if (folder / f"{t}.csv").exists()]


def test_synth_formats_write_the_same_folder(forms: dict[str, Path]) -> None:
    written = _written(forms["csv"])
    assert "loans" in written and "records" not in written
    assert sorted(p.name for p in forms["parquet"].iterdir()) == sorted(
        [f"{t}.parquet" for t in written] + ["ground_truth"]
    )
    assert sorted(p.name for p in (forms["parquet"] / "ground_truth").iterdir()) == sorted(
        p.name for p in (forms["csv"] / "ground_truth").iterdir()
    )
    data = load_folder(forms["csv"])
    assert load_folder(forms["parquet"]) == data
    assert load_folder(forms["jsonl"]) == data
    assert fastload.read_dataset(forms["parquet"]) == data
    fastload._fast(forms["parquet"], "CN", None)  # no detour through the exact loader
    for table in written:
        text = _typed(forms["csv"] / f"{table}.csv", field_kinds(TABLES[table]))
        assert pq.read_table(forms["parquet"] / f"{table}.parquet").equals(text)


def test_synth_parquet_is_byte_identical_for_a_seed(forms: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(1500, 5, again, format="parquet")
    for table in _written(forms["csv"]):
        name = f"{table}.parquet"
        assert (again / name).read_bytes() == (forms["parquet"] / name).read_bytes()


def test_synth_parquet_audits_like_csv(
    backend_kind: str, forms: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend_kind == "neo4j":
        db = request.getfixturevalue("neo4j_db")
        graphs = []
        for fmt in ("csv", "parquet"):
            wipe(db.driver, db.settings.database)
            ingest_folder(forms[fmt], db.driver, db.settings.database, dataset="synth")
            graphs.append(
                (
                    graph_counts(db.driver, db.settings.database),
                    held_rows(db.driver, db.settings.database),
                )
            )
        assert graphs[0] == graphs[1]
        assert sum(graphs[0][0].values()) > 5000
        return
    files = {}
    for fmt in ("csv", "parquet", "jsonl"):
        files[fmt] = tmp_path / f"{fmt}.csv"
        if backend_kind == "memory":
            audit(MemoryBackend(load_folder(forms[fmt])), files[fmt])
        else:
            audit_folder(forms[fmt], files[fmt])
    assert files["parquet"].read_bytes() == files["csv"].read_bytes()
    assert files["jsonl"].read_bytes() == files["csv"].read_bytes()
    assert len(files["csv"].read_text().splitlines()) > 100


def test_cli_synth_format(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "synth",
            "--people",
            "300",
            "--seed",
            "2",
            "--out",
            str(tmp_path / "p"),
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "loans.parquet").is_file()
    assert (tmp_path / "p" / "ground_truth" / "entries.csv").is_file()
    result = runner.invoke(
        cli, ["synth", "--people", "300", "--seed", "2", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "loans.csv").is_file()
    outs = []
    for name in ("p", "c"):
        outs.append(tmp_path / f"{name}.csv")
        result = runner.invoke(
            cli, ["audit", "--data", str(tmp_path / name), "--out", str(outs[-1])]
        )
        assert result.exit_code == 0, result.output
    assert outs[0].read_bytes() == outs[1].read_bytes()
    result = runner.invoke(
        cli, ["synth", "--people", "300", "--out", str(tmp_path / "x"), "--format", "orc"]
    )
    assert result.exit_code == 2
    assert "'orc' is not one of" in result.output
    assert not (tmp_path / "x").exists()


def test_export_writes_parquet_too(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(
        bytes.fromhex("6634d35453f4574c273881be42dd19f34a769c65b1db66218a0803eb40b982ef")
    )  # random: weak keys are refused
    runner = CliRunner()
    for fmt in ("csv", "parquet"):
        result = runner.invoke(
            cli,
            ["export", "--data", str(jiang_case_path()), "--out", str(tmp_path / fmt),
             "--pseudonymize", "--key-file", str(key), "--format", fmt],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert (tmp_path / "parquet" / "loans.parquet").is_file()
    assert not list((tmp_path / "parquet").glob("*.csv"))
    assert load_folder(tmp_path / "parquet") == load_folder(tmp_path / "csv")
    assert (
        pq.read_schema(tmp_path / "parquet" / "loans.parquet").field("applied_at").type
        == pa.date32()
    )


def test_the_simulator_reads_platform_kinds_from_any_form(forms: dict[str, Path]) -> None:
    from spillover.simulate.run import _platform_kinds

    kinds = _platform_kinds(forms["csv"])
    assert len(kinds) >= 10 and set(kinds.values()) >= {"bank", "online_lender", "data_broker"}
    assert _platform_kinds(forms["parquet"]) == kinds
    assert _platform_kinds(forms["jsonl"]) == kinds
