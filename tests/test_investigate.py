"""Issue 9: audit results written into Neo4j, and the saved investigation queries.

Every saved query runs against the real Neo4j on the Jiang case and on a synthetic
population, and its answers are checked against the library: ``trace_entry`` against
``explain`` (the same node sequence and steps), ``spread_from`` against the
explanations and the audit rows, ``most_harmed`` and ``platform_spillover`` against
aggregations of the audit rows.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from scenario import Scenario
from spillover.audit.batch import audit_rows
from spillover.cli import cli
from spillover.connect import open_folder
from spillover.data.exact import load_folder
from spillover.engines.remedy import remedy
from spillover.engines.search import Explanation, explain_all, explain_entry
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.model import Dataset, Entry, split_ref
from spillover.files.write import restore
from spillover.neo4j.ingest import ingest_dataset, ingest_folder
from spillover.neo4j.saved import (
    RULE_PARAMS,
    list_saved_queries,
    run_saved_query,
    saved_query,
)
from spillover.neo4j.schema import LABELS
from spillover.neo4j.statements import cypher
from spillover.neo4j.store import Neo4jBackend
from spillover.neo4j.writeback import stored_results, write_back
from spillover.policy import default_policy, default_policy_bytes, parse_policy
from spillover.render.remedy import remedy_text
from spillover.rules import COPY_STEP, Verdict
from spillover.synth.generate import generate

KIND_OF_LABEL = {label: kind for kind, label in LABELS.items()}


# ---------------------------------------------------------------------------
# The library's answers
# ---------------------------------------------------------------------------


def listed_person(data: Dataset, entry: Entry) -> str | None:
    """The person an entry lists: the subject, the listed phone's owner that day, or the
    person a listed platform record is matched to."""
    if entry.subject_kind == "person":
        return entry.subject
    if entry.subject_kind == "record":
        match = data.matches.get(entry.subject)
        return match.person_id if match is not None else None
    for period in data.phone_periods.get(entry.subject, ()):
        if period.covers(entry.listed_at):
            return period.owner_id
    return None


def node_refs(e: Explanation, rank: int) -> list[str]:
    steps = e.paths[rank - 1].steps
    return [steps[0].source, *(s.target for s in steps)]


def traced_refs(rows: list[dict[str, Any]], rank: int) -> tuple[list[str], list[str]]:
    """The node sequence and step names of one rank of trace_entry's rows."""
    mine = sorted((r for r in rows if r["rank"] == rank), key=lambda r: r["step"])

    def ref(node: dict[str, Any]) -> str:
        (label,) = node["labels"]
        return f"{KIND_OF_LABEL[label]}:{node.get('id', node.get('number'))}"

    # a step is one relationship, or two for a record's loan (record - person - loan)
    nodes = [ref(mine[0]["path"]["nodes"][0])] + [ref(r["path"]["nodes"][-1]) for r in mine]
    return nodes, [r["rel"] for r in mine]


def came_via(data: Dataset, e: Explanation) -> str | None:
    """Where the best path reached the entry's platform: after a copy, the platform of the
    entry copied; else the partner that shared the default with it; None from its own loan."""
    last = e.paths[0].steps[-1]
    if last.rel == COPY_STEP.rel:
        return data.entries[split_ref(last.source)[1]].platform_id
    route = [split_ref(n)[1] for n in node_refs(e, 1) if split_ref(n)[0] == "platform"]
    here = e.entry.platform_id
    return route[-1] if route[-1] != here else (route[-2] if len(route) > 1 else None)


def check_against_library(neo4j_db: Any, folder: Path, sample: int | None = None) -> None:
    """Write back, then hold every saved query to the library's explanations and audit rows."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    data = load_folder(folder)
    policy = default_policy()
    summary = write_back(Neo4jBackend(driver, db), policy)
    local = open_folder(folder)
    explanations = {e.entry.entry_id: e for e in explain_all(local, policy)}
    audit = {r["entry_id"]: r for r in audit_rows(local, policy)}
    assert summary.entries == len(explanations)
    assert summary.traces == sum(len(e.paths) for e in explanations.values())

    # the stored results are the explanations'
    stored, _, _ = driver.execute_query(
        "MATCH (e:Entry) OPTIONAL MATCH (e)-[t:TRACED_TO]->(l:Loan) "
        "WITH e, t, l ORDER BY t.rank "
        "RETURN e {.*} AS e, collect([t.rank, l.id, t.responsibility, t.hops]) AS traces",
        database_=db,
    )
    assert len(stored) == len(explanations)
    for record in stored:
        e = explanations[record["e"]["id"]]
        props = record["e"]
        assert props["contamination"] == e.contamination == audit[e.entry.entry_id]["contamination"]
        assert props["verdict"] == e.verdict.value == audit[e.entry.entry_id]["verdict"]
        # an unexplained entry stores the audit row's codes (no diagnosis code)
        codes = audit[e.entry.entry_id]["reason_codes"].split()
        assert props["reason_codes"] == (list(e.reason_codes) if e.paths else codes)
        assert " ".join(props["reason_codes"]) == audit[e.entry.entry_id]["reason_codes"]
        assert (props["policy_name"], props["policy_version"], props["policy_digest"]) == (
            policy.name,
            policy.version,
            policy.digest,
        )
        assert props["audited_at"].to_native() == summary.audited_at
        assert [t for t in record["traces"] if t[0] is not None] == [
            [rank, p.origin.loan_id, p.responsibility, p.hops]
            for rank, p in enumerate(e.paths, start=1)
        ]
        best = e.best
        row = audit[e.entry.entry_id]
        assert row["origin_loan_id"] == (best.origin.loan_id if best else None)

    # trace_entry: the same chains as explain, over the stored nodes and relationships
    traced = sorted(i for i, e in explanations.items() if e.paths)
    if sample is not None:
        deep = [i for i in traced if any(p.hops > 1 for p in explanations[i].paths)]
        traced = sorted(set(traced[:: max(1, len(traced) // sample)]) | set(deep[:5]))
    assert traced
    for entry_id in traced:
        e = explanations[entry_id]
        rows = list(run_saved_query(driver, db, "trace_entry", {"entry_id": entry_id}).rows)
        assert {r["rank"] for r in rows} == set(range(1, len(e.paths) + 1))
        for rank in range(1, len(e.paths) + 1):
            nodes, rels = traced_refs(rows, rank)
            assert nodes == node_refs(e, rank), (entry_id, rank)
            assert rels == [s.rel for s in e.paths[rank - 1].steps]

    # spread_from: per defaulter, the entries tracing to their loans, none their own
    expected: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for e in explanations.values():
        person = listed_person(data, e.entry)
        for rank, p in enumerate(e.paths, start=1):
            if person == p.origin.borrower_id:
                continue
            expected[p.origin.borrower_id].add(
                (e.entry.entry_id, person, p.origin.loan_id, rank, p.hops, p.responsibility)
            )
    defaulters = sorted(expected, key=lambda b: (-len(expected[b]), b))
    for borrower in defaulters[:5] if sample is not None else defaulters:
        rows = run_saved_query(driver, db, "spread_from", {"from": borrower}).rows
        got = {
            (
                r["entry_id"],
                r["person_id"],
                r["origin_loan"],
                r["rank"],
                r["hops"],
                r["responsibility"],
            )
            for r in rows
        }
        assert got == expected[borrower], borrower
        assert all(r["person_id"] != borrower for r in rows)
        # its best paths are the audit rows of other people's entries tracing to them
        assert {r["entry_id"] for r in rows if r["rank"] == 1} == {
            i
            for i, row in audit.items()
            if row["origin_borrower_id"] == borrower
            and listed_person(data, explanations[i].entry) != borrower
        }
        for r in rows:
            assert r["contamination"] == audit[r["entry_id"]]["contamination"]
            assert r["verdict"] == audit[r["entry_id"]]["verdict"]
    # and from one loan
    loan_id = next(iter(expected[defaulters[0]]))[2]
    rows = run_saved_query(driver, db, "spread_from", {"from": loan_id}).rows
    assert {r["entry_id"] for r in rows} == {
        x[0] for x in expected[defaulters[0]] if x[2] == loan_id
    }

    # most_harmed: the audit rows' spillover listings per person listed
    harmed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry_id, row in audit.items():
        person = listed_person(data, explanations[entry_id].entry)
        if row["verdict"] == Verdict.SPILLOVER.value and person is not None:
            harmed[person].append(row)
    want = sorted(
        (
            (
                person,
                len(rows),
                sorted({r["platform_id"] for r in rows}),
                max(r["contamination"] for r in rows),
            )
            for person, rows in harmed.items()
        ),
        key=lambda t: (-t[1], -t[3], t[0]),
    )
    got_harmed = run_saved_query(driver, db, "most_harmed", {"limit": str(10**6)}).rows
    assert [
        (r["person_id"], r["listings"], r["platforms"], r["worst_contamination"])
        for r in got_harmed
    ] == want
    assert all(r["n_platforms"] == len(r["platforms"]) for r in got_harmed)
    top = run_saved_query(driver, db, "most_harmed", {"limit": "3"}).rows
    assert [r["person_id"] for r in top] == [w[0] for w in want[:3]]

    # platform_spillover: listings, spillover share, and where the best path came from
    listings = Counter(row["platform_id"] for row in audit.values())
    spill = Counter(
        row["platform_id"] for row in audit.values() if row["verdict"] == Verdict.SPILLOVER.value
    )
    via: Counter[tuple[str, str | None]] = Counter()
    for entry_id, row in audit.items():
        if row["verdict"] != Verdict.SPILLOVER.value:
            continue
        via[(row["platform_id"], came_via(data, explanations[entry_id]))] += 1
    rows = run_saved_query(driver, db, "platform_spillover").rows
    assert {r["platform_id"] for r in rows} == set(data.platforms)
    for r in rows:
        p = r["platform_id"]
        assert (r["listings"], r["spillover"]) == (listings[p], spill[p])
        assert r["share"] == (round(spill[p] / listings[p], 6) if listings[p] else 0.0)
    assert {
        (r["platform_id"], r["via"]): r["via_spillover"] for r in rows if r["via_spillover"]
    } == dict(via)


# ---------------------------------------------------------------------------
# Tests on Neo4j
# ---------------------------------------------------------------------------


@pytest.mark.neo4j
def test_every_saved_query_answers_as_the_library_on_the_jiang_case(neo4j_db):
    ingest_folder(jiang_case_path(), neo4j_db.driver, neo4j_db.settings.database)
    check_against_library(neo4j_db, jiang_case_path())


@pytest.mark.neo4j
@pytest.mark.parametrize("linked", [False, True], ids=["records", "linked"])
def test_every_saved_query_answers_as_the_library_on_the_jiang_records(neo4j_db, tmp_path, linked):
    """Platform records on the routes: an entry that lists a record starts with its match
    (record -MATCHED_TO-> person), a loan named by a record is reached through it
    (person -MATCHED_TO-> record -BORROWED-> loan); before and after ``spillover link``."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    folder = jiang_records_path()
    if linked:
        pytest.importorskip("splink")
        from spillover.link.resolve import link

        folder = tmp_path / "linked"
        link(jiang_records_path(), folder)
    ingest_folder(folder, driver, db)
    check_against_library(neo4j_db, folder)
    e = explain_entry(open_folder(folder), "E-QT-J")
    stored, _, _ = driver.execute_query(
        "MATCH (:Entry {id: 'E-QT-J'})-[t:TRACED_TO]->(l:Loan) RETURN t {.*} AS t, l.id AS loan "
        "ORDER BY t.rank",
        database_=db,
    )
    assert [r["t"]["rank"] for r in stored] == list(range(1, len(e.paths) + 1))
    for record, path in zip(stored, e.paths, strict=True):
        t = record["t"]
        assert (t["labels"][:2], t["keys"][:2]) == (
            ["Record", "Person"],
            ["TY-R-XU", path.steps[0].target.split(":")[1]],
        )
        assert (t["steps"][0], t["walks"][0]) == ("MATCHED_TO", "MATCHED_TO")
        assert t["keys"] == [
            split_ref(n)[1] for n in [path.steps[0].source, *(s.target for s in path.steps)]
        ]
    rows = run_saved_query(driver, db, "trace_entry", {"entry_id": "E-QT-J"}).rows
    first = next(r for r in rows if (r["rank"], r["step"]) == (1, 1))
    assert first["path"]["relationships"][0]["type"] == "MATCHED_TO"
    assert first["path"]["relationships"][0]["matched_by"] == e.matches["TY-R-XU"].matched_by
    # Xu Yan's own QuickCash loan names him by QuickCash's record
    rows = run_saved_query(driver, db, "trace_entry", {"entry_id": "E-QC-XU"}).rows
    assert [r["rel"] for r in rows if r["rank"] == 1][:2] == ["MATCHED_TO", "BORROWED"]
    borrowed = next(r for r in rows if (r["rank"], r["step"]) == (1, 2))
    assert [n.get("id") for n in borrowed["path"]["nodes"]] == ["QC-R-XU", "xu_yan", "XY-QC-1"]
    assert [x["type"] for x in borrowed["path"]["relationships"]] == ["MATCHED_TO", "BORROWED"]


