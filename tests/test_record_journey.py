"""The journey to the end (issue 21 item 5): ``synth --records`` makes loans named by a
record, entries on records and one record of a person posing as another, with the truth
in ``ground_truth/record_journey.csv``; ``audit`` before and after ``link`` differs
exactly on those entries, and the posing record's listing is explained through a match
step with its waterfall. Also: such a folder goes through the fast loader."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("splink")

from spillover.cli import cli
from spillover.data import fast as fastload
from spillover.data.exact import load_folder
from spillover.link.resolve import link
from spillover.synth.generate import generate

JOURNEY_COLUMNS = ["entry_id", "loan_id", "record_id", "person_id", "posing_as"]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synth --records folder of 300 people, linked, and the audit of both."""
    tmp = tmp_path_factory.mktemp("journey")
    data = generate(300, 1, tmp / "data", records=True).out
    linked = tmp / "linked"
    link(data, linked)
    runner = CliRunner()
    for folder, out in ((data, tmp / "before.csv"), (linked, tmp / "after.csv")):
        result = runner.invoke(cli, ["audit", "--data", str(folder), "--out", str(out)])
        assert result.exit_code == 0, result.output
    return {
        "data": data,
        "linked": linked,
        "before": tmp / "before.csv",
        "after": tmp / "after.csv",
    }


def test_synth_records_journey_is_seeded_and_complete(tmp_path: Path) -> None:
    a = generate(300, 1, tmp_path / "a", records=True).out
    b = generate(300, 1, tmp_path / "b", records=True).out
    for name in ("loans.csv", "blacklist.csv", "records.csv", "ground_truth/record_journey.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    truth = read(a / "ground_truth" / "record_journey.csv")
    assert list(truth[0]) == JOURNEY_COLUMNS and len(truth) >= 4
    loans = {r["loan_id"]: r for r in read(a / "loans.csv")}
    entries = {r["entry_id"]: r for r in read(a / "blacklist.csv")}
    records = {r["record_id"]: r for r in read(a / "records.csv")}
    for row in truth:
        loan, entry = loans[row["loan_id"]], entries[row["entry_id"]]
        assert loan["borrower_record"] == row["record_id"] and loan["borrower_id"] == ""
        assert loan["status"] == "defaulted" and loan["platform_id"] == entry["platform_id"]
        assert (entry["subject_kind"], entry["subject"]) == ("record", row["record_id"])
        assert records[row["record_id"]]["person_id"] == ""  # the data names no one
    posing = [r for r in truth if r["posing_as"]]
    assert len(posing) == 1 and posing[0]["posing_as"] != posing[0]["person_id"]
    # the posing record carries the name and phone of a record the data names for the other
    fake = records[posing[0]["record_id"]]
    assert any(
        r["person_id"] == posing[0]["posing_as"]
        and (r["name"], r["phone"]) == (fake["name"], fake["phone"])
        for r in records.values()
    )


def test_the_journey_folder_goes_through_the_fast_loader(journey: dict[str, Path]) -> None:
    for folder in (journey["data"], journey["linked"]):
        assert fastload._fast(folder, "CN", None)[2] is not None  # checked, not handed over
        assert fastload.read_dataset(folder) == load_folder(folder)


def test_audit_before_and_after_link_differs_exactly_on_the_record_entries(
    journey: dict[str, Path],
) -> None:
    truth = {
        r["entry_id"]: r for r in read(journey["data"] / "ground_truth" / "record_journey.csv")
    }
    before = {r["entry_id"]: r for r in read(journey["before"])}
    after = {r["entry_id"]: r for r in read(journey["after"])}
    assert before.keys() == after.keys()
    changed = {e for e in before if before[e] != after[e]}
    assert changed == set(truth)
    for entry_id, row in truth.items():
        # before link: the record resolves to no one, its loan is out of the graph
        assert before[entry_id]["verdict"] == "unexplained"
        assert after[entry_id]["origin_loan_id"] == row["loan_id"]
        assert any(
            code.startswith("MATCHED_BY_") for code in after[entry_id]["reason_codes"].split()
        )


def test_the_misidentified_listing_is_explained_through_a_match(
    journey: dict[str, Path],
) -> None:
    truth = read(journey["data"] / "ground_truth" / "record_journey.csv")
    posing = next(r for r in truth if r["posing_as"])
    after = {r["entry_id"]: r for r in read(journey["after"])}
    # link takes the record for the person whose name and phone it carries: the listing
    # (and the loan) now fall on that person, not on the one who borrowed
    assert after[posing["entry_id"]]["origin_borrower_id"] == posing["posing_as"]
    assert posing["person_id"] != posing["posing_as"]
    result = CliRunner().invoke(
        cli, ["explain", posing["entry_id"], "--data", str(journey["linked"])]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"(record {posing['record_id']}) was matched to" in text
    assert "match: " in text and "probability" in text  # the match step and its factor
    for field in ("name", "phone"):  # its waterfall: the fields that agreed
        assert any(
            line.split()[:1] == [field] and "agreed" in line for line in text.splitlines()
        ), text
