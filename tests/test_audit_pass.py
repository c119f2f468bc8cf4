"""The one-pass audit (spillover.engines.batch) gives the same rows as explaining entries one by one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling import (
    copy_chain_case,
    copy_heavy_scenario,
    listed_per_loan_case,
    reassigned_case,
    within,
)
from scenario import chain_case, random_scenario
from spillover.audit.batch import audit_rows
from spillover.data.exact import load_folder
from spillover.errors import SpilloverError
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


def _without_loans():
    """The Jiang case's people, phones, platforms, sharing and blacklist, and no loan (a
    blacklist exported before its loans)."""
    s = _jiang()
    s.tables["loans"].clear()
    s.tables["loan_links"].clear()
    return s


def test_a_graph_without_loans_is_audited_every_entry_unexplained(graph):
    """The pass read the borrower and platform of loan 0 for every entry, found or not,
    and failed with an IndexError on a graph holding no loan at all; every entry is
    unexplained, as the per-entry search says."""
    one_pass, per_entry = both(graph(_without_loans()))
    assert one_pass == per_entry
    assert len(one_pass) == 16 and {r["verdict"] for r in one_pass} == {"unexplained"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_folder_without_loans_is_audited(tmp_path, suffix):
    """``spillover audit --data`` of a folder whose loans.csv holds no row wrote a
    traceback; it writes the per-entry audit's bytes."""
    from spillover.audit.batch import audit_folder, write_audit
    from spillover.backends.memory import MemoryBackend

    folder = _without_loans().write(tmp_path / "d")
    backend = MemoryBackend(load_folder(folder))
    b = write_audit(audit_rows(backend, method="per-entry"), tmp_path / f"b{suffix}")
    a = audit_folder(folder, tmp_path / f"a{suffix}")
    assert (a.rows, a.verdicts) == (b.rows, b.verdicts) == (16, {"unexplained": 16})
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


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
    from spillover.audit.batch import write_audit
    from spillover.backends.memory import MemoryBackend

    backend = MemoryBackend(load_folder(random_scenario(7).write(tmp_path / "d")))
    a = write_audit(audit_rows(backend, method="pass"), tmp_path / f"a{suffix}")
    b = write_audit(audit_rows(backend, method="per-entry"), tmp_path / f"b{suffix}")
    assert a.rows == b.rows == 15 and a.verdicts == b.verdicts
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_folder_audit_gives_the_per_entry_file(tmp_path, suffix):
    """``audit_folder`` (columnar load, one pass, freed memory kept for reuse while it runs:
    spillover.memory.kept_heap) writes the per-entry audit's bytes."""
    from spillover.audit.batch import audit_folder, write_audit
    from spillover.backends.memory import MemoryBackend

    folder = random_scenario(7).write(tmp_path / "d")
    backend = MemoryBackend(load_folder(folder))
    b = write_audit(audit_rows(backend, method="per-entry"), tmp_path / f"b{suffix}")
    a = audit_folder(folder, tmp_path / f"a{suffix}")
    assert (a.rows, a.verdicts) == (b.rows, b.verdicts)
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_folder_audit_runs_in_small_pages(tmp_path):
    """``audit_folder`` loads, builds and passes with transparent huge pages off (seen
    from its progress calls) and puts the setting back after."""
    import ctypes
    import ctypes.util
    import platform

    from spillover.audit.batch import audit_folder

    if platform.system() != "Linux":
        pytest.skip("prctl is Linux's")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    before = libc.prctl(42, 0, 0, 0, 0)
    libc.prctl(41, 0, 0, 0, 0)  # (huge pages allowed before the audit)
    seen: set[int] = set()
    folder = random_scenario(7).write(tmp_path / "d")
    try:
        audit_folder(
            folder, tmp_path / "a.csv", progress=lambda *_: seen.add(libc.prctl(42, 0, 0, 0, 0))
        )
        assert seen == {1}
        assert libc.prctl(42, 0, 0, 0, 0) == 0
    finally:
        libc.prctl(41, before, 0, 0, 0)


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50))
def test_round6_is_pythons_round(values):
    import numpy as np

    from spillover.engines.batch import round6

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
        from spillover.audit.batch import audit_rows
        rows = list(audit_rows(open_folder(sys.argv[1])))
        print(len(rows), Counter(r["verdict"] for r in rows)["spillover"])
        print(rows[-1]["entry_id"], rows[-1]["origin_loan_id"], rows[-1]["hops"])
        """,
        str(folder),
    )
    assert out.split() == ["5000", "5000", "E04999", "L", "1"]


def reference_reach(chain, sharing):
    """core.compute_reach as first written: every agreement relaxed until nothing changes."""
    from datetime import date

    def better(a, b):
        return (-a[0].toordinal(), a[1], a[2], a[3]) < (-b[0].toordinal(), b[1], b[2], b[3])

    labels = {}
    for index, e in enumerate(chain):
        label = (e.listed_at, 0, index, "")
        if e.platform_id not in labels or better(label, labels[e.platform_id]):
            labels[e.platform_id] = label
    assert all(lab[0] < date.max for lab in labels.values())
    for _ in range(len(sharing) + 1):
        changed = False
        for s in sharing:
            to_label = labels.get(s.to_platform)
            if to_label is None or (s.since is not None and s.since > to_label[0]):
                continue
            label = (to_label[0], to_label[1] + 1, to_label[2], s.to_platform)
            current = labels.get(s.from_platform)
            if current is None or better(label, current):
                labels[s.from_platform] = label
                changed = True
        if not changed:
            break
    return labels


@given(st.integers(0, 10_000))
def test_reach_labels_equal_relaxing_every_agreement(seed):
    import random
    from datetime import date, timedelta

    from spillover.engines.search import compute_reach
    from spillover.facts.model import Entry, Sharing, SubjectKind

    rng = random.Random(seed)
    platforms = [f"p{i}" for i in range(rng.randint(2, 9))]
    sharing = [
        Sharing(a, b, rng.choice([None, date(2022, 1, 1) + timedelta(days=rng.randint(0, 60))]))
        for a in platforms
        for b in platforms
        if a != b and rng.random() < 0.3
    ]
    rng.shuffle(sharing)
    day = date(2022, 3, 1)
    chain = []
    for k in range(rng.randint(1, 5)):
        chain.append(Entry(f"E{k}", rng.choice(platforms), SubjectKind.PERSON, "x", day))
        day -= timedelta(days=rng.choice([0, 0, 10, 30]))
    reach = compute_reach(tuple(chain), sharing)
    expected = reference_reach(chain, sharing)
    assert reach.deadline == {p: lab[0] for p, lab in expected.items()}
    assert reach.next_hop == {p: lab[3] or None for p, lab in expected.items()}
    assert reach.target == {p: lab[2] for p, lab in expected.items()}


def test_explain_at_the_end_of_a_12000_platform_copy_chain_takes_seconds(tmp_path):
    """The per-entry reach relaxed every sharing agreement once per hop of the longest
    route (12,000 x 12,000): a minute; now each platform is settled once."""
    folder = copy_chain_case(12000).write(tmp_path / "chain")
    _, out = within(
        20,
        """
        import sys
        from spillover.connect import open_folder
        from spillover.engines.search import explain_entry
        e = explain_entry(open_folder(sys.argv[1]), "E11999")
        print(e.verdict.value, len(e.best.steps))
        """,
        str(folder),
    )
    assert out.split()[0] == "spillover"


def test_explain_and_check_on_a_number_reassigned_30000_times_take_seconds(tmp_path):
    """Every loan naming a phone looked up the owner on its application day by scanning
    the phone's owner periods (periods x loans: a number reassigned 16,000 times, on as
    many loans, took 32 s to explain, 24 s to check); now each phone's periods are sorted
    once and the owner found by bisection."""
    folder = reassigned_case(30000).write(tmp_path / "reassigned")
    _, out = within(
        30,
        """
        import sys
        from datetime import date
        from spillover.connect import open_folder
        from spillover.engines.search import check, explain_entry
        backend = open_folder(sys.argv[1])
        e = explain_entry(backend, "E-PH")
        print(e.verdict.value, e.paths_total, e.best.origin.loan_id)
        c = check(backend, "lender", "phone", "+8613900000000", date(2099, 1, 2))
        print(c.verdict.value, c.paths_total)
        o = explain_entry(backend, "E29999")
        print(o.verdict.value, o.best.origin.loan_id, o.paths_total)
        """,
        str(folder),
    )
    # the phone: each of its 30,000 loans, and through x each of his 30,000 loans again
    assert out.split() == [
        *("spillover", "900030000", "L00000"),
        *("spillover", "900030000"),
        *("spillover", "L29999", "30001"),
    ]


def test_stable_order_is_numpys_stable_argsort():
    import numpy as np

    from spillover.facts import csr

    rng = np.random.default_rng(7)
    for n, rows in [(0, 0), (1, 1), (3, 50), (1000, 20000), (2**45, 500)]:  # (the last: argsort)
        codes = rng.integers(-1, max(n, 1), rows)
        order = csr.stable_order(codes, n)
        assert order.dtype == np.int64
        assert np.array_equal(order, np.argsort(codes, kind="stable"))


@settings(deadline=None)  # (the first example loads scipy)
@given(st.integers(0, 10_000))
def test_sharing_hops_are_scipys_unweighted_shortest_paths(seed):
    """The pass's hops over the sharing graph (a breadth-first search in numpy, so the CLI
    does not load scipy) are scipy's unweighted ``shortest_path``: repeated agreements,
    loops, cycles, unreached platforms, sources listed in any order."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    from spillover.engines.batch.reach import sharing_hops

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    edges = int(rng.integers(0, 3 * n))
    s_from, s_to = rng.integers(0, n, edges), rng.integers(0, n, edges)
    sources = rng.permutation(n)[: int(rng.integers(0, n + 1))]
    graph = csr_matrix((np.ones(edges), (s_from, s_to)), shape=(n, n))
    expected = shortest_path(graph, method="D", directed=True, unweighted=True, indices=sources)
    got = sharing_hops(n, s_from, s_to, sources)
    assert got.shape == (len(sources), n)
    assert np.array_equal(got, expected.reshape(len(sources), n))