@pytest.mark.neo4j
@pytest.mark.parametrize(
    "records",
    [
        False,
        True,
    ],
    ids=["people", "records"],
)
def test_every_saved_query_answers_as_the_library_on_a_synthetic_population(
    neo4j_db, tmp_path, records
):
    folder = tmp_path / "synth"
    generate(2500, 7, folder, records=records)
    ingest_dataset(load_folder(folder), neo4j_db.driver, neo4j_db.settings.database)
    check_against_library(neo4j_db, folder, sample=40)


def copied_twice() -> Scenario:
    """Xu's defaulted loan at lender p1 names Jiang's phone; p1 lists the phone (E1), broker
    p2 copies E1 into E2 on Jiang, bank p3 copies E2 into E3."""
    s = Scenario()
    s.person("xu")
    s.person("jiang")
    s.platform("p1")
    s.platform("p2", "data_broker")
    s.platform("p3", "bank")
    phone = s.phone("jiang", "+8613957112345")
    s.phone("xu", "+8615068001234")
    s.loan("L1", "p1", "xu", "2023-01-01", applicant_phone="+8615068001234", status_at="2023-03-01")
    s.link("L1", phone, "emergency_contact")
    s.entry("E1", "p1", phone, "2023-04-01", kind="phone")
    s.entry("E2", "p2", "jiang", "2023-05-01", copied_from="E1")
    s.entry("E3", "p3", "jiang", "2023-06-01", copied_from="E2")
    return s


@pytest.mark.neo4j
def test_platform_spillover_names_the_platform_of_the_entry_a_copy_of_a_copy_copied(
    neo4j_db, tmp_path
):
    """E3 copied E2 (on p2), which copied E1 (on p1): p3's spillover came via p2, not p1."""
    folder = copied_twice().write(tmp_path / "data")
    ingest_folder(folder, neo4j_db.driver, neo4j_db.settings.database)
    check_against_library(neo4j_db, folder)
    rows = run_saved_query(neo4j_db.driver, neo4j_db.settings.database, "platform_spillover").rows
    assert {r["platform_id"]: (r["via"], r["via_spillover"]) for r in rows} == {
        "p1": (None, 1),
        "p2": ("p1", 1),
        "p3": ("p2", 1),
    }


def test_the_remedy_says_a_copy_of_a_copy_came_from_the_platform_it_copied(graph):
    """The library's side of platform_spillover's `via`: the listing platform's contact."""
    r = remedy(graph(copied_twice()), "E3")
    assert [(c.platform_id, c.how, c.received_from) for c in r.contacts] == [
        ("p1", "origin", None),
        ("p2", "copy", "p1"),
        ("p3", "copy", "p2"),
    ]
    # every platform it travelled through by its name, p2 too (it is on no path: it only
    # copied the entry; the remedy's text said "p2 [p2]")
    assert {c.platform_id: r.names.get(f"platform:{c.platform_id}") for c in r.contacts} == {
        "p1": "P1",
        "p2": "P2",
        "p3": "P3",
    }
    assert "P2 [p2], copied it from P1" in remedy_text(r)


@pytest.mark.neo4j
def test_spread_from_xu_yan_lists_jiangs_entries_and_no_own_default(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    write_back(Neo4jBackend(driver, db))
    rows = run_saved_query(driver, db, "spread_from", {"from": "xu_yan"}).rows
    entries = {r["entry_id"] for r in rows}
    jiangs = {"E-QT-J", "E-WL-J", "E-ZM-J", "E-TY-J", "E-AX-PH", "E-QC-PH"}
    assert jiangs <= entries
    assert "jiang" in {r["person_id"] for r in rows}
    assert all(r["person_id"] != "xu_yan" for r in rows)
    data = load_folder(jiang_case_path())
    own = {i for i, e in data.entries.items() if listed_person(data, e) == "xu_yan"}
    assert own and not own & entries
    # trace_entry draws Jiang -> phone -> Xu Yan's loan -> lender -> broker -> bank
    rows = run_saved_query(driver, db, "trace_entry", {"entry_id": "E-WL-J"}).rows
    best = sorted((r for r in rows if r["rank"] == 1), key=lambda r: r["step"])
    labels = [best[0]["path"]["nodes"][0]["labels"]] + [
        r["path"]["nodes"][1]["labels"] for r in best
    ]
    assert labels == [
        ["Person"],
        ["Phone"],
        ["Loan"],
        ["Platform"],
        ["Platform"],
        ["Platform"],
        ["Entry"],
    ]
    assert [r["path"]["relationships"][0]["type"] for r in best] == [
        "OWNS",
        "LINKS",
        "AT",
        "SHARES_WITH",
        "SHARES_WITH",
        "ON",
    ]


@pytest.mark.neo4j
def test_write_back_twice_gives_the_same_graph_and_another_policy_replaces_it(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    state = stored_results(driver, db)
    second = write_back(backend)
    assert stored_results(driver, db) == state
    assert (first.entries, first.traces) == (second.entries, second.traces)
    count, _, _ = driver.execute_query(
        "MATCH ()-[t:TRACED_TO]->() RETURN count(t) AS n", database_=db
    )
    assert count[0]["n"] == first.traces

    # another policy: scores replaced, one TRACED_TO per entry path under it, none left over
    text = default_policy_bytes().decode()
    text = text.replace('version = "1.0.0"', 'version = "2.0.0"')
    text = text.replace("emergency_contact = 0.05", "emergency_contact = 0.08")
    text = text.replace("max_paths = 10", "max_paths = 2")
    other = parse_policy(text.encode(), "other.toml")
    write_back(backend, other)
    local = open_folder(jiang_case_path())
    want = {e.entry.entry_id: e for e in explain_all(local, other)}
    after = {s["id"]: s for s in stored_results(driver, db)}
    assert after["E-WL-J"]["props"]["contamination"] == pytest.approx(0.92)
    for entry_id, e in want.items():
        props = after[entry_id]["props"]
        assert props["contamination"] == e.contamination
        assert (props["policy_version"], props["policy_digest"]) == ("2.0.0", other.digest)
        assert [t[0] for t in after[entry_id]["traces"] if t[0]] == [
            p.origin.loan_id for p in e.paths
        ]
    assert max(len([t for t in s["traces"] if t[0]]) for s in after.values()) == 2


@pytest.mark.neo4j
def test_a_rerun_keeps_each_unchanged_traced_to_and_replaces_each_altered_one(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    assert (first.traces_created, first.traces_deleted) == (first.traces, 0)
    state = stored_results(driver, db)
    # a rerun whose paths did not move writes no relationship: every one is kept
    again = write_back(backend)
    assert (again.traces, again.traces_created, again.traces_deleted) == (first.traces, 0, 0)
    assert again.entries_unchanged == again.entries  # by their digest: none sent
    assert stored_results(driver, db) == state

    # altered by hand: a property changed, one missing (null), one extra; one deleted;
    # one doubled (the same loan and properties twice): the rerun puts the graph back
    # (recreates the first four, deletes the three altered and one of the two equal)
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry)-[t:TRACED_TO]->() RETURN elementId(t) AS id ORDER BY e.id, t.rank",
        database_=db,
    )
    ids = [r["id"] for r in records]
    assert len(ids) == first.traces >= 5
    alter = [
        "SET t.hops = 99",
        "REMOVE t.periods",
        "SET t.note = 'x'",
        "DELETE t",
        "CREATE (e)-[d:TRACED_TO]->(l) SET d = properties(t)",
    ]
    for id_, change in zip(ids, alter, strict=False):
        driver.execute_query(
            "MATCH (e:Entry)-[t:TRACED_TO]->(l:Loan) WHERE elementId(t) = $id " + change,
            id=id_,
            database_=db,
        )
    assert stored_results(driver, db) != state
    # check_traces: every entry's TRACED_TO read back and compared, digest or not
    fixed = write_back(backend, check_traces=True)
    assert (fixed.traces_created, fixed.traces_deleted) == (4, 4)
    assert fixed.entries_unchanged == 0
    assert stored_results(driver, db) == state
    count, _, _ = driver.execute_query(
        "MATCH ()-[t:TRACED_TO]->() RETURN count(t) AS n", database_=db
    )
    assert count[0]["n"] == first.traces


def _traced(driver: Any, db: str) -> list[tuple[str, int, int]]:
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry)-[t:TRACED_TO]->() RETURN e.id AS e, t.rank AS r, t.hops AS h "
        "ORDER BY e, r",
        database_=db,
    )
    return [(r["e"], r["r"], r["h"]) for r in records]


