"""The pages say what the code does: the lists of names README.md and docs/ show (options,
columns, saved queries, Cypher files, modules) held to the code they describe."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from spillover.audit.rows import AUDIT_COLUMNS
from spillover.cli import cli
from spillover.disputes.output import CHANGE_COLUMNS
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.simulate.metrics import METRIC_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "spillover"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _pages() -> str:
    """README.md and every page of docs/ (benchmarks.md only records measurements)."""
    pages = [ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "benchmarks.md")]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def _commands() -> dict[str, click.Command]:
    assert isinstance(cli, click.Group)
    return dict(cli.commands)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_every_command_is_in_the_docs(name: str) -> None:
    text = _pages()
    options = [
        opt
        for param in _commands()[name].params
        if isinstance(param, click.Option)
        for opt in [*param.opts, *param.secondary_opts]
        if opt.startswith("--") and opt != "--help"
    ]
    missing = [o for o in options if not re.search(re.escape(o) + r"(?![\w-])", text)]
    assert missing == [], f"spillover {name}: options no page names"


def _listed(text: str, after: str, until: str) -> list[str]:
    """The backticked names between ``after`` and ``until``, a range ``a_0``..``a_5``
    spelled out."""
    start = text.index(after) + len(after)
    part = text[start : text.index(until, start)]
    part = re.sub(
        r"`(\w+)_(\d)`\.\.`\1_(\d)`",
        lambda m: ", ".join(f"`{m[1]}_{i}`" for i in range(int(m[2]), int(m[3]) + 1)),
        part,
    )
    return re.findall(r"`(\w+)`", part)


def test_the_audit_columns_are_the_contracts() -> None:
    listed = _listed(
        _page("contract.md"), "One row per blacklist entry, in `entry_id` order:", "(space"
    )
    assert listed == AUDIT_COLUMNS


def test_the_metrics_columns_are_the_contracts() -> None:
    listed = _listed(_page("contract.md"), "columns in this order:", "(the last two")
    assert tuple(listed) == METRIC_COLUMNS


def test_the_changes_csv_columns_are_the_contracts() -> None:
    text = _page("contract.md")
    listed = _listed(text, "`spillover.disputes.output.CHANGE_COLUMNS`):", "(the\nlast two")
    assert listed == CHANGE_COLUMNS


def test_the_saved_queries_listed_in_investigating_are_the_packaged_ones() -> None:
    """The block after ``$ spillover query --list`` is what the command prints."""
    text = _page("investigating.md")
    block = text[text.index("$ spillover query --list\n") :].split("\n", 1)[1]
    block = block[: block.index("```")]
    result = CliRunner().invoke(cli, ["query", "--list"])
    assert result.exit_code == 0, result.output
    assert block == result.output


def test_the_graph_model_names_every_cypher_file() -> None:
    """Every file of ``neo4j/cypher/`` is in the Queries table of graph-model.md (or named
    elsewhere on the page: the schema, the Browser style), and every name there exists."""
    text = _page("graph-model.md")
    table = text[text.index("## Queries\n") :]
    table = table[: table.index("\n\n", table.index("| file |"))]
    named = re.findall(r"`([\w/*.-]+\.cypher)`", table)
    folder = PACKAGE / "neo4j" / "cypher"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.cypher"))
    elsewhere = {"schema.cypher"}  # its own section: Indexes
    unnamed = [
        f for f in files if f not in elsewhere and not any(fnmatch.fnmatch(f, n) for n in named)
    ]
    assert unnamed == []
    assert [n for n in named if not fnmatch.filter(files, n)] == []


def _rooms_in_the_diagram() -> tuple[dict[str, str], str]:
    """architecture.md's layer diagram: each room (``name/``) or top module named in its
    name column, with the text that describes it; and the whole diagram."""
    text = _page("architecture.md")
    start = text.index("```\n layer  room / module")
    block = text[start : text.index("```\n", start + 4)]
    rooms: dict[str, str] = {}
    current: list[str] = []
    for line in block.splitlines()[2:]:
        if line[:27].strip():  # a new entry: its names in the name column
            current = [n for n in re.findall(r"[\w.]+/?", line[:27]) if not n.isdigit()]
            rooms.update({name: "" for name in current})
        for name in current:
            rooms[name] += line[27:] + "\n"
    return rooms, block


def test_the_architecture_diagram_names_every_module_of_every_room() -> None:
    rooms, block = _rooms_in_the_diagram()
    missing = []
    packages = (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    for folder in sorted(packages):
        described = rooms.get(f"{folder.name}/")
        if described is None:
            if f"{folder.name}/" not in block:
                missing.append(f"{folder.name}/")
            continue
        for module in sorted(folder.glob("*.py")):
            if module.stem != "__init__" and not re.search(rf"\b{module.stem}\b", described):
                missing.append(f"{folder.name}/{module.name}")
    assert missing == []


def test_synth_help_names_the_records_table_in_any_form() -> None:
    """``--records`` writes ``records.jsonl`` or ``records.parquet`` with ``--format``: its
    help named ``records.csv`` alone."""
    result = CliRunner().invoke(cli, ["synth", "--help"])
    assert result.exit_code == 0
    records = result.output[result.output.index("--records") :]
    records = " ".join(records[: records.index("-h, --help")].split())
    assert "(records.csv)" not in records
    assert "records table" in records


def test_the_neighborhood_nodes_have_the_contracts_fields(tmp_path: Path) -> None:
    """contract.md §6, the exploration view as JSON: each kind of node with its fields."""
    text = _page("contract.md")
    part = text[text.index("and its fields: a") + len("and its fields:") :]
    part = part[: part.index("(space separated")]
    documented = {
        m[1]: set(re.findall(r"`(\w+)`", m[2]))
        for m in re.finditer(r"\ban?\s+(\w+)\s+([^;]*)", part)
    }
    shown: dict[str, set[str]] = {}
    for folder in (jiang_case_path(), jiang_records_path()):  # (records: jiang_records)
        out = tmp_path / f"{folder.name}.json"
        result = CliRunner().invoke(
            cli,
            ["neighborhood", "jiang", "--data", str(folder), "--format", "json", "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        for node in json.loads(out.read_text(encoding="utf-8"))["nodes"]:
            shown.setdefault(node["kind"], set()).update(set(node) - {"id", "kind", "label", "hop"})
    assert set(shown) == set(documented)
    for kind, fields in shown.items():
        assert fields <= documented[kind], kind


def test_the_readme_layout_names_every_room() -> None:
    """README.md's "Layout" paragraph names each folder of the package (but the packaged
    example folders, which hold data)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("Layout: ") :]
    rooms = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert [r for r in rooms if r != "examples" and f"`{r}/`" not in layout] == []


def test_privacy_lists_the_check_log_among_what_spillover_stores() -> None:
    """docs/privacy.md's table of what spillover stores has a row for the check log that
    ``serve`` writes by default, with what a line holds (docs/service.md)."""
    default = next(p.default for p in _commands()["serve"].params if p.name == "check_log")
    stores = _page("privacy.md").split("## What spillover stores", 1)[1].split("\n#", 1)[0]
    row = next(line for line in stores.splitlines() if "--check-log" in line)
    assert f"`{default}`" in row
    for field in ("stated_reason", "phone_owner_id", "token"):
        assert field in row
