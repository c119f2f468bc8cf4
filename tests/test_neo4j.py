"""Neo4j-only behaviour: ingest (idempotent, all-or-nothing), connection errors, parity with memory.

Every test here runs against a real Neo4j (see conftest.py); none is skipped.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from scenario import Scenario, random_scenario
from spillover.backends.memory import MemoryBackend
from spillover.cli import cli
from spillover.connect import read_columns
from spillover.data.exact import load_folder
from spillover.engines.search import explain_all
from spillover.errors import BackendUnavailable, DataError, SpilloverError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.columns import Columns
from spillover.neo4j.ingest import graph_counts, ingest_folder, read_marker
from spillover.neo4j.store import Neo4jBackend, Neo4jSettings, open_neo4j

pytestmark = pytest.mark.neo4j


def test_ingest_twice_changes_nothing(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    first = ingest_folder(jiang_case_path(), driver, db)
    second = ingest_folder(jiang_case_path(), driver, db)
    assert first.counts == second.counts
    assert (
        first.counts["Person"] == 3 and first.counts["Entry"] == 16 and first.counts["Loan"] == 10
    )
    assert first.counts["COPIED_FROM"] == 4 and first.counts["SHARES_WITH"] == 11


def test_a_bad_folder_leaves_the_database_as_it_was(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    before = graph_counts(driver, db)
    entries_before = [e for batch in Neo4jBackend(driver, db).iter_entries() for e in batch]
    s = Scenario()
    s.person("new_person")
    s.platform("new_lender")
    s.phone("new_person")
    s.loan("NEW", "new_lender", "new_person", "2024-01-01")
    s.loan("BAD", "ghost_platform", "new_person", "2024-01-01")
    with pytest.raises(DataError, match="ghost_platform"):
        ingest_folder(s.write(tmp_path / "bad"), driver, db, wipe_first=True)
    assert graph_counts(driver, db) == before
    assert [e for batch in Neo4jBackend(driver, db).iter_entries() for e in batch] == entries_before


def test_wipe_then_ingest_holds_only_the_new_data(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    s = Scenario()
    s.person("solo")
    s.platform("p")
    s.phone("solo")
    s.loan("L", "p", "solo", "2024-01-01")
    summary = ingest_folder(s.write(tmp_path / "d"), driver, db, wipe_first=True)
    assert summary.counts["Person"] == 1 and "Entry" not in summary.counts


def test_unreachable_server_is_one_clear_line():
    with pytest.raises(BackendUnavailable, match=r"cannot reach Neo4j at bolt://127\.0\.0\.1:1"):
        open_neo4j(Neo4jSettings("bolt://127.0.0.1:1", "neo4j", "x"))


def test_wrong_password_is_refused(neo4j_service):
    bad = Neo4jSettings(neo4j_service.settings.uri, neo4j_service.settings.user, "wrong-password")
    with pytest.raises(BackendUnavailable, match="refused the credentials"):
        open_neo4j(bad)


def test_cli_connection_errors_exit_1_with_the_uri():
    result = CliRunner().invoke(cli, ["explain", "E1", "--neo4j-uri", "bolt://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "bolt://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def _parity(folder, neo4j_db) -> int:
    data = load_folder(folder)
    ingest_folder(folder, neo4j_db.driver, neo4j_db.settings.database, wipe_first=True)
    memory = list(explain_all(MemoryBackend(data)))
    graph = list(explain_all(Neo4jBackend(neo4j_db.driver, neo4j_db.settings.database)))
    assert [e.entry.entry_id for e in memory] == [e.entry.entry_id for e in graph]
    for a, b in zip(memory, graph, strict=True):
        assert a == b, a.entry.entry_id
    return len(memory)


def test_jiang_case_parity(neo4j_db):
    assert _parity(jiang_case_path(), neo4j_db) == 16


@pytest.mark.parametrize("seed", range(8))
def test_generated_graph_parity(neo4j_db, tmp_path, seed):
    s = random_scenario(seed)
    explained = _parity(s.write(tmp_path / "d"), neo4j_db)
    assert explained == 15


def test_cli_on_neo4j_matches_the_embedded_run(neo4j_env, tmp_path):
    runner = CliRunner()
    ingested = runner.invoke(cli, ["ingest", str(jiang_case_path())])
    assert ingested.exit_code == 0, ingested.output
    assert "ingested" in ingested.output
    again = runner.invoke(cli, ["ingest", str(jiang_case_path())])
    assert again.output.split("holds")[1] == ingested.output.split("holds")[1]
    data = str(jiang_case_path())
    for args in (
        ["explain", "E-ZM-J", "--format", "json"],
        [
            "check",
            "--platform",
            "westlake_bank",
            "--subject",
            "jiang",
            "--at",
            "2024-05-01",
            "--format",
            "json",
        ],
    ):
        on_neo4j = runner.invoke(cli, args)
        embedded = runner.invoke(cli, [*args, "--data", data])
        assert on_neo4j.exit_code == 0, on_neo4j.output
        assert json.loads(on_neo4j.output) == json.loads(embedded.output)
    out_a, out_b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert runner.invoke(cli, ["audit", "--out", str(out_a)]).exit_code == 0
    assert runner.invoke(cli, ["audit", "--out", str(out_b), "--data", data]).exit_code == 0
    assert out_a.read_text() == out_b.read_text()


def test_cli_ingest_refuses_bad_data_and_asks_before_wiping(neo4j_env, tmp_path):
    runner = CliRunner()
    s = Scenario()
    s.person("a", id_number="123")
    result = runner.invoke(cli, ["ingest", str(s.write(tmp_path / "bad"))])
    assert result.exit_code == 1
    assert "people.csv:2: id_number:" in result.output
    assert graph_counts(neo4j_env.driver, neo4j_env.settings.database) == {}
    declined = runner.invoke(cli, ["ingest", str(jiang_case_path()), "--wipe"], input="n\n")
    assert declined.exit_code == 1
    assert graph_counts(neo4j_env.driver, neo4j_env.settings.database) == {}


def test_demo_on_neo4j(neo4j_env):
    result = CliRunner().invoke(cli, ["demo", "--format", "json"])
    assert result.exit_code == 0, result.output
    explanations = json.loads(
        result.output.split("\n", 1)[1] if result.output.startswith("(") else result.output
    )
    assert len(explanations) == 11 and all(e["contamination"] >= 0.9 for e in explanations)


#: the columns of each table of Columns, by field name prefix
_TABLES = ("person_", "platform_", "period_", "loan_", "link_", "entry_", "share_")


def _facts(columns: Columns) -> dict[str, list[tuple[object, ...]]]:
    """The columns' rows per table, sorted (the stores need not keep one row order)."""
    out = {}
    for prefix in _TABLES:
        cols = [  # numpy or Arrow arrays (a folder's strings stay in Arrow)
            np.asarray(v).tolist()
            for k, v in vars(columns).items()
            if k.startswith(prefix) and k != "loan_record"
        ]
        out[prefix] = sorted(zip(*cols, strict=True))
    return out


