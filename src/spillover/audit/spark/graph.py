"""The checked tables as a typed graph: days as numbers since 1970, phones in E.164, platform
records resolved to their people (the kernel's :class:`~spillover.engines.batch.Index`
input, as DataFrames)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...engines.batch import MATCH_KEYS
from ...errors import SpilloverError
from ...facts.columns import FOREVER, NEVER
from ...facts.model import SubjectKind
from ...facts.phones import mobile_pattern, normalize_phone
from .expressions import day_number, flag, lookup
from .kept import cache
from .validate import overlaps_and_loops, resolved, validate

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["NEVER_DAY", "Graph", "typed_graph"]

#: a day before / after every day (a missing since / until), as plain ints
NEVER_DAY, _FOREVER = int(NEVER), int(FOREVER)
#: the index of each match key (``matched_by``) in the kernel's MATCH_KEYS
_MATCH_INDEX = {k.value: i for i, k in enumerate(MATCH_KEYS)}


@dataclass(frozen=True)
class Graph:
    """The checked tables, typed: days as numbers since 1970 (NEVER/FOREVER when open)."""

    periods: DataFrame  # phone, owner, verified, since, until
    #: (+ match: the borrower's record's match, an index in kernel.MATCH_KEYS, -1 none);
    #: loans on a record that resolves to no one are left out
    loans: DataFrame  # loan_id, platform, borrower, applied, known, status, applicant, sms
    links: DataFrame  # loan_id, phone, role
    #: (+ person: the subject person, or a record subject's, null when unresolved; match:
    #: a record subject's match, as on loans)
    entries: DataFrame  # entry_id, platform, kind, subject, listed, copied_from
    sharing: DataFrame  # from, to, since


_GRAPH_FIELDS = ("periods", "loans", "links", "entries", "sharing")


def typed_graph(
    spark: SparkSession, tables: Mapping[str, DataFrame], region: str, check: bool
) -> Graph:
    """The graph of the tables (text columns, :func:`~.frames.text_frames`), checked first
    when ``check`` (:func:`~.validate.validate`, then owner periods and copy chains), its
    frames kept."""
    from pyspark.sql import functions as F

    if check:
        validate(tables, region)
    col = F.col
    by = resolved(tables).select("r_record", "r_person", "r_by")
    tables = _phones(spark, tables, region)
    periods = _periods(tables["phones"])
    entries = _entries(tables["blacklist"])
    if check:
        overlaps_and_loops(periods, entries)
    graph = Graph(
        periods=periods.drop("_file"),
        loans=_loans(tables["loans"], by),
        links=tables["loan_links"].select("loan_id", "phone", "role"),
        entries=_subject_persons(entries, by),
        sharing=tables["sharing"].select(
            col("from_platform").alias("src"),
            col("to_platform").alias("dst"),
            day_number("since", NEVER_DAY).alias("since"),
        ),
    )
    return Graph(*(cache(df) for df in (getattr(graph, f) for f in _GRAPH_FIELDS)))


def _periods(phones: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return phones.select(
        "phone",
        F.col("owner_id").alias("owner"),
        flag("verified").alias("verified"),
        day_number("since", NEVER_DAY).alias("since"),
        day_number("until", _FOREVER).alias("until"),
        "_file",
    )


def _entries(blacklist: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return blacklist.select(
        "entry_id",
        F.col("platform_id").alias("platform"),
        F.col("subject_kind").alias("kind"),
        "subject",
        day_number("listed_at").alias("listed"),
        "copied_from",
    )


def _matched(c: Column) -> Column:
    """The match of a record (an index in the kernel's MATCH_KEYS, -1 none) as ``match``."""
    from pyspark.sql import functions as F

    return F.coalesce(lookup(_MATCH_INDEX, c), F.lit(-1)).alias("match")


def _subject_persons(entries: DataFrame, by: DataFrame) -> DataFrame:
    """A record subject starts from its person, with its match (kernel.Index: _Entries.match)."""
    from pyspark.sql import functions as F

    col = F.col
    return entries.join(
        by, (col("kind") == SubjectKind.RECORD.value) & (col("subject") == col("r_record")), "left"
    ).select(
        *(c for c in entries.columns),
        F.when(col("kind") == SubjectKind.PERSON.value, col("subject"))
        .otherwise(col("r_person"))
        .alias("person"),
        _matched(col("r_by")),
    )


def _loans(loans: DataFrame, by: DataFrame) -> DataFrame:
    """The loans, a loan named by a record carrying the record's person and match
    (kernel.Index: loan_match); loans on a record that resolves to no one left out."""
    from pyspark.sql import functions as F

    col = F.col
    loans = (
        loans.join(by, col("borrower_record") == col("r_record"), "left")
        .withColumn("borrower_id", F.coalesce(col("r_person"), col("borrower_id")))
        .where(col("borrower_id").isNotNull())  # on an unresolved record: no one
    )
    return loans.select(
        "loan_id",
        col("platform_id").alias("platform"),
        col("borrower_id").alias("borrower"),
        day_number("applied_at").alias("applied"),
        F.coalesce(day_number("status_at"), day_number("applied_at")).alias("known"),
        "status",
        col("applicant_phone").alias("applicant"),
        flag("phone_verified").alias("sms"),
        _matched(col("r_by")),
    )


def _phones(
    spark: SparkSession, tables: Mapping[str, DataFrame], region: str
) -> dict[str, DataFrame]:
    """Every phone column in E.164: the region's mobile numbers by their pattern (the
    fast loader's rule), every other distinct value through
    :func:`spillover.facts.phones.normalize_phone` on the driver (one job finds them all).
    Raises for a value that is no valid number."""
    from pyspark.sql import functions as F

    e164, national = mobile_pattern(region)
    country = e164.split("(", 1)[0].removeprefix("^\\")  # "+86"
    columns = (
        ("phones", "phone", None),
        ("loans", "applicant_phone", None),
        ("loan_links", "phone", None),
        ("blacklist", "subject", F.col("subject_kind") == SubjectKind.PHONE.value),
    )

    def selected(name: str, where: Column | None) -> Column:
        v = F.col(name)
        return v.isNotNull() if where is None else (v.isNotNull() & where)

    odd_parts = []
    for table, name, where in columns:
        v = F.col(name)
        odd_parts.append(
            tables[table]
            .where(selected(name, where) & ~v.rlike(e164) & ~v.rlike(national))
            .select(v.alias("raw"), F.col("_file"))
        )
    union = odd_parts[0]
    for part in odd_parts[1:]:
        union = union.unionByName(part)
    limit = 100_000
    odd = union.groupBy("raw").agg(F.first("_file").alias("f")).limit(limit + 1).collect()
    if len(odd) > limit:
        raise SpilloverError(
            f"more than {limit:,} distinct phone numbers outside the {region} mobile plan; "
            "write them in E.164 (+country code), or give --region of most of them"
        )
    mapping = []
    for r in odd:
        try:
            mapping.append((r["raw"], normalize_phone(r["raw"], region)))
        except ValueError as exc:
            raise SpilloverError(f"the data was refused: {r['f']}: phone: {exc}") from None
    e164_of = (
        F.broadcast(spark.createDataFrame(mapping, "_raw string, _e164 string"))
        if mapping
        else None
    )
    out = dict(tables)
    for table, name, where in columns:
        v = F.col(name)
        fixed = F.when(v.rlike(national) & ~v.rlike(e164), F.concat(F.lit(country), v)).otherwise(v)
        df = tables[table]
        if e164_of is not None:
            df = df.join(e164_of, v == F.col("_raw"), "left")
            fixed = F.coalesce(F.col("_e164"), fixed)
        df = df.withColumn(name, F.when(selected(name, where), fixed).otherwise(v))
        out[table] = df.drop("_raw", "_e164") if e164_of is not None else df
    return out
