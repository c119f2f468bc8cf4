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

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = [
    "DenseIds",
    "all_digits",
    "civil_days",
    "decimal",
    "edges",
    "iso_days",
    "iso_shaped",
    "matrix",
    "rows_with_bytes",
]

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


def rows_with_bytes(values: pa.Array, chars: bytes) -> np.ndarray | None:
    """Which values hold one of the bytes ``chars`` (a few), as a bool array; None for a
    column with nulls or not plain strings.

    >>> rows_with_bytes(pa.array(["a,b", "c", "", "d,"]), b",").tolist()
    [True, False, False, True]
    """
    found = _offsets(values)
    if found is None:
        return None
    offsets, data = found
    out = np.zeros(len(values), dtype=bool)
    first = int(offsets[0])
    data = data[first : int(offsets[-1])]
    hit = np.zeros(len(data), dtype=bool)
    for char in chars:  # (compares, not a table lookup: several times faster)
        hit |= data == char
    if hit.any():
        out[np.searchsorted(offsets, np.flatnonzero(hit) + first, side="right") - 1] = True
    return out


def all_digits(m: np.ndarray) -> bool:
    """Every byte of ``m`` an ASCII digit (a column at a time: small temporaries)."""
    return all(bool(((m[:, j] - np.uint8(_ZERO)) < 10).all()) for j in range(m.shape[1]))


#: rows per block of the byte-matrix loops (their int64 temporaries stay in the cache)
_BLOCK = 1 << 15


def decimal(m: np.ndarray) -> np.ndarray:
    """Each row of ASCII digits (at most 18) as an int64.

    >>> decimal(np.frombuffer(b"0421", dtype=np.uint8).reshape(2, 2)).tolist()
    [4, 21]
    """
    out = np.empty(len(m), dtype=np.int64)
    bias = _ZERO * sum(10**i for i in range(m.shape[1]))
    for start in range(0, len(m), _BLOCK):  # a block at a time: one pass over memory
        block = m[start : start + _BLOCK]
        part = out[start : start + _BLOCK]
        part[:] = 0
        for j in range(m.shape[1]):
            part *= 10
            part += block[:, j]
        part -= bias
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


def iso_shaped(m: np.ndarray) -> bool:
    """Rows ``NNNN-NN-NN`` (an ``(n, 10)`` byte matrix, ``N`` a digit): the shape of an ISO
    day, whose value Arrow's ISO parser then reads (refusing impossible days).

    >>> iso_shaped(np.frombuffer(b"2024-02-291970-1-011", dtype=np.uint8).reshape(2, 10))
    False
    """
    if m.shape[1] != 10 or not ((m[:, 4] == ord("-")) & (m[:, 7] == ord("-"))).all():
        return False
    return all_digits(m[:, 0:4]) and all_digits(m[:, 5:7]) and all_digits(m[:, 8:10])


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


@dataclass(frozen=True)
class DenseIds:
    """A lookup of the unique ids of a column that are all one prefix then digits, of
    one width, numbered densely enough (``P0000001`` .. ``P1000000``): each id's row by
    its number, one array read per value instead of a hash of every string.

    Built by :meth:`of` (None for any other column); :meth:`rows` answers exactly what
    a hash lookup of the strings would (a value of another shape is no id of these).
    """

    prefix: bytes
    width: int
    low: int
    table: np.ndarray  # row of the id numbered low + i, -1 none

    @classmethod
    def of(cls, ids: pa.Array) -> DenseIds | None:
        """The lookup of ``ids`` (unique values: the caller has checked them); None when
        they are not one prefix then 1 to 18 digits, or their numbers are too sparse.

        >>> DenseIds.of(pa.array(["P03", "P01"])).rows(pa.array(["P01", "P1", "", "P03", "Q01"])).tolist()
        [1, -1, -1, 0, -1]
        """
        m = matrix(ids)
        if m is None:
            return None
        digits = m.shape[1]
        while digits > 0 and bool(((m[:, digits - 1] - np.uint8(_ZERO)) < 10).all()):
            digits -= 1
        if not 1 <= m.shape[1] - digits <= 18:
            return None
        head = m[:, :digits]
        if digits and not bool((head == head[0]).all()):
            return None
        numbers = decimal(m[:, digits:])
        low, high = int(numbers.min()), int(numbers.max())
        if high - low >= 4 * len(numbers) + 1024:
            return None
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[numbers - low] = np.arange(len(numbers), dtype=np.int64)
        return cls(bytes(m[0, :digits]), m.shape[1], low, table)

    def rows(self, values: pa.Array) -> np.ndarray | None:
        """Each value's row among the ids, -1 where it is none of them; None for a column
        this cannot read (nulls, not plain strings)."""
        found = _offsets(values)
        if found is None:
            return None if len(values) else np.zeros(0, dtype=np.int64)
        offsets, data = found
        out = np.full(len(values), -1, dtype=np.int64)
        width, size = self.width, len(self.prefix)
        for start in range(0, len(values), _BLOCK):
            begin = offsets[start : start + _BLOCK + 1]
            if (
                int(begin[-1] - begin[0]) == width * (len(begin) - 1)
                and (np.diff(begin) == width).all()
            ):  # the usual case: every value this wide, the bytes read in place
                sized = np.arange(len(begin) - 1)
                m = data[begin[0] : begin[-1]].reshape(-1, width)
            else:
                sized = np.flatnonzero(np.diff(begin) == width)  # others: no id of these
                m = data[begin[sized][:, None] + np.arange(width)]
            ok: np.ndarray = np.asarray((m[:, size:] - np.uint8(_ZERO) < 10).all(axis=1))
            if size:
                ok &= (m[:, :size] == np.frombuffer(self.prefix, dtype=np.uint8)).all(axis=1)
            number = decimal(np.where(ok[:, None], m[:, size:], np.uint8(_ZERO))) - self.low
            ok &= (number >= 0) & (number < len(self.table))
            out[start + sized[ok]] = self.table[number[ok]]
        return out
