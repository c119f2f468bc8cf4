"""A remedy applied to a copy of the data (issue 23, item 1): what it corrects, that it
clears what it should and nothing else, and that the original folder never changes."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario import random_scenario
from spillover import examples, open_folder, read_dataset
from spillover.audit.batch import audit_rows
from spillover.backends.memory import MemoryBackend
from spillover.data.exact import load_folder, read_valid_table
from spillover.data.export import write_dataset
from spillover.data.formats import convert_folder
from spillover.disputes import (
    CORRECTIONS_FILE,
    apply_remedy,
    changes,
    changes_text,
    corrected,
    folder_format,
    review,
)
from spillover.disputes.changes import ADDED, LIFTED, NEW
from spillover.engines.remedy import (
    APPLICANT_PHONE,
    COPY,
    LOAN_LINK,
    MATCH,
    OWNER_PERIOD,
    SHARING,
    Record,
    remedy,
)
from spillover.engines.search import explain_entry
from spillover.errors import SpilloverError
from spillover.rules import Verdict
from spillover.service.checklog import CheckLog

JIANG = examples.jiang_case_path()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _rows(folder: Path) -> dict[str, dict[str, object]]:
    return {row["entry_id"]: row for row in audit_rows(open_folder(folder))}


def test_jiangs_remedy_applied_lifts_his_eleven_listings_and_nothing_else(tmp_path):
    before_files = _digest(JIANG)
    applied = apply_remedy(JIANG, tmp_path / "fixed", subject="jiang")
    assert _digest(JIANG) == before_files  # the original folder is untouched
    before, after = _rows(JIANG), _rows(tmp_path / "fixed")
    assert set(before) == set(after)
    his = {k for k, row in before.items() if row["verdict"] == "spillover" and k != "E-LH-LN"}
    assert len(his) == 11 and set(applied.entries) == his
    for k in his:
        assert after[k]["verdict"] != "spillover", k
    # Xu Yan's own entries, and the listing of another person's phone, stay as they were
    for k in set(before) - his:
        assert after[k] == before[k], k
    assert {r.kind for r in applied.records} <= {APPLICANT_PHONE, LOAN_LINK, OWNER_PERIOD}
    written = json.loads((tmp_path / "fixed" / CORRECTIONS_FILE).read_text(encoding="utf-8"))
    assert written["entries"] == list(applied.entries)
    assert len(written["records"]) == len(applied.records)
    assert written["policy"]["name"] == "spillover-default"


def test_one_entrys_remedy_applied_clears_that_entry(tmp_path):
    applied = apply_remedy(JIANG, tmp_path / "fixed", entry_id="E-QT-J")
    assert applied.entries == ("E-QT-J",)
    assert explain_entry(open_folder(tmp_path / "fixed"), "E-QT-J").verdict != Verdict.SPILLOVER


def test_an_entry_that_needs_no_remedy_is_copied_unchanged(tmp_path):
    applied = apply_remedy(JIANG, tmp_path / "fixed", entry_id="E-HQ-XU")
    assert applied.records == () and applied.entries == ()
    copy, original = read_dataset(tmp_path / "fixed"), read_dataset(JIANG)
    assert set(copy.links) == set(original.links) and set(copy.sharing) == set(original.sharing)
    for name in ("people", "platforms", "phone_periods", "loans", "entries", "records", "matches"):
        assert getattr(copy, name) == getattr(original, name), name


def test_the_copy_keeps_the_input_format(tmp_path):
    parquet = tmp_path / "parquet"
    convert_folder_copy(JIANG, parquet, "parquet")
    assert folder_format(parquet) == "parquet"
    apply_remedy(parquet, tmp_path / "fixed", entry_id="E-QT-J")
    assert folder_format(tmp_path / "fixed") == "parquet"
    assert (tmp_path / "fixed" / "loans.parquet").exists()
    apply_remedy(JIANG, tmp_path / "as-jsonl", entry_id="E-QT-J", format="jsonl")
    assert folder_format(tmp_path / "as-jsonl") == "jsonl"


def test_line_breaks_in_cells_survive_the_applied_remedy(tmp_path):
    """The corrected copy of a folder whose cells hold ``\\r``, ``\\n`` or ``\\r\\n``
    (quoted) loads again, every value as it was (probe s37, item 1)."""
    from test_export import line_break_folder

    source = line_break_folder(tmp_path / "data")
    applied = apply_remedy(source, tmp_path / "fixed", subject="jiang")
    assert applied.records
    original, copy = load_folder(source), load_folder(tmp_path / "fixed")
    for name in ("people", "platforms", "entries", "records", "matches"):
        assert getattr(copy, name) == getattr(original, name), name
    assert copy.people["xu_yan"].city == "Hang\r\nzhou"
    assert copy.entries["E-QC-XU"].stated_reason == "loan\rXY-QC-1"


def convert_folder_copy(source: Path, out: Path, fmt: str) -> None:
    import shutil

    shutil.copytree(source, out)
    convert_folder(out, fmt)


def test_each_kind_of_record_is_corrected():
    data = read_dataset(JIANG)
    loan = next(x for x in data.loans.values() if x.applicant_phone)
    link = data.links[0]
    phone, periods = next((p, ps) for p, ps in data.phone_periods.items() if ps[0].owner_id)
    entry = next(x for x in data.entries.values() if x.copied_from)
    share = data.sharing[0]
    fixed = corrected(
        data,
        [
            Record(
                APPLICANT_PHONE, loan.platform_id, loan_id=loan.loan_id, phone=loan.applicant_phone
            ),
            Record(LOAN_LINK, None, loan_id=link.loan_id, phone=link.phone, role=link.role.value),
            Record(
                OWNER_PERIOD,
                None,
                phone=phone,
                owner_id=periods[0].owner_id,
                since=periods[0].since,
            ),
            Record(COPY, entry.platform_id, entry_id=entry.entry_id, copied_from=entry.copied_from),
            Record(
                SHARING,
                share.from_platform,
                from_platform=share.from_platform,
                to_platform=share.to_platform,
            ),
        ],
    )
    assert fixed.loans[loan.loan_id].applicant_phone is None
    assert fixed.loans[loan.loan_id].phone_verified is None
    assert link not in fixed.links and len(fixed.links) == len(data.links) - 1
    assert fixed.phone_periods[phone][0].owner_id is None
    assert fixed.phone_periods[phone][0].since == periods[0].since  # the number stays
    assert fixed.entries[entry.entry_id or ""].copied_from is None
    assert share not in fixed.sharing
    assert fixed.people == data.people and fixed.platforms == data.platforms


def test_a_match_is_corrected_by_removing_it():
    data = read_dataset(examples.jiang_records_path())
    match = next(m for m in data.matches.values() if m.matched_by.value != "known")
    fixed = corrected(
        data, [Record(MATCH, None, record_id=match.record_id, person_id=match.person_id)]
    )
    assert match.record_id not in fixed.matches
    assert fixed.records == data.records


def _records_case(tmp_path: Path) -> Path:
    """The Jiang records case with two loans named only by a platform record: one on
    ``TY-R-XU`` (matched to Jiang by the phone alone: the match ``remedy E-TY-R``
    withdraws), one on a record nobody resolves (the loader leaves it out of the graph)."""
    source = tmp_path / "data"
    shutil.copytree(examples.jiang_records_path(), source)
    (source / "README.md").unlink()
    with (source / "records.csv").open("a", encoding="utf-8") as handle:
        handle.write("QC-R-NOBODY,quickcash,Nobody Known,,,,,\n")
    with (source / "loans.csv").open("a", encoding="utf-8") as handle:
        handle.write("XY-TY-1,tianyan,,TY-R-XU,2023-07-01,defaulted,13957112345,false,1000,\n")
        handle.write("NB-QC-1,quickcash,,QC-R-NOBODY,2023-01-05,defaulted,,,500,2023-03-01\n")
    with (source / "loan_links.csv").open("a", encoding="utf-8") as handle:
        handle.write("NB-QC-1,13957112345,guarantor\n")
    return source


def test_a_loan_named_by_a_withdrawn_match_names_no_one_in_the_copy(tmp_path):
    """Withdrawing a match leaves the record unresolved: a loan that names its borrower by
    it names no one in the copy (``borrower_id`` empty). The copy used to keep the record's
    old person as ``borrower_id``, and spillover refused the folder it wrote."""
    source = _records_case(tmp_path)
    assert load_folder(source).loans["XY-TY-1"].borrower_id == "jiang"
    applied = apply_remedy(source, tmp_path / "fixed", entry_id="E-TY-R")
    assert [r.kind for r in applied.records] == [MATCH]
    fixed = load_folder(tmp_path / "fixed")  # the copy is a valid folder
    assert "XY-TY-1" not in fixed.loans and "TY-R-XU" not in fixed.matches
    (row,) = (r for r in read_valid_table(tmp_path / "fixed", "loans") if r.loan_id == "XY-TY-1")
    assert row.borrower_id is None and row.borrower_record == "TY-R-XU" and row.amount == 1000


def test_a_copy_does_not_turn_a_linkage_match_into_a_given_borrower(tmp_path):
    """A loan named only by a record that linkage matched (phone alone, 0.62) is written
    by its record alone, even in an unchanged copy: the copy used to fill ``borrower_id``
    with the matched person, a fact that then outlived any later correction of the
    match (and a later ``link`` that matched the record otherwise wrote a folder
    spillover refused)."""
    source = _records_case(tmp_path)
    applied = apply_remedy(source, tmp_path / "fixed", entry_id="E-HQ-XU")
    assert applied.records == ()  # no remedy needed: an unchanged copy
    rows = {r.loan_id: r for r in read_valid_table(tmp_path / "fixed", "loans")}
    given = {r.loan_id: r for r in read_valid_table(source, "loans")}
    assert rows["XY-TY-1"].borrower_id is None and rows["XY-TY-1"].borrower_record == "TY-R-XU"
    assert rows["XY-QC-1"].borrower_id is None and rows["XY-QC-1"].borrower_record == "QC-R-XU"
    # a loan given both its borrower and its record keeps its record; the same person
    assert given["J-2019-BIZ"].borrower_id == "jiang"
    assert rows["J-2019-BIZ"].borrower_record == "QT-R-J"
    copy, original = load_folder(tmp_path / "fixed"), load_folder(source)
    assert copy.loans == original.loans and copy.matches == original.matches


def test_the_copy_keeps_a_loan_on_an_unresolved_record_and_its_links(tmp_path):
    """A loan named only by an unresolved record is out of the graph, yet a row of the
    folder: the corrected copy keeps every row but those corrected."""
    source = _records_case(tmp_path)
    assert "NB-QC-1" not in load_folder(source).loans
    apply_remedy(source, tmp_path / "fixed", entry_id="E-QT-J")
    loans = {r.loan_id for r in read_valid_table(tmp_path / "fixed", "loans")}
    assert loans == {r.loan_id for r in read_valid_table(source, "loans")}
    links = read_valid_table(tmp_path / "fixed", "loan_links")
    assert [(x.phone, x.role.value) for x in links if x.loan_id == "NB-QC-1"] == [
        ("+8613957112345", "guarantor")
    ]


@pytest.mark.parametrize(
    "record",
    [
        Record(SHARING, "x", from_platform="nobody", to_platform="quickcash"),
        Record(LOAN_LINK, None, loan_id="LN-NONE", phone="+8613800000000", role="reference"),
        Record(APPLICANT_PHONE, None, loan_id="XY-AX-1", phone="+8613800000000"),
        Record(COPY, None, entry_id="E-QT-J", copied_from="E-NONE"),
        Record(MATCH, None, record_id="R-NONE", person_id="jiang"),
    ],
    ids=lambda r: r.kind,
)
def test_a_record_not_in_the_data_is_refused(record):
    with pytest.raises(SpilloverError, match="not in the data"):
        corrected(read_dataset(JIANG), [record])


def test_bad_requests_write_nothing(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(SpilloverError, match="new or empty"):
        apply_remedy(JIANG, tmp_path / "full", entry_id="E-QT-J")
    with pytest.raises(SpilloverError, match="new folder"):
        apply_remedy(JIANG, JIANG, entry_id="E-QT-J")
    with pytest.raises(SpilloverError, match="exactly one"):
        apply_remedy(JIANG, tmp_path / "a", entry_id="E-QT-J", subject="jiang")
    with pytest.raises(SpilloverError, match="unknown blacklist entry"):
        apply_remedy(JIANG, tmp_path / "b", entry_id="E-NOPE")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no temporary left


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), records=st.sampled_from([0, 6]))
def test_an_applied_remedy_clears_its_entry_on_random_worlds(tmp_path_factory, seed, records):
    """For every spillover entry of a random world (reassigned numbers, copies, sharing,
    platform records): its remedy applied by the library clears it."""
    s = random_scenario(seed, people=8, loans=18, entries=8, records=records)
    folder = s.write(tmp_path_factory.mktemp("world"))
    data = read_dataset(folder)
    backend = MemoryBackend(data)
    for entry_id in sorted(e for e in data.entries if e):
        r = remedy(backend, entry_id)
        if not r.needed or not r.clearable:
            continue
        fixed = corrected(data, r.records)
        after = explain_entry(MemoryBackend(fixed), entry_id)
        assert after.verdict != Verdict.SPILLOVER, (seed, entry_id, r.records)
        written = tmp_path_factory.mktemp("fixed")
        write_dataset(fixed, written)
        load_folder(written)  # the corrected facts make a valid folder


# --- changes: what a correction changed (issue 23 item 2) ---------------------------------


def test_the_changes_of_jiangs_correction(tmp_path):
    applied = apply_remedy(JIANG, tmp_path / "fixed", subject="jiang")
    c = changes(JIANG, tmp_path / "fixed")
    assert [x.entry_id for x in c.entries if x.status == LIFTED] == sorted(applied.entries)
    assert c.count(LIFTED) == 11 and len(c.entries) == 11 and c.unchanged == 5
    assert set(c.removed_records) == set(applied.records) and c.added_records == ()
    for x in c.entries:
        assert x.before is not None and x.after is not None
        assert x.before.verdict == "spillover" and x.after.verdict != "spillover"
        assert x.before.recommendation == "do_not_list"
        assert x.removed_records and set(x.removed_records) <= set(applied.records)
        assert x.added_records == ()


def test_undoing_a_correction_makes_the_entries_new_with_the_records_it_adds(tmp_path):
    applied = apply_remedy(JIANG, tmp_path / "fixed", entry_id="E-QT-J")
    c = changes(tmp_path / "fixed", JIANG)
    assert [(x.status, x.entry_id) for x in c.entries if x.entry_id == "E-QT-J"] == [
        (NEW, "E-QT-J")
    ]
    new = next(x for x in c.entries if x.entry_id == "E-QT-J")
    assert new.added_records and set(new.added_records) <= set(applied.records)
    assert set(c.added_records) == set(applied.records)


def test_changes_equal_two_full_audits_compared(tmp_path):
    """Every entry whose audit row differs is listed, and no other."""
    apply_remedy(JIANG, tmp_path / "fixed", entry_id="E-AX-PH")
    c = changes(JIANG, tmp_path / "fixed")
    before, after = _rows(JIANG), _rows(tmp_path / "fixed")
    differ = {k for k in before if before[k] != after[k]}
    assert {x.entry_id for x in c.entries} == differ
    assert c.unchanged == len(before) - len(differ)


def test_a_folder_of_another_dataset_is_refused(tmp_path):
    from spillover.synth.generate import generate

    generate(50, 1, tmp_path / "other")
    with pytest.raises(SpilloverError, match="not two versions of one dataset"):
        changes(JIANG, tmp_path / "other")


# --- notices (issue 23 item 3) ----------------------------------------------------------------

LENDERS = ["quickcash", "yidai", "xiaoyu", "huaqian", "anxin", "jiedai", "moneytree"]
BANKS = ["qiantang_bank", "westlake_bank", "zhemin_bank"]


@pytest.fixture(scope="module")
def jiang_review(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    applied = apply_remedy(JIANG, tmp / "fixed", subject="jiang")
    log = CheckLog(tmp / "checks.jsonl")
    log.append(
        {
            "check_id": "c-1",
            "time": "2024-03-01T10:00:00+00:00",
            "platform_id": "westlake_bank",
            "subject": {"kind": "person", "id": "jiang"},
            "result": {"recommendation": "do_not_list"},
        }
    )
    log.append(
        {
            "check_id": "c-2",
            "time": "2024-03-02T10:00:00+00:00",
            "platform_id": "lanhai",
            "subject": {"kind": "phone", "id": "+8613957112345"},
            "phone_owner_id": "jiang",
            "result": {"recommendation": "do_not_list"},
        }
    )
    log.append(
        {
            "check_id": "c-3",
            "time": "2024-03-03T10:00:00+00:00",
            "platform_id": "lanhai",
            "subject": {"kind": "person", "id": "xu_yan"},
            "result": {"recommendation": "list"},
        }
    )
    found = review(JIANG, tmp / "fixed", out=tmp / "out", check_log=tmp / "checks.jsonl")
    return applied, found, tmp / "out"


def test_every_platform_that_holds_or_passed_a_listing_gets_a_notice_in_travel_order(jiang_review):
    _, found, _ = jiang_review
    order = [n.platform_id for n in found.notices]
    # the lenders (first listers, by the day their loan's default was known), then the
    # broker that received it, then the banks; lanhai only for the checks it made
    assert order[: len(LENDERS)] == LENDERS
    assert order[len(LENDERS)] == "tianyan"
    assert sorted(order[len(LENDERS) + 1 : len(LENDERS) + 4]) == BANKS
    assert set(order) == {*LENDERS, "tianyan", *BANKS, "lanhai"}


def test_each_notice_names_only_what_its_platform_holds(jiang_review):
    _, found, _ = jiang_review
    by = {n.platform_id: n for n in found.notices}
    for n in found.notices:
        assert all(c.platform_id == n.platform_id for c in n.listings)
        assert all(r.platform_id == n.platform_id for r in n.records)
    assert [c.entry_id for c in by["qiantang_bank"].listings] == ["E-QT-J"]
    assert by["qiantang_bank"].records == () and by["qiantang_bank"].passed_to == ()
    assert [p.other_platform for p in by["qiantang_bank"].received_from] == ["tianyan"]
    assert {p.other_platform for p in by["tianyan"].passed_to} == set(BANKS)
    assert [c.entry_id for c in by["quickcash"].listings] == ["E-QC-PH"]
    assert [r.kind for r in by["quickcash"].records] == ["applicant_phone"]
    assert [c.check_id for c in by["westlake_bank"].checks] == ["c-1"]
    assert [c.check_id for c in by["lanhai"].checks] == ["c-2"]  # not Xu Yan's own check
    assert by["lanhai"].listings == () and by["lanhai"].records == ()


def test_the_notices_are_written_in_two_languages_and_two_formats(jiang_review):
    _, found, out = jiang_review
    files = sorted(p.name for p in (out / "notices").iterdir())
    assert len(files) == 4 * len(found.notices) + 1
    assert "notices.json" in files
    first = out / "notices" / "01-quickcash.en.md"
    text = first.read_text(encoding="utf-8")
    assert "E-QC-PH" in text and "XY-QC-1" in text and "E-QT-J" not in text
    zh = (out / "notices" / "09-qiantang_bank.zh.html").read_text(encoding="utf-8")
    assert "记录更正通知" in zh and "E-QT-J" in zh and "XY-QC-1" not in zh
    data = json.loads((out / "notices" / "notices.json").read_text(encoding="utf-8"))
    assert [n["platform_id"] for n in data["notices"]] == [n.platform_id for n in found.notices]
    assert json.loads((out / "changes.json").read_text(encoding="utf-8"))["counts"]["lifted"] == 11
    assert (out / "changes.csv").read_text(encoding="utf-8").count("\nlifted,") == 11


EVIL_PLATFORM = "QuickCash <img src=x onerror=alert(1)> [Pay here](https://evil.example/pay)"
EVIL_PERSON = "Jiang\n\n**Decision:** listing CONFIRMED, do not lift\u202e"


def _renamed_jiang(folder: Path) -> Path:
    """The Jiang case with markup in a platform's name and in Jiang's name."""
    import csv

    from spillover.files.write import write_data_rows

    shutil.copytree(JIANG, folder)
    for table, key, name in (
        ("platforms", "quickcash", EVIL_PLATFORM),
        ("people", "jiang", EVIL_PERSON),
    ):
        path = folder / f"{table}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        for row in rows[1:]:
            if row[0] == key:
                row[1] = name
        with path.open("w", encoding="utf-8", newline="") as handle:
            write_data_rows(handle, rows)
    return folder


def test_the_markdown_notices_escape_the_names_as_the_report_does(tmp_path):
    """A name from the data is text in a Markdown notice: no HTML, no link, no emphasis,
    no line of its own (probe s38, case 16), escaped by the report's own function."""
    from spillover.render.report import markdown_escape

    data = _renamed_jiang(tmp_path / "data")
    apply_remedy(data, tmp_path / "fixed", subject="jiang")
    review(data, tmp_path / "fixed", out=tmp_path / "out")
    for lang in ("en", "zh"):
        text = (tmp_path / "out" / "notices" / f"01-quickcash.{lang}.md").read_text("utf-8")
        assert "<img" not in text and "[Pay here](" not in text and "**Decision" not in text
        assert markdown_escape(EVIL_PLATFORM) in text
        assert markdown_escape(EVIL_PERSON) in text  # as the report writes it
        assert "\u202e" not in text  # the bidi override is written as an escape
    for notice in (tmp_path / "out" / "notices").glob("*.md"):
        # an escaped value in a code span would show its backslashes: no value is code
        assert not re.search(r"`[^`]*\\[^`]*`", notice.read_text("utf-8")), notice.name