@pytest.mark.neo4j
def test_a_rerun_leaves_the_traces_its_digest_finds_unchanged_and_writes_what_moved(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    state = stored_results(driver, db)
    (a, rank_a, _), *_ = traced = _traced(driver, db)
    b, rank_b, _ = next(t for t in traced if t[0] != a)
    one = "MATCH (e:Entry {id: $e})-[t:TRACED_TO {rank: $r}]->() "
    driver.execute_query(one + "SET t.hops = 99", e=a, r=rank_a, database_=db)
    driver.execute_query(one + "DELETE t", e=b, r=rank_b, database_=db)
    # by the digest: entry b (one TRACED_TO fewer) is written again; entry a, whose
    # count and digest did not move, is left as it is (a property altered by hand)
    again = write_back(backend)
    assert (again.traces_created, again.traces_deleted) == (1, 0)
    assert again.entries_unchanged == again.entries - 1
    assert (a, rank_a, 99) in _traced(driver, db)
    assert len(_traced(driver, db)) == first.traces
    # a write-back that does not keep the digest (an older spillover) sets audit_run and
    # leaves traces_digest: the digest no longer holds, and the entry is compared again
    driver.execute_query(
        "MATCH (e:Entry {id: $e}) SET e.audit_run = 'an-older-spillover'", e=a, database_=db
    )
    fixed = write_back(backend)
    assert (fixed.traces_created, fixed.traces_deleted) == (1, 1)
    assert fixed.entries_unchanged == fixed.entries - 1
    assert stored_results(driver, db) == state


@pytest.mark.neo4j
def test_a_rerun_with_other_weights_stores_what_a_first_write_would(neo4j_db):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    other = write_back(backend, other_policy())  # the same paths, other responsibilities
    assert other.traces == first.traces
    assert other.entries_unchanged < other.entries
    assert other.traces_created == other.traces_deleted > 0
    state = stored_results(driver, db)
    driver.execute_query("MATCH ()-[t:TRACED_TO]->() DELETE t", database_=db)
    fresh = write_back(backend, other_policy())
    assert (fresh.traces_created, fresh.entries_unchanged) == (fresh.traces, 0)
    assert stored_results(driver, db) == state


def _marks(driver: Any, db: str) -> dict[str, Any]:
    """Every entry's run marks: the runs, the audit times and how many digests."""
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry) RETURN collect(DISTINCT e.audit_run) AS runs, "
        "collect(DISTINCT e.audited_at) AS ats, count(e.traces_digest) AS digests",
        database_=db,
    )
    return records[0].data()


@pytest.mark.neo4j
def test_a_rerun_over_the_graph_the_last_run_read_makes_no_path_and_writes_its_marks(neo4j_db):
    """The last completed run's seal holds (the same graph read, the same policy, every
    entry's results as it left them): the rerun writes only its marks, and the digests it
    moved to itself hold for the runs after it, whichever way they go."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    state = stored_results(driver, db)
    assert not first.graph_unchanged
    again = write_back(backend)
    assert again.graph_unchanged
    assert (again.entries, again.traces, again.verdicts) == (
        first.entries,
        first.traces,
        first.verdicts,
    )
    assert (again.entries_unchanged, again.traces_created, again.traces_deleted) == (16, 0, 0)
    assert stored_results(driver, db) == state
    marks = _marks(driver, db)
    assert marks["runs"] == [again.run] and marks["digests"] == 16
    assert [a.to_native() for a in marks["ats"]] == [again.audited_at]
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", again.run)
    # a person nobody's path meets: every path made, each found unchanged by its digest
    # (moved to the rerun's id without the traces), and sealed again
    driver.execute_query("CREATE (:Person {id: 'a-stranger'})", database_=db)
    third = write_back(backend)
    assert not third.graph_unchanged
    assert (third.entries_unchanged, third.traces_created, third.traces_deleted) == (16, 0, 0)
    fourth = write_back(backend)
    assert fourth.graph_unchanged
    assert stored_results(driver, db) == state
    # the rerun's seal is its own: one run's marks alone make no seal for the next
    fifth = write_back(backend, check_traces=True)  # reads back every TRACED_TO
    assert not fifth.graph_unchanged and fifth.entries_unchanged == 0
    assert stored_results(driver, db) == state


@pytest.mark.neo4j
def test_a_rerun_after_which_nothing_was_committed_reads_no_graph(neo4j_db):
    """A completed run records its last commit (results_chain) when nobody else committed
    during it; the next run whose own start is the commit right after that run's finish
    writes its marks without reading the graph or the entries: the same results, every
    entry's marks and traces digest moved to it (a later run that reads the graph finds
    the seal holding by those digests); a commit in between, even one that changes
    nothing the paths follow, makes the run read the graph again."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    runs = _sealed_rerun(backend)
    state = stored_results(driver, db)
    sealed = runs[-1]
    assert sealed.graph_unchanged and sealed.read_seconds == 0.0
    assert (sealed.entries, sealed.traces, sealed.verdicts) == (
        runs[0].entries,
        runs[0].traces,
        runs[0].verdicts,
    )
    assert (sealed.entries_unchanged, sealed.traces_created, sealed.traces_deleted) == (16, 0, 0)
    marks = _marks(driver, db)
    assert marks["runs"] == [sealed.run] and marks["digests"] == 16
    assert [a.to_native() for a in marks["ats"]] == [sealed.audited_at]
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", sealed.run)
    assert stored_results(driver, db) == state
    # the next one too (its own commits follow each other)
    assert not write_back(backend).graph_read
    # a commit that moves nothing the paths follow: the graph read, the seal holding by
    # the digests the runs without a read moved
    _commit_elsewhere(driver, db)
    read = write_back(backend)
    assert read.graph_read and read.graph_unchanged
    assert not write_back(backend).graph_read
    checked = write_back(backend, check_traces=True)  # every path made and compared
    assert checked.graph_read and (checked.traces_created, checked.traces_deleted) == (0, 0)
    assert stored_results(driver, db) == state


