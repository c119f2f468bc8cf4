"""Every policy that loads keeps the contract (docs/scoring.md "Properties every policy
keeps"), not only the default: the properties on random small graphs, the batch audit
equal to ``explain``, ``check`` equal to ``explain`` of the same listing, and the remedy's
cut clearing the entry, each under a drawn policy (tests/policy_space.py)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_space import policies
from scenario import Scenario, random_scenario
from spillover import read_dataset
from spillover.audit.batch import audit_rows, write_audit
from spillover.audit.rows import audit_row
from spillover.backends.memory import MemoryBackend
from spillover.disputes.apply import corrected
from spillover.engines.remedy import remedy
from spillover.engines.search import Explanation, check, explain, explain_entry
from spillover.policy import Policy, default_policy_bytes, parse_policy
from spillover.render.json import explanation_json
from spillover.rules import Verdict, kind_of, rounded
from test_audit_pass import _jiang
from test_properties import ROLES, chain, random_graph

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: the factors of a tie through a stranger's use of the subject's phone (each <= 0.1)
STRANGER = {
    "applicant_sms_verified",
    "applicant_unverified",
    "emergency_contact",
    "reference",
    "address_book",
    "reassigned_phone",
}
#: ... and with the factor of a phone-only match, the factors kept <= 0.1
AT_MOST_A_TENTH = STRANGER | {"match_phone_only"}


def _well_formed(e: Explanation, policy: Policy) -> None:
    """The score, verdict and paths of ``e`` as the policy makes them; no path through a
    factor bounded by 0.1 (a stranger's use of the phone, a phone-only match) is more
    responsible than 0.1."""
    assert 0 <= e.contamination <= 1
    if not e.paths:
        assert e.verdict == Verdict.UNEXPLAINED and e.contamination == 1
        return
    best = e.paths[0].responsibility
    assert e.contamination == rounded(1 - best)
    want = Verdict.SPILLOVER if e.contamination >= policy.spillover_at else Verdict.OWN_CONDUCT
    assert e.verdict == want
    assert len(e.paths) <= policy.max_paths
    for path in e.paths:
        assert math.copysign(1, path.responsibility) == 1  # never -0.0
        assert 1 <= path.hops <= policy.max_loans
        assert path.origin.status in policy.origin_statuses
        assert math.isclose(
            path.responsibility, math.prod(x.factor for x in path.steps), abs_tol=1e-6
        )
        if AT_MOST_A_TENTH & {kind_of(x.rel, x.code).factor_key for x in path.steps}:
            assert path.responsibility <= 0.1 + 1e-9  # contamination >= 0.9


@SETTINGS
@given(random_graph(), policies())
def test_explanations_are_well_formed_under_any_policy(graph, s, policy):
    _well_formed(explain_entry(graph(s), "E", policy), policy)


@SETTINGS
@given(random_graph(), policies())
def test_an_added_own_default_never_raises_contamination_under_any_policy(graph, s, policy):
    before = explain_entry(graph(s), "E", policy).contamination
    entry = s.tables["blacklist"][0]
    s.loan("OWN", entry["platform_id"], "p0", "2022-12-01", "defaulted", status_at="2022-12-15")
    after = explain_entry(graph(s), "E", policy)
    assert after.contamination <= before
    if entry["subject_kind"] == "person":
        assert after.contamination == 0 and after.verdict == Verdict.OWN_CONDUCT


@SETTINGS
@given(random_graph(), policies())
def test_address_book_never_more_responsible_than_emergency_contact_under_any_policy(
    graph, s, policy
):
    book = explain_entry(graph(s), "E", policy).contamination
    seen, unique = set(), []
    for row in s.tables["loan_links"]:
        if row["role"] == "address_book":
            row["role"] = "emergency_contact"
        key = (row["loan_id"], row["phone"], row["role"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    s.tables["loan_links"] = unique
    assert book >= explain_entry(graph(s), "E", policy).contamination


@SETTINGS
@given(
    st.lists(st.sampled_from(ROLES), min_size=1, max_size=2),
    st.sampled_from(ROLES),
    st.integers(0, 2),
    policies(),
)
def test_a_longer_chain_never_lowers_contamination_under_any_policy(
    graph, roles, extra, where, policy
):
    longer = [*roles[: min(where, len(roles))], extra, *roles[min(where, len(roles)) :]]
    short = explain_entry(graph(chain(roles)), "E", policy).contamination
    assert explain_entry(graph(chain(longer)), "E", policy).contamination >= short


def _guarantor_case(verified: bool) -> Scenario:
    s = Scenario()
    s.platform("lender")
    s.person("jiang")
    s.person("xu")
    phone = s.phone("jiang", verified=verified)
    s.loan("L", "lender", "xu", "2023-01-10", "defaulted", status_at="2023-02-01")
    s.link("L", phone, "guarantor")
    s.entry("E", "lender", "jiang", "2023-04-01")
    return s


@SETTINGS
@given(st.booleans(), policies())
def test_a_guarantor_is_at_most_030_under_any_policy(graph, verified, policy):
    assert explain_entry(graph(_guarantor_case(verified)), "E", policy).contamination <= 0.3


WORLDS = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "people": st.integers(3, 10),
        "loans": st.integers(1, 30),
        "entries": st.integers(1, 10),
        "records": st.sampled_from([0, 0, 4, 8]),
    }
)


def _world(w: dict[str, int]) -> Scenario:
    return random_scenario(
        w["seed"], people=w["people"], loans=w["loans"], entries=w["entries"], records=w["records"]
    )


@SETTINGS
@given(WORLDS, policies())
def test_the_batch_audit_is_explain_under_any_policy(graph, world, policy):
    g = graph(_world(world))
    one_pass = list(audit_rows(g, policy, method="pass"))
    entries = g.entries([row["entry_id"] for row in one_pass])
    explained = [  # (audit rows carry no diagnosis of unexplained entries)
        audit_row(explain(g, entries[row["entry_id"]], policy, diagnose=False)).model_dump(
            mode="json"
        )
        for row in one_pass
    ]
    for entry in entries.values():
        _well_formed(explain(g, entry, policy), policy)
    # as written (json: 0.0 and -0.0 differ there)
    assert json.dumps(one_pass) == json.dumps(explained)
    assert json.dumps(list(audit_rows(g, policy, method="per-entry"))) == json.dumps(explained)


@SETTINGS
@given(WORLDS, policies())
def test_check_is_explain_of_the_same_listing_under_any_policy(graph, world, policy):
    s = _world(world)
    g = graph(s)
    for row in s.tables["blacklist"]:
        if row["copied_from"]:  # a proposed listing copies nothing
            continue
        recorded = explain_entry(g, row["entry_id"], policy)
        proposed = check(
            g,
            row["platform_id"],
            row["subject_kind"],
            row["subject"],
            date.fromisoformat(row["listed_at"]),
            policy,
        )
        assert (proposed.contamination, proposed.verdict) == (
            recorded.contamination,
            recorded.verdict,
        )
        assert [(p.origin.loan_id, p.responsibility, p.depth) for p in proposed.paths] == [
            (p.origin.loan_id, p.responsibility, p.depth) for p in recorded.paths
        ]
        assert proposed.reason_codes == recorded.reason_codes


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(WORLDS, policies())
def test_the_remedy_clears_the_entry_under_any_policy(graph, tmp_path_factory, world, policy):
    """The records of an entry's remedy, corrected, leave it no longer spillover (the
    corrected folder explained in memory: the backends agree, tests/test_remedy.py)."""
    s = _world(world)
    g = graph(s)
    data = read_dataset(s.write(tmp_path_factory.mktemp("world")))
    for row in s.tables["blacklist"]:
        r = remedy(g, row["entry_id"], policy)
        if not r.needed:
            assert r.records == ()
            continue
        assert r.clearable and r.records, row["entry_id"]
        after = explain_entry(MemoryBackend(corrected(data, r.records)), row["entry_id"], policy)
        assert after.verdict != Verdict.SPILLOVER, (row["entry_id"], r.records)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(0, 100_000), st.sampled_from([0, 0, 6]), policies())
def test_a_reaudit_is_a_full_audit_under_any_policy(tmp_path_factory, seed, records, policy):
    """``changes`` re-scores only the entries a correction reaches (within the policy's
    ``max_loans``): the rows equal a full audit of the new version under the policy."""
    import random

    from spillover.audit.batch import pass_rows
    from spillover.audit.incremental import reaudit_rows
    from spillover.engines.batch import Index, columns_from_dataset
    from test_incremental import _mutate

    s = random_scenario(seed, people=10, loans=24, entries=12, records=records)
    a = read_dataset(s.write(tmp_path_factory.mktemp("world")))
    b = _mutate(a, random.Random(seed))
    for old, new in ((a, b), (b, a)):
        full = {str(r["entry_id"]): r for r in pass_rows(columns_from_dataset(new), policy)}
        rows_old = {str(r["entry_id"]): r for r in pass_rows(columns_from_dataset(old), policy)}
        after = Index(columns_from_dataset(new), policy)
        got = reaudit_rows(columns_from_dataset(old), rows_old, after, policy)
        assert got == full, seed


# --- the loader ---------------------------------------------------------------------

#: the default policy with every factor a stranger's use of the phone gets written -0.0
NEGATIVE_ZERO = default_policy_bytes()
for _key in sorted(STRANGER):
    NEGATIVE_ZERO = re.sub(
        rf"^{_key} = .*$".encode(), f"{_key} = -0.0".encode(), NEGATIVE_ZERO, flags=re.M
    )


def test_a_factor_written_minus_zero_is_zero(graph, tmp_path):
    """TOML's ``-0.0`` is a factor of 0 (in [0, 1]): every engine writes its paths'
    responsibility 0.0, so the one-pass and the per-entry audit write the same bytes, and
    no explanation shows ``-0.0``."""
    policy = parse_policy(NEGATIVE_ZERO, "negative-zero.toml")
    assert all(math.copysign(1, v) == 1 for v in policy.factors.values())
    g = graph(_jiang())
    a = write_audit(audit_rows(g, policy, method="pass"), tmp_path / "a.jsonl")
    b = write_audit(audit_rows(g, policy, method="per-entry"), tmp_path / "b.jsonl")
    assert a.verdicts == b.verdicts and a.verdicts["spillover"] > 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    e = explain_entry(g, "E-QT-J", policy)
    assert e.paths[0].responsibility == 0 and e.contamination == 1
    assert "-0.0" not in explanation_json(e)


#: the default policy file as an editor may save it: with a byte-order mark, CRLF lines
SAVED_AS = {
    "bom": b"\xef\xbb\xbf" + default_policy_bytes(),
    "crlf": default_policy_bytes().replace(b"\n", b"\r\n"),
    "bom-crlf": b"\xef\xbb\xbf" + default_policy_bytes().replace(b"\n", b"\r\n"),
}


@pytest.mark.parametrize("form", sorted(SAVED_AS))
def test_a_policy_saved_with_a_bom_or_crlf_loads_and_its_digest_is_its_bytes(
    tmp_path, monkeypatch, form
):
    """A UTF-8 byte-order mark (as in the data tables, docs/contract.md §1) and CRLF line
    ends are read; the digest every output names is the SHA-256 of the file's bytes as
    saved (mark and CRs included), in the explanation and in the audit's sidecar."""
    from click.testing import CliRunner

    from spillover.audit.meta import meta_path
    from spillover.cli import cli
    from spillover.examples import jiang_case_path
    from spillover.policy import default_policy, load_policy

    monkeypatch.delenv("NEO4J_URI", raising=False)
    raw = SAVED_AS[form]
    path = tmp_path / "saved.toml"
    path.write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    policy = load_policy(path)
    assert policy.factors == default_policy().factors and policy.digest == digest
    data = str(jiang_case_path())
    runner = CliRunner()
    done = runner.invoke(
        cli, ["explain", "E-QT-J", "--data", data, "--policy", str(path), "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    e = json.loads(done.output)
    assert e["policy"] == f"spillover-default 1.0.0 sha256:{digest}"
    assert e["policy_detail"]["digest"] == digest
    out = tmp_path / "audit.csv"
    done = runner.invoke(cli, ["audit", "--data", data, "--policy", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(meta_path(out).read_text())["policy_detail"]["digest"] == digest


def test_a_listing_rule_saved_with_a_bom_loads(tmp_path):
    """The listing rules of ``simulate`` are read by the same TOML reader."""
    from spillover.simulate.listing import load_rule

    path = tmp_path / "mine.toml"
    path.write_bytes(b'\xef\xbb\xbf[rule]\r\nname = "mine"\r\n')
    assert load_rule(str(path)).name == "mine"
