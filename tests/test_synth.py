"""The synthetic data generator: valid folders, determinism, consistent ground truth, realism."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from spillover.data.exact import load_folder
from spillover.errors import SpilloverError
from spillover.facts.resident_id import validate_resident_id
from spillover.synth.generate import MECHANISMS, SynthParams, SynthSummary, generate

TABLES = ("people", "platforms", "phones", "loans", "loan_links", "blacklist", "sharing")


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSummary, dict[str, list]]:
    out = tmp_path_factory.mktemp("synth") / "data"
    summary = generate(2000, 11, out)
    tables = {t: rows(out, f"{t}.csv") for t in TABLES}
    for t in ("entries", "people", "loans", "platforms"):
        tables[f"truth_{t}"] = rows(out, f"ground_truth/{t}.csv")
    return summary, tables


def test_folder_loads_and_counts_match(world):
    summary, tables = world
    data = load_folder(summary.out)
    assert data.counts() == summary.counts
    assert summary.counts == {t: len(tables[t]) for t in TABLES}
    assert summary.truth_counts["entries"] == summary.counts["blacklist"]
    assert summary.people == 2000 and summary.seed == 11 and summary.elapsed > 0
    assert not (summary.out / "truth.csv").exists()  # the truth lives in ground_truth/


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate(300, 5, tmp_path / "a")
    b = generate(300, 5, tmp_path / "b")
    c = generate(300, 6, tmp_path / "c")
    assert a.counts == b.counts
    da, db, dc = digests(a.out), digests(b.out), digests(c.out)
    assert da == db
    assert set(da) == set(dc)
    for name in ("people.csv", "phones.csv", "loans.csv", "loan_links.csv", "blacklist.csv"):
        assert da[name] != dc[name], name


def test_parameters_change_the_output(tmp_path):
    base = generate(300, 5, tmp_path / "a")
    other = generate(300, 5, tmp_path / "b", p_second_phone=0.0, platforms=6)
    assert other.counts["platforms"] == 6
    assert other.counts["phones"] == 300  # one number each, none reassigned
    assert other.params.p_second_phone == 0.0
    assert digests(base.out)["loans.csv"] != digests(other.out)["loans.csv"]


def test_every_entry_has_consistent_ground_truth(world):
    _, t = world
    entries = {r["entry_id"]: r for r in t["blacklist"]}
    truth = {r["entry_id"]: r for r in t["truth_entries"]}
    assert list(entries) == list(truth)
    loans = {r["loan_id"]: r for r in t["loans"]}
    sharing = {(r["from_platform"], r["to_platform"]): r["since"] for r in t["sharing"]}
    mechanisms = Counter()
    for entry_id, row in truth.items():
        entry = entries[entry_id]
        mechanisms[row["mechanism"]] += 1
        assert row["mechanism"] in MECHANISMS and row["root_mechanism"] in MECHANISMS[:3]
        assert (row["subject_kind"], row["subject"]) == (entry["subject_kind"], entry["subject"])
        cause = loans[row["cause_loan_id"]]
        assert row["cause_borrower_id"] == cause["borrower_id"]
        assert cause["status"] in ("overdue", "defaulted")
        assert cause["applied_at"] <= cause["status_at"] < entry["listed_at"]
        spill = row["is_spillover"] == "true"
        assert spill == (row["subject_person_id"] != cause["borrower_id"])
        if entry["subject_kind"] == "person":
            assert row["subject_person_id"] == entry["subject"]
            if spill:
                assert entry["subject"] != cause["borrower_id"]
        if row["mechanism"] == "own_default" and entry["subject_kind"] == "person":
            assert not spill and entry["platform_id"] == cause["platform_id"]
        if row["root_mechanism"] in ("contact_listing", "misused_phone"):
            assert row["linked_person_id"] != cause["borrower_id"]
        if row["mechanism"] in MECHANISMS[:3]:
            assert entry["platform_id"] == cause["platform_id"] and entry["copied_from"] == ""
            assert row["root_entry_id"] == entry_id
        else:  # copy or shared: the source reaches this platform through sharing, in time
            source_id = entry["copied_from"] or row["true_source"]
            assert (entry["copied_from"] != "") == (row["mechanism"] == "copy")
            assert source_id == row["true_source"]
            source = entries[source_id]
            assert source["listed_at"] <= entry["listed_at"]
            since = sharing[(source["platform_id"], entry["platform_id"])]
            assert since <= entry["listed_at"]
            assert truth[source_id]["cause_loan_id"] == row["cause_loan_id"]
    assert set(mechanisms) == set(MECHANISMS), mechanisms


def test_contact_listings_point_at_links_of_the_cause_loan(world):
    _, t = world
    links = defaultdict(set)
    for r in t["loan_links"]:
        links[r["loan_id"]].add((r["phone"], r["role"]))
    contact = [r for r in t["truth_entries"] if r["mechanism"] == "contact_listing"]
    assert len(contact) >= 10
    for r in contact:
        assert (r["via_phone"], r["link_role"]) in links[r["cause_loan_id"]]
        if r["subject_kind"] == "phone":
            assert r["subject"] == r["via_phone"]


def test_people_truth_matches_loans(world):
    _, t = world
    defaulted = {r["borrower_id"] for r in t["loans"] if r["status"] == "defaulted"}
    truth = {r["person_id"]: r for r in t["truth_people"]}
    assert list(truth) == [r["person_id"] for r in t["people"]]
    assert {p for p, r in truth.items() if r["defaulted"] == "true"} == defaulted
    counts = Counter(r["borrower_id"] for r in t["loans"])
    assert all(int(r["loans"]) == counts[p] for p, r in truth.items())
    # defaults concentrate on a minority; loan counts are skewed
    assert len(defaulted) < 0.15 * len(truth)
    per_person = sorted(counts.get(p, 0) for p in truth)
    assert sum(1 for c in per_person if c <= 1) > 0.4 * len(per_person)
    assert per_person[-1] >= 8


def test_platforms_and_sharing_network(world):
    _, t = world
    kinds = Counter(r["kind"] for r in t["platforms"])
    assert set(kinds) == {"bank", "online_lender", "data_broker"}
    lenders = [r for r in t["platforms"] if r["kind"] == "online_lender"]
    assert {r["verifies_phone"] for r in lenders} == {"true", "false"}
    kind_of = {r["platform_id"]: r["kind"] for r in t["platforms"]}
    edges = {(kind_of[r["from_platform"]], kind_of[r["to_platform"]]) for r in t["sharing"]}
    assert ("online_lender", "data_broker") in edges and ("data_broker", "bank") in edges
    assert edges <= {
        ("online_lender", "data_broker"),
        ("data_broker", "bank"),
        ("online_lender", "online_lender"),
    }
    assert {r["platform_id"] for r in t["truth_platforms"]} == set(kind_of)


def test_people_and_phones_look_real(world):
    _, t = world
    people = t["people"]
    with_id = [r["id_number"] for r in people if r["id_number"]]
    assert len(with_id) > 0.9 * len(people) and len(set(with_id)) == len(with_id)
    for number in with_id[:300]:
        assert validate_resident_id(number) == number
    assert sum(1 for r in people if r["city"]) > 0.9 * len(people)
    periods = defaultdict(list)
    for r in t["phones"]:
        assert r["phone"].startswith("+861") and len(r["phone"]) == 14
        assert r["phone"][4] in "3456789"
        periods[r["phone"]].append(r)
    assert sum(1 for r in t["phones"] if r["verified"] == "true") > 0.8 * len(t["phones"])
    owners = Counter(r["owner_id"] for r in t["phones"] if r["owner_id"] and not r["until"])
    assert max(owners.values()) <= 2 and len(t["phones"]) > 1.2 * len(people)
    reassigned = [rs for rs in periods.values() if len(rs) > 1]
    assert reassigned
    for before, after in reassigned:
        assert before["until"] and not after["until"]
        assert before["owner_id"] != after["owner_id"]
        gap = date.fromisoformat(after["since"]) - date.fromisoformat(before["until"])
        assert gap.days == 1


def owner_on(periods: list[dict[str, str]], day: str) -> str | None:
    for r in periods:
        if (not r["since"] or r["since"] <= day) and (not r["until"] or day <= r["until"]):
            return r["owner_id"]
    return None


def test_misused_phones(world):
    _, t = world
    periods = defaultdict(list)
    for r in t["phones"]:
        periods[r["phone"]].append(r)
    verifies = {r["platform_id"]: r["verifies_phone"] for r in t["platforms"]}
    loans = {r["loan_id"]: r for r in t["loans"]}
    misused = [r for r in t["truth_loans"] if r["misused_phone"] == "true"]
    assert misused
    for r in misused:
        loan = loans[r["loan_id"]]
        assert r["applicant_phone_user_id"] != loan["borrower_id"]
        owner = owner_on(periods[loan["applicant_phone"]], loan["applied_at"])
        assert owner in (r["applicant_phone_user_id"], "")
    for loan in loans.values():
        assert loan["phone_verified"] == verifies[loan["platform_id"]]
        if loan["status"] != "current":
            assert loan["applied_at"] <= loan["status_at"]
        else:
            assert loan["status_at"] == ""
    own = [r for r in t["truth_loans"] if r["misused_phone"] == "false"][:500]
    for r in own:
        loan = loans[r["loan_id"]]
        assert owner_on(periods[loan["applicant_phone"]], loan["applied_at"]) in (
            loan["borrower_id"],
            "",
        )


def test_contacts_come_mostly_from_the_circle(world):
    _, t = world
    city = {r["person_id"]: r["city"] for r in t["truth_people"]}
    community = {r["person_id"]: r["community"] for r in t["truth_people"]}
    owner = {r["phone"]: r["owner_id"] for r in t["phones"] if not r["until"]}
    borrower = {r["loan_id"]: r["borrower_id"] for r in t["loans"]}
    same = total = 0
    for r in t["loan_links"]:
        person = owner.get(r["phone"])
        if person:
            total += 1
            b = borrower[r["loan_id"]]
            same += community[person] == community[b] and city[person] == city[b]
    assert total and same / total > 0.8


def test_progress_is_reported(tmp_path):
    calls: list[tuple[str, int, int]] = []
    generate(100, 1, tmp_path / "d", progress=lambda s, d, n: calls.append((s, d, n)))
    stages = list(dict.fromkeys(s for s, _, _ in calls))
    assert stages[:6] == ["platforms", "people", "phones", "loans", "loan_links", "blacklist"]
    assert "write blacklist" in stages
    for stage in stages:
        last = [c for c in calls if c[0] == stage][-1]
        assert last[1] == last[2]
    assert all(0 <= d <= n for _, d, n in calls)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"people": 9}, "at least 10"),
        ({"people": 10.5}, "integer"),
        ({"seed": -1}, "seed"),
        ({"p_reference": 1.5}, "p_reference"),
        ({"no_such_knob": 1}, "unknown synth parameter"),
        ({"start": "2024-01-01", "end": "2024-03-01"}, "at least a year"),
        ({"platforms": 3}, "platforms"),
        ({"address_book_max": 0}, "address_book"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, words):
    args = {"people": 50, "seed": 1, "out": tmp_path / "x", **kwargs}
    with pytest.raises(SpilloverError, match=words):
        generate(**args)
    assert not (tmp_path / "x").exists()


def test_out_must_be_new_or_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "people.csv").write_text("x\n")
    with pytest.raises(SpilloverError, match="not empty"):
        generate(50, 1, tmp_path / "full")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpilloverError, match="not a directory"):
        generate(50, 1, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert generate(50, 1, tmp_path / "empty").counts["people"] == 50


def test_tiny_worlds_are_valid(tmp_path):
    for seed in range(3):
        summary = generate(10, seed, tmp_path / str(seed))
        assert load_folder(summary.out).counts() == summary.counts
        assert summary.counts["platforms"] == 4


def test_defaults_are_documented():
    doc = (Path(__file__).parents[1] / "docs" / "synthetic-data.md").read_text(encoding="utf-8")
    for name, value in vars(SynthParams()).items():
        assert f"`{name}`" in doc, name
        shown = value.isoformat() if isinstance(value, date) else str(value)
        assert shown in doc, (name, shown)
