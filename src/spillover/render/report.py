"""The dispute report: every listing on a subject, why, and what to have corrected.

One self-contained file (HTML with inline CSS and an inline SVG drawing, or
Markdown), in English or Chinese, from Jinja2 templates in
``spillover/render/templates/`` with autoescaping on: every value taken from the data is
escaped (HTML: Jinja's autoescape; Markdown: a ``finalize`` that escapes markup and
Markdown punctuation in every value written). ``docs/disputes.md`` explains how
to read it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import textwrap
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from ..data.outputs import check_parent_folder
from ..engines.remedy import (
    APPLICANT_PHONE,
    HOLDER,
    LOAN_LINK,
    Contact,
    Record,
    Remedy,
    SubjectRemedy,
    contact_order,
    subject_remedy,
)
from ..engines.search import Explanation, ExplanationPath, Step
from ..errors import OptionError
from ..facts.graph import GraphBackend
from ..facts.model import APPLICANT, Loan, MatchKey, PlatformKind, SubjectKind, ref, split_ref
from ..files.write import atomic_file
from ..policy import Policy, default_policy
from ..rules import COPY_STEP, MATCH_TEXTS, REASONS, ROLES, Verdict
from ..text.safe import FSI, PDI, isolated, printable, xml_text
from ..text.wording import count, percent, score_text
from ..version import __version__
from .browser import CHROMIUM
from .i18n import (
    LANGS,
    LOAN_STATUS,
    MATCH_HOW_ZH,
    REASONS_ZH,
    RECORD_TEXTS,
    ROLE_TEXTS_ZH,
    STEP_TEXTS_ZH,
    UI,
    VERDICTS,
)
from .text import step_text

if TYPE_CHECKING:  # matplotlib is loaded only when a report is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

__all__ = [
    "CHROMIUM",
    "FORMATS",
    "ReportText",
    "build_context",
    "check_report_out",
    "chromium_snapshot",
    "markdown_escape",
    "render",
    "report",
    "write_report",
]

#: output formats by file suffix
FORMATS = {".html": "html", ".htm": "html", ".md": "md"}
#: the package the templates ship in
_PACKAGE = __name__.rpartition(".")[0]
#: paths listed per entry under "other explanations"
OTHER_PATHS = 8


class ReportText:
    """The words of one language: UI labels, reason texts, step and record sentences."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGS:
            raise OptionError(
                "--lang", f"unknown language {lang!r}; choose one of {', '.join(LANGS)}"
            )
        self.lang = lang

    def __call__(self, key: str, **values: Any) -> str:
        """The label ``key`` in this language, with ``values`` filled in."""
        return UI[key][self.lang].format(**values)

    def count(self, n: int, word: str) -> str:
        """A count for a label's placeholder: the number and its English noun, singular or
        plural (``1 listing``, ``11 listings``); in Chinese the number alone (the label
        holds its measure word)."""
        return count(n, word) if self.lang == "en" else str(n)

    def reason(self, code: str) -> str:
        """The text of reason code ``code``."""
        return REASONS[code] if self.lang == "en" else REASONS_ZH[code]

    def verdict(self, verdict: Verdict) -> str:
        """How a verdict reads."""
        return VERDICTS[verdict.value][self.lang]

    def status(self, status: str) -> str:
        """How a loan status reads."""
        return LOAN_STATUS[status][self.lang]

    def role(self, role: str, own: bool = False) -> str:
        """How a phone's role on a loan reads (``own``: the borrower's own number)."""
        if self.lang == "en":
            r = ROLES[role]
            return r.own_text if own else r.text
        return ROLE_TEXTS_ZH[role][1 if own else 0]

    def match_how(self, matched_by: str) -> str:
        """What a match rests on (``matched_by``)."""
        if self.lang == "en":
            return MATCH_TEXTS[MatchKey(matched_by)]
        return MATCH_HOW_ZH[matched_by]

    def step_template(self, kind_name: str, english: str) -> str:
        """The sentence of a step kind, with the placeholders of the English one."""
        return english if self.lang == "en" else STEP_TEXTS_ZH[kind_name]


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


@dataclass
class _Namer:
    """Names of nodes for the report. With ``isolate`` every name from the data comes
    between isolate marks (:func:`spillover.text.safe.isolated`), which the HTML report
    writes as ``<bdi>`` and the Markdown report drops."""

    names: dict[str, str]
    loans: dict[str, Loan]
    t: ReportText
    isolate: bool = False

    def _name(self, node: str, default: str) -> str:
        name = self.names.get(node, default)
        return isolated(name) if self.isolate else name

    def __call__(self, node: str) -> str:
        kind, ident = split_ref(node)
        if kind == "loan":
            return self.loan(ident)
        if kind == "entry":
            return f"{self.t('entry_word')} {ident}"
        return self._name(node, ident)

    def loan(self, loan_id: str) -> str:
        loan = self.loans.get(loan_id)
        if loan is None:
            return f"{self.t('loan_id')} {loan_id}"
        borrower = self._name(ref("person", loan.borrower_id), loan.borrower_id)
        platform = self._name(ref("platform", loan.platform_id), loan.platform_id)
        return f"{self.t('loan_of', borrower=borrower, platform=platform)} ({loan_id})"

    def platform(self, platform_id: str | None) -> str:
        if platform_id is None:
            return self.t("carrier")
        return self._name(ref("platform", platform_id), platform_id)


