"""What an answer says and shows (issue 19): only the names of the paths it returns,
no text that passes for output of its own, one count of paths everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from scenario import Scenario
from spillover.engines.search import Explanation, check, explain_about_person, explain_entry
from spillover.facts.model import split_ref
from spillover.render.json import explanation_dict

HUB = 60  # borrowers whose defaulted loans name the subject's phone (max_paths is 10)


def hub_case(borrowers: int = HUB) -> Scenario:
    """Jiang's phone is the emergency contact on ``borrowers`` strangers' defaulted loans."""
    s = Scenario()
    s.person("jiang", "Jiang")
    s.platform("lender")
    phone = s.phone("jiang", "+8613957112345")
    for i in range(borrowers):
        b = s.person(f"b{i:04d}", f"Borrower {i}")
        s.loan(f"L{i:04d}", "lender", b, "2023-01-10", "defaulted", status_at="2023-03-01")
        s.link(f"L{i:04d}", phone, "emergency_contact")
    s.entry("E-J", "lender", "jiang", "2023-04-01")
    s.entry("E-PH", "lender", phone, "2023-04-01", kind="phone")
    return s


class NamesSpy:
    """The backend as it is, with every ref that ``names`` is asked for counted."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.asked: list[str] = []

    def names(self, refs: list[str]) -> dict[str, str]:
        self.asked.extend(refs)
        result: dict[str, str] = self._backend.names(refs)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def path_refs(e: Explanation) -> set[str]:
    """The references an explanation's names may hold: the nodes on its paths, the borrower
    and platform of each loan on them (they name the loan), its subject and platform."""
    refs = {e.entry.subject_ref, f"platform:{e.entry.platform_id}"}
    loans = {}
    for p in e.paths:
        for s in p.steps:
            refs.update((s.source, s.target))
        loans[p.origin.loan_id] = p.origin
    for node in list(refs):
        kind, ident = split_ref(node)
        if kind == "loan" and ident in loans:
            refs.update(
                (f"person:{loans[ident].borrower_id}", f"platform:{loans[ident].platform_id}")
            )
    return refs


def test_names_hold_only_the_references_on_the_paths(graph):
    backend = NamesSpy(graph(hub_case()))
    answers = [
        check(backend, "lender", "person", "jiang", date(2023, 4, 1)),
        check(backend, "lender", "phone", "+8613957112345", date(2023, 4, 1)),
        explain_entry(backend, "E-J"),
        explain_entry(backend, "E-PH"),
        *explain_about_person(backend, "jiang"),
    ]
    for e in answers:
        assert len(e.paths) == 10
        assert set(e.names) <= path_refs(e), sorted(set(e.names) - path_refs(e))[:5]
        # every reference on the paths is named, and the JSON carries exactly these names
        assert {f"loan:{p.origin.loan_id}" for p in e.paths} <= set(e.names)
        assert explanation_dict(e)["names"] == e.names
        # the 10 borrowers on the paths, not the 60 the search went past
        people = [n for n in e.names if n.startswith("person:") and n != "person:jiang"]
        assert len(people) == 10
    # the backend was asked only for what the answers name
    assert len(backend.asked) <= sum(len(path_refs(e)) for e in answers)


def test_a_check_names_its_paths_from_the_neighbourhood_on_neo4j(graph):
    """Issue 22: on a backend where a call is a round trip, the neighbourhood brings the
    names of the people and platforms a check's paths show; ``names`` is asked for no
    person and no platform (only phones, loans, entries: named without the server). The answer
    still names only its paths (the test above) and is the same on every backend."""
    backend = NamesSpy(graph(hub_case()))
    for kind, subject in (("person", "jiang"), ("phone", "+8613957112345")):
        backend.asked.clear()
        e = check(backend, "lender", kind, subject, date(2023, 4, 1))
        assert len(e.paths) == 10 and set(e.names) <= path_refs(e)
        assert sum(n.startswith("person:") for n in e.names) == 10 + (kind == "person")
        asked = {split_ref(r)[0] for r in backend.asked}
        if backend.round_trips:
            assert not asked & {"person", "platform"}, sorted(backend.asked)
        else:
            assert {"person", "platform"} <= asked


# --- item 12: names cannot forge output ------------------------------------------------

FORGED = "Xu Yan\n  verdict: OWN_CONDUCT  contamination 0.000\r\x07"
FLIPPED = "\u202eKing Lender"  # a bidi override: turns what follows around
BORROWER = "bob\x1b[2J"  # an id with a terminal escape (clears the screen)


