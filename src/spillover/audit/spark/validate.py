"""What the Spark audit checks of a folder's tables (docs/scale-out.md: what is checked), as
DataFrame checks derived from the contract's row models (:mod:`spillover.data.contract`):
required values, enumerations, booleans, real days; then the order of days, unique ids,
references, the rules of platform records that span rows, owner periods that overlap and
copy chains that loop. The rows of ``records`` and ``matches`` are checked on the driver
by the row models themselves. Each check refuses with one line per kind of problem."""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ...data.contract import (
    FALSE_TEXTS,
    LINKAGE_TABLES,
    MAX_YEAR,
    MIN_YEAR,
    TRUE_TEXTS,
    field_kinds,
)
from ...data.contract import TABLES as CONTRACT_TABLES
from ...data.exact import error_text
from ...errors import SpilloverError
from ...facts.model import SubjectKind
from ...facts.phones import DEFAULT_REGION
from ...rules import MatchKey
from .expressions import is_date
from .frames import TABLES, refusal
from .kept import checkpoint

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame

__all__ = ["overlaps_and_loops", "resolved", "validate"]


def validate(tables: Mapping[str, DataFrame], region: str = DEFAULT_REGION) -> None:
    """What the Spark path checks of a folder (docs/scale-out.md: what is checked):
    required values, enumerations, booleans, dates, unique ids, references, owner
    periods that overlap, copy chains that loop; the rows of platform records and
    matches by the embedded loader's row models (:func:`_linkage_row_problems`).
    Raises one line per kind of problem."""
    problems = _problems([_checks_of(tables, _value_checks())]) + _linkage_row_problems(
        tables, region
    )
    if problems:
        raise SpilloverError(refusal(problems))
    # order of days (only once the days are readable)
    problems = _problems(
        [
            _checks_of(tables, _order_checks()),
            _duplicates(tables),
            _references(tables),
            _summaries(_linkage_checks(tables)),
        ]
    )
    if problems:
        raise SpilloverError(refusal(problems))


@dataclass(frozen=True)
class _Check:
    """A rule over one table's rows: ``bad`` marks the rows that break it."""

    table: str
    field: str
    bad: Column
    message: str
    shown: Column


def _value_checks() -> list[_Check]:
    """The checks of single values, in this order: required values (the linkage tables'
    rows: the loader's row models), a loan's borrower, enumerations, booleans, days."""
    from pyspark.sql import functions as F

    col = F.col
    checks = [
        _required(table, name)
        for table, (required, _optional) in TABLES.items()
        if table not in LINKAGE_TABLES  # those rows: the loader's row models
        for name in required
    ]
    checks.append(
        _Check(
            "loans",
            "borrower_id",
            col("borrower_id").isNull() & col("borrower_record").isNull(),
            "with no value (give borrower_id or borrower_record)",
            col("loan_id"),
        )
    )
    checks += [_enum(table, name, allowed) for table, name, allowed in _enum_columns()]
    checks += [_boolean(table, name) for table, name in _columns_of_kind("bool")]
    checks += [_day_check(table, name) for table, name in _columns_of_kind("date")]
    return checks


def _required(table: str, name: str) -> _Check:
    from pyspark.sql import functions as F

    return _Check(table, name, F.col(name).isNull(), "with no value", F.lit("empty"))


def _enum(table: str, name: str, allowed: list[str]) -> _Check:
    from pyspark.sql import functions as F

    col = F.col
    return _Check(
        table,
        name,
        col(name).isNotNull() & ~col(name).isin(*allowed),
        f"not one of {', '.join(allowed)}",
        col(name),
    )


def _boolean(table: str, name: str) -> _Check:
    from pyspark.sql import functions as F

    col = F.col
    return _Check(
        table,
        name,
        col(name).isNotNull() & ~F.lower(col(name)).isin(*TRUE_TEXTS, *FALSE_TEXTS),
        "not a boolean (true/false, 1/0, yes/no)",
        col(name),
    )


def _day_check(table: str, name: str) -> _Check:
    from pyspark.sql import functions as F

    col = F.col
    return _Check(
        table,
        name,
        col(name).isNotNull() & ~is_date(name),
        f"not a real day YYYY-MM-DD from {MIN_YEAR} to {MAX_YEAR}",
        col(name),
    )


