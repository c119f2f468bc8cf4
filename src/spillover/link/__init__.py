"""Identity linkage: the shipped Splink model and the resolution of records to people.

The linkage needs the ``link`` extra (Splink, DuckDB, pypinyin); it is imported when
:func:`link` runs, not here.
"""

from .resolve import LinkSummary, default_settings, link, load_settings
from .settings import AUTO_TRAIN_RECORDS, DEFAULT_THRESHOLD, SETTINGS_VERSION, require_extra

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