def step_sentence(step: Step, path: ExplanationPath, name: _Namer) -> str:
    """One step as a sentence in the report's language (:func:`spillover.render.text.step_text`
    worded by the report's texts)."""
    return step_text(step, path, name, name.t)


def record_sentence(r: Record, name: _Namer) -> str:
    phone = name(ref("phone", r.phone)) if r.phone else "?"
    role = ""
    if r.kind == APPLICANT_PHONE:
        role = name.t.role(APPLICANT)
    elif r.kind == LOAN_LINK and r.role:
        role = name.t.role(r.role)
    return RECORD_TEXTS[r.kind][name.t.lang].format(
        phone=phone,
        role=role,
        loan=name.loan(r.loan_id or ""),
        owner=name(ref("person", r.owner_id or "")),
        since=r.since.isoformat() if r.since else "?",
        entry=r.entry_id,
        copied_from=r.copied_from,
        from_platform=name.platform(r.from_platform),
        to_platform=name.platform(r.to_platform),
        record=name(ref("record", r.record_id or "")),
        person=name(ref("person", r.person_id or "")),
        how=name.t.match_how(r.matched_by or MatchKey.OTHER.value),
    )


# ---------------------------------------------------------------------------
# The drawing
# ---------------------------------------------------------------------------

#: what the drawing shows, in the order of its legend: the kind of a node (a platform's kind
#: from ``platforms.kind``), its fill colour and its legend label (``UI`` key)
_DRAWN: dict[str, tuple[str, str]] = {
    "record": ("#e0c3f0", "legend_record"),
    "person": ("#f2c14e", "legend_person"),
    "phone": ("#8ecae6", "legend_phone"),
    "loan": ("#f4978e", "legend_loan"),
    PlatformKind.ONLINE_LENDER.value: ("#b8e0b5", "legend_online_lender"),
    PlatformKind.OTHER.value: ("#d9d9d9", "legend_other"),
    PlatformKind.DATA_BROKER.value: ("#6fbf73", "legend_data_broker"),
    PlatformKind.BANK.value: ("#7fa7d9", "legend_bank"),
    "entry": ("#d7d7ef", "legend_entry"),
}
#: the drawing's columns after the ties (records, people, phones and loans, by distance from
#: the subject): the platforms by their kind, in the order a listing travels, then the entries
_PLATFORM_COLUMNS = (
    PlatformKind.ONLINE_LENDER,
    PlatformKind.OTHER,
    PlatformKind.DATA_BROKER,
    PlatformKind.BANK,
)
#: CJK-capable fonts, the first one installed is used (Chinese names and the Chinese report)
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
#: sizes in points: label font, node radius, gaps between columns and between rows, margin
_FONT, _RADIUS, _GAP_X, _GAP_Y, _MARGIN = 7.0, 5.0, 26.0, 6.0, 6.0
#: characters per label line (longer labels are wrapped at spaces)
_WRAP = 18


def _chain_graph(explanations: Iterable[Explanation], name: _Namer) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph()
    for e in explanations:
        for path in e.paths:
            for st in path.steps:
                for node in (st.source, st.target):
                    if node not in g:
                        kind, ident = split_ref(node)
                        label = ident if kind in ("loan", "entry") else name(node)
                        g.add_node(node, kind=kind, label=label)
                g.add_edge(st.source, st.target)
    return g


