"""Platform records resolved to people: the match step on every backend (docs/contract.md §1, §3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenario import Scenario
from spillover import open_folder
from spillover.audit.batch import pass_rows
from spillover.audit.findings import find
from spillover.cli import cli
from spillover.engines.search import explain_about_person, explain_all, explain_entry
from spillover.errors import PolicyError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.neo4j.store import Neo4jBackend
from spillover.policy import default_policy, default_policy_bytes, parse_policy
from spillover.render.json import explanation_dict
from spillover.render.text import explanation_text
from spillover.rules import MATCH_FACTOR_DEFAULTS, NO_PATH, UNRESOLVED_RECORD, MatchKey

JIANG_ID = "330106198203154015"
WATERFALL = [
    {"field": "id_number", "level": "missing", "agreed": None, "log2_bayes_factor": 0.0},
    {"field": "name", "level": "different", "agreed": False, "log2_bayes_factor": -6.1},
    {"field": "phone", "level": "exact", "agreed": True, "log2_bayes_factor": 8.3},
]


def phone_only_case() -> Scenario:
    """Xu borrows at a lender under his record (phone: Jiang's number); a broker's record
    of Xu is matched to Jiang by the phone alone; a bank copies the broker's listing."""
    s = Scenario()
    s.person("jiang")
    s.person("xu")
    for p in ("lender", "broker", "bank"):
        s.platform(p)
    s.share("lender", "broker")
    s.share("broker", "bank")
    phone = s.phone("jiang", verified=True)
    s.record("R-XU", "lender", name="Xu", phone=phone, person_id="xu")
    s.loan(
        "L1",
        "lender",
        None,
        "2023-01-10",
        status_at="2023-03-01",
        borrower_record="R-XU",
        applicant_phone=phone,
        phone_verified=False,
    )
    s.record("B-XU", "broker", name="Xu", phone=phone)
    s.record("K-J", "bank", name="Jiang", id_number=JIANG_ID, phone=phone, person_id="jiang")
    s.match(
        "B-XU",
        "jiang",
        "phone_only",
        0.62,
        matched_with="K-J",
        match_weight=0.7,
        waterfall=WATERFALL,
    )
    s.record("U", "bank", name="Nobody")
    s.entry("E-L", "lender", "R-XU", "2023-04-01", kind="record")
    s.entry("E-B", "broker", "B-XU", "2023-05-01", kind="record")
    s.entry("E-K", "bank", "B-XU", "2023-06-01", kind="record", copied_from="E-B")
    s.entry("E-U", "bank", "U", "2023-06-01", kind="record")
    s.entry("E-X", "lender", "xu", "2023-04-01")
    return s


def test_a_phone_only_match_is_the_first_step_and_weak_evidence(graph):
    e = explain_entry(graph(phone_only_case()), "E-B")
    first = e.best.steps[0]
    assert (first.source, first.rel, first.target) == ("record:B-XU", "MATCHED_TO", "person:jiang")
    assert first.factor == MATCH_FACTOR_DEFAULTS["match_phone_only"] == 0.05
    assert first.code == "MATCHED_BY_PHONE_ONLY"
    assert e.reason_codes == ("MATCHED_BY_PHONE_ONLY", "PHONE_USED_UNVERIFIED", "SHARED_BLACKLIST")
    assert e.contamination == pytest.approx(1 - 0.05 * 0.02)
    assert e.verdict == "spillover"
    assert e.names["record:B-XU"] == "Xu (record B-XU)"


def test_the_match_carries_its_waterfall(graph):
    e = explain_entry(graph(phone_only_case()), "E-K")
    match = e.matches["B-XU"]
    assert (match.person_id, match.matched_by, match.match_probability) == (
        "jiang",
        MatchKey.PHONE_ONLY,
        0.62,
    )
    assert (match.matched_with, match.match_weight) == ("K-J", 0.7)
    assert [(w.field, w.agreed, w.log2_bayes_factor) for w in match.waterfall] == [
        ("id_number", None, 0.0),
        ("name", False, -6.1),
        ("phone", True, 8.3),
    ]
    assert e.reason_codes[0] == "MATCHED_BY_PHONE_ONLY"


def test_a_record_the_data_names_is_its_person_and_their_loans_are_own(graph):
    backend = graph(phone_only_case())
    listed = explain_entry(backend, "E-L")  # the lender lists its record of Xu
    assert listed.contamination == 0 and listed.verdict == "own_conduct"
    assert listed.reason_codes == ("MATCHED_BY_KNOWN", "OWN_DEFAULT")
    person = explain_entry(backend, "E-X")  # ... or Xu himself: his loan through his record
    steps = [(s.source, s.rel, s.target) for s in person.best.steps[:2]]
    assert steps == [
        ("person:xu", "MATCHED_TO", "record:R-XU"),
        ("record:R-XU", "BORROWED", "loan:L1"),
    ]
    assert person.contamination == 0
    assert person.best.origin.borrower_record == "R-XU"


def test_the_records_matched_to_people_on_every_backend(graph):
    """GraphBackend.matched_records: the records resolved to the people asked for (given by
    records.person_id or matched), each with its match, by record id; an unresolved record
    and an unknown person give nothing."""
    backend = graph(phone_only_case())
    found = backend.matched_records(["xu", "jiang", "nobody"])
    assert [(r.record_id, r.platform_id, r.name, m.person_id) for r, m in found] == [
        ("B-XU", "broker", "Xu", "jiang"),
        ("K-J", "bank", "Jiang", "jiang"),
        ("R-XU", "lender", "Xu", "xu"),
    ]
    assert [(m.matched_by, m.match_probability, m.matched_with) for _, m in found] == [
        (MatchKey.PHONE_ONLY, 0.62, "K-J"),
        (MatchKey.KNOWN, 1.0, None),
        (MatchKey.KNOWN, 1.0, None),
    ]
    assert found[0][1] == backend.matches(["B-XU"])["B-XU"]  # the whole match, waterfall too
    assert found[1][0].id_number == JIANG_ID
    assert backend.matched_records(["nobody"]) == backend.matched_records([]) == ()


def test_an_unresolved_record_is_unexplained(graph):
    e = explain_entry(graph(phone_only_case()), "E-U")
    assert e.verdict == "unexplained" and e.contamination == 1
    assert e.reason_codes == (NO_PATH, UNRESOLVED_RECORD)


def chain_case() -> Scenario:
    """A's phone is guarantor on a current loan of B's record (matched by name and phone);
    B's own loan defaulted: the chain runs loan -> B's record -> B -> B's loan."""
    s = Scenario()
    s.person("a")
    s.person("b")
    s.platform("lender")
    phone = s.phone("a", verified=True)
    s.record("RB", "lender", name="B")
    s.match("RB", "b", "name_and_phone", 0.97)
    s.loan("L2", "lender", None, "2023-01-10", "current", borrower_record="RB")
    s.link("L2", phone, "guarantor")
    s.loan("L3", "lender", "b", "2023-01-12", "defaulted", status_at="2023-03-01")
    s.entry("E-A", "lender", "a", "2023-04-01")
    s.record("RC", "lender", name="C")
    s.person("c")
    s.match("RC", "c", "name_and_city", 0.8)
    s.loan("L4", "lender", "c", "2023-01-10", "defaulted", borrower_record="RC")
    s.entry("E-C", "lender", "c", "2023-04-01")
    return s


def test_a_chain_through_a_record_passes_its_match(graph):
    e = explain_entry(graph(chain_case()), "E-A")
    rels = [(s.source, s.rel, s.target) for s in e.best.steps[:5]]
    assert rels == [
        ("person:a", "OWNS", e.best.steps[0].target),
        (e.best.steps[0].target, "GUARANTOR_OF", "loan:L2"),
        ("loan:L2", "BORROWED_BY", "record:RB"),
        ("record:RB", "MATCHED_TO", "person:b"),
        ("person:b", "BORROWED", "loan:L3"),
    ]
    assert e.best.responsibility == pytest.approx(0.8 * 0.1 * 0.9)
    assert e.reason_codes == ("GUARANTOR", "CHAIN_VIA_BORROWER", "MATCHED_BY_NAME_AND_PHONE")
    assert "RB" in e.matches


def test_an_own_loan_through_a_weak_match_is_partly_spillover(graph):
    e = explain_entry(graph(chain_case()), "E-C")
    assert e.reason_codes == ("MATCHED_BY_NAME_AND_CITY", "OWN_DEFAULT")
    assert e.contamination == pytest.approx(1 - MATCH_FACTOR_DEFAULTS["match_name_and_city"])


@pytest.mark.parametrize("case", [phone_only_case, chain_case])
def test_the_batch_pass_agrees_with_the_search(graph, case):
    backend = graph(case())
    batch = {r["entry_id"]: r for r in pass_rows(backend.columns())}
    for e in explain_all(backend):
        row = batch[e.entry.entry_id]
        assert row["contamination"] == e.contamination, e.entry.entry_id
        assert row["verdict"] == e.verdict
        if e.paths:
            assert row["reason_codes"] == " ".join(e.reason_codes)
            assert row["origin_loan_id"] == e.best.origin.loan_id
        else:
            assert row["reason_codes"] == NO_PATH


# --- the policy's match factors -------------------------------------------------------


def test_a_policy_without_match_factors_takes_the_defaults():
    text = default_policy_bytes().decode()
    kept = "\n".join(line for line in text.splitlines() if not line.startswith("match_"))
    policy = parse_policy(kept.encode())
    assert {k: policy.factors[k] for k in MATCH_FACTOR_DEFAULTS} == dict(MATCH_FACTOR_DEFAULTS)
    assert policy.factors == default_policy().factors


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("match_phone_only = 0.5", "match_phone_only must be <= 0.1"),
        ("match_known = 0.9", "match_known must be 1.0"),
        ("match_name_only = 0.95", "match_name_only must not exceed match_name_and_phone"),
        ("match_id_number = 0.85", "must not exceed match_id_number"),
        ("match_other = 1.5", "less than or equal to 1"),
    ],
)
def test_a_policy_breaking_a_match_property_is_refused(line, words):
    key = line.split(" = ")[0]
    text = default_policy_bytes().decode()
    old = next(x for x in text.splitlines() if x.startswith(f"{key} = "))
    with pytest.raises(PolicyError, match=words):
        parse_policy(text.replace(old, line).encode())


