"""The plots of a simulation run (docs/research.md), drawn with matplotlib's Agg backend.

:func:`draw` writes four figures, each as PNG and SVG, from the rules' metrics
(:func:`spillover.simulate.metrics.rule_metrics`): innocents listed per rule, the
contamination histogram per rule, spillover entries by hop depth, and innocents
against risk caught (one point per rule). The same metrics draw the same bytes: no
dates in the files, and the SVG ids salted with a fixed text (:data:`SAME_BYTES`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .listing import MAX_HOPS

__all__ = ["PLOTS", "SAME_BYTES", "draw"]

#: the figures :func:`draw` writes (each as NAME.png and NAME.svg)
PLOTS = (
    "innocents_per_rule",
    "contamination_histogram",
    "spillover_by_hop",
    "innocents_vs_risk",
)

Metrics = Sequence[Mapping[str, Any]]


def _innocents(ax: Any, metrics: Metrics) -> None:
    names = [str(m["rule"]) for m in metrics]
    ax.barh(names, [m["innocents"] for m in metrics], color="#c0392b", label="innocents")
    ax.barh(
        names,
        [m["people_listed"] - m["innocents"] for m in metrics],
        left=[m["innocents"] for m in metrics],
        color="#95a5a6",
        label="with a default of their own",
    )
    ax.invert_yaxis()
    ax.set_xlabel("people listed")
    ax.set_title("People listed per rule: innocents (no default of their own by the cut-off)")
    ax.legend(loc="lower right", fontsize=8)


def _histograms(fig: Any, metrics: Metrics) -> None:
    n = len(metrics)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    edges = [i / 10 for i in range(10)]
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.bar(edges, m["contamination_histogram"], width=0.1, align="edge", color="#2c3e50")
        ax.set_title(str(m["rule"]), fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("contamination", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("Contamination of the simulated entries, per rule (audit by the kernel)")


def _by_hop(ax: Any, metrics: Metrics) -> None:
    hops = [h for h in range(MAX_HOPS + 1) if any(m[f"entries_hop_{h}"] for m in metrics)] or [0]
    width = 0.8 / max(len(metrics), 1)
    for i, m in enumerate(metrics):
        ax.bar(
            [h + i * width for h in hops],
            [m[f"spillover_hop_{h}"] for h in hops],
            width=width,
            label=str(m["rule"]),
        )
    ax.set_xticks([h + 0.4 - width / 2 for h in hops], [str(h) for h in hops])
    ax.set_xlabel("hop depth (0: the borrower's own default; 1: a tie on the loan; 2: ...)")
    ax.set_ylabel("spillover entries")
    ax.set_title("Spillover entries by the hop the rule reached the subject at")
    ax.legend(fontsize=7)


def _tradeoff(ax: Any, metrics: Metrics) -> None:
    # one marker per rule and a legend: rules often land close together (or on the same
    # point), where text labels would overprint each other; the markers are not clipped
    # by the axes (a rule with no innocent sits on x = 0, the one catching most risk on
    # the top of the y axis: half a marker each)
    markers = "os^Dv<>pP*Xh"
    for i, m in enumerate(metrics):
        ax.scatter(
            int(m["innocents"]),
            int(m["defaulted_later"]),
            s=60,
            marker=markers[i % len(markers)],
            alpha=0.8,
            label=str(m["rule"]),
            clip_on=False,
        )
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("innocents listed (harm)")
    ax.set_ylabel("listed people who default after the cut-off (risk caught)")
    ax.set_title("What each rule buys in risk caught against the innocents it costs")


def draw(metrics: Metrics, out: str | Path) -> list[Path]:
    """Write the four figures into the folder ``out``, each as PNG and SVG (each file
    written under a temporary name and renamed into place);
    returns the files written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    out = Path(out)
    written: list[Path] = []
    for name in PLOTS:
        if name == "contamination_histogram":
            rows = (len(metrics) + 2) // 3
            fig = Figure(figsize=(10, 2.6 * max(rows, 1) + 0.6), layout="constrained")
            _histograms(fig, metrics)
        else:
            fig = Figure(figsize=(9, 5), layout="constrained")
            ax = fig.add_subplot(1, 1, 1)
            {
                "innocents_per_rule": _innocents,
                "spillover_by_hop": _by_hop,
                "innocents_vs_risk": _tradeoff,
            }[name](ax, metrics)
        for ext in ("png", "svg"):
            path = out / f"{name}.{ext}"
            part = out / f".{name}.{ext}.part"
            try:
                with matplotlib.rc_context(SAME_BYTES):
                    fig.savefig(part, format=ext, dpi=110, metadata=_metadata(ext))
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
            written.append(path)
    return written


#: matplotlib settings while a plot is saved: the SVG ids (clip paths, markers) are
#: hashes salted with this module's name instead of a random text (set for the save only,
#: matplotlib's own settings are left as they were)
SAME_BYTES: Any = {"svg.hashsalt": __name__}  # (matplotlib types its keys as literals)


def _metadata(ext: str) -> dict[str, Any]:
    """No dates in the files and fixed SVG ids (:data:`SAME_BYTES`), so the same run
    draws the same bytes."""
    return {"Date": None} if ext == "svg" else {"Software": None}
