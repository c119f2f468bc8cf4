"""Every entry's paths from one batch pass (spillover.engines.batch.paths.every_path, and as
columns: path_columns) are the per-entry search's: the same paths, ranks and routes as
``explain`` lists them, on random worlds and on every backend; and the write-back stores the
same graph either way."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling import (
    copy_chain_case,
    copy_heavy_scenario,
    listed_per_loan_case,
    reassigned_case,
    within,
)
from scenario import random_scenario
from spillover.backends.memory import MemoryBackend
from spillover.connect import open_folder
from spillover.data.exact import load_folder
from spillover.engines.batch import Index
from spillover.engines.batch.paths import every_path, path_chunks, path_columns
from spillover.engines.search import explain
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.graph import GraphBackend
from spillover.neo4j.ingest import ingest_folder
from spillover.neo4j.store import Neo4jBackend
from spillover.neo4j.writeback import WriteBackRefused, stored_results, write_back
from spillover.policy import Policy, default_policy, default_policy_bytes, parse_policy
from spillover.rules import (
    COPY_STEP,
    LISTING_STEP,
    MATCHED_TO,
    ORIGIN_STEP,
    SHARING_STEP,
    owns_kind,
)
from spillover.synth.generate import generate


def policy_with(max_loans: int) -> Policy:
    raw = default_policy_bytes().replace(b"max_loans = 3", f"max_loans = {max_loans}".encode())
    return parse_policy(raw)


def as_explained(backend: GraphBackend, policy: Policy, max_paths: int | None) -> list[Any]:
    """Every entry's score, codes and paths as the per-entry search gives them."""
    out = []
    for batch in backend.iter_entries():
        for entry in batch:
            e = explain(backend, entry, policy, max_paths=max_paths, diagnose=False)
            out.append(
                (entry.entry_id, e.contamination, e.verdict, e.reason_codes, _paths(e.paths))
            )
    return out


def from_one_pass(backend: GraphBackend, policy: Policy, max_paths: int | None) -> list[Any]:
    """The same from one batch pass over the backend's columns."""
    return [
        (e.entry_id, e.contamination, e.verdict, e.reason_codes, _paths(e.paths))
        for e in every_path(Index(backend.columns(), policy), max_paths)
    ]


#: the steps whose day the columns keep (the write-back's owner periods)
DAYS = frozenset({owns_kind(True).rel_for(), owns_kind(False).rel_for()})


def as_columns(explained: list[Any]) -> list[Any]:
    """Entries as :func:`as_explained` gives them, in what :func:`path_columns` keeps."""
    return [
        (
            entry_id,
            contamination,
            verdict.value,
            codes,
            [
                (
                    loan,
                    responsibility,
                    depth,
                    steps[0].source,
                    [(s.target, s.rel, s.at if s.rel in DAYS else None) for s in steps],
                )
                for loan, responsibility, depth, steps in paths
            ],
        )
        for entry_id, contamination, verdict, codes, paths in explained
    ]


def from_columns(backend: GraphBackend, policy: Policy, max_paths: int | None) -> list[Any]:
    """The same from :func:`path_columns` over the backend's columns."""
    c = path_columns(Index(backend.columns(), policy), max_paths, days_of=DAYS)
    out = []
    for e, entry_id in enumerate(c.entry_ids):
        paths = []
        for p in range(int(c.first[e]), int(c.first[e + 1])):
            a, b = int(c.off[p]), int(c.off[p + 1])
            steps = [
                (c.nodes[n], *c.kinds[k])
                for n, k in zip(c.node[a:b].tolist(), c.kind[a:b].tolist(), strict=True)
            ]
            start = c.nodes[int(c.start[p])]
            paths.append((c.loan[p], c.responsibility[p], int(c.hops[p]), start, steps))
        out.append((entry_id, c.contamination[e], c.verdict[e], c.reason_codes[e], paths))
    return out


def _by_entry(c: Any) -> list[Any]:
    """Every entry of a :class:`PathColumns` with its paths' nodes and kinds by name."""
    out = []
    for e, entry_id in enumerate(c.entry_ids):
        paths = []
        for p in range(int(c.first[e]), int(c.first[e + 1])):
            a, b = int(c.off[p]), int(c.off[p + 1])
            nodes = [c.nodes[int(c.start[p])], *(c.nodes[n] for n in c.node[a:b].tolist())]
            kinds = [c.kinds[k] for k in c.kind[a:b].tolist()]
            paths.append((c.loan[p], c.responsibility[p], int(c.hops[p]), nodes, kinds))
        out.append((entry_id, c.contamination[e], c.verdict[e], c.reason_codes[e], paths))
    return out


def _paths(paths: Any) -> list[Any]:
    # rank order, origin, responsibility, loans, and every step (names, nodes, factors,
    # days, codes): the route
    return [(p.origin.loan_id, p.responsibility, p.depth, p.steps) for p in paths]


WORLDS = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "people": st.integers(3, 14),
        "loans": st.integers(1, 45),
        "entries": st.integers(1, 14),
        "records": st.sampled_from([0, 0, 4, 10]),
        "copies": st.booleans(),
        "max_loans": st.sampled_from([1, 2, 3, 3, 4]),
        "max_paths": st.sampled_from([None, 1, 2, 3, 10]),
    }
)


