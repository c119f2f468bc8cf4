"""Identity linkage: the shipped Splink model and the resolution of records to people.

The linkage needs the ``link`` extra (Splink, DuckDB, pypinyin): the names of
:mod:`spillover.link.resolve` (``link``, ``LinkSummary``, ...) are imported when first
asked for, so that ``import spillover.link`` and the command line work without it.
"""

from __future__ import annotations

import importlib

from .settings import AUTO_TRAIN_RECORDS, DEFAULT_THRESHOLD, SETTINGS_VERSION, require_extra

#: the names that need the link extra, from the module that defines them
_LAZY = {
    "LinkSummary": "resolve",
    "default_settings": "resolve",
    "link": "resolve",
    "load_settings": "resolve",
}


def __getattr__(name: str) -> object:
    """The names that need the ``link`` extra, imported when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUTO_TRAIN_RECORDS",
    "DEFAULT_THRESHOLD",
    "SETTINGS_VERSION",
    "LinkSummary",
    "default_settings",
    "link",
    "load_settings",
    "require_extra",
]