def _fonts(lang: str) -> list[str]:
    """The font families of the drawing: DejaVu Sans (matplotlib's own) and the first CJK
    font installed, the CJK one first in the Chinese report; every glyph of a Chinese name
    has a font either way (matplotlib falls back along the list)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    installed = {f.name for f in manager.ttflist}
    if not installed.intersection(_CJK_FONTS):
        # matplotlib lists the system's fonts once, in a cache: fonts installed after it
        # (apt-get install fonts-noto-cjk after a first run) are not in it; add them
        for path in font_manager.findSystemFonts():
            if re.search(r"(?i)(NotoSans|SourceHanSans)[-_]?(CJK|SC)|wqy-zenhei", path):
                with contextlib.suppress(Exception):  # a font file it cannot read
                    manager.addfont(path)
        installed = {f.name for f in manager.ttflist}
    cjk = [f for f in _CJK_FONTS if f in installed][:1]
    return [*cjk, "DejaVu Sans"] if lang == "zh" else ["DejaVu Sans", *cjk]


def _drawn_kind(g: nx.DiGraph[str], node: str, kinds: Mapping[str, PlatformKind]) -> str:
    kind = str(g.nodes[node]["kind"])
    if kind == "platform":
        return kinds.get(split_ref(node)[1], PlatformKind.OTHER).value
    return kind if kind in _DRAWN else "record"


def _columns(
    g: nx.DiGraph[str], subject_ref: str, kinds: Mapping[str, PlatformKind]
) -> list[list[str]]:
    """The nodes of the drawing by column, each column in drawing order (top first).

    The ties (records, people, phones, loans) stand by their distance from the subject (a
    record matched to the subject before it); then one column per platform kind (lenders,
    other platforms, data brokers, banks: where a platform stands says what it is); then the
    entries. Within a column, nodes are ordered by the mean row of their neighbours in the
    columns before (then after, then before again), which keeps edges from crossing much."""
    ties = [n for n in g if g.nodes[n]["kind"] not in ("platform", "entry")]
    tie_graph = g.subgraph(ties)
    ahead = nx.single_source_shortest_path_length(tie_graph, subject_ref)
    behind = nx.single_source_shortest_path_length(tie_graph.reverse(copy=False), subject_ref)
    far = max(ahead.values(), default=0) + 1
    keys: dict[str, tuple[int, int]] = {}
    for n in g:
        kind = g.nodes[n]["kind"]
        if kind == "entry":
            keys[n] = (2, 0)
        elif kind == "platform":
            keys[n] = (1, _PLATFORM_COLUMNS.index(kinds.get(split_ref(n)[1], PlatformKind.OTHER)))
        else:
            keys[n] = (0, ahead[n] if n in ahead else -behind[n] if n in behind else far)
    columns = [
        sorted((n for n in g if keys[n] == key), key=lambda n: (g.nodes[n]["label"], n))
        for key in sorted(set(keys.values()))
    ]
    row: dict[str, float] = {}

    def place(column: list[str], neighbours: Callable[[str], Iterable[str]]) -> None:
        def centre(n: str) -> float:
            known = [row[m] for m in neighbours(n) if m in row and m not in column]
            return sum(known) / len(known) if known else float("inf")

        column.sort(key=lambda n: (centre(n), g.nodes[n]["label"], n))
        for i, n in enumerate(column):
            row[n] = (i + 0.5) / len(column)

    def both(n: str) -> Iterable[str]:
        return [*g.predecessors(n), *g.successors(n)]

    for column in columns:
        place(column, g.predecessors)
    for column in reversed(columns[:-1]):
        place(column, g.successors)
    for column in columns[1:]:
        place(column, both)
    return columns


#: matplotlib's warning for a character its fonts cannot draw (:func:`drawing_svg`)
_MISSING_GLYPH = r"Glyph \d+ .* missing from font"


def drawing_svg(
    explanations: list[Explanation],
    subject_ref: str,
    name: _Namer,
    backend: GraphBackend | None = None,
) -> str:
    """The chains of every explanation as an SVG drawn by matplotlib: the subject on the
    left, the ties (phones, loans, other people) by distance from it, then the platforms in
    columns by their kind (``platforms.kind`` from ``backend``: lenders, data brokers, banks),
    then the entries; a legend of the kinds under it. Labels are wrapped and the columns and
    rows spaced by the labels' measured size, so that no two labels overlap."""
    import matplotlib

    g = _chain_graph(explanations, name)
    if subject_ref not in g or g.number_of_nodes() < 2:
        return ""
    platforms = [split_ref(n)[1] for n in g if g.nodes[n]["kind"] == "platform"]
    kinds = backend.platform_kinds(platforms) if backend is not None else {}
    columns = _columns(g, subject_ref, kinds)
    drawn = {n: _drawn_kind(g, n, kinds) for n in g}
    labels = _wrapped_labels(g)
    legend = [k for k in _DRAWN if k in drawn.values()]
    params: Any = {
        "svg.fonttype": "none",
        "svg.hashsalt": "spillover",  # the package name before the move into render/: same SVG ids
        "font.family": _fonts(name.t.lang),
        "font.size": _FONT,
        # a label is text from the data: never a formula (matplotlib's mathtext reads
        # what stands between two `$` as one, and refuses a malformed one)
        "text.parse_math": False,
    }
    with matplotlib.rc_context(params), warnings.catch_warnings():
        # a character no installed font has (private use, a rare script): the SVG keeps
        # text as text, drawn by the browser's fonts; matplotlib's measure is one box wide
        warnings.filterwarnings("ignore", _MISSING_GLYPH, UserWarning)
        legend_options: Any = {
            "handles": _legend_handles(legend, name.t),
            "frameon": False,
            "borderaxespad": 0,
        }
        layout = _layout(g, columns, labels, legend_options)
        fig = _figure(layout)
        _draw_edges(fig.axes[0], g, layout.pos)
        _draw_nodes(fig.axes[0], g, layout.pos, drawn, legend, subject_ref)
        _draw_labels(fig.axes[0], g, layout.pos, labels)
        fig.axes[0].legend(
            **legend_options,
            ncol=layout.ncol,
            loc="lower center",
            bbox_to_anchor=(layout.width / 2, _MARGIN),
            bbox_transform=fig.axes[0].transData,
        ).set_gid("legend")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _clean_svg(buffer.getvalue())