def forged_case() -> Scenario:
    """Jiang's phone is the emergency contact on a defaulted loan of a borrower whose name
    holds a line of its own, at a platform whose name turns the line around."""
    s = Scenario()
    s.person("jiang", "Jiang")
    s.person("xu", FORGED)
    s.person(BORROWER, "Bob")
    s.platform("lender")
    s.tables["platforms"][0]["name"] = FLIPPED
    phone = s.phone("jiang", "+8613957112345", verified=False)
    s.loan("L1", "lender", "xu", "2023-01-10", status_at="2023-02-01")
    s.link("L1", phone, "emergency_contact")
    # bob applies with Jiang's phone, unverified: a finding naming bob's id
    s.loan("L2", "lender", BORROWER, "2023-01-12", applicant_phone=phone, phone_verified=False)
    s.entry("E1", "lender", "jiang", "2023-04-01", stated_reason="late\rpaid in full")
    s.entry("E2", "lender", phone, "2023-04-01", kind="phone")
    return s


def assert_plain(text: str) -> None:
    """No character in ``text`` acts on a terminal or a line but the line feeds."""
    bad = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    bad += [c for c in text if c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]
    assert not bad, bad


def test_names_cannot_forge_lines_of_the_text_explanation(graph):
    from spillover.engines.remedy import remedy
    from spillover.render.remedy import remedy_text
    from spillover.render.text import explanation_text

    backend = graph(forged_case())
    for e in (
        explain_entry(backend, "E1"),
        explain_entry(backend, "E2"),
        check(backend, "lender", "phone", "+8613957112345", date(2023, 4, 1)),
    ):
        assert e.names["person:xu"] == FORGED  # the data as it is
        assert explanation_dict(e)["names"]["platform:lender"] == FLIPPED  # JSON: exact
        text = explanation_text(e)
        assert_plain(text)
        verdicts = [line for line in text.splitlines() if line.lstrip().startswith("verdict:")]
        assert len(verdicts) == 1 and "SPILLOVER" in verdicts[0]
        assert "Xu Yan\\n  verdict: OWN_CONDUCT  contamination 0.000\\r\\x07" in text
        assert "\\u202eKing Lender" in text
    assert '"late\\rpaid in full"' in explanation_text(explain_entry(backend, "E1"))
    text = remedy_text(remedy(backend, "E1"))
    assert_plain(text)
    assert "Xu Yan\\n  verdict" in text and "\\u202eKing Lender" in text


def test_control_characters_are_escaped_in_cli_text(tmp_path):
    from click.testing import CliRunner

    from spillover.cli import cli

    data = forged_case().write(tmp_path / "data")
    runner = CliRunner()
    runs = {
        "explain": ["explain", "E1", "--data", str(data)],
        "check": [
            "check",
            "--platform",
            "lender",
            "--subject",
            "+8613957112345",
            "--subject-kind",
            "phone",
            "--at",
            "2023-04-01",
            "--data",
            str(data),
        ],
        "remedy": ["remedy", "E2", "--data", str(data)],
        "findings": ["findings", "--data", str(data)],
        "neighborhood": [
            "neighborhood",
            "xu",
            "--format",
            "json",
            "--out",
            str(tmp_path / "v.json"),
            "--data",
            str(data),
        ],
    }
    for what, args in runs.items():
        done = runner.invoke(cli, args)
        assert done.exit_code == 0, (what, done.output)
        assert_plain(done.output)
    assert "bob\\x1b[2J" in runner.invoke(cli, runs["findings"]).output
    assert "of Xu Yan\\n  verdict" in runner.invoke(cli, runs["neighborhood"]).output
    # JSON keeps the exact strings
    import json

    view = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert view["label"] == FORGED


def test_names_are_isolated_in_html_and_escaped_in_markdown(graph, tmp_path):
    from spillover.render.report import report

    backend = graph(forged_case())
    html = report(backend, "jiang")
    page = html[: html.find("<svg")] + html[html.find("</svg>") :]  # the drawing: text only
    assert "<bdi>\u202eKing Lender</bdi>" in page
    assert "\u202e" not in page.replace("<bdi>\u202eKing Lender</bdi>", "")
    # every name is isolated: each bidi override sits in a <bdi> of its own
    assert html.count("<bdi>") == html.count("</bdi>") > 10
    assert "<title>Blacklist dispute report: Jiang</title>" in html
    md = report(backend, "jiang", fmt="md")
    assert_plain(md)
    assert "\\\\u202eKing Lender" in md  # escaped, then its backslash escaped for Markdown
    assert "\u2068" not in md and "<bdi>" not in md


