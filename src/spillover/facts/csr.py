"""Compressed sparse rows (CSR) over numpy arrays: the small helpers both graph passes use.

The batch kernel (:mod:`spillover.engines.batch`), the simulator (:mod:`spillover.simulate.run`) and
the phone codes (:mod:`spillover.facts.phonecodes`) group rows by a node code, then walk each
node's rows; these are the few steps they share, written once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather", "ptr", "ranges", "rank", "recode", "sorted_packed", "stable_order"]


def ptr(node: np.ndarray, n: int) -> np.ndarray:
    """CSR offsets of rows grouped by ``node`` (codes 0..n-1; -1, none, sorts first):
    where each node's rows start once they are sorted by node (``searchsorted`` of
    the sorted codes, by counting). ``n + 1`` offsets, int64."""
    if len(node) == 0:
        return np.zeros(n + 1, dtype=np.int64)
    known = node >= 0
    counts = np.bincount(node[known], minlength=n)
    start = len(node) - int(known.sum())
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64) + start


def gather(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows`` (node codes), the CSR positions of its node's edges under
    ``offsets`` (:func:`ptr`): (index into ``rows``, edge position), both int64."""
    start = offsets[rows]
    return ranges(start, offsets[rows + 1] - start)


def ranges(start: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every position of the ranges ``start[i]`` .. ``start[i] + counts[i] - 1``, range
    after range: (i, position), both int64.

    >>> [a.tolist() for a in ranges(np.array([5, 0, 9]), np.array([2, 0, 3]))]
    [[0, 0, 2, 2, 2], [5, 6, 9, 10, 11]]
    """
    label = np.repeat(np.arange(len(start)), counts)
    before = np.cumsum(counts) - counts
    position = start[label] + (np.arange(int(counts.sum())) - before[label])
    return label, position


def rank(order: np.ndarray) -> np.ndarray:
    """The inverse of a permutation: the position of each row in ``order``."""
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order), dtype=np.int64)
    return out


def recode(ranks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows (-1: none) as codes under ``ranks`` (:func:`rank`); -1 stays -1."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.where(rows >= 0, np.append(ranks, -1)[rows], -1)


def sorted_packed(codes: np.ndarray, n: int) -> tuple[np.ndarray, int] | None:
    """``(code + 1) << bits | row`` of each row of ``codes`` (codes in -1..n-1), sorted by
    one sort of those values (a SIMD sort where numpy has one), and ``bits``: rows by
    code, rows of one code in their order. None when code and row number do not fit
    one int64 together. :func:`stable_order` keeps the rows; the phone codes
    (:mod:`spillover.facts.phonecodes`) the codes as well.

    >>> packed, bits = sorted_packed(np.array([2, 0, 2, -1]), 3)
    >>> (packed >> bits).tolist(), (packed & ((1 << bits) - 1)).tolist()
    ([0, 1, 3, 3], [3, 1, 0, 2])
    """
    rows = len(codes)
    bits = max(rows - 1, 0).bit_length()
    if n.bit_length() + bits > 62:
        return None
    packed = (np.asarray(codes, dtype=np.int64) + 1) << bits
    packed |= np.arange(rows, dtype=np.int64)
    packed.sort()
    return packed, bits


def stable_order(codes: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for codes in -1..n-1, int64: rows by code,
    rows of one code in their order. When code and row number fit one int64 together,
    the rows of :func:`sorted_packed` (several times faster than a stable argsort of the
    codes), else the argsort."""
    found = sorted_packed(codes, n)
    if found is None:
        return np.argsort(codes, kind="stable").astype(np.int64, copy=False)
    packed, bits = found
    packed &= (1 << bits) - 1
    return packed