# --- misuse findings ------------------------------------------------------------------


def records_flags_case() -> Scenario:
    """One case of every identity-linkage finding, and near misses that must not be found."""
    s = Scenario()
    for p in ("lender_a", "lender_b", "broker"):
        s.platform(p)
    for p in ("jiang", "xu", "li"):
        s.person(p)
    p1, p2, p3 = s.new_phone(), s.new_phone(), s.new_phone()
    s.record("RA1", "lender_a", name="Xu", phone=p1, person_id="xu")
    s.record("RA2", "lender_a", name="Xu", phone=p1)  # same platform as RA1: no pair
    s.record("RB1", "lender_b", name="Jiang", id_number=JIANG_ID, phone=p1, person_id="jiang")
    s.record("RC", "broker", name="Xu", phone=p1)  # the name of RA1/RA2: only RB1 pairs
    s.match("RC", "jiang", "phone_only", 0.6, matched_with="RB1")
    s.match("RA2", "xu", "name_and_phone", 0.99, matched_with="RA1")
    li_id = "330102199007083028"
    s.record("RX", "lender_a", name="Li", id_number=li_id, phone=p2, person_id="li")
    s.record("RY", "lender_b", name="Li Na", id_number=li_id, phone=p2)  # same ID: no pair
    s.match("RY", "li", "id_number", 0.999)
    for i, name in enumerate(("Ann", "Bo", "Cy")):
        s.record(f"RF{i}", ("lender_a", "lender_b", "broker")[i], name=name, phone=p3)
    s.record("RF3", "broker", name="Ann", phone=p3)  # a fourth record, no new identity
    return s


