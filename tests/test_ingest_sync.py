"""Ingest makes the Neo4j database equal the folder: corrections, removals, plans, datasets.

Every test here runs against a real Neo4j (see conftest.py).
"""

from __future__ import annotations

import csv
import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from scenario import Scenario, random_scenario
from spillover.audit.batch import audit
from spillover.backends.memory import MemoryBackend
from spillover.cli import cli
from spillover.data.exact import load_folder
from spillover.engines.search import explain_all
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.neo4j.ingest import (
    DatasetMismatch,
    TableChange,
    graph_counts,
    held_rows,
    ingest_folder,
    mix_and_batch,
    read_marker,
    wipe,
)
from spillover.neo4j.store import Neo4jBackend

pytestmark = pytest.mark.neo4j

Rows = list[dict[str, str]]


def edit(folder: Path, table: str, change: Callable[[Rows], Rows]) -> None:
    """Rewrite ``folder/table.csv`` through ``change`` (a function of its rows)."""
    path = folder / f"{table}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    rows = change(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def setting(match: dict[str, str], **values: str) -> Callable[[Rows], Rows]:
    def change(rows: Rows) -> Rows:
        hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
        assert hits, match
        for r in hits:
            r.update(values)
        return rows

    return change


def dropping(match: dict[str, str]) -> Callable[[Rows], Rows]:
    def change(rows: Rows) -> Rows:
        kept = [r for r in rows if not all(r[k] == v for k, v in match.items())]
        assert len(kept) == len(rows) - 1, match
        return kept

    return change


def adding(*new: dict[str, str]) -> Callable[[Rows], Rows]:
    return lambda rows: rows + list(new)


def jiang_copy(tmp_path: Path, name: str = "case") -> Path:
    """The Jiang case with a few optional values set (so that a correction can clear them)."""
    folder = tmp_path / "v1" / name
    shutil.copytree(jiang_case_path(), folder)
    edit(folder, "phones", setting({"phone": "13600550077"}, until="2025-12-31"))
    edit(folder, "people", setting({"person_id": "xu_yan"}, city="Wenzhou"))
    return folder


def corrected(v1: Path, tmp_path: Path) -> Path:
    """The corrections of a dispute: an owner period, a status, a removed link and entry,
    a cleared end date and city, a new person with a phone and a loan."""
    folder = tmp_path / "v2" / v1.name
    shutil.copytree(v1, folder)
    # Jiang only got his number in 2024: the period key (its start) changes
    edit(folder, "phones", setting({"phone": "13957112345"}, since="2024-01-01"))
    edit(folder, "phones", setting({"phone": "13600550077"}, until=""))
    edit(folder, "phones", adding({"phone": "13800000001", "owner_id": "wang", "verified": "true",
                                   "since": "2020-01-01", "until": ""}))  # fmt: skip
    edit(folder, "people", setting({"person_id": "xu_yan"}, city=""))
    edit(folder, "people", adding({"person_id": "wang", "name": "Wang Wei", "id_number": "",
                                   "city": "Ningbo"}))  # fmt: skip
    edit(folder, "loans", setting({"loan_id": "XY-XY-1"}, status="defaulted"))
    edit(folder, "loans", adding({"loan_id": "WG-1", "platform_id": "quickcash",
                                  "borrower_id": "wang", "applied_at": "2023-02-01",
                                  "status": "defaulted", "applicant_phone": "13800000001",
                                  "phone_verified": "true", "amount": "1000",
                                  "status_at": "2023-05-01"}))  # fmt: skip
    edit(folder, "loan_links", dropping({"loan_id": "XY-MT-1", "phone": "13600550077"}))
    edit(folder, "blacklist", dropping({"entry_id": "E-LH-LN"}))
    return folder


def snapshot(db) -> tuple[dict[str, int], Any]:
    """Counts per label and type, and every row as stored (the dataset marker left out)."""
    counts = graph_counts(db.driver, db.settings.database)
    return counts, held_rows(db.driver, db.settings.database)


def fresh_snapshot(db, folder: Path) -> tuple[dict[str, int], Any]:
    wipe(db.driver, db.settings.database)
    ingest_folder(folder, db.driver, db.settings.database)
    return snapshot(db)


def assert_answers_equal_embedded(db, folder: Path, tmp_path: Path) -> int:
    """Every explanation and every audit row on Neo4j equals the embedded backend's on ``folder``."""
    memory = MemoryBackend(load_folder(folder))
    graph = Neo4jBackend(db.driver, db.settings.database)
    expected = list(explain_all(memory))
    got = list(explain_all(graph))
    assert [e.entry.entry_id for e in got] == [e.entry.entry_id for e in expected]
    for a, b in zip(expected, got, strict=True):
        assert a == b, a.entry.entry_id
    audit(memory, tmp_path / "memory.csv")
    audit(graph, tmp_path / "neo4j.csv")
    assert (tmp_path / "neo4j.csv").read_text() == (tmp_path / "memory.csv").read_text()
    return len(expected)


