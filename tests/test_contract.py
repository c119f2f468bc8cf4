"""The data contract's table specs are defined once (spillover.data.contract, over the row models
of spillover.data.rows): no other module spells a table list, a boolean spelling, the ISO day
pattern or the year bounds again, and docs/contract.md lists the same tables. The same for the
roles, statuses and kinds (the enums of spillover.facts.model), the ID and phone shapes
(spillover.facts.resident_id, spillover.facts.phones) and the match-factor defaults (the
default policy file)."""

from __future__ import annotations

import ast
import re
import sys
from enum import StrEnum
from pathlib import Path

import pytest

import spillover
from spillover import rules
from spillover.data import contract, rows
from spillover.data import parquet as parquetio
from spillover.facts import phones, resident_id
from spillover.facts.model import (
    APPLICANT,
    LinkRole,
    LoanStatus,
    MatchKey,
    PlatformKind,
    SubjectKind,
)
from spillover.policy import default_policy

PACKAGE = Path(spillover.__file__).parent
DOCS = Path(__file__).resolve().parents[1] / "docs" / "contract.md"
#: the modules allowed to spell the contract's specs: its home and the row models
HOMES = {"data/contract.py", "data/rows.py"}
TABLE_NAMES = set(contract.TABLES)
BOOL_TEXTS = {*contract.TRUE_TEXTS, *contract.FALSE_TEXTS}


def _strings(node: ast.AST) -> list[str] | None:
    """The elements of a tuple, list or set literal of string constants, else None."""
    if not isinstance(node, ast.Tuple | ast.List | ast.Set) or not node.elts:
        return None
    out = []
    for e in node.elts:
        if not (isinstance(e, ast.Constant) and isinstance(e.value, str)):
            return None
        out.append(e.value)
    return out


def _respellings(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` of every place that spells a spec of the contract again."""
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        texts = _strings(node)
        if texts is not None:
            if len(texts) >= 3 and set(texts) <= TABLE_NAMES:
                found.append((line, f"a list of tables {texts}"))
            lowered = {t.lower() for t in texts}
            if lowered & {"true", "false"} and (lowered - {"true", "false"}) & BOOL_TEXTS:
                found.append((line, f"boolean spellings {texts}"))
            if lowered == {"true", "false"}:
                found.append((line, f"boolean spellings {texts}"))
            if texts in (["true"], ["false"]):
                found.append((line, f"a boolean spelling {texts}"))
        if (
            isinstance(node, ast.IfExp)
            and isinstance(node.body, ast.Constant)
            and isinstance(node.orelse, ast.Constant)
            and {node.body.value, node.orelse.value} == {"true", "false"}
        ):
            found.append((line, "a boolean written as 'true'/'false'"))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "lit":
            args = node.args
            if args and isinstance(args[0], ast.Constant) and args[0].value in ("true", "false"):
                found.append((line, f"a boolean written as {args[0].value!r}"))
        years = (contract.MIN_YEAR, contract.MAX_YEAR)
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in years:
            found.append((line, f"the year bound {node.value}"))
        if isinstance(node, ast.Constant) and node.value == contract.ISO_DAY:
            found.append((line, "the ISO day pattern"))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if str(p.relative_to(PACKAGE)) not in HOMES)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_spells_the_contract_again(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _respellings(tree) == [], f"{path.name}: import it from spillover.data.contract"


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ('TABLES = ("people", "platforms", "phones", "loans")', "a list of tables"),
        ('_TRUE = ("true", "1", "yes")', "boolean spellings"),
        ('_FALSE = {"false", "0", "no"}', "boolean spellings"),
        ('_BOOL = ["false", "true"]', "boolean spellings"),
        ('x = "true" if b else "false"', "a boolean written"),
        ('c = F.lit("true")', "a boolean written"),
        ('opts = dict(true_values=["true"])', "a boolean spelling"),
        ("ok = y.between(1900, 2100)", "the year bound"),
        ('_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"', "the ISO day pattern"),
    ],
)
def test_the_scan_finds_each_kind_of_respelling(source: str, what: str) -> None:
    # what the modules spelled before the contract was defined once (plan of issue 20, §4)
    found = _respellings(ast.parse(source))
    assert any(w.startswith(what) for _, w in found), found


def test_the_scan_leaves_other_lists_alone() -> None:
    source = 'ORDER = ("platforms", "people", "owner_periods")\nn = 1899\nx = ("yes", "no")'
    assert _respellings(ast.parse(source)) == []


def test_the_contract_derives_from_the_row_models() -> None:
    assert list(contract.TABLES)[: len(contract.REQUIRED_TABLES)] == list(contract.REQUIRED_TABLES)
    assert set(contract.LINKAGE_TABLES) <= set(contract.TABLES)
    assert not set(contract.LINKAGE_TABLES) & set(contract.REQUIRED_TABLES)
    assert contract.PARQUET == parquetio.SUFFIX
    assert contract.TRUE in contract.TRUE_TEXTS and contract.FALSE in contract.FALSE_TEXTS
    assert (contract.MIN_YEAR, contract.MAX_YEAR) == (rows.MIN_YEAR, rows.MAX_YEAR)
    for table, model in contract.TABLES.items():
        assert contract.columns(table) == list(model.model_fields)
        assert set(contract.required_columns(model)) <= set(contract.columns(table))


def test_the_spaces_are_what_str_strip_removes() -> None:
    """Every code point Python counts as whitespace, and no other: what the exact loader's
    ``str.strip()`` trims, so what the fast loader and the Spark audit trim too."""
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert every == contract.SPACES
    assert all(f"{c}x{c}".strip() == "x" for c in contract.SPACES)


def test_the_spark_validator_reads_the_contracts_columns() -> None:
    spark = pytest.importorskip("spillover.audit.spark")
    assert list(spark.TABLES) == list(contract.TABLES)
    for table, (required, optional) in spark.TABLES.items():
        model = contract.TABLES[table]
        assert list(required) == contract.required_columns(model)
        assert set(optional) <= set(model.model_fields) - set(required)
    assert spark.OUT_FORMATS == contract.SUFFIXES


def _documented_tables() -> dict[str, list[str]]:
    """The table of docs/contract.md §1: table -> its columns (``*``: required)."""
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    start = lines.index("| table | columns (`*` required) | rules |") + 2
    out = {}
    for line in lines[start:]:
        m = re.match(r"^\| `(\w+)` \| (`[^|]*) \|", line)
        if not m:
            break
        out[m.group(1)] = re.findall(r"`(\w+\*?)`", m.group(2))
    return out


