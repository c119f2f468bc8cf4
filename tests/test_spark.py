"""The audit on Spark (spillover audit --engine spark) gives exactly the kernel's rows."""

from __future__ import annotations

import csv
import datetime
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from spillover.audit.batch import pass_rows
from spillover.audit.rows import AUDIT_COLUMNS
from spillover.cli import cli
from spillover.data.fast import read_columns
from spillover.policy import default_policy, default_policy_bytes, parse_policy
from spillover.synth.generate import generate

pytest.importorskip("pyspark")

ROOT = Path(__file__).resolve().parents[1]
JIANG = ROOT / "examples" / "jiang_case"

#: generated populations: (people, seed, synth parameters) that exercise copies,
#: sharing, reassigned and unverified phones, unknown owners and chains of borrowers
POPULATIONS = [
    pytest.param(500, 3, {}, id="500-default"),
    pytest.param(
        400,
        8,
        {
            "p_reassigned": 0.5,
            "p_stale_number": 0.6,
            "p_owner_unknown": 0.1,
            "p_phone_unverified": 0.4,
            "p_lender_to_lender": 0.4,
            "p_bad_normal": 0.05,
            "p_lists_owner": 0.8,
        },
        id="400-reassigned-shared",
    ),
]


def _kernel(folder: Path, policy=None) -> list[dict]:
    return list(pass_rows(read_columns(folder), policy or default_policy()))


def _spark_rows(spark, folder: Path, policy=None) -> list[dict]:
    from spillover.audit.spark import audit_frames, read_tables

    frame = audit_frames(spark, read_tables(spark, str(folder)), policy)
    assert frame.columns == AUDIT_COLUMNS
    return [r.asDict() for r in frame.collect()]


def test_the_jiang_case_gives_the_kernels_rows(spark):
    want = _kernel(JIANG)
    got = _spark_rows(spark, JIANG)
    assert got == want
    # the case has own conduct and spillover, over shared lists and copies
    assert {r["verdict"] for r in got} >= {"own_conduct", "spillover"}
    codes = " ".join(r["reason_codes"] for r in got)
    assert "SHARED_BLACKLIST" in codes


@pytest.mark.parametrize(("people", "seed", "params"), POPULATIONS)
def test_generated_populations_give_the_kernels_rows(spark, tmp_path, people, seed, params):
    folder = tmp_path / "data"
    generate(people, seed, folder, **params)
    want = _kernel(folder)
    got = _spark_rows(spark, folder)
    assert len(got) == len(want) > 50
    assert got == want
    codes = " ".join(r["reason_codes"] for r in got)
    # the populations reach beyond the direct tie: shared lists, copies, chains
    assert "SHARED_BLACKLIST" in codes
    assert "CHAIN_VIA_BORROWER" in codes and "COPIED_ENTRY" in codes
    assert {r["hops"] for r in got} >= {1, 2}


@pytest.fixture(params=["broadcast", "shuffle"])
def plan(request, spark):
    """The search's two plans: a small folder's index tables broadcast to every layer, or
    (as for a large folder) every join left to Spark, here all shuffled (broadcast joins
    off)."""
    key = "spark.sql.autoBroadcastJoinThreshold"
    before = spark.conf.get(key)
    if request.param == "shuffle":
        spark.conf.set(key, "-1")
    yield request.param
    spark.conf.set(key, before)


def test_a_deeper_policy_gives_the_kernels_rows(spark, tmp_path, plan):
    from spillover.audit.spark import read_tables
    from spillover.audit.spark.frames import text_frames
    from spillover.audit.spark.graph import typed_graph
    from spillover.audit.spark.search import broadcast_all

    policy = parse_policy(default_policy_bytes().replace(b"max_loans = 3", b"max_loans = 5"))
    folder = tmp_path / "data"
    generate(300, 21, folder, p_bad_normal=0.08, p_lender_to_lender=0.3)
    # the decision audit_frames makes: on the tables once checked (their cached size)
    full = text_frames(spark, read_tables(spark, str(folder)))
    typed_graph(spark, full, "CN", check=True)
    assert broadcast_all(spark, full) == (plan == "broadcast")
    assert _spark_rows(spark, folder, policy) == _kernel(folder, policy)


def test_the_cli_writes_the_embedded_audits_file_byte_for_byte(spark, tmp_path):
    runner = CliRunner()
    for suffix in (".csv", ".jsonl"):
        want, got = tmp_path / f"numpy{suffix}", tmp_path / f"spark{suffix}"
        ok = runner.invoke(cli, ["audit", "--data", str(JIANG), "--out", str(want)])
        assert ok.exit_code == 0, ok.output
        res = runner.invoke(
            cli,
            [
                "audit",
                "--engine",
                "spark",
                "--master",
                "local[2]",
                "--data",
                str(JIANG),
                "--out",
                str(got),
                "--conf",
                "spark.sql.shuffle.partitions=2",
            ],
        )
        assert res.exit_code == 0, res.output
        assert got.read_bytes() == want.read_bytes()
        assert res.output.startswith(f"wrote 16 rows to {got}")