def _wrapped_labels(g: nx.DiGraph[str]) -> dict[str, str]:
    """Each node's label, wrapped at spaces into lines of at most ``_WRAP`` characters;
    a character the SVG (XML 1.0) cannot hold written as :func:`xml_text` writes it."""
    return {
        n: "\n".join(
            textwrap.wrap(
                xml_text(str(g.nodes[n]["label"])),
                _WRAP,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
        for n in g
    }


def _legend_handles(legend: list[str], t: ReportText) -> list[Line2D]:
    """One marker per kind drawn, in the legend's order, labelled in the report's language."""
    from matplotlib.lines import Line2D

    return [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=2 * _RADIUS,
            markerfacecolor=_DRAWN[k][0],
            markeredgecolor="#555555",
            markeredgewidth=0.5,
            label=t(_DRAWN[k][1]),
        )
        for k in legend
    ]


@dataclass(frozen=True)
class _Layout:
    """Where the drawing puts things, in points: each node's centre, the figure's size and
    how many columns the legend has."""

    pos: dict[str, tuple[float, float]]
    width: float
    height: float
    ncol: int


def _layout(
    g: nx.DiGraph[str],
    columns: list[list[str]],
    labels: Mapping[str, str],
    legend_options: Mapping[str, Any],
) -> _Layout:
    """Measure every label and the legend (in points: 72 dpi, one pixel is one point) and
    place the columns side by side, each as wide as its widest label, and the rows one
    label-and-node apart, the columns centred on the tallest; the legend under them, in as
    many columns as fit the width."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    probe = Figure(dpi=72)
    canvas: Any = FigureCanvasAgg(probe)  # get_renderer is untyped
    renderer = canvas.get_renderer()
    size = {}
    for n, text in labels.items():
        box = probe.text(0, 0, text, ha="center", linespacing=1.1).get_window_extent(renderer)
        size[n] = (box.width, box.height)
    widths = [max([2 * _RADIUS] + [size[n][0] for n in c]) for c in columns]
    xs = [_MARGIN + widths[0] / 2]
    for left, right in itertools.pairwise(widths):
        xs.append(xs[-1] + left / 2 + _GAP_X + right / 2)
    width = xs[-1] + widths[-1] / 2 + _MARGIN
    ncol = len(legend_options["handles"])
    while True:
        box = probe.legend(**legend_options, ncol=ncol).get_window_extent(renderer)
        if box.width <= width - 2 * _MARGIN or ncol == 1:
            break
        ncol -= 1
    width = max(width, box.width + 2 * _MARGIN)
    pitch = max(size[n][1] for n in g) + 2 * _RADIUS + 2 + _GAP_Y
    tallest = max(len(c) for c in columns)
    height = _MARGIN + box.height + 2 * _GAP_Y + tallest * pitch + _MARGIN
    top = height - _MARGIN
    pos: dict[str, tuple[float, float]] = {}
    for x, column in zip(xs, columns, strict=True):
        first = top - (tallest - len(column)) * pitch / 2
        for i, n in enumerate(column):
            pos[n] = (x, first - (i + 1) * pitch + _GAP_Y / 2 + _RADIUS)
    return _Layout(pos, width, height, ncol)


def _figure(layout: _Layout) -> Figure:
    """An empty figure of the layout's size, one axes over all of it in points, no axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(layout.width / 72, layout.height / 72), dpi=72)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, layout.width)
    ax.set_ylim(0, layout.height)
    ax.set_axis_off()
    return fig


def _draw_edges(ax: Axes, g: nx.DiGraph[str], pos: Mapping[str, tuple[float, float]]) -> None:
    """Every tie as a grey arrow, a wide arc between two nodes of one column."""
    from matplotlib.patches import FancyArrowPatch

    for a, b in sorted(g.edges):
        (xa, ya), (xb, yb) = pos[a], pos[b]
        ax.add_patch(
            FancyArrowPatch(
                (xa, ya),
                (xb, yb),
                arrowstyle="-|>",
                mutation_scale=6,
                shrinkA=_RADIUS + 0.5,
                shrinkB=_RADIUS + 0.5,
                connectionstyle="arc3,rad=0.5" if xa == xb else "arc3,rad=0.06",
                linewidth=0.6,
                color="#777777",
                zorder=1,
            )
        )


def _draw_nodes(
    ax: Axes,
    g: nx.DiGraph[str],
    pos: Mapping[str, tuple[float, float]],
    drawn: Mapping[str, str],
    legend: list[str],
    subject_ref: str,
) -> None:
    """The nodes as discs coloured by kind, one scatter per kind; the subject's rim bold."""
    for kind in legend:
        nodes = [n for n in g if drawn[n] == kind]
        ax.scatter(
            [pos[n][0] for n in nodes],
            [pos[n][1] for n in nodes],
            s=(2 * _RADIUS) ** 2,
            c=_DRAWN[kind][0],
            edgecolors="#555555",
            linewidths=[1.4 if n == subject_ref else 0.5 for n in nodes],
            zorder=2,
        )


def _draw_labels(
    ax: Axes, g: nx.DiGraph[str], pos: Mapping[str, tuple[float, float]], labels: Mapping[str, str]
) -> None:
    """Each node's label above it, on a faint white box, with an SVG id from its node."""
    for n in g:
        x, y = pos[n]
        label = ax.text(
            x,
            y + _RADIUS + 2,
            labels[n],
            ha="center",
            va="bottom",
            linespacing=1.1,
            zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.3},
        )
        label.set_gid("label-" + re.sub(r"[^A-Za-z0-9_.-]", "_", n))


