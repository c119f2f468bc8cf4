"""Compressed sparse rows (CSR) over numpy arrays: the small helpers both graph passes use.

The batch kernel (:mod:`spillover.engines.batch`), the simulator (:mod:`spillover.simulate.run`) and
the phone codes (:mod:`spillover.facts.phonecodes`) group rows by a node code, then walk each
node's rows; these are the few steps they share, written once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather", "ptr", "rank", "recode"]


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
    counts = offsets[rows + 1] - start
    label = np.repeat(np.arange(len(rows)), counts)
    before = np.cumsum(counts) - counts
    edge = start[label] + (np.arange(int(counts.sum())) - before[label])
    return label, edge


def rank(order: np.ndarray) -> np.ndarray:
    """The inverse of a permutation: the position of each row in ``order``."""
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order), dtype=np.int64)
    return out


def recode(ranks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows (-1: none) as codes under ``ranks`` (:func:`rank`); -1 stays -1."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.where(rows >= 0, np.append(ranks, -1)[rows], -1)