def _copy_chains(folder: Path) -> Path:
    """The Jiang case with long copy chains: 37 copies one after another (each a day or
    more after its source), one copy listed before its source halfway (the walk up from
    below it stops there), and a branch of 5 copies off the chain's 20th."""
    shutil.copytree(JIANG, folder)
    (folder / "README.md").unlink(missing_ok=True)
    platforms = ["yidai", "xiaoyu", "huaqian", "anxin", "jiedai", "moneytree", "tianyan"]
    rows, source = [], "E-QC-PH"
    for i in range(37):
        day = datetime.date(2023, 7, 1) + datetime.timedelta(days=i - (30 if i == 18 else 0))
        rows.append(f"E-CH-{i:02d},{platforms[i % 7]},phone,13957112345,{day},copy,{source}")
        source = f"E-CH-{i:02d}"
    source = "E-CH-20"
    for i in range(5):
        day = datetime.date(2023, 9, 1) + datetime.timedelta(days=i)
        rows.append(f"E-BR-{i},{platforms[-i]},phone,13957112345,{day},copy,{source}")
        source = f"E-BR-{i}"
    with (folder / "blacklist.csv").open("a", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")
    return folder


def test_long_copy_chains_give_the_kernels_rows(spark, tmp_path, plan):
    """Copy chains are walked by doubling (log2 of the longest chain rounds of joins, not
    one per copy): the chain indexes, the walk's stop at a copy listed before its
    source, and a branch give the kernel's rows on both of the search's plans."""
    folder = _copy_chains(tmp_path / "data")
    want = _kernel(folder)
    assert sum("COPIED_ENTRY" in r["reason_codes"] for r in want) >= 30
    assert _spark_rows(spark, folder) == want


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".csv", "give the audit output a name before .csv"),
        (".parquet", "give the audit output a name before .parquet"),
        ("audit.xlsx", "must end in .csv, .jsonl or .parquet"),
    ],
)
def test_an_output_without_a_name_or_format_is_refused(spark, tmp_path, name, message):
    """As the embedded audit refuses ``--out DIR/.csv`` (a hidden file with no name), so
    does the Spark audit (it wrote a file named ``.csv``), before reading anything."""
    args = ["audit", "--engine", "spark", "--master", "local[2]", "--data", str(JIANG)]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / name)])
    assert res.exit_code == 1
    assert message in res.output
    assert list(tmp_path.iterdir()) == []


def test_the_cli_writes_a_parquet_dataset_of_the_same_rows(spark, tmp_path):
    out = tmp_path / "audit.parquet"
    res = CliRunner().invoke(
        cli,
        ["audit", "--engine", "spark", "--data", str(JIANG), "--out", str(out), "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    assert out.is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    table = pq.read_table(out)
    assert table.column_names == AUDIT_COLUMNS
    rows = sorted(table.to_pylist(), key=lambda r: r["entry_id"])
    assert rows == _kernel(JIANG)


def _bad_copy(tmp_path: Path, table: str, old: str, new: str, source: Path = JIANG) -> Path:
    folder = tmp_path / "bad"
    shutil.copytree(source, folder)
    path = folder / f"{table}.csv"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("table", "old", "new", "message"),
    [
        ("loans", ",defaulted,", ",lost,", "status: 1 row(s) not one of current, repaid"),
        (
            "loans",
            "XY-QC-1,quickcash,xu_yan",
            "XY-QC-1,nowhere,xu_yan",
            "name an unknown platform_id",
        ),
        ("blacklist", "2023-06-15", "2023-02-30", "listed_at: 1 row(s) not a real day"),
        ("phones", "13957112345,jiang", "1395711234x,jiang", "not a phone number"),
        (
            "people",
            "li_na,Li Na",
            "xu_yan,Li Na",
            "people.csv: person_id: 1 row(s) given more than once (first: xu_yan)",
        ),
        (
            "loan_links",
            "XY-AX-1,13957112345,emergency_contact",
            "XY-HQ-1,13957112345,emergency_contact",
            "loan_links.csv: loan_id, phone, role: 1 row(s) given more than once "
            "(first: XY-HQ-1, 13957112345, emergency_contact)",
        ),
    ],
)
def test_bad_data_is_refused_in_one_line(spark, tmp_path, table, old, new, message):
    folder = _bad_copy(tmp_path, table, old, new)
    out = tmp_path / "a.csv"
    res = CliRunner().invoke(
        cli, ["audit", "--engine", "spark", "--data", str(folder), "--out", str(out)]
    )
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spillover: error: ")
    assert message in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("table", "old", "new", "message"),
    [
        ("matches", ",phone_only,", ",psychic,", "matched_by: 1 row(s) refused: Input should be"),
        ("matches", '""agreed"": null', '""agreed"": 7', "waterfall.0.agreed: 1 row(s) refused"),
        ("records", "Hangzhou,jiang", "Hangzhou,nobody", "name an unknown person_id"),
        ("records", ",13957112345,,,\n", ",13957112345,,,xu_yan\n", "another person than"),
        ("loans", ",,QC-R-XU,", ",,QC-R-NOPE,", "borrower_record: 1 row(s) name an unknown"),
        ("loans", ",,QC-R-XU,", ",,QT-R-J,", "held by another platform"),
        ("loans", ",jiang,QT-R-J,", ",xu_yan,QT-R-J,", "resolves to no person or another one"),
        ("loans", "yidai,xu_yan,", "yidai,,", "give borrower_id or borrower_record"),
        ("blacklist", "record,TY-R-XU,2023-10-12", "record,TY-R-NO,2023-10-12", "unknown record"),
    ],
)
def test_bad_records_are_refused_in_one_line(spark, tmp_path, table, old, new, message):
    """The rules of platform records hold on Spark: the rows of records and matches by the
    embedded loader's row models, the references and resolutions as joins."""
    from spillover.examples import jiang_records_path

    folder = _bad_copy(tmp_path, table, old, new, jiang_records_path())
    out = tmp_path / "a.csv"
    res = CliRunner().invoke(
        cli, ["audit", "--engine", "spark", "--data", str(folder), "--out", str(out)]
    )
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spillover: error: ")
    assert message in lines[0]
    assert not out.exists()
    numpy = CliRunner().invoke(cli, ["audit", "--data", str(folder), "--out", str(out)])
    assert numpy.exit_code == 1  # the embedded loader refuses the same folder