@pytest.mark.parametrize(
    "folder", [jiang_case_path(), jiang_records_path()], ids=["case", "records"]
)
def test_the_column_reads_give_the_folders_columns(neo4j_db, folder):
    """Neo4jBackend.columns (one list per field, the reads side by side) holds the rows
    of the folder's own columns (periods of a known owner: Neo4j keeps only those)."""
    ingest_folder(folder, neo4j_db.driver, neo4j_db.settings.database, wipe_first=True)
    from_neo4j = Neo4jBackend(neo4j_db.driver, neo4j_db.settings.database).columns()
    from_folder = read_columns(folder)
    known = np.asarray(from_folder.period_owner) != ""
    periods = {
        k: np.asarray(v)[known] for k, v in vars(from_folder).items() if k.startswith("period_")
    }
    from_folder = replace(from_folder, **periods)
    assert _facts(from_neo4j) == _facts(from_folder)
    if from_folder.loan_record is not None:
        assert from_neo4j.loan_record is not None
        by_loan = {}
        for c in (from_neo4j, from_folder):
            by_loan[c is from_neo4j] = sorted(
                zip(
                    np.asarray(c.loan_ids).tolist(), np.asarray(c.loan_record).tolist(), strict=True
                )
            )
        assert by_loan[True] == by_loan[False]
    assert from_neo4j.records == from_folder.records
    assert from_neo4j.matches == from_folder.matches


