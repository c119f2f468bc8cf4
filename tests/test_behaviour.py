"""The contract's properties (docs/contract.md §3), on every backend."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from scenario import Scenario, chain_case
from spillover.engines.search import check, explain_entry
from spillover.policy import default_policy_bytes, parse_policy


def stranger_case(
    role: str | None = None, *, applicant: bool = False, verified: bool = False
) -> Scenario:
    """Jiang owns a phone; Xu, a stranger, defaults on a loan at 'lender' that names it."""
    s = Scenario()
    s.person("jiang")
    s.person("xu")
    s.platform("lender")
    phone = s.phone("jiang", verified=True)
    s.phone("xu", "+8615000000001", verified=False)
    s.loan(
        "L1",
        "lender",
        "xu",
        "2023-01-10",
        "defaulted",
        status_at="2023-03-01",
        applicant_phone=phone if applicant else "+8615000000001",
        phone_verified=verified if applicant else True,
    )
    if role:
        s.link("L1", phone, role)
    s.entry("E-J", "lender", "jiang", "2023-04-01")
    s.entry("E-PH", "lender", phone, "2023-04-01", kind="phone")
    return s


def contamination(backend, entry_id: str, policy=None) -> float:
    return explain_entry(backend, entry_id, policy).contamination


# --- own conduct ---------------------------------------------------------------


def test_own_default_same_platform_is_zero(graph):
    s = Scenario()
    s.person("xu")
    s.platform("lender")
    s.loan("L1", "lender", "xu", "2023-01-10", "defaulted", status_at="2023-03-01")
    s.entry("E1", "lender", "xu", "2023-04-01")
    e = explain_entry(graph(s), "E1")
    assert e.contamination == 0
    assert e.verdict == "own_conduct"
    assert e.reason_codes[0] == "OWN_DEFAULT"
    assert e.paths[0].origin.loan_id == "L1"


def test_own_default_reaching_through_sharing_and_copy_is_zero(graph):
    s = Scenario()
    s.person("xu")
    s.platform("lender")
    s.platform("broker", "data_broker")
    s.platform("bank", "bank")
    s.platform("bank2", "bank")
    s.loan("L1", "lender", "xu", "2023-01-10", "defaulted", status_at="2023-03-01")
    s.share("lender", "broker", "2022-01-01")
    s.share("broker", "bank", "2022-01-01")
    s.entry("E-B", "broker", "xu", "2023-05-01")
    s.entry("E-BANK", "bank", "xu", "2023-06-01")
    s.entry("E-BANK2", "bank2", "xu", "2023-07-01", copied_from="E-B")
    g = graph(s)
    shared = explain_entry(g, "E-BANK")
    assert shared.contamination == 0
    assert [st.rel for st in shared.paths[0].steps] == [
        "BORROWED",
        "AT",
        "SHARES_WITH",
        "SHARES_WITH",
        "LISTED",
    ]
    copied = explain_entry(g, "E-BANK2")
    assert copied.contamination == 0
    assert "COPIED_ENTRY" in copied.reason_codes
    assert copied.paths[0].steps[-1].rel == "COPIED_TO"


# --- strangers -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["emergency_contact", "reference", "address_book"])
@pytest.mark.parametrize("entry", ["E-J", "E-PH"])
def test_stranger_listing_the_phone_is_at_least_090(graph, role, entry):
    e = explain_entry(graph(stranger_case(role)), entry)
    assert e.contamination >= 0.9
    assert e.verdict == "spillover"
    assert role.upper() in e.reason_codes


@pytest.mark.parametrize("verified", [True, False])
@pytest.mark.parametrize("entry", ["E-J", "E-PH"])
def test_stranger_using_the_phone_to_apply_is_at_least_090(graph, verified, entry):
    e = explain_entry(graph(stranger_case(applicant=True, verified=verified)), entry)
    assert e.contamination >= 0.9
    code = "PHONE_USED_SMS_VERIFIED" if verified else "PHONE_USED_UNVERIFIED"
    assert code in e.reason_codes


@pytest.mark.parametrize("owner_verified", [True, False])
def test_guarantor_is_at_most_030(graph, owner_verified):
    s = stranger_case("guarantor")
    s.tables["phones"][0]["verified"] = owner_verified
    g = graph(s)
    for entry in ("E-J", "E-PH"):
        e = explain_entry(g, entry)
        assert e.contamination <= 0.3
        assert e.verdict == "own_conduct"
        assert "GUARANTOR" in e.reason_codes


def test_address_book_never_more_responsible_than_emergency_contact(graph):
    book = contamination(graph(stranger_case("address_book")), "E-J")
    contact = contamination(graph(stranger_case("emergency_contact")), "E-J")
    assert book >= contact


def test_the_borrowers_own_phone_listed_is_own_conduct(graph):
    s = Scenario()
    s.person("xu")
    s.platform("lender")
    phone = s.phone("xu")
    s.loan("L1", "lender", "xu", "2023-01-10", applicant_phone=phone, phone_verified=True)
    s.entry("E-PH", "lender", phone, "2023-04-01", kind="phone")
    e = explain_entry(graph(s), "E-PH")
    assert e.contamination == 0
    assert e.reason_codes == ("OWN_PHONE",)


def test_reassigned_number_is_spillover_for_the_new_owner(graph):
    s = Scenario()
    s.person("xu")
    s.person("wang")
    s.platform("lender")
    phone = s.phone("xu", since="2015-01-01", until="2023-06-30")
    s.phone("wang", phone, since="2023-07-01")
    s.loan(
        "L1",
        "lender",
        "xu",
        "2023-01-10",
        applicant_phone=phone,
        phone_verified=True,
        status_at="2023-03-01",
    )
    s.entry("E-OLD", "lender", phone, "2023-04-01", kind="phone")
    s.entry("E-NEW", "lender", phone, "2023-09-01", kind="phone")
    s.entry("E-WANG", "lender", "wang", "2023-09-01")
    g = graph(s)
    assert contamination(g, "E-OLD") == 0
    new = explain_entry(g, "E-NEW")
    assert new.contamination >= 0.9 and "PHONE_REASSIGNED" in new.reason_codes
    # the loan predates wang's ownership: no tie at all from wang
    assert explain_entry(g, "E-WANG").verdict == "unexplained"


def test_path_through_phone_uses_owner_at_application_time(graph):
    s = Scenario()
    s.person("old_owner")
    s.person("new_owner")
    s.person("xu")
    s.platform("lender")
    phone = s.phone("old_owner", since="2015-01-01", until="2022-12-31")
    s.phone("new_owner", phone, since="2023-01-01")
    s.loan("L1", "lender", "xu", "2023-02-01", status_at="2023-03-01")
    s.link("L1", phone, "emergency_contact")
    s.entry("E-OLD", "lender", "old_owner", "2023-04-01")
    s.entry("E-NEW", "lender", "new_owner", "2023-04-01")
    g = graph(s)
    assert explain_entry(g, "E-OLD").verdict == "unexplained"
    new = explain_entry(g, "E-NEW")
    assert new.verdict == "spillover"
    assert new.paths[0].steps[0].source == "person:new_owner"


# --- chains and monotonicity -------------------------------------------------------


@pytest.mark.parametrize("role", ["guarantor", "emergency_contact"])
def test_longer_chain_never_lowers_contamination(graph, role):
    scores = [contamination(graph(chain_case(d, role)), "E") for d in (1, 2, 3)]
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]


def test_hop_bound_limits_chain_depth(graph):
    g = graph(chain_case(4))
    assert explain_entry(g, "E").verdict == "unexplained"
    raw = (
        default_policy_bytes()
        .replace(b"max_loans = 3", b"max_loans = 4")
        .replace(b'version = "1.0.0"', b'version = "1.0.0-deep"')
    )
    deep = parse_policy(raw)
    e = explain_entry(g, "E", deep)
    assert e.verdict == "spillover"
    assert e.paths[0].hops == 4
    assert "CHAIN_VIA_BORROWER" in e.reason_codes


def test_added_own_default_never_raises_contamination(graph):
    s = stranger_case("guarantor")
    before = contamination(graph(s), "E-J")
    s.loan("OWN", "lender", "jiang", "2023-02-01", "overdue", status_at="2023-03-15")
    after = contamination(graph(s), "E-J")
    assert after <= before
    assert after == 0


def test_score_recomputes_from_the_steps(graph):
    g = graph(chain_case(3, "reference"))
    e = explain_entry(g, "E")
    for path in e.paths:
        assert math.isclose(
            path.responsibility, math.prod(st.factor for st in path.steps), abs_tol=1e-6
        )
    assert math.isclose(e.contamination, 1 - e.paths[0].responsibility, abs_tol=1e-6)


# --- time and reach -------------------------------------------------------------------


def test_entry_listed_before_the_loan_existed_is_unexplained(graph):
    s = stranger_case("emergency_contact")
    s.tables["blacklist"][0]["listed_at"] = "2022-12-01"
    e = explain_entry(graph(s), "E-J")
    assert e.verdict == "unexplained"
    assert e.contamination == 1
    assert e.paths == ()
    assert e.reason_codes == ("NO_TIME_RESPECTING_PATH", "PATH_IGNORES_DATES")


def test_entry_listed_before_the_default_was_reached_is_unexplained(graph):
    s = stranger_case("emergency_contact")
    s.tables["blacklist"][0]["listed_at"] = "2023-02-01"  # applied 01-10, defaulted 03-01
    assert explain_entry(graph(s), "E-J").verdict == "unexplained"


def _shared_case(since: str, listed: str) -> Scenario:
    s = stranger_case("emergency_contact")
    s.platform("bank", "bank")
    s.share("lender", "bank", since)
    s.entry("E-BANK", "bank", "jiang", listed)
    return s


def test_entry_listed_before_sharing_began_is_unexplained(graph):
    e = explain_entry(graph(_shared_case(since="2023-06-01", listed="2023-05-01")), "E-BANK")
    assert e.verdict == "unexplained"
    assert "PATH_IGNORES_DATES" in e.reason_codes


def test_sharing_hop_happens_no_earlier_than_since(graph):
    e = explain_entry(graph(_shared_case(since="2023-04-15", listed="2023-05-01")), "E-BANK")
    assert e.verdict == "spillover"
    share = next(st for st in e.paths[0].steps if st.rel == "SHARES_WITH")
    assert share.at == date(2023, 4, 15)


def test_origin_on_unconnected_platform_is_unexplained(graph):
    s = stranger_case("emergency_contact")
    s.platform("bank", "bank")
    s.entry("E-BANK", "bank", "jiang", "2024-01-01")
    e = explain_entry(graph(s), "E-BANK")
    assert e.verdict == "unexplained"
    assert "NO_PLATFORM_ROUTE" in e.reason_codes


def test_a_copy_of_a_later_entry_is_a_route_only_by_ignoring_dates(graph):
    """The bank's entry copies the lender's, which was made a day later: no route in
    time, but one when dates are ignored (not 'no platform reaches this one')."""
    s = stranger_case("emergency_contact")
    s.platform("bank", "bank")
    s.entry("E-BANK", "bank", "jiang", "2023-03-31", copied_from="E-J")  # E-J: 04-01
    e = explain_entry(graph(s), "E-BANK")
    assert e.verdict == "unexplained"
    assert e.reason_codes == ("NO_TIME_RESPECTING_PATH", "PATH_IGNORES_DATES")


def test_sharing_runs_one_way(graph):
    s = stranger_case("emergency_contact")
    s.platform("bank", "bank")
    s.share("bank", "lender", "2020-01-01")
    s.entry("E-BANK", "bank", "jiang", "2024-01-01")
    assert explain_entry(graph(s), "E-BANK").verdict == "unexplained"


def test_copy_of_a_later_entry_does_not_count(graph):
    s = stranger_case("emergency_contact")
    s.platform("bank", "bank")
    s.entry("E-BANK", "bank", "jiang", "2023-03-15", copied_from="E-J")  # E-J listed 2023-04-01
    assert explain_entry(graph(s), "E-BANK").verdict == "unexplained"


def test_copy_chain_reaches_the_origin(graph):
    s = stranger_case("emergency_contact")
    s.platform("broker", "data_broker")
    s.platform("bank", "bank")
    s.entry("E-BR", "broker", "jiang", "2023-05-01", copied_from="E-PH")
    s.entry("E-BANK", "bank", "jiang", "2023-06-01", copied_from="E-BR")
    e = explain_entry(graph(s), "E-BANK")
    assert e.verdict == "spillover"
    rels = [st.rel for st in e.paths[0].steps]
    assert rels[-3:] == ["LISTED", "COPIED_TO", "COPIED_TO"]
    assert e.paths[0].steps[-1].target == "entry:E-BANK"


def test_no_tie_at_all(graph):
    s = stranger_case(None)
    e = explain_entry(graph(s), "E-J")
    assert e.verdict == "unexplained"
    assert e.reason_codes == ("NO_TIME_RESPECTING_PATH", "NO_TIE_TO_ANY_DEFAULT")


def test_repaid_and_current_loans_do_not_originate(graph):
    s = stranger_case("emergency_contact")
    s.tables["loans"][0]["status"] = "repaid"
    assert explain_entry(graph(s), "E-J").verdict == "unexplained"


# --- proposed listings ----------------------------------------------------------------


def test_check_matches_the_recorded_entry(graph):
    g = graph(stranger_case("reference"))
    recorded = explain_entry(g, "E-J")
    proposed = check(g, "lender", "person", "jiang", date(2023, 4, 1))
    assert proposed.entry.entry_id is None
    assert proposed.contamination == recorded.contamination
    assert [p.origin.loan_id for p in proposed.paths] == [p.origin.loan_id for p in recorded.paths]
    assert (
        proposed.paths[0].steps[-1].rel == "AT"
    )  # no LISTED step for a listing that does not exist


@pytest.fixture
def zone_on_another_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A time zone whose day is not UTC's right now (UTC+14 or UTC-12: one of the two
    always is), set as the process's local zone for the test."""
    utc = datetime.now(UTC)
    zone = "Etc/GMT-14" if utc.hour >= 10 else "Etc/GMT+12"
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    assert date.today() != utc.date()
    yield zone
    monkeypatch.undo()
    time.tzset()