def _people_jsonl_with(folder: Path, line: str, table: str = "people") -> Path:
    """The Jiang case copied to ``folder`` with its people (or ``table``) as JSONL and
    ``line`` after them (people's fourth line)."""
    shutil.copytree(JIANG, folder)
    lines = [json.dumps(p) for p in _as_jsonl(folder / f"{table}.csv", "")]
    lines.append(line)
    (folder / f"{table}.csv").unlink()
    (folder / f"{table}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_nan_in_a_jsonl_table_is_refused_by_both_engines(spark, tmp_path):
    """JSON has no NaN literal: Spark's JSON reader would take it (as the text "NaN"),
    Python's json reads it too; both engines refuse the line."""
    folder = _people_jsonl_with(tmp_path / "nan", '{"person_id": "nan_person", "name": NaN}')
    for engine in ("numpy", "spark"):
        args = ["--engine", "spark", "--master", "local[2]"] if engine == "spark" else []
        out = tmp_path / f"{engine}.csv"
        res = CliRunner().invoke(cli, ["audit", *args, "--data", str(folder), "--out", str(out)])
        assert res.exit_code == 1, (engine, res.output)
        assert res.output.startswith("spillover: error: ") and "people.jsonl" in res.output
        assert not out.exists()


def test_a_missing_table_is_refused(spark, tmp_path):
    folder = tmp_path / "d"
    shutil.copytree(JIANG, folder)
    (folder / "loans.csv").unlink()
    res = CliRunner().invoke(
        cli, ["audit", "--engine", "spark", "--data", str(folder), "--out", str(tmp_path / "a.csv")]
    )
    assert res.exit_code == 1
    assert "required table 'loans' is missing" in res.output


def test_without_pyspark_or_java_the_message_says_what_to_install(monkeypatch, tmp_path):
    args = ["audit", "--engine", "spark", "--data", str(JIANG), "--out", str(tmp_path / "a.csv")]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyspark", None)  # as if not installed
        res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert "pip install 'spillover[spark]'" in res.output
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert "needs Java 17 or newer" in res.output


def test_spark_options_need_the_spark_engine(tmp_path):
    res = CliRunner().invoke(
        cli,
        ["audit", "--data", str(JIANG), "--out", str(tmp_path / "a.csv"), "--master", "local[1]"],
    )
    assert res.exit_code == 2
    assert "--engine spark" in res.output


def test_a_spark_audit_prints_no_warnings(tmp_path):
    """A real ``audit --engine spark`` on local[1], in a process of its own (its JVM starts
    there): stderr holds no WARN line (the JVM's incubator-module warning, log4j's start-up
    warnings, Spark's notes on its log profile and level), no Python warning and no INFO
    line; stdout says what was written."""
    out = tmp_path / "a.csv"
    args = ["audit", "--engine", "spark", "--master", "local[1]", "--data", str(JIANG)]
    done = subprocess.run(
        [sys.executable, "-m", "spillover", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote 16 rows to {out}")
    lines = done.stderr.splitlines()
    assert [line for line in lines if "WARN" in line or " INFO " in line] == []
    # nor a Python warning (pyspark's note on pandas 3, printed on every run before)
    assert [line for line in lines if "Warning" in line] == []
    assert [line for line in lines if "log4j" in line or "log level" in line.lower()] == []


def test_the_session_keeps_a_short_past_unless_told_otherwise(spark):
    """The driver keeps the plans of fewer executions, jobs and stages than Spark's 1,000
    (``STATUS_STORE``); settings given to the session win (the suite's session keeps 50)."""
    from spillover.audit.spark.session import STATUS_STORE, session_settings

    assert {k: int(v) for k, v in session_settings().items() if k in STATUS_STORE} == {
        "spark.sql.ui.retainedExecutions": 100,
        "spark.ui.retainedJobs": 500,
        "spark.ui.retainedStages": 500,
    }
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.sql.ui.retainedExecutions") == "50"
    assert conf.get("spark.ui.retainedJobs") == "200"
    assert conf.get("spark.ui.showConsoleProgress") == "false"


def test_simulate_on_spark_gives_the_kernels_metrics(spark, tmp_path):
    """simulate --engine spark: every rule's blacklist audited on Spark (tables made from
    the simulator's columns) gives the metrics and blacklists of the numpy kernel."""
    from spillover.simulate.run import simulate

    folder = tmp_path / "data"
    generate(400, 8, folder)
    rules = ["borrower_only", "contacts_of_contacts", "no_sharing"]
    numpy_run = simulate(folder, rules, tmp_path / "numpy", seed=3, plots=False)
    spark_run = simulate(
        folder, rules, tmp_path / "spark", seed=3, plots=False, engine="spark", master="local[2]"
    )
    assert spark_run.metrics == numpy_run.metrics
    assert any(m["spillover_entries"] for m in numpy_run.metrics)  # the rules made spillover
    for rule in rules:
        want = (tmp_path / "numpy" / "blacklists" / f"{rule}.csv").read_bytes()
        assert (tmp_path / "spark" / "blacklists" / f"{rule}.csv").read_bytes() == want


def test_frames_from_columns_carry_platform_records(spark):
    """The simulator's tables (frames_from_columns) of a folder with records audit as the
    kernel does: record subjects, loans named by a record, resolved matches."""
    from spillover.audit.spark import audit_frames, frames_from_columns
    from spillover.examples import jiang_records_path

    cols = read_columns(jiang_records_path())
    assert cols.records and cols.matches
    rows = audit_frames(spark, frames_from_columns(spark, cols), check=False).collect()
    assert [r.asDict() for r in rows] == _kernel(jiang_records_path())


def test_simulate_on_spark_with_records_gives_the_kernels_metrics(spark, tmp_path):
    """simulate --engine spark on a population with platform records: the simulated
    blacklists audited on Spark (loans named by records) give numpy's metrics."""
    from spillover.simulate.run import simulate

    folder = tmp_path / "data"
    generate(300, 8, folder, records=True, p_lender_to_lender=0.4)
    _with_records(folder, 8)
    rules = ["contacts_of_contacts"]
    numpy_run = simulate(folder, rules, tmp_path / "numpy", seed=3, plots=False)
    spark_run = simulate(
        folder, rules, tmp_path / "spark", seed=3, plots=False, engine="spark", master="local[2]"
    )
    assert spark_run.metrics == numpy_run.metrics
    assert any(m["spillover_entries"] for m in numpy_run.metrics)


def _audit_csv(tmp_path: Path, folder: Path, engine: str) -> bytes:
    """The audit CSV ``spillover audit`` writes with ``engine`` (Spark: local[2])."""
    out = tmp_path / f"{engine}.csv"
    spark_args = ["--engine", "spark", "--master", "local[2]"] if engine == "spark" else []
    res = CliRunner().invoke(cli, ["audit", *spark_args, "--data", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out.read_bytes()


def test_the_jiang_records_case_gives_the_kernels_csv_byte_for_byte(spark, tmp_path):
    """Platform records on Spark: the match step (record subjects, loans named by a
    record) scores, explains and words each entry as the numpy kernel does."""
    from spillover.examples import jiang_records_path

    folder = jiang_records_path()
    want = _audit_csv(tmp_path, folder, "numpy")
    got = _audit_csv(tmp_path, folder, "spark")
    assert got == want
    assert _spark_rows(spark, folder) == _kernel(folder)
    text = got.decode()
    assert "MATCHED_BY_PHONE_ONLY" in text and "MATCHED_BY_KNOWN" in text
    assert ",record," in text  # entries listing a platform record


def _with_records(folder: Path, seed: int) -> None:
    """Tell a generated population (``generate(..., records=True)``) with its platform
    records: ``matches`` from the records' true persons (every ``matched_by``, some
    records left unresolved), a third of the loans naming their borrower by a record of
    their platform (half of those without ``borrower_id``; on an unresolved record the
    loan names no one), half the person entries listing a record of their platform."""
    import csv

    from spillover.rules import MatchKey

    def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(rows)

    _, records = read(folder / "records.csv")
    _, truth = read(folder / "ground_truth" / "records.csv")
    person_of = {r["record_id"]: r["person_id"] for r in truth}
    keys = [k.value for k in MatchKey]
    matches, resolved = [], {}
    for i, r in enumerate(records):
        rid = r["record_id"]
        if r["person_id"]:
            resolved[rid] = r["person_id"]
        elif i % 11 != 3:  # now and then a record nobody resolved
            key = keys[(i + seed) % len(keys)]
            matches.append(
                {
                    "record_id": rid,
                    "person_id": person_of[rid],
                    "match_probability": str(0.5 + (i % 5) / 10),
                    "matched_by": key,
                }
            )
            resolved[rid] = person_of[rid]
    write(
        folder / "matches.csv",
        ["record_id", "person_id", "match_probability", "matched_by"],
        matches,
    )
    held: dict[tuple[str, str], str] = {}  # (person, platform) -> its first record there
    for r in records:
        held.setdefault((person_of[r["record_id"]], r["platform_id"]), r["record_id"])
    fields, loans = read(folder / "loans.csv")
    for i, loan in enumerate(loans):
        if loan.get("borrower_record"):  # synth's own journey: a loan named by a record
            continue
        record = held.get((loan["borrower_id"], loan["platform_id"]))
        loan["borrower_record"] = ""
        if record is None or i % 3:
            continue
        loan["borrower_record"] = record
        if i % 2 or record not in resolved:
            loan["borrower_id"] = ""
    if "borrower_record" not in fields:
        fields.append("borrower_record")
    write(folder / "loans.csv", fields, loans)
    fields, entries = read(folder / "blacklist.csv")
    for i, entry in enumerate(entries):
        record = held.get((entry["subject"], entry["platform_id"]))
        if entry["subject_kind"] == "person" and record is not None and i % 2 == 0:
            entry["subject_kind"], entry["subject"] = "record", record
    write(folder / "blacklist.csv", fields, entries)


def test_a_generated_population_with_records_gives_the_kernels_csv(spark, tmp_path):
    """A synthetic population told with platform records (synth --records, then matches,
    loans and entries on records): byte for byte the numpy kernel's audit CSV."""
    folder = tmp_path / "data"
    _, seed, params = POPULATIONS[1].values
    generate(400, seed, folder, records=True, **params)
    _with_records(folder, seed)
    want = _audit_csv(tmp_path, folder, "numpy")
    got = _audit_csv(tmp_path, folder, "spark")
    assert got == want
    text = got.decode()
    # the records are on the paths: record subjects, every kind of match, chains
    assert text.count(",record,") > 20
    assert len(set(re.findall(r"MATCHED_BY_[A-Z_]+", text))) >= 6
    assert "CHAIN_VIA_BORROWER" in text and "SHARED_BLACKLIST" in text


@pytest.mark.parametrize("seed", [0, 3])
def test_random_record_scenarios_give_the_kernels_rows(spark, tmp_path, seed):
    """Small random scenarios told with records (tests/test_records.py): chains through
    a loan named by a record, unresolved records, loans that name no one."""
    from test_records import records_version

    folder = records_version(seed).write(tmp_path / "d")
    want = _kernel(folder)
    assert _spark_rows(spark, folder) == want
    assert any("MATCHED_BY_" in r["reason_codes"] for r in want)


#: whitespace Python's str.strip() removes (the embedded loaders trim cells of it) but
#: Spark's trim() does not: it once kept "\tE-QC-XU" (sorted apart) and refused "jiang\u3000"
PADDING = ["\t", "\u3000", "\xa0", "\x1f", "\u2003 ", "\x1c\u205f", " \u202f"]


def _padded_copy(source: Path, folder: Path) -> Path:
    """``source`` (CSV tables) with every cell padded at both ends with some of
    :data:`PADDING`, an empty cell made of it alone; headers kept. The enum columns are
    padded too (a padded ``bank`` is ``bank`` on both engines; the embedded loaders refused
    it while Spark accepted it, until both trimmed every cell)."""
    folder.mkdir()
    turn = 0
    for path in sorted(source.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            header, *rows = list(csv.reader(f))
        with (folder / path.name).open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(header)
            for row in rows:
                padded = []
                for cell in row:
                    turn += 1
                    left, right = PADDING[turn % len(PADDING)], PADDING[(turn + 3) % len(PADDING)]
                    padded.append(f"{left}{cell}{right}")
                out.writerow(padded)
    return folder


def test_cells_padded_with_unicode_whitespace_give_the_kernels_csv(spark, tmp_path):
    """Every cell, ids too, padded with tabs, U+3000, U+00A0, U+001F, ...: Spark trims
    exactly what the embedded loaders trim (str.strip()), so the same file, byte for byte;
    a cell of whitespace only is a missing value on both."""
    folder = _padded_copy(JIANG, tmp_path / "padded")
    assert "\t" in (folder / "blacklist.csv").read_text(encoding="utf-8")
    assert ",defaulted," not in (folder / "loans.csv").read_text(encoding="utf-8")
    want = _audit_csv(tmp_path, JIANG, "numpy")
    assert _audit_csv(tmp_path, folder, "numpy") == want
    assert _audit_csv(tmp_path, folder, "spark") == want


def _as_jsonl(csv_path: Path, pad: str) -> list[dict]:
    """The rows of a CSV table as JSON objects (a missing cell left out), each value (an
    enum column's too) padded at both ends with ``pad``."""
    with csv_path.open(encoding="utf-8", newline="") as f:
        return [{k: f"{pad}{v}{pad}" for k, v in row.items() if v} for row in csv.DictReader(f)]


def test_jsonl_numbers_in_text_fields_are_read_as_written_on_both_engines(spark, tmp_path):
    """A JSONL id written as a JSON number is the id as written (``1.50``, ``-0``, ``1E2``),
    on Spark (its reader keeps the literal) and in the embedded loaders alike (which read
    ``1.50`` as ``1.5`` before, refusing this folder Spark accepted); JSONL text padded with
    line breaks (``\\n``, U+0085, U+2028) is trimmed by both."""
    folder = tmp_path / "numbers"
    shutil.copytree(JIANG, folder)
    people = _as_jsonl(folder / "people.csv", "\n\u2028")
    entries = _as_jsonl(folder / "blacklist.csv", "\x85\r")
    (folder / "people.csv").unlink()
    (folder / "blacklist.csv").unlink()
    new = [("1.50", "7.10", "1.50"), ("-0", "1e1", "-0"), ("1E2", "-0.0", "1E2")]
    lines = [json.dumps(p) for p in people]
    lines += [f'{{"person_id": {pid}, "name": "N {pid}"}}' for pid, _, _ in new]
    (folder / "people.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = [json.dumps(e) for e in entries]
    lines += [
        f'{{"entry_id": {eid}, "platform_id": "quickcash", "subject_kind": "person", '
        f'"subject": {subject}, "listed_at": "2023-06-15"}}'
        for _, eid, subject in new
    ]
    (folder / "blacklist.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (folder / "loans.csv").open("a", encoding="utf-8", newline="") as f:
        for i, (pid, _, _) in enumerate(new):
            csv.writer(f, lineterminator="\n").writerow(
                [f"N-{i}", "quickcash", pid, "2023-03-02", "defaulted", "", "", "", ""]
            )
    want = _audit_csv(tmp_path, folder, "numpy")
    assert _audit_csv(tmp_path, folder, "spark") == want
    text = want.decode()
    for pid, eid, _ in new:
        assert f"\n{eid},quickcash,person,{pid}," in text.replace("\r\n", "\n")


def _audit_both(tmp_path: Path, folder: Path) -> list[tuple[int, str]]:
    """The exit code and the first line of ``spillover audit`` on ``folder`` with each engine
    (numpy, then Spark on local[2]); an audit that refuses writes no file."""
    out = []
    for engine in ("numpy", "spark"):
        args = ["--engine", "spark", "--master", "local[2]"] if engine == "spark" else []
        file = tmp_path / f"{engine}-refused.csv"
        res = CliRunner().invoke(cli, ["audit", *args, "--data", str(folder), "--out", str(file)])
        assert res.exit_code != 0 or file.exists(), (engine, res.output)
        out.append((res.exit_code, res.output.strip()))
    return out


def _as_parquet(folder: Path, table: str, types: dict, convert: dict) -> None:
    """``folder``'s ``table.csv`` as ``table.parquet``: text columns (an empty cell a null)
    but those of ``types``, their values made by ``convert``."""
    import pyarrow as pa

    path = folder / f"{table}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    arrays = []
    for i, name in enumerate(header):
        cells = [r[i] or None for r in rows]
        if name in convert:
            cells = [None if c is None else convert[name](c) for c in cells]
        arrays.append(pa.array(cells, types.get(name, pa.string())))
    pq.write_table(pa.Table.from_arrays(arrays, names=header), path.with_suffix(".parquet"))
    path.unlink()


def _parquet_types() -> list:
    import pyarrow as pa

    day = datetime.date.fromisoformat
    return [
        pytest.param("phones", "verified", pa.int64(), lambda v: int(v == "true"), id="int-bool"),
        pytest.param("people", "person_id", pa.binary(), str.encode, id="binary-id"),
        pytest.param("phones", "phone", pa.int64(), int, id="int-phone"),
        pytest.param("people", "name", pa.int32(), len, id="int-name"),
        pytest.param(
            "phones",
            "since",
            pa.timestamp("us"),
            lambda v: datetime.datetime.combine(day(v), datetime.time()),
            id="timestamp-day",
        ),
        # no value at all: refused for its type as well (Spark read it as Arrow's null type)
        pytest.param("people", "city", pa.int64(), lambda v: None, id="int-nulls"),
    ]


@pytest.mark.parametrize(("table", "column", "kind", "convert"), _parquet_types())
def test_parquet_columns_of_a_type_not_accepted_are_refused_by_both_engines(
    spark, tmp_path, table, column, kind, convert
):
    """A Parquet column of a type its field may not have (integers for a boolean or a phone,
    binary ids, a timestamp for a day: docs/contract.md §1, Parquet tables) is refused by
    both engines; Spark read every such column as its text (``1`` a true ``verified``)
    and audited the folder the embedded loaders refused. So is such a column of nulls
    only, which Spark took for a column of Arrow's ``null`` type (both accept that one)."""
    folder = tmp_path / "typed"
    shutil.copytree(JIANG, folder)
    _as_parquet(folder, table, {column: kind}, {column: convert})
    (numpy_code, numpy_says), (spark_code, spark_says) = _audit_both(tmp_path, folder)
    assert numpy_code == 1 and f"{column}: column type" in numpy_says
    assert spark_code == 1, spark_says
    assert f"{table}.parquet: {column}: column type " in spark_says
    assert "is not accepted; expected" in spark_says


def test_parquet_columns_of_accepted_types_give_the_kernels_csv(spark, tmp_path):
    """Native Parquet columns where their fields allow them (a bool ``verified``, date32
    days, a float ``amount``, a column of nulls only, typed or Arrow's ``null``) give the
    same audit on both engines as the CSV folder."""
    import pyarrow as pa

    folder = tmp_path / "typed"
    shutil.copytree(JIANG, folder)
    day = datetime.date.fromisoformat
    _as_parquet(
        folder,
        "phones",
        {"verified": pa.bool_(), "since": pa.date32(), "until": pa.date32()},
        {"verified": lambda v: v == "true", "since": day, "until": day},
    )
    _as_parquet(folder, "loans", {"amount": pa.float64()}, {"amount": float})
    _as_parquet(folder, "people", {"city": pa.null()}, {"city": lambda v: None})
    want = _audit_csv(tmp_path, JIANG, "numpy")
    assert _audit_csv(tmp_path, folder, "numpy") == want
    assert _audit_csv(tmp_path, folder, "spark") == want


def test_rows_of_blank_cells_are_skipped_by_both_engines(spark, tmp_path):
    """A CSV line of empty or blank cells (``,,,``, ``" ", ""``) and a Parquet row of nulls
    are skipped as a blank line is (docs/contract.md §1), on Spark too, which refused them
    as rows with no ``loan_id``; the audit is the one without them."""
    folder = tmp_path / "blank"
    shutil.copytree(JIANG, folder)
    loans = folder / "loans.csv"
    lines = loans.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2:2] = [",,,,,,,,\n", ' , ,"",\t,\u3000, , , , \n']
    loans.write_text("".join(lines), encoding="utf-8")
    people = folder / "people.csv"
    people.write_text(people.read_text(encoding="utf-8") + ",,,\n", encoding="utf-8")
    _as_parquet(folder, "people", {}, {})
    want = _audit_csv(tmp_path, JIANG, "numpy")
    assert _audit_csv(tmp_path, folder, "numpy") == want
    assert _audit_csv(tmp_path, folder, "spark") == want


def test_single_quoted_json_is_refused_by_both_engines(spark, tmp_path):
    """JSON strings are in double quotes: a JSONL line written with single quotes is no
    JSON, refused by the embedded loader; Spark's reader took it unless told not to."""
    folder = _people_jsonl_with(tmp_path / "quotes", "{'person_id': 'zz', 'name': 'Z'}")
    (numpy_code, numpy_says), (spark_code, spark_says) = _audit_both(tmp_path, folder)
    said = "(row): not valid JSON: Expecting property name enclosed in double quotes"
    assert numpy_code == 1 and f"people.jsonl:4: {said}" in numpy_says
    assert spark_code == 1 and f"people.jsonl: {said}" in spark_says.replace(
        "1 row(s) refused: ", ""
    )


#: JSONL lines the embedded loader refuses and Spark's JSON reader took (docs/scale-out.md):
#: (table, the line, the field and what the loader says of it; Spark says the same)
_BAD_JSONL = [
    (
        '[{"person_id": "zz", "name": "Z"}, {"person_id": "zy", "name": "Y"}]',
        "(row)",
        "each line must be a JSON object",
    ),
    (
        '{"person_id": "zz", "name": "Z"} {"person_id": "zy", "name": "Y"}',
        "(row)",
        "not valid JSON: Extra data at column 34",
    ),
    (
        '{"person_id": "zz", "name": "Z"}{"person_id": "zy"}',
        "(row)",
        "not valid JSON: Extra data at column 33",
    ),
    (
        '{"person_id": "zz", "name": "Z"} and more',
        "(row)",
        "not valid JSON: Extra data at column 34",
    ),
    ('{"person_id": "zz", "name": "Z"}]}', "(row)", "not valid JSON: Extra data at column 33"),
    ('{"person_id": true, "name": "Z"}', "person_id", "Input should be a valid string"),
    ('{"person_id": "zz", "name": {"given": "Z"}}', "name", "Input should be a valid string"),
    (
        '{"person_id": "zz", "name": "Z", "city": ["Hangzhou"]}',
        "city",
        "Input should be a valid string",
    ),
    ('{"person_id": "zz", "name": "Z \\ud800"}', "name", "text holds a lone surrogate"),
    (
        '{"person_id": "zz", "name": "Z", "by": {"a": ["\\udc00"]}}',
        "by",
        "text holds a lone surrogate",
    ),
    (
        '{"person_id": "zz", "name": "Z", "person_id": "zy"}',
        "person_id",
        "field appears twice in this object",
    ),
]


def test_jsonl_lines_the_embedded_loader_refuses_are_refused_by_both_engines(spark, tmp_path):
    """Each line of :data:`_BAD_JSONL` (and ``true`` as a loan's ``amount``) is refused by
    both engines in the loader's words; Spark's JSON reader read an array of objects as
    its rows, ignored what follows the object, took ``true`` or an object as its JSON
    text, a lone surrogate as ``?`` and the last of two equal keys. The lines are checked
    by Spark's own JSON functions now. A JSON ``-0`` is no boolean on either engine (the
    embedded loader read it as 0, false, where Spark refused it as its text)."""
    loan = (
        '{"loan_id": "XY-X-1", "platform_id": "quickcash", "borrower_id": "xu_yan", '
        '"applied_at": "2023-03-02", "status": "defaulted", "amount": true}'
    )
    phone = '{"phone": "13957112345", "verified": -0, "since": "2000-01-01", "until": "2001-01-01"}'
    cases = [
        ("people", line, f"people.jsonl:4: {field}: {said}", f"{field}: 1 row(s) refused: {said}")
        for line, field, said in _BAD_JSONL
    ]
    cases += [
        ("loans", loan, "loans.jsonl:11: amount: expected a number, got True", "amount: 1 row(s)"),
        ("phones", phone, "phones.jsonl:4: verified: expected true/false", "verified: 1 row(s)"),
    ]
    wrong = []
    for i, (table, line, numpy_said, spark_said) in enumerate(cases):
        folder = _people_jsonl_with(tmp_path / f"bad{i}", line, table)
        (numpy_code, numpy_says), (spark_code, spark_says) = _audit_both(tmp_path, folder)
        if numpy_code != 1 or numpy_said not in numpy_says:
            wrong.append(("numpy", line, numpy_says))
        if spark_code != 1 or f"{table}.jsonl: {spark_said}" not in spark_says:
            wrong.append(("spark", line, spark_says))
    assert wrong == []


def test_jsonl_keys_of_another_case_blank_lines_and_empty_tables_give_the_kernels_csv(
    spark, tmp_path
):
    """What the embedded loader reads from JSONL, Spark reads alike: a key in another case
    (``Person_Id`` beside ``person_id``) is another key, ignored (docs/contract.md §1: names
    are compared exactly; Spark's reader refused the table for keys that differ only in
    case; read as ``person_id``, ``jiang`` would be given twice), a line of U+3000 is blank
    and skipped, as is a byte-order mark before the first line, an empty optional table is
    empty (Spark refused it for its missing columns), and a match's ``waterfall`` given as
    a JSON list is that list (Spark read it as its own text of an array and refused it).
    The same audit, byte for byte. A key padded with a space is not the field: the loader
    says it is missing, Spark trimmed it."""
    from spillover.examples import jiang_records_path

    folder = _people_jsonl_with(
        tmp_path / "keys", '{"person_id": "zz", "Person_Id": "jiang", "name": "Z", "NAME": 1}'
    )
    people = folder / "people.jsonl"
    # a line whose first "}" is in a string, a tab after the object: parsed wrapped, good
    more = '{"person_id": "zy", "name": "Y", "city": "}{"}\t\n\u3000\n'
    people.write_text("\ufeff" + people.read_text(encoding="utf-8") + more, "utf-8")
    (folder / "sharing.csv").unlink()
    (folder / "sharing.jsonl").write_text("", encoding="utf-8")
    want = _audit_csv(tmp_path, folder, "numpy")
    assert _audit_csv(tmp_path, folder, "spark") == want
    records = tmp_path / "records"
    shutil.copytree(jiang_records_path(), records)
    matches = []
    for m in _as_jsonl(records / "matches.csv", ""):
        m["waterfall"] = json.loads(m.get("waterfall", "null"))
        matches.append(json.dumps(m))
    (records / "matches.csv").unlink()
    (records / "matches.jsonl").write_text("\n".join(matches) + "\n", encoding="utf-8")
    assert "[{" in matches[0]
    assert _audit_csv(tmp_path, records, "spark") == _audit_csv(tmp_path, records, "numpy")
    padded = tmp_path / "padded"
    shutil.copytree(JIANG, padded)
    lines = [
        json.dumps({f" {k}": v for k, v in p.items()}) for p in _as_jsonl(JIANG / "people.csv", "")
    ]
    (padded / "people.csv").unlink()
    (padded / "people.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (numpy_code, numpy_says), (spark_code, spark_says) = _audit_both(tmp_path, padded)
    assert numpy_code == 1 and "people.jsonl:1: person_id: required value is missing" in numpy_says
    assert spark_code == 1 and "people.jsonl: person_id: 3 row(s) with no value" in spark_says


def test_a_column_named_as_a_read_one_in_another_case_is_ignored_by_both_engines(spark, tmp_path):
    """``Status`` and ``Phone_Verified`` beside ``status`` and ``phone_verified`` are other
    columns, ignored (docs/contract.md §1: names are compared exactly); Spark took each
    pair for twins, renamed both and refused the folder for a missing ``status`` (or read
    no ``phone_verified``), which the embedded loaders audit."""
    from spillover.audit.spark import read_tables

    folder = tmp_path / "cases"
    shutil.copytree(JIANG, folder)
    loans = folder / "loans.csv"
    header, *rows = loans.read_text(encoding="utf-8").splitlines()
    flipped = {"true": "false", "false": "true"}
    lines = [f"{header},Status,Phone_Verified"]
    lines += [f"{r},lost,{flipped[r.split(',')[6]]}" for r in rows]
    loans.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_tables(spark, str(folder))["loans"]
    got = sorted((r["loan_id"], r["status"], r["phone_verified"]) for r in read.collect())
    want = sorted(tuple(r.split(",")[i] for i in (0, 4, 6)) for r in rows)
    assert got == want
    assert _audit_csv(tmp_path, folder, "spark") == _audit_csv(tmp_path, JIANG, "numpy")
    assert _audit_csv(tmp_path, folder, "numpy") == _audit_csv(tmp_path, JIANG, "numpy")


@pytest.mark.parametrize("row", ["XY-X-1,quickcash,xu_yan,2023-03-02,defaulted,,,,,x", "XY-X-1"])
def test_a_csv_line_of_another_length_than_the_header_is_refused_by_both_engines(
    spark, tmp_path, row
):
    """A loan line with a cell more or fewer than the header is refused by both engines
    (docs/contract.md §1: "the wrong number of cells"); Spark, which parsed only the
    columns it reads, took it (the extra cell dropped, the missing ones empty). It reads
    every cell now (blank rows are skipped) and its reader refuses the line, naming the
    file."""
    folder = tmp_path / "cells"
    shutil.copytree(JIANG, folder)
    with (folder / "loans.csv").open("a", encoding="utf-8") as f:
        f.write(row + "\n")
    (numpy_code, numpy_says), (spark_code, spark_says) = _audit_both(tmp_path, folder)
    assert numpy_code == 1 and "loans.csv:12: (row): expected 9 cells" in numpy_says
    assert spark_code == 1 and spark_says.startswith("spillover: error: Spark failed: ")
    assert "loans.csv" in spark_says.splitlines()[-1]
