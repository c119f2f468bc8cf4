"""Re-audit only what a correction changed, on Spark (issue 23 item 4).

The entries to re-score are found on the driver, from the two versions' columns
(:func:`spillover.engines.batch.incremental.entries_to_reaudit`: the difference and the
walk back from it run on the numpy index of both versions); Spark then runs its own pass
(:func:`~spillover.audit.spark.audit_frames`) over the new version's tables with the
blacklist restricted to those entries and the entries their copy chains start from. Every
other entry's row is carried over. So the rows are a full Spark audit's (each entry's
search is its own), but both versions must fit in the driver's memory as columns: a
folder too large for one machine, Spark's own case, has no incremental path (the
difference would have to be found with DataFrame joins; docs/disputes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ...engines.batch import CodedGraph, Columns
from ...engines.batch.incremental import entries_to_reaudit
from ...facts.phonecodes import string_array
from ...policy import Policy, default_policy
from .frames import frames_from_columns
from .search import audit_frames

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import SparkSession

__all__ = ["reaudit_spark"]


def _with_sources(cols: Columns, wanted: set[str]) -> set[str]:
    """``wanted`` and every entry their copy chains were copied from."""
    source = {
        str(e): str(s) for e, s in zip(cols.entry_ids, cols.entry_copied_from, strict=True) if s
    }
    out, todo = set(wanted), list(wanted)
    while todo:
        s = source.get(todo.pop())
        if s and s not in out:
            out.add(s)
            todo.append(s)
    return out


def reaudit_spark(
    spark: SparkSession,
    before: Columns | CodedGraph,
    rows_before: Mapping[str, Mapping[str, Any]],
    after: CodedGraph,
    policy: Policy | None = None,
) -> dict[str, Mapping[str, Any]]:
    """:func:`spillover.audit.incremental.reaudit_rows` with the entries re-scored by the
    Spark pass over the new version's columns (``after``'s): the audit rows of the new
    version by entry id, in id order."""
    from pyspark.sql import functions as F

    policy = policy or default_policy()
    rows = entries_to_reaudit(before, after)
    ids: list[str] = (
        string_array(after.cols.entry_ids).take(pa.array(after.codes.entry_order)).to_pylist()
    )
    fresh: dict[str, Mapping[str, Any]] = {}
    if len(rows):
        wanted = _with_sources(after.cols, {ids[i] for i in rows})
        frames = frames_from_columns(spark, after.cols)
        frames["blacklist"] = frames["blacklist"].where(F.col("entry_id").isin(sorted(wanted)))
        frame = audit_frames(spark, frames, policy)
        fresh = {str(r["entry_id"]): r.asDict() for r in frame.collect()}
    return {e: fresh[e] if e in fresh else rows_before[e] for e in ids}