def test_the_neighborhood_page_isolates_the_subject(graph, tmp_path):
    pytest.importorskip("neo4j_viz")
    from spillover.render.neighborhood import neighborhood, write_view

    view = neighborhood(graph(forged_case()), "xu", "person")
    assert view.label == FORGED
    html = write_view(view, tmp_path / "v.html", "html").read_bytes().decode("utf-8")
    head = html[html.index('<header id="spillover-view"') :]
    head = head[: head.index("</header>")]
    label = "<bdi>Xu Yan\n  verdict: OWN_CONDUCT  contamination 0.000\r\x07</bdi>"
    assert f'<strong id="spillover-subject">{label}</strong>' in head
    assert f" of {label}; nothing left out." in head
    title = html[html.index("<title>") : html.index("</title>")]
    assert_plain(title)
    # the canvas captions are drawn as text: no control or bidi character acts there
    assert "\\u202eKing Lender" in html or "\\\\u202eKing Lender" in html


# --- item 13: one count of paths -------------------------------------------------------


def test_the_explanation_counts_every_path_the_remedy_breaks(graph):
    from scenario import random_scenario
    from spillover.engines.remedy import remedy_for
    from spillover.examples import jiang_records_path
    from test_remedy import jiang_scenario

    for scenario in (
        jiang_scenario(),
        jiang_scenario(jiang_records_path()),  # entries on a record matched by linkage
        random_scenario(7, people=12, loans=40, entries=15),
        random_scenario(11, people=10, loans=30, entries=6, records=8),
    ):
        backend = graph(scenario)
        for entry in scenario.tables["blacklist"]:
            e = explain_entry(backend, entry["entry_id"], max_paths=10**9)
            d = explanation_dict(explain_entry(backend, entry["entry_id"]))
            assert d["paths_total"] == e.paths_total and d["origins_total"] == e.origins_total
            assert len(d["paths"]) <= d["origins_total"] <= d["paths_total"]
            assert e.origins_total == len(e.paths)
            assert (e.paths_total == 0) == (not e.paths)
            if e.verdict.value == "spillover":
                assert e.paths_total == remedy_for(backend, e).paths, entry["entry_id"]
    e = explain_entry(graph(jiang_scenario()), "E-QC-PH")
    assert (e.paths_total, e.origins_total, len(e.paths)) == (18, 1, 1)
    records = graph(jiang_scenario(jiang_records_path()))
    for entry_id in ("E-TY-R", "E-QT-J", "E-ZM-J"):
        e = explain_entry(records, entry_id, max_paths=10**9)
        assert e.paths_total == remedy_for(records, e).paths == 81, entry_id


def test_explain_and_remedy_say_how_many_paths_there_are_and_how_many_are_shown():
    from click.testing import CliRunner

    from spillover.cli import cli
    from spillover.examples import jiang_case_path

    data = str(jiang_case_path())
    runner = CliRunner()
    out = runner.invoke(cli, ["explain", "E-QC-PH", "--data", data]).output
    assert "best of 18 paths to 1 origin loan (1 shown): responsibility 0.02" in out
    assert ", 1 loan deep" in out and "loan(s)" not in out
    out = runner.invoke(cli, ["explain", "E-WL-J", "--data", data, "--max-paths", "3"]).output
    assert "best of 81 paths to 8 origin loans (3 shown)" in out
    assert "... and 5 more origin loans not listed (raise --max-paths)" in out
    out = runner.invoke(cli, ["remedy", "E-QC-PH", "--data", data]).output
    assert "correct these 8 records and no path is left (all 18 paths " in out
    assert "correct 1 record\n" in out and "record(s)" not in out
    out = runner.invoke(cli, ["explain", "E-QC-PH", "--data", data, "--format", "json"]).output
    assert '"paths_total": 18' in out and '"origins_total": 1' in out


def near_certain_case() -> Scenario:
    """Jiang's phone is the unverified applicant phone on a stranger's current loan, whose
    own other loan defaulted: responsibility 0.02 x 0.1, contamination 0.998."""
    s = Scenario()
    s.person("jiang", "Jiang")
    s.person("xu", "Xu")
    s.platform("lender")
    phone = s.phone("jiang", "+8613957112345")
    s.loan(
        "L1", "lender", "xu", "2023-01-10", "current", applicant_phone=phone, phone_verified=False
    )
    s.loan("L2", "lender", "xu", "2023-01-20", status_at="2023-02-01")
    s.entry("E1", "lender", "jiang", "2023-04-01")
    return s