@pytest.mark.parametrize("seed", range(200, 206))
def test_the_index_holds_a_numbers_uses_in_the_datas_order(tmp_path, seed):
    """By (number, loan), and one loan's uses of a number as the data gives them: the
    applicant phone first, then the links in the order of loan_links.csv (the order the
    arrays backend lists them in); here with the links in the file's order and reversed."""
    import csv

    import numpy as np

    from spillover.data.fast import read_columns
    from spillover.engines.batch import ROLE_NAMES, Index
    from spillover.policy import default_policy

    scenario = random_scenario(seed, people=20, loans=70, entries=30)
    roles = ["guarantor", "emergency_contact", "reference", "address_book"]
    links = scenario.tables["loan_links"]
    # (and some numbers named twice on one loan, in two roles)
    links += [{**r, "role": roles[roles.index(r["role"]) - 1]} for r in links[::5]]
    for name, order in (("as_written", links), ("reversed", links[::-1])):
        scenario.tables["loan_links"] = order
        folder = scenario.write(tmp_path / name)
        ix = Index(read_columns(folder), default_policy())
        phone = np.repeat(np.arange(len(ix.phones)), np.diff(ix.u_ptr))
        got = [
            (ix.phones.text(int(c)), ix.loans[int(loan)].as_py(), ROLE_NAMES[role])
            for c, loan, role in zip(phone, ix.u_loan, ix.u_role, strict=True)
        ]
        with (folder / "loans.csv").open(encoding="utf-8") as handle:
            loans = sorted(csv.DictReader(handle), key=lambda r: r["loan_id"])
        with (folder / "loan_links.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        want = [(r["applicant_phone"], r["loan_id"], "applicant") for r in loans]
        want = [w for w in want if w[0]] + [(r["phone"], r["loan_id"], r["role"]) for r in rows]
        assert got == sorted(want, key=lambda w: w[:2]) and len(rows) > 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_borrower_listed_once_per_loan(graph, seed):
    """Many entries on one borrower of many loans (each ties to every loan of his applied
    by its listing): the pass keeps of each entry's own loans only the best origin, and
    gives the rows of explain."""
    one_pass, per_entry = both(graph(listed_per_loan_case(150, seed)))
    assert one_pass == per_entry
    assert {r["verdict"] for r in one_pass} >= {"own_conduct", "unexplained"}


def test_a_pass_over_a_borrower_listed_once_per_loan_holds_entries_plus_loans(
    tmp_path, monkeypatch
):
    """A simulated rule listing a borrower once per defaulted loan (a number reassigned
    16,000 times: its one borrower listed some 5,000 times) made the pass gather every
    entry's ties to all his loans at once and keep a label per (entry, loan): 83 million
    rows, a MemoryError under 3 GB. The ties are gathered a part at a time and only the
    best own origin of each is kept: the peak no longer grows as entries x loans."""
    import tracemalloc

    import spillover.engines.batch.audit as kernel
    from spillover.data.fast import read_columns
    from spillover.engines.batch import Index

    monkeypatch.setattr(kernel, "GATHER_ROWS", 1 << 14, raising=False)
    index = Index(read_columns(listed_per_loan_case(1500).write(tmp_path / "x")))
    tracemalloc.start()
    try:
        result = index.audit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result) > 1500
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB"