def test_identity_linkage_findings_on_every_backend(graph, tmp_path):
    from spillover.audit.findings import find
    from test_findings import _reference

    case = records_flags_case()
    found = find(graph(case))
    assert found == _reference(case, tmp_path)
    by = found.by_code()
    link, strangers = by["PHONE_ONLY_RECORD_LINK"]  # p1, and p3 (strangers on one number)
    assert strangers.counts == {"pairs": 4, "records": 4}
    assert link.records["records"] == ("RA1", "RA2", "RB1", "RC")
    assert link.counts == {"pairs": 3, "records": 4}
    assert link.records["platforms"] == ("broker", "lender_a", "lender_b")
    # Jiang: RB1 has his ID, RC none; Xu: neither record has one; Li's two share one
    jiang, xu = by["CLUSTER_WITHOUT_ID_NUMBER"]
    assert (jiang.subject, jiang.records["records"]) == ("person:jiang", ("RB1", "RC"))
    assert jiang.records["matched_by"] == ("known", "phone_only")
    assert (xu.subject, xu.counts) == ("person:xu", {"records": 2})
    (fan,) = by["PHONE_FANOUT"]
    assert fan.counts == {"records": 4, "identities": 3}
    assert fan.records["identities"] == ("Ann", "Bo", "Cy")
    wider = find(graph(case), min_identities=2).by_code()["PHONE_FANOUT"]
    assert [f.subject for f in wider] == [link.subject, fan.subject]
    assert wider[0].records["identities"] == (JIANG_ID, "Xu")