def test_a_corrected_folder_makes_neo4j_answer_like_the_embedded_graph(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    v1 = jiang_copy(tmp_path)
    first = ingest_folder(v1, driver, db)
    assert first.changes["people"] == TableChange(added=3)
    assert first.changes["owner_periods"] == TableChange(added=3)
    assert ingest_folder(v1, driver, db).unchanged

    v2 = corrected(v1, tmp_path)
    before = snapshot(neo4j_db)
    plan = ingest_folder(v2, driver, db, plan=True)
    assert not plan.applied
    assert snapshot(neo4j_db) == before, "a plan writes nothing"

    summary = ingest_folder(v2, driver, db)
    assert summary.changes == plan.changes
    assert summary.changes == {
        "platforms": TableChange(),
        "people": TableChange(added=1, changed=1),
        "phones": TableChange(added=1),
        # Jiang's period re-keyed (old removed, new added), Wang's added, Li Na's end cleared
        "owner_periods": TableChange(added=2, changed=1, removed=1),
        "loans": TableChange(added=1, changed=1),
        "loan_links": TableChange(removed=1),
        "blacklist": TableChange(removed=1),
        "copies": TableChange(),
        "sharing": TableChange(),
    }
    assert ingest_folder(v2, driver, db).unchanged, "a second ingest changes nothing"

    after = snapshot(neo4j_db)
    periods = after[1]["owner_periods"]
    assert [k for k in periods if k[0] == "+8613957112345"] == [
        ("+8613957112345", "jiang", "2024-01-01")
    ]
    assert "until" not in periods[("+8613600550077", "li_na", "2016-09-01")]
    assert "city" not in after[1]["people"]["xu_yan"]
    explained = assert_answers_equal_embedded(neo4j_db, v2, tmp_path)
    assert explained == 15
    assert after == fresh_snapshot(neo4j_db, v2), "the same graph as a fresh ingest"


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4)])
def test_any_folder_after_any_other_gives_the_graph_of_a_fresh_ingest(neo4j_db, tmp_path, seeds):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    old = random_scenario(seeds[0]).write(tmp_path / "a" / "data")
    new = random_scenario(seeds[1], people=12, loans=20).write(tmp_path / "b" / "data")
    ingest_folder(old, driver, db)
    summary = ingest_folder(new, driver, db)
    assert sum(c.removed for c in summary.changes.values()) > 0
    assert ingest_folder(new, driver, db).unchanged
    after = snapshot(neo4j_db)
    assert_answers_equal_embedded(neo4j_db, new, tmp_path)
    assert after == fresh_snapshot(neo4j_db, new)


def test_changed_references_move_their_relationships(neo4j_db, tmp_path):
    """A loan's borrower, platform and applicant phone, an entry's platform and subject and
    its copy source, a sharing date: each correction leaves no stale relationship."""
    s = Scenario()
    for p in ("a", "b"):
        s.person(p)
    for pl in ("x", "y"):
        s.platform(pl)
    pa, pb = s.phone("a"), s.phone("b")
    s.loan("L", "x", "a", "2023-01-01", status="defaulted", applicant_phone=pa)
    s.entry("E1", "x", pa, "2023-06-01", kind="phone")
    s.entry("E2", "y", "a", "2023-07-01", copied_from="E1")
    s.share("x", "y", since="2022-01-01")
    v1 = s.write(tmp_path / "v1" / "d")
    ingest_folder(v1, neo4j_db.driver, neo4j_db.settings.database)
    s.tables["loans"][0].update(platform_id="y", borrower_id="b", applicant_phone=pb)
    s.tables["blacklist"][0].update(platform_id="y", subject=pb)
    s.tables["blacklist"][1].update(subject="b", copied_from=None)
    s.tables["sharing"][0].update(since=None)
    v2 = s.write(tmp_path / "v2" / "d")
    summary = ingest_folder(v2, neo4j_db.driver, neo4j_db.settings.database)
    assert summary.changes["loans"] == TableChange(changed=1)
    assert summary.changes["copies"] == TableChange(removed=1)
    assert summary.changes["sharing"] == TableChange(changed=1)
    after = snapshot(neo4j_db)
    assert after[0]["BORROWED"] == 1 and after[0]["LISTS"] == 2 and "COPIED_FROM" not in after[0]
    assert_answers_equal_embedded(neo4j_db, v2, tmp_path)
    assert after == fresh_snapshot(neo4j_db, v2)