_SVG_START = re.compile(r"<svg\b", re.S)


def _clean_svg(svg: str) -> str:
    """The ``<svg>`` element alone, checked to carry no script and no event handler."""
    start = _SVG_START.search(svg)
    if start is None:
        return ""
    svg = svg[start.start() :]
    root = ET.fromstring(svg)
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1].lower()
        if tag in ("script", "foreignobject") or any(
            a.lower().startswith("on") or "javascript:" in v.lower() for a, v in el.attrib.items()
        ):
            raise ValueError("the drawing holds active content")
    svg = re.sub(r'\swidth="[^"]*"', ' width="100%"', svg, count=1)
    svg = re.sub(r'\sheight="[^"]*"', "", svg, count=1)
    return svg


# ---------------------------------------------------------------------------
# The context the templates render
# ---------------------------------------------------------------------------


def _loans_around(backend: GraphBackend, kind: SubjectKind, subject: str) -> dict[str, Loan]:
    persons, phones = ([subject], []) if kind == SubjectKind.PERSON else ([], [subject])
    facts = backend.neighbourhood(persons, phones)
    loans = {loan.loan_id: loan for loan in facts.own_loans}
    loans.update((use.loan.loan_id, use.loan) for use in facts.uses)
    return loans


def _data_date(explanations: Iterable[Explanation]) -> date | None:
    days: list[date] = []
    for e in explanations:
        days.append(e.entry.listed_at)
        for p in e.paths:
            days.extend(s.at for s in p.steps if s.at is not None)
            if p.origin.status_at:
                days.append(p.origin.status_at)
    return max(days) if days else None


def _yes_no(value: bool | None, t: ReportText) -> str:
    return t("unknown") if value is None else t("yes") if value else t("no")


def _contact_out(c: Contact, name: _Namer) -> dict[str, Any]:
    t = name.t
    if c.how == HOLDER:
        how = t("holder")
    elif c.stage == 0:
        how = t("first_lister")
    else:
        key = "copied_from" if c.how == COPY_STEP.name else "received_from"
        how = t(key, p=name.platform(c.received_from))
    if c.first_day:
        how += t("on_day", d=c.first_day.isoformat())
    return {
        "platform": name.platform(c.platform_id),
        "platform_id": c.platform_id,
        "stage": c.stage,
        "how": how,
        "ask": t("ask_correct")
        if c.records
        else t("ask_nothing")
        if c.stage == 0
        else t("ask_withdraw"),
        "records": [record_sentence(r, name) for r in c.records],
    }


def _merge_contacts(remedies: Iterable[Remedy]) -> list[Contact]:
    best: dict[str, Contact] = {}
    held: dict[str, set[Record]] = {}
    for r in remedies:
        for c in r.contacts:
            held.setdefault(c.platform_id, set()).update(c.records)
            key = (c.stage, c.first_day or date.max)
            cur = best.get(c.platform_id)
            if cur is None or key < (cur.stage, cur.first_day or date.max):
                best[c.platform_id] = c
    out = [
        Contact(
            c.platform_id,
            c.stage,
            c.first_day,
            c.how,
            c.received_from,
            tuple(sorted(held[p], key=Record.sort_key)),
            c.lists_subject,
        )
        for p, c in best.items()
    ]
    out.sort(key=contact_order)
    return out


def _unmarked(text: str) -> str:
    """``text`` without the isolate marks around names (to sort as the names read)."""
    return text.replace(FSI, "").replace(PDI, "")


