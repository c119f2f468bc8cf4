"""The dispute report: both languages complete, everything from the data escaped, the Jiang
report on every backend, and opened in headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

from scaling import copy_chain_case, within
from scenario import Scenario
from spillover.cli import cli
from spillover.engines.remedy import RECORD_KINDS
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.model import LoanStatus
from spillover.policy import default_policy
from spillover.render.i18n import (
    LANGS,
    LOAN_STATUS,
    REASONS_ZH,
    RECORD_TEXTS,
    ROLE_TEXTS_ZH,
    STEP_TEXTS_ZH,
    UI,
    VERDICTS,
)
from spillover.render.report import CHROMIUM, chromium_snapshot, markdown_escape, report
from spillover.rules import REASONS, ROLES, STEP_KINDS, Verdict
from test_remedy import jiang_scenario

XU_LOANS = ("XY-QC-1", "XY-YD-1", "XY-XY-1", "XY-HQ-1", "XY-AX-1", "XY-JD-1", "XY-MT-1")


def fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


# --- both languages, every code -------------------------------------------------


def test_every_reason_code_has_both_languages():
    assert set(REASONS_ZH) == set(REASONS)
    assert all(REASONS_ZH[c].strip() and REASONS[c].strip() for c in REASONS)


def test_every_step_kind_role_verdict_status_and_record_has_both_languages():
    assert set(STEP_TEXTS_ZH) == set(STEP_KINDS)
    for name, kind in STEP_KINDS.items():
        assert fields(STEP_TEXTS_ZH[name]) == fields(kind.text), name
    assert set(ROLE_TEXTS_ZH) == set(ROLES)
    assert set(VERDICTS) == {v.value for v in Verdict}
    assert set(LOAN_STATUS) == {s.value for s in LoanStatus}
    assert set(RECORD_TEXTS) == set(RECORD_KINDS)
    for table in (VERDICTS, LOAN_STATUS, RECORD_TEXTS, UI):
        for key, texts in table.items():
            assert set(texts) == set(LANGS), key
            assert fields(texts["en"]) == fields(texts["zh"]), key
            assert all(texts[lang].strip() for lang in LANGS), key


def test_the_chinese_report_uses_no_english_label():
    html = report(_jiang_memory(), "jiang", lang="zh")
    for key, texts in UI.items():
        if texts["en"] != texts["zh"] and not fields(texts["en"]) and len(texts["en"]) > 8:
            assert texts["en"] not in html, key


def _jiang_memory():
    from spillover import open_folder

    return open_folder(jiang_case_path())


# --- the Jiang report, every backend ----------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_the_jiang_report(graph, lang):
    g = graph(jiang_scenario())
    html = report(g, "jiang", lang=lang)
    md = report(g, "jiang", lang=lang, fmt="md")
    policy = default_policy()
    for doc, esc in ((html, lambda x: str(escape(x))), (md, markdown_escape)):
        for loan in XU_LOANS:
            assert loan in doc
        for lender in (
            "Anxin Finance",
            "QuickCash",
            "Tianyan Big Data",
            "West Lake Commercial Bank",
        ):
            assert lender in doc
        assert "Xu Yan" in doc and policy.digest in doc and policy.version in doc
        assert "2024-03-20" in doc  # the data's date: the last listing
        for code in ("EMERGENCY_CONTACT", "SHARED_BLACKLIST", "PHONE_USED_UNVERIFIED"):
            assert esc(code) in doc
            text = REASONS[code] if lang == "en" else REASONS_ZH[code]
            assert esc(text) in doc
    assert html.count('class="entry spill"') == 11
    summary = html.split('id="what-to-do"')[0]
    assert ">11<" in summary and "+86 139 5711 2345" in summary and "Xu Yan" in summary
    remedy_part = html.split('id="what-to-do"')[1].split('id="drawing"')[0]
    assert all(loan in remedy_part for loan in XU_LOANS)
    assert remedy_part.index("Anxin Finance") < remedy_part.index("Tianyan Big Data")
    assert "<svg" in html and "<script" not in html.lower()
    if lang == "zh":
        assert '<html lang="zh-CN">' in html and "黑名单申诉报告" in html and "短信验证" in html
    else:
        assert "SMS-verified" in html


@pytest.mark.parametrize("lang", LANGS)
def test_the_jiang_records_report_names_the_match_to_correct(graph, lang):
    """On examples/jiang_records three listings are of Tianyan's record of Xu Yan, matched to
    Jiang by the phone alone: the report lists them, and each one's remedy is that match."""
    g = graph(jiang_scenario(jiang_records_path()))
    md = report(g, "jiang", lang=lang, fmt="md")
    html = report(g, "jiang", lang=lang)
    match = (
        "Xu Yan (record TY-R-XU) is matched to Jiang (bakery owner) by the phone number alone"
        if lang == "en"
        else "Xu Yan (record TY-R-XU) 被匹配为 Jiang (bakery owner)（依据：仅凭手机号）"
    )
    held = "(held by Tianyan Big Data)" if lang == "en" else "(记录方 Tianyan Big Data)"
    lead = (
        "Correct the 1 record below and no explanation is left: they break all 81 paths"
        if lang == "en"
        else "81"
    )
    word = "Entry" if lang == "en" else "条目"
    sections = {x.split(" ·")[0]: x for x in md.split("\n### ")}
    for entry in ("E-TY-R", "E-QT-J", "E-ZM-J"):
        remedy_part = sections[f"{word} {markdown_escape(entry)}"].split("\n#### ")[-1]
        assert f"- {markdown_escape(match)} {held}" in remedy_part, entry
        assert lead in remedy_part, entry
    assert html.count('class="entry spill"') == 11
    assert str(escape(match)) in html.replace("<bdi>", "").replace("</bdi>", "")