def test_a_match_weight_corrected_from_0_to_minus_0_answers_as_the_embedded_graph(
    neo4j_env, tmp_path
):
    """Neo4j leaves a float property as it is when a write sets it to an equal value, and
    -0.0 equals 0.0: a match weight corrected from 0 to -0 stayed 0.0 in the store (the
    ingest's own comparison saw no change either) while the folder read -0.0, so
    `explain` printed `"match_weight": 0.0` on Neo4j and `-0.0` on the folder. The
    loaders read -0 as 0, as they read an amount."""
    v1 = tmp_path / "v1" / "records"
    shutil.copytree(jiang_records_path(), v1)
    flat = '[{"field": "phone", "level": "exact", "agreed": true, "log2_bayes_factor": %s}]'
    edit(v1, "matches", setting({"record_id": "TY-R-XU"}, match_weight="0", waterfall=flat % "0.0"))
    v2 = tmp_path / "v2" / "records"
    shutil.copytree(v1, v2)
    edit(v2, "matches", setting({"record_id": "TY-R-XU"}, match_weight="-0"))
    edit(v2, "matches", setting({"record_id": "TY-R-XU"}, waterfall=flat % "-0.0"))
    runner = CliRunner()
    for folder in (v1, v2):
        ingested = runner.invoke(cli, ["ingest", str(folder)])
        assert ingested.exit_code == 0, ingested.output
        for fmt in ("json", "text"):
            args = ["explain", "E-ZM-J", "--format", fmt]
            on_neo4j = runner.invoke(cli, args)
            embedded = runner.invoke(cli, [*args, "--data", str(folder)])
            assert on_neo4j.exit_code == 0, on_neo4j.output
            assert on_neo4j.output == embedded.output, (folder, fmt)
    json_out = runner.invoke(cli, ["explain", "E-ZM-J", "--format", "json", "--data", str(v2)])
    assert '"match_weight": 0.0' in json_out.output
    assert '"log2_bayes_factor": 0.0' in json_out.output and "-0.0" not in json_out.output