def _groups(sr: SubjectRemedy, name: _Namer) -> list[dict[str, Any]]:
    """The subject's remedy records grouped by what they say: a phone on one borrower's
    loans, or a record alone; the groups behind the most listings first."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for rr in sr.records:
        r = rr.record
        loan = name.loans.get(r.loan_id or "")
        if r.kind in (APPLICANT_PHONE, LOAN_LINK) and loan is not None:
            key: tuple[str, ...] = ("use", r.phone or "", loan.borrower_id)
        else:
            key = ("one", *map(str, r.sort_key()))
        groups.setdefault(key, []).append(rr)
    out: list[dict[str, Any]] = []
    for key, items in groups.items():
        entries = sorted({e for rr in items for e in rr.entries})
        if key[0] == "use":
            phone = name(ref("phone", key[1]))
            borrower = name(ref("person", key[2]))
            text = (
                f"{phone} on {borrower}'s loans"
                if name.t.lang == "en"
                else f"手机号 {phone} 出现在 {borrower} 的贷款上"
            )
        else:
            text = record_sentence(items[0].record, name)
        out.append(
            {
                "text": text,
                "count": len(items),
                "records": name.t("n_records", n=name.t.count(len(items), "record")),
                "entries": entries,
                "loans": sorted({rr.record.loan_id for rr in items if rr.record.loan_id}),
                "lenders": sorted(
                    {name.platform(rr.record.platform_id) for rr in items}, key=_unmarked
                ),
            }
        )
    out.sort(key=lambda g: (-len(g["entries"]), -g["count"], _unmarked(g["text"])))
    return out


def _step_rows(best: ExplanationPath, name: _Namer) -> list[dict[str, Any]]:
    """The steps of an entry's best chain, one sentence each, with its date and weight."""
    return [
        {
            "text": step_sentence(st, best, name),
            "at": st.at.isoformat() if st.at else "",
            "factor": f"{st.factor:g}",
            "weighs": st.factor != 1.0,
        }
        for st in best.steps
    ]


def _chain_loans(
    best: ExplanationPath, loans: Mapping[str, Loan], name: _Namer
) -> list[dict[str, Any]]:
    """The loans the best chain passes through (those around the subject), once each, in
    the order the chain meets them."""
    t = name.t
    out: list[dict[str, Any]] = []
    for st in best.steps:
        kind, ident = split_ref(st.target)
        if kind == "loan" and ident in loans and ident not in [x["id"] for x in out]:
            loan = loans[ident]
            out.append(
                {
                    "id": loan.loan_id,
                    "borrower": name(ref("person", loan.borrower_id)),
                    "lender": name.platform(loan.platform_id),
                    "applied": loan.applied_at.isoformat(),
                    "status": t.status(loan.status.value),
                    "status_at": loan.status_at.isoformat() if loan.status_at else "",
                    "amount": f"{loan.amount:,.0f}" if loan.amount is not None else "",
                    "sms": _yes_no(loan.phone_verified, t),
                }
            )
    return out


def _other_paths(e: Explanation, name: _Namer) -> list[dict[str, Any]]:
    """The entry's next explanations after the best one (at most ``OTHER_PATHS``)."""
    return [
        {
            "loan": p.origin.loan_id,
            "borrower": name(ref("person", p.origin.borrower_id)),
            "lender": name.platform(p.origin.platform_id),
            "status": name.t.status(p.origin.status.value),
            "responsibility": f"{p.responsibility:g}",
            "hops": p.depth,
        }
        for p in e.paths[1 : 1 + OTHER_PATHS]
    ]


def _entry_remedy(e: Explanation, rem: Remedy, name: _Namer) -> dict[str, Any]:
    """What would clear one entry: its records, whom to contact, or why nothing can."""
    t = name.t
    return {
        "needed": rem.needed,
        "clearable": rem.clearable,
        "lead": t(
            "remedy_lead",
            n=t.count(len(rem.records), "record"),
            p=t.count(rem.paths, "path"),
        ),
        "records": [
            {"text": record_sentence(r, name), "holder": name.platform(r.platform_id)}
            for r in rem.records
        ],
        "contacts": [_contact_out(c, name) for c in rem.contacts],
        "none": t("no_remedy_own")
        if e.verdict == Verdict.OWN_CONDUCT
        else t("no_remedy_unexplained"),
    }