def test_the_report_is_one_offline_file():
    html = report(_jiang_memory(), "jiang")
    assert not re.search(r"<(link|script|iframe|img|object|embed)\b", html, re.I)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html, re.I)
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(?!#)", html)
    assert "@page" in html and "size: A4" in html


def test_the_same_report_from_the_same_data():
    assert report(_jiang_memory(), "jiang") == report(_jiang_memory(), "jiang")


def test_a_phone_report_lists_only_the_phone_entries(graph):
    g = graph(jiang_scenario())
    md = report(g, "+8613957112345", "phone", fmt="md")
    assert md.count("### Entry ") == 7 and "E\\-TY\\-J" not in md and "E-TY-J" not in md


# --- escaping ------------------------------------------------------------------

EVIL_NAME = '<script>alert("name")</script> <b>Bold</b> & [x](javascript:y) *Co*|'
EVIL_REASON = "<img src=x onerror=alert(1)> <script>steal()</script> **loud** | `tick`"


def evil_scenario() -> Scenario:
    s = Scenario()
    s.person("victim", EVIL_NAME)
    s.person("xu", "Xu <i>Yan</i>")
    s.platform("lender")
    s.tables["platforms"][0]["name"] = "Lender <svg onload=alert(2)>"
    phone = s.phone("victim", "+8613900000001")
    s.phone("xu", "+8613900000002")
    s.loan(
        "L1", "lender", "xu", "2023-01-10", applicant_phone="+8613900000002", status_at="2023-02-01"
    )
    s.link("L1", phone, "emergency_contact")
    s.entry("E1", "lender", "victim", "2023-04-01", stated_reason=EVIL_REASON)
    return s


def test_every_value_from_the_data_is_escaped_in_html(graph):
    html = report(graph(evil_scenario()), "victim")
    lower = html.lower()
    assert "<script" not in lower and "<img" not in lower and "<b>" not in lower
    # no tag with an onload attribute (the drawing may wrap the escaped name between words)
    assert "<i>" not in lower and not re.search(r"<[^<>]*\bonload=", lower)
    assert "onerror=alert" not in lower.replace("&lt;img src=x onerror=alert", "")
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html and "&amp;" in html
    # the drawing names the victim too: as text
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "&lt;script&gt;" in svg and "<script" not in svg.lower()


def test_every_value_from_the_data_is_escaped_in_markdown(graph):
    md = report(graph(evil_scenario()), "victim", fmt="md")
    assert "<script" not in md.lower() and "<img" not in md.lower() and "<b>" not in md
    assert "&lt;script&gt;" in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "\\*\\*loud\\*\\*" in md and "\\| \\`tick\\`" in md
    assert "\\[x\\](javascript:y)" in md


# --- the CLI ------------------------------------------------------------------


def test_report_cli_writes_html_and_markdown(tmp_path):
    runner = CliRunner()
    data = str(jiang_case_path())
    for name, lang in (("j.html", "en"), ("j.md", "zh"), ("p.html", "zh")):
        args = ["report", "jiang", "--data", data, "--out", str(tmp_path / name), "--lang", lang]
        if name.startswith("p"):
            args[1:2] = ["13957112345"]
            args += ["--subject-kind", "phone"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_text(encoding="utf-8").strip()
    assert "# 黑名单申诉报告" in (tmp_path / "j.md").read_text(encoding="utf-8")
    bad = runner.invoke(cli, ["report", "jiang", "--data", data, "--out", str(tmp_path / "j.pdf")])
    assert bad.exit_code == 1 and ".html or .md" in bad.output and not (tmp_path / "j.pdf").exists()
    nobody = runner.invoke(
        cli, ["report", "nobody", "--data", data, "--out", str(tmp_path / "n.md")]
    )
    assert nobody.exit_code == 1 and "unknown person" in nobody.output


@pytest.mark.neo4j
def test_report_cli_on_neo4j_matches_the_folder(neo4j_env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(jiang_case_path())]).exit_code == 0
    out = tmp_path / "neo.md"
    done = runner.invoke(cli, ["report", "jiang", "--out", str(out), "--lang", "zh"])
    assert done.exit_code == 0, done.output
    local = tmp_path / "local.md"
    args = [
        "report",
        "jiang",
        "--out",
        str(local),
        "--lang",
        "zh",
        "--data",
        str(jiang_case_path()),
    ]
    assert runner.invoke(cli, args).exit_code == 0
    assert out.read_text(encoding="utf-8") == local.read_text(encoding="utf-8")


# --- headless Chromium ------------------------------------------------------------


def _fonts_for(lang: str) -> list[str]:
    done = subprocess.run(["fc-list", f":lang={lang}", "family"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("lang", LANGS)
def test_the_jiang_report_opens_in_chromium_and_prints_on_a4(tmp_path, lang):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    if lang == "zh":
        assert _fonts_for("zh-cn"), "no Chinese font: apt-get install fonts-noto-cjk"
    html = tmp_path / f"jiang-{lang}.html"
    html.write_text(report(_jiang_memory(), "jiang", lang=lang), encoding="utf-8")
    png, pdf = tmp_path / "shot.png", tmp_path / "print.pdf"
    chromium_snapshot(html, png=png, pdf=pdf)
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (1240, 1754)
    doc = pdf.read_bytes()
    boxes = {
        tuple(round(float(v)) for v in m.split())
        for m in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", doc)
    }
    assert boxes == {(0, 0, 595, 842)}  # A4 in points, every page
    assert len(re.findall(rb"/Type\s*/Page\b", doc)) >= 2
    if lang == "zh" and shutil.which("pdffonts"):
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
        assert "CJK" in fonts


def test_the_report_on_a_150_place_copy_chain_takes_seconds(tmp_path):
    """A listing copied 150 times along as many platforms that share in a line: the
    remedy laid every sharing agreement once per place of each entry's copy chain (the
    report's 150 entries: 150 cubed edges; 80 places took 30 s and 850 MB, 150 minutes
    and gigabytes); now once per entry, and the report costs about its own length."""
    folder = copy_chain_case(150).write(tmp_path / "chain")
    _, out = within(
        90,
        """
        import sys
        from spillover.connect import open_folder
        from spillover.render.report import report
        md = report(open_folder(sys.argv[1]), "x", fmt="md")
        print(md.count("### Entry E"), "clears 150 of 150 listings" in md)
        """,
        str(folder),
    )
    assert out.split() == ["150", "True"]
