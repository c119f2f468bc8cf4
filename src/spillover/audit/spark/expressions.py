"""Spark column expressions of the contract and the rules: days, booleans, the rules'
small tables as map literals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...data.contract import FALSE, ISO_DAY, MAX_YEAR, MIN_YEAR, TRUE, TRUE_TEXTS

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column

__all__ = ["as_text", "day_number", "flag", "is_date", "lookup"]


def is_date(c: str) -> Column:
    """A real ISO day from MIN_YEAR to MAX_YEAR (no exception under ANSI mode)."""
    from pyspark.sql import functions as F

    v = F.col(c)
    digits = v.rlike(ISO_DAY)  # the casts below only for digits (ANSI mode would raise)
    y, m, d = (F.when(digits, v.substr(i, n).cast("int")) for i, n in ((1, 4), (6, 2), (9, 2)))
    shaped = F.coalesce(
        digits & y.between(MIN_YEAR, MAX_YEAR) & m.between(1, 12) & (d >= 1), F.lit(False)
    )
    last = F.dayofmonth(F.last_day(F.make_date(y, F.when(shaped, m).otherwise(1), F.lit(1))))
    return F.when(shaped, d <= last).otherwise(F.lit(False))


def day_number(c: str, missing: int | None = None) -> Column:
    """Days since 1970-01-01 of a checked ISO date column (``missing`` when null)."""
    from pyspark.sql import functions as F

    v = F.col(c)
    day = F.unix_date(
        F.make_date(
            v.substr(1, 4).cast("int"), v.substr(6, 2).cast("int"), v.substr(9, 2).cast("int")
        )
    ).cast("long")
    if missing is None:
        return day
    return F.when(v.isNull(), F.lit(missing).cast("long")).otherwise(day)


def flag(c: str) -> Column:
    """A checked boolean column as true/false (missing: false)."""
    from pyspark.sql import functions as F

    return F.lower(F.col(c)).isin(*TRUE_TEXTS) & F.col(c).isNotNull()


def lookup(table: Mapping[Any, Any], key: Column) -> Column:
    """``table[key]`` as a Spark map literal (a few entries compiled from the rules)."""
    from pyspark.sql import functions as F

    pairs: list[Column] = []
    for k, v in table.items():
        pairs += [F.lit(k), F.lit(v)]
    return F.create_map(*pairs)[key]


def as_text(c: Column) -> Column:
    """A boolean column as the contract writes it (``true`` / ``false``)."""
    from pyspark.sql import functions as F

    return F.when(c, F.lit(TRUE)).otherwise(F.lit(FALSE))
