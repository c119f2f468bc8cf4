"""The exploration view (spillover neighborhood): the same ego network on every backend,
capped with a note, GraphML that parses back, and HTML that loads offline in Chromium."""

from __future__ import annotations

import csv
import importlib
import json
import re
import shutil
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from policy_space import policies
from scaling import reassigned_case
from scenario import SynthPopulation, random_scenario
from spillover.backends.arrays import ArrayBackend
from spillover.backends.memory import MemoryBackend
from spillover.cli import cli
from spillover.data.exact import load_folder
from spillover.data.fast import read_columns
from spillover.engines.search import explain
from spillover.errors import NotFoundError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.policy import default_policy
from spillover.render.browser import canvas_drawn, open_page
from spillover.render.neighborhood import (
    KIND_COLOURS,
    VERDICT_COLOURS,
    Neighborhood,
    neighborhood,
    to_html,
    to_json,
    write_view,
)
from spillover.rules import IGNORES_DATES, NO_PATH, Verdict
from spillover.text.safe import printable, xml_text
from test_audit_pass import _jiang
from test_records import Folder

#: Debian's chromium (CI installs it with apt); the HTML test needs it and never skips
#: the canvas neo4j-viz draws the graph on
NVL_CANVAS = 'canvas[data-testid="nvl-c2d-canvas"]'
#: views of jiang_case written before the view showed platform records (README.md there)
GOLDEN = Path(__file__).parent / "golden" / "neighborhood"


def _sets(view: Neighborhood) -> tuple[set, set]:
    nodes = {(n.id, n.kind, n.label, n.hop, tuple(sorted(n.attrs.items()))) for n in view.nodes}
    edges = {(e.source, e.target, e.rel, tuple(sorted(e.attrs.items()))) for e in view.edges}
    return nodes, edges


@pytest.fixture(scope="module")
def jiang_view() -> Neighborhood:
    return neighborhood(MemoryBackend(load_folder(jiang_case_path())), "jiang", hops=3)


def test_jiang_view_shows_the_spread(jiang_view):
    ids = {n.id for n in jiang_view.nodes}
    # Jiang's phone, Xu Yan's loans that named it, Xu Yan, and Jiang's entries
    assert {"person:jiang", "phone:+8613957112345", "loan:XY-QC-1", "person:xu_yan"} <= ids
    assert "entry:E-WL-J" in ids
    wl = next(n for n in jiang_view.nodes if n.id == "entry:E-WL-J")
    assert wl.attrs["verdict"] == Verdict.SPILLOVER.value and wl.attrs["contamination"] == 0.95
    use = next(
        e for e in jiang_view.edges if e.source == "loan:XY-QC-1" and e.target.startswith("phone:")
    )
    assert use.attrs == {"role": "applicant", "applied_at": "2023-03-02", "sms_verified": False}
    owns = next(e for e in jiang_view.edges if e.rel == "OWNS" and e.source == "person:jiang")
    assert owns.attrs["since"] == "2012-03-01" and owns.attrs["verified"] is True
    assert jiang_view.cut_at_hop is None and "nothing left out" in jiang_view.note


def test_same_view_of_the_jiang_case_on_every_backend(graph, tmp_path):
    reference = MemoryBackend(load_folder(_jiang().write(tmp_path / "ref")))
    backend = graph(_jiang())
    for subject, kind, hops in (("jiang", "person", 3), ("+8613957112345", "phone", 2)):
        want = neighborhood(reference, subject, kind, hops=hops)
        assert _sets(neighborhood(backend, subject, kind, hops=hops)) == _sets(want)
        assert {"person:jiang", "person:xu_yan"} <= {n.id for n in want.nodes}


@pytest.mark.parametrize("seed", [3, 11])
def test_same_view_of_a_synthetic_population_on_every_backend(graph, tmp_path, seed):
    scenario = random_scenario(seed, people=15, loans=45, entries=20)
    reference_backend = MemoryBackend(load_folder(scenario.write(tmp_path / "ref")))
    backend = graph(scenario)
    people = sorted(reference_backend.data.people)
    busiest = max(people, key=lambda p: len(reference_backend.expand([p], [], _max()).uses))
    for hops, cap in ((2, 500), (3, 25)):
        want = neighborhood(reference_backend, busiest, hops=hops, max_nodes=cap)
        assert _sets(neighborhood(backend, busiest, hops=hops, max_nodes=cap)) == _sets(want)
    phone = sorted(reference_backend.data.phone_periods)[0]
    want = neighborhood(reference_backend, phone, "phone", hops=3)
    assert _sets(neighborhood(backend, phone, "phone", hops=3)) == _sets(want)