def _entry_section(
    e: Explanation, rem: Remedy, loans: Mapping[str, Loan], name: _Namer
) -> dict[str, Any]:
    """One listing of the report: the entry, its verdict and score, the chain that explains
    it (steps, weights, loans), the other chains, the reason codes and its remedy."""
    t = name.t
    entry = e.entry
    best = e.best
    factors = ""
    if best is not None:
        weighing = [f"{s.factor:g}" for s in best.steps if s.factor != 1.0] or ["1"]
        factors = " × ".join(weighing) + f" = {best.responsibility:g}"
    return {
        "id": entry.entry_id,
        "platform": name.platform(entry.platform_id),
        "listed_at": entry.listed_at.isoformat(),
        "subject": name(entry.subject_ref),
        "subject_kind": t(entry.subject_kind.value),
        "stated_reason": isolated(entry.stated_reason) if entry.stated_reason else "",
        "copied_from": entry.copied_from or "",
        "verdict": t.verdict(e.verdict),
        "verdict_code": e.verdict.value,
        "is_spillover": e.verdict == Verdict.SPILLOVER,
        "contamination": score_text(e.contamination),
        "meaning": t("contamination_means", pct=percent(e.contamination)),
        "steps": _step_rows(best, name) if best is not None else [],
        "factors": factors,
        "contamination_formula": f"1 − {best.responsibility:g} = {e.contamination:g}"
        if best
        else "",
        "loans": _chain_loans(best, loans, name) if best is not None else [],
        "reasons": [{"code": c, "text": t.reason(c)} for c in e.reason_codes],
        "others": _other_paths(e, name),
        "more": max(0, len(e.paths) - 1 - OTHER_PATHS),
        # how many paths there are and how many the report shows (the remedy
        # breaks them all, so it may hold more records than the chain drawn)
        "chain_note": t(
            "chain_note",
            p=t.count(max(e.paths_total, len(e.paths)), "path"),
            o=t.count(max(e.origins_total, len(e.paths)), "origin loan"),
            s=min(len(e.paths), 1 + OTHER_PATHS),
        )
        if best
        else "",
        "remedy": _entry_remedy(e, rem, name),
    }


def _summary(sr: SubjectRemedy, name: _Namer) -> dict[str, Any]:
    """The report's first box: how many listings, where, how many are spillover, and the
    records behind most of them."""
    counts = {v: sum(1 for e in sr.explanations if e.verdict == v) for v in Verdict}
    return {
        "listings": len(sr.explanations),
        "platforms": list(
            dict.fromkeys(name.platform(e.entry.platform_id) for e in sr.explanations)
        ),
        "n_spillover": counts[Verdict.SPILLOVER],
        "n_own": counts[Verdict.OWN_CONDUCT],
        "n_unexplained": counts[Verdict.UNEXPLAINED],
        "groups": _groups(sr, name)[:2],
        "spill_entries": sr.spillover_entries,
        "listings_counted": name.t.count(len(sr.explanations), "listing"),
    }


def _remedy_section(sr: SubjectRemedy, name: _Namer) -> dict[str, Any]:
    """The subject's whole remedy: the records to correct, in order, each marked where it
    clears more listings, and every platform to contact."""
    t = name.t
    return {
        "clearable": sr.clearable,
        "records": [
            {
                "text": record_sentence(rr.record, name),
                "holder": name.platform(rr.record.platform_id),
                "cleared": t(
                    "clears_after",
                    n=rr.cleared_after,
                    m=t.count(sr.spillover_entries, "listing"),
                )
                if rr.cleared_after > (sr.records[i - 1].cleared_after if i else 0)
                else "",
            }
            for i, rr in enumerate(sr.records)
        ],
        "contacts": [_contact_out(c, name) for c in _merge_contacts(sr.remedies)],
    }


