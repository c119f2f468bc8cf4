"""Layers point one way: the driver only where Neo4j is used, the columns below the kernel."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spillover

PACKAGE = Path(spillover.__file__).parent

NO_DRIVER = """
import sys
from spillover.cli import main
import spillover.render
from spillover.settings import Neo4jSettings
sys.argv = ["spillover", "--help"]
try:
    main()
except SystemExit as exit:
    assert exit.code == 0, exit.code
"""


def test_help_rendering_and_settings_do_not_import_the_neo4j_driver():
    code = NO_DRIVER
    check = "\nassert 'neo4j' not in sys.modules, 'the neo4j driver was imported'\n"
    check += "assert Neo4jSettings.from_env(env={'NEO4J_URI': 'bolt://x'}).user == 'neo4j'\n"
    done = subprocess.run(
        [sys.executable, "-c", code + check], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # the settings are still importable from their old place
    compat = "from spillover.backends.neo4j import Neo4jSettings\n"
    compat += "from spillover.settings import Neo4jSettings as S\nassert Neo4jSettings is S\n"
    done = subprocess.run(
        [sys.executable, "-c", compat], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _imports(module: str) -> set[str]:
    """What ``module`` imports at run time (not under ``if TYPE_CHECKING:``)."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        ("columns.py", {".kernel", ".fastload", ".loader", ".backends", "neo4j"}),
        ("fastload.py", {".kernel"}),
        ("phonecodes.py", {".kernel", ".fastload", ".loader", ".columns", ".backends", "neo4j"}),
        ("backends/memory.py", {"..kernel"}),
        ("backends/neo4j.py", {"..kernel"}),
        ("backends/base.py", {"..kernel"}),
        ("rules.py", {".core", ".kernel", ".policy", ".backends", "numpy"}),
        ("render.py", {"neo4j", ".backends.neo4j"}),
        ("settings.py", {"neo4j"}),
    ],
)
def test_layers_point_one_way(module, must_not_import):
    assert not _imports(module) & must_not_import


DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _between(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->\n")[1].split(f"<!-- {name}:end -->")[0]


def test_the_public_api_is_what_the_docs_list():
    listed = re.findall(r"`(\w+)`", _between(DOCS.read_text(encoding="utf-8"), "public-api"))
    assert sorted(listed) == sorted(spillover.__all__)
    assert all(hasattr(spillover, name) for name in spillover.__all__)


def test_the_vocabulary_table_is_generated_from_the_rules():
    from spillover.rules import vocabulary_markdown

    assert _between(DOCS.read_text(encoding="utf-8"), "vocabulary") == vocabulary_markdown()


@pytest.mark.parametrize(
    "module",
    sorted(
        str(p.relative_to(PACKAGE).with_suffix("")).replace("/", ".")
        for p in PACKAGE.rglob("*.py")
        if p.name != "__main__.py"
    ),
)
def test_implementation_modules_declare_what_they_export(module):
    name = "spillover" if module == "__init__" else "spillover." + module.removesuffix(".__init__")
    mod = importlib.import_module(name)
    assert isinstance(getattr(mod, "__all__", None), list), f"{name} has no __all__"
    assert all(hasattr(mod, n) for n in mod.__all__)
