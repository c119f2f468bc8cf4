"""``spillover link --report DIR``: the linkage report (docs/linkage.md "The report")."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("splink")

from PIL import Image

from spillover.cli import cli
from spillover.errors import OptionError
from spillover.link import SETTINGS_VERSION
from spillover.link.report import LinkReport, link_report
from spillover.link.resolve import default_settings, link, pairwise_quality
from spillover.synth.generate import generate
from test_link import rec, write_records

SECTIONS = (
    "# Linkage report",
    "## Comparisons per blocking rule",
    "## Blocking recall (the share of true matches the rules compare)",
    "## The model: m and u per comparison level",
    "## Files",
)
DRAWINGS = ("match-weights", "weight-distribution", "waterfall")
SPLINK_CHARTS = (
    "splink-match-weights.html",
    "splink-m-u-parameters.html",
    "splink-match-weights-histogram.html",
    "splink-comparisons-by-blocking-rule.html",
    "splink-waterfall.html",
    "splink-comparison-viewer.html",
)


@pytest.fixture(scope="module")
def synth_report(tmp_path_factory):
    """A small synth --records folder linked with --report and --truth through the CLI,
    the scored pairs read from the run itself."""
    base = tmp_path_factory.mktemp("report")
    data = generate(300, 1, base / "s300", records=True).out
    truth = data / "ground_truth" / "records.csv"
    result = CliRunner().invoke(
        cli,
        ["link", "--data", str(data), "--out", str(base / "out"), "--report",
         str(base / "rep"), "--truth", str(truth)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"data": data, "out": base / "out", "rep": base / "rep", "truth": truth,
            "output": result.output, "base": base}  # fmt: skip


def report_of(folder: Path) -> LinkReport:
    return LinkReport.model_validate_json((folder / "report.json").read_text(encoding="utf-8"))


def test_the_report_has_its_sections_and_files(synth_report):
    rep = synth_report["rep"]
    text = (rep / "report.md").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in text
    report = report_of(rep)
    names = {p.name for p in rep.iterdir()}
    assert names == set(report.files)
    assert {f"{d}.{ext}" for d in DRAWINGS for ext in ("png", "svg")} <= names
    assert set(SPLINK_CHARTS) <= names
    for chart in SPLINK_CHARTS:  # offline: the chart libraries inlined, no CDN needed
        html = (rep / chart).read_text(encoding="utf-8")
        assert "<html" in html.lower() and "vega" in html.lower()
    for name in report.files:
        if name.endswith(".png"):
            assert f"({name})" in text  # the Markdown links every file
    assert "How: " in text and "Limits: " in text and "exact blocking recall" in text


def test_privacy_names_the_report_files_that_show_records_values(synth_report):
    """docs/privacy.md names the files of ``link --report`` that show the records' values
    (Splink's waterfall and comparison viewer) and says the others hold none."""
    with (synth_report["data"] / "records.csv").open(encoding="utf-8") as handle:
        ids = {r["id_number"] for r in csv.DictReader(handle) if r["id_number"]}
    showing = set()
    for path in synth_report["rep"].iterdir():
        text = path.read_bytes().decode("utf-8", "replace")
        if any(i in text for i in ids):
            showing.add(path.name)
    assert showing == {"splink-waterfall.html", "splink-comparison-viewer.html"}
    privacy = (Path(__file__).resolve().parents[1] / "docs" / "privacy.md").read_text("utf-8")
    row = next(line for line in privacy.splitlines() if "`link --report`" in line)
    for name in showing:
        assert f"`{name}`" in row


def test_the_numbers_agree_with_the_link_summary(synth_report):
    report = report_of(synth_report["rep"])
    output = synth_report["output"]
    assert f"{report.records} records" in output
    assert f"{report.pairs_scored} pairs scored, {report.pairs_joined} joined" in output
    assert f"{report.pairs_refused_phone_only} refused" in output
    assert report.pairs_scored == sum(b.pairs for b in report.blocking)
    assert report.blocking[-1].cumulative_pairs == report.pairs_scored
    assert report.pairs_over_threshold == (
        report.pairs_joined
        + report.pairs_refused_phone_only
        + report.pairs_refused_misused_phone
        + report.pairs_refused_id_conflict
        + report.pairs_refused_birth_conflict
    )
    assert report.pairs_over_threshold == sum(b.pairs_over_threshold for b in report.blocking)
    assert report.pairs_possible == report.records * (report.records - 1) // 2
    rules = [
        r["blocking_rule"] for r in default_settings()["blocking_rules_to_generate_predictions"]
    ]
    assert [b.rule for b in report.blocking] == rules  # no key over the cap: as shipped
    # 566 records: the shipped model, every level's m and u as it ships
    assert not report.trained and report.model == SETTINGS_VERSION
    shipped = {
        (c["output_column_name"], lv["label_for_charts"]): lv
        for c in default_settings()["comparisons"]
        for lv in c["comparison_levels"]
    }
    assert len(report.levels) == len(shipped)
    for lv in report.levels:
        if lv.m_probability is None:
            assert lv.level == "missing"
            continue
        assert lv.m_probability == shipped[(lv.field, lv.level)]["m_probability"]
        assert lv.u_probability == shipped[(lv.field, lv.level)]["u_probability"]
        assert lv.bayes_factor == pytest.approx(lv.m_probability / lv.u_probability)
        assert lv.match_weight == pytest.approx(math.log2(lv.bayes_factor), abs=1e-4)
        assert lv.m_source == lv.u_source == "model"
    assert report.prior == default_settings()["probability_two_random_records_match"]


def test_the_drawings_are_real_images(synth_report):
    rep = synth_report["rep"]
    sizes = {
        "match-weights": (990, 770),
        "weight-distribution": (990, 495),
        "waterfall": (990, 495),
    }
    for name, size in sizes.items():
        with Image.open(rep / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == size
            image.load()  # the whole picture decodes
            assert np.unique(np.asarray(image.convert("L"))).size > 10  # something is drawn
        root = ET.parse(rep / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")


def test_the_recall_with_the_truth_is_exact(synth_report, tmp_path):
    """Counted again here from the truth file, the scored pairs of the same run and the
    linked folder: true pairs compared / true pairs, and the pairwise quality."""
    scored: set[tuple[str, str]] = set()

    def keep(run):
        scored.update(run.con.execute("SELECT record_id_l, record_id_r FROM scored").fetchall())

    link(synth_report["data"], tmp_path / "again", on_model=keep)
    with synth_report["truth"].open(encoding="utf-8") as handle:
        truth = {r["record_id"]: r["person_id"] for r in csv.DictReader(handle)}
    people: dict[str, list[str]] = {}
    for rid in sorted(truth):
        people.setdefault(truth[rid], []).append(rid)
    true_pairs = {
        (a, b) for ids in people.values() for i, a in enumerate(ids) for b in ids[i + 1 :]
    }
    check = report_of(synth_report["rep"]).truth
    assert check is not None
    assert check.true_pairs == len(true_pairs)
    assert check.true_pairs_compared == len(true_pairs & scored)
    assert check.blocking_recall == round(len(true_pairs & scored) / len(true_pairs), 6)
    assert 0.9 < check.blocking_recall < 1  # some true pairs are never compared
    with (synth_report["out"] / "matches.csv").open(encoding="utf-8") as handle:
        predicted = {r["record_id"]: r["person_id"] for r in csv.DictReader(handle)}
    quality = pairwise_quality(predicted, truth)
    assert (check.precision, check.recall, check.f1) == tuple(
        round(quality[k], 6) for k in ("precision", "recall", "f1")
    )
    assert f"exact {check.blocking_recall:g}" in synth_report["output"]


def test_a_pair_no_rule_compares_lowers_the_recall(tmp_path):
    """Two records of one person that share no blocking key (one with a city, one in 汉字
    with a longer given name, a birth date and another phone) are never compared: the
    exact recall is 1/2; the wider comparison (their first name part in common) finds the
    pair and scores it."""
    data = write_records(
        tmp_path / "in",
        [
            rec("a1", "Li Lei", "", "+8613900000001"),
            rec("a2", "LI Lei", "", "+8613900000001"),
            rec("b1", "Wang Fang", "", "+8613900000002", city="Hangzhou"),
            rec("b2", "王芳芳", "", "+8613900000003", birth_date="1990-01-01"),
            rec("c1", "Zhao Min", "", "+8613900000004"),
        ],
    )
    truth = tmp_path / "truth.csv"
    truth.write_text("record_id,person_id\na1,A\na2,A\nb1,B\nb2,B\nc1,C\n", encoding="utf-8")
    summary, report = link_report(data, tmp_path / "out", tmp_path / "rep", truth=truth)
    assert report.truth is not None
    assert (report.truth.true_pairs, report.truth.true_pairs_compared) == (2, 1)
    assert report.truth.blocking_recall == 0.5 and report.truth.true_pairs_in_wider_keys == 2
    assert summary.pairs_scored == report.pairs_scored == 1
    assert report.recall.probed_pairs_not_blocked >= 1  # b1-b2 probed by name
    assert (
        json.loads((tmp_path / "rep" / "report.json").read_text())["truth"]["blocking_recall"]
        == 0.5
    )


@pytest.fixture
def run(monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def small_folder(tmp_path: Path) -> Path:
    return write_records(
        tmp_path / "in",
        [rec("r1", "Xu Yan", "", "+8613900000001"), rec("r2", "XU Yan", "", "+8613900000001")],
    )


def test_a_report_folder_that_is_a_file_is_refused_and_nothing_written(tmp_path, run):
    data = small_folder(tmp_path)
    (tmp_path / "rep").write_text("not a folder", encoding="utf-8")
    result = run("link", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--report", str(tmp_path / "rep"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "--report" in result.output and "not an empty folder" in result.output
    assert "Traceback" not in result.output and result.output.count("Error:") == 1
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "rep").read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("record_id,name\nr1,A\n", "no column person_id"),
        ("id,person\nr1,A\n", "no column record_id, person_id"),
        ("record_id,person_id\nr1,\n", ":2: record_id and person_id needed"),
        (None, "cannot read"),
    ],
)
def test_a_bad_truth_file_is_refused_and_nothing_written(tmp_path, run, text, words):
    data = small_folder(tmp_path)
    truth = tmp_path / "truth.csv"
    if text is not None:
        truth.write_text(text, encoding="utf-8")
    result = run("link", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--report", str(tmp_path / "rep"), "--truth", str(truth))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "--truth" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output and result.output.count("Error:") == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "rep").exists()
    with pytest.raises(OptionError, match=words.replace("(", r"\(")):
        link_report(data, tmp_path / "out", tmp_path / "rep", truth=truth)
    assert not (tmp_path / "out").exists() and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("where", ["out", "out/rep", "in/rep"])
def test_a_report_folder_inside_the_data_or_the_output_is_refused(tmp_path, where):
    data = small_folder(tmp_path)
    with pytest.raises(OptionError, match=r"(is|is inside|holds) the --(out|data) folder"):
        link_report(data, tmp_path / "out", tmp_path / where)
    assert not (tmp_path / "out").exists() and not (tmp_path / "in" / "rep").exists()


def test_save_settings_inside_the_report_folder_is_refused(tmp_path, run):
    """The model saved inside --report would make the report folder not empty when the
    report is written, after the linked folder: refused first, nothing written."""
    data = small_folder(tmp_path)
    result = run("link", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--report", str(tmp_path / "rep"),
                 "--save-settings", str(tmp_path / "rep" / "model.json"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "--save-settings" in result.output and "inside the --report folder" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "rep").exists()


def test_truth_needs_a_report(tmp_path, run):
    data = small_folder(tmp_path)
    result = run("link", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--truth", str(tmp_path / "t.csv"))  # fmt: skip
    assert result.exit_code == 2 and "--truth needs --report" in result.output
    assert not (tmp_path / "out").exists()


def test_a_report_on_a_single_record(tmp_path):
    """Nothing to compare: the report still says so, with no pair and no waterfall."""
    data = write_records(tmp_path / "in", [rec("r1", "Xu Yan", "", "+8613900000001")])
    summary, report = link_report(data, tmp_path / "out", tmp_path / "rep")
    assert summary.pairs_scored == report.pairs_scored == 0
    assert report.recall.recall_estimate is None and report.truth is None
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert "match-weights.png" in names and "waterfall.png" not in names
