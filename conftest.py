"""Doctest collection over the package (pyproject.toml: ``--doctest-modules``).

A module of ``src/spillover`` that imports an optional extra that is not installed
(a third-party package, not part of spillover) is left out of the doctests instead
of failing the collection; any other import error still fails it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_PACKAGE = Path(__file__).parent / "src" / "spillover"


def _module_name(path: Path) -> str:
    parts = path.relative_to(_PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Skip a package module whose optional third-party import is missing."""
    if (
        collection_path.suffix != ".py"
        or collection_path.name == "__main__.py"  # pytest never imports it for doctests
        or not collection_path.is_relative_to(_PACKAGE)
    ):
        return None
    try:
        importlib.import_module(_module_name(collection_path))
    except ModuleNotFoundError as missing:
        top = (missing.name or "").partition(".")[0]
        if top and top != "spillover":
            return True
    except Exception:
        return None  # pytest's own import of the module reports the error
    return None
