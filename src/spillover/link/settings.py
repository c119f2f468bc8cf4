"""Identity linkage: the models shipped with spillover (Splink settings JSON) and the defaults.

The linkage itself is :mod:`spillover.link.resolve` (docs/linkage.md); it needs the
``link`` extra (Splink, DuckDB, pypinyin), which :func:`require_extra` checks so
that a command without it stops with one clear line.
"""

from __future__ import annotations

import importlib.util

from ..errors import SpilloverError

__all__ = [
    "AUTO_TRAIN_RECORDS",
    "DEFAULT_THRESHOLD",
    "EXTRA_MODULES",
    "MAX_BLOCK_SIZE",
    "SETTINGS_VERSION",
    "require_extra",
]

#: Pairs at or above this match probability are the same person (``--threshold``).
DEFAULT_THRESHOLD = 0.9

#: A blocking key value (one phone, one ID number, one name in one city...) shared by more
#: than this many records is not used alone to bring pairs together: its records are
#: compared only where their names also agree (``--max-block-size``, docs/linkage.md).
#: Without it one phone on 10 000 records makes 50 million pairs.
MAX_BLOCK_SIZE = 1000

#: The model shipped with the package (``spillover/link/<version>.json``, made by
#: ``scripts/make-link-model.py``): the fallback for folders too small to estimate their own.
SETTINGS_VERSION = "splink-v5"

#: With no model given, a folder of at least this many records gets one estimated from its
#: own records (``--train``); a smaller one is linked with the shipped model.
AUTO_TRAIN_RECORDS = 1000

#: The modules of the ``link`` extra.
EXTRA_MODULES = ("splink", "duckdb", "pypinyin")


def require_extra() -> None:
    """Raise :class:`~spillover.errors.SpilloverError` unless the ``link`` extra is installed.

    >>> require_extra()  # the test extra installs it
    """
    missing = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise SpilloverError(
            f"spillover link needs the 'link' extra ({', '.join(missing)} not installed): "
            "pip install 'spillover[link]'"
        )
