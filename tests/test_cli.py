"""The CLI through click's CliRunner, and once as a real subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from scenario import Scenario
from spillover.cli import cli
from spillover.examples import jiang_case_path

DATA = str(jiang_case_path())


@pytest.fixture
def run(monkeypatch):
    # these tests are about the embedded graph: a NEO4J_URI of the developer's shell
    # (the Neo4j tests use one) must not send them to Neo4j
    monkeypatch.delenv("NEO4J_URI", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_demo_prints_the_jiang_chains(run):
    result = run("demo")
    assert result.exit_code == 0
    out = result.output
    assert "Jiang (bakery owner)" in out
    assert "Xu Yan's loan at" in out
    assert "Tianyan Big Data passed its blacklist to Qiantang Bank" in out
    jiang_part, contrast = out.split("For contrast, the entries on Xu Yan")
    assert jiang_part.count("verdict: SPILLOVER") == 11 and "OWN_CONDUCT" not in jiang_part
    assert all(float(c.split()[0]) >= 0.9 for c in jiang_part.split("contamination ")[1:])
    assert contrast.count("OWN_CONDUCT  contamination 0.000") == 4


def test_demo_json_scores(run):
    result = run("demo", "--format", "json")
    assert result.exit_code == 0
    explanations = json.loads(result.output)
    assert len(explanations) >= 10
    assert all(e["contamination"] >= 0.9 for e in explanations)
    xu = json.loads(run("demo", "--person", "xu_yan", "--format", "json").output)
    assert xu and all(e["contamination"] == 0 and e["verdict"] == "own_conduct" for e in xu)


def test_explain_json_follows_the_contract(run):
    result = run("explain", "E-QT-J", "--data", DATA, "--format", "json")
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    assert e["entry_id"] == "E-QT-J"
    assert e["platform_id"] == "qiantang_bank"
    assert e["subject"] == {"kind": "person", "id": "jiang"}
    assert 0.9 <= e["contamination"] <= 1
    assert e["verdict"] == "spillover"
    path = e["paths"][0]
    assert set(path["origin"]) >= {"loan_id", "borrower_id", "platform_id", "status"}
    assert path["origin"]["borrower_id"] == "xu_yan"
    first = path["steps"][0]
    assert first == {
        **first,
        "from": "person:jiang",
        "rel": "OWNS",
        "to": "phone:+8613957112345",
        "factor": 1.0,
    }
    product = 1.0
    for step in path["steps"]:
        product *= step["factor"]
    assert abs(product - path["responsibility"]) < 1e-6
    assert abs(e["contamination"] - (1 - path["responsibility"])) < 1e-6
    assert e["reason_codes"] and all(isinstance(c, str) for c in e["reason_codes"])
    assert e["policy"].startswith("spillover-default 1.0.0 sha256:")


def test_explain_text(run):
    result = run("explain", "E-TY-XU", "--data", DATA)
    assert result.exit_code == 0
    assert "OWN_CONDUCT" in result.output and "contamination 0.000" in result.output


def test_check_json_has_null_entry(run):
    result = run(
        "check",
        "--platform",
        "westlake_bank",
        "--subject",
        "13957112345",
        "--subject-kind",
        "phone",
        "--at",
        "2024-05-01",
        "--data",
        DATA,
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    assert e["entry_id"] is None
    assert e["subject"] == {"kind": "phone", "id": "+8613957112345"}
    assert e["contamination"] >= 0.9


def test_audit_csv_and_jsonl(run, tmp_path):
    out = tmp_path / "audit.csv"
    result = run("audit", "--data", DATA, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 16
    assert {
        "entry_id",
        "platform_id",
        "subject_kind",
        "subject",
        "contamination",
        "verdict",
        "origin_loan_id",
        "origin_borrower_id",
        "hops",
    } <= set(rows[0])
    by_id = {r["entry_id"]: r for r in rows}
    assert float(by_id["E-QT-J"]["contamination"]) >= 0.9
    assert by_id["E-QC-XU"]["verdict"] == "own_conduct"
    out2 = tmp_path / "audit.jsonl"
    assert run("audit", "--data", DATA, "--out", str(out2)).exit_code == 0
    lines = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [r["entry_id"] for r in lines] == [r["entry_id"] for r in rows]
    assert lines[0]["hops"] is None or isinstance(lines[0]["hops"], int)


def test_audit_refuses_unknown_extension(run, tmp_path):
    result = run("audit", "--data", DATA, "--out", str(tmp_path / "audit.xlsx"))
    assert result.exit_code == 1
    assert ".csv or .jsonl" in result.output
    result = run("audit", "--data", DATA, "--out", str(tmp_path / ".csv"))
    assert result.exit_code == 1
    assert "give the audit file a name before .csv" in result.output


def test_user_errors_are_one_clean_message(run, tmp_path, monkeypatch):
    for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)  # the no-graph message needs no Neo4j around
    result = run("explain", "NOPE", "--data", DATA)
    assert result.exit_code == 1
    assert "unknown blacklist entry 'NOPE'" in result.output
    assert "Traceback" not in result.output
    result = run("explain", "E1", "--data", str(tmp_path / "none"))
    assert result.exit_code == 1 and "does not exist" in result.output
    result = run("explain", "E1")
    assert result.exit_code == 1 and "--data" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\nname='x'\n")
    result = run("explain", "E-QT-J", "--data", DATA, "--policy", str(bad))
    assert result.exit_code == 1 and "bad.toml" in result.output


def test_bad_data_lists_every_problem(run, tmp_path):
    s = Scenario()
    s.person("a", id_number="330106198203154016")
    s.platform("p", kind="casino")
    s.phone("a")
    folder = s.write(tmp_path / "bad")
    result = run("explain", "E1", "--data", str(folder))
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output
    assert "people.csv:2: id_number:" in result.output
    assert "platforms.csv:2: kind:" in result.output


def test_real_subprocess_demo_and_error():
    # like the run fixture: a NEO4J_URI of the developer's shell must not send the demo to
    # Neo4j (it would write the Jiang case there and leave it behind)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    done = subprocess.run(
        [sys.executable, "-m", "spillover", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "Qiantang Bank" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "spillover", "explain", "NOPE", "--data", DATA],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip() == "spillover: error: unknown blacklist entry 'NOPE'"
    assert failed.stdout == ""


def test_synth_then_audit(run, tmp_path):
    folder = tmp_path / "synth"
    result = run("synth", "--people", "300", "--seed", "5", "--out", str(folder))
    assert result.exit_code == 0, result.output
    assert "ground truth" in result.output
    assert (folder / "ground_truth").is_dir()
    out = tmp_path / "audit.jsonl"
    result = run("audit", "--data", str(folder), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["rows"] == len(rows) > 0
    assert sum(summary["verdicts"].values()) == len(rows)
    again = run("synth", "--people", "300", "--seed", "5", "--out", str(folder))
    assert again.exit_code == 1 and "not empty" in again.output


def test_synth_refuses_too_few_people(run, tmp_path):
    result = run("synth", "--people", "3", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2


AUDIT_REFUSALS = [
    (
        {"engine": "spark", "write_back": True, "data": "d", "out": "o.csv"},
        "--write-back and --max-paths go with Neo4j, not --engine spark",
    ),
    ({"engine": "spark", "max_paths": 2, "data": "d", "out": "o.csv"}, "not --engine spark"),
    ({"engine": "spark", "out": "o.csv"}, "--engine spark needs --data DIR and --out FILE"),
    ({"engine": "spark", "data": "d"}, "--engine spark needs --data DIR and --out FILE"),
    ({"data": "d", "out": "o.csv", "master": "local[2]"}, "--master and --conf go with"),
    ({"data": "d", "out": "o.csv", "conf": {"a": "b"}}, "--master and --conf go with"),
    ({"data": "d", "write_back": True, "master": "local[2]"}, "--master and --conf go with"),
    ({"data": "d", "write_back": True, "out": "o.csv"}, "drop --out"),
    ({"data": "d", "write_back": True}, "--write-back needs Neo4j (--neo4j-uri or NEO4J_URI)"),
    ({"data": "d"}, "give --out FILE.csv|FILE.jsonl (or --write-back on Neo4j)"),
    ({"data": "d", "out": "o.csv", "max_paths": 2}, "--max-paths goes with --write-back"),
    ({"data": "d", "out": "o.csv", "check_traces": True}, "--check-traces goes with --write-back"),
]


@pytest.mark.parametrize(("given", "message"), AUDIT_REFUSALS)
def test_the_audit_refuses_option_combinations_in_the_library(given, message):
    # the engine choice and its refusals are one library call, not the command line's:
    # the library says it (UsageProblem), before reading anything
    from spillover.audit.run import AuditRequest, run_audit
    from spillover.errors import UsageProblem

    with pytest.raises(UsageProblem) as refused:
        run_audit(AuditRequest(**given))
    assert message in str(refused.value)


def test_the_audit_command_shows_a_library_refusal_as_a_usage_error(run, tmp_path):
    out = str(tmp_path / "a.csv")
    got = CliRunner().invoke(
        cli,
        ["audit", "--data", str(jiang_case_path()), "--out", out, "--master", "local[2]"],
    )
    assert got.exit_code == 2
    assert "Usage: cli audit [OPTIONS]" in got.stderr
    assert "Error: --master and --conf go with --engine spark" in got.stderr
    assert not (tmp_path / "a.csv").exists()


def test_serve_hands_the_password_on_without_the_command_line_writing_the_environment(
    monkeypatch,
):
    # the password of --neo4j-password reaches serve's workers through the library
    # (spillover.service.run.serve), which sets it beside the spec only when it starts them:
    # the command line writes no os.environ (refused here before anything starts)
    pytest.importorskip("fastapi")
    monkeypatch.setenv("NEO4J_PASSWORD", "from-the-shell")
    monkeypatch.delenv("SPILLOVER_TOKENS", raising=False)
    got = CliRunner().invoke(
        cli,
        ["serve", "--neo4j-uri", "bolt://127.0.0.1:9", "--neo4j-password", "given-on-the-line"],
    )
    assert got.exit_code == 1
    assert "no bearer tokens" in got.stderr
    assert os.environ["NEO4J_PASSWORD"] == "from-the-shell"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"bulk": False, "files_only": True}, "go with --bulk"),
        ({"bulk": False, "overwrite": True}, "go with --bulk"),
        ({"bulk": False, "import_threads": 4}, "go with --bulk"),
        ({"bulk": False, "neo4j_admin": "neo4j-admin"}, "go with --bulk"),
        ({"bulk": True, "wipe": True}, "use --overwrite, not --plan, --replace or --wipe"),
        ({"bulk": True, "plan": True}, "use --overwrite, not --plan, --replace or --wipe"),
        ({"bulk": True, "files_only": True}, "--files-only needs --files DIR"),
    ],
)
def test_ingest_refuses_option_combinations_in_the_library(given, message):
    from spillover.errors import UsageProblem
    from spillover.neo4j.ingest import check_options

    with pytest.raises(UsageProblem) as refused:
        check_options(**given)
    assert message in str(refused.value)
    check_options(bulk=True, files="f", files_only=True)  # what goes together passes
    check_options(bulk=False, plan=True, wipe=True)


def test_serve_without_a_graph_is_refused_by_the_library_first(monkeypatch, tmp_path):
    # the library refuses a spec with no graph before anything else (tokens, policy)
    pytest.importorskip("fastapi")
    from spillover.errors import SpilloverError
    from spillover.service import ServeConfig, serve

    monkeypatch.delenv("SPILLOVER_TOKENS", raising=False)
    with pytest.raises(SpilloverError, match=r"^no graph given: pass --data DIR"):
        serve(ServeConfig(check_log=str(tmp_path / "checks.jsonl")))


def test_a_command_out_of_memory_says_so_in_one_line(tmp_path):
    """A command that runs out of memory (numpy's _ArrayMemoryError, a MemoryError) ended
    in a traceback (`simulate` on a phone reassigned 16,000 times under a 3 GB limit):
    one `spillover: error: out of memory (...)` line, exit 1, nothing left behind. Here
    a real allocation past a real limit (RLIMIT_AS), in a child process."""
    import resource
    import subprocess
    import sys

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 10**9, 3 * 10**9))

    out = tmp_path / "huge"
    run = subprocess.run(
        [sys.executable, "-m", "spillover", "synth", "--people", "100000000", "--out", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=limited,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("spillover: error: out of memory (Unable to allocate")
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
