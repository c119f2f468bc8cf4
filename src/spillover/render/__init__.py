"""Results for people and programs: text, JSON, the dispute report, the neighborhood view."""

from .json import ExplanationOut, explanation_dict, explanation_json
from .neighborhood import neighborhood, write_view
from .report import write_report
from .text import explanation_text

__all__ = [
    "ExplanationOut",
    "explanation_dict",
    "explanation_json",
    "explanation_text",
    "neighborhood",
    "write_report",
    "write_view",
]
