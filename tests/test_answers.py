"""What an answer says and shows (issue 19): only the names of the paths it returns,
no text that passes for output of its own, one count of paths everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from scenario import Scenario
from spillover.core import Explanation, check, explain_about_person, explain_entry
from spillover.model import split_ref
from spillover.output import explanation_dict

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
    from spillover.remedy import remedy, remedy_text
    from spillover.render import explanation_text

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
    from spillover.report import report

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
    from spillover.neighborhood import neighborhood, write_view

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
