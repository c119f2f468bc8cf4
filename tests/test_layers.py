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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _import_graph() -> dict[str, set[str]]:
    """Every spillover module and the spillover modules it imports: all of its imports,
    at the top, inside functions and under ``if TYPE_CHECKING:`` (relative ones resolved;
    ``from .pkg import name`` is the module ``pkg.name`` when there is one, else ``pkg``)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                names = [f"{base}.{alias.name}" for alias in node.names]
                found.update(n for n in names if n in MODULES)
                if not all(n in MODULES for n in names):
                    found.add(base)
        graph[module] = {m for m in found if m in MODULES and m != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while group[-1:] != [v]:
                group.append(stack.pop())
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _import_graph()["spillover.demo"] >= {"spillover.core", "spillover.ingest"}


def test_no_import_circle_among_the_modules():
    # imports inside functions and under TYPE_CHECKING count: they close a circle too
    circles = _circles(_import_graph())
    assert not circles, "import circles: " + "; ".join(", ".join(c) for c in circles)


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
