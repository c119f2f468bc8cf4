"""The dispute report's drawing of the chains: a legend, platforms in columns by their kind,
labels that do not overlap in the rendered figure (headless Chromium), and a CJK font for
Chinese names (no missing-glyph warning)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import warnings
from pathlib import Path

import pytest

from scenario import Scenario
from spillover import open_folder
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.render.i18n import LANGS, UI
from spillover.render.report import CHROMIUM, build_context
from spillover.text.safe import xml_text
from test_remedy import jiang_scenario

LENDERS = ("quickcash", "yidai", "xiaoyu", "huaqian", "anxin", "jiedai", "moneytree", "lanhai")
BANKS = ("qiantang_bank", "westlake_bank", "zhemin_bank")


def _label_centres(svg: str) -> dict[str, float]:
    """The x of each node label's centre (its white box), by the label's id."""
    out = {}
    for gid, body in re.findall(r'<g id="(label-[^"]+)">(.*?)</g>', svg, re.S):
        xs = [float(x) for x in re.findall(r"([-\d.]+) [-\d.]+ *\n", body)]
        out[gid] = (min(xs) + max(xs)) / 2
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_the_drawing_has_a_legend_of_the_kinds_it_shows(lang):
    svg = str(build_context(open_folder(jiang_case_path()), "jiang", lang=lang)["svg"])
    assert '<g id="legend">' in svg
    legend = svg.split('<g id="legend">', 1)[1]
    for key in ("person", "phone", "loan", "online_lender", "data_broker", "bank", "entry"):
        assert f">{UI[f'legend_{key}'][lang]}</text>" in legend, key
    # no kind the drawing does not show
    for key in ("other", "record"):
        assert f">{UI[f'legend_{key}'][lang]}</text>" not in legend, key


def test_platforms_stand_in_columns_by_their_kind(graph):
    """Lenders in one column, the data broker in the next, banks after it, entries last;
    Lanhai Microcredit (a lender, reached through Xu Yan's second loan, so one tie further
    than the other lenders) stands with the lenders, not among the banks."""
    svg = str(build_context(graph(jiang_scenario()), "jiang")["svg"])
    x = _label_centres(svg)
    lenders = {round(x[f"label-platform_{p}"], 1) for p in LENDERS}
    banks = {round(x[f"label-platform_{p}"], 1) for p in BANKS}
    assert len(lenders) == 1 and len(banks) == 1
    (lender,), (bank,) = lenders, banks
    broker = x["label-platform_tianyan"]
    entries = {round(v, 1) for k, v in x.items() if k.startswith("label-entry_")}
    assert lender < broker < bank < min(entries) and len(entries) == 1
    # the ties stand before the platforms: the subject first
    ties = [v for k, v in x.items() if k.startswith(("label-person_", "label-loan_"))]
    assert x["label-person_jiang"] == min(x.values()) and max(ties) < lender


def _rendered_boxes(svg: str, tmp_path: Path) -> list[dict]:
    """Every text artist of the SVG (each node label, each legend label) as Chromium lays
    it out (the union of the boxes of its lines, in CSS pixels), and every marker (each
    node's circle, each legend symbol; ``id`` "marker")."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the README's list)")
    page = tmp_path / "drawing.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        f'<body style="margin:0;width:1400px">{svg}<pre id="out"></pre><script>'
        "const out = [];"
        "for (const g of document.querySelectorAll('svg g')) {"
        "  const lines = [...g.children].filter(c => c.tagName === 'text');"
        "  if (!lines.length) continue;"
        "  const r = lines.map(t => t.getBoundingClientRect());"
        "  out.push({id: g.id, text: lines.map(t => t.textContent).join(' '),"
        "    x0: Math.min(...r.map(b => b.left)), x1: Math.max(...r.map(b => b.right)),"
        "    y0: Math.min(...r.map(b => b.top)), y1: Math.max(...r.map(b => b.bottom))});"
        "}"
        "for (const u of document.querySelectorAll('svg use')) {"
        "  const b = u.getBoundingClientRect();"
        "  out.push({id: 'marker', text: '', x0: b.left, x1: b.right, y0: b.top, y1: b.bottom});"
        "}"
        "document.getElementById('out').textContent = JSON.stringify(out);"
        "</script></body></html>",
        encoding="utf-8",
    )
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    done = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), done.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    """The pairs of a label and another label or a marker whose boxes intersect."""
    return [
        (a["text"], b["text"] or f"a marker at {b['x0']:.0f},{b['y0']:.0f}")
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["id"] != "marker"
        and a["x0"] < b["x1"] - 0.01
        and b["x0"] < a["x1"] - 0.01
        and a["y0"] < b["y1"] - 0.01
        and b["y0"] < a["y1"] - 0.01
    ]


@pytest.mark.parametrize(
    ("folder", "subject", "lang"),
    [
        pytest.param(jiang_case_path(), "jiang", "en", id="jiang-en"),
        pytest.param(jiang_case_path(), "jiang", "zh", id="jiang-zh"),
        pytest.param(jiang_records_path(), "jiang", "en", id="records-en"),
    ],
)
def test_no_label_overlaps_a_label_or_a_node_in_the_rendered_drawing(
    tmp_path, folder, subject, lang
):
    backend = open_folder(folder)
    svg = str(build_context(backend, subject, lang=lang)["svg"])
    boxes = sorted(_rendered_boxes(svg, tmp_path), key=lambda b: b["id"] == "marker")
    texts = " ".join(b["text"] for b in boxes)
    assert sum(b["id"] == "marker" for b in boxes) > 30  # the nodes are drawn
    # every label is there: the subject, the phone, a loan, a bank, an entry, the legend
    for label in ("Jiang", "+86 139 5711 2345", "XY-AX-1", "West Lake Commercial Bank", "E-WL-J"):
        assert label in texts
    assert _overlaps(boxes) == []
    assert UI["legend_bank"][lang] in texts  # the legend's labels are among those checked