def test_notice_file_names_are_the_platform_id_or_a_safe_form_of_it():
    from spillover.disputes.notices import notice_stem

    assert notice_stem(1, "quickcash") == "01-quickcash"  # as before
    assert notice_stem(12, "qiantang_bank.v2") == "12-qiantang_bank.v2"
    assert notice_stem(3, "蚂蚁") == "03-蚂蚁"
    slash, colon = notice_stem(1, "hz/quickcash"), notice_stem(1, "hz:quickcash")
    assert re.fullmatch(r"01-hz-quickcash-[0-9a-f]{8}", slash) and slash != colon
    assert re.fullmatch(r"02-[0-9a-f]{8}", notice_stem(2, "../.."))
    long = notice_stem(4, "t" * 300)
    assert len(long.encode()) < 100 and long != notice_stem(4, "t" * 299)


@pytest.fixture(scope="module")
def unsafe_ids_review(tmp_path_factory):
    """The Jiang case with ``quickcash`` renamed ``hz/quickcash`` (a path) and ``tianyan``
    too long for a file name, its remedy applied and reviewed: the review and its notices
    folder (the other platform ids stay plain)."""
    tmp = tmp_path_factory.mktemp("unsafe-ids")
    data = tmp / "data"
    shutil.copytree(JIANG, data)
    (data / "README.md").unlink()
    for path in data.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bquickcash\b", "hz/quickcash", text)
        path.write_text(re.sub(r"\btianyan\b", "tianyan" * 40, text), encoding="utf-8")
    apply_remedy(data, tmp / "fixed", subject="jiang")
    found = review(data, tmp / "fixed", out=tmp / "out")
    return found, tmp / "out" / "notices"


