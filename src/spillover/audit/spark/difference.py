"""The difference of two versions of one dataset as DataFrame steps, and the entries of
the new version it can reach (issue 23 item 4, for a blacklist too large for one machine).

The same definition as :mod:`spillover.engines.batch.incremental` (its module doc), on
the typed graphs (:class:`~.graph.Graph`: phones in E.164, days as numbers) of both
versions, with nothing collected but a flag, counts and the sharing agreements (a few
rows per platform, as :mod:`.reach` reads them):

* :func:`frame_changes`: per table, the rows of either version not in the other (both
  versions grouped by every column, nulls equal: the rows of one side only), each marked
  ``removed``, ``added`` or ``changed`` by the table's key (a key in both versions:
  ``changed``); from them the *seeds* as one-column DataFrames: the people whose ties
  changed, the numbers whose uses or owners changed, the changed loans, the entries
  changed or added, the platforms a changed sharing agreement leads to. Platform records
  and matches are compared whole (when they differ, ``everything``: every entry is
  re-scored);
* :func:`reached_entries`: walking back from the seeds over the new version's ties,
  ``max_loans - 1`` joins (a loan whose borrower is reached makes every person tied to it
  on its application day reached), one kept frame per step; the entries whose subject is
  reached or whose platform a changed agreement leads to; then :func:`along_copies`,
  down the copies and up the copy sources, one kept frame per copy step: the entries to
  re-score.

Every frame cached or kept here is written down in the current
:class:`~.kept.Kept` block (:func:`~.incremental.reaudit_frames` releases them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...engines.batch.incremental import reached_from
from ...facts.model import SubjectKind
from .graph import Graph
from .kept import cache, checkpoint

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "ADDED",
    "CHANGED",
    "REMOVED",
    "FrameChanges",
    "along_copies",
    "frame_changes",
    "reached_entries",
    "table_difference",
]

#: what happened to a row of a table between the two versions
REMOVED, ADDED, CHANGED = "removed", "added", "changed"

#: the tables compared (of the typed graph unless said) and their keys (none: the row)
_KEYS: Mapping[str, tuple[str, ...]] = {
    "people": ("person_id",),  # the text tables' (the typed graph has no people)
    "periods": (),
    "loans": ("loan_id",),
    "loan_records": ("loan_id",),  # the text tables' loans: the record a loan names
    "links": (),
    "entries": ("entry_id",),
    "sharing": (),
}
#: the columns compared per table (the numpy difference's, engines.batch.incremental)
_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "people": ("person_id",),
    "periods": ("phone", "owner", "verified", "since", "until"),
    "loans": ("loan_id", "platform", "borrower", "applied", "known", "status", "applicant", "sms"),
    "loan_records": ("loan_id", "borrower_record"),
    "links": ("loan_id", "phone", "role"),
    "entries": ("entry_id", "platform", "kind", "subject", "listed", "copied_from"),
    "sharing": ("src", "dst", "since"),
}


@dataclass(frozen=True)
class FrameChanges:
    """What differs between two versions, as DataFrames (nothing collected)."""

    #: per table (:data:`_COLUMNS`' names): its rows of either version not in the other,
    #: with ``side`` (``before``/``after``) and ``change`` (removed, added, changed)
    tables: Mapping[str, DataFrame]
    persons: DataFrame  # person: people whose ties changed (seeds)
    phones: DataFrame  # phone: numbers whose uses or owners changed (seeds)
    loans: DataFrame  # loan_id: loans changed, added or removed
    entries: DataFrame  # entry_id: entries changed or added (in the new version)
    platforms: DataFrame  # platform: where a changed sharing agreement leads
    #: platform records or matches differ: every entry is re-scored
    everything: bool = False
    #: the graph is small (:func:`~.search.broadcast_all`): the seeds and every frame the
    #: walk finds are broadcast to their joins (no shuffle of the tables they join)
    small: bool = False

    def counts(self) -> dict[str, int]:
        """The changed rows per table (one small job per table)."""
        return {name: df.count() for name, df in self.tables.items()}


def _one_side(a: DataFrame, b: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The distinct rows (``columns``) of ``a`` with no equal row in ``b`` and those of ``b``
    with none in ``a`` (nulls equal), with ``side`` (``before``: ``a``'s): both versions
    in one grouping by every column (one shuffle, no join: no broadcast of its own)."""
    from pyspark.sql import functions as F

    both = a.select(*columns, F.lit(1).alias("_v")).unionByName(
        b.select(*columns, F.lit(2).alias("_v"))
    )
    rows = both.groupBy(*columns).agg(F.min("_v").alias("_lo"), F.max("_v").alias("_hi"))
    side = F.when(F.col("_lo") == 1, F.lit("before")).otherwise(F.lit("after"))
    return rows.where(F.col("_lo") == F.col("_hi")).select(*columns, side.alias("side"))