def test_same_view_of_a_spillover_synth_population_on_every_backend(graph, tmp_path):
    population = SynthPopulation(300, seed=4)
    reference = MemoryBackend(load_folder(population.write(tmp_path / "ref")))
    backend = graph(population)
    # the phone named on the most loans: a hub, cut by the cap
    hub = max(
        sorted(reference.data.phone_periods),
        key=lambda p: len(reference.expand([], [p], _max()).uses),
    )
    want = neighborhood(reference, hub, "phone", hops=3, max_nodes=40)
    assert want.cut_at_hop is not None and "capped at 40 nodes" in want.note
    assert _sets(neighborhood(backend, hub, "phone", hops=3, max_nodes=40)) == _sets(want)
    person = sorted(reference.data.people)[7]
    want = neighborhood(reference, person, hops=3)
    assert _sets(neighborhood(backend, person, hops=3)) == _sets(want)


def _max():
    from datetime import date

    return date.max


def test_the_cap_leaves_nodes_out_and_says_so(jiang_view):
    backend = MemoryBackend(load_folder(jiang_case_path()))
    small = neighborhood(backend, "jiang", hops=3, max_nodes=12)
    assert len(small.nodes) == 12
    assert small.cut_at_hop == 1 and sum(small.omitted.values()) > 0
    assert "capped at 12 nodes: left out" in small.note
    assert {n.id for n in small.nodes} < {n.id for n in jiang_view.nodes}
    kept = {n.id for n in small.nodes}
    assert all(e.source in kept and e.target in kept for e in small.edges)
    out = to_json(small)
    assert out["complete"] is False and out["omitted"] == dict(small.omitted)
    # exactly full after a layer: the next layer is counted as left out
    exact = neighborhood(backend, "jiang", hops=3, max_nodes=9)
    assert len(exact.nodes) == 9 and exact.cut_at_hop == 1 and exact.omitted
    # the note is on the page, the subject's label in it isolated (a name from the data)
    assert small.note.replace(small.label, f"<bdi>{small.label}</bdi>") in to_html(small)


def test_graphml_parses_back_with_networkx(tmp_path, jiang_view):
    path = write_view(jiang_view, tmp_path / "jiang.graphml", "graphml")
    g = nx.read_graphml(path, force_multigraph=True)
    assert g.number_of_nodes() == len(jiang_view.nodes)
    assert g.number_of_edges() == len(jiang_view.edges)
    assert g.nodes["person:jiang"]["label"] == "Jiang (bakery owner)"
    assert g.nodes["entry:E-WL-J"]["colour"] == VERDICT_COLOURS[Verdict.SPILLOVER]
    assert g.nodes["phone:+8613957112345"]["colour"] == KIND_COLOURS["phone"]
    assert "jiang 2012-03-01..now (verified)" in g.nodes["phone:+8613957112345"]["owner_periods"]
    assert g.graph["note"] == jiang_view.note


