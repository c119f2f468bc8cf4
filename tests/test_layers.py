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
import spillover.render.text
from spillover.neo4j.settings import Neo4jSettings
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


#: The layers, bottom to top: a module may import its own package (its "room": the folder
#: under spillover/, or the module itself at the top) and the rooms of the layers below;
#: two rooms of one layer never import each other (docs/architecture.md).
LAYERS: list[set[str]] = [
    {"version", "memory", "facts", "files", "text", "examples"},
    {"errors", "rules"},
    {"policy", "data"},
    {"engines", "link", "synth"},
    {"backends", "render"},
    {"neo4j"},
    {"connect"},
    {"audit"},
    {"simulate", "service", "demo", "spillover"},
    {"disputes"},
    {"cli"},
    {"__main__"},
]
LAYER = {room: number for number, rooms in enumerate(LAYERS) for room in rooms}

#: What a function may import inside itself rather than at the top: the optional extras,
#: the Neo4j driver and the modules that import it (``spillover --help`` and the embedded
#: engines never load it), Spark, and the standard library's heavy or rarely used parts.
LAZY_PREFIXES = (
    "pyspark",
    "splink",
    "duckdb",
    "pypinyin",
    "neo4j",
    "neo4j_viz",
    "fastapi",
    "uvicorn",
    "h11",
    "uvloop",
    "httptools",
    "matplotlib",
    "spillover.neo4j.store",
    "spillover.neo4j.ingest",
    "spillover.neo4j.bulk",
    "spillover.neo4j.writeback",
    "spillover.neo4j.saved",
    "spillover.audit.spark",
    "spillover.service.run",
    "spillover.service.uvhttp",
    "spillover.link.resolve",
    "spillover.link.report",
)

#: at most this many modules directly in src/spillover/ (the rest live in their rooms)
MAX_TOP_MODULES = 16


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "spillover"


WITHOUT_EXTRAS = """
import importlib.abc, sys
EXTRAS = {"pypinyin", "splink", "duckdb", "pyspark", "fastapi", "fastapi_offline", "uvicorn",
          "neo4j_viz", "matplotlib"}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
import spillover, spillover.link, spillover.service, spillover.audit, spillover.render
from spillover.cli import main
sys.argv = ["spillover", "--help"]
try:
    main()
except SystemExit as exit:
    assert exit.code == 0, exit.code
"""


def test_the_package_and_the_command_line_load_without_the_optional_extras():
    """``pip install spillover`` without extras: the library and ``spillover --help`` load
    (the extras' modules are imported where a command needs them, not before)."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _all_imports() -> list[tuple[str, str, bool]]:
    """(module, imported name, inside a function) for every import of every module of the
    package, relative names resolved (``from ..neo4j import x`` is spillover.neo4j, the
    driver is ``neo4j``); ``from pkg import name`` is the module ``pkg.name`` if there is one."""
    out = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                    for a in node.names
                ]
            else:
                continue
            out.extend((module, name, id(node) in inside) for name in names)
    return out


def test_every_room_is_in_one_layer():
    rooms = {_room(module) for module in MODULES}
    assert rooms <= set(LAYER), f"rooms in no layer: {sorted(rooms - set(LAYER))}"
    assert sum(len(layer) for layer in LAYERS) == len(LAYER)


def test_imports_only_go_down_the_layers():
    wrong = sorted(
        f"{module} imports {name}"
        for module, name, _ in _all_imports()
        if name.startswith("spillover")
        and _room(name) != _room(module)
        and LAYER[_room(name)] >= LAYER[_room(module)]
    )
    assert not wrong, "\n".join(wrong)


def test_the_driver_and_spark_are_imported_only_in_their_rooms():
    wrong = sorted(
        f"{module} imports {name}"
        for module, name, _ in _all_imports()
        if (name.split(".")[0] == "neo4j" and not module.startswith("spillover.neo4j."))
        or (name.split(".")[0] == "pyspark" and not module.startswith("spillover.audit.spark"))
    )
    assert not wrong, "\n".join(wrong)


def _lazy(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in LAZY_PREFIXES)


def test_a_function_imports_only_what_must_load_late():
    found = {
        f"{module} -> {name}"
        for module, name, inside in _all_imports()
        if inside and not _lazy(name) and name.split(".")[0] not in STDLIB_LAZY
    }
    assert not found, "\n".join(sorted(found))


#: standard-library modules a function may import where it needs them (a subprocess or a
#: thread started once; importing them at the top would cost every command their load time)
STDLIB_LAZY = {"subprocess", "threading", "shlex", "shutil", "importlib"}


def test_few_modules_sit_directly_in_the_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _import_graph()["spillover.demo"] >= {
        "spillover.engines.search",
        "spillover.neo4j.ingest",
    }


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


def _module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(here: str, is_package: bool, module: str | None, level: int) -> str:
    """The absolute name a ``from ... import`` in module HERE names."""
    if level == 0:
        return module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(path: Path) -> list[str]:
    """Every private name PATH takes from another module of the package: ``from .x import
    _y`` and ``m._y`` where ``m`` is a spillover module it imported."""
    here = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> spillover module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(here, path.name == "__init__.py", node.module, node.level)
            if not (source == "spillover" or source.startswith("spillover.")):
                continue
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if _private(alias.name) and target != here:
                    found.append(f"{path.name}:{node.lineno} from {source} import {alias.name}")
                elif _is_module(target):
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("spillover."):
                    modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and modules[node.value.id] != here
        ):
            found.append(f"{path.name}:{node.lineno} {modules[node.value.id]}.{node.attr}")
    return found


def _is_module(name: str) -> bool:
    """Whether NAME is a module of the package (a file or a folder with __init__)."""
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (
        PACKAGE / relative / "__init__.py"
    ).is_file()


def _private_definitions(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, methods, assigned names
    and ``self._x`` attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _private(n)}


def _private_uses(
    path: Path, trees: dict[Path, ast.AST], defined: dict[Path, set[str]]
) -> list[str]:
    """``obj._name`` in PATH (``obj`` not ``self``/``cls``) where ``_name`` is defined only
    in other modules of the package: a private method or attribute of another module's
    class (``index._period_at``)."""
    elsewhere = set().union(*(names for other, names in defined.items() if other != path))
    return [
        f"{path.name}:{node.lineno} .{node.attr}"
        for node in ast.walk(trees[path])
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and _private(node.attr)
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        and node.attr in elsewhere
        and node.attr not in defined[path]
    ]


def test_no_module_imports_a_private_name_of_another():
    """A leading underscore means "only this module": another module of the package that
    needs the name gets a public one (issue 20, plan §3)."""
    paths = sorted(PACKAGE.rglob("*.py"))
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    defined = {path: _private_definitions(tree) for path, tree in trees.items()}
    found = [hit for path in paths for hit in _private_imports(path)]
    found += [hit for path in paths for hit in _private_uses(path, trees, defined)]
    assert not found, "\n".join(found)


#: no function of the package longer than this many lines (issue 20)
MAX_FUNCTION_LINES = 100


def test_no_function_is_longer_than_a_screen_or_two():
    long = {
        f"{path.relative_to(PACKAGE)}:{node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long, sorted(long)
