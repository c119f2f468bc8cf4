"""The one-pass audit (spillover.kernel) gives the same rows as explaining entries one by one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling import copy_chain_case, copy_heavy_scenario, within
from scenario import chain_case, random_scenario
from spillover.audit import audit_rows
from spillover.errors import SpilloverError
from spillover.loader import load_folder
from spillover.policy import default_policy_bytes, parse_policy


def both(backend, policy=None):
    one_pass = list(audit_rows(backend, policy, method="pass"))
    per_entry = list(audit_rows(backend, policy, method="per-entry"))
    return one_pass, per_entry


def test_jiang_case(graph):
    one_pass, per_entry = both(graph(_jiang()))
    assert one_pass == per_entry
    assert len(one_pass) == 16


def _jiang():
    from scenario import Scenario
    from spillover.examples import jiang_case_path

    data = load_folder(jiang_case_path())
    s = Scenario()
    for p in data.people.values():
        s.person(p.person_id, p.name, id_number=p.id_number, city=p.city)
    for p in data.platforms.values():
        s.platform(p.platform_id, p.kind.value)
    for periods in data.phone_periods.values():
        for p in periods:
            s.phone(p.owner_id, p.phone, verified=p.verified, since=_d(p.since), until=_d(p.until))
    for x in data.loans.values():
        s.loan(
            x.loan_id,
            x.platform_id,
            x.borrower_id,
            x.applied_at.isoformat(),
            x.status.value,
            applicant_phone=x.applicant_phone,
            phone_verified=x.phone_verified,
            status_at=_d(x.status_at),
            amount=x.amount,
        )
    for link in data.links:
        s.link(link.loan_id, link.phone, link.role.value)
    for e in data.entries.values():
        s.entry(
            e.entry_id,
            e.platform_id,
            e.subject,
            e.listed_at.isoformat(),
            kind=e.subject_kind.value,
            copied_from=e.copied_from,
            stated_reason=e.stated_reason,
        )
    for sh in data.sharing:
        s.share(sh.from_platform, sh.to_platform, _d(sh.since))
    return s


def _d(day):
    return None if day is None else day.isoformat()


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs(graph, seed):
    one_pass, per_entry = both(graph(random_scenario(seed, people=12, loans=35, entries=20)))
    assert one_pass == per_entry


def test_deeper_policy(graph):
    raw = default_policy_bytes().replace(b"max_loans = 3", b"max_loans = 4")
    policy = parse_policy(raw)
    deep = graph(chain_case(4))
    assert [r["hops"] for r in audit_rows(deep, policy)] == [4]
    assert [r["verdict"] for r in audit_rows(deep)] == ["unexplained"]
    one_pass, per_entry = both(graph(random_scenario(99, people=10, loans=40, entries=20)), policy)
    assert one_pass == per_entry


def test_unknown_method(graph):
    with pytest.raises(SpilloverError, match="unknown audit method"):
        list(audit_rows(graph(random_scenario(1)), method="fast"))


@pytest.mark.parametrize("seed", range(100, 140))
def test_many_random_graphs_in_memory(tmp_path, seed):
    from spillover.backends.memory import MemoryBackend

    folder = random_scenario(seed, people=20, loans=70, entries=30).write(tmp_path / "d")
    one_pass, per_entry = both(MemoryBackend(load_folder(folder)))
    assert one_pass == per_entry


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_files_are_identical_either_way(tmp_path, suffix):
    from spillover.audit import write_audit
    from spillover.backends.memory import MemoryBackend

    backend = MemoryBackend(load_folder(random_scenario(7).write(tmp_path / "d")))
    a = write_audit(audit_rows(backend, method="pass"), tmp_path / f"a{suffix}")
    b = write_audit(audit_rows(backend, method="per-entry"), tmp_path / f"b{suffix}")
    assert a.rows == b.rows == 15 and a.verdicts == b.verdicts
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50))
def test_round6_is_pythons_round(values):
    import numpy as np

    from spillover.kernel import round6

    halves = [k / 2e6 for k in range(0, 40, 1)]  # exact and near halves of the 6th decimal
    values = values + halves
    assert round6(np.array(values)).tolist() == [round(v, 6) for v in values]


# --- copy chains: near-linear, the same rows --------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_copy_heavy_random_graphs(graph, seed):
    """Long copy chains over sharing agreements with and without start days."""
    one_pass, per_entry = both(graph(copy_heavy_scenario(seed, loans=35, entries=24)))
    assert one_pass == per_entry


@pytest.mark.parametrize("dated", [False, True])
def test_a_copy_chain_across_platforms(graph, dated):
    one_pass, per_entry = both(graph(copy_chain_case(40, dated=dated)))
    assert one_pass == per_entry
    assert {r["verdict"] for r in one_pass} == {"spillover"}
    assert one_pass[0]["reason_codes"] == "EMERGENCY_CONTACT"
    assert one_pass[-1]["reason_codes"] == "EMERGENCY_CONTACT SHARED_BLACKLIST COPIED_ENTRY"


def test_audit_of_a_5000_platform_copy_chain_takes_seconds(tmp_path):
    """Each entry's reach followed its whole copy chain over every platform (1,000
    platforms 8 s, 3,000 271 s on main); now each entry is labelled once from the one it
    was copied from, for the platforms with an origin loan only."""
    folder = copy_chain_case(5000).write(tmp_path / "chain")
    _, out = within(
        30,
        """
        import sys
        from collections import Counter
        from spillover.connect import open_folder
        from spillover.audit import audit_rows
        rows = list(audit_rows(open_folder(sys.argv[1])))
        print(len(rows), Counter(r["verdict"] for r in rows)["spillover"])
        print(rows[-1]["entry_id"], rows[-1]["origin_loan_id"], rows[-1]["hops"])
        """,
        str(folder),
    )
    assert out.split() == ["5000", "5000", "E04999", "L", "1"]