@pytest.mark.parametrize("code", range(0x20), ids=lambda c: f"U+{c:04X}")
def test_graphml_parses_back_when_a_name_holds_a_c0_control(tmp_path, code):
    """XML 1.0 cannot hold most C0 controls: a name from the data with one is written with
    the escape `printable` uses (Xu\\x01Yan); tab and line feed as they are."""
    folder = tmp_path / "data"
    shutil.copytree(jiang_case_path(), folder)
    name = f"Xu{chr(code)}Yan"
    with (folder / "people.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        if row[0] == "xu_yan":
            row[1] = name
    with (folder / "people.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    data = load_folder(folder)
    assert data.people["xu_yan"].name == name  # the loader takes it
    view = neighborhood(MemoryBackend(data), "jiang", hops=3)
    g = nx.read_graphml(write_view(view, tmp_path / "v.graphml", "graphml"), force_multigraph=True)
    assert g.number_of_nodes() == len(view.nodes) and g.number_of_edges() == len(view.edges)
    label = g.nodes["person:xu_yan"]["label"]
    assert label == (name if chr(code) in "\t\n" else printable(name)) == xml_text(name)
    assert label.startswith("Xu") and label.endswith("Yan")


def test_json_output(tmp_path, jiang_view):
    data = json.loads(write_view(jiang_view, tmp_path / "v.json", "json").read_text())
    assert data["subject"] == "person:jiang" and data["complete"] is True
    assert len(data["nodes"]) == len(jiang_view.nodes)
    assert {e["rel"] for e in data["edges"]} >= {"OWNS", "BORROWED", "APPLIED_WITH", "LINKS"}


def test_html_loads_offline_in_chromium_and_shows_the_subject(tmp_path, jiang_view):
    path = write_view(jiang_view, tmp_path / "jiang.html", "html")
    html = path.read_text(encoding="utf-8")
    # one file: nothing is loaded from elsewhere (and the browser has no network)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    # read once the graph component has drawn into its canvas and the layout is at rest
    page = open_page(path, ready=canvas_drawn(NVL_CANVAS), window=(1200, 800))
    assert '<strong id="spillover-subject"><bdi>Jiang (bakery owner)</bdi></strong>' in page.dom
    assert "<title>spillover: Jiang (bakery owner) (3 hop(s))</title>" in page.dom
    assert not page.errors, page.errors
    assert not [line for line in page.console if line.startswith("error")], page.console
    # a drawn graph: the header over an empty canvas compresses to under 30 kB, the Jiang
    # view at rest to about 145 kB
    (tmp_path / "shot.png").write_bytes(page.png)
    assert len(page.png) > 80_000


def test_cli_writes_each_format(tmp_path):
    runner = CliRunner()
    for fmt in ("html", "graphml", "json"):
        out = tmp_path / f"v.{fmt}"
        result = runner.invoke(
            cli,
            [
                "neighborhood",
                "+86 139 5711 2345",
                "--subject-kind",
                "phone",
                "--hops",
                "2",
                "--max-nodes",
                "15",
                "--format",
                fmt,
                "--out",
                str(out),
                "--data",
                str(jiang_case_path()),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "capped at 15 nodes" in result.output and out.exists()


def test_cli_unknown_subject(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "neighborhood",
            "nobody",
            "--out",
            str(tmp_path / "x.json"),
            "--format",
            "json",
            "--data",
            str(jiang_case_path()),
        ],
    )
    assert result.exit_code == 1 and "unknown person 'nobody'" in result.output
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(NotFoundError):
        neighborhood(MemoryBackend(load_folder(jiang_case_path())), "+8613000000000", "phone")


# -- platform records ------------------------------------------------------------------


def _html_data(view: Neighborhood) -> str:
    """What the HTML page says of ``view``: its title, its header (note and legend) and the
    data block neo4j-viz draws, one per line (tests/golden/neighborhood/README.md)."""
    html = to_html(view)
    data = re.search(
        r'<script type="application/json" id="neo4j-viz-data">(.*?)</script>', html, re.S
    )
    header = re.search(r"<header.*?</header>", html, re.S)
    title = re.search(r"<title>.*?</title>", html, re.S)
    assert data and header and title
    return f"{title[0]}\n{header[0]}\n{data[1]}\n"


def test_a_folder_without_records_gives_the_same_views_as_before(graph, tmp_path):
    """jiang_case has no records table: its views are byte for byte those written before
    the view showed records (JSON, GraphML, and the HTML's note, legend and data), on
    every backend."""
    backend = graph(Folder(jiang_case_path()))
    for name, subject, kind, hops, cap in (
        ("jiang-3", "jiang", "person", 3, 500),
        ("phone-2-cap15", "+8613957112345", "phone", 2, 15),
    ):
        view = neighborhood(backend, subject, kind, hops=hops, max_nodes=cap)
        golden = GOLDEN / f"jiang_case-{name}"
        for fmt in ("json", "graphml"):
            written = write_view(view, tmp_path / f"{name}.{fmt}", fmt).read_bytes()
            assert written == golden.with_suffix(f".{fmt}").read_bytes(), (name, fmt)
        assert _html_data(view) == golden.with_suffix(".htmldata").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def records_view() -> Neighborhood:
    return neighborhood(MemoryBackend(load_folder(jiang_records_path())), "jiang", hops=3)


def _node(view: Neighborhood, node: str) -> dict:
    return next(n for n in to_json(view)["nodes"] if n["id"] == node)


def _edges(view: Neighborhood, node: str) -> list[dict]:
    return [e for e in to_json(view)["edges"] if node in (e["source"], e["target"])]


def test_a_persons_view_shows_the_records_matched_to_them_and_their_entries(graph):
    """jiang_records: Tianyan's record TY-R-XU is matched to Jiang by the phone alone, and
    the banks' listings of that record (E-QT-J, E-ZM-J) and Tianyan's own (E-TY-R) hang on
    it; the same JSON on every backend."""
    view = neighborhood(graph(Folder(jiang_records_path())), "jiang", hops=3)
    ids = {n.id for n in view.nodes}
    assert {"entry:E-QT-J", "entry:E-ZM-J", "entry:E-TY-R"} <= ids
    assert {"record:TY-R-XU", "record:QT-R-J", "record:QC-R-XU"} <= ids
    assert _node(view, "record:TY-R-XU") == {
        "id": "record:TY-R-XU",
        "kind": "record",
        "label": "Xu Yan (record TY-R-XU)",
        "hop": 0,  # the hop of the person it hangs on
        "record_id": "TY-R-XU",
        "platform_id": "tianyan",
        "name": "Xu Yan",
    }
    assert _edges(view, "record:TY-R-XU") == [
        {
            "source": "entry:E-QT-J",
            "target": "record:TY-R-XU",
            "rel": "LISTS",
            "listed_at": "2024-03-05",
        },
        {
            "source": "entry:E-TY-R",
            "target": "record:TY-R-XU",
            "rel": "LISTS",
            "listed_at": "2023-10-12",
        },
        {
            "source": "entry:E-ZM-J",
            "target": "record:TY-R-XU",
            "rel": "LISTS",
            "listed_at": "2024-03-20",
        },
        {
            "source": "record:TY-R-XU",
            "target": "person:jiang",
            "rel": "MATCHED_TO",
            "matched_by": "phone_only",
            "match_probability": 0.62,
            "matched_with": "QT-R-J",
        },
        {"source": "record:TY-R-XU", "target": "platform:tianyan", "rel": "HELD_BY"},
    ]
    qt = _node(view, "entry:E-QT-J")
    assert qt["hop"] == 0 and qt["subject"] == "record:TY-R-XU"
    assert qt["verdict"] == "spillover" and qt["contamination"] == pytest.approx(0.9975)
    assert {
        "source": "entry:E-ZM-J",
        "target": "platform:zhemin_bank",
        "rel": "ON",
        "listed_at": "2024-03-20",
    } in _edges(view, "entry:E-ZM-J")
    # a record the data names (records.person_id): matched_by known, on Xu Yan at hop 3
    qc = [e for e in _edges(view, "record:QC-R-XU") if e["rel"] == "MATCHED_TO"]
    assert qc == [
        {
            "source": "record:QC-R-XU",
            "target": "person:xu_yan",
            "rel": "MATCHED_TO",
            "matched_by": "known",
            "match_probability": 1.0,
        }
    ]
    assert _node(view, "record:QC-R-XU")["hop"] == _node(view, "person:xu_yan")["hop"] == 3
    reference = neighborhood(MemoryBackend(load_folder(jiang_records_path())), "jiang", hops=3)
    assert json.dumps(to_json(view)) == json.dumps(to_json(reference))
    phone = neighborhood(graph(Folder(jiang_records_path())), "+8613957112345", "phone", hops=1)
    assert _node(phone, "record:TY-R-XU")["hop"] == 1


def test_the_cap_counts_records(records_view):
    """Records count toward max_nodes, are taken after the person's own entries (each
    followed by its platform and the entries listing it), and are left out by kind."""
    backend = MemoryBackend(load_folder(jiang_records_path()))
    kept = [n.id for n in records_view.nodes][:11]
    assert kept == [
        "person:jiang",
        "entry:E-WL-J",
        "platform:westlake_bank",
        "record:QT-R-J",
        "platform:qiantang_bank",
        "record:TY-R-XU",
        "platform:tianyan",
        "entry:E-QT-J",
        "entry:E-TY-R",
        "entry:E-ZM-J",
        "platform:zhemin_bank",
    ]
    small = neighborhood(backend, "jiang", hops=3, max_nodes=4)
    assert [n.id for n in small.nodes] == kept[:4]
    assert small.cut_at_hop == 0
    assert dict(small.omitted) == {"platform": 3, "entry": 3, "record": 1}
    assert "left out 3 platforms, 3 entries, 1 record found at hop 0" in small.note
    assert [(e.source, e.rel, e.target) for e in small.edges] == [
        ("entry:E-WL-J", "LISTS", "person:jiang"),
        ("entry:E-WL-J", "ON", "platform:westlake_bank"),
        ("record:QT-R-J", "MATCHED_TO", "person:jiang"),
    ]
    assert to_json(small)["omitted"] == {"platform": 3, "entry": 3, "record": 1}


def test_graphml_and_html_carry_the_records(tmp_path, records_view):
    g = nx.read_graphml(
        write_view(records_view, tmp_path / "r.graphml", "graphml"), force_multigraph=True
    )
    assert g.number_of_nodes() == len(records_view.nodes)
    assert g.number_of_edges() == len(records_view.edges)
    record = g.nodes["record:TY-R-XU"]
    assert record["kind"] == "record" and record["colour"] == KIND_COLOURS["record"]
    assert record["label"] == "Xu Yan (record TY-R-XU)" and record["platform_id"] == "tianyan"
    (match,) = g.get_edge_data("record:TY-R-XU", "person:jiang").values()
    assert match["rel"] == "MATCHED_TO" and match["label"] == "MATCHED_TO phone_only"
    assert match["matched_by"] == "phone_only" and match["match_probability"] == 0.62
    html = to_html(records_view)
    assert f'<span style="color:{KIND_COLOURS["record"]}">&#9679;</span> record' in html
    # the legend names records only in a view that holds one
    jiang_case = neighborhood(MemoryBackend(load_folder(jiang_case_path())), "jiang", hops=3)
    assert "&#9679;</span> record" not in to_html(jiang_case)


def test_html_of_the_records_view_loads_in_chromium(tmp_path, records_view):
    path = write_view(records_view, tmp_path / "records.html", "html")
    page = open_page(path, ready=canvas_drawn(NVL_CANVAS), window=(1200, 800))
    assert not page.errors, page.errors
    assert not [line for line in page.console if line.startswith("error")], page.console
    assert "&#9679;</span> record" in page.dom or "●</span> record" in page.dom
    assert len(page.png) > 80_000


# -- the entries' scores -------------------------------------------------------------------


def _spy_explain(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the entries the view explains (its calls to ``explain_entries``)."""
    module = importlib.import_module("spillover.render.neighborhood")
    real = module.explain_entries
    called: list[str] = []

    def spy(backend, entries, *args, **kwargs):
        called.extend(e.entry_id for e in entries)
        return real(backend, entries, *args, **kwargs)

    monkeypatch.setattr(module, "explain_entries", spy)
    return called


@pytest.mark.parametrize("kind", ["arrays", "memory"])
def test_a_hub_view_on_an_embedded_backend_scores_its_entries_in_one_pass(
    tmp_path, monkeypatch, kind
):
    """The view explained each entry it shows one by one, each a search of the whole hub
    (a number reassigned 4,000 times: 249 entries, 11 s; 16,000 times: over a minute);
    on an embedded backend their scores come from one batch pass restricted to them, and
    only an entry without a path (whose codes carry explain's diagnosis) is explained."""
    folder = reassigned_case(400).write(tmp_path / "reassigned")
    backend = (
        ArrayBackend(read_columns(folder))
        if kind == "arrays"
        else MemoryBackend(load_folder(folder))
    )
    called = _spy_explain(monkeypatch)
    view = neighborhood(backend, "+8613900000000", "phone", hops=2)
    entries = [n for n in view.nodes if n.kind == "entry"]
    assert len(entries) > 100 and called == []
    assert {(n.attrs["verdict"], n.attrs["contamination"]) for n in entries} == {
        ("spillover", 0.98)
    }


@pytest.mark.neo4j
def test_a_hub_view_on_neo4j_fetches_the_facts_its_entries_share_once(
    neo4j_db, tmp_path, monkeypatch
):
    """On Neo4j each entry of the view was explained alone, each fetching the hub's
    neighbourhood again (a number reassigned 2,000 times: 249 entries, 47 s); then they
    were explained together, each fact fetched once, but still searched one by one in
    Python (7.8 s). Now, as on the embedded backends, one batch pass scores them, over the
    facts they can reach (an ``expand`` request per layer), and none is explained. The same view as on the embedded backends."""
    from spillover.neo4j.ingest import ingest_folder
    from spillover.neo4j.store import Neo4jBackend

    folder = reassigned_case(300).write(tmp_path / "reassigned")
    ingest_folder(folder, neo4j_db.driver, neo4j_db.settings.database)
    backend = Neo4jBackend(neo4j_db.driver, neo4j_db.settings.database)
    calls: list[str] = []
    for name in ("neighbourhood", "expand"):
        real = getattr(backend, name)

        def counted(*args, _name=name, _real=real, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(backend, name, counted)
    explained = _spy_explain(monkeypatch)
    view = neighborhood(backend, "+8613900000000", "phone", hops=2)
    entries = [n for n in view.nodes if n.kind == "entry"]
    assert len(entries) > 100 and explained == []
    assert len(calls) <= 5, calls  # was about three per entry
    embedded = neighborhood(ArrayBackend(read_columns(folder)), "+8613900000000", "phone", hops=2)
    assert to_json(view) == to_json(embedded)


def _explained(backend, view: Neighborhood, policy) -> dict[str, dict]:
    """Each entry of ``view`` described as ``explain`` (one entry at a time) scores it."""
    out = {}
    for n in view.nodes:
        if n.kind == "entry":
            e = backend.entries([n.id.split(":", 1)[1]])[n.id.split(":", 1)[1]]
            x = explain(backend, e, policy, max_paths=1)
            codes = " ".join(x.reason_codes)
            out[n.id] = {
                "contamination": x.contamination,
                "verdict": x.verdict.value,
                "reason_codes": codes,
            }
    return out


def _scored(view: Neighborhood) -> dict[str, dict]:
    keys = ("contamination", "verdict", "reason_codes")
    return {n.id: {k: n.attrs[k] for k in keys} for n in view.nodes if n.kind == "entry"}


@pytest.fixture(scope="module")
def scored_worlds(tmp_path_factory) -> list[tuple[object, str, str]]:
    """Embedded backends of worlds with explained and unexplained entries and records, and
    a subject each whose view holds many entries."""
    out: list[tuple[object, str, str]] = []
    root = tmp_path_factory.mktemp("scored")
    for seed in (3, 11, 17):
        folder = random_scenario(seed, people=15, loans=45, entries=30).write(root / f"s{seed}")
        data = load_folder(folder)
        busiest = max(
            sorted(data.people), key=lambda p: sum(e.subject == p for e in data.entries.values())
        )
        for backend in (ArrayBackend(read_columns(folder)), MemoryBackend(data)):
            out.append((backend, busiest, "person"))
            out.append((backend, sorted(data.phone_periods)[0], "phone"))
    for backend in (
        ArrayBackend(read_columns(jiang_records_path())),
        MemoryBackend(load_folder(jiang_records_path())),
    ):
        out.append((backend, "jiang", "person"))
    return out


def test_the_entries_of_a_view_are_scored_as_explain_scores_them(scored_worlds):
    """The pass gives each entry with a path explain's contamination, verdict and codes;
    an entry without one keeps explain's diagnosis (NO_PATH and why)."""
    diagnosed: set[str] = set()
    for backend, subject, kind in scored_worlds:
        view = neighborhood(backend, subject, kind, hops=3)
        assert _scored(view) == _explained(backend, view, default_policy()), (subject, kind)
        diagnosed |= {
            s["reason_codes"] for s in _scored(view).values() if s["verdict"] == "unexplained"
        }
    # (the codes of an entry without a path: NO_PATH and why, here dates)
    assert f"{NO_PATH} {IGNORES_DATES}" in diagnosed, diagnosed


@settings(max_examples=12, deadline=None)
@given(policy=policies())
def test_the_entries_of_a_view_are_scored_as_explain_scores_them_under_any_policy(
    scored_worlds, policy
):
    for backend, subject, kind in scored_worlds[::3]:
        view = neighborhood(backend, subject, kind, hops=3, policy=policy)
        assert _scored(view) == _explained(backend, view, policy), (subject, kind)