def test_check_without_a_day_lists_on_today_in_utc(graph, zone_on_another_day):
    """``check`` with no day proposes the listing on today's date in UTC, whatever the
    local zone: the day the check service uses (docs/service.md), so that the library, the
    CLI and the service answer the same check alike."""
    g = graph(stranger_case("reference"))
    before = datetime.now(UTC).date()
    e = check(g, "lender", "person", "jiang")
    assert e.entry.listed_at in {before, datetime.now(UTC).date()}


def test_check_unknown_names_are_errors(graph):
    from spillover.errors import NotFoundError

    g = graph(stranger_case("reference"))
    with pytest.raises(NotFoundError, match="platform"):
        check(g, "nope", "person", "jiang", date(2023, 4, 1))
    with pytest.raises(NotFoundError, match="person"):
        check(g, "lender", "person", "nobody", date(2023, 4, 1))
    with pytest.raises(NotFoundError, match="entry"):
        explain_entry(g, "E-missing")


def test_check_on_a_phone_without_records_is_unexplained(graph):
    g = graph(stranger_case("reference"))
    e = check(g, "lender", "phone", "+8618900000000", date(2023, 4, 1))
    assert e.verdict == "unexplained"


def test_paths_are_best_first_and_deterministic(graph):
    s = stranger_case("address_book")
    s.loan("L2", "lender", "xu", "2023-01-11", "defaulted", status_at="2023-03-01")
    s.link("L2", s.tables["phones"][0]["phone"], "emergency_contact")
    g = graph(s)
    e = explain_entry(g, "E-J")
    resp = [p.responsibility for p in e.paths]
    assert resp == sorted(resp, reverse=True)
    assert e.paths[0].origin.loan_id == "L2"
    assert explain_entry(g, "E-J") == e


