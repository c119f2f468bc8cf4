"""The rules module is the one definition of step kinds, factors, codes and verdicts."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import spillover
from spillover.cli import cli
from spillover.errors import PolicyError
from spillover.examples import jiang_case_path
from spillover.facts.model import LinkRole, LoanStatus
from spillover.policy import default_policy, default_policy_bytes, parse_policy
from spillover.render.json import ExplanationOut
from spillover.rules import (
    APPLICANT,
    DIAGNOSIS_CODES,
    FACTOR_KEYS,
    FINDINGS,
    NO_PATH,
    REASONS,
    ROLES,
    STEP_KINDS,
    TIE_KINDS,
    Verdict,
    factor,
    kind_of,
    score,
    subject_phone_kind,
    use_kind,
)

PACKAGE = Path(spillover.__file__).parent
#: the packages that run or render the rules; none of their modules may spell a rule itself
RULE_USERS = (
    "engines",
    "backends",
    "neo4j",
    "render",
    "audit",
    "service",
    "link",
    "simulate",
    "disputes",
)
#: modules of those that name rule strings on purpose: the graph's relationship types as the
#: ingest and the bulk import write them, the translations keyed by reason code, and the
#: report's per-reason sections (each checked against the rules by its own tests)
SPELLS_ON_PURPOSE = {"neo4j/bulk.py", "neo4j/ingest.py", "render/i18n.py", "render/report.py"}
ENGINES_AND_RENDERERS = sorted(
    name
    for package in RULE_USERS
    for p in (PACKAGE / package).rglob("*.py")
    if p.name != "__init__.py" and (name := str(p.relative_to(PACKAGE))) not in SPELLS_ON_PURPOSE
)


def test_the_policy_file_sets_exactly_the_factor_keys_of_the_rules():
    raw = tomllib.loads(default_policy_bytes().decode())
    assert tuple(raw["factors"]) == FACTOR_KEYS
    assert tuple(default_policy().factors) == FACTOR_KEYS


def test_a_policy_without_a_factor_of_the_rules_is_refused():
    text = default_policy_bytes().decode().replace("reference = 0.04\n", "")
    with pytest.raises(spillover.PolicyError, match=r"factors\.reference"):
        parse_policy(text.encode())


def test_every_reason_code_comes_from_a_step_kind_or_the_diagnosis():
    kind_codes = {k.code for k in STEP_KINDS.values() if k.code is not None}
    assert set(REASONS) == kind_codes | {NO_PATH, *DIAGNOSIS_CODES}
    assert len(kind_codes) == len([k for k in STEP_KINDS.values() if k.code is not None])


@pytest.mark.parametrize("kind", list(STEP_KINDS.values()), ids=lambda k: k.name)
def test_a_step_names_its_kind(kind):
    roles = list(ROLES) if kind.rel is None else [None]
    for role in roles:
        assert kind_of(kind.rel_for(role), kind.code) is kind or (
            # the two kinds of BORROWED step differ by code only
            kind.name == "chained_loan"
        )


def test_the_data_format_knows_every_link_role_of_the_rules():
    assert {r.value for r in LinkRole} == set(ROLES) - {APPLICANT}
    assert all(STEP_KINDS[r.value].rel == ROLES[r.value].rel for r in LinkRole)


def test_tie_kinds_choose_factors_from_the_policy():
    p = default_policy()
    assert factor(p, use_kind("applicant", True)) == p.factors["applicant_sms_verified"]
    assert factor(p, use_kind("applicant", None)) == p.factors["applicant_unverified"]
    for role in ("guarantor", "emergency_contact", "reference", "address_book"):
        assert use_kind(role, True) is use_kind(role, False) is STEP_KINDS[role]
    own = subject_phone_kind("reference", False, borrower_owned=True, owner_changed=False)
    moved = subject_phone_kind("applicant", True, borrower_owned=True, owner_changed=True)
    assert (own.code, moved.code) == ("OWN_PHONE", "PHONE_REASSIGNED")
    assert factor(p, STEP_KINDS["sharing"]) == 1.0
    assert all(k.factor_key is not None for k in TIE_KINDS)


@pytest.mark.parametrize(
    ("responsibility", "expected"),
    [
        (None, (None, 1.0, Verdict.UNEXPLAINED)),
        (1.0, (1.0, 0.0, Verdict.OWN_CONDUCT)),
        (0.5, (0.5, 0.5, Verdict.SPILLOVER)),  # spillover_at 0.5 is spillover
        (0.5000004, (0.5, 0.5, Verdict.SPILLOVER)),
        (0.72, (0.72, 0.28, Verdict.OWN_CONDUCT)),
        (0.05 * 0.1, (0.005, 0.995, Verdict.SPILLOVER)),
    ],
)
def test_score(responsibility, expected):
    s = score(responsibility, default_policy())
    assert (s.responsibility, s.contamination, s.verdict) == expected


def test_verdict_values_are_the_output_strings():
    schema = ExplanationOut.model_json_schema()
    assert set(schema["$defs"]["Verdict"]["enum"]) == {
        "own_conduct",
        "spillover",
        "unexplained",
    }
    assert [v.value for v in Verdict] == ["own_conduct", "spillover", "unexplained"]


@pytest.mark.parametrize("module", ENGINES_AND_RENDERERS)
def test_engines_and_renderers_spell_no_rule_themselves(module):
    """A factor key, reason code or verdict appears as a literal only in the rules."""
    rule_strings = (
        set(FACTOR_KEYS)
        | set(REASONS)
        | {v.value for v in Verdict}
        | {r.rel for r in ROLES.values()}
        | set(FINDINGS)
    )
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not literals & rule_strings


def test_the_contract_page_lists_exactly_the_reason_codes_and_texts_of_the_rules():
    page = (Path(__file__).resolve().parents[1] / "docs" / "contract.md").read_text("utf-8")
    section = page.split("### Reason codes", 1)[1].split("\n## ", 1)[0]
    rows = [
        line.split("|")[1:3]
        for line in section.splitlines()
        if line.startswith("| `") and line.count("|") == 3
    ]
    assert {code.strip().strip("`"): text.strip() for code, text in rows} == REASONS
    assert [code.strip().strip("`") for code, _ in rows] == list(REASONS)


def test_recommendation_thresholds_come_from_the_policy_with_defaults():
    from spillover.rules import Recommendation, recommendation

    text = default_policy_bytes().decode()
    start = text.index("[recommendation]")
    without = parse_policy(text[:start].encode())  # a policy file written before the section
    assert (without.review_at, without.do_not_list_at) == (0.3, 0.5)
    strict = parse_policy(
        text[:start].encode() + b"[recommendation]\nreview_at = 0.1\ndo_not_list_at = 0.2\n"
    )
    assert recommendation(0.05, strict) == Recommendation.LIST
    assert recommendation(0.15, strict) == Recommendation.REVIEW
    assert recommendation(0.2, strict) == Recommendation.DO_NOT_LIST
    assert recommendation(0.25, without) == Recommendation.LIST
    with pytest.raises(spillover.PolicyError, match="review_at must not exceed do_not_list_at"):
        parse_policy(text[:start].encode() + b"[recommendation]\nreview_at = 0.6\n")


# --- clean messages for hostile policy files (issue 19, item 11) ---------------------------


def _policy_with(old: str, new: str) -> bytes:
    text = default_policy_bytes().decode("utf-8")
    assert old in text
    return text.replace(old, new, 1).encode("utf-8")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("own_loan = 1.0", "own_loan = true", "factors.own_loan"),
        ("max_loans = 3", "max_loans = true", "search.max_loans"),
        ("spillover_at = 0.5", "spillover_at = true", "verdict.spillover_at"),
    ],
)
def test_a_boolean_is_no_number_in_a_policy(tmp_path, old, new, field):
    raw = _policy_with(old, new)
    with pytest.raises(PolicyError, match=f"p.toml: {field}: expected a number, not a boolean"):
        parse_policy(raw, "p.toml")
    path = tmp_path / "p.toml"
    path.write_bytes(raw)
    result = CliRunner().invoke(
        cli, ["audit", "--data", str(jiang_case_path()), "--policy", str(path)]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"spillover: error: {path}: {field}: expected a number")
    # an integer is still a number
    assert parse_policy(_policy_with("own_loan = 1.0", "own_loan = 1")).factor("own_loan") == 1.0


def test_a_policy_nested_2000_deep_is_one_clean_message(tmp_path):
    raw = _policy_with("own_loan = 1.0", "own_loan = " + "[" * 2000 + "]" * 2000)
    with pytest.raises(PolicyError, match=r"p\.toml: nested too deeply"):
        parse_policy(raw, "p.toml")
    path = tmp_path / "p.toml"
    path.write_bytes(raw)
    result = CliRunner().invoke(
        cli, ["audit", "--data", str(jiang_case_path()), "--policy", str(path)]
    )
    message = (
        f"spillover: error: {path}: nested too deeply: more than 32 levels of tables and arrays\n"
    )
    assert result.exit_code == 1
    assert result.output == message
    out = tmp_path / "run"
    simulate = [
        "simulate",
        "--data",
        str(jiang_case_path()),
        "--rule",
        "contacts",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, [*simulate, "--policy", str(path)])
    assert (result.exit_code, result.output) == (1, message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ("[]", "must include 'defaulted'"),
        ('["overdue"]', "must include 'defaulted'"),
        ('["defaulted", "repaid"]', "not 'repaid'"),
        ('["current", "defaulted", "overdue"]', "not 'current'"),
    ],
)
def test_a_policy_whose_origins_break_own_default_is_refused(statuses, message):
    """docs/contract.md §3: an own default explains a listing (contamination 0), and
    only a default is one; a policy that breaks either is refused when it loads."""
    raw = _policy_with(
        'origin_statuses = ["defaulted", "overdue"]', f"origin_statuses = {statuses}"
    )
    with pytest.raises(PolicyError, match=rf"p\.toml: search\.origin_statuses: .*{message}"):
        parse_policy(raw, "p.toml")


def test_a_policy_may_count_defaulted_loans_alone_as_origins():
    raw = _policy_with(
        'origin_statuses = ["defaulted", "overdue"]', 'origin_statuses = ["defaulted"]'
    )
    assert parse_policy(raw).origin_statuses == {LoanStatus.DEFAULTED}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "guarantor = 0.8",
            'guarantor = "0.8"',
            "factors.guarantor: expected a number, not the text '0.8'",
        ),
        (
            "guarantor = 0.8",
            "guarantor = nan",
            "factors.guarantor: expected a finite number, not nan",
        ),
        (
            "spillover_at = 0.5",
            "spillover_at = inf",
            "verdict.spillover_at: expected a finite number, not inf",
        ),
        ("max_loans = 3", "max_loans = 2.0", "search.max_loans: expected a whole number, not 2.0"),
        (
            "max_paths = 10",
            'max_paths = "10"',
            "search.max_paths: expected a whole number, not the text '10'",
        ),
        ('name = "spillover-default"', 'name = " "', "policy.name: must not be empty"),
        ('version = "1.0.0"', 'version = ""', "policy.version: must not be empty"),
    ],
)
def test_a_policy_value_of_the_wrong_kind_is_refused_by_name(old, new, message):
    with pytest.raises(PolicyError, match="^" + re.escape(f"p.toml: {message}")):
        parse_policy(_policy_with(old, new), "p.toml")
