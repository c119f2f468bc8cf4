"""The searches: the per-entry search (explain, check), the batch kernel over every entry, remedy."""

from .batch import AuditResult, Index
from .remedy import Remedy, remedy, subject_remedy
from .search import (
    Explanation,
    ExplanationPath,
    Step,
    TiePath,
    check,
    explain,
    explain_all,
    explain_entry,
)

__all__ = [
    "AuditResult",
    "Explanation",
    "ExplanationPath",
    "Index",
    "Remedy",
    "Step",
    "TiePath",
    "check",
    "explain",
    "explain_all",
    "explain_entry",
    "remedy",
    "subject_remedy",
]