@pytest.mark.parametrize("seed", [3, 4])
def test_neighbourhood_answers_every_covered_expansion(graph, seed):
    from collections import Counter

    from scenario import random_scenario
    from spillover.engines.ties import _part

    g = graph(random_scenario(seed))
    around = g.neighbourhood(["p0"], [])
    assert "p0" in around.covers and len(around.covers) > 1
    people = sorted(around.covers)
    for frontier in (["p0"], people[:2], people):
        direct = g.expand(frontier, [], date.max)
        part = _part(around, set(frontier), set())
        for field in ("periods", "own_loans", "uses"):
            assert Counter(getattr(part, field)) == Counter(getattr(direct, field)), (
                frontier,
                field,
            )


@pytest.mark.parametrize("seed", [3, 4])
def test_the_fact_memo_answers_every_frontier_it_holds_as_expand(graph, seed):
    """What the memo keeps of a neighbourhood and of an expansion answers any frontier
    of the people and numbers it holds as ``expand`` does (the same facts)."""
    from collections import Counter

    from scenario import random_scenario
    from spillover.engines.ties import FactMemo

    g = graph(random_scenario(seed))
    memo = FactMemo()
    around = g.neighbourhood(["p0"], [])
    memo.keep_neighbourhood(around, [])
    people = sorted(around.covers)
    numbers = sorted({p.phone for p in around.periods if p.owner_id in around.covers})
    outside = sorted({u.loan.borrower_id for u in around.uses} - around.covers)
    assert memo.unknown([*people, *outside], numbers) == (outside, [])
    if outside:
        memo.keep(outside[:1], [], g.expand(outside[:1], [], date.max))
    for persons, phones in (
        (["p0"], []),
        (people[:2], numbers[:1]),
        (people, numbers),
        (people + outside[:1], []),
        ([], numbers),
    ):
        direct = g.expand(persons, phones, date.max)
        kept = memo.take(persons, phones)
        for field in ("periods", "own_loans", "uses"):
            assert Counter(getattr(kept, field)) == Counter(getattr(direct, field)), (
                persons,
                phones,
                field,
            )


