"""Text for people: untrusted text made safe to print, plurals and percentages."""

from .safe import isolated, printable, printable_lines
from .wording import count, percent, plural, score_text

__all__ = [
    "count",
    "isolated",
    "percent",
    "plural",
    "printable",
    "printable_lines",
    "score_text",
]