def test_another_dataset_is_refused_unless_named_or_replaced(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    v1 = jiang_copy(tmp_path, name="jiang")
    ingest_folder(v1, driver, db)
    assert read_marker(driver, db).name == "jiang"
    other = random_scenario(5).write(tmp_path / "other")
    before = snapshot(neo4j_db)
    with pytest.raises(DatasetMismatch, match=r"holds dataset 'jiang'.*--dataset jiang"):
        ingest_folder(other, driver, db)
    with pytest.raises(DatasetMismatch):
        ingest_folder(other, driver, db, plan=True)
    assert snapshot(neo4j_db) == before
    # a corrected copy in another folder: the same dataset when named so
    v2 = corrected(v1, tmp_path)
    shutil.move(v2, tmp_path / "jiang-corrected")
    ingest_folder(tmp_path / "jiang-corrected", driver, db, dataset="jiang")
    assert read_marker(driver, db).name == "jiang"
    summary = ingest_folder(other, driver, db, replace=True)
    assert summary.previous == "jiang" and read_marker(driver, db).name == "other"
    assert snapshot(neo4j_db) == fresh_snapshot(neo4j_db, other)


def test_a_graph_without_marker_is_refused_unless_replaced(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    driver.execute_query("CREATE (:Person {id: 'stray', name: 'Stray'})", database_=db)
    with pytest.raises(DatasetMismatch, match="no dataset marker"):
        ingest_folder(jiang_case_path(), driver, db)
    summary = ingest_folder(jiang_case_path(), driver, db, replace=True)
    assert summary.changes["people"] == TableChange(added=3, removed=1)


def test_cli_ingest_plan_replace_and_wipe(neo4j_env, tmp_path):
    runner = CliRunner()
    v1 = jiang_copy(tmp_path)
    first = runner.invoke(cli, ["ingest", str(v1)])
    assert first.exit_code == 0, first.output
    assert "ingested 69 rows of dataset 'case'" in first.output
    assert "  people                 3         0         0" in first.output
    v2 = corrected(v1, tmp_path)
    plan = runner.invoke(cli, ["ingest", str(v2), "--plan"])
    assert plan.exit_code == 0, plan.output
    assert plan.output.startswith("plan for dataset 'case'")
    assert "  owner_periods          2         1         1" in plan.output
    assert "ingested" not in plan.output
    applied = runner.invoke(cli, ["ingest", str(v2)])
    assert "  owner_periods          2         1         1" in applied.output
    again = runner.invoke(cli, ["ingest", str(v2), "--plan"])
    assert again.output.rstrip().endswith("the database already equals the folder")

    other = random_scenario(2).write(tmp_path / "other")
    refused = runner.invoke(cli, ["ingest", str(other)])
    assert refused.exit_code == 1
    assert refused.output.startswith("spillover: error: the database holds dataset 'case'")
    assert len(refused.output.strip().splitlines()) == 1
    replaced = runner.invoke(cli, ["ingest", str(other), "--replace"])
    assert replaced.exit_code == 0 and "replaces dataset 'case'" in replaced.output
    wiped = runner.invoke(cli, ["ingest", str(v2), "--wipe", "--yes"])
    assert wiped.exit_code == 0, wiped.output
    assert "wiped" in wiped.output and "removed" in wiped.output
    counts = graph_counts(neo4j_env.driver, neo4j_env.settings.database)
    assert counts["Person"] == 4 and counts["Dataset"] == 1


def test_wipe_empties_the_database_in_small_transactions(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    calls: list[tuple[str, int, int]] = []
    deleted = wipe(driver, db, batch=7, progress=lambda *a: calls.append(a), poll=0.01)
    assert deleted == 132 and graph_counts(driver, db) == {}
    assert all(stage == "wipe" and total == 132 for stage, _, total in calls)
    assert wipe(driver, db) == 0


def test_the_data_version_rises_with_every_ingest_that_changes_the_data(neo4j_db, tmp_path):
    """Issue 19 item 7: the marker's data_version says whether the data changed since a
    write-back read it; the write-back's properties on the marker survive an ingest."""
    from spillover.neo4j.ingest import data_version_of
    from spillover.neo4j.saved import results_status
    from spillover.neo4j.writeback import write_back

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    v1 = jiang_copy(tmp_path)
    first = ingest_folder(v1, driver, db)
    assert first.data_version == 1 and not first.stale_results
    assert data_version_of(read_marker(driver, db)) == 1
    write_back(Neo4jBackend(driver, db))
    status = results_status(driver, db)
    assert (status["state"], status["results_data_version"]) == ("current", 1)
    # the same folder again: nothing changes, the results stay current
    again = ingest_folder(v1, driver, db)
    assert again.unchanged and again.data_version == 1 and not again.stale_results
    assert results_status(driver, db)["state"] == "current"
    # a plan changes nothing either
    v2 = corrected(v1, tmp_path)
    ingest_folder(v2, driver, db, plan=True)
    assert results_status(driver, db)["state"] == "current"
    # a correction raises it: the results are stale, and the marker still names them
    second = ingest_folder(v2, driver, db)
    assert second.data_version == 2 and second.stale_results
    marker = read_marker(driver, db).props or {}
    assert marker["complete"] is True and "finished_at" in marker
    status = results_status(driver, db)
    assert (status["state"], status["data_version"], status["results_data_version"]) == (
        "stale",
        2,
        1,
    )
    # only the ingest that made them stale says so
    back = ingest_folder(v1, driver, db)
    assert back.data_version == 3 and not back.stale_results
    # --wipe deletes the results with everything else
    wiped = ingest_folder(v1, driver, db, wipe_first=True)
    assert wiped.data_version == 4 and not wiped.stale_results
    assert results_status(driver, db)["state"] == "none"


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=80),
    st.integers(1, 5),
)
def test_mixed_and_batched_lanes_of_a_round_share_no_node(pairs, lanes):
    rows = [{"loan": f"L{a}", "phone": f"P{b}", "n": i} for i, (a, b) in enumerate(pairs)]
    rounds = mix_and_batch(rows, ("loan", "phone"), lanes)
    assert len(rounds) == lanes and all(len(r) == lanes for r in rounds)
    written = [row["n"] for lanes_ in rounds for lane in lanes_ for row in lane]
    assert sorted(written) == list(range(len(rows))), "every row once"
    for lanes_ in rounds:
        for lane in lanes_:
            assert [r["n"] for r in lane] == sorted(r["n"] for r in lane), "order kept"
        for one, other in itertools.combinations(lanes_, 2):
            assert not {r["loan"] for r in one} & {r["loan"] for r in other}
            assert not {r["phone"] for r in one} & {r["phone"] for r in other}


@pytest.mark.parametrize("workers", [1, 3])
def test_concurrent_writers_give_the_graph_of_one_writer(neo4j_db, tmp_path, workers):
    """Many lanes and rounds of tiny batches (people, phones, owners, loan links) write
    exactly the graph one writer in large batches writes."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    folder = random_scenario(5, people=30, loans=60).write(tmp_path / "data")
    ingest_folder(folder, driver, db, batch_size=3, workers=workers)
    many = snapshot(neo4j_db)
    assert many[0]["LINKS"] > 0 and many[0]["OWNS"] > 0
    assert many == fresh_snapshot(neo4j_db, folder)