@given(total=st.integers(0, 3_000_000), size=st.integers(1, 200_000))
def test_the_sealed_parts_cover_every_digest_once(total, size):
    """``sealed_parts``: one part for up to ``size`` entries; else ranges of the first two
    hex digits of the digests, consecutive from the first to the last, as many as needed
    for parts of about ``size`` entries (at most 256)."""
    from spillover.neo4j.writeback import sealed_parts

    parts = sealed_parts(total, size)
    if total <= size:
        assert parts == [(None, None)]
        return
    assert parts[0][0] is None and parts[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert len(parts) == min(256, -(-total // size))
    firsts = [f"{b:02x}" for b in range(256)]
    owners = [
        [
            k
            for k, (lo, hi) in enumerate(parts)
            if (lo is None or f >= lo) and (hi is None or f < hi)
        ]
        for f in firsts
    ]
    assert all(len(o) == 1 for o in owners)


@pytest.mark.neo4j
@pytest.mark.parametrize("meanwhile", [False, True], ids=["in parts", "a commit between parts"])
def test_a_rerun_after_which_nothing_was_committed_marks_many_entries_in_parts(
    neo4j_db, monkeypatch, meanwhile
):
    """More entries than ``SEALED_PART``: the marks go in transactions one after the
    other, each checking before it commits that nobody committed since the run's last
    one; a commit between two parts (a TRACED_TO deleted by hand) rolls back the part
    being written, and the run reads the graph and writes what moved."""
    from spillover.neo4j import writeback

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    _sealed_rerun(backend)
    state = stored_results(driver, db)
    monkeypatch.setattr(writeback, "SEALED_PART", 5)  # 16 entries: 4 parts
    seen: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "write-back":
            seen.append(done)
        if meanwhile and stage == "write-back" and 0 < done < total and len(seen) == 2:
            driver.execute_query(
                "MATCH (e:Entry)-[t:TRACED_TO {rank: 1}]->() WITH t LIMIT 1 DELETE t",
                database_=db,
            )

    again = write_back(backend, progress=progress)
    if meanwhile:
        assert again.graph_read and (again.traces_created, again.traces_deleted) == (1, 0)
    else:
        assert not again.graph_read and again.graph_unchanged
        assert len(seen) == 1 + 4 and seen[-1] == 16
        assert (again.entries, again.traces, again.entries_unchanged) == (16, 51, 16)
        assert _marks(driver, db)["runs"] == [again.run]
    assert stored_results(driver, db) == state
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", again.run)


def _commit_elsewhere(driver: Any, db: str) -> None:
    """Commit two transactions that leave the graph as it was (a node made, then
    deleted): the next write-back can no longer tell from the commits that nothing
    moved, and reads the graph."""
    driver.execute_query("CREATE (:Scratch {id: 'scratch'})", database_=db)
    driver.execute_query("MATCH (s:Scratch) DELETE s", database_=db)


def _sealed_rerun(backend: Neo4jBackend) -> list[Any]:
    """Write back until a run finds nothing committed since the last one finished and
    writes its marks without reading the graph (the first runs on a fresh database may
    make Neo4j commit new property names of their own between a run's last write and its
    finish): the runs, the last of them that one. At most four."""
    runs = [write_back(backend)]
    while runs[-1].graph_read and len(runs) < 4:
        runs.append(write_back(backend))
    assert not runs[-1].graph_read, [(r.graph_read, r.graph_unchanged) for r in runs]
    return runs


def _seals(driver: Any, db: str) -> dict[str, str]:
    """The seals on the dataset marker (``results_graph``, ``results_read``)."""
    records, _, _ = driver.execute_query(
        "MATCH (d:Dataset) RETURN d.results_graph AS graph, d.results_read AS read", database_=db
    )
    return records[0].data()


def _rows(columns: Any) -> list[tuple[str, ...]]:
    """The loan links of ``columns`` in the order read."""
    return list(zip(columns.link_loan.tolist(), columns.link_phone.tolist(), strict=True))


@pytest.mark.neo4j
def test_a_rerun_whose_reads_neo4j_planned_again_finds_the_graph_unchanged(neo4j_db):
    """Neo4j returns the rows of a read in the order of its plan, and plans a read again
    when its statistics move (here: its plans dropped, made first over the empty graph,
    then over this one): the rerun reads the same graph in another order, and its seal
    still holds (the seal digests each table's rows in an order of its own), as it
    should: every path made from the rows in that order is the one stored."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    backend = Neo4jBackend(driver, db)
    driver.execute_query("CALL db.clearQueryCaches()", database_=db)
    backend.columns()  # every read planned over an empty graph
    ingest_folder(jiang_case_path(), driver, db)
    read_first = _rows(backend.columns())
    first = write_back(backend)
    state = stored_results(driver, db)
    seals = _seals(driver, db)
    driver.execute_query("CALL db.clearQueryCaches()", database_=db)
    read_again = _rows(backend.columns())  # planned over this graph
    assert read_again != read_first and sorted(read_again) == sorted(read_first)
    _commit_elsewhere(driver, db)  # (else the rerun would not read the graph at all)
    again = write_back(backend)
    assert (first.graph_unchanged, again.graph_unchanged) == (False, True)
    assert (again.entries_unchanged, again.traces_created, again.traces_deleted) == (16, 0, 0)
    assert stored_results(driver, db) == state
    # the seal of the rows as read moved with their order; the seal of the graph did not
    moved = _seals(driver, db)
    assert moved["graph"] == seals["graph"] and moved["read"] != seals["read"]
    # without the seal of the rows as read, the seal of the graph alone holds
    driver.execute_query("MATCH (d:Dataset) REMOVE d.results_read", database_=db)
    assert write_back(backend).graph_unchanged
    assert _seals(driver, db) == moved
    # what the seal stands for: the paths made from the rows in this order are the same
    checked = write_back(backend, check_traces=True)  # every path made, every trace read
    assert (checked.traces_created, checked.traces_deleted) == (0, 0)
    assert stored_results(driver, db) == state


@pytest.mark.neo4j
@pytest.mark.parametrize(
    "change",
    [
        "a loan repaid by hand",
        "fewer paths",
        "another policy",
        "one search per entry",
        "the seal removed",
        "an entry's run altered",
    ],
)
def test_a_rerun_makes_every_path_when_the_seal_does_not_hold(neo4j_db, change):
    """What the seal covers: a change to the graph made in Cypher (no ingest, no data
    version raised), the paths kept, the policy; the per-entry method and a seal or an
    entry's run that is not the last run's. Each time the run makes every path, and
    stores what a first write-back of the same graph stores. It starts after a run that
    found nothing committed since the one before: each change (a commit, or other
    parameters) makes the next run read the graph."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    _sealed_rerun(backend)
    before = stored_results(driver, db)
    args: dict[str, Any] = {}
    if change == "a loan repaid by hand":
        driver.execute_query(
            "MATCH (l:Loan) WHERE l.status IN ['defaulted', 'overdue'] "
            "WITH l ORDER BY l.id LIMIT 1 SET l.status = 'repaid'",
            database_=db,
        )
    elif change == "fewer paths":
        args = {"max_paths": 1}
    elif change == "another policy":
        args = {"policy": other_policy()}
    elif change == "one search per entry":
        args = {"method": "per-entry"}
    elif change == "the seal removed":
        driver.execute_query("MATCH (d:Dataset) REMOVE d.results_graph", database_=db)
    else:  # as an older spillover's write-back of one entry leaves it
        driver.execute_query(
            "MATCH (e:Entry) WITH e ORDER BY e.id LIMIT 1 SET e.audit_run = 'older'",
            database_=db,
        )
    again = write_back(backend, **args)
    assert not again.graph_unchanged and again.graph_read
    state = stored_results(driver, db)
    driver.execute_query("MATCH ()-[t:TRACED_TO]->() DELETE t", database_=db)
    fresh = write_back(backend, **args)
    assert not fresh.graph_unchanged
    assert fresh.traces_created == fresh.traces
    assert stored_results(driver, db) == state
    moves = change in ("a loan repaid by hand", "fewer paths", "another policy")
    assert (state != before) == moves


#: the graph a rerun finds: nothing committed since the last run (it reads no graph),
#: as the last run read it (something committed, nothing the paths follow moved: its
#: seal holds), or with a person added (its seal does not hold)
RERUN_GRAPHS = ["nothing committed since", "as the last run read it", "with a person added"]


def _before_the_marks(stage: str, done: int, total: int) -> bool:
    """Whether a write-back's progress says it is about to write (its graph read, or
    none to read)."""
    return (stage == "read graph" and done == total) or (stage == "write-back" and done == 0)


@pytest.mark.neo4j
@pytest.mark.parametrize("graph", RERUN_GRAPHS)
def test_traces_that_move_between_the_read_and_the_write_are_written_in_full(neo4j_db, graph):
    """A TRACED_TO deleted after the run read the graph: on a graph the last run read
    (the run's marks only, by its seal) that batch is rolled back and the run makes
    every path; after a run that read nothing (nothing committed since the last), the
    marks are written, the commit between them is seen and the run reads the graph and
    makes every path; on a graph that moved elsewhere (every path made) the batch is
    sent again with every trace. Each time the graph ends as a full write leaves it."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    first = _sealed_rerun(backend)[0]
    state = stored_results(driver, db)
    if graph == "as the last run read it":
        _commit_elsewhere(driver, db)
    elif graph == "with a person added":  # no entry's paths move, the seal no longer holds
        driver.execute_query("CREATE (:Person {id: 'a-stranger'})", database_=db)

    done_once: list[bool] = []

    def meanwhile(stage: str, done: int, total: int) -> None:
        if _before_the_marks(stage, done, total) and not done_once:  # all hold; now not
            done_once.append(True)
            driver.execute_query(
                "MATCH (e:Entry)-[t:TRACED_TO {rank: 1}]->() WITH t LIMIT 1 DELETE t",
                database_=db,
            )

    again = write_back(backend, progress=meanwhile)
    assert not again.graph_unchanged and again.graph_read
    assert (again.traces_created, again.traces_deleted) == (1, 0)
    if graph != "with a person added":  # read again: only the moved entry in full
        assert again.entries_unchanged == again.entries - 1
    else:
        assert again.entries_unchanged == 0  # its batch sent again, every trace with it
    assert stored_results(driver, db) == state
    assert len(_traced(driver, db)) == first.traces


def _jiang_written_back(neo4j_db: Any) -> tuple[Any, str, Neo4jBackend, dict[str, Any]]:
    """The Jiang case ingested and written back once: the driver, the database, the
    backend and the stored results by entry id."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    write_back(backend)
    return driver, db, backend, {s["id"]: s for s in stored_results(driver, db)}


@pytest.mark.neo4j
def test_a_rerun_writes_an_entry_whose_answer_moved_in_full_and_the_rest_briefly(neo4j_db):
    """An entry whose traces and stored answer did not move gets only this run's marks
    (writeback_unchanged); one whose answer was altered by hand, or that holds a stale_*
    property, is written in full (its traces kept by their digest): the same graph as if
    every entry had been written in full."""
    driver, db, backend, state = _jiang_written_back(neo4j_db)
    moved, stale, *_ = sorted(state)
    driver.execute_query(
        "MATCH (e:Entry {id: $e}) SET e.contamination = 0.123", e=moved, database_=db
    )
    driver.execute_query(
        "MATCH (e:Entry {id: $e}) SET e.stale_verdict = 'x'", e=stale, database_=db
    )
    again = write_back(backend)
    assert again.entries_unchanged == again.entries  # every entry's traces left as they were
    after = {s["id"]: s for s in stored_results(driver, db)}
    assert after[moved]["props"]["previous_contamination"] == 0.123
    assert after[moved]["props"]["changed_at"] == again.audited_at
    for key in ("contamination", "verdict", "reason_codes"):
        assert after[moved]["props"][key] == state[moved]["props"][key]
    assert after[stale] == state[stale]  # its stale_verdict gone
    assert {k: v for k, v in after.items() if k != moved} == {
        k: v for k, v in state.items() if k != moved
    }
    marks, _, _ = driver.execute_query(
        "MATCH (e:Entry) RETURN collect(DISTINCT e.audit_run) AS runs, "
        "collect(DISTINCT e.audited_at) AS ats, count(e.traces_digest) AS digests, "
        "count(e) AS entries",
        database_=db,
    )
    assert marks[0]["runs"] == [again.run]
    assert [a.to_native() for a in marks[0]["ats"]] == [again.audited_at]
    assert marks[0]["digests"] == marks[0]["entries"] == again.entries
    third = write_back(backend)  # every entry the short way now
    assert third.entries_unchanged == third.entries
    assert {s["id"]: s for s in stored_results(driver, db)} == after


@pytest.mark.neo4j
@pytest.mark.parametrize("graph", RERUN_GRAPHS)
def test_an_answer_that_moves_between_the_read_and_the_write_is_written_in_full(neo4j_db, graph):
    driver, db, backend, state = _jiang_written_back(neo4j_db)
    moved = min(state)
    if graph == "nothing committed since":
        _sealed_rerun(backend)
    elif graph == "as the last run read it":
        _commit_elsewhere(driver, db)
    else:
        driver.execute_query("CREATE (:Person {id: 'a-stranger'})", database_=db)

    done_once: list[bool] = []

    def meanwhile(stage: str, done: int, total: int) -> None:
        if _before_the_marks(stage, done, total) and not done_once:  # all hold; now not
            done_once.append(True)
            driver.execute_query(
                "MATCH (e:Entry {id: $e}) SET e.contamination = 0.123", e=moved, database_=db
            )

    again = write_back(backend, progress=meanwhile)
    assert not again.graph_unchanged and again.graph_read
    if graph != "with a person added":
        # the run's marks rolled back, the entries read again: the moved answer written in
        # full, its traces (and every other entry's) kept by their digest
        assert (again.entries_unchanged, again.traces_created, again.traces_deleted) == (16, 0, 0)
    else:
        # writeback_unchanged found the answer moved: the batch sent again, every trace with it
        assert (again.entries_unchanged, again.traces_created, again.traces_deleted) == (0, 0, 0)
    after = {s["id"]: s for s in stored_results(driver, db)}
    assert after[moved]["props"]["contamination"] == state[moved]["props"]["contamination"]
    assert after[moved]["props"]["previous_contamination"] == 0.123
    assert {k: v for k, v in after.items() if k != moved} == {
        k: v for k, v in state.items() if k != moved
    }


@given(total=st.integers(0, 5000), size=st.integers(1, 2000))
def test_the_marks_transactions_cover_every_entry_once(total, size):
    """``mark_parts``: consecutive parts from the first entry to the last, none larger
    than ``size``, at least as many as writers while there are entries enough."""
    from spillover.neo4j.writeback import MARK_WRITERS, mark_parts

    parts = mark_parts(total, size)
    assert [p for part in parts for p in range(*part)] == list(range(total))
    assert all(0 < stop - start <= size for start, stop in parts)
    assert len(parts) >= min(MARK_WRITERS, total)


@pytest.mark.neo4j
def test_a_rerun_over_a_graph_without_entries_finds_it_unchanged(neo4j_db, tmp_path):
    """No blacklist entry at all: the rerun finds the seal holding and has no mark to
    write (it divided the entries by its number of marks transactions, none, and
    failed with ZeroDivisionError)."""
    import shutil

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    folder = tmp_path / "no-entries"
    shutil.copytree(jiang_case_path(), folder)
    header = (folder / "blacklist.csv").read_text(encoding="utf-8").splitlines()[0]
    (folder / "blacklist.csv").write_text(header + "\n", encoding="utf-8")
    ingest_folder(folder, driver, db)
    backend = Neo4jBackend(driver, db)
    first = write_back(backend)
    again = write_back(backend)
    assert (first.entries, first.graph_unchanged) == (0, False)
    assert (again.entries, again.graph_unchanged) == (0, True)
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", again.run)


@pytest.mark.neo4j
@pytest.mark.parametrize("batch_size", [None, 1], ids=["one clearing", "a clearing per entry"])
def test_an_entry_the_run_did_not_see_keeps_no_stale_result(neo4j_db, batch_size):
    """With batches of one entry the clearing fills its transaction and goes on in the
    next, which finishes the run."""
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    write_back(backend)
    # an entry removed from the data takes its results with it
    driver.execute_query("MATCH (e:Entry {id: 'E-WL-J'}) DETACH DELETE e", database_=db)
    # an entry that carries an older run's results but is not in this run's read of the graph
    # (ingested while the run was writing): simulated by writing back before it exists
    driver.execute_query(
        "MATCH (l:Loan {id: 'XY-AX-1'}) "
        "CREATE (e:Entry {id: 'E-LATE', platform_id: 'anxin', subject_kind: 'person', "
        "subject: 'jiang', listed_at: date('2024-01-01'), verdict: 'stale', "
        "contamination: 0.5, audited_at: datetime('2020-01-01T00:00:00Z')})"
        "-[:TRACED_TO {rank: 1}]->(l)",
        database_=db,
    )

    class Without:  # the graph as read before E-LATE arrived
        def __init__(self, inner: Neo4jBackend) -> None:
            self.inner = inner
            self.driver, self.database = inner.driver, inner.database

        def columns(self) -> Any:
            from dataclasses import replace

            import numpy as np

            cols = self.inner.columns()
            keep = np.asarray(cols.entry_ids) != "E-LATE"
            return replace(
                cols,
                **{
                    f: np.asarray(getattr(cols, f))[keep]
                    for f in (
                        "entry_ids",
                        "entry_platform",
                        "entry_kind",
                        "entry_subject",
                        "entry_listed",
                        "entry_copied_from",
                    )
                },
            )

    sizes = {} if batch_size is None else {"batch_size": batch_size}
    summary = write_back(Without(backend), **sizes)  # type: ignore[arg-type]
    assert summary.cleared == 1
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", summary.run)
    late, _, _ = driver.execute_query(
        "MATCH (e:Entry {id: 'E-LATE'}) RETURN e.verdict AS v, e.audited_at AS at, "
        "COUNT { (e)-[:TRACED_TO]->() } AS traces",
        database_=db,
    )
    assert late[0].data() == {"v": None, "at": None, "traces": 0}
    gone, _, _ = driver.execute_query(
        "MATCH (e:Entry {id: 'E-WL-J'}) RETURN count(e) AS n", database_=db
    )
    assert gone[0]["n"] == 0


@pytest.mark.neo4j
def test_query_command_formats_and_errors(neo4j_env, tmp_path):
    runner = CliRunner()
    driver, db = neo4j_env.driver, neo4j_env.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    done = runner.invoke(cli, ["audit", "--write-back", "--format", "json"])
    assert done.exit_code == 0, done.output
    first = json.loads(done.output)
    assert first["entries"] == 16
    assert (first["traces_created"], first["traces_deleted"]) == (first["traces"], 0)
    again = json.loads(runner.invoke(cli, ["audit", "--write-back", "--format", "json"]).output)
    assert (again["traces"], again["traces_created"], again["traces_deleted"]) == (
        first["traces"],
        0,
        0,
    )
    assert again["entries_unchanged"] == 16
    assert (first["graph_unchanged"], again["graph_unchanged"]) == (False, True)
    assert first["graph_read"] is True
    # nothing committed since a run: the runs after it read no graph (at the latest the
    # third: Neo4j commits a property name a run uses first by itself)
    runs = [json.loads(runner.invoke(cli, ["audit", "--write-back", "--format", "json"]).output)]
    while runs[-1]["graph_read"] and len(runs) < 3:
        runs.append(
            json.loads(runner.invoke(cli, ["audit", "--write-back", "--format", "json"]).output)
        )
    assert (runs[-1]["graph_read"], runs[-1]["graph_unchanged"]) == (False, True)
    assert runs[-1]["entries"] == runs[-1]["entries_unchanged"] == 16
    done = runner.invoke(cli, ["audit", "--write-back", "--check-traces", "--format", "json"])
    checked = json.loads(done.output)
    assert (checked["traces_created"], checked["entries_unchanged"]) == (0, 0)
    assert checked["graph_unchanged"] is False and checked["graph_read"] is True
    done = runner.invoke(
        cli, ["query", "trace_entry", "--param", "entry_id=E-WL-J", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    rows = json.loads(done.output)
    assert rows[0]["rank"] == 1 and rows[0]["path"]["nodes"][0]["id"] == "jiang"
    text = runner.invoke(cli, ["query", "trace_entry", "--param", "entry_id=E-WL-J"])
    assert "(Person jiang)-[:OWNS]->(Phone +8613957112345)" in text.output
    out = tmp_path / "harmed.csv"
    done = runner.invoke(
        cli, ["query", "most_harmed", "--param", "limit=5", "--format", "csv", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert table[0]["person_id"] == "jiang" and table[0]["listings"] == "11"
    stdout = runner.invoke(cli, ["query", "most_harmed", "--param", "limit=5", "--format", "csv"])
    assert stdout.output == out.read_text(encoding="utf-8")
    # a name that a spreadsheet would run is neutralized in CSV
    driver.execute_query("MATCH (p:Person {id: 'jiang'}) SET p.name = '=cmd()'", database_=db)
    cells = runner.invoke(cli, ["query", "most_harmed", "--format", "csv"]).output
    assert "'=cmd()" in cells
    assert restore("'=cmd()") == "=cmd()"
    # the red-flag queries of spillover findings run too, with the parameters it passes
    done = runner.invoke(cli, ["query", "unverified_applicant_phone", "--format", "json"])
    assert done.exit_code == 0, done.output
    assert "+8613957112345" in done.output
    done = runner.invoke(cli, ["query", "shared_phone_hubs", "--param", "min_borrowers=1"])
    assert done.exit_code == 0 and "+8613957112345" in done.output, done.output
    # errors: one line, exit 1
    for args, message in (
        (["query", "trace_entry"], "needs --param entry_id"),
        (["query", "nope"], "no saved query 'nope'"),
        (["query", "most_harmed", "--param", "limit=ten"], "not an integer"),
        (["query", "most_harmed", "--param", "color=red"], "takes no parameter color"),
    ):
        done = runner.invoke(cli, args)
        assert done.exit_code == 1, (args, done.output)
        assert message in done.output


def test_a_wrong_query_or_parameter_is_refused_before_neo4j_is_reached(monkeypatch):
    """docs/investigating.md: every parameter is checked before anything reaches Neo4j;
    with no server there (a closed port) the message is the parameter's, not "cannot
    reach Neo4j" (which it was: the connection came first)."""
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:1")
    monkeypatch.setenv("NEO4J_PASSWORD", "not-used")
    runner = CliRunner()
    for args, message in (
        (["query", "trace_entry"], "needs --param entry_id"),
        (["query", "nope"], "no saved query 'nope'"),
        (["query", "most_harmed", "--param", "limit=-1"], "limit"),
        (["query", "most_harmed", "--param", "color=red"], "takes no parameter color"),
    ):
        done = runner.invoke(cli, args)
        assert done.exit_code == 1, (args, done.output)
        assert message in done.output and "reach" not in done.output, (args, done.output)
    done = runner.invoke(cli, ["query", "most_harmed", "--param", "limit=5"])
    assert done.exit_code == 1 and "cannot reach Neo4j" in done.output, done.output


def test_write_back_needs_neo4j_and_no_out(tmp_path, monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    runner = CliRunner()
    done = runner.invoke(cli, ["audit", "--write-back", "--data", str(jiang_case_path())])
    assert done.exit_code == 2 and "needs Neo4j" in done.output
    done = runner.invoke(cli, ["audit", "--data", str(jiang_case_path())])
    assert done.exit_code == 2 and "--out" in done.output


# ---------------------------------------------------------------------------
# The saved query files (no Neo4j)
# ---------------------------------------------------------------------------


def test_query_list_shows_every_saved_query_with_its_header_line():
    done = CliRunner().invoke(cli, ["query", "--list"])
    assert done.exit_code == 0
    names = [line.split()[0] for line in done.output.splitlines()]
    assert names == [q.name for q in list_saved_queries()]
    assert {"trace_entry", "spread_from", "most_harmed", "platform_spillover"} <= set(names)
    for q in list_saved_queries():
        assert f"{q.name:<26} {q.title}" in done.output
        assert cypher(f"investigate/{q.name}") == q.text  # the package's loader reads them


MINE = ("trace_entry", "spread_from", "most_harmed", "platform_spillover")


@pytest.mark.parametrize("query", [saved_query(n) for n in MINE], ids=lambda q: q.name)
def test_every_saved_query_documents_its_parameters(query):
    body = "\n".join(line for line in query.text.splitlines() if not line.startswith("//"))
    used = set(re.findall(r"\$(\w+)", body))
    declared = {p.name for p in query.params}
    assert used == declared, query.name
    assert set(query.browser) == declared  # a :param line for each, to paste into Browser
    assert f"spillover query {query.name}" in query.text
    for p in query.params:
        assert p.help, (query.name, p.name)
        if p.name in RULE_PARAMS:  # the Browser value is the rules' value (pinned here)
            assert p.default == RULE_PARAMS[p.name]
            assert query.browser[p.name] == repr(RULE_PARAMS[p.name])
        elif p.default is not None:
            assert query.browser[p.name] == str(p.default)
    # the verdict strings reach the queries as parameters, never as literals
    assert not {f"'{v.value}'" for v in Verdict} & set(re.findall(r"'[^']*'", body))


def test_the_red_flag_queries_take_their_parameters_from_spillover_findings():
    from spillover.neo4j.saved import query_params

    for name, params in query_params(default_policy()).items():
        assert saved_query(name).bind({}) == params


def test_the_rule_parameters_are_the_rules_verdicts():
    assert RULE_PARAMS == {
        "own_conduct": "own_conduct",
        "spillover": "spillover",
        "unexplained": "unexplained",
    }
    assert set(RULE_PARAMS.values()) == {v.value for v in Verdict}
    assert saved_query("most_harmed").bind({}) == {
        "spillover": Verdict.SPILLOVER.value,
        "limit": 25,
    }


def test_a_traced_path_records_the_route_it_walks():
    from spillover.engines.search import explain_entry
    from spillover.neo4j.writeback import trace_rows

    e = explain_entry(open_folder(jiang_case_path()), "E-WL-J")
    row = trace_rows(e.paths[0], 1)
    assert row["loan"] == "XY-AX-1" and (row["rank"], row["hops"]) == (1, 1)
    assert row["labels"] == ["Person", "Phone", "Loan", "Platform", "Platform", "Platform", "Entry"]
    assert row["keys"][:3] == ["jiang", "+8613957112345", "XY-AX-1"]
    assert row["walks"] == ["OWNS", "LINKS", "AT", "SHARES_WITH", "SHARES_WITH", "ON"]
    assert row["roles"] == ["", "emergency_contact", "", "", "", ""]
    assert row["periods"] == ["2012-03-01", "", "", "", "", ""]
    assert row["steps"] == [s.rel for s in e.paths[0].steps]


@pytest.mark.neo4j
def test_an_ingest_keeps_unchanged_results_and_drops_those_of_a_changed_entry(neo4j_db, tmp_path):
    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    write_back(Neo4jBackend(driver, db))
    state = stored_results(driver, db)
    ingest_folder(jiang_case_path(), driver, db)  # the same data: nothing changes
    assert stored_results(driver, db) == state
    # the same folder with one entry's stated reason changed: that entry's result goes
    import shutil

    folder = tmp_path / "changed"
    shutil.copytree(jiang_case_path(), folder)
    blacklist = next(folder.glob("blacklist.*"))
    text = blacklist.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("E-WL-J") or '"E-WL-J"' in x)
    changed = line.replace("internet blacklist", "internet blacklist (updated)")
    assert changed != line
    blacklist.write_text(text.replace(line, changed), encoding="utf-8")
    ingest_folder(folder, driver, db, dataset="jiang_case")  # a corrected copy of it
    after = {s["id"]: s for s in stored_results(driver, db)}
    assert after["E-WL-J"]["props"].get("verdict") is None
    assert [t for t in after["E-WL-J"]["traces"] if t[0]] == []
    before = {s["id"]: s for s in state}
    assert after["E-QT-J"] == before["E-QT-J"]


# ---------------------------------------------------------------------------
# Issue 19 item 7: no stale or mixed results served
# ---------------------------------------------------------------------------

RESULT_QUERIES = (
    ("trace_entry", {"entry_id": "E-WL-J"}),
    ("spread_from", {"from": "xu_yan"}),
    ("most_harmed", {}),
    ("platform_spillover", {}),
    ("changes_since", {}),
)


def corrected_jiang(tmp_path: Path) -> Path:
    """The Jiang case corrected: Xu Yan's Anxin loan no longer names Jiang's phone as an
    emergency contact, and his Huaqian loan was repaid."""
    import shutil

    folder = tmp_path / "corrected"
    shutil.copytree(jiang_case_path(), folder)
    links = folder / "loan_links.csv"
    text = links.read_text(encoding="utf-8")
    assert "XY-AX-1,13957112345,emergency_contact\n" in text
    links.write_text(text.replace("XY-AX-1,13957112345,emergency_contact\n", ""), "utf-8")
    loans = folder / "loans.csv"
    text = loans.read_text(encoding="utf-8")
    row = "XY-HQ-1,huaqian,xu_yan,2023-04-10,defaulted,"
    assert row in text
    loans.write_text(text.replace(row, "XY-HQ-1,huaqian,xu_yan,2023-04-10,repaid,"), "utf-8")
    return folder


def refused(driver: Any, db: str, why: str) -> None:
    """Every saved query that reads the write-back refuses (library), and returns no rows
    when its text runs as it is (as pasted into Neo4j Browser)."""
    from spillover.errors import SpilloverError

    for name, params in RESULT_QUERIES:
        with pytest.raises(SpilloverError, match=why):
            run_saved_query(driver, db, name, params)
        query = saved_query(name)
        records, _, _ = driver.execute_query(query.text, query.bind(params), database_=db)
        assert records == [], name


@pytest.mark.neo4j
def test_an_ingest_after_the_write_back_makes_its_results_stale_until_written_back_again(
    neo4j_env, tmp_path
):
    driver, db = neo4j_env.driver, neo4j_env.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    write_back(Neo4jBackend(driver, db))
    before = run_saved_query(driver, db, "spread_from", {"from": "XY-AX-1"}).rows
    assert "E-WL-J" in {r["entry_id"] for r in before}  # through the emergency contact

    runner = CliRunner()
    folder = corrected_jiang(tmp_path)
    done = runner.invoke(cli, ["ingest", str(folder), "--dataset", "jiang_case"])
    assert done.exit_code == 0, done.output
    # the old TRACED_TO still hold the removed link and blame the repaid loan: refused
    refused(driver, db, "stale")
    assert "audit results written back into the graph are now stale" in done.output
    for name, params in RESULT_QUERIES:
        args = ["query", name] + [f"--param={k}={v}" for k, v in params.items()]
        done = runner.invoke(cli, args)
        assert done.exit_code == 1, (name, done.output)
        assert done.exception is None or isinstance(done.exception, SystemExit)
        assert "stale" in done.output and "spillover audit --write-back" in done.output
    status = runner.invoke(cli, ["query", "results_status", "--format", "json"])
    assert json.loads(status.output)[0]["state"] == "stale"

    # a fresh write-back clears it: every query answers as the library does on the
    # corrected folder (the repaid loan and the removed link are on no path)
    check_against_library(neo4j_env, folder)
    rows = run_saved_query(driver, db, "spread_from", {"from": "xu_yan"}).rows
    assert "XY-HQ-1" not in {r["origin_loan"] for r in rows}
    traced = run_saved_query(driver, db, "trace_entry", {"entry_id": "E-WL-J"}).rows
    assert not any(r["rel"] == "EMERGENCY_CONTACT_OF" and r["target"] == "XY-AX-1" for r in traced)
    # ingesting the same folder again changes nothing: the results stay current
    ingest_folder(folder, driver, db, dataset="jiang_case")
    assert run_saved_query(driver, db, "results_status").rows[0]["state"] == "current"
    assert run_saved_query(driver, db, "spread_from", {"from": "xu_yan"}).rows == rows


def other_policy() -> Any:
    text = default_policy_bytes().decode()
    text = text.replace('version = "1.0.0"', 'version = "2.0.0"')
    text = text.replace("emergency_contact = 0.05", "emergency_contact = 0.08")
    return parse_policy(text.encode(), "other.toml")


class KillSecondBatch:
    """A write-back's progress callback that, once the first batch is written, holds a
    write lock on every entry from another transaction (a concurrent writer) and has the
    write-back's next transaction, blocked on that lock, killed on the server with
    ``TERMINATE TRANSACTION``, as an operator would kill a stuck query."""

    def __init__(self, driver: Any, db: str) -> None:
        self.driver, self.db = driver, db
        self.thread: Any = None
        self.killed: list[str] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != "write-back" or done == 0 or self.thread is not None:
            return
        import threading

        locked = threading.Event()
        self.thread = threading.Thread(target=self.kill, args=(locked,), daemon=True)
        self.thread.start()
        assert locked.wait(30)

    def kill(self, locked: Any) -> None:
        import time

        with self.driver.session(database=self.db) as session:
            tx = session.begin_transaction()
            tx.run("MATCH (e:Entry) SET e.locked_by_test = true").consume()
            locked.set()
            try:
                for _ in range(600):
                    rows, _, _ = self.driver.execute_query(
                        "SHOW TRANSACTIONS YIELD transactionId AS id, currentQuery AS q, "
                        "status WHERE q CONTAINS 'audit --write-back' "
                        "AND status STARTS WITH 'Blocked' RETURN id",
                        database_=self.db,
                    )
                    if rows:
                        self.driver.execute_query(
                            "TERMINATE TRANSACTION $id", id=rows[0]["id"], database_=self.db
                        )
                        self.killed.append(rows[0]["id"])
                        return
                    time.sleep(0.05)
            finally:
                tx.rollback()


@pytest.mark.neo4j
def test_an_interrupted_write_back_serves_no_mixed_results(neo4j_env):
    from spillover.errors import SpilloverError

    driver, db = neo4j_env.driver, neo4j_env.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    write_back(backend)  # policy 1.0.0, complete
    assert len(run_saved_query(driver, db, "most_harmed").rows) == 2

    killer = KillSecondBatch(driver, db)
    with pytest.raises(Exception) as stopped:  # its kind is checked below
        write_back(backend, other_policy(), batch_size=4, progress=killer)
    killer.thread.join(30)
    assert killer.killed, "the second batch was not killed"
    # the graph really mixes the two policies: the first batch under 2.0.0, the rest 1.0.0
    mixed, _, _ = driver.execute_query(
        "MATCH (e:Entry) RETURN e.policy_version AS v, count(*) AS n ORDER BY v", database_=db
    )
    assert [(r["v"], r["n"]) for r in mixed] == [("1.0.0", 12), ("2.0.0", 4)]
    refused(driver, db, "incomplete")
    # the write-back itself ends with one clean message saying so
    assert isinstance(stopped.value, SpilloverError), stopped.value
    assert "4 of 16" in str(stopped.value) and "incomplete" in str(stopped.value)
    runner = CliRunner()
    for name in ("most_harmed", "platform_spillover"):
        done = runner.invoke(cli, ["query", name])
        assert done.exit_code == 1, done.output
        assert done.exception is None or isinstance(done.exception, SystemExit)
        assert "incomplete" in done.output and "4 of 16 entries written" in done.output
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert status["state"] == "incomplete" and status["writeback_policy_version"] == "2.0.0"
    assert status["results_policy_version"] == "1.0.0"

    # a complete write-back clears it: the results are the new policy's, all of them
    write_back(backend, other_policy())
    want = {
        e.entry.entry_id: e for e in explain_all(open_folder(jiang_case_path()), other_policy())
    }
    rows = run_saved_query(driver, db, "spread_from", {"from": "xu_yan"}).rows
    assert rows and all(r["contamination"] == want[r["entry_id"]].contamination for r in rows)
    harmed = run_saved_query(driver, db, "most_harmed").rows
    assert harmed[0]["person_id"] == "jiang" and harmed[0]["listings"] == 11


@pytest.mark.neo4j
def test_an_ingest_while_the_write_back_runs_leaves_its_results_stale(neo4j_db, tmp_path):
    from spillover.errors import SpilloverError

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    folder = corrected_jiang(tmp_path)
    ingested: list[Any] = []

    def ingest_meanwhile(stage: str, done: int, total: int) -> None:
        if stage == "write-back" and done and not ingested:
            ingested.append(ingest_folder(folder, driver, db, dataset="jiang_case"))

    with pytest.raises(SpilloverError, match="the data changed while the write-back ran"):
        write_back(Neo4jBackend(driver, db), batch_size=4, progress=ingest_meanwhile)
    assert ingested and ingested[0].data_version == 2
    refused(driver, db, "stale")


@pytest.mark.neo4j
def test_an_ingest_that_rewrites_entries_the_write_back_wrote_leaves_its_results_stale(
    neo4j_db, tmp_path
):
    """An ingest, while a write-back runs, that removes an entry the run already wrote, or
    rewrites one (a copy source cleared, as `remedy --apply` does), took those entries'
    results with it: the run's finish found fewer entries carrying its results than it
    wrote and it ended saying that "another write-back started ... and took the dataset
    marker over", none having started, the results left `incomplete`. The data changed:
    it says so, and its results are stale, as when the ingest changes only loans."""
    from spillover.errors import SpilloverError

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    folder = corrected_jiang(tmp_path)
    blacklist = folder / "blacklist.csv"
    lines = blacklist.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("E-LH-LN,")]
    assert len(kept) == len(lines) - 1
    copy = "multi-platform blacklist hit,E-LH-XU\n"
    blacklist.write_text("".join(kept).replace(copy, "multi-platform blacklist hit,\n"), "utf-8")
    ingested: list[Any] = []

    def ingest_once_all_are_written(stage: str, done: int, total: int) -> None:
        if stage == "write-back" and done == total and not ingested:
            ingested.append(ingest_folder(folder, driver, db, dataset="jiang_case"))

    with pytest.raises(SpilloverError, match="the data changed while the write-back ran"):
        write_back(Neo4jBackend(driver, db), batch_size=4, progress=ingest_once_all_are_written)
    assert ingested and ingested[0].changes["blacklist"].total == 2
    refused(driver, db, "stale")
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["data_version"], status["results_data_version"]) == (2, 1)
    # the next write-back makes them current: those of the corrected folder
    write_back(Neo4jBackend(driver, db))
    want = {e.entry.entry_id: e for e in explain_all(open_folder(folder))}
    stored = {s["id"]: s["props"] for s in stored_results(driver, db)}
    assert set(stored) == set(want)
    assert all(stored[k]["contamination"] == e.contamination for k, e in want.items())


@pytest.mark.neo4j
def test_a_write_back_waits_for_an_unfinished_ingest(neo4j_db):
    from spillover.errors import SpilloverError

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    # what an ingest cut short leaves: the marker's complete is false until its last write
    driver.execute_query("MATCH (d:Dataset) SET d.complete = false", database_=db)
    with pytest.raises(SpilloverError, match="has not finished: run the ingest again"):
        write_back(Neo4jBackend(driver, db))
    ingest_folder(jiang_case_path(), driver, db)
    write_back(Neo4jBackend(driver, db))
    assert run_saved_query(driver, db, "results_status").rows[0]["state"] == "current"


@pytest.mark.neo4j
def test_a_write_back_that_waits_on_the_marker_sees_an_ingest_that_started_meanwhile(neo4j_db):
    """The write-back's start locks the dataset marker before it reads it: an ingest that
    held the marker and started (complete = false) while the start waited is seen, and
    the write-back is refused with nothing claimed (read before the lock, it was not)."""
    import threading

    from spillover.errors import SpilloverError

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    outcome: list[BaseException | object] = []

    def start() -> None:
        try:
            outcome.append(write_back(Neo4jBackend(driver, db)))
        except BaseException as exc:  # seen by the test below
            outcome.append(exc)

    with driver.session(database=db) as session, session.begin_transaction() as tx:
        tx.run("MATCH (d:Dataset) SET d.complete = false").consume()
        runner = threading.Thread(target=start)
        runner.start()
        _blocked(driver, db, 1)  # the write-back's start waits on the marker
        tx.commit()
    runner.join(120)
    assert len(outcome) == 1 and isinstance(outcome[0], SpilloverError), outcome
    assert "has not finished: run the ingest again" in str(outcome[0])
    records, _, _ = driver.execute_query(
        "MATCH (d:Dataset) RETURN d.writeback_run AS run", database_=db
    )
    assert records[0]["run"] is None


# ---------------------------------------------------------------------------
# Issue 19 item 11: saved-query parameters checked before they reach Neo4j
# ---------------------------------------------------------------------------

BAD_PARAMS = [
    ("most_harmed", {"limit": "-1"}, "out of range"),
    ("most_harmed", {"limit": "0"}, "out of range"),
    ("most_harmed", {"limit": "1" * 20}, "out of range"),
    ("most_harmed", {"limit": "1.5"}, "not an integer"),
    ("most_harmed", {"limit": True}, "not an integer"),
    ("most_harmed", {"limit": 10**20}, "out of range"),
    ("most_harmed", {"spillover": 5}, "not a string"),
    ("listed_only_unverified", {"statuses": '{"a": 1}'}, "not a JSON list of strings"),
    ("listed_only_unverified", {"statuses": "[1, 2]"}, "not a JSON list of strings"),
    ("listed_only_unverified", {"statuses": '["overdue"'}, "not a JSON list of strings"),
    ("listed_only_unverified", {"statuses": {"a": 1}}, "not a JSON list of strings"),
    ("listed_only_unverified", {"statuses": "[" * 5000}, "not a JSON list of strings"),
    ("listed_only_unverified", {"owner_unverified": "maybe"}, "not true or false"),
    ("shared_phone_hubs", {"min_borrowers": "9" * 20}, "out of range"),
    ("shared_phone_hubs", {"min_borrowers": "-3"}, "out of range"),
    ("trace_entry", {"entry_id": ""}, "empty"),
    ("trace_entry", {"entry_id": "E-\ud800"}, "not valid Unicode"),
    ("changes_since", {"since": "garbage"}, "not an ISO date or date-time"),
    ("changes_since", {"since": "2026-13-01"}, "not an ISO date or date-time"),
    ("changes_since", {"since": "2026-02-30T00:00:00Z"}, "not an ISO date or date-time"),
    ("changes_since", {"since": ""}, "not an ISO date or date-time"),
    ("changes_since", {"since": 20261201}, "not an ISO date or date-time"),
]


@pytest.mark.parametrize(("name", "params", "message"), BAD_PARAMS)
def test_a_bad_saved_query_parameter_is_refused_before_neo4j(name, params, message):
    from spillover.errors import OptionError

    with pytest.raises(OptionError, match=message):
        saved_query(name).bind(params)


@pytest.mark.parametrize(
    "since",
    [
        "2026-12-01T08:00:00+08:00",
        "2026-12-01T00:00:00Z",
        "2026-12-01",
        " 2026-12-01T00:00 ",
        datetime.date(2026, 12, 1),
        datetime.datetime(2026, 12, 1, 8, tzinfo=datetime.timezone(datetime.timedelta(hours=8))),
    ],
)
def test_the_since_of_changes_since_is_a_date_sent_as_the_instant_in_utc(since):
    bound = saved_query("changes_since").bind({"since": since})
    assert bound["since"] == "2026-12-01T00:00:00+00:00"
    assert saved_query("changes_since").bind({})["since"] == "1970-01-01T00:00:00+00:00"


@pytest.mark.neo4j
def test_bad_saved_query_parameters_are_one_clean_message_through_the_library_and_cli(
    neo4j_env,
):
    from spillover.errors import OptionError

    driver, db = neo4j_env.driver, neo4j_env.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    write_back(Neo4jBackend(driver, db))
    runner = CliRunner()
    for name, params, message in BAD_PARAMS:
        with pytest.raises(OptionError, match=message):
            run_saved_query(driver, db, name, params)
        if not all(isinstance(v, str) for v in params.values()):
            continue
        args = ["query", name] + [f"--param={k}={v}" for k, v in params.items()]
        done = runner.invoke(cli, args)
        assert done.exit_code == 1, (name, params, done.output)
        assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
        assert message in done.output and "Traceback" not in done.output
        assert done.output.count("Error:") == 1
    # the good values still answer
    assert len(run_saved_query(driver, db, "most_harmed", {"limit": "1"}).rows) == 1
    assert len(run_saved_query(driver, db, "most_harmed", {"limit": 2**63 - 1}).rows) == 2
    rows = run_saved_query(
        driver, db, "listed_only_unverified", {"statuses": '["defaulted", "overdue"]'}
    ).rows
    assert rows == run_saved_query(driver, db, "listed_only_unverified").rows


def test_the_limit_of_most_harmed_declares_its_range():
    (limit,) = [p for p in saved_query("most_harmed").params if p.name == "limit"]
    assert (limit.type, limit.minimum, limit.maximum, limit.default) == ("integer", 1, None, 25)
    assert saved_query("most_harmed").bind({"limit": "7"})["limit"] == 7
    reads = {q.name for q in list_saved_queries() if q.needs_results}
    assert reads == {name for name, _ in RESULT_QUERIES}


def _blocked(driver: Any, db: str, count: int, within: float = 60.0) -> None:
    """Wait until ``count`` transactions wait on a lock (``SHOW TRANSACTIONS``)."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        records, _, _ = driver.execute_query(
            "SHOW TRANSACTIONS YIELD status WHERE status STARTS WITH 'Blocked' RETURN count(*) AS n",
            database_=db,
        )
        if records[0]["n"] >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} transactions did not wait on a lock within {within} s")


@pytest.mark.neo4j
@pytest.mark.parametrize("graph", RERUN_GRAPHS[:2])
def test_the_marks_of_a_run_taken_over_while_it_writes_them_are_rolled_back(neo4j_db, graph):
    """A rerun over the graph the last run read writes its marks in transactions that
    run at once (writeback.MARK_WRITERS), each locking the dataset marker last (one
    transaction after which nothing was committed): held by another transaction here,
    they wait on it with their marks written; that one gives the marker to another run,
    and the marks transactions roll back: no entry carries the taken-over run, and the
    rerun says it stopped."""
    import threading

    from spillover.errors import SpilloverError
    from spillover.neo4j import writeback

    assert writeback.MARK_WRITERS == 2
    driver, db, backend, state = _jiang_written_back(neo4j_db)
    if graph == "nothing committed since":
        _sealed_rerun(backend)
    else:
        _commit_elsewhere(driver, db)
    first = _marks(driver, db)
    holding = threading.Event()
    errors: list[BaseException] = []

    def hold_the_marker() -> None:
        try:
            with driver.session(database=db) as session, session.begin_transaction() as tx:
                tx.run("MATCH (d:Dataset) SET d.held = true").consume()
                holding.set()
                # the marks transactions wait on the marker
                _blocked(driver, db, 1 if graph == "nothing committed since" else 2)
                tx.run("MATCH (d:Dataset) SET d.writeback_run = 'another', d.held = null")
                tx.commit()
        except BaseException as exc:  # seen by the test below
            errors.append(exc)
            holding.set()

    holder = threading.Thread(target=hold_the_marker)

    def after_the_read(stage: str, done: int, total: int) -> None:
        if _before_the_marks(stage, done, total) and not holder.is_alive():
            holder.start()
            holding.wait(60)

    with pytest.raises(SpilloverError, match="took the dataset marker over"):
        write_back(backend, progress=after_the_read)
    holder.join(60)
    assert not errors, errors
    assert _marks(driver, db) == first  # every entry as the last run left it
    assert {s["id"]: s for s in stored_results(driver, db)} == state


@pytest.mark.neo4j
def test_a_write_back_started_meanwhile_takes_over_and_the_first_stops(neo4j_db):
    from spillover.errors import SpilloverError

    driver, db = neo4j_db.driver, neo4j_db.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    backend = Neo4jBackend(driver, db)
    later: list[Any] = []

    def second_run(stage: str, done: int, total: int) -> None:
        if stage == "write-back" and done and not later:
            later.append(write_back(backend, other_policy()))

    with pytest.raises(SpilloverError, match="took the dataset marker over"):
        write_back(backend, batch_size=4, progress=second_run)
    status = run_saved_query(driver, db, "results_status").rows[0]
    assert (status["state"], status["results_run"]) == ("current", later[0].run)
    versions, _, _ = driver.execute_query(
        "MATCH (e:Entry) RETURN collect(DISTINCT e.policy_version) AS v, "
        "collect(DISTINCT e.audit_run) AS runs",
        database_=db,
    )
    assert versions[0]["v"] == ["2.0.0"] and versions[0]["runs"] == [later[0].run]
    harmed = run_saved_query(driver, db, "most_harmed").rows
    assert harmed[0]["person_id"] == "jiang" and harmed[0]["listings"] == 11
    # finishing is idempotent: a retried transaction that had committed changes nothing
    again, _, _ = driver.execute_query(
        cypher("writeback_finish"),
        run=later[0].run,
        entries=16,
        traces=later[0].traces,
        graph="a-retry",
        read="a-retry",
        chain=None,
        finished_at=later[0].audited_at,
        database_=db,
    )
    assert again[0]["results_data_version"] == 1
    assert run_saved_query(driver, db, "results_status").rows[0] == status


@pytest.mark.neo4j
def test_commands_reading_a_graph_whose_ingest_did_not_finish_say_so(neo4j_env, tmp_path):
    """An audit, explain, check or saved query over a graph whose last ingest was cut short
    answered from a mix of two folders without a word (the write-back and `changes`
    refuse such a store): they answer, with a note saying the ingest has not finished; a
    library caller gets the warning (UnfinishedIngest); none once the ingest finishes."""
    import warnings

    from spillover.connect import UNFINISHED_INGEST, open_backend
    from spillover.errors import UnfinishedIngest

    driver, db = neo4j_env.driver, neo4j_env.settings.database
    ingest_folder(jiang_case_path(), driver, db)
    # what an ingest cut short leaves: the marker's complete is false until its last write
    driver.execute_query("MATCH (d:Dataset) SET d.complete = false", database_=db)
    note = f"spillover: note: {UNFINISHED_INGEST}\n"
    runner = CliRunner()
    commands = [
        ["explain", "E-QC-PH", "--format", "json"],
        ["check", "--platform", "quickcash", "--subject", "jiang"],
        ["audit", "--out", str(tmp_path / "audit.csv")],
        ["findings"],
        ["query", "copies_after_repaid"],
    ]
    for args in commands:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stderr.count(note) == 1, (args, result.stderr)
    result = runner.invoke(cli, ["audit", "--write-back"])
    assert result.exit_code == 1 and "has not finished" in result.stderr
    assert UNFINISHED_INGEST not in result.stderr  # the refusal says it, once
    with pytest.warns(UnfinishedIngest, match="has not finished"):
        open_backend(neo4j=neo4j_env.settings).close()
    ingest_folder(jiang_case_path(), driver, db)
    for args in commands:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and "note:" not in result.stderr, (args, result.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnfinishedIngest)
        open_backend(neo4j=neo4j_env.settings).close()
