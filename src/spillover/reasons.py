"""Reason codes with their one-line texts (defined in :mod:`spillover.rules`).

Codes are part of the output contract: never rename one; add new ones.
"""

from __future__ import annotations

from .rules import REASONS

__all__ = ["REASONS", "reason_text"]


def reason_text(code: str) -> str:
    """The one-line text of a reason code."""
    return REASONS[code]