def _order_checks() -> list[_Check]:
    """The checks of days in order and of sharing (only once the days are readable)."""
    from pyspark.sql import functions as F

    col = F.col
    return [
        _Check(
            "phones",
            "until",
            col("since").isNotNull() & col("until").isNotNull() & (col("until") < col("since")),
            "ending before they start",
            col("phone"),
        ),
        _Check(
            "loans",
            "status_at",
            col("status_at").isNotNull() & (col("status_at") < col("applied_at")),
            "reached before the loan was applied for",
            col("loan_id"),
        ),
        _Check(
            "sharing",
            "to_platform",
            col("from_platform") == col("to_platform"),
            "sharing with itself",
            col("from_platform"),
        ),
    ]


def _enum_columns() -> list[tuple[str, str, list[str]]]:
    """``(table, column, allowed values)`` of every column the Spark audit reads whose row
    model field is an enumeration, in table and column order; the linkage tables are left
    out (their rows are checked by the row models).

    >>> [(table, column) for table, column, _ in _enum_columns()]
    [('platforms', 'kind'), ('loans', 'status'), ('loan_links', 'role'), ('blacklist', 'subject_kind')]
    """
    out = []
    for table, (required, optional) in TABLES.items():
        if table in LINKAGE_TABLES:
            continue
        for name, f in CONTRACT_TABLES[table].model_fields.items():
            choices = (
                [a for a in typing.get_args(f.annotation) if a is not type(None)]
                if typing.get_origin(f.annotation) in (typing.Union, types.UnionType)
                else [f.annotation]
            )
            kind = choices[0] if len(choices) == 1 else None
            read = name in (*required, *optional)
            if read and isinstance(kind, type) and issubclass(kind, enum.Enum):
                out.append((table, name, [str(k.value) for k in kind]))
    return out


def _columns_of_kind(kind: str) -> list[tuple[str, str]]:
    """``(table, column)`` of every column the Spark audit reads that holds ``kind``
    (``bool``, ``date``: :func:`spillover.data.contract.field_kinds`), in table and column order;
    the linkage tables are left out (their rows are checked by the row models).

    >>> _columns_of_kind("bool")
    [('phones', 'verified'), ('loans', 'phone_verified')]
    """
    return [
        (table, name)
        for table, (required, optional) in TABLES.items()
        if table not in LINKAGE_TABLES
        for name, what in field_kinds(CONTRACT_TABLES[table]).items()
        if what == kind and name in (*required, *optional)
    ]


def _summary(df: DataFrame, shown: Column) -> DataFrame:
    """One row: how many rows ``df`` has, the first one's ``shown`` value and its file."""
    from pyspark.sql import functions as F

    return df.agg(
        F.count(F.lit(1)).alias("n"),
        F.first(shown.cast("string"), ignorenulls=True).alias("v"),
        F.first("_file", ignorenulls=True).alias("f"),
    )


@dataclass(frozen=True)
class _Found:
    """Checks as rows: ``rows`` holds ``(i, n, v, f)`` (check ``i`` of ``labels``: how
    many rows break it, the first one's shown value and its file); ``labels`` the
    ``(field, message)`` of each check."""

    labels: list[tuple[str, str]]
    rows: DataFrame
    #: the same rows with their shown value and file, when ``rows`` leaves them out
    #: (computed only for the checks that some row breaks)
    detail: DataFrame | None = None


def _problems(found: list[_Found]) -> list[str]:
    """Run every check in one Spark job: one line per check some row breaks, in the
    order of the checks (a part with a ``detail`` runs it too when one of its checks is
    broken)."""
    from pyspark.sql import functions as F

    labels: list[tuple[str, str]] = []
    union = None
    detailed: list[tuple[int, int, DataFrame]] = []  # (first i, last i + 1, detail)
    for part in found:
        tagged = part.rows.select((F.col("i") + len(labels)).alias("i"), "n", "v", "f")
        union = tagged if union is None else union.unionByName(tagged)
        if part.detail is not None:
            detailed.append((len(labels), len(labels) + len(part.labels), part.detail))
        labels += part.labels
    if union is None:
        return []
    broken = sorted(union.where("n > 0").collect(), key=lambda r: r["i"])
    for first, end, detail in detailed:
        if any(first <= r["i"] < end for r in broken):
            rows = detail.select((F.col("i") + first).alias("i"), "n", "v", "f")
            broken = [r for r in broken if not first <= r["i"] < end]
            broken = sorted(broken + rows.where("n > 0").collect(), key=lambda r: r["i"])
    return [
        f"{r['f']}: {labels[r['i']][0]}: {r['n']} row(s) {labels[r['i']][1]} (first: {r['v']})"
        for r in broken
    ]


