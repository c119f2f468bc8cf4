"""The audit rows (docs/contract.md §4) of the search's best origins: each entry scored and
its reason codes spelled, both computed on the driver once per distinct value with the
rules' own functions and joined back (a few hundred rows; the kernel's ``_result`` and
``_reason_codes``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engines.batch import path_codes
from ...policy import Policy
from ...rules import score
from ..rows import AUDIT_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["result"]


def result(spark: SparkSession, entries: DataFrame, best: DataFrame, policy: Policy) -> DataFrame:
    """The §4 rows: each entry with its best origin, scored and its reason codes spelled
    (both computed on the driver once per distinct value, with the rules' functions)."""
    from pyspark.sql import functions as F

    col = F.col
    matches = entries.select(col("entry_id").alias("entry"), col("match").alias("b_match"))
    found = best.where(col("b_resp").isNotNull()).join(matches, "entry")
    shapes = (
        found.select(
            "b_path",
            "b_mpath",
            "b_match",
            (col("b_hops") > 0).alias("shared"),
            (col("b_chain") > 0).alias("copied"),
            "b_resp",
        )
        .groupBy("b_path", "b_mpath", "b_match", "shared", "copied")
        .agg(F.collect_set("b_resp").alias("resps"))  # the scores below: one job for both
        .collect()
    )
    texts = [
        (
            list(r["b_path"]),
            list(r["b_mpath"]),
            int(r["b_match"]),
            bool(r["shared"]),
            bool(r["copied"]),
            " ".join(
                path_codes(
                    list(r["b_path"]),
                    bool(r["shared"]),
                    bool(r["copied"]),
                    entry_match=int(r["b_match"]),
                    loan_matches=list(r["b_mpath"]),
                )
            ),
        )
        for r in shapes
    ]
    none_text = " ".join(path_codes([], False, False))
    codes = spark.createDataFrame(
        texts,
        "c_path array<int>, c_mpath array<int>, c_match int, c_shared boolean, "
        "c_copied boolean, c_text string",
    )
    values = sorted({float(v) for r in shapes for v in r["resps"]})
    scored = []
    for v in values:
        s = score(v, policy)
        scored.append((v, s.responsibility, s.contamination, s.verdict.value))
    unexplained = score(None, policy)
    scores = spark.createDataFrame(
        scored, "s_raw double, s_resp double, s_contamination double, s_verdict string"
    )
    b = found.join(
        F.broadcast(codes),
        (col("b_path") == col("c_path"))
        & (col("b_mpath") == col("c_mpath"))
        & (col("b_match") == col("c_match"))
        & ((col("b_hops") > 0) == col("c_shared"))
        & ((col("b_chain") > 0) == col("c_copied")),
    ).join(F.broadcast(scores), col("b_resp") == col("s_raw"))
    b = b.select(
        col("entry").alias("entry_id"),
        "b_loan",
        "b_borrower",
        "b_platform",
        "b_depth",
        "c_text",
        "s_resp",
        "s_contamination",
        "s_verdict",
    )
    e = entries.join(b, "entry_id", "left")
    rows = e.select(
        "entry_id",
        col("platform").alias("platform_id"),
        col("kind").alias("subject_kind"),
        "subject",
        F.date_format(F.date_from_unix_date(col("listed").cast("int")), "yyyy-MM-dd").alias(
            "listed_at"
        ),
        F.coalesce(col("s_contamination"), F.lit(unexplained.contamination)).alias("contamination"),
        F.coalesce(col("s_verdict"), F.lit(unexplained.verdict.value)).alias("verdict"),
        col("b_loan").alias("origin_loan_id"),
        col("b_borrower").alias("origin_borrower_id"),
        col("b_platform").alias("origin_platform_id"),
        col("s_resp").alias("responsibility"),
        col("b_depth").cast("long").alias("hops"),
        F.coalesce(col("c_text"), F.lit(none_text)).alias("reason_codes"),
    )
    return rows.select(*AUDIT_COLUMNS).orderBy("entry_id")