def test_notices_of_platform_ids_unsafe_in_a_file_name_are_written(unsafe_ids_review):
    """A platform id holding ``/`` (a path) or too long for a file name (probe s38,
    case 10) gets a notice all the same, under a safe name; other names do not change."""
    found, folder = unsafe_ids_review
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 4 * len(found.notices) + 1
    assert [n.platform_id for n in found.notices][:1] == ["hz/quickcash"]
    assert any(re.fullmatch(r"01-hz-quickcash-[0-9a-f]{8}\.en\.md", n) for n in names)
    assert any(re.fullmatch(r"08-(tianyan){5}tiany-[0-9a-f]{8}\.zh\.html", n) for n in names)
    assert "09-qiantang_bank.zh.html" in names


def test_notices_json_names_the_files_of_each_notice(unsafe_ids_review):
    """``notices.json`` lists, for each notice, its files by language and format: exactly
    the files on disk, for a platform id with ``/`` as for a plain one (a system reading
    it need not rebuild the safe names)."""
    from spillover.disputes.notices import NOTICES_FILE

    found, folder = unsafe_ids_review
    data = json.loads((folder / NOTICES_FILE).read_text(encoding="utf-8"))
    listed = [n["files"] for n in data["notices"]]
    by_id = {n["platform_id"]: n["files"] for n in data["notices"]}
    assert by_id["qiantang_bank"] == {
        "en": {"md": "09-qiantang_bank.en.md", "html": "09-qiantang_bank.en.html"},
        "zh": {"md": "09-qiantang_bank.zh.md", "html": "09-qiantang_bank.zh.html"},
    }
    slash = by_id["hz/quickcash"]
    assert set(slash) == {"en", "zh"} and all(set(f) == {"md", "html"} for f in slash.values())
    assert re.fullmatch(r"01-hz-quickcash-[0-9a-f]{8}\.zh\.html", slash["zh"]["html"])
    # every name listed is a file there, and every file there but notices.json is listed
    names = [name for files in listed for formats in files.values() for name in formats.values()]
    assert len(names) == len(set(names)) == 4 * len(found.notices)
    assert all((folder / name).is_file() for name in names)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, NOTICES_FILE])
    # each notice's file is its own: the English Markdown names the platform's listings
    for notice, files in zip(found.notices, listed, strict=True):
        text = (folder / files["en"]["md"]).read_text(encoding="utf-8")
        assert all(c.entry_id in text for c in notice.listings), files["en"]["md"]