def _summaries(found: list[tuple[str, str, DataFrame]]) -> _Found:
    """``(field, message, summary)`` triples (:func:`_summary` of the rows that break a
    rule) as :class:`_Found` rows."""
    from pyspark.sql import functions as F

    union = None
    for i, (_, _, df) in enumerate(found):
        tagged = df.select(F.lit(i).alias("i"), "n", "v", "f")
        union = tagged if union is None else union.unionByName(tagged)
    assert union is not None
    return _Found([(field, message) for field, message, _ in found], union)


def _checks_of(tables: Mapping[str, DataFrame], checks: list[_Check]) -> _Found:
    """The checks over the tables' rows in one grouping: every table's rows that break a
    check as ``(i, v, f)`` (check, shown value, file), all tables in one union, counted by
    check (one shuffle for them all, not one per table nor one per check)."""
    from pyspark.sql import functions as F

    by_table: dict[str, list[tuple[int, _Check]]] = {}
    for i, c in enumerate(checks):
        by_table.setdefault(c.table, []).append((i, c))
    union = None
    for table, items in by_table.items():
        marks = F.array(
            *(
                F.struct(
                    F.lit(i).alias("i"),
                    F.coalesce(c.bad, F.lit(False)).alias("bad"),
                    F.when(c.bad, c.shown.cast("string")).alias("v"),
                )
                for i, c in items
            )
        )
        # the rows breaking none (nearly all) are dropped first: no array made for them
        any_bad = F.lit(False)
        for _, c in items:
            any_bad = any_bad | F.coalesce(c.bad, F.lit(False))
        broken = (
            tables[table]
            .where(any_bad)
            .select(F.explode(F.filter(marks, lambda m: m["bad"])).alias("c"), "_file")
        )
        rows = broken.select("c.i", "c.v", F.col("_file").alias("f"))
        union = rows if union is None else union.unionByName(rows)
    assert union is not None
    found = union.groupBy("i").agg(
        F.count(F.lit(1)).alias("n"),
        F.first("v", ignorenulls=True).alias("v"),
        F.first("f", ignorenulls=True).alias("f"),
    )
    return _Found([(c.field, c.message) for c in checks], found)


def _linkage_row_problems(tables: Mapping[str, DataFrame], region: str) -> list[str]:
    """The rows of ``records`` and ``matches`` checked on the driver, one by one, by the
    embedded loader's row models (:mod:`spillover.data.rows`: id numbers, phones, dates,
    probabilities, ``matched_by``, the waterfall JSON): one line per field that fails,
    with the number of rows and the first row's ``record_id``."""
    out: list[str] = []
    for table in LINKAGE_TABLES:
        model = CONTRACT_TABLES[table]
        required, optional = TABLES[table]
        found: dict[str, list[Any]] = {}  # field -> [rows, message, first key, file]
        rows = tables[table].select(*required, *optional, "_file").toLocalIterator()
        for r in rows:
            raw = r.asDict()
            file = raw.pop("_file")
            try:
                model.model_validate(raw, context={"region": region})
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err.get("loc", ())) or "(row)"
                    seen = found.setdefault(loc, [0, error_text(err), raw[required[0]], file])
                    seen[0] += 1
        out += [
            f"{file}: {loc}: {n} row(s) refused: {message} (first: {key})"
            for loc, (n, message, key, file) in found.items()
        ]
    return out


def resolved(tables: Mapping[str, DataFrame]) -> DataFrame:
    """Each record's person and how it was matched (docs/contract.md §1, as the embedded
    loader resolves it): ``records.person_id`` when given (``known``), else its
    ``matches`` row; records with neither are left out (unresolved). Columns
    ``r_record``, ``r_platform``, ``r_person``, ``r_by`` (a ``MatchKey`` value)."""
    from pyspark.sql import functions as F

    col = F.col
    records = tables["records"].select(
        col("record_id").alias("r_record"),
        col("platform_id").alias("r_platform"),
        col("person_id").alias("r_given"),
    )
    matches = tables["matches"].select(
        col("record_id").alias("m_record"),
        col("person_id").alias("m_person"),
        col("matched_by").alias("m_by"),
    )
    joined = records.join(matches, col("r_record") == col("m_record"), "left")
    given = col("r_given").isNotNull()
    return joined.select(
        "r_record",
        "r_platform",
        F.coalesce(col("r_given"), col("m_person")).alias("r_person"),
        F.when(given, F.lit(MatchKey.KNOWN.value)).otherwise(col("m_by")).alias("r_by"),
    ).where(col("r_person").isNotNull())


