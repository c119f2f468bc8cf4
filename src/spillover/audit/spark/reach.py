"""Reach (origin platform -> listing): each entry's copy chain walked with one join per copy
step; the sharing graph (platforms, small) solved on the driver, one reachability table
per period between two sharing start days (the kernel's
:func:`~spillover.engines.batch.entry_reach`)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .graph import NEVER_DAY, Graph
from .kept import checkpoint

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["reach"]


def reach(spark: SparkSession, g: Graph, small: bool = False) -> DataFrame:
    """Per entry and platform Q: the latest day a default known at Q still reaches the
    entry's copy chain (``deadline``), the sharing hops and the chain index of that route
    (the kernel's :func:`~spillover.engines.batch.entry_reach`); ``small``: the entries
    broadcast to each copy step."""
    from pyspark.sql import functions as F

    days, dist = _epochs(spark, g.sharing, g.entries)
    day_list = F.array(*[F.lit(d).cast("long") for d in days]) if days else None

    def epoch(t: Column) -> Column:
        if day_list is None:
            return F.lit(0)
        return F.size(F.filter(day_list, lambda d: d <= t))

    e = g.entries.select("entry_id", "platform", "listed", "copied_from")
    parents = e.select(
        F.col("entry_id").alias("_id"),
        F.col("platform").alias("_platform"),
        F.col("listed").alias("_listed"),
        F.col("copied_from").alias("_up"),
    )
    if small:
        parents = F.broadcast(parents)
    cur = checkpoint(
        e.select(
            F.col("entry_id").alias("entry"),
            F.lit(0).alias("i"),
            "platform",
            F.col("listed").alias("t"),
            F.col("copied_from").alias("up"),
        )
    )
    targets = [cur.select("entry", "i", "platform", "t")]
    i = 0
    while True:
        i += 1
        nxt = checkpoint(
            cur.where(F.col("up").isNotNull())
            .join(parents, F.col("up") == F.col("_id"))
            .where(F.col("_listed") <= F.col("t"))
            .select(
                "entry",
                F.lit(i).alias("i"),
                F.col("_platform").alias("platform"),
                F.col("_listed").alias("t"),
                F.col("_up").alias("up"),
            )
        )
        if nxt.isEmpty():
            break
        targets.append(nxt.select("entry", "i", "platform", "t"))
        cur = nxt
    all_targets = targets[0]
    for t in targets[1:]:
        all_targets = all_targets.unionByName(t)
    routes = all_targets.withColumn("ep", epoch(F.col("t"))).join(
        F.broadcast(dist.withColumnRenamed("ep", "_ep")),
        (F.col("ep") == F.col("_ep")) & (F.col("platform") == F.col("p")),
    )
    best = routes.groupBy("entry", "q").agg(
        F.min(F.struct(F.negative("t").alias("nt"), F.col("hops"), F.col("i"))).alias("b")
    )
    return best.select(
        F.col("entry").alias("r_entry"),
        F.col("q").alias("reach_platform"),
        F.negative("b.nt").alias("deadline"),
        F.col("b.hops").alias("sharing_hops"),
        F.col("b.i").alias("chain_index"),
    )


def _epochs(
    spark: SparkSession, sharing: DataFrame, listing: DataFrame
) -> tuple[list[int], DataFrame]:
    """The sharing graph solved on the driver: the start days of sharing periods, and
    (epoch, from Q, to P, hops) for every Q that reaches P in that epoch (Q reaches Q),
    for every platform P that lists (``listing``: its ``platform`` column)."""
    rows = [(r["src"], r["dst"], int(r["since"])) for r in sharing.collect()]
    days = sorted({since for _, _, since in rows if since != NEVER_DAY})
    listed = {r[0] for r in listing.select("platform").distinct().collect()}
    platforms = sorted(listed | {p for a, b, _ in rows for p in (a, b)})
    out: list[tuple[int, str, str, int]] = []
    for k in range(len(days) + 1):
        limit = days[k - 1] if k > 0 else NEVER_DAY
        back: dict[str, list[str]] = {}
        for a, b, since in rows:
            if since <= limit:
                back.setdefault(b, []).append(a)
        for target in platforms:  # BFS backwards from each target
            dist = {target: 0}
            queue = deque([target])
            while queue:
                node = queue.popleft()
                for prev in back.get(node, ()):
                    if prev not in dist:
                        dist[prev] = dist[node] + 1
                        queue.append(prev)
            out += [(k, q, target, h) for q, h in dist.items()]
    table = spark.createDataFrame(out, "ep int, q string, p string, hops int")
    return days, table
