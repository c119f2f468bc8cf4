"""After a dispute: a remedy applied to a copy of the data (docs/disputes.md)."""

from .apply import CORRECTIONS_FILE, AppliedRemedy, apply_remedy, corrected, folder_format

__all__ = ["CORRECTIONS_FILE", "AppliedRemedy", "apply_remedy", "corrected", "folder_format"]
