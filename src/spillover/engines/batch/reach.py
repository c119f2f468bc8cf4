"""Reach in the batch pass: per entry and origin platform, the latest day a default known
there still reaches the entry's listing (:func:`entry_reach`).

The same labels as :func:`spillover.engines.search.compute_reach`: for each platform Q,
the best over the entry's copy chain targets (P_i, t_i) of (latest t_i, fewest sharing
hops from Q to P_i using agreements started by t_i, earliest i).

Only platforms with a loan in an origin status are asked about (columns), and only the
sharing graphs of the days entries are listed on are searched (:func:`_own_hops`, one
search per *epoch*: the agreements started by a listing day), from those platforms. A
chain's days never grow from an entry to the entry it was copied from, so an entry's label
is its own target's, unless that is not reached or its source (listed the same day) is
reached in fewer hops: the labels of the entry it was copied from, one place further down
the chain. Entries are labelled in chain order (first listings first), each once
(:func:`_label_chains`): the work is entries times columns, where following every chain
from every entry cost the square of a chain's length times all the platforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...facts import csr
from ...facts.columns import NEVER
from .index import CodedGraph

__all__ = ["NOT_REACHED", "Reach", "entry_reach", "sharing_hops"]

#: the deadline of a column an entry is not reached from: a day before every day (the
#: deadlines are ordinal days, held as int32 in half the memory of int64)
NOT_REACHED = np.iinfo(np.int32).min


@dataclass(frozen=True)
class Reach:
    """Per entry (rows) and platform with an origin loan (columns; ``column``: the
    column of each platform code, the last one, never reached, for the others): the
    latest day a default known there still reaches the entry's copy chain in time
    (int32 ordinal days; :data:`NOT_REACHED`, before every day: not at all), whether
    that route goes through a sharing agreement (``shared``: sharing hops > 0) and
    whether it reaches a copy rather than the entry's own listing (``copied``: place in
    the copy chain > 0), as bool matrices (what the reason codes read of the hops and
    the places, in a quarter of their memory)."""

    deadline: np.ndarray
    shared: np.ndarray
    copied: np.ndarray
    column: np.ndarray


def entry_reach(
    index: CodedGraph, platform: np.ndarray, listed: np.ndarray, copied: np.ndarray
) -> Reach:
    """Per entry (``platform`` code, ``listed`` day, ``copied``: entry index of its source,
    -1) and origin platform: latest departure day, and whether its route is shared and
    reaches a copy."""
    origin_platforms = np.unique(index.loan_platform[index.loan_origin])
    origin_platforms = origin_platforms[origin_platforms >= 0]
    n_cols = len(origin_platforms)
    column = np.full(len(index.platforms), n_cols, dtype=np.int64)  # n_cols: no origin loan
    column[origin_platforms] = np.arange(n_cols)
    own_hops = _own_hops(index, origin_platforms, platform, listed)
    deadline, hops, chain_index = _label_chains(own_hops, listed, copied)
    del own_hops
    shared = hops > 0  # (inf, not reached, counts as shared, as the hops did)
    del hops
    return Reach(deadline, shared, chain_index > 0, column)


def _own_hops(
    index: CodedGraph, origin_platforms: np.ndarray, platform: np.ndarray, listed: np.ndarray
) -> np.ndarray:
    """Sharing hops from each origin platform (columns) to each entry's own platform, in
    the sharing graph of its listing day (agreements started by then); inf: not reached.
    One search per epoch (the distinct sets of agreements in force on the listing days)."""
    n_plat = len(index.platforms)
    s_from = csr.recode(index.platform_rank, index.codes.share_from)
    s_to = csr.recode(index.platform_rank, index.codes.share_to)
    since = np.asarray(index.cols.share_since, dtype=np.int64)
    starts = np.unique(since[since != NEVER])
    epochs, epoch_of = np.unique(np.searchsorted(starts, listed, side="right"), return_inverse=True)
    epoch_of = epoch_of.ravel()
    # (hops are small whole numbers or inf: float32 holds them exactly, in half the memory)
    own_hops = np.full((len(platform), len(origin_platforms)), np.inf, dtype=np.float32)
    by_epoch = np.argsort(epoch_of, kind="stable")
    bounds = np.searchsorted(epoch_of[by_epoch], np.arange(len(epochs) + 1))
    for k, epoch in enumerate(epochs.tolist() if len(origin_platforms) else []):
        limit = starts[epoch - 1] if epoch > 0 else NEVER
        on = since <= limit
        hops = sharing_hops(n_plat, s_from[on], s_to[on], origin_platforms)
        rows = by_epoch[bounds[k] : bounds[k + 1]]
        own_hops[rows] = hops[:, platform[rows]].T
    return own_hops


def sharing_hops(
    n_plat: int, s_from: np.ndarray, s_to: np.ndarray, sources: np.ndarray
) -> np.ndarray:
    """Fewest hops along the directed edges ``s_from -> s_to`` (platform codes
    0..n_plat-1) from each of ``sources`` (rows) to each platform (columns): 0 to itself,
    inf where not reached; float64. A breadth-first search from all sources at once,
    level by level over (source, platform) pairs: what scipy's unweighted
    ``shortest_path(..., indices=sources)`` answers, without loading scipy (a quarter of
    a second of the CLI's start) for a graph of a few dozen platforms."""
    hops = np.full((len(sources), n_plat), np.inf)
    order = np.argsort(s_from, kind="stable")
    offsets, ends = csr.ptr(s_from[order], n_plat), s_to[order]
    rows = np.arange(len(sources), dtype=np.int64)
    nodes = np.asarray(sources, dtype=np.int64)
    hops[rows, nodes] = 0
    level = 0
    while len(rows):
        level += 1
        which, edge = csr.gather(offsets, nodes)
        pair = np.unique(rows[which] * n_plat + ends[edge])
        pair = pair[np.isinf(hops.ravel()[pair])]
        rows, nodes = pair // n_plat, pair % n_plat
        hops[rows, nodes] = level
    return hops


def _label_chains(
    own_hops: np.ndarray, listed: np.ndarray, copied: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each entry's labels (deadline, hops, chain index) per column, in chain order: first
    listings their own target's, then the entries copied from them, ..."""
    n_entries, n_cols = own_hops.shape
    has_source = copied >= 0
    has_source[has_source] = listed[copied[has_source]] <= listed[has_source]
    source = np.where(has_source, copied, -1)
    children = np.nonzero(has_source)[0]
    children = children[np.argsort(source[children], kind="stable")]
    child_ptr = csr.ptr(source[children], n_entries)
    best_d = np.full((n_entries, n_cols + 1), NOT_REACHED, dtype=np.int32)
    best_h = np.full((n_entries, n_cols + 1), np.inf, dtype=np.float32)  # exact, as own_hops
    best_i = np.zeros((n_entries, n_cols + 1), dtype=np.int32)
    cols = slice(0, n_cols)
    days = listed.astype(np.int32)  # ordinal days: int32 holds them
    if len(listed) and (days != listed).any():
        raise ValueError("a listing day out of the ordinal range")
    rows = np.nonzero(~has_source)[0]  # first listings: their own target
    t = days[rows][:, None]
    reached = np.isfinite(own_hops[rows])
    best_d[rows, cols] = np.where(reached, t, np.int32(NOT_REACHED))
    best_h[rows, cols] = own_hops[rows]
    done = len(rows)
    while True:
        rows = children[csr.gather(child_ptr, rows)[1]]
        if not len(rows):
            break
        done += len(rows)
        # copies: their own target, or their source's labels one place further down
        t = days[rows][:, None]
        own = own_hops[rows]
        src = source[rows]
        sd, sh, si = best_d[src, cols], best_h[src, cols], best_i[src, cols]
        mine = np.isfinite(own) & ((sd < t) | (own <= sh))
        best_d[rows, cols] = np.where(mine, t, sd)
        best_h[rows, cols] = np.where(mine, own, sh)
        best_i[rows, cols] = np.where(mine, 0, np.where(np.isfinite(sh), si + 1, 0))
    if done < n_entries:  # a copy loop (the loaders refuse them)
        raise ValueError("a copy chain loops back; the data folder's loaders refuse that")
    return best_d, best_h, best_i
