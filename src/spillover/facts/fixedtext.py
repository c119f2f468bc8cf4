"""Text columns whose values all have one width, as byte matrices.

Most columns of a large generated or exported folder have one width throughout: ids
(``P0000721``), E.164 numbers (``+8613800000001``), ISO days (``2019-01-21``), resident
ID numbers. Arrow keeps such a column as one byte buffer, so it is, without a copy, an
``(n, width)`` matrix of bytes, and the loaders' checks on it (digits here, a ``-``
there, a valid day, no space at either end) become a few whole-column numpy operations
instead of a regular expression or a new string per value. Every function here either
answers exactly what the per-value check would, or returns ``None`` (the caller then
runs its general check).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["all_digits", "civil_days", "decimal", "edges", "iso_days", "matrix"]

_ZERO = ord("0")
#: the days of each month of a common year
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _offsets(values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The value offsets and the data bytes of a plain string column without nulls."""
    if values.type != pa.string() or values.null_count or not len(values):
        return None
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    return offsets, data


def matrix(values: pa.Array) -> np.ndarray | None:
    """The ``(n, width)`` uint8 view of a string column whose values all have the same
    width (at least 1); None for anything else (nulls, other widths, no values).

    >>> matrix(pa.array(["ab", "cd"])).tolist()
    [[97, 98], [99, 100]]
    >>> matrix(pa.array(["ab", "c"])) is None
    True
    """
    found = _offsets(values)
    if found is None:
        return None
    offsets, data = found
    width = int(offsets[1] - offsets[0])
    if width < 1 or int(offsets[-1] - offsets[0]) != width * len(values):
        return None
    if (np.diff(offsets) != width).any():
        return None
    out: np.ndarray = data[offsets[0] : offsets[-1]].reshape(len(values), width)
    return out


def edges(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The first byte and the last byte of each non-empty value, and which values are
    empty; None for a column with nulls or not plain strings."""
    found = _offsets(values)
    if found is None:
        return None
    offsets, data = found
    starts, ends = offsets[:-1], offsets[1:]
    empty = starts == ends
    if empty.any():
        starts, ends = starts[~empty], ends[~empty]
    return data[starts], data[ends - 1], empty


def all_digits(m: np.ndarray) -> bool:
    """Every byte of ``m`` an ASCII digit (a column at a time: small temporaries)."""
    return all(bool(((m[:, j] - np.uint8(_ZERO)) < 10).all()) for j in range(m.shape[1]))


def decimal(m: np.ndarray) -> np.ndarray:
    """Each row of ASCII digits (at most 18) as an int64.

    >>> decimal(np.frombuffer(b"0421", dtype=np.uint8).reshape(2, 2)).tolist()
    [4, 21]
    """
    out = np.zeros(len(m), dtype=np.int64)
    for j in range(m.shape[1]):
        out *= 10
        out += m[:, j]
    out -= _ZERO * sum(10**i for i in range(m.shape[1]))
    return out


def iso_days(m: np.ndarray) -> np.ndarray | None:
    """Rows ``YYYY-MM-DD`` (an ``(n, 10)`` byte matrix) as days since 1970-01-01 (numpy's
    and Arrow's day 0); None if any row is not a real day of that shape (year 1 on).

    >>> rows = np.frombuffer(b"2024-02-291970-01-01", dtype=np.uint8).reshape(2, 10)
    >>> iso_days(rows).tolist()
    [19782, 0]
    >>> iso_days(np.frombuffer(b"2023-02-29", dtype=np.uint8).reshape(1, 10)) is None
    True
    """
    if m.shape[1] != 10 or not ((m[:, 4] == ord("-")) & (m[:, 7] == ord("-"))).all():
        return None
    if not (all_digits(m[:, 0:4]) and all_digits(m[:, 5:7]) and all_digits(m[:, 8:10])):
        return None
    year, month, day = decimal(m[:, 0:4]), decimal(m[:, 5:7]), decimal(m[:, 8:10])
    return civil_days(year, month, day)


def civil_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray | None:
    """Days since 1970-01-01 of the days ``year-month-day`` (int64 columns); None if
    any is not a real day (year 1 on)."""
    if not ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if not (day <= _MONTH_DAYS[month - 1] + (leap & (month == 2))).all():
        return None
    months = ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")
    out: np.ndarray = months.astype("datetime64[D]").astype(np.int64) + (day - 1)
    return out
