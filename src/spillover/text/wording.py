"""Counts and shares as a reader reads them: "1 listing", "18 paths", never "100%" for
a share below 1 (nor "0%" for one above 0)."""

from __future__ import annotations

__all__ = ["count", "percent", "plural", "score_text"]


def plural(n: int, word: str, words: str | None = None) -> str:
    """``word`` for one, ``words`` (default ``word + "s"``) for any other count (English)."""
    return word if n == 1 else (words or word + "s")


def count(n: int, word: str, words: str | None = None) -> str:
    """``n`` and its noun: ``count(1, "listing")`` is ``1 listing``, ``count(3, "listing")``
    ``3 listings``."""
    return f"{n} {plural(n, word, words)}"


def percent(share: float) -> int:
    """``share`` (0..1) as a whole percentage, rounded, but never 100 unless it is 1 and
    never 0 unless it is 0: a contamination of 0.998 reads 99%, not 100%.

    >>> percent(0.95), percent(0.998), percent(1.0), percent(0.004), percent(0.0)
    (95, 99, 100, 1, 0)
    """
    pct = round(share * 100)
    if share < 1:
        pct = min(pct, 99)
    if share > 0:
        pct = max(pct, 1)
    return pct


def score_text(share: float) -> str:
    """A score (0..1) with three decimals, or as many more as it takes for a score below
    1 not to read ``1.000`` (nor one above 0 ``0.000``).

    >>> score_text(0.95), score_text(0.9996), score_text(1.0), score_text(0.0002)
    ('0.950', '0.9996', '1.000', '0.0002')
    """
    text = f"{share:.3f}"
    if (text == "1.000" and share < 1) or (text == "0.000" and share > 0):
        text = f"{share:.6f}".rstrip("0")
        if text in ("1.", "1", "0.", "0"):  # closer than a millionth: say which side
            text = "0.999999" if share < 1 else "0.000001"
    return text