@pytest.mark.parametrize("seed", [3, 4, 7])
def test_entries_explained_together_are_explained_as_one_by_one(graph, seed):
    """``explain_entries`` (on Neo4j sharing the facts it fetches) gives each entry the
    explanation ``explain`` gives it alone, byte for byte, every path and its count."""
    from scenario import random_scenario
    from spillover.engines.search import explain, explain_entries
    from spillover.render.json import explanation_json

    g = graph(random_scenario(seed, people=12, loans=40, entries=20, records=6))
    entries = [e for batch in g.iter_entries() for e in batch]
    for max_paths in (1, None):
        alone = [explanation_json(explain(g, e, max_paths=max_paths)) for e in entries]
        together = [explanation_json(x) for x in explain_entries(g, entries, max_paths=max_paths)]
        assert together == alone


def _entries_by_reading_all(g, kind: str, subject: str) -> list[str]:
    """The entries on a subject found the first way: every entry of the graph read and
    tested (a person: listed, a phone they owned that day, a record resolved to them)."""
    periods = [p for p in g.expand([subject], [], date.max).periods if p.owner_id == subject]
    out = []
    for batch in g.iter_entries():
        for e in batch:
            if e.subject_kind.value == kind:
                hit = e.subject == subject
            elif kind != "person":
                hit = False
            elif e.subject_kind.value == "record":
                match = g.matches([e.subject]).get(e.subject)
                hit = match is not None and match.person_id == subject
            else:
                hit = any(p.phone == e.subject and p.covers(e.listed_at) for p in periods)
            if hit:
                out.append(e.entry_id)
    return sorted(out)


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_the_entries_on_a_subject_are_found_by_their_subjects(graph, seed, monkeypatch):
    """``entries_about`` (reports, remedies, the service's person explanations) finds
    every entry on a person or a phone through its subjects, without reading every
    entry of the graph (a scan of 14,908 entries was 2.5 s of a report on Neo4j at 20k):
    the same entries as reading them all."""
    from scenario import random_scenario
    from spillover.engines.search import entries_about

    g = graph(random_scenario(seed, people=12, loans=40, entries=30, records=10))
    everyone = [e for batch in g.iter_entries() for e in batch]
    people = sorted({f"p{i}" for i in range(12)})
    phones = sorted({e.subject for e in everyone if e.subject_kind.value == "phone"})
    want = {(k, s): _entries_by_reading_all(g, k, s) for k in ("person",) for s in people}
    want |= {("phone", s): _entries_by_reading_all(g, "phone", s) for s in phones}
    assert any(len(v) > 1 for v in want.values())
    monkeypatch.setattr(g, "iter_entries", None)  # not read whole any more
    for (kind, subject), ids in want.items():
        assert [e.entry_id for e in entries_about(g, kind, subject)] == ids, (kind, subject)


