"""The data contract's table specs are defined once (spillover.data.contract, over the row models
of spillover.data.rows): no other module spells a table list, a boolean spelling, the ISO day
pattern or the year bounds again, and docs/contract.md lists the same tables."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import spillover
from spillover.data import contract, rows
from spillover.data import parquet as parquetio

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