def test_a_node_without_a_required_property_is_refused_not_misread(neo4j_db):
    """collect() drops nulls: a loan without applied_at would shift every later day of the
    column onto the wrong loan, so the read refuses it."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    driver.execute_query(
        "CREATE (:Loan {id: 'NO-DAY', platform_id: 'quickcash', borrower_id: 'jiang', "
        "status: 'repaid'})",
        database_=db,
    )
    with pytest.raises(BackendUnavailable, match="columns_loans: applied missing on some of 11"):
        Neo4jBackend(driver, db).columns()


def _long_ids_case(person: str, entry: str, platform: str = "lender") -> Scenario:
    """A stranger's default lists ``person`` (an emergency contact), as entry ``entry``."""
    s = Scenario()
    s.person(person, "Long")
    s.person("xu")
    s.platform(platform)
    phone = s.phone(person)
    s.phone("xu", "+8615000000001")
    s.loan("L1", platform, "xu", "2023-01-10", "defaulted", status_at="2023-03-01")
    s.link("L1", phone, "emergency_contact")
    s.entry(entry, platform, person, "2023-04-01")
    return s


@pytest.mark.parametrize(
    ("person", "entry", "platform", "refused"),
    [
        ("p" * 8156, "E1", "lender", "blacklist: subject 'pppp"),  # 8162 with 'person'
        ("\U0001f600" * 2039, "E1", "lender", "(8156 bytes, 8162 with its subject_kind person)"),
        ("jiang", "E" * 8165, "lender", "blacklist: entry_id 'EEEE"),
        ("jiang", "E1", "中" * 2722, "platforms: platform_id '中中"),  # 8166 bytes
    ],
    ids=["person-listed", "person-astral", "entry", "platform-cjk"],
)
def test_ids_longer_than_neo4j_indexes_hold_are_refused_before_any_write(
    neo4j_db, tmp_path, person, entry, platform, refused
):
    """Neo4j's range indexes hold keys of 8164 bytes of UTF-8 at most (the pair of an
    entry's subject_kind and subject, 8161): an ingest of a longer id failed part-way
    ("Property value is too large to index"), leaving the database half-written (an
    entry removed, its replacement missing) and marked incomplete. Such a folder is
    refused first; ids at the limits ingest and answer as on the embedded graph."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db, dataset="d")
    before = graph_counts(driver, db)
    folder = _long_ids_case(person, entry, platform).write(tmp_path / "long")
    with pytest.raises(SpilloverError, match="Neo4j cannot hold this folder") as caught:
        ingest_folder(folder, driver, db, dataset="d", replace=True)
    assert refused in str(caught.value)
    assert graph_counts(driver, db) == before
    assert read_marker(driver, db).props["complete"] is True
    with pytest.raises(SpilloverError, match="Neo4j cannot hold this folder"):
        ingest_folder(folder, driver, db, dataset="d", wipe_first=True)
    assert graph_counts(driver, db) == before


def test_ids_at_the_limits_of_neo4j_indexes_answer_as_on_the_embedded_graph(neo4j_db, tmp_path):
    s = _long_ids_case("p" * 8155, "E" * 8164, "q" * 8164)
    s.entry("\U0001f600" * 2041, "q" * 8164, "+8615000000001", "2023-04-01", kind="phone")
    assert _parity(s.write(tmp_path / "limits"), neo4j_db) == 2
