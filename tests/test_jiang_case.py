"""The seed case end to end: every entry on Jiang is spillover, Xu Yan's own entries are not."""

from __future__ import annotations

import pytest

from spillover import examples, open_folder
from spillover.engines.search import explain_about_person, explain_all


@pytest.fixture(scope="module")
def jiang():
    return open_folder(examples.jiang_case_path())


def test_every_jiang_entry_is_spillover(jiang):
    explanations = explain_about_person(jiang, "jiang")
    assert len(explanations) == 11
    for e in explanations:
        assert e.verdict == "spillover", e.entry
        assert e.contamination >= 0.9
        assert {p.origin.borrower_id for p in e.paths} == {"xu_yan"}


def test_xu_yan_entries_are_own_conduct(jiang):
    explanations = explain_about_person(jiang, "xu_yan")
    assert {e.entry.entry_id for e in explanations} == {"E-QC-XU", "E-HQ-XU", "E-LH-XU", "E-TY-XU"}
    assert all(e.contamination == 0 for e in explanations)


def test_bank_chain_reads_jiang_phone_loan_lender_broker_bank(jiang):
    e = next(x for x in explain_about_person(jiang, "jiang") if x.entry.entry_id == "E-WL-J")
    steps = e.paths[0].steps
    kinds = [s.source.split(":")[0] for s in steps] + [steps[-1].target.split(":")[0]]
    assert kinds == ["person", "phone", "loan", "platform", "platform", "platform", "entry"]
    assert steps[3].target == "platform:tianyan"
    assert (
        len(e.paths) == 8
    )  # seven lenders tie Jiang's phone to Xu Yan, plus Lanhai through the chain


def test_whole_case_is_explained(jiang):
    verdicts = {e.entry.entry_id: e.verdict for e in explain_all(jiang)}
    assert "unexplained" not in verdicts.values()
    assert verdicts["E-LH-LN"] == "spillover"  # Li Na, Xu Yan's emergency contact
