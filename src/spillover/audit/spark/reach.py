"""Reach (origin platform -> listing): each entry's copy chain walked by doubling (log2 of
the longest chain rounds of joins); the sharing graph (platforms, small) solved on the driver, one reachability table
per period between two sharing start days (the kernel's
:func:`~spillover.engines.batch.entry_reach`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .graph import NEVER_DAY, Graph
from .kept import checkpoint

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["reach"]


def reach(spark: SparkSession, g: Graph, small: bool = False) -> DataFrame:
    """Per entry and platform Q: the latest day a default known at Q still reaches the
    entry's copy chain (``deadline``), the sharing hops and the chain index of that route
    (the kernel's :func:`~spillover.engines.batch.entry_reach`); ``small``: the walk's
    frontier and the entries broadcast to its joins (:func:`_chain_targets`)."""
    from pyspark.sql import functions as F

    days, dist, span = _epochs(spark, g.sharing, g.entries)
    day_list = F.array(*[F.lit(d).cast("long") for d in days]) if days else None

    def epoch(t: Column) -> Column:
        if day_list is None:
            return F.lit(0)
        return F.size(F.filter(day_list, lambda d: d <= t))

    targets, steps = _chain_targets(g.entries, small)
    routes = targets.withColumn("ep", epoch(F.col("t"))).join(
        F.broadcast(dist.withColumnRenamed("ep", "_ep")),
        (F.col("ep") == F.col("_ep")) & (F.col("platform") == F.col("p")),
    )
    return _best_routes(routes, span, steps)


def _chain_targets(entries: DataFrame, small: bool) -> tuple[DataFrame, int]:
    """(entry, i, platform, t) for every entry and the i-th entry up its copy chain (the
    entry itself at i = 0), its platform and listing day ``t``, for as long as each copy
    was listed no earlier than its source (a step to a source listed later, or on no day,
    ends the walk: the kernel's :func:`~spillover.engines.batch.entry_reach`); and a bound
    on i (every i is below it).

    The chains are walked by doubling: the entries up to 2^k up every chain, then up to
    2^(k+1) by joining those of each entry's ancestor 2^k up; a chain of n copies takes
    log2(n) + 1 rounds of two joins, not n (one join and two Spark jobs per copy: a
    chain of 400 copies cost a minute on two cores). ``small``: the frontier (each
    entry's ancestor 2^k up) broadcast to each round's joins."""
    from pyspark.sql import functions as F

    col = F.col
    e = entries.select("entry_id", "platform", "listed", "copied_from")
    listed = e.select(col("entry_id").alias("_id"), col("listed").alias("_listed"))
    # each step up: a copy to its source, when the source was listed no later
    up = checkpoint(
        e.where(col("copied_from").isNotNull())
        .join(listed, col("copied_from") == col("_id"))
        .where(col("_listed") <= col("listed"))
        .select(col("entry_id").alias("entry"), col("copied_from").alias("node"))
    )
    walked = e.select(
        col("entry_id").alias("entry"), F.lit(0).alias("i"), col("entry_id").alias("node")
    )
    span = 1  # walked holds every entry's nodes i < span; up, its node span up (if any)
    while not up.isEmpty():
        ahead = F.broadcast(up) if small else up
        further = ahead.join(
            walked.select(col("entry").alias("_e"), col("i").alias("_i"), col("node").alias("_n")),
            col("node") == col("_e"),
        ).select("entry", (F.lit(span) + col("_i")).alias("i"), col("_n").alias("node"))
        walked = checkpoint(walked.unionByName(further))
        up = checkpoint(
            ahead.join(
                up.select(col("entry").alias("_e"), col("node").alias("_n")),
                col("node") == col("_e"),
            ).select("entry", col("_n").alias("node"))
        )
        span *= 2
    nodes = e.select(col("entry_id").alias("_node"), "platform", col("listed").alias("t"))
    targets = walked.join(F.broadcast(nodes) if small else nodes, col("node") == col("_node"))
    return targets.select("entry", "i", "platform", "t"), span


def _best_routes(routes: DataFrame, span: _Span | None, steps: int) -> DataFrame:
    """Per (entry, platform Q): the route of the latest day, then the fewest sharing hops,
    then the lowest chain index (the least ``(-t, hops, i)``). When the three fit one
    64-bit number (``span``: the days' and hops' ranges; ``steps``: the chain indexes), as
    the least of that number: a hash aggregation, where the least of a struct is a sort of
    every route (7.7 million at 1M people)."""
    from pyspark.sql import functions as F

    col = F.col
    if span is not None:
        t_bits = (span.last - span.first).bit_length()
        h_bits, i_bits = span.hops.bit_length(), steps.bit_length()
        if t_bits + h_bits + i_bits <= 62:
            packed = (
                F.shiftleft(F.lit(span.last) - col("t"), h_bits + i_bits)
                + F.shiftleft(col("hops").cast("long"), i_bits)
                + col("i").cast("long")
            )
            best = routes.groupBy("entry", "q").agg(F.min(packed).alias("b"))
            h_mask, i_mask = (1 << h_bits) - 1, (1 << i_bits) - 1
            return best.select(
                col("entry").alias("r_entry"),
                col("q").alias("reach_platform"),
                (F.lit(span.last) - F.shiftright("b", h_bits + i_bits)).alias("deadline"),
                (F.shiftright("b", i_bits).bitwiseAND(h_mask)).cast("int").alias("sharing_hops"),
                col("b").bitwiseAND(i_mask).cast("int").alias("chain_index"),
            )
    best = routes.groupBy("entry", "q").agg(
        F.min(F.struct(F.negative("t").alias("nt"), col("hops"), col("i"))).alias("b")
    )
    return best.select(
        col("entry").alias("r_entry"),
        col("q").alias("reach_platform"),
        F.negative("b.nt").alias("deadline"),
        col("b.hops").alias("sharing_hops"),
        col("b.i").alias("chain_index"),
    )


@dataclass(frozen=True)
class _Span:
    """The listing days' range (first, last) and the most sharing hops of a route."""

    first: int
    last: int
    hops: int


def _epochs(
    spark: SparkSession, sharing: DataFrame, listing: DataFrame
) -> tuple[list[int], DataFrame, _Span | None]:
    """The sharing graph solved on the driver: the start days of sharing periods, and
    (epoch, from Q, to P, hops) for every Q that reaches P in that epoch (Q reaches Q),
    for every platform P that lists (``listing``: its ``platform`` and ``listed``
    columns); and the :class:`_Span` of the listing days and the hops (None: a listing
    day missing, or no entries)."""
    from pyspark.sql import functions as F

    rows = [(r["src"], r["dst"], int(r["since"])) for r in sharing.collect()]
    days = sorted({since for _, _, since in rows if since != NEVER_DAY})
    per_platform = (
        listing.groupBy("platform")
        .agg(
            F.min("listed").alias("first"),
            F.max("listed").alias("last"),
            F.count(F.when(F.col("listed").isNull(), 1)).alias("missing"),
        )
        .collect()
    )
    listed = {r["platform"] for r in per_platform}
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
    complete = bool(per_platform) and not any(r["missing"] for r in per_platform)
    span = (
        _Span(
            first=min(int(r["first"]) for r in per_platform),
            last=max(int(r["last"]) for r in per_platform),
            hops=max((h for *_, h in out), default=0),
        )
        if complete
        else None
    )
    return days, table, span
