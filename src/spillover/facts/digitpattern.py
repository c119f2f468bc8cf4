"""A regular expression over digits of one length, as a table of its first digits.

The numbering plans of :mod:`phonenumbers` describe a region's mobile numbers by regular
expressions such as ``1(?:[38]\\d|4[57])\\d{8}``: alternatives of digit classes, each
alternative as long as the others, in which only the first few digits are restricted.
Such a pattern is decided by those first digits: a table of every allowed prefix answers
it for a whole column of numbers with a few numpy operations (:func:`prefix_table`),
where a regular expression runs per value.

The table is built from the pattern itself, by a parser of that small language only:
digits, ``\\d``, classes of digits and ranges (``[0-35-9]``), non-capturing groups with
alternatives (``(?:a|b)``) and fixed counts (``{8}``, ``{2,2}``). Anything else, or a
pattern whose alternatives differ in length, restrict digits too deep into the number, or
are too many, gives no table (None): the caller keeps its regular expression, so the
table, when there is one, answers exactly what the pattern does for strings of ASCII
digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PrefixTable", "prefix_table"]

_DIGITS = frozenset(range(10))
_ZERO = ord("0")
#: at most this many alternatives once the groups are multiplied out
_MAX_SEQUENCES = 4096
#: at most this many leading digits restricted (a table of 10**depth booleans)
_MAX_DEPTH = 6

#: a pattern as alternatives, each a sequence of the digits allowed at each position
_Sequences = list[tuple[frozenset[int], ...]]


class _Unsupported(Exception):
    """The pattern is outside the small language this module reads."""


@dataclass(frozen=True)
class PrefixTable:
    """The strings of ``width`` ASCII digits a pattern matches: those whose first ``depth``
    digits, read as a number, index a true value of ``allowed`` (every later digit is free).

    >>> table = prefix_table(r"1(?:3\\d|5[0-3])\\d{2}")
    >>> table.width, table.depth
    (5, 3)
    >>> [p for p in range(100, 200) if table.allowed[p]][-5:]
    [139, 150, 151, 152, 153]
    """

    width: int
    depth: int
    allowed: np.ndarray  # bool, 10**depth entries

    def matches(self, text: np.ndarray) -> np.ndarray:
        """Per row of an ``(n, width)`` uint8 matrix of text (ASCII), whether the pattern
        matches it: every byte a digit, the first ``depth`` an allowed prefix.

        >>> table = prefix_table(r"2[3-9]\\d")
        >>> rows = np.frombuffer(b"239229x3925", dtype=np.uint8)[:9].reshape(3, 3)
        >>> table.matches(rows).tolist()
        [True, False, False]
        """
        if text.ndim != 2 or text.shape[1] != self.width:
            raise ValueError(f"rows of {self.width} characters expected, got {text.shape}")
        ok = np.ones(len(text), dtype=bool)
        code = np.zeros(len(text), dtype=np.int64)
        for j in range(self.width):
            digit = text[:, j] - np.uint8(_ZERO)  # wraps below "0": not a digit either way
            ok &= digit < 10
            if j < self.depth:
                code *= 10
                code += np.where(digit < 10, digit, 0)
        ok &= self.allowed[code]
        return ok


def prefix_table(pattern: str) -> PrefixTable | None:
    """The :class:`PrefixTable` of ``pattern`` (without anchors), or None when the pattern
    is outside the language this module reads (module docstring).

    >>> prefix_table(r"2[3-8]\\d{7}").depth
    2
    >>> prefix_table(r"1\\d{2,3}") is None   # two lengths
    True
    """
    try:
        parser = _Parser(pattern)
        sequences = parser.alternatives()
        if parser.pos != len(pattern):
            raise _Unsupported(pattern[parser.pos :])
    except _Unsupported:
        return None
    widths = {len(s) for s in sequences}
    if len(widths) != 1 or 0 in widths:
        return None
    width = widths.pop()
    restricted = [j for s in sequences for j, allowed in enumerate(s) if allowed != _DIGITS]
    depth = max(restricted, default=-1) + 1
    if depth > _MAX_DEPTH:
        return None
    allowed = np.zeros(10**depth, dtype=bool)
    for sequence in sequences:
        codes = np.zeros(1, dtype=np.int64)
        for digits in sequence[:depth]:
            codes = (codes[:, None] * 10 + np.array(sorted(digits))[None, :]).ravel()
        allowed[codes] = True
    return PrefixTable(width, depth, allowed)


class _Parser:
    """A recursive-descent reader of the small pattern language (module docstring)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _take(self, expected: str) -> None:
        if not self.text.startswith(expected, self.pos):
            raise _Unsupported(self.text[self.pos :])
        self.pos += len(expected)

    def alternatives(self) -> _Sequences:
        out = self._sequence()
        while self._peek() == "|":
            self.pos += 1
            out = out + self._sequence()
            _bounded(out)
        return out

    def _sequence(self) -> _Sequences:
        out: _Sequences = [()]
        while self._peek() not in ("", "|", ")"):
            atom = self._atom()
            count = self._count()
            for _ in range(count):
                out = [a + b for a in out for b in atom]
                _bounded(out)
        return out

    def _atom(self) -> _Sequences:
        char = self._peek()
        if char.isascii() and char.isdigit():
            self.pos += 1
            return [(frozenset({int(char)}),)]
        if self.text.startswith(r"\d", self.pos):
            self.pos += 2
            return [(_DIGITS,)]
        if char == "[":
            return [(self._class(),)]
        if self.text.startswith("(?:", self.pos):
            self.pos += 3
            inner = self.alternatives()
            self._take(")")
            return inner
        raise _Unsupported(self.text[self.pos :])

    def _class(self) -> frozenset[int]:
        self._take("[")
        digits: set[int] = set()
        while self._peek() != "]":
            low = self._class_digit()
            high = low
            if self._peek() == "-":
                self.pos += 1
                high = self._class_digit()
                if high < low:
                    raise _Unsupported(self.text[self.pos :])
            digits.update(range(low, high + 1))
        self.pos += 1
        if not digits:
            raise _Unsupported("[]")
        return frozenset(digits)

    def _class_digit(self) -> int:
        char = self._peek()
        if not (char.isascii() and char.isdigit()):
            raise _Unsupported(self.text[self.pos :])
        self.pos += 1
        return int(char)

    def _count(self) -> int:
        """``{n}`` or ``{n,n}`` after an atom (1 without); any other quantifier: unsupported."""
        char = self._peek()
        if char in ("*", "+", "?"):
            raise _Unsupported(self.text[self.pos :])
        if char != "{":
            return 1
        end = self.text.find("}", self.pos)
        if end < 0:
            raise _Unsupported(self.text[self.pos :])
        bounds = self.text[self.pos + 1 : end].split(",")
        if not all(b.isascii() and b.isdigit() for b in bounds) or len(set(bounds)) != 1:
            raise _Unsupported(self.text[self.pos :])
        if len(bounds) > 2:
            raise _Unsupported(self.text[self.pos :])
        self.pos = end + 1
        return int(bounds[0])


def _bounded(sequences: _Sequences) -> None:
    if len(sequences) > _MAX_SEQUENCES:
        raise _Unsupported("too many alternatives")