def table_difference(
    a: DataFrame, b: DataFrame, columns: Sequence[str], key: Sequence[str]
) -> DataFrame:
    """The rows of ``a`` (before) not in ``b`` (after) and of ``b`` not in ``a`` (distinct,
    every column compared, nulls equal), with ``side`` and ``change``: with a ``key``, a
    key on both sides is ``changed`` (its old and new row both listed), else ``removed`` /
    ``added``."""
    return _marked(_one_side(a, b, columns), key)


def _marked(both: DataFrame, key: Sequence[str]) -> DataFrame:
    """The rows of one side only (:func:`_one_side`) with ``change`` by ``key``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    alone = F.when(F.col("side") == "before", F.lit(REMOVED)).otherwise(F.lit(ADDED))
    if not key:
        return both.withColumn("change", alone)
    sides = F.size(F.collect_set("side").over(Window.partitionBy(*key)))
    return both.withColumn("change", F.when(sides > 1, F.lit(CHANGED)).otherwise(alone))


def _differ(a: DataFrame, b: DataFrame) -> DataFrame:
    """One row (``v`` null) when the two tables do not hold the same rows (``_file``
    aside), else none."""
    from pyspark.sql import functions as F

    columns = [c for c in a.columns if c != "_file"]
    return _one_side(a, b, columns).limit(1).select(F.lit(None).cast("string").alias("v"))


def _side(df: DataFrame, small: bool) -> DataFrame:
    """``df`` as the broadcast side of a join when the graph is small."""
    from pyspark.sql import functions as F

    return F.broadcast(df) if small else df


def _values(df: DataFrame, column: str, name: str, where: Column | None = None) -> DataFrame:
    from pyspark.sql import functions as F

    picked = df if where is None else df.where(where)
    return picked.select(F.col(column).alias(name)).where(F.col(name).isNotNull())


def _union(parts: Sequence[DataFrame]) -> DataFrame:
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()


def frame_changes(
    spark: SparkSession,
    text_a: Mapping[str, DataFrame],
    ga: Graph,
    text_b: Mapping[str, DataFrame],
    gb: Graph,
    small: bool = False,
) -> FrameChanges:
    """The difference of version A (its text tables and typed graph) and version B, as
    DataFrames (module doc): one job to compare the platform records and matches."""
    from pyspark.sql import functions as F

    col = F.col
    sources = {
        "people": (text_a["people"], text_b["people"]),
        "periods": (ga.periods, gb.periods),
        "loans": (ga.loans, gb.loans),
        "loan_records": (text_a["loans"], text_b["loans"]),
        "links": (ga.links, gb.links),
        "entries": (ga.entries, gb.entries),
        "sharing": (ga.sharing, gb.sharing),
    }
    # the rows of one side only, kept once computed (the seeds read them); their marks
    # (removed / added / changed: a window by key) only when the tables are read
    rows = {name: cache(_one_side(a, b, _COLUMNS[name])) for name, (a, b) in sources.items()}
    tables = {name: _marked(df, _KEYS[name]) for name, df in rows.items()}
    loans = cache(
        _union(
            [
                _values(rows["loans"], "loan_id", "loan_id"),
                _values(rows["loan_records"], "loan_id", "loan_id"),
            ]
        )
    )
    # the numbers of changed links, periods and loans, and every number a changed loan names
    of_loans = gb.links.join(_side(loans, small), "loan_id", "left_semi")
    phones = _union(
        [
            _values(rows["links"], "phone", "phone"),
            _values(rows["periods"], "phone", "phone"),
            _values(rows["loans"], "applicant", "phone"),
            _values(of_loans, "phone", "phone"),
        ]
    )
    persons = _union(
        [
            _values(rows["people"], "person_id", "person"),
            _values(rows["periods"], "owner", "person"),
            _values(rows["loans"], "borrower", "person"),
        ]
    )
    entries = _values(rows["entries"], "entry_id", "entry_id", col("side") == "after").distinct()
    # one job: whether the records or matches differ, and where changed agreements lead
    differ = [_differ(text_a[t], text_b[t]) for t in ("records", "matches")]
    found = _union([*differ, rows["sharing"].select(col("dst").alias("v"))]).collect()
    everything = any(r["v"] is None for r in found)
    return FrameChanges(
        tables=tables,
        persons=cache(persons),
        phones=cache(phones),
        loans=loans,
        entries=cache(entries),
        platforms=_forward(spark, ga, gb, {r["v"] for r in found if r["v"] is not None}),
        everything=everything,
        small=small,
    )


def _forward(spark: SparkSession, ga: Graph, gb: Graph, start: set[str]) -> DataFrame:
    """The platforms the changed agreements lead to (``start``: their ``dst``, and on over
    the agreements of either version, any day): the sharing graph is the platforms',
    small, solved on the driver as :mod:`.reach` solves it."""
    seen = set(start)
    if start:
        edges = {
            (r["src"], r["dst"])
            for g in (ga, gb)
            for r in g.sharing.select("src", "dst").distinct().collect()
        }
        seen = reached_from(seen, edges)
    return spark.createDataFrame([(p,) for p in sorted(seen)], "platform string")


# -- the walk back from the seeds, over the new version's ties --------------------------------


def _own_loans(g: Graph, people: DataFrame, small: bool) -> DataFrame:
    """loan_id, applied, applicant, borrower of the loans ``people`` (person) borrowed."""
    from pyspark.sql import functions as F

    on = F.col("borrower") == F.col("person")
    return g.loans.join(_side(people, small), on, "left_semi").select(
        "loan_id", "applied", "applicant", "borrower"
    )


def _phones_of(g: Graph, loans: DataFrame, small: bool) -> DataFrame:
    """phone, applied: the numbers ``loans`` name (applicant and links), with the day."""
    from pyspark.sql import functions as F

    applicant = loans.where(F.col("applicant").isNotNull()).select(
        F.col("applicant").alias("phone"), "applied"
    )
    named = _side(loans.select("loan_id", "applied"), small)
    links = g.links.join(named, "loan_id").select("phone", "applied")
    return applicant.unionByName(links)


def _tied_to(g: Graph, loans: DataFrame, small: bool) -> DataFrame:
    """person: the borrowers of ``loans`` and the owners of the numbers they name on the
    application day (owner periods never overlap: the one covering the day)."""
    from pyspark.sql import functions as F

    col = F.col
    uses = _side(_phones_of(g, loans, small).distinct(), small)
    p = g.periods.select(col("phone").alias("_p"), "owner", "since", "until")
    owners = uses.join(
        p,
        (col("phone") == col("_p"))
        & (col("since") <= col("applied"))
        & (col("until") >= col("applied")),
    ).select(col("owner").alias("person"))
    borrowers = loans.select(col("borrower").alias("person"))
    return borrowers.unionByName(owners).where(col("person").isNotNull())


def _reached_people(g: Graph, changes: FrameChanges, max_loans: int) -> list[DataFrame]:
    """Per j = 0 .. max_loans - 1: the people (person) that put a seed on their search's
    frontier within j loans: one job per step (each step computed and kept, so that the
    plans stay as long as one step: a step reads the one before twice)."""
    from pyspark.sql import functions as F

    col = F.col
    small = changes.small
    owners = g.periods.join(_side(changes.phones, small), "phone", "left_semi").select(
        col("owner").alias("person")
    )
    borrowers = g.loans.join(_side(changes.loans, small), "loan_id", "left_semi").select(
        col("borrower").alias("person")
    )
    out = [_union([changes.persons, owners, borrowers]).where(col("person").isNotNull())]
    for _ in range(1, max_loans):
        more = _tied_to(g, _own_loans(g, out[-1], small), small)
        out.append(checkpoint(out[-1].unionByName(more).distinct()))
    return out


def reached_entries(g: Graph, changes: FrameChanges, max_loans: int) -> DataFrame:
    """entry_id: the entries of ``g`` (the new version) a re-audit must score under
    ``changes`` (module doc) and the entries their copy chains start from (the pass scores
    a copy from its chain): every entry when the difference cannot be followed."""
    from pyspark.sql import functions as F

    col = F.col
    entries = g.entries
    if changes.everything:
        return entries.select("entry_id")
    reached = _reached_people(g, changes, max_loans)
    people = reached[max_loans - 1].withColumnRenamed("person", "_r")
    small = changes.small
    by_person = entries.join(_side(people, small), col("person") == col("_r"), "left_semi")
    phone_ok = [changes.phones]
    if max_loans >= 2:
        loans = _own_loans(g, reached[max_loans - 2], small)
        phone_ok.append(_phones_of(g, loans, small).select("phone"))
    numbers = _union(phone_ok).withColumnRenamed("phone", "_s")
    phones = entries.where(col("kind") == SubjectKind.PHONE.value).join(
        _side(numbers, small), col("subject") == col("_s"), "left_semi"
    )
    platforms = changes.platforms.withColumnRenamed("platform", "_q")
    listed = entries.join(_side(changes.entries, small), "entry_id", "left_semi").unionByName(
        entries.join(_side(platforms, small), col("platform") == col("_q"), "left_semi")
    )
    listed = checkpoint(listed.select("entry_id").distinct())
    start = checkpoint(_union([df.select("entry_id") for df in (by_person, phones, listed)]))
    return along_copies(entries, start, listed, small)


def along_copies(
    entries: DataFrame, start: DataFrame, changed: DataFrame, small: bool = False
) -> DataFrame:
    """entry_id: ``start``, every entry copied (at any remove) from one of ``changed`` (a
    part of ``start``: a copy of an entry reached by its subject has that subject, and is
    reached itself), and every entry the copy chains of all of them were copied from (the
    pass scores a copy from its chain). Copy chains are a forest (no loops: checked), so
    each step goes down one copy and up one source, both in one join and one kept frame;
    a step that finds none ends the walk: two small jobs per step of the longest chain,
    the steps' frames unioned at the end (no frame grows in the loop)."""
    from pyspark.sql import functions as F

    col = F.col
    copies = entries.select(col("entry_id").alias("_e"), col("copied_from").alias("_up"))
    down = copies.where(col("_up").isNotNull()).select(
        col("_e").alias("_to"), col("_up").alias("_from"), F.lit(True).alias("_down")
    )
    up = copies.where(col("_up").isNotNull()).select(
        col("_up").alias("_to"), col("_e").alias("_from"), F.lit(False).alias("_down")
    )
    steps = down.unionByName(up)
    parts = [start.select("entry_id"), changed.select("entry_id")]
    # the frontier: entry_id and the way it goes (down the copies or up the sources)
    frontier = changed.select("entry_id", F.lit(True).alias("way")).unionByName(
        start.select("entry_id", F.lit(False).alias("way"))
    )
    while True:
        nxt = (
            _side(frontier, small)
            .join(steps, (col("entry_id") == col("_from")) & (col("way") == col("_down")))
            .select(col("_to").alias("entry_id"), col("way"))
        )
        frontier = checkpoint(nxt.distinct())
        if frontier.isEmpty():
            return checkpoint(_union(parts))
        parts.append(frontier.select("entry_id"))
