"""After a dispute: a remedy applied to a copy of the data, and what a correction changed
(docs/disputes.md)."""

from .apply import (
    CORRECTIONS_FILE,
    AppliedRemedy,
    apply_remedy,
    corrected,
    dataset_records,
    folder_format,
)
from .changes import Changes, EntryChange, EntryState, changes, compare_datasets

__all__ = [
    "CORRECTIONS_FILE",
    "AppliedRemedy",
    "Changes",
    "EntryChange",
    "EntryState",
    "apply_remedy",
    "changes",
    "compare_datasets",
    "corrected",
    "dataset_records",
    "folder_format",
]
