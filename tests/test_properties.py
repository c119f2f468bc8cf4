"""Property-based tests (hypothesis) over random small graphs: the contract's monotonicity rules,
on every backend (the ``graph`` fixture: each example is loaded into a fresh store)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario import Scenario
from spillover.backends.memory import MemoryBackend
from spillover.data.exact import load_folder
from spillover.engines.search import Explanation, explain_entry
from spillover.facts.graph import GraphBackend

ROLES = ["emergency_contact", "reference", "address_book", "guarantor"]
STATUSES = ["current", "repaid", "overdue", "defaulted"]
PLATFORMS = ["a", "b", "c", "bank"]
DAY0 = date(2023, 1, 1)
#: the ``graph`` fixture is made once per test and backend and gives a fresh store per call,
#: so reusing it across examples is what is wanted
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def day(offset: int) -> str:
    return (DAY0 + timedelta(days=offset)).isoformat()


@st.composite
def random_graph(draw) -> Scenario:
    """People p0..pn with one phone each, random loans, links, sharing; entry E on p0 or p0's phone."""
    s = Scenario()
    n = draw(st.integers(2, 5))
    people = [s.person(f"p{i}") for i in range(n)]
    phones = [s.phone(p, verified=draw(st.booleans())) for p in people]
    for p in PLATFORMS:
        s.platform(p, "bank" if p == "bank" else "online_lender")
    for i in range(draw(st.integers(1, 7))):
        borrower = draw(st.integers(0, n - 1))
        applied = draw(st.integers(0, 120))
        s.loan(
            f"L{i}",
            draw(st.sampled_from(PLATFORMS)),
            people[borrower],
            day(applied),
            draw(st.sampled_from(STATUSES)),
            applicant_phone=phones[draw(st.integers(0, n - 1))],
            phone_verified=draw(st.booleans()),
            status_at=day(applied + draw(st.integers(0, 60))) if draw(st.booleans()) else None,
        )
        for _ in range(draw(st.integers(0, 2))):
            phone = phones[draw(st.integers(0, n - 1))]
            role = draw(st.sampled_from(ROLES))
            if (f"L{i}", phone, role) not in {
                (r["loan_id"], r["phone"], r["role"]) for r in s.tables["loan_links"]
            }:
                s.link(f"L{i}", phone, role)
    pairs = draw(
        st.sets(st.tuples(st.sampled_from(PLATFORMS), st.sampled_from(PLATFORMS)), max_size=5)
    )
    for src, dst in sorted(pairs):
        if src != dst:
            s.share(src, dst, day(draw(st.integers(-30, 150))) if draw(st.booleans()) else None)
    as_phone = draw(st.booleans())
    s.entry(
        "E",
        draw(st.sampled_from(PLATFORMS)),
        phones[0] if as_phone else "p0",
        day(draw(st.integers(0, 200))),
        kind="phone" if as_phone else "person",
    )
    return s


def explain(graph: Callable[[Scenario], GraphBackend], s: Scenario) -> Explanation:
    return explain_entry(graph(s), "E")


@SETTINGS
@given(random_graph())
def test_explanations_are_well_formed(graph, s):
    e = explain(graph, s)
    listed = e.entry.listed_at
    assert 0 <= e.contamination <= 1
    if not e.paths:
        assert e.verdict == "unexplained" and e.contamination == 1
        return
    assert math.isclose(e.contamination, 1 - e.paths[0].responsibility, abs_tol=1e-6)
    assert [p.responsibility for p in e.paths] == sorted(
        (p.responsibility for p in e.paths), reverse=True
    )
    loans = {r["loan_id"]: r for r in s.tables["loans"]}
    for path in e.paths:
        assert math.isclose(
            path.responsibility, math.prod(x.factor for x in path.steps), abs_tol=1e-6
        )
        assert 1 <= path.hops <= 3
        assert path.origin.status.value in ("overdue", "defaulted")
        assert path.origin.known_at <= listed
        for step in path.steps:
            if step.target.startswith("loan:"):
                assert loans[step.target[5:]]["applied_at"] <= listed.isoformat()
        route = [x.at for x in path.steps if x.rel in ("AT", "SHARES_WITH", "LISTED")]
        assert route == sorted(route) and route[-1] <= listed


@SETTINGS
@given(random_graph())
def test_an_added_own_default_never_raises_contamination(graph, s):
    before = explain(graph, s).contamination
    entry = s.tables["blacklist"][0]
    s.loan("OWN", entry["platform_id"], "p0", "2022-12-01", "defaulted", status_at="2022-12-15")
    after = explain(graph, s)
    assert after.contamination <= before
    if entry["subject_kind"] == "person":
        assert after.contamination == 0 and after.verdict == "own_conduct"


@SETTINGS
@given(random_graph())
def test_address_book_never_more_responsible_than_emergency_contact(graph, s):
    book = explain(graph, s).contamination
    for row in s.tables["loan_links"]:
        if row["role"] == "address_book":
            row["role"] = "emergency_contact"
    seen, unique = set(), []
    for row in s.tables["loan_links"]:
        key = (row["loan_id"], row["phone"], row["role"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    s.tables["loan_links"] = unique
    assert book >= explain(graph, s).contamination


def chain(roles: list[str]) -> Scenario:
    s = Scenario()
    s.platform("lender")
    people = [s.person(f"p{i}") for i in range(len(roles) + 1)]
    phones = [s.phone(p) for p in people]
    for i, role in enumerate(roles, start=1):
        status = "defaulted" if i == len(roles) else "current"
        s.loan(f"L{i}", "lender", people[i], "2023-01-10", status, status_at="2023-02-01")
        s.link(f"L{i}", phones[i - 1], role)
    s.entry("E", "lender", "p0", "2023-04-01")
    return s


@SETTINGS
@given(
    st.lists(st.sampled_from(ROLES), min_size=1, max_size=2),
    st.sampled_from(ROLES),
    st.integers(0, 2),
)
def test_a_longer_chain_never_lowers_contamination(graph, roles, extra, where):
    longer = [*roles[: min(where, len(roles))], extra, *roles[min(where, len(roles)) :]]
    assert explain(graph, chain(longer)).contamination >= explain(graph, chain(roles)).contamination


@SETTINGS
@given(random_graph())
def test_csv_and_jsonl_explain_the_same(s):
    with TemporaryDirectory() as tmp:
        a = explain_entry(MemoryBackend(load_folder(s.write(Path(tmp) / "c", "csv"))), "E")
        b = explain_entry(MemoryBackend(load_folder(s.write(Path(tmp) / "j", "jsonl"))), "E")
    assert a == b
