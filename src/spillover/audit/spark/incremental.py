"""Re-audit only what a correction changed, on Spark (issue 23 item 4), with nothing of
either version on the driver.

:func:`reaudit_frames` takes both versions as DataFrames (the tables of docs/contract.md
§1, as :func:`~.frames.read_tables` reads a folder at any path Spark reads) and the old
version's audit rows as a DataFrame (§4 columns, as ``audit --engine spark`` writes them):

1. the difference of the two versions, per table by anti joins of their rows (null-safe,
   every column), each changed row marked removed / added / changed by the table's key,
   and from it the changed facts (:func:`~.difference.frame_changes`);
2. the entries those facts can reach, within the policy's depth (``max_loans - 1`` joins
   back over the new version's ties, then forward over sharing and copies, one join per
   copy step): the definition of :mod:`spillover.engines.batch.incremental`
   (:func:`~.difference.reached_entries`);
3. Spark's own pass (:func:`~.search.audit_graph`) over the new version with its
   blacklist restricted to those entries and the entries their copy chains start from;
   every other entry's row carried over from the old audit by a join.

The rows are a full Spark audit's of the new version (each entry's search is its own;
tests/test_incremental.py holds them to it over random worlds and corrections). What
reaches the driver: whether the platform records and matches are the same (one flag), the
sharing agreements (a few rows per platform, as the pass itself reads them), and the
emptiness of each copy step. :func:`reaudit_spark` is the same from the numpy columns
(what ``reaudit_rows`` takes), its rows collected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...engines.batch import CodedGraph, Columns
from ...facts.phones import DEFAULT_REGION
from ...policy import Policy, default_policy
from ..rows import AUDIT_COLUMNS
from .difference import FrameChanges, frame_changes, reached_entries
from .frames import frames_from_columns, text_frames
from .graph import typed_graph
from .kept import Kept, cache, checkpoint
from .search import audit_graph, broadcast_all

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["AUDIT_SCHEMA", "SparkReaudit", "reaudit_frames", "reaudit_spark"]

#: the audit rows' types as Spark's pass gives them (docs/contract.md §4 columns)
AUDIT_SCHEMA = (
    "entry_id string, platform_id string, subject_kind string, subject string, "
    "listed_at string, contamination double, verdict string, origin_loan_id string, "
    "origin_borrower_id string, origin_platform_id string, responsibility double, "
    "hops long, reason_codes string"
)


@dataclass(frozen=True)
class SparkReaudit:
    """A re-audit on Spark: the new version's rows and what was re-scored, both computed
    and kept until :meth:`release` (or the end of a ``with`` block over it); everything
    else the re-audit cached or checkpointed was released when it returned."""

    #: the audit rows of the new version (§4 columns, entry_id order), computed and kept
    rows: DataFrame
    #: entry_id: the entries re-scored (those the difference reaches, and the entries
    #: their copy chains start from), computed and kept; every other row was carried over
    rescored: DataFrame
    #: the difference found (per table, and the seeds): lazy again (its cache released),
    #: computed anew when read
    changes: FrameChanges
    #: what :attr:`rows` and :attr:`rescored` hold in the session
    kept: Kept = field(repr=False, compare=False)

    def release(self) -> None:
        """Free the rows and the re-scored ids kept in the session (blocking)."""
        self.kept.release()

    def __enter__(self) -> SparkReaudit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _typed(spark: SparkSession, rows: DataFrame) -> DataFrame:
    """``rows`` with the §4 columns in the pass's types (an audit read from CSV is text)."""
    from pyspark.sql import functions as F

    schema = spark.createDataFrame([], AUDIT_SCHEMA).schema
    return rows.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema))