def chinese_case() -> Scenario:
    """Chinese names everywhere the drawing writes one: people and platforms."""
    s = Scenario()
    s.person("jiang", name="蒋先生（面包店）")
    s.person("xu", name="徐燕")
    s.platform("anxin", name="安信金融")
    s.platform("tianyan", "data_broker", name="天眼大数据")
    s.platform("bank", "bank", name="西湖商业银行")
    phone = s.phone("jiang", "+8613957112345", verified=True)
    s.phone("xu", "+8615000000001", verified=False)
    s.loan(
        "L1",
        "anxin",
        "xu",
        "2023-01-10",
        "defaulted",
        status_at="2023-03-01",
        applicant_phone="+8615000000001",
    )
    s.link("L1", phone, "emergency_contact")
    s.share("anxin", "tianyan", "2022-01-01")
    s.share("tianyan", "bank", "2022-01-01")
    s.entry("E-B-J", "bank", "jiang", "2023-06-01")
    return s


@pytest.mark.parametrize("lang", LANGS)
def test_chinese_names_draw_without_a_missing_glyph_warning(tmp_path, lang):
    fonts = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True)
    if "Noto Sans CJK" not in fonts.stdout:
        pytest.fail("no Noto Sans CJK font: apt-get install fonts-noto-cjk (the README's list)")
    folder = chinese_case().write(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning from matplotlib
        svg = str(build_context(open_folder(folder), "jiang", lang=lang)["svg"])
    assert "蒋先生" in svg and "天眼大数据" in svg and "西湖商业银行" in svg
    # the text names a CJK font first in the Chinese report (Noto Sans CJK, from the README's
    # fonts-noto-cjk), as a fallback after DejaVu Sans in the English one
    families = set(re.findall(r"font-family: ([^;\"]+)", svg))
    cjk = "'Noto Sans CJK SC'"
    assert families == {f"{cjk}, 'DejaVu Sans'" if lang == "zh" else f"'DejaVu Sans', {cjk}"}


def test_a_cjk_font_installed_after_matplotlib_listed_the_fonts_is_found(monkeypatch):
    """matplotlib lists the system's fonts once, in a cache: a machine that ran it before
    ``apt-get install fonts-noto-cjk`` has a list without the CJK fonts; the drawing finds
    them anyway."""
    from matplotlib import font_manager

    from spillover.render.report import _fonts

    manager = font_manager.fontManager
    stale = [f for f in manager.ttflist if "CJK" not in f.name]
    monkeypatch.setattr(manager, "ttflist", stale)
    assert _fonts("zh") == ["Noto Sans CJK SC", "DejaVu Sans"]
    assert _fonts("en") == ["DejaVu Sans", "Noto Sans CJK SC"]


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x0b", "\x1b", "\ufffe", "\uffff"], ids=lambda c: f"U+{ord(c):04X}"
)
def test_a_name_xml_cannot_hold_is_drawn_escaped(tmp_path, char):
    """The drawing is SVG (XML 1.0), checked by parsing it: a name from the data holding a
    character XML cannot hold (a C0 control but tab and line feed, U+FFFE, U+FFFF) made
    `spillover report --out FILE.html` fail with a traceback (`ParseError: not well-formed
    (invalid token)`) on every backend. It is drawn with the escape `printable` uses, as the
    GraphML view writes it (spillover.text.safe.xml_text)."""
    s = jiang_scenario()
    (xu,) = [p for p in s.tables["people"] if p["person_id"] == "xu_yan"]
    xu["name"] = f"Xu{char}Yan"
    folder = s.write(tmp_path / "data")
    svg = str(build_context(open_folder(folder), "jiang")["svg"])
    assert html.escape(xml_text(f"Xu{char}Yan"), quote=False) in svg
    assert char not in svg
    from click.testing import CliRunner

    from spillover.cli import cli

    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", "jiang", "--out", str(out), "--data", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Xu" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["Xu $\\frac{ Yan$", "Xu$^$Yan", "Xu $5$ Yan"])
def test_a_name_with_dollar_signs_is_drawn_as_written(tmp_path, name):
    """matplotlib reads text between two `$` as a formula (mathtext): a name such as
    `Xu $\\frac{ Yan$` made `spillover report --out FILE.html` fail with a traceback
    (`ParseSyntaxException`), and `Xu $5$ Yan` was drawn as a formula. Labels are drawn as
    they are written."""
    s = jiang_scenario()
    (xu,) = [p for p in s.tables["people"] if p["person_id"] == "xu_yan"]
    xu["name"] = name
    folder = s.write(tmp_path / "data")
    svg = str(build_context(open_folder(folder), "jiang")["svg"])
    assert f">{html.escape(name, quote=False)}</text>" in svg


@pytest.mark.parametrize("char", ["\ue000", "\U00010000"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_name_no_font_has_a_glyph_for_warns_nothing(tmp_path, char):
    """A name holding a character no installed font draws (a private-use character, a
    Linear B syllable) made matplotlib warn ``Glyph ... missing from font(s)`` on stderr
    while the drawing measured its labels: the SVG keeps its text as text (the browser's
    fonts draw it), so the warning says nothing; none is raised now, and the name is in the
    drawing as written."""
    s = jiang_scenario()
    (xu,) = [p for p in s.tables["people"] if p["person_id"] == "xu_yan"]
    xu["name"] = f"Xu{char}Yan"
    folder = s.write(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = str(build_context(open_folder(folder), "jiang")["svg"])
    assert f"Xu{char}Yan" in svg