def test_a_notice_opens_in_chromium(jiang_review, tmp_path):
    from spillover.render.report import chromium_snapshot

    _, _, out = jiang_review
    png = tmp_path / "notice.png"
    chromium_snapshot(out / "notices" / "08-tianyan.zh.html", png=png, window=(1000, 900))
    assert png.stat().st_size > 10_000


def test_changes_text_names_the_records_behind_each_change(tmp_path):
    apply_remedy(JIANG, tmp_path / "fixed", entry_id="E-QT-J")
    text = changes_text(changes(JIANG, tmp_path / "fixed"))
    assert "LIFTED E-QT-J at qiantang_bank" in text
    assert "corrected: " in text


def test_review_refuses_a_full_output_folder_before_reading(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(SpilloverError, match="new or empty"):
        review(JIANG, JIANG, out=tmp_path / "out")


# --- the command line -------------------------------------------------------------------------


def test_remedy_apply_then_changes_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from spillover.cli import cli

    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "remedy",
            "--subject",
            "jiang",
            "--apply",
            "--out",
            str(tmp_path / "fixed"),
            "--data",
            str(JIANG),
            "--format",
            "json",
        ],
    )
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.output)["entries"]) == 11
    done = runner.invoke(
        cli,
        [
            "changes",
            "--before",
            str(JIANG),
            "--after",
            str(tmp_path / "fixed"),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "csv",
        ],
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.count("\nlifted,") == 11
    assert (tmp_path / "out" / "notices" / "notices.json").exists()
    done = runner.invoke(cli, ["changes", "--before", str(JIANG), "--after", str(JIANG)])
    assert done.exit_code == 0 and "no entry changed" in done.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["remedy", "--data", str(JIANG)], "give an ENTRY_ID or --subject"),
        (["remedy", "E-QT-J", "--subject", "jiang", "--data", str(JIANG)], "not both"),
        (["remedy", "--subject", "jiang", "--data", str(JIANG)], "add --apply --out DIR"),
        (["remedy", "E-QT-J", "--out", "x", "--data", str(JIANG)], "add --apply"),
        (["remedy", "E-QT-J", "--apply", "--data", str(JIANG)], "give --out DIR"),
        (
            ["changes", "--before", str(JIANG), "--after", str(JIANG), "--check-log", "x"],
            "give --out DIR",
        ),
    ],
)
def test_refused_option_mixes(args, message, tmp_path):
    from click.testing import CliRunner

    from spillover.cli import cli

    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 2 and message in done.output, done.output
    assert not Path("x").exists()