def reaudit_frames(
    spark: SparkSession,
    before: Mapping[str, DataFrame],
    rows_before: DataFrame,
    after: Mapping[str, DataFrame],
    policy: Policy | None = None,
    *,
    region: str = DEFAULT_REGION,
    check: bool = True,
) -> SparkReaudit:
    """The audit rows of version ``after`` (its tables as DataFrames, as
    :func:`~.search.audit_frames` takes them), the entries the difference from ``before``
    (the old version's tables) can reach re-scored by Spark's pass, every other row
    carried over from ``rows_before`` (the old version's audit under ``policy``). ``check``
    checks ``after``'s tables as ``audit_frames`` does (``before`` was audited: not again).
    Every step is a DataFrame join: nothing of either version is collected (module doc).

    The rows and the re-scored ids come back computed and kept in the session; every
    other frame the re-audit cached or checkpointed is released before it returns (or
    raises). Release the two with :meth:`SparkReaudit.release`, or use the result as a
    context manager: ``with reaudit_frames(...) as got: got.rows.write...``."""
    policy = policy or default_policy()
    out = Kept()
    try:
        with Kept():  # the re-audit's own frames: released when it ends
            changes, rows, rescored = _reaudit(
                spark, before, rows_before, after, policy, region, check
            )
            with out.active():  # what it gives back: computed now, kept until released
                rows, rescored = checkpoint(rows), checkpoint(rescored)
    except BaseException:
        out.release()
        raise
    return SparkReaudit(rows, rescored, changes, out)


def _reaudit(
    spark: SparkSession,
    before: Mapping[str, DataFrame],
    rows_before: DataFrame,
    after: Mapping[str, DataFrame],
    policy: Policy,
    region: str,
    check: bool,
) -> tuple[FrameChanges, DataFrame, DataFrame]:
    """The difference, the rows (entry_id order) and the re-scored ids, as frames."""
    from pyspark.sql import functions as F

    text_a, text_b = text_frames(spark, before), text_frames(spark, after)
    ga = typed_graph(spark, text_a, region, False)
    gb = typed_graph(spark, text_b, region, check)
    small = broadcast_all(spark, text_b)
    changes = frame_changes(spark, text_a, ga, text_b, gb, small)
    if changes.everything:
        rows = audit_graph(spark, gb, policy, small=small)
        return changes, rows, gb.entries.select("entry_id")
    rescored = reached_entries(gb, changes, policy.max_loans)
    # (a small graph: the ids joined without a shuffle; a large one: as Spark plans it)
    ids = F.broadcast(rescored) if small else rescored
    carried = (
        _typed(spark, rows_before)
        .join(gb.entries.select("entry_id"), "entry_id", "left_semi")
        .join(ids, "entry_id", "left_anti")
    )
    if not rescored.count():
        return changes, carried.orderBy("entry_id"), rescored
    entries = cache(gb.entries.join(ids, "entry_id", "left_semi"))
    fresh = _typed(spark, audit_graph(spark, replace(gb, entries=entries), policy, small=small))
    return changes, fresh.unionByName(carried).orderBy("entry_id"), rescored


def reaudit_spark(
    spark: SparkSession,
    before: Columns | CodedGraph,
    rows_before: Mapping[str, Mapping[str, Any]],
    after: CodedGraph,
    policy: Policy | None = None,
) -> dict[str, Mapping[str, Any]]:
    """:func:`spillover.audit.incremental.reaudit_rows` on Spark: :func:`reaudit_frames`
    over the two versions' validated columns (``before``'s, ``after``'s) and the old rows,
    its rows collected: the audit rows of the new version by entry id, in id order."""
    policy = policy or default_policy()
    cols_a = before.cols if isinstance(before, CodedGraph) else before
    ids: list[str] = after.entry_ids_by_code().to_pylist()
    old = spark.createDataFrame(
        [tuple(r[c] for c in AUDIT_COLUMNS) for r in rows_before.values()], AUDIT_SCHEMA
    )
    with reaudit_frames(
        spark,
        frames_from_columns(spark, cols_a),
        old,
        frames_from_columns(spark, after.cols),
        policy,
        check=False,
    ) as got:
        rows = {str(r["entry_id"]): r.asDict() for r in got.rows.collect()}
    return {e: rows[e] for e in ids}