def _pass_rows(ix, entry_ids: list[str], policy) -> dict[str, dict]:
    """The batch pass's audit rows of ``entry_ids`` over the index ``ix``, by entry id."""
    import numpy as np

    from spillover.engines.batch import rows
    from spillover.engines.batch.audit import audit_entries
    from spillover.facts.phonecodes import codes_in

    in_order = ix.entry_ids_by_code()
    found = codes_in(in_order, entry_ids)
    assert (found >= 0).all()
    wanted = set(entry_ids)
    return {
        str(row["entry_id"]): row
        for row in rows(audit_entries(ix, np.unique(found)), policy)
        if row["entry_id"] in wanted
    }


@pytest.mark.parametrize("seed", [3, 4, 7])
def test_the_pass_over_what_entries_reach_scores_them_as_over_the_whole_graph(graph, seed):
    """The batch pass over :func:`reachable_columns` of some entries (what Neo4j views
    score by) gives each of them the row the pass over the whole graph gives, with the
    search 1 to 4 loans deep, each entry alone and several together; the facts read are
    fewer than the graph's where the ties do not reach everything."""
    import random

    from scenario import random_scenario
    from spillover.engines.around import reachable_columns
    from spillover.engines.batch import Index
    from spillover.engines.ties import FactMemo

    g = graph(random_scenario(seed, people=40, loans=50, entries=30, records=8))
    everything = g.columns()
    ids = sorted(str(i) for i in everything.entry_ids)
    entries = g.entries(ids)
    rng = random.Random(seed)
    smaller = 0
    for depth in (1, 2, 3, 4):
        raw = default_policy_bytes().replace(b"max_loans = 3", f"max_loans = {depth}".encode())
        policy = parse_policy(raw)
        whole = _pass_rows(Index(everything, policy), ids, policy)
        for chosen in [[i] for i in ids] + [rng.sample(ids, 8), ids]:
            memo = FactMemo()
            cols = reachable_columns(g, [entries[i] for i in chosen], policy, memo)
            got = _pass_rows(Index(cols, policy), chosen, policy)
            assert got == {i: whole[i] for i in chosen}, (depth, chosen)
            smaller += len(cols.loan_ids) < len(everything.loan_ids)
    assert smaller > 0