def _linkage_checks(tables: Mapping[str, DataFrame]) -> list[tuple[str, str, DataFrame]]:
    """The rules of platform records that span rows (the embedded loader's): a match that
    names another person than ``records.person_id``, a record matched with itself, a
    loan's record held by another platform or resolving to another person than its
    ``borrower_id``."""
    from pyspark.sql import functions as F

    col = F.col
    records = tables["records"].select(
        col("record_id").alias("_r"),
        col("platform_id").alias("_held"),
        col("person_id").alias("_given"),
    )
    matches = tables["matches"]
    other_person = matches.join(records, col("record_id") == col("_r")).where(
        col("_given").isNotNull() & (col("_given") != col("person_id"))
    )
    itself = matches.where(col("matched_with") == col("record_id"))
    loans = tables["loans"].where(col("borrower_record").isNotNull())
    held = loans.join(records, col("borrower_record") == col("_r")).where(
        col("_held") != col("platform_id")
    )
    by_record = resolved(tables)
    other_borrower = (
        loans.where(col("borrower_id").isNotNull())
        .join(by_record, col("borrower_record") == col("r_record"), "left")
        .where(col("r_person").isNull() | (col("r_person") != col("borrower_id")))
    )
    # (a loan naming an unknown record is reported as an unknown record_id)
    known_records = tables["records"].select(col("record_id").alias("_k"))
    other_borrower = other_borrower.join(
        known_records, col("borrower_record") == col("_k"), "left_semi"
    )
    return [
        (
            "person_id",
            "naming another person than records.person_id",
            _summary(other_person, col("record_id")),
        ),
        ("matched_with", "matching a record with itself", _summary(itself, col("record_id"))),
        (
            "borrower_record",
            "naming a record held by another platform than the loan's",
            _summary(held, col("loan_id")),
        ),
        (
            "borrower_record",
            "naming a record that resolves to no person or another one than borrower_id",
            _summary(other_borrower, col("loan_id")),
        ),
    ]


def _duplicates(tables: Mapping[str, DataFrame]) -> _Found:
    """Ids given twice: the keys of every table in one union, grouped once (not one
    grouping per table)."""
    from pyspark.sql import functions as F

    labels = []
    union = None
    for i, (table, keys) in enumerate(
        (
            ("people", ("person_id",)),
            ("platforms", ("platform_id",)),
            ("loans", ("loan_id",)),
            ("blacklist", ("entry_id",)),
            ("records", ("record_id",)),
            ("matches", ("record_id",)),
            ("loan_links", ("loan_id", "phone", "role")),
            ("sharing", ("from_platform", "to_platform")),
        )
    ):
        shown = F.concat_ws(", ", *keys) if len(keys) > 1 else F.col(keys[0])
        part = tables[table].select(
            F.lit(i).alias("i"), F.array(*keys).alias("k"), shown.alias("s"), "_file"
        )
        union = part if union is None else union.unionByName(part)
        labels.append((", ".join(keys), "given more than once"))
    assert union is not None
    twice = (
        union.groupBy("i", "k")
        .agg(F.count(F.lit(1)).alias("_n"), F.first("s").alias("s"), F.first("_file").alias("f"))
        .where("_n > 1")
    )
    rows = twice.groupBy("i").agg(
        F.count(F.lit(1)).alias("n"),
        F.first("s", ignorenulls=True).alias("v"),
        F.first("f", ignorenulls=True).alias("f"),
    )
    # the keys given more than once counted by a hash aggregation (only counts: the
    # first value and file of a grouping make Spark sort every key, 8 million at 1M
    # people); the shown value and file only for a check that fails
    counted = (
        union.groupBy("i", "k")
        .agg(F.count(F.lit(1)).alias("_n"))
        .where("_n > 1")
        .groupBy("i")
        .agg(F.count(F.lit(1)).alias("n"))
        .select(
            "i", "n", F.lit(None).cast("string").alias("v"), F.lit(None).cast("string").alias("f")
        )
    )
    return _Found(labels, counted, detail=rows)