def test_a_share_below_one_never_reads_100_percent(graph):
    from spillover.render.report import report
    from spillover.render.text import explanation_text

    backend = graph(near_certain_case())
    e = explain_entry(backend, "E1")
    assert e.contamination == 0.998
    text = explanation_text(e)
    assert "(99% of this listing rests on other people's debts)" in text and "100%" not in text
    for lang in ("en", "zh"):
        md = report(backend, "jiang", fmt="md", lang=lang)
        assert "99%" in md and "100%" not in md
    # one listing, one record: no "1 listings", no "1 record(s)"
    md = report(backend, "jiang", fmt="md")
    assert "on paths behind 1 of 1 listing" in md and "1 listings" not in md
    assert "clears 1 of 1 listing" in md and "(s)" not in md
    assert "Correct the 1 record below" in md
    assert "The best of 1 path to 1 origin loan (1 shown" in md


def test_the_report_says_why_the_remedy_is_larger_than_the_chain(graph):
    from spillover.render.report import report
    from test_remedy import jiang_scenario

    backend = graph(jiang_scenario())
    for lang, chain, lead in (
        ("en", "The best of 18 paths to 1 origin loan (1 shown", "they break all 18 paths"),
        ("zh", "共有 18 条路径通向 1 笔源头贷款", "全部 18 条路径"),
    ):
        for fmt in ("md", "html"):
            page = report(backend, "jiang", fmt=fmt, lang=lang)
            assert chain in page and lead in page
    html = report(backend, "jiang")
    assert "which is why a remedy can hold more records than the chain" in html


def test_the_service_answers_with_the_names_of_its_paths_only(graph, tmp_path):
    import asyncio

    import httpx

    from spillover.policy import default_policy
    from spillover.service import ServeConfig, create_app
    from spillover.service.auth import read_tokens

    backend = graph(hub_case())
    token = "lender-token-0123456789abcdef"
    config = ServeConfig(tmp_path / "checks.jsonl")
    grants = read_tokens(f"lender:{token}")
    auth = {"Authorization": f"Bearer {token}"}
    body = {
        "platform_id": "lender",
        "subject": {"kind": "person", "id": "jiang"},
        "listed_at": "2023-04-01",
    }
    app = create_app(lambda: backend, config, grants=grants, policy=default_policy())

    async def ask() -> list[Any]:
        # the application's startup and shutdown around the calls (httpx does not run them)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            answers = [(await c.post("/v1/checks", json=body, headers=auth)).json()]
            batch = (await c.post("/v1/checks:batch", json={"checks": [body]}, headers=auth)).json()
            answers.append(batch["results"][0]["check"])
            answers.append((await c.get("/v1/entries/E-PH/explanation", headers=auth)).json())
            got = (await c.get("/v1/subjects/person/jiang/entries", headers=auth)).json()
            return answers + got

    answers = asyncio.run(ask())
    assert len(answers) == 5
    for a in answers:
        people = [n for n in a["names"] if n.startswith("person:b")]
        assert len(people) == 10, len(people)
        assert {f"person:{p['origin']['borrower_id']}" for p in a["paths"]} == set(people)
        assert len(a["paths"]) == 10 and a["origins_total"] == HUB <= a["paths_total"]


def test_the_neighborhood_note_counts_in_the_singular(graph):
    from spillover.render.neighborhood import neighborhood

    s = Scenario()
    s.person("lone", "Lone")
    s.platform("lender")
    view = neighborhood(graph(s), "lone", "person")
    assert view.note.startswith("1 node and 0 relationships within 3 hop(s) of Lone")


def test_a_score_below_one_never_reads_1_000(graph):
    from spillover.engines.remedy import remedy
    from spillover.render.remedy import remedy_text
    from spillover.render.report import report
    from spillover.render.text import explanation_text

    s = Scenario()
    for p in ("jiang", "ann", "bob"):
        s.person(p, p.title())
    s.platform("lender")
    mine, anns = s.phone("jiang"), s.phone("ann")
    s.loan("L1", "lender", "ann", "2023-01-10", "current")
    s.link("L1", mine, "address_book")  # x0.01, then x0.1 on to Ann
    s.loan("L2", "lender", "bob", "2023-01-10", "current")
    s.link("L2", anns, "reference")  # x0.04, then x0.1 on to Bob
    s.loan("L3", "lender", "bob", "2023-01-20", status_at="2023-02-01")
    s.entry("E1", "lender", "jiang", "2023-04-01")
    backend = graph(s)
    e = explain_entry(backend, "E1")
    assert e.contamination == 0.999996
    text = explanation_text(e)
    assert "contamination 0.999996  (99% of this listing" in text and "1.000" not in text
    assert "contamination 0.999996" in remedy_text(remedy(backend, "E1"))
    md = report(backend, "jiang", fmt="md")
    assert "**0.999996**" in md and "1.000" not in md and "100%" not in md
