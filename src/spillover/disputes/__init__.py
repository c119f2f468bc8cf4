"""After a dispute: a remedy applied to a copy of the data, what a correction changed, and
the notices to every platform that must act (docs/disputes.md)."""

from .apply import (
    CORRECTIONS_FILE,
    AppliedRemedy,
    apply_remedy,
    check_options,
    columns_records,
    corrected,
    dataset_records,
    folder_format,
)
from .changes import (
    Changes,
    EntryChange,
    EntryState,
    Version,
    changes,
    compare_audit,
    compare_datasets,
    compare_versions,
    folder_version,
    store_version,
)
from .notices import Notice, notices, write_notices
from .output import (
    applied_dict,
    applied_text,
    changes_csv,
    changes_dict,
    changes_json,
    changes_text,
    write_changes,
)
from .review import Review, review

__all__ = [
    "CORRECTIONS_FILE",
    "AppliedRemedy",
    "Changes",
    "EntryChange",
    "EntryState",
    "Notice",
    "Review",
    "Version",
    "applied_dict",
    "applied_text",
    "apply_remedy",
    "changes",
    "changes_csv",
    "changes_dict",
    "changes_json",
    "changes_text",
    "check_options",
    "columns_records",
    "compare_audit",
    "compare_datasets",
    "compare_versions",
    "corrected",
    "dataset_records",
    "folder_format",
    "folder_version",
    "notices",
    "review",
    "store_version",
    "write_changes",
    "write_notices",
]