@pytest.mark.neo4j
def test_explanations_of_copies_on_neo4j_follow_each_chain_step_once(neo4j_db, tmp_path):
    """Each explanation followed its entry's copy chain a round trip per step (a per-entry
    audit on Neo4j: a third of its time); explained together, the chains are fetched
    once, a request per step of the longest, and the explanations are the same."""
    from scaling import copy_chain_case
    from spillover.engines.search import explain, explain_entries
    from spillover.neo4j.ingest import ingest_folder
    from spillover.neo4j.store import Neo4jBackend
    from spillover.render.json import explanation_json

    folder = copy_chain_case(40).write(tmp_path / "chain")
    ingest_folder(folder, neo4j_db.driver, neo4j_db.settings.database)
    backend = Neo4jBackend(neo4j_db.driver, neo4j_db.settings.database)
    ids = [e.entry_id for batch in backend.iter_entries() for e in batch]
    last = list(backend.entries(ids[-5:]).values())
    alone = [explanation_json(explain(backend, e)) for e in last]
    calls = []
    real = backend.entries

    def counted(wanted):
        calls.append(len(wanted))
        return real(wanted)

    backend.entries = counted  # type: ignore[method-assign]
    together = [explanation_json(x) for x in explain_entries(backend, last)]
    assert together == alone
    assert len(calls) <= 40, len(calls)  # was a call per step of each chain: about 180