def test_the_documented_tables_are_the_contracts() -> None:
    documented = _documented_tables()
    assert list(documented) == list(contract.TABLES)
    for table, cols in documented.items():
        fields = contract.columns(table)
        assert [c.rstrip("*") for c in cols] == [
            c for c in fields if c in {d.rstrip("*") for d in cols}
        ], table
        required = contract.required_columns(contract.TABLES[table])
        assert set(required) <= {c.rstrip("*") for c in cols if c.endswith("*")}, table


# ---------------------------------------------------------------------------
# The roles, statuses and kinds (the enums of spillover.facts.model), the ID shapes and the
# match-factor defaults are written once too (issue 20 item 2)
# ---------------------------------------------------------------------------

#: the enums whose values no module lists again (it takes ``contract.enum_values(...)`` or
#: the members); ``SubjectKind`` is left out: its values are also the graph's node kinds
LISTED_ENUMS: tuple[type[StrEnum], ...] = (LinkRole, LoanStatus, PlatformKind, MatchKey)
#: a shape and the one module that spells it
SHAPES = {
    "the check characters of a resident ID": ("10X98765432", "facts/resident_id.py"),
    "the shape of a resident ID": ("{17}", "facts/resident_id.py"),
    "the shape of a mainland mobile number": ("1[3-9]", "facts/phones.py"),
}


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        value = node.value
        return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def _more_respellings(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """``(line, what)`` of every place in ``module`` that spells an enum's values, an ID or
    phone shape or a match factor again."""
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        texts = _strings(node)
        if texts is not None and len(texts) >= 3:
            for kind in LISTED_ENUMS:
                if set(texts) <= set(contract.enum_values(kind)):
                    found.append((line, f"the values of {kind.__name__} {texts}"))
        text = _text(node)
        for what, (shape, home) in SHAPES.items():
            if text is not None and shape in text and module != home:
                found.append((line, what))
        if (
            isinstance(node, ast.Tuple)
            and len(node.elts) == 2
            and isinstance(node.elts[0], ast.Attribute)
            and isinstance(node.elts[0].value, ast.Name)
            and node.elts[0].value.id == "MatchKey"
            and isinstance(node.elts[1], ast.Constant)
            and isinstance(node.elts[1].value, float)
        ):
            found.append((line, "a match factor"))
        if isinstance(node, ast.Dict) and node.keys:
            keys = [_text(k) if k is not None else None for k in node.keys]
            floats = [
                isinstance(v, ast.Constant) and isinstance(v.value, float) for v in node.values
            ]
            if all(k and k.startswith("match_") for k in keys) and all(floats):
                found.append((line, "a match factor"))
    return found


def _all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_spells_the_enums_shapes_or_match_factors_again(path: Path) -> None:
    module = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _more_respellings(tree, module) == [], (
        f"{module}: take the values from spillover.facts.model (contract.enum_values), the "
        "shapes from spillover.facts.resident_id / phones, the match factors from the "
        "default policy file (spillover.rules.MATCH_FACTOR_DEFAULTS)"
    )


@pytest.mark.parametrize(
    ("source", "what"),
    [
        # what the modules spelled before (synth, rules, the fast loader, link, export)
        (
            '_ROLES = ("emergency_contact", "reference", "address_book", "guarantor")',
            "the values of LinkRole",
        ),
        ('_STATUSES = ("current", "repaid", "overdue", "defaulted")', "the values of LoanStatus"),
        (
            'for role in ("guarantor", "emergency_contact", "reference"): pass',
            "the values of LinkRole",
        ),
        ('KINDS = {"bank", "online_lender", "data_broker"}', "the values of PlatformKind"),
        ('_ID_CHECK = np.frombuffer(b"10X98765432", np.uint8)', "the check characters"),
        ('ok = pc.match_substring_regex(v, r"^\\d{17}[\\dX]$")', "the shape of a resident ID"),
        ('_E164_CN = re.compile(r"\\+861[3-9]\\d{9}")', "the shape of a mainland mobile"),
        ("D = dict(((MatchKey.KNOWN, 1.0), (MatchKey.OTHER, 0.05)))", "a match factor"),
        ('D = {"match_known": 1.0, "match_other": 0.05}', "a match factor"),
    ],
)
def test_the_scan_finds_each_respelling_of_values_and_shapes(source: str, what: str) -> None:
    found = _more_respellings(ast.parse(source), "x.py")
    assert any(w.startswith(what) for _, w in found), found


def test_the_enum_columns_derive_from_the_row_models() -> None:
    assert {
        ("platforms", "kind"): PlatformKind,
        ("loans", "status"): LoanStatus,
        ("loan_links", "role"): LinkRole,
        ("blacklist", "subject_kind"): SubjectKind,
        ("matches", "matched_by"): MatchKey,
    } == contract.ENUM_COLUMNS
    # what was written out before the enums were read (synth's order is the enum's)
    assert contract.enum_values(LinkRole) == (
        "emergency_contact",
        "reference",
        "address_book",
        "guarantor",
    )
    assert contract.enum_values(LoanStatus) == ("current", "repaid", "overdue", "defaulted")


def test_every_table_keyed_by_an_enum_has_every_value() -> None:
    """Tables that hold words for each role, status or match key (they cannot be derived)
    name exactly the enum's values."""
    from spillover.render import i18n

    roles = {APPLICANT, *contract.enum_values(LinkRole)}
    assert set(rules.ROLES) == roles
    assert set(i18n.ROLE_TEXTS_ZH) == roles
    assert set(i18n.LOAN_STATUS) == set(contract.enum_values(LoanStatus))
    assert set(i18n.MATCH_HOW_ZH) == set(contract.enum_values(MatchKey))
    assert set(rules.MATCH_TEXTS) == set(MatchKey)


def test_the_id_and_phone_shapes_are_the_validators() -> None:
    assert resident_id.check_character("11010519491231002") == "X"
    assert re.fullmatch(resident_id.ID_SHAPE, "11010519491231002X")
    assert not re.fullmatch(resident_id.ID_SHAPE, "11010519491231002x")
    assert phones.mobile_pattern("CN") == (phones.CN_MOBILE_E164, phones.CN_MOBILE_NATIONAL)
    assert re.fullmatch(phones.CN_MOBILE_NATIONAL, "13957112345")
    # the outline takes every valid mainland mobile number (and more: it does not validate)
    assert re.fullmatch(phones.CN_MOBILE_SHAPE, "13957112345")
    assert re.fullmatch(phones.CN_MOBILE_SHAPE, "14012345678")


def test_the_match_factor_defaults_are_the_default_policys() -> None:
    policy = default_policy()
    assert list(rules.MATCH_FACTOR_DEFAULTS) == [f"match_{k.value}" for k in MatchKey]
    assert dict(rules.MATCH_FACTOR_DEFAULTS) == {
        k: policy.factors[k] for k in rules.MATCH_FACTOR_DEFAULTS
    }
    # the values docs/scoring.md justifies (written here once more to catch a change)
    assert dict(rules.MATCH_FACTOR_DEFAULTS) == {
        "match_known": 1.0,
        "match_id_number": 1.0,
        "match_name_and_phone": 0.9,
        "match_name_and_birth_date": 0.8,
        "match_name_and_city": 0.5,
        "match_phone_only": 0.05,
        "match_name_only": 0.2,
        "match_other": 0.05,
        "match_new_identity": 1.0,
    }
