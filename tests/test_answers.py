"""What an answer says and shows (issue 19): only the names of the paths it returns,
no text that passes for output of its own, one count of paths everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

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