def test_the_owner_of_a_number_reassigned_30000_times_is_found_by_bisection(tmp_path):
    """The index's period_at (the pass's owner of a phone on a day: the every-path pass
    reads it for every use tie of every layer, the index for every use) looked at the
    phone's periods one at a time for every lookup: periods x lookups, 1 s a call on a
    number reassigned 16,000 times; now one bisection over every period (the same owner:
    each day's, none before the first period or after the last)."""
    folder = reassigned_case(30000).write(tmp_path / "reassigned")
    _, out = within(
        20,
        """
        import sys
        import numpy as np
        from spillover.connect import open_folder
        from spillover.engines.batch import Index
        from spillover.policy import default_policy
        ix = Index(open_folder(sys.argv[1]).columns(), default_policy())
        hub = [ix.phones.text(c) for c in range(len(ix.phones))].index("+8613900000000")
        days = np.concatenate([ix.loan_applied, [ix.loan_applied.min() - 1, 800_000]])
        phone = np.full(len(days), hub)
        for _ in range(10):
            period = ix.period_at(phone, days)
        owners = ix.persons.take(ix.p_owner[period[:-2]]).to_pylist()
        loans = ix.loans.to_pylist()
        print(sum(o[1:] == loan[1:] for o, loan in zip(owners, loans)), *period[-2:])
        """,
        str(folder),
    )
    assert out.split() == ["30000", "-1", "-1"]