def _world(w: dict[str, Any]) -> Any:
    if w["copies"]:
        return copy_heavy_scenario(w["seed"], loans=w["loans"], entries=w["entries"])
    return random_scenario(
        w["seed"], people=w["people"], loans=w["loans"], entries=w["entries"], records=w["records"]
    )


@given(world=WORLDS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_one_pass_gives_the_paths_ranks_and_routes_explain_gives(graph, world):
    backend = graph(_world(world))
    policy = policy_with(world["max_loans"])
    want = as_explained(backend, policy, world["max_paths"])
    assert from_one_pass(backend, policy, world["max_paths"]) == want
    assert from_columns(backend, policy, world["max_paths"]) == as_columns(want)


@pytest.mark.parametrize("dated", [False, True])
def test_the_routes_along_a_line_of_platforms_are_explain_s(tmp_path, dated):
    """A line of 100 platforms each sharing with the next and 100 entries each copied from
    the one before: too many agreements for the columns to relax at once (one platform a
    round), so their routes come from compute_reach chain by chain; the columns are still
    explain's (with the agreements' start days or without)."""
    backend = open_folder(copy_chain_case(100, dated=dated).write(tmp_path / "line"))
    policy = default_policy()
    want = as_explained(backend, policy, None)
    assert sum(len(x[-1]) for x in want) >= 100  # every entry explained, along the line
    assert from_columns(backend, policy, None) == as_columns(want)


@pytest.mark.parametrize("max_paths", [None, 1, 3])
@pytest.mark.parametrize("world", ["reassigned", "listed per loan"])
def test_the_paths_through_a_borrower_of_many_loans_are_explain_s(graph, world, max_paths):
    """Every owner of a reassigned number reaches its one borrower, x, and through him
    each of x's loans, all with one responsibility: the pass takes of a label's own loans
    only its ``max_paths`` best (by loan id among equals), as explain ranks them; and a
    borrower listed once per loan, with statuses and reaches of their own."""
    backend = graph(reassigned_case(40) if world == "reassigned" else listed_per_loan_case(40))
    policy = default_policy()
    want = as_explained(backend, policy, max_paths)
    assert max(len(x[-1]) for x in want) == (max_paths or policy.max_paths)  # (cut)
    assert from_one_pass(backend, policy, max_paths) == want
    assert from_columns(backend, policy, max_paths) == as_columns(want)


def test_every_path_on_a_number_reassigned_8000_times_needs_megabytes(tmp_path):
    """Each owner's entry reaches x, the borrower of all 8,000 loans: the pass gathered
    every one of x's loans for every entry and kept them all (one responsibility: no
    bar cut them) before the ``max_paths`` cut, entries x loans labels (16,000 periods:
    128 million, the write-back 10.5 GB in 84 s); now of a label's own loans it takes
    only the ``max_paths`` best, read in rank order. Here under 1 GB more address space
    than the index needs (a MemoryError before), in seconds."""
    folder = reassigned_case(8000).write(tmp_path / "reassigned")
    _, out = within(
        60,
        """
        import resource, sys
        from spillover.connect import open_folder
        from spillover.engines.batch import Index
        from spillover.engines.batch.paths import path_columns, every_path
        from spillover.policy import default_policy
        ix = Index(open_folder(sys.argv[1]).columns(), default_policy())
        pages = int(open("/proc/self/statm").read().split()[0])
        limit = pages * resource.getpagesize() + 10**9
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        c = path_columns(ix)
        print(len(c.entry_ids), int(c.first[-1]), c.loan[int(c.first[-2])])
        paths = [len(e.paths) for e in every_path(ix)]
        print(sum(paths), max(paths))
        """,
        str(folder),
    )
    # E-PH: ten of its loans; E{i}: the i + 1 loans of x known by its listing, ten at most
    paths = str(8001 * 10 - (9 + 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1))
    assert out.split() == ["8001", paths, "L07999", paths, "10"]


@pytest.mark.parametrize("path", [jiang_case_path(), jiang_records_path()], ids=["case", "records"])
@pytest.mark.parametrize("max_paths", [None, 1, 2, 100])
@pytest.mark.parametrize("store", ["arrays", "memory"])
def test_the_jiang_folders_paths_from_one_pass(path, max_paths, store):
    backend = open_folder(path) if store == "arrays" else MemoryBackend(load_folder(path))
    policy = default_policy()
    want = as_explained(backend, policy, max_paths)
    if max_paths != 1:
        assert sum(len(x[-1]) for x in want) > len(want)  # several paths to some entries
    assert from_one_pass(backend, policy, max_paths) == want
    assert from_columns(backend, policy, max_paths) == as_columns(want)


def test_the_every_path_order_is_explain_order_on_a_synthetic_population(tmp_path):
    folder = tmp_path / "d"
    generate(800, 5, folder)
    backend = open_folder(folder)
    policy = default_policy()
    want = as_explained(backend, policy, None)
    assert sum(len(x[-1]) for x in want) > len(want)
    assert from_one_pass(backend, policy, None) == want
    assert from_columns(backend, policy, None) == as_columns(want)
    # a chunk at a time: the same columns, entry by entry
    whole = path_columns(Index(backend.columns(), policy), days_of=DAYS)
    chunks = list(path_chunks(Index(backend.columns(), policy), days_of=DAYS, size=97))
    assert len(chunks) > 1
    assert [e for c in chunks for e in _by_entry(c)] == _by_entry(whole)


@pytest.mark.parametrize(
    ("source", "rels"),
    [
        ("synthetic", {SHARING_STEP.rel_for(), COPY_STEP.rel_for(), LISTING_STEP.rel_for()}),
        ("records", {MATCHED_TO}),
    ],
)
def test_the_columns_keep_the_day_of_every_step_asked_for(tmp_path, source, rels):
    """With every step's day asked for (not only the owner periods the write-back keeps),
    the columns' kinds carry every_path's days: the ties', the records' matches, the
    listings' and the copies'; never a route's origin and sharing days (one piece of
    route serves every origin on its platform)."""
    folder = jiang_records_path()
    if source == "synthetic":
        folder = tmp_path / "d"
        generate(2000, 4, folder, records=True)
    index = Index(open_folder(folder).columns(), default_policy())
    explained = list(every_path(index))
    every = frozenset(s.rel for e in explained for p in e.paths for s in p.steps)
    assert rels <= every
    undated = {ORIGIN_STEP.rel_for(), SHARING_STEP.rel_for()}
    want = [
        [
            (
                p.steps[0].source,
                [(s.target, s.rel, None if s.rel in undated else s.at) for s in p.steps],
            )
            for p in e.paths
        ]
        for e in explained
    ]
    got = [
        [
            (nodes[0], [(n, *k) for n, k in zip(nodes[1:], kinds, strict=True)])
            for *_, nodes, kinds in paths
        ]
        for *_, paths in _by_entry(path_columns(index, days_of=every))
    ]
    assert got == want


# -- the write-back graph (stored_results) ------------------------------------------------


@pytest.mark.neo4j
@pytest.mark.parametrize(("max_paths", "records"), [(None, False), (2, False), (None, True)])
def test_the_write_back_graph_is_the_same_from_one_pass_as_from_a_search_per_entry(
    neo4j_db, tmp_path, max_paths, records
):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    folder = tmp_path / "d"
    generate(1500, 3, folder, records=records)
    ingest_folder(folder, driver, db)
    backend = Neo4jBackend(driver, db)
    per_entry = write_back(backend, max_paths=max_paths, method="per-entry")
    before = stored_results(driver, db)
    assert per_entry.traces > per_entry.entries  # several paths to many entries
    # the graph again, without the run's seal (else the pass reruns on it, reading none)
    ingest_folder(folder, driver, db, wipe_first=True)
    one_pass = write_back(backend, max_paths=max_paths, method="pass")
    assert one_pass.graph_read and one_pass.traces_created == per_entry.traces
    assert stored_results(driver, db) == before
    assert (one_pass.entries, one_pass.traces, one_pass.verdicts) == (
        per_entry.entries,
        per_entry.traces,
        per_entry.verdicts,
    )


@pytest.mark.neo4j
@pytest.mark.parametrize("path", [jiang_case_path(), jiang_records_path()], ids=["case", "records"])
def test_the_write_back_of_the_jiang_case_is_the_same_either_way(neo4j_db, path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(path, driver, db)
    backend = Neo4jBackend(driver, db)
    per_entry = write_back(backend, method="per-entry")
    before = stored_results(driver, db)
    ingest_folder(path, driver, db, wipe_first=True)  # (no seal: the pass reads the graph)
    one_pass = write_back(backend)
    assert one_pass.graph_read and one_pass.traces_created == per_entry.traces
    assert stored_results(driver, db) == before


@pytest.mark.neo4j
def test_the_write_back_of_a_reassigned_number_is_the_same_either_way(neo4j_db, tmp_path):
    """Every owner's entry reaches x and each of his loans with one responsibility: the
    pass takes only each label's ``max_paths`` best own loans; the graph written is the
    per-entry search's."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(reassigned_case(60).write(tmp_path / "reassigned"), driver, db)
    backend = Neo4jBackend(driver, db)
    per_entry = write_back(backend, max_paths=4, method="per-entry")
    before = stored_results(driver, db)
    assert per_entry.traces == 4 * 61 - (3 + 2 + 1)
    ingest_folder(tmp_path / "reassigned", driver, db, wipe_first=True)  # (no seal)
    one_pass = write_back(backend, max_paths=4)
    assert one_pass.graph_read and one_pass.traces_created == per_entry.traces
    assert stored_results(driver, db) == before


@pytest.mark.neo4j
def test_an_unknown_write_back_method_is_refused_before_anything_is_written(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    with pytest.raises(WriteBackRefused, match="unknown write-back method 'fast'"):
        write_back(Neo4jBackend(driver, db), method="fast")
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry) WHERE e.audit_run IS NOT NULL RETURN count(e) AS n", database_=db
    )
    assert records[0]["n"] == 0