def build_context(
    backend: GraphBackend,
    subject: str,
    subject_kind: SubjectKind | str = SubjectKind.PERSON,
    *,
    lang: str = "en",
    policy: Policy | None = None,
    drawing: bool = True,
) -> dict[str, Any]:
    """Everything the templates show, as plain values (strings, numbers, lists, dicts)."""
    t = ReportText(lang)
    policy = policy or default_policy()
    kind = SubjectKind(subject_kind)
    sr = subject_remedy(backend, subject, kind, policy)
    loans = _loans_around(backend, kind, subject)
    name = _Namer(dict(sr.names), loans, t, isolate=True)
    subject_ref = ref(kind.value, subject)
    remedies = {r.entry.entry_id: r for r in sr.remedies}
    entries = [_entry_section(e, remedies[e.entry.entry_id], loans, name) for e in sr.explanations]
    summary = _summary(sr, name)
    day = _data_date(sr.explanations)
    spill = [e for e in sr.explanations if e.verdict == Verdict.SPILLOVER]
    plain = _Namer(name.names, loans, t)  # the drawing's labels: no isolate marks
    svg = (
        drawing_svg(spill or list(sr.explanations), subject_ref, plain, backend) if drawing else ""
    )
    return {
        "lang": lang,
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "t": t,
        "version": __version__,
        "subject": {
            "name": name(subject_ref),
            "title": printable(plain(subject_ref)),  # the page title holds text only
            "ref": subject_ref,
            "kind": t(kind.value),
        },
        "data_date": day.isoformat() if day else t("unknown"),
        "summary": summary,
        "remedy": _remedy_section(sr, name),
        "svg": Markup(svg),
        "entries": entries,
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "digest": policy.digest,
            "label": policy.label,
        },
    }


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def markdown_escape(value: Any) -> str:
    """A value as Markdown text: HTML markup as entities, line breaks as spaces, other
    control and bidi characters escaped (:func:`spillover.text.safe.printable`; the
    isolate marks around names dropped), Markdown punctuation escaped."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return str(value)
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\r", " ").replace("\n", " ")
    text = printable(text.replace(FSI, "").replace(PDI, ""))
    return _MD_SPECIAL.sub(r"\\\1", text)


def html_value(value: Any) -> Markup:
    """A value as HTML: escaped, and every name between isolate marks in ``<bdi>``."""
    if isinstance(value, Markup):
        return value
    text = escape("" if value is None else value)
    return Markup(str(text).replace(FSI, "<bdi>").replace(PDI, "</bdi>"))


def _joined(values: Iterable[Any], sep: str = ", ") -> str:
    """Values joined as plain text (escaped, names isolated, by :func:`html_value` after)."""
    return sep.join(str(v) for v in values)


def _environment(fmt: str) -> Environment:
    if fmt == "html":
        finalize_html: Callable[[Any], Any] = html_value
        env = Environment(
            loader=PackageLoader(_PACKAGE, "templates"),
            autoescape=True,
            finalize=finalize_html,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["joined"] = _joined
        return env
    finalize: Callable[[Any], Any] = markdown_escape
    return Environment(
        loader=PackageLoader(_PACKAGE, "templates"),
        autoescape=False,
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(context: dict[str, Any], fmt: str = "html") -> str:
    """The report as HTML (``fmt="html"``) or Markdown (``"md"``)."""
    if fmt not in ("html", "md"):
        raise OptionError("--out", f"unknown report format {fmt!r}: write .html or .md")
    return _environment(fmt).get_template(f"report.{fmt}.j2").render(**context)


def report(
    backend: GraphBackend,
    subject: str,
    subject_kind: SubjectKind | str = SubjectKind.PERSON,
    *,
    lang: str = "en",
    fmt: str = "html",
    policy: Policy | None = None,
) -> str:
    """The dispute report on a person or a phone, as one HTML or Markdown document."""
    ctx = build_context(
        backend, subject, subject_kind, lang=lang, policy=policy, drawing=fmt == "html"
    )
    return render(ctx, fmt)


def check_report_out(out: str | Path) -> tuple[Path, str]:
    """Refuse, before the data is read, where :func:`write_report` could not write a
    report (:class:`~spillover.errors.OptionError`, naming ``--out``): a name that ends
    in neither ``.html`` nor ``.md``, a folder, or a file whose folder does not exist (a
    report's name is never one of a data folder's tables). ``out`` as a path, and the
    report's format.

    >>> check_report_out("jiang.md")
    (PosixPath('jiang.md'), 'md')
    >>> try:
    ...     check_report_out("jiang.txt")
    ... except OptionError as refused:
    ...     print(refused.reason)
    jiang.txt: the report is written as .html or .md
    """
    path = Path(out)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OptionError("--out", f"{path.name}: the report is written as .html or .md")
    if path.is_dir():
        raise OptionError("--out", f"{path} is a directory; name a file (.html or .md)")
    check_parent_folder(path)
    return path, fmt


def write_report(
    backend: GraphBackend,
    subject: str,
    out: str | Path,
    subject_kind: SubjectKind | str = SubjectKind.PERSON,
    *,
    lang: str = "en",
    policy: Policy | None = None,
) -> Path:
    """Write the report to ``out`` (``.html`` or ``.md``; the file appears only when
    complete; refused as :func:`check_report_out` says)."""
    out, fmt = check_report_out(out)
    text = report(backend, subject, subject_kind, lang=lang, fmt=fmt, policy=policy)
    with atomic_file(out, newline="\n") as handle:
        handle.write(text)
    return out


def chromium_snapshot(
    html: str | Path,
    *,
    png: str | Path | None = None,
    pdf: str | Path | None = None,
    chromium: str = CHROMIUM,
    window: tuple[int, int] = (1240, 1754),
    timeout: float = 180,
) -> None:
    """Open a report in headless Chromium and write a screenshot and/or an A4 PDF of it
    (what ``scripts/report-screenshots`` and the tests do)."""
    import subprocess

    url = Path(html).resolve().as_uri()
    base = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    runs = []
    if png is not None:
        runs.append(
            [f"--screenshot={Path(png).resolve()}", f"--window-size={window[0]},{window[1]}"]
        )
    if pdf is not None:
        runs.append([f"--print-to-pdf={Path(pdf).resolve()}", "--no-pdf-header-footer"])
    for extra in runs:
        subprocess.run([*base, *extra, url], check=True, capture_output=True, timeout=timeout)
