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
    "SHIPPED_PRIOR_RECORDS",
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

#: How many records the shipped model's prior (``probability_two_random_records_match``)
#: was estimated on (``synth --people 8000 --seed 11 --records``). The prior is the chance
#: that two records taken at random are one person: the true pairs grow about as the
#: records, all pairs as their square, so it falls about as 1 / records. Used on a larger
#: folder the shipped prior is scaled by ``SHIPPED_PRIOR_RECORDS / records`` (never upward:
#: a smaller folder keeps it as shipped); a prior given with ``--settings`` never is.
SHIPPED_PRIOR_RECORDS = 15_929

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
