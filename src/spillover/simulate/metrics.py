"""The metrics of one rule's audited blacklist (:func:`rule_metrics`, the columns
:data:`METRIC_COLUMNS`; every definition is in ``docs/research.md``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..facts.model import PlatformKind
from ..rules import Verdict
from .blacklist import SimulatedBlacklist
from .engine import Audited
from .listing import MAX_HOPS
from .world import KINDS, World

__all__ = [
    "HIST_BINS",
    "METRIC_COLUMNS",
    "contamination_histogram",
    "rule_metrics",
]

#: the contamination histogram's bins: [0, 0.1), ..., [0.9, 1.0]
#: (:func:`contamination_histogram`)
HIST_BINS = 10
# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------

#: the columns of metrics.csv, in order (docs/contract.md §6, docs/research.md)
METRIC_COLUMNS: tuple[str, ...] = (
    "rule",
    "entries",
    "entries_direct",
    "entries_copied",
    "people_listed",
    "phones_unowned",
    "innocents",
    "innocent_share",
    "spillover_entries",
    "spillover_share",
    "unexplained_entries",
    "contamination_mean",
    "contamination_median",
    "contamination_p90",
    *(f"entries_hop_{h}" for h in range(MAX_HOPS + 1)),
    *(f"spillover_hop_{h}" for h in range(MAX_HOPS + 1)),
    *(f"entries_{k}" for k in KINDS),
    "innocents_seen_by_banks",
    "defaulted_later",
    "innocents_defaulted_later",
    "risk_total",
    "risk_recall",
    "listed_risky",
    "innocents_risky",
)


#: the inner edges of the bins, 0.1 .. 0.9, each the very float a contamination of that
#: value is (numpy.histogram's edges, a linspace, put 0.3, 0.6 and 0.7 a step above it)
_EDGES = np.array([i / HIST_BINS for i in range(1, HIST_BINS)])


def contamination_histogram(contamination: np.ndarray) -> list[int]:
    """Entries per tenth of [0, 1]: bin ``i`` holds ``i/10 <= c < (i+1)/10``, the last
    also 1. A score on an edge (0.3, exactly as written out) counts in the bin it opens.

    >>> contamination_histogram(np.array([0.0, 0.3, 0.29999, 0.7, 1.0]))
    [1, 0, 1, 1, 0, 0, 0, 1, 0, 1]
    """
    bins = np.searchsorted(_EDGES, np.asarray(contamination, dtype=float), side="right")
    return [int(x) for x in np.bincount(bins, minlength=HIST_BINS)]


def _share_of(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def rule_metrics(world: World, bl: SimulatedBlacklist, audited: Audited) -> dict[str, Any]:
    """The metrics of one rule's blacklist and its audit (every definition:
    docs/research.md). Returns the :data:`METRIC_COLUMNS` fields plus
    ``contamination_histogram`` (entries per tenth of [0, 1], the last bin closed)."""
    n = len(bl)
    bank = KINDS.index(PlatformKind.BANK.value)
    listed = np.unique(bl.owner[bl.owner >= 0])
    innocent_person = np.zeros(world.n_people, dtype=bool)
    innocent_person[listed] = world.delinquent_by[listed] > world.cutoff
    innocents = listed[innocent_person[listed]]
    spill = audited.verdict == Verdict.SPILLOVER.value
    copied = bl.copied_from >= 0
    kind = world.platform_kind[bl.platform] if n else np.zeros(0, dtype=np.int64)
    seen = bl.owner[copied & (kind == bank) & (bl.owner >= 0)]
    seen = np.unique(seen[innocent_person[seen]])
    later = world.later_default
    c = audited.contamination
    risk_total = int(later.sum())
    out: dict[str, Any] = {
        "rule": bl.rule.name,
        "entries": n,
        "entries_direct": int((~copied).sum()),
        "entries_copied": int(copied.sum()),
        "people_listed": len(listed),
        "phones_unowned": int(((bl.phone >= 0) & (bl.owner < 0)).sum()),
        "innocents": len(innocents),
        "innocent_share": _share_of(len(innocents), len(listed)),
        "spillover_entries": int(spill.sum()),
        "spillover_share": _share_of(int(spill.sum()), n),
        "unexplained_entries": int((audited.verdict == Verdict.UNEXPLAINED.value).sum()),
        "contamination_mean": round(float(c.mean()), 6) if n else 0.0,
        "contamination_median": round(float(np.median(c)), 6) if n else 0.0,
        "contamination_p90": round(float(np.quantile(c, 0.9)), 6) if n else 0.0,
    }
    for h in range(MAX_HOPS + 1):
        out[f"entries_hop_{h}"] = int((bl.hop == h).sum())
    for h in range(MAX_HOPS + 1):
        out[f"spillover_hop_{h}"] = int((spill & (bl.hop == h)).sum())
    for i, k in enumerate(KINDS):
        out[f"entries_{k}"] = int((kind == i).sum())
    out["innocents_seen_by_banks"] = len(seen)
    out["defaulted_later"] = int(later[listed].sum())
    out["innocents_defaulted_later"] = int(later[innocents].sum())
    out["risk_total"] = risk_total
    out["risk_recall"] = _share_of(int(later[listed].sum()), risk_total)
    if world.risky is not None:
        out["listed_risky"] = int(world.risky[listed].sum())
        out["innocents_risky"] = int(world.risky[innocents].sum())
    else:
        out["listed_risky"] = None
        out["innocents_risky"] = None
    out["contamination_histogram"] = contamination_histogram(c)
    return out