def _references(tables: Mapping[str, DataFrame]) -> _Found:
    """Unknown references: every referring column in one union, against every pool of
    ids in one union (one anti join, not one per column)."""
    from pyspark.sql import functions as F

    col = F.col
    pools = {
        "person_id": tables["people"].select(col("person_id").alias("_ref")),
        "platform_id": tables["platforms"].select(col("platform_id").alias("_ref")),
        "loan_id": tables["loans"].select(col("loan_id").alias("_ref")),
        "entry_id": tables["blacklist"].select(col("entry_id").alias("_ref")),
        "record_id": tables["records"].select(col("record_id").alias("_ref")),
    }
    persons_listed = tables["blacklist"].where(col("subject_kind") == SubjectKind.PERSON.value)
    records_listed = tables["blacklist"].where(col("subject_kind") == SubjectKind.RECORD.value)
    labels = []
    union = None
    for i, (df, name, what) in enumerate(
        (
            (tables["phones"], "owner_id", "person_id"),
            (tables["loans"], "platform_id", "platform_id"),
            (tables["loans"], "borrower_id", "person_id"),
            (tables["loan_links"], "loan_id", "loan_id"),
            (tables["blacklist"], "platform_id", "platform_id"),
            (persons_listed, "subject", "person_id"),
            (records_listed, "subject", "record_id"),
            (tables["loans"], "borrower_record", "record_id"),
            (tables["records"], "platform_id", "platform_id"),
            (tables["records"], "person_id", "person_id"),
            (tables["matches"], "record_id", "record_id"),
            (tables["matches"], "person_id", "person_id"),
            (tables["matches"], "matched_with", "record_id"),
            (tables["blacklist"], "copied_from", "entry_id"),
            (tables["sharing"], "from_platform", "platform_id"),
            (tables["sharing"], "to_platform", "platform_id"),
        )
    ):
        part = df.where(col(name).isNotNull()).select(
            F.lit(i).alias("i"), F.lit(what).alias("_pool"), col(name).alias("v"), "_file"
        )
        union = part if union is None else union.unionByName(part)
        labels.append((name, f"name an unknown {what}"))
    assert union is not None
    ids = None
    for what, pool in pools.items():
        part = pool.select(F.lit(what).alias("_in"), "_ref")
        ids = part if ids is None else ids.unionByName(part)
    assert ids is not None
    unknown = union.join(ids, (col("_pool") == col("_in")) & (col("v") == col("_ref")), "left_anti")
    rows = unknown.groupBy("i").agg(
        F.count(F.lit(1)).alias("n"),
        F.first("v", ignorenulls=True).alias("v"),
        F.first("_file", ignorenulls=True).alias("f"),
    )
    return _Found(labels, rows)


def overlaps_and_loops(phones: DataFrame, entries: DataFrame) -> None:
    """Refuse owner periods of one number that overlap, and copy chains that loop."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("phone").orderBy("since", "until")
    prev = phones.withColumn("_prev_until", F.lag("until").over(w))
    bad = prev.where(F.col("_prev_until") >= F.col("since"))
    row = bad.agg(
        F.count(F.lit(1)).alias("n"), F.first("phone").alias("v"), F.first("_file").alias("f")
    ).collect()[0]
    if row["n"]:
        raise SpilloverError(
            f"the data was refused: {row['f']}: since: {row['n']} owner period(s) overlap an "
            f"earlier one of the same number (first: {row['v']})"
        )
    # copy chains: jump 1, 2, 4, ... copies up; a chain still going after the number
    # of entries steps loops (log2 joins)
    links = entries.where(F.col("copied_from").isNotNull()).select(
        F.col("entry_id").alias("e"), F.col("copied_from").alias("up")
    )
    n = links.count()
    step = links
    jumps = 0
    while n and (1 << jumps) <= n + 1:
        step = checkpoint(
            step.alias("a")
            .join(step.alias("b"), F.col("a.up") == F.col("b.e"))
            .select(F.col("a.e").alias("e"), F.col("b.up").alias("up"))
        )
        jumps += 1
        if step.isEmpty():
            return
    if n:
        first = step.select("e").first()
        raise SpilloverError(
            f"the data was refused: blacklist: copied_from: copy chains loop "
            f"(entry {first[0] if first else '?'} is on or leads into a loop)"
        )