# --- changes from an earlier audit file (issue 23 item 2) -----------------------------------


def _cli(*args: str):
    from click.testing import CliRunner

    from spillover.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_changes_from_an_earlier_audit_file_equal_those_from_the_folder(tmp_path, suffix):
    audit_file = tmp_path / f"before{suffix}"
    done = _cli("audit", "--data", str(JIANG), "--out", str(audit_file))
    assert done.exit_code == 0, done.output
    meta = json.loads((tmp_path / f"before{suffix}.meta.json").read_text())
    assert meta["rows"] == 16 and meta["policy_detail"]["name"] == "spillover-default"
    apply_remedy(JIANG, tmp_path / "fixed", subject="jiang")
    from_folder = changes(JIANG, tmp_path / "fixed")
    from_file = changes(audit_file, tmp_path / "fixed")
    assert [(c.status, c.entry_id, c.before, c.after) for c in from_file.entries] == [
        (c.status, c.entry_id, c.before, c.after) for c in from_folder.entries
    ]
    assert from_file.unchanged == from_folder.unchanged and from_file.count(LIFTED) == 11
    assert from_file.removed_records == () and from_file.before == str(audit_file)
    shown = _cli("changes", "--before", str(audit_file), "--after", str(tmp_path / "fixed"))
    assert shown.exit_code == 0 and "lifted" in shown.output