# --- the Jiang case with platform records -----------------------------------------------


class Folder:
    """A data folder given as it is (for the ``graph`` fixture, like a Scenario)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, folder: Path, fmt: str = "csv") -> Path:
        shutil.copytree(self.path, folder)
        return folder


def test_the_banks_entry_on_jiang_comes_through_a_phone_only_match(graph):
    backend = graph(Folder(jiang_records_path()))
    e = explain_entry(backend, "E-QT-J")
    match_step = e.best.steps[0]
    assert (match_step.source, match_step.rel, match_step.target) == (
        "record:TY-R-XU",
        "MATCHED_TO",
        "person:jiang",
    )
    assert e.reason_codes[0] == "MATCHED_BY_PHONE_ONLY"
    assert e.contamination == pytest.approx(1 - 0.05 * 0.05)
    step = explanation_dict(e)["paths"][0]["steps"][0]
    assert step["match"]["matched_by"] == "phone_only"
    assert step["match"]["matched_with"] == "QT-R-J"
    agreed = {w["field"]: w["agreed"] for w in step["match"]["waterfall"]}
    assert agreed == {
        "id_number": None,
        "name": False,
        "phone": True,
        "birth_date": None,
        "city": None,
    }
    assert "match" not in explanation_dict(e)["paths"][0]["steps"][1]
    text = explanation_text(e)
    assert "was matched to Jiang (bakery owner) by the phone number alone" in text
    assert "phone       exact      agreed     +8.3 bits" in text
    # every entry on a record matched to Jiang is about him
    about = {x.entry.entry_id for x in explain_about_person(backend, "jiang")}
    assert {"E-TY-R", "E-QT-J", "E-ZM-J", "E-WL-J"} <= about
    # Xu Yan's own loan at QuickCash names him by QuickCash's record
    own = explain_entry(backend, "E-QC-XU")
    assert own.reason_codes == ("MATCHED_BY_KNOWN", "OWN_DEFAULT") and own.contamination == 0
    found = find(backend).by_code()
    assert [f.subject for f in found["PHONE_ONLY_RECORD_LINK"]] == ["phone:+8613957112345"]
    assert [f.subject for f in found["CLUSTER_WITHOUT_ID_NUMBER"]] == ["person:jiang"]


def test_a_linked_folder_keeps_the_match_as_evidence(graph, tmp_path):
    """After ``spillover link`` a matched record is resolved through its match (factor,
    code and waterfall), not made certain: records.person_id only where the input named one."""
    pytest.importorskip("splink")
    from spillover.link.resolve import link

    link(jiang_records_path(), tmp_path / "linked")
    e = explain_entry(graph(Folder(tmp_path / "linked")), "E-QT-J")
    match_step = e.best.steps[0]
    assert (match_step.source, match_step.rel, match_step.target) == (
        "record:TY-R-XU",
        "MATCHED_TO",
        "person:xu_yan",
    )
    assert e.reason_codes == ("MATCHED_BY_NAME_AND_PHONE", "OWN_DEFAULT", "SHARED_BLACKLIST")
    assert e.contamination == pytest.approx(0.1)
    match = explanation_dict(e)["paths"][0]["steps"][0]["match"]
    assert match["matched_by"] == "name_and_phone" and match["matched_with"] == "QC-R-XU"
    assert {w["field"]: w["level"] for w in match["waterfall"]} == {
        "id_number": "missing",
        "name": "exact",
        "phone": "exact",
        "birth_date": "missing",
        "city": "missing",
    }
    # the step's factor is the policy's for a name-and-phone match (issue 21: "the match
    # step is shown with its factor and waterfall"), in the text as in the JSON
    factor = MATCH_FACTOR_DEFAULTS[f"match_{MatchKey.NAME_AND_PHONE.value}"]
    assert match_step.factor == factor == pytest.approx(0.9)
    assert e.best.responsibility == pytest.approx(factor)
    bits = {w["field"]: w["log2_bayes_factor"] for w in match["waterfall"]}
    assert bits["name"] > 0 and bits["phone"] > 0 and 0.9 < match["match_probability"] < 1
    text = explanation_text(e)
    assert "Xu Yan (record TY-R-XU) was matched to Xu Yan by name and phone number" in text
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "was matched to Xu Yan by name" in line)
    assert lines[first].rstrip().endswith("x0.9")
    assert "match: name_and_phone, probability" in lines[first + 1]
    assert "matched with record QC-R-XU" in lines[first + 1]
    shown = [line.split() for line in lines[first + 2 : first + 7]]
    assert [(w[0], w[1], w[2]) for w in shown] == [
        ("id_number", "missing", "no"),
        ("name", "exact", "agreed"),
        ("phone", "exact", "agreed"),
        ("birth_date", "missing", "no"),
        ("city", "missing", "no"),
    ]
    # the records the data named keep their person; Xu Yan's own loan stays his own
    own = explain_entry(graph(Folder(tmp_path / "linked")), "E-QC-XU")
    assert own.reason_codes == ("MATCHED_BY_KNOWN", "OWN_DEFAULT") and own.contamination == 0


def test_the_old_jiang_case_explains_as_before():
    """No records: no match steps, no match objects, the same reason codes."""
    e = explain_entry(open_folder(jiang_case_path()), "E-QT-J")
    steps = explanation_dict(e)["paths"][0]["steps"]
    assert all("match" not in s for s in steps)
    assert e.matches == {}
    assert (e.contamination, e.reason_codes) == (0.95, ("EMERGENCY_CONTACT", "SHARED_BLACKLIST"))


def test_cli_explains_checks_and_flags_records():
    data = str(jiang_records_path())
    runner = CliRunner()
    text = runner.invoke(cli, ["explain", "E-QT-J", "--data", data])
    assert text.exit_code == 0, text.output
    assert "match: phone_only, probability 0.62" in text.output
    as_json = runner.invoke(cli, ["explain", "E-QT-J", "--data", data, "--format", "json"])
    parsed = json.loads(as_json.output)
    assert parsed["subject"] == {"kind": "record", "id": "TY-R-XU"}
    assert parsed["paths"][0]["steps"][0]["match"]["match_probability"] == 0.62
    check = runner.invoke(
        cli,
        ["check", "--platform", "westlake_bank", "--subject", "TY-R-XU",
         "--subject-kind", "record", "--at", "2024-05-01", "--data", data, "--format", "json"],
    )  # fmt: skip
    assert check.exit_code == 0, check.output
    assert json.loads(check.output)["reason_codes"][0] == "MATCHED_BY_PHONE_ONLY"
    unknown = runner.invoke(
        cli,
        ["check", "--platform", "westlake_bank", "--subject", "NOPE",
         "--subject-kind", "record", "--data", data],
    )  # fmt: skip
    assert unknown.exit_code == 1 and "unknown record 'NOPE'" in unknown.output
    flags = runner.invoke(cli, ["findings", "--data", data, "--format", "json"])
    assert flags.exit_code == 0, flags.output
    summary = json.loads(flags.output)["summary"]
    assert summary["PHONE_ONLY_RECORD_LINK"] == 1 and summary["CLUSTER_WITHOUT_ID_NUMBER"] == 1
    assert json.loads(flags.output)["params"]["min_identities"] == 3


def test_the_packaged_and_the_repository_example_are_the_same():
    here = Path(__file__).resolve().parents[1] / "examples" / "jiang_records"
    packaged = jiang_records_path()
    names = sorted(p.name for p in here.iterdir())
    assert names == sorted(p.name for p in packaged.iterdir())
    for name in names:
        assert (here / name).read_bytes() == (packaged / name).read_bytes(), name


@pytest.mark.neo4j
def test_ingest_keeps_records_in_sync(neo4j_db, tmp_path):
    from spillover.neo4j.ingest import ingest_folder

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    folder = tmp_path / "d"
    shutil.copytree(jiang_records_path(), folder)
    first = ingest_folder(folder, driver, db)
    assert first.changes["records"].added == 3
    assert (first.counts["Record"], first.counts["MATCHED_TO"], first.counts["HELD_BY"]) == (
        3,
        3,
        3,
    )
    assert ingest_folder(folder, driver, db).unchanged
    # the bank's match is withdrawn: the record is unresolved, its MATCHED_TO goes
    (folder / "matches.csv").write_text(
        "record_id,person_id,match_probability,matched_by\n", encoding="utf-8"
    )
    second = ingest_folder(folder, driver, db)
    assert second.changes["records"].changed == 1 and second.counts["MATCHED_TO"] == 2
    backend = Neo4jBackend(driver, db)
    assert explain_entry(backend, "E-QT-J").reason_codes == (NO_PATH, UNRESOLVED_RECORD)
    assert ingest_folder(folder, driver, db).unchanged


def records_version(seed: int) -> Scenario:
    """A random scenario told with platform records: a third of the loans name their
    borrower by a record (every kind of match), half the person entries list a record."""
    from scenario import random_scenario

    s = random_scenario(seed, people=12, loans=40, entries=25)
    keys = [k.value for k in MatchKey]
    for i, loan in enumerate(s.tables["loans"]):
        if i % 3:
            continue
        record = f"R-{loan['loan_id']}"
        key = keys[(i + seed) % len(keys)]
        s.record(record, loan["platform_id"], name=f"n{i}",
                 person_id=loan["borrower_id"] if key == "known" else None)  # fmt: skip
        if key != "known":
            s.match(record, loan["borrower_id"], key, 0.5 + (i % 5) / 10)
        loan["borrower_record"] = record
        if i % 2:
            loan["borrower_id"] = None
    for i, entry in enumerate(s.tables["blacklist"]):
        if entry["subject_kind"] != "person" or i % 2:
            continue
        record = f"E-R-{entry['entry_id']}"
        key = keys[(i * 7 + seed) % len(keys)]
        s.record(record, entry["platform_id"], name=entry["subject"])
        if i % 10 != 4:  # now and then a record nobody resolved
            s.match(record, entry["subject"], key, 0.9)
        entry["subject_kind"], entry["subject"] = "record", record
    return s


@pytest.mark.parametrize("seed", range(8))
def test_random_records_the_batch_pass_agrees_with_the_search(tmp_path, seed):
    from spillover.backends.memory import MemoryBackend
    from spillover.data.exact import load_folder

    backend = MemoryBackend(load_folder(records_version(seed).write(tmp_path / "d")))
    assert backend.data.records
    batch = {r["entry_id"]: r for r in pass_rows(backend.columns())}
    for e in explain_all(backend):
        row = batch[e.entry.entry_id]
        assert row["contamination"] == e.contamination, e.entry.entry_id
        assert row["responsibility"] == (e.best.responsibility if e.best else None)
        if e.paths:
            assert row["reason_codes"] == " ".join(e.reason_codes), e.entry.entry_id
            assert row["origin_loan_id"] == e.best.origin.loan_id
            assert row["hops"] == e.best.hops


def test_the_records_matched_to_a_person_come_in_pythons_order_of_their_ids(graph):
    """One order on every backend: Neo4j's own sort compares UTF-16 code units (an id past
    U+FFFF before one in U+E000..U+FFFF), Python and Neo4j's indexes code points; the
    Neo4j backend sorts in Python, whichever the planner picks."""
    s = Scenario()
    s.person("jiang")
    s.platform("bank")
    for record_id in ("R-\U0001f600", "R-\ue000", "R-a"):
        s.record(record_id, "bank", name="Jiang", person_id="jiang")
    found = graph(s).matched_records(["jiang"])
    assert [r.record_id for r, _ in found] == ["R-a", "R-\ue000", "R-\U0001f600"]