def test_an_audit_file_of_another_policy_or_dataset_is_refused(tmp_path):
    from spillover.policy import load_policy

    audit_file = tmp_path / "before.csv"
    assert _cli("audit", "--data", str(JIANG), "--out", str(audit_file)).exit_code == 0
    other = tmp_path / "other.toml"
    text = (Path(__file__).parents[1] / "src/spillover/policies/default.toml").read_text()
    other.write_text(text.replace('version = "1.0.0"', 'version = "1.0.1"'))
    with pytest.raises(SpilloverError, match=r"audited under the policy spillover-default 1\.0\.0"):
        changes(audit_file, JIANG, policy=load_policy(other))
    world = random_scenario(3, people=6, loans=10, entries=4).write(tmp_path / "world")
    with pytest.raises(SpilloverError, match="not an audit of the dataset"):
        changes(audit_file, world)
    out = tmp_path / "out"
    for args, says in [
        (["--policy", str(other)], "audited under the policy"),
        ([], None),
        (["--out", str(out)], "give --before the folder"),
    ]:
        after = str(world) if says is None else str(JIANG)
        done = _cli("changes", "--before", str(audit_file), "--after", after, *args)
        assert done.exit_code != 0
        assert (says or "not an audit of the dataset") in done.output
        assert done.output.lower().count("error") == 1 and "Traceback" not in done.output
    assert not out.exists()
    (tmp_path / "before.csv.meta.json").unlink()
    with pytest.raises(SpilloverError, match="says which policy"):
        changes(audit_file, JIANG)


# --- in Neo4j: the write-back records what changed (issue 23 item 5) -------------------------


@pytest.mark.neo4j
def test_a_write_back_after_a_corrected_ingest_records_the_changes(neo4j_db, tmp_path):
    from spillover.neo4j.ingest import ingest_folder
    from spillover.neo4j.saved import run_saved_query
    from spillover.neo4j.store import Neo4jBackend
    from spillover.neo4j.writeback import write_back

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(JIANG, driver, db)
    first = write_back(Neo4jBackend(driver, db))
    assert run_saved_query(driver, db, "changes_since", {}).rows == ()  # nothing before
    applied = apply_remedy(JIANG, tmp_path / "fixed", subject="jiang")
    ingest_folder(tmp_path / "fixed", driver, db, dataset="jiang_case")
    second = write_back(Neo4jBackend(driver, db))
    found = run_saved_query(driver, db, "changes_since", {}).rows
    expected = changes(JIANG, tmp_path / "fixed")
    assert sorted(r["entry_id"] for r in found) == sorted(applied.entries)
    by_id = {c.entry_id: c for c in expected.entries}
    for r in found:
        c = by_id[r["entry_id"]]
        assert r["status"] == c.status == LIFTED
        assert c.before is not None and c.after is not None
        assert (r["previous_verdict"], r["verdict"]) == (c.before.verdict, c.after.verdict)
        assert r["previous_contamination"] == pytest.approx(c.before.contamination)
        assert r["contamination"] == pytest.approx(c.after.contamination)
        assert r["changed_at"].startswith(second.audited_at.isoformat()[:19])
    # a rerun changes nothing: the same changes, still dated from the run that saw them
    write_back(Neo4jBackend(driver, db))
    again = run_saved_query(driver, db, "changes_since", {}).rows
    assert again == found
    # a moment after the run (a time cut to the millisecond plus 0.9 ms fell before the
    # run's own time once in ten: its microseconds past .xxx900)
    after = second.audited_at + datetime.timedelta(milliseconds=1)
    later = {"since": after.isoformat().replace("+00:00", "Z")}
    assert run_saved_query(driver, db, "changes_since", later).rows == ()
    assert first.audited_at < second.audited_at


@pytest.mark.neo4j
def test_changes_since_lists_the_entries_a_corrected_ingest_added(neo4j_db, tmp_path):
    """An entry the corrected folder adds is listed with no previous answer: `new` when it is
    spillover, `added` when not, as `spillover changes` says; the first write-back lists
    nothing (no run before it)."""
    from spillover.neo4j.ingest import ingest_folder
    from spillover.neo4j.saved import run_saved_query
    from spillover.neo4j.store import Neo4jBackend
    from spillover.neo4j.writeback import write_back

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    after = tmp_path / "after"
    shutil.copytree(JIANG, after)
    with (after / "blacklist.csv").open("a", encoding="utf-8") as handle:
        handle.write("E-NEW-LN,huaqian,person,li_na,2023-10-20,contact of a defaulter,\n")
        handle.write("E-NEW-XY,lanhai,person,xu_yan,2023-10-20,own default,\n")
    ingest_folder(JIANG, driver, db)
    write_back(Neo4jBackend(driver, db))
    assert run_saved_query(driver, db, "changes_since", {}).rows == ()
    ingest_folder(after, driver, db, dataset="jiang_case")
    second = write_back(Neo4jBackend(driver, db))
    found = {r["entry_id"]: r for r in run_saved_query(driver, db, "changes_since", {}).rows}
    expected = {c.entry_id: c for c in changes(JIANG, after).entries}
    assert {k: c.status for k, c in expected.items()} == {"E-NEW-LN": NEW, "E-NEW-XY": ADDED}
    assert {k: r["status"] for k, r in found.items()} == {"E-NEW-LN": NEW, "E-NEW-XY": ADDED}
    for entry_id, r in found.items():
        c = expected[entry_id]
        assert c.before is None and c.after is not None
        assert (r["previous_verdict"], r["previous_contamination"]) == (None, None)
        assert r["verdict"] == c.after.verdict
        assert r["contamination"] == pytest.approx(c.after.contamination)
        assert r["changed_at"].startswith(second.audited_at.isoformat()[:19])
    write_back(Neo4jBackend(driver, db))  # a rerun keeps them, dated from the run that saw them
    assert {r["entry_id"]: r for r in run_saved_query(driver, db, "changes_since", {}).rows} == (
        found
    )


# --- changes against the store (issue 23 item 5) -------------------------------------------


@pytest.fixture(scope="module")
def jiang_reviewed(tmp_path_factory):
    """Jiang's remedy applied, and the changes and notices of the two folders compared."""
    tmp = tmp_path_factory.mktemp("reviewed")
    apply_remedy(JIANG, tmp / "fixed", subject="jiang")
    review(JIANG, tmp / "fixed", out=tmp / "folders")
    return tmp / "fixed", tmp / "folders"


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.neo4j
@pytest.mark.parametrize("side", ["after", "before"])
def test_changes_with_one_side_in_the_store_equal_those_of_the_two_folders(
    side, jiang_reviewed, neo4j_env, tmp_path
):
    """The store holds the data after (the corrected folder ingested over the original) or
    before (not yet ingested); the rows, JSON and notices are the folders', but for the
    name of the side read from the store."""
    from spillover.disputes.changes import store_label
    from spillover.neo4j.ingest import graph_counts

    fixed, folders = jiang_reviewed
    assert _cli("ingest", str(JIANG)).exit_code == 0
    if side == "after":
        assert _cli("ingest", str(fixed), "--dataset", "jiang_case").exit_code == 0
    args = ["--before", str(JIANG)] if side == "after" else ["--after", str(fixed)]
    held = graph_counts(neo4j_env.driver, neo4j_env.settings.database)
    out = tmp_path / "out"
    done = _cli("changes", *args, "--out", str(out), "--format", "json")
    assert done.exit_code == 0, done.output
    label = store_label(neo4j_env.settings)
    expected = json.loads((folders / "changes.json").read_text(encoding="utf-8"))
    assert json.loads(done.stdout) == {**expected, side: label}
    assert expected["counts"]["lifted"] == 11
    got, want = _files(out), _files(folders)
    assert sorted(got) == sorted(want)
    for name, text in want.items():
        if name.endswith(".json"):
            assert json.loads(got[name]) == {**json.loads(text), side: label}, name
        else:
            assert got[name] == text, name
    shown = _cli("changes", *args, "--format", "csv")
    assert shown.stdout == want["changes.csv"]
    assert graph_counts(neo4j_env.driver, neo4j_env.settings.database) == held  # only read


@pytest.mark.neo4j
def test_changes_refuse_a_store_of_another_dataset_or_policy_writing_nothing(neo4j_env, tmp_path):
    world = random_scenario(3, people=6, loans=10, entries=4).write(tmp_path / "world")
    other = tmp_path / "other.toml"
    text = (Path(__file__).parents[1] / "src/spillover/policies/default.toml").read_text()
    other.write_text(text.replace('version = "1.0.0"', 'version = "1.0.1"'))
    out = tmp_path / "out"

    def refused(says: str, *args: str) -> None:
        done = _cli("changes", *args, "--out", str(out))
        assert done.exit_code == 1, done.output
        assert says in done.output, done.output
        assert done.output.lower().count("error") == 1 and "Traceback" not in done.output
        assert not out.exists()

    refused("holds no data", "--before", str(JIANG))
    assert _cli("ingest", str(world)).exit_code == 0
    refused("not two versions of one dataset", "--before", str(JIANG))
    refused("holds dataset 'world'", "--after", str(JIANG))
    assert _cli("ingest", str(JIANG), "--replace").exit_code == 0
    assert _cli("audit", "--write-back").exit_code == 0
    refused(
        "holds audit results scored under the policy spillover-default 1.0.0",
        "--after",
        str(JIANG),
        "--policy",
        str(other),
    )
    done = _cli("changes", "--after", str(JIANG), "--policy", str(other))  # without --out too
    assert done.exit_code == 1 and "compare under the same policy (--policy)" in done.output
    done = _cli("changes", "--after", str(JIANG))  # the store's own policy: nothing changed
    assert done.exit_code == 0 and "no entry changed" in done.output
    s = neo4j_env.settings
    both = _cli("changes", "--before", str(JIANG), "--after", str(JIANG), "--neo4j-uri", s.uri)
    assert both.exit_code == 2 and "leave out --before or --after" in both.output


def test_a_side_left_out_needs_neo4j(monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    done = _cli("changes", "--before", str(JIANG))
    assert done.exit_code == 2 and "no Neo4j is given" in done.output
    done = _cli("changes")
    assert done.exit_code == 2 and "give --before or --after" in done.output
    # two folders: a NEO4J_URI in the environment is not used
    monkeypatch.setenv("NEO4J_URI", "bolt://localhost:1")
    done = _cli("changes", "--before", str(JIANG), "--after", str(JIANG))
    assert done.exit_code == 0 and "no entry changed" in done.output


def test_remedy_apply_takes_a_phone_subject_in_its_national_form(tmp_path):
    """``--subject 13957112345 --subject-kind phone`` is the number of --region, as in
    ``report`` and ``neighborhood`` (probe s38, case 13: it was an unknown phone)."""
    from click.testing import CliRunner

    from spillover.cli import cli

    def apply(subject: str, out: str) -> list[str]:
        done = CliRunner().invoke(
            cli,
            ["remedy", "--subject", subject, "--subject-kind", "phone", "--apply", "--out",
             str(tmp_path / out), "--data", str(JIANG), "--format", "json"],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        return list(json.loads(done.output)["entries"])

    national = apply("13957112345", "national")
    assert national and national == apply("+8613957112345", "e164")
    done = CliRunner().invoke(
        cli,
        ["remedy", "--subject", "12", "--subject-kind", "phone", "--apply", "--out",
         str(tmp_path / "bad"), "--data", str(JIANG)],
    )  # fmt: skip
    assert done.exit_code == 1 and "--subject" in done.output and "Traceback" not in done.output
