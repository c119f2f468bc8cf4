"""The one-pass audit on Apache Spark: the numpy kernel's search as DataFrame joins.

:mod:`spillover.engines.batch` audits a whole blacklist in one machine's memory. This
module runs the *same* layered search as Spark DataFrame operations, so the audit
scales out to a cluster (``spillover audit --engine spark``, docs/scale-out.md),
and gives exactly the kernel's rows (tests hold the two to each other):

* the ties are tables: person -> loan (own loans, and loans naming a phone the
  person owned on the application day), phone -> loan (for phone subjects);
* every layer joins the frontier labels to their ties, keeps loans applied no
  later than the listing, and keeps the best label per (entry, loan) by the
  kernel's order: responsibility, then the path's key ``(phone, role, loan,
  borrower, ...)`` compared as an array of id strings (the kernel's integer codes
  sort like those strings), less labels an earlier layer beats;
* reach (origin platform -> listing) walks each entry's copy chain with one join
  per copy step; the sharing graph (platforms, small) is solved on the driver,
  one reachability table per period between two sharing start days.

Every step kind, factor, reason code and the score come from :mod:`spillover.rules`
through the kernel's compiled tables (``_USE_KIND``, ``_SUBJECT_PHONE_KIND``, ...)
and the policy; the reason-code text of each distinct path shape and the score of
each distinct responsibility are computed on the driver with the rules' own
functions and joined back (a few hundred rows). No Python runs on the executors.

pyspark is an optional extra (``pip install "spillover[spark]"``); it is imported
when a function here is called, never by ``import spillover``.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.contract import (
    CSV,
    FALSE,
    FALSE_TEXTS,
    ISO_DAY,
    JSONL,
    LINKAGE_TABLES,
    MAX_YEAR,
    MIN_YEAR,
    PARQUET,
    REQUIRED_TABLES,
    SUFFIXES,
    TRUE,
    TRUE_TEXTS,
    field_kinds,
    required_columns,
)
from ..data.contract import TABLES as CONTRACT_TABLES
from ..errors import SpilloverError
from ..facts.columns import FOREVER, NEVER
from ..facts.model import LinkRole, LoanStatus, PlatformKind, SubjectKind
from ..facts.phones import DEFAULT_REGION, mobile_pattern, normalize_phone
from ..policy import Policy, default_policy
from ..rules import APPLICANT, CHAIN_STEP, TIE_KINDS, MatchKey, factor, match_kind, score

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

    from ..facts.columns import Columns

__all__ = [
    "OUT_FORMATS",
    "TABLES",
    "SparkAuditSummary",
    "SparkUnavailable",
    "audit_frames",
    "audit_path",
    "audit_spark",
    "frames_from_columns",
    "read_tables",
    "session",
]

#: what ``--out`` may end with: one file (.csv, .jsonl, written by the driver from the
#: rows in entry_id order, byte for byte as the embedded audit writes it) or a Parquet
#: dataset (a folder of parts, written by the executors, to any path Spark writes)
OUT_FORMATS = (CSV, JSONL, PARQUET)

#: the columns of the contract's tables the Spark audit does not read (kept out of its frames)
_NOT_READ: Mapping[str, tuple[str, ...]] = {
    "people": ("id_number", "city"),
    "loans": ("amount",),
    "blacklist": ("stated_reason",),
}
#: the tables of a data folder (docs/contract.md §1, :data:`spillover.data.contract.TABLES`):
#: required columns, optional columns read, both in the order of the row models
TABLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    table: (
        tuple(required_columns(model)),
        tuple(
            c
            for c in model.model_fields
            if c not in required_columns(model) and c not in _NOT_READ.get(table, ())
        ),
    )
    for table, model in CONTRACT_TABLES.items()
}

#: a day before / after every day (a missing since / until), as plain ints
_NEVER, _FOREVER = int(NEVER), int(FOREVER)


class SparkUnavailable(SpilloverError):
    """pyspark is not installed, or Spark could not start (no Java)."""


@dataclass(frozen=True, slots=True)
class SparkAuditSummary:
    """What :func:`audit_path` wrote: where, how many rows, the rows per verdict."""

    path: str
    rows: int
    verdicts: dict[str, int]


# -- the session ----------------------------------------------------------------------------


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "the Spark engine needs pyspark: pip install 'spillover[spark]'"
        ) from None
    return pyspark


def session(
    master: str = "local[*]", conf: Mapping[str, str] | None = None, *, app: str | None = None
) -> SparkSession:
    """A Spark session on ``master`` with the settings ``conf`` (``spark.*`` keys), its
    log kept to errors. Raises :class:`SparkUnavailable` without pyspark or Java."""
    _pyspark()
    from pyspark.sql import SparkSession

    if os.environ.get("JAVA_HOME") is None and not _on_path("java"):
        raise SparkUnavailable(
            "the Spark engine needs Java 17 or newer: install it or set JAVA_HOME"
        )
    settings = {"spark.ui.showConsoleProgress": "false", **(conf or {})}
    settings[_DRIVER_JAVA_OPTIONS] = " ".join(
        filter(None, [_quiet_log_option(), settings.get(_DRIVER_JAVA_OPTIONS, "")])
    )
    name = app or __name__.partition(".")[0]
    builder = SparkSession.builder.master(master).appName(name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        _start_quiet_jvm(master, name, settings)
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: name the cause in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SparkUnavailable(f"Spark could not start on {master}: {first}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: lines the JVM prints on stderr before any logging is set up, which no setting turns off:
#: Spark's launcher always adds the incubator module jdk.incubator.vector
_JVM_NOISE = re.compile(rb"^WARNING: Using incubator modules: ")


def _quiet_log_option() -> str:
    """The driver JVM option that makes it log errors only (``spark_log4j2.properties``):
    set before the JVM starts, so that its start-up warnings are not printed either."""
    from importlib import resources

    path = str(resources.files(__name__.rpartition(".")[0]).joinpath("spark_log4j2.properties"))
    option = f"-Dlog4j2.configurationFile={path}"
    return f'"{option}"' if any(c.isspace() for c in option) else option


def _relay_stderr(stream: Any) -> None:
    """Copy the driver JVM's stderr to this process's, less :data:`_JVM_NOISE` lines."""
    for line in iter(stream.readline, b""):
        if not _JVM_NOISE.match(line):
            with contextlib.suppress(OSError):  # stderr closed: nothing to tell
                os.write(2, line)


def _start_quiet_jvm(master: str, app: str, settings: Mapping[str, str]) -> None:
    """Start the driver JVM (when this process has none yet) with its stderr relayed through
    :func:`_relay_stderr`, and its SparkContext on ``master`` with ``settings``; the session
    builder's ``getOrCreate`` then takes that context. The JVM's stderr is otherwise this
    process's own, and the JVM prints a warning there that no log setting removes."""
    import subprocess
    import threading

    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # a JVM is running already (this process's, or the pyspark shell's)
    conf = SparkConf().setMaster(master).setAppName(app).setAll(list(settings.items()))
    launch: Callable[..., Any] = launch_gateway  # pyspark leaves it untyped
    gateway = launch(conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(
        target=_relay_stderr, args=(gateway.proc.stderr,), name="spark-stderr", daemon=True
    ).start()
    SparkContext(conf=conf, gateway=gateway)


def _on_path(program: str) -> bool:
    from shutil import which

    return which(program) is not None


# -- reading and checking a data folder ------------------------------------------------------


def _fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The Hadoop file system of ``path`` and the path as a Hadoop Path."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def _join_path(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _find(spark: SparkSession, folder: str, table: str) -> str | None:
    fs, _ = _fs(spark, folder)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    found = [
        _join_path(folder, table + s)
        for s in SUFFIXES
        if fs.exists(jvm.org.apache.hadoop.fs.Path(_join_path(folder, table + s)))
    ]
    if len(found) > 1:
        names = " and ".join(f.rsplit("/", 1)[1] for f in found)
        raise SpilloverError(f"{folder}: table {table} is given twice ({names}); keep one")
    return found[0] if found else None


def read_tables(spark: SparkSession, folder: str | Path) -> dict[str, DataFrame]:
    """The tables of a data folder at any path Spark reads (``hdfs://``, ``s3a://``, a
    local folder), each ``NAME.csv``, ``NAME.jsonl`` or ``NAME.parquet`` (a file or a
    folder of parts), every column as trimmed text (empty: null). An absent optional
    table is an empty one. Raises :class:`~spillover.errors.SpilloverError` for a
    missing table or column."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    folder = str(folder)
    fs, root = _fs(spark, folder)
    if not fs.exists(root):
        raise SpilloverError(f"{folder}: no such data folder")
    tables: dict[str, DataFrame] = {}
    for table, (required, optional) in TABLES.items():
        path = _find(spark, folder, table)
        if path is None:
            if table in REQUIRED_TABLES:
                raise SpilloverError(
                    f"{folder}: required table '{table}' is missing "
                    f"({table}.csv, {table}.jsonl or {table}.parquet)"
                )
            schema = StructType([StructField(c, StringType()) for c in (*required, *optional)])
            tables[table] = spark.createDataFrame([], schema)
            continue
        try:
            if path.endswith(CSV):
                df = spark.read.csv(
                    path,
                    header=True,
                    inferSchema=False,
                    multiLine=True,
                    escape='"',
                    mode="FAILFAST",
                )
            elif path.endswith(JSONL):
                df = spark.read.json(path, primitivesAsString=True, mode="FAILFAST")
            else:
                df = spark.read.parquet(path)
        except Exception as exc:
            raise SpilloverError(f"{path}: cannot be read: {_first_line(exc)}") from None
        names = {c.strip(): c for c in df.columns}
        missing = [c for c in required if c not in names]
        if missing:
            raise SpilloverError(f"{path}: required column(s) missing: {', '.join(missing)}")
        cols = []
        for c in (*required, *optional):
            if c in names:
                text = F.trim(F.col(f"`{names[c]}`").cast("string"))
                cols.append(F.when(text == "", None).otherwise(text).alias(c))
            else:
                cols.append(F.lit(None).cast("string").alias(c))
        tables[table] = df.select(*cols).withColumn("_file", F.lit(path))
    return tables


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("JVM stacktrace", "at ")):
            return line[:300]
    return type(exc).__name__


@dataclass(frozen=True)
class _Check:
    """A rule over one table's rows: ``bad`` marks the rows that break it."""

    table: str
    field: str
    bad: Column
    message: str
    shown: Column


def _summary(df: DataFrame, shown: Column) -> DataFrame:
    """One row: how many rows ``df`` has, the first one's ``shown`` value and its file."""
    from pyspark.sql import functions as F

    return df.agg(
        F.count(F.lit(1)).alias("n"),
        F.first(shown.cast("string"), ignorenulls=True).alias("v"),
        F.first("_file", ignorenulls=True).alias("f"),
    )


def _problems(found: list[tuple[str, str, DataFrame]]) -> list[str]:
    """Run every check in one Spark job: ``(field, message, summary)`` triples, where the
    summary is a :func:`_summary` of the rows that break the rule."""
    from pyspark.sql import functions as F

    if not found:
        return []
    union = None
    for i, (_, _, df) in enumerate(found):
        tagged = df.select(F.lit(i).alias("i"), "n", "v", "f")
        union = tagged if union is None else union.unionByName(tagged)
    assert union is not None
    rows = sorted(union.where("n > 0").collect(), key=lambda r: r["i"])
    return [
        f"{r['f']}: {found[r['i']][0]}: {r['n']} row(s) {found[r['i']][1]} (first: {r['v']})"
        for r in rows
    ]


def _checks_of(
    tables: Mapping[str, DataFrame], checks: list[_Check]
) -> list[tuple[str, str, DataFrame]]:
    """The checks as summaries of the rows that break them (for :func:`_problems`)."""
    return [(c.field, c.message, _summary(tables[c.table].where(c.bad), c.shown)) for c in checks]


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


def _is_date(c: str) -> Column:
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


def _day(c: str, missing: int | None = None) -> Column:
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


def _bool(c: str) -> Column:
    """A checked boolean column as true/false (missing: false)."""
    from pyspark.sql import functions as F

    return F.lower(F.col(c)).isin(*TRUE_TEXTS) & F.col(c).isNotNull()


def _validate(tables: Mapping[str, DataFrame], region: str = DEFAULT_REGION) -> None:
    """What the Spark path checks of a folder (docs/scale-out.md: what is checked):
    required values, enumerations, booleans, dates, unique ids, references, owner
    periods that overlap, copy chains that loop; the rows of platform records and
    matches by the embedded loader's row models (:func:`_linkage_row_problems`).
    Raises one line per kind of problem."""
    from pyspark.sql import functions as F

    col = F.col
    checks: list[_Check] = []

    def required(table: str, *names: str) -> None:
        for n in names:
            checks.append(_Check(table, n, col(n).isNull(), "with no value", F.lit("empty")))

    def enum(table: str, name: str, allowed: Sequence[str]) -> None:
        checks.append(
            _Check(
                table,
                name,
                col(name).isNotNull() & ~col(name).isin(*allowed),
                f"not one of {', '.join(allowed)}",
                col(name),
            )
        )

    def boolean(table: str, name: str) -> None:
        checks.append(
            _Check(
                table,
                name,
                col(name).isNotNull() & ~F.lower(col(name)).isin(*TRUE_TEXTS, *FALSE_TEXTS),
                "not a boolean (true/false, 1/0, yes/no)",
                col(name),
            )
        )

    def day(table: str, name: str) -> None:
        checks.append(
            _Check(
                table,
                name,
                col(name).isNotNull() & ~_is_date(name),
                f"not a real day YYYY-MM-DD from {MIN_YEAR} to {MAX_YEAR}",
                col(name),
            )
        )

    for table, (req, _opt) in TABLES.items():
        if table not in LINKAGE_TABLES:  # those rows: the loader's row models
            required(table, *req)
    checks.append(
        _Check(
            "loans",
            "borrower_id",
            col("borrower_id").isNull() & col("borrower_record").isNull(),
            "with no value (give borrower_id or borrower_record)",
            col("loan_id"),
        )
    )
    enum("platforms", "kind", [k.value for k in PlatformKind])
    enum("loans", "status", [s.value for s in LoanStatus])
    enum("loan_links", "role", [r.value for r in LinkRole])
    enum("blacklist", "subject_kind", [k.value for k in SubjectKind])
    for table, name in _columns_of_kind("bool"):
        boolean(table, name)
    for table, name in _columns_of_kind("date"):
        day(table, name)
    problems = _problems(_checks_of(tables, checks)) + _linkage_row_problems(tables, region)
    if problems:
        raise SpilloverError(_refusal(problems))
    # order of days (only once the days are readable)
    checks = [
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
    problems = _problems(
        _checks_of(tables, checks)
        + _duplicates(tables)
        + _references(tables)
        + _linkage_checks(tables)
    )
    if problems:
        raise SpilloverError(_refusal(problems))


def _linkage_row_problems(tables: Mapping[str, DataFrame], region: str) -> list[str]:
    """The rows of ``records`` and ``matches`` checked on the driver, one by one, by the
    embedded loader's row models (:mod:`spillover.data.rows`: id numbers, phones, dates,
    probabilities, ``matched_by``, the waterfall JSON): one line per field that fails,
    with the number of rows and the first row's ``record_id``."""
    from pydantic import ValidationError

    from ..data.exact import error_text

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


def _resolved(tables: Mapping[str, DataFrame]) -> DataFrame:
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
    resolved = _resolved(tables)
    other_borrower = (
        loans.where(col("borrower_id").isNotNull())
        .join(resolved, col("borrower_record") == col("r_record"), "left")
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


def _refusal(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more kind(s) of problem)" if len(problems) > 1 else ""
    return f"the data was refused: {problems[0]}{more}"


def _duplicates(tables: Mapping[str, DataFrame]) -> list[tuple[str, str, DataFrame]]:
    from pyspark.sql import functions as F

    found = []
    for table, keys in (
        ("people", ("person_id",)),
        ("platforms", ("platform_id",)),
        ("loans", ("loan_id",)),
        ("blacklist", ("entry_id",)),
        ("records", ("record_id",)),
        ("matches", ("record_id",)),
        ("loan_links", ("loan_id", "phone", "role")),
        ("sharing", ("from_platform", "to_platform")),
    ):
        twice = (
            tables[table]
            .groupBy(*keys)
            .agg(F.count(F.lit(1)).alias("_n"), F.first("_file").alias("_file"))
        )
        shown = F.concat_ws(", ", *keys) if len(keys) > 1 else F.col(keys[0])
        found.append(
            (", ".join(keys), "given more than once", _summary(twice.where("_n > 1"), shown))
        )
    return found


def _references(tables: Mapping[str, DataFrame]) -> list[tuple[str, str, DataFrame]]:
    from pyspark.sql import functions as F

    found = []
    people = tables["people"].select(F.col("person_id").alias("_ref"))
    platforms = tables["platforms"].select(F.col("platform_id").alias("_ref"))
    loans = tables["loans"].select(F.col("loan_id").alias("_ref"))
    entries = tables["blacklist"].select(F.col("entry_id").alias("_ref"))
    persons_listed = tables["blacklist"].where(F.col("subject_kind") == SubjectKind.PERSON.value)
    records_listed = tables["blacklist"].where(F.col("subject_kind") == SubjectKind.RECORD.value)
    records = tables["records"].select(F.col("record_id").alias("_ref"))
    for df, name, pool, what in (
        (tables["phones"], "owner_id", people, "person_id"),
        (tables["loans"], "platform_id", platforms, "platform_id"),
        (tables["loans"], "borrower_id", people, "person_id"),
        (tables["loan_links"], "loan_id", loans, "loan_id"),
        (tables["blacklist"], "platform_id", platforms, "platform_id"),
        (persons_listed, "subject", people, "person_id"),
        (records_listed, "subject", records, "record_id"),
        (tables["loans"], "borrower_record", records, "record_id"),
        (tables["records"], "platform_id", platforms, "platform_id"),
        (tables["records"], "person_id", people, "person_id"),
        (tables["matches"], "record_id", records, "record_id"),
        (tables["matches"], "person_id", people, "person_id"),
        (tables["matches"], "matched_with", records, "record_id"),
        (tables["blacklist"], "copied_from", entries, "entry_id"),
        (tables["sharing"], "from_platform", platforms, "platform_id"),
        (tables["sharing"], "to_platform", platforms, "platform_id"),
    ):
        unknown = df.where(F.col(name).isNotNull()).join(
            pool, F.col(name) == F.col("_ref"), "left_anti"
        )
        found.append((name, f"name an unknown {what}", _summary(unknown, F.col(name))))
    return found


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
    lookup = (
        F.broadcast(spark.createDataFrame(mapping, "_raw string, _e164 string"))
        if mapping
        else None
    )
    out = dict(tables)
    for table, name, where in columns:
        v = F.col(name)
        fixed = F.when(v.rlike(national) & ~v.rlike(e164), F.concat(F.lit(country), v)).otherwise(v)
        df = tables[table]
        if lookup is not None:
            df = df.join(lookup, v == F.col("_raw"), "left")
            fixed = F.coalesce(F.col("_e164"), fixed)
        df = df.withColumn(name, F.when(selected(name, where), fixed).otherwise(v))
        out[table] = df.drop("_raw", "_e164") if lookup is not None else df
    return out


def _overlaps_and_loops(phones: DataFrame, entries: DataFrame) -> None:
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
        step = (
            step.alias("a")
            .join(step.alias("b"), F.col("a.up") == F.col("b.e"))
            .select(F.col("a.e").alias("e"), F.col("b.up").alias("up"))
            .localCheckpoint()
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


@dataclass(frozen=True)
class _Graph:
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


def _graph(
    spark: SparkSession, tables: Mapping[str, DataFrame], region: str, check: bool
) -> _Graph:
    from pyspark.sql import functions as F

    if check:
        _validate(tables, region)
    col = F.col
    resolved = _resolved(tables)
    tables = _phones(spark, tables, region)
    phones, loans = tables["phones"], tables["loans"]
    links, entries = tables["loan_links"], tables["blacklist"]
    periods = phones.select(
        "phone",
        col("owner_id").alias("owner"),
        _bool("verified").alias("verified"),
        _day("since", _NEVER).alias("since"),
        _day("until", _FOREVER).alias("until"),
        "_file",
    )
    entries = entries.select(
        "entry_id",
        col("platform_id").alias("platform"),
        col("subject_kind").alias("kind"),
        "subject",
        _day("listed_at").alias("listed"),
        "copied_from",
    )
    if check:
        _overlaps_and_loops(periods, entries)
    # platform records: a record subject starts from its person, a loan named by a record
    # carries the record's match (kernel.Index: loan_match, _Entries.match)
    from ..engines.batch import MATCH_KEYS

    match_index = {k.value: i for i, k in enumerate(MATCH_KEYS)}

    def matched(c: Column) -> Column:
        return F.coalesce(_lookup(match_index, c), F.lit(-1)).alias("match")

    by = resolved.select("r_record", "r_person", "r_by")
    entries = entries.join(
        by, (col("kind") == SubjectKind.RECORD.value) & (col("subject") == col("r_record")), "left"
    ).select(
        *(c for c in entries.columns),
        F.when(col("kind") == SubjectKind.PERSON.value, col("subject"))
        .otherwise(col("r_person"))
        .alias("person"),
        matched(col("r_by")),
    )
    loans = (
        loans.join(by, col("borrower_record") == col("r_record"), "left")
        .withColumn("borrower_id", F.coalesce(col("r_person"), col("borrower_id")))
        .where(col("borrower_id").isNotNull())  # on an unresolved record: no one
    )
    graph = _Graph(
        periods=periods.drop("_file"),
        loans=loans.select(
            "loan_id",
            col("platform_id").alias("platform"),
            col("borrower_id").alias("borrower"),
            _day("applied_at").alias("applied"),
            F.coalesce(_day("status_at"), _day("applied_at")).alias("known"),
            "status",
            col("applicant_phone").alias("applicant"),
            _bool("phone_verified").alias("sms"),
            matched(col("r_by")),
        ),
        links=links.select("loan_id", "phone", "role"),
        entries=entries,
        sharing=tables["sharing"].select(
            col("from_platform").alias("src"),
            col("to_platform").alias("dst"),
            _day("since", _NEVER).alias("since"),
        ),
    )
    return _Graph(*(df.cache() for df in (getattr(graph, f) for f in _GRAPH_FIELDS)))


_GRAPH_FIELDS = ("periods", "loans", "links", "entries", "sharing")


# -- the rules, as Spark expressions ---------------------------------------------------------


def _lookup(table: Mapping[Any, Any], key: Column) -> Column:
    """``table[key]`` as a Spark map literal (a few entries compiled from the rules)."""
    from pyspark.sql import functions as F

    pairs: list[Column] = []
    for k, v in table.items():
        pairs += [F.lit(k), F.lit(v)]
    return F.create_map(*pairs)[key]


@dataclass(frozen=True)
class _Rules:
    """The kernel's compiled rule tables, keyed by text for Spark map literals."""

    use_kind: dict[str, int]  # "role|sms" -> kind code
    subject_kind: dict[str, int]  # "role|sms|owned|changed" -> kind code
    owns_kind: dict[str, int]  # "true"/"false" (verified) -> kind code
    kind_factor: dict[int, float]  # kind code -> factor under the policy
    own_unverified: int
    own_loan: dict[int, int]  # subject (1) or chained (0) -> kind code
    chain_factor: float
    match_factor: dict[int, float]  # match (index in kernel.MATCH_KEYS) -> factor


def _rules(policy: Policy) -> _Rules:
    from ..engines import batch as k

    def bit(b: int) -> str:
        return TRUE if b else FALSE

    roles = k.ROLE_NAMES
    return _Rules(
        use_kind={
            f"{r}|{bit(s)}": int(k.USE_KIND[i, s]) for i, r in enumerate(roles) if r for s in (0, 1)
        },
        subject_kind={
            f"{r}|{bit(s)}|{bit(o)}|{bit(c)}": int(k.SUBJECT_PHONE_KIND[i, s, o, c])
            for i, r in enumerate(roles)
            if r
            for s in (0, 1)
            for o in (0, 1)
            for c in (0, 1)
        },
        owns_kind={bit(v): int(k.OWNS_KIND[v]) for v in (0, 1)},
        kind_factor={i: factor(policy, kind) for i, kind in enumerate(TIE_KINDS)},
        own_unverified=int(k.OWNS_UNVERIFIED),
        own_loan={s: int(k.LOAN_KIND[s]) for s in (0, 1)},
        chain_factor=factor(policy, CHAIN_STEP),
        match_factor={i: factor(policy, match_kind(key)) for i, key in enumerate(k.MATCH_KEYS)},
    )


def _text(c: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(c, F.lit(TRUE)).otherwise(F.lit(FALSE))


# -- the pass -------------------------------------------------------------------------------


def _period_at(periods: DataFrame, pairs: DataFrame) -> DataFrame:
    """For distinct (phone, day) pairs: the owner period covering the day (the last one
    starting on or before it, if it lasts to the day): owner and verified, or nulls."""
    from pyspark.sql import functions as F

    p = periods.select(F.col("phone").alias("_p"), "owner", "verified", "since", "until")
    joined = pairs.join(p, (F.col("phone") == F.col("_p")) & (F.col("since") <= F.col("day")))
    last = joined.groupBy("phone", "day").agg(
        F.max_by(F.struct("owner", "verified", "until"), F.col("since")).alias("_at")
    )
    covering = F.col("_at.until") >= F.col("day")
    return last.select(
        F.col("phone").alias("o_phone"),
        F.col("day").alias("o_day"),
        F.when(covering, F.col("_at.owner")).alias("owner"),
        F.when(covering, F.col("_at.verified")).alias("owner_verified"),
    )


def _epochs(
    spark: SparkSession, sharing: DataFrame, listing: DataFrame
) -> tuple[list[int], DataFrame]:
    """The sharing graph solved on the driver: the start days of sharing periods, and
    (epoch, from Q, to P, hops) for every Q that reaches P in that epoch (Q reaches Q),
    for every platform P that lists (``listing``: its ``platform`` column)."""
    rows = [(r["src"], r["dst"], int(r["since"])) for r in sharing.collect()]
    days = sorted({since for _, _, since in rows if since != _NEVER})
    listed = {r[0] for r in listing.select("platform").distinct().collect()}
    platforms = sorted(listed | {p for a, b, _ in rows for p in (a, b)})
    out: list[tuple[int, str, str, int]] = []
    for k in range(len(days) + 1):
        limit = days[k - 1] if k > 0 else _NEVER
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


def _reach(spark: SparkSession, g: _Graph) -> DataFrame:
    """Per entry and platform Q: the latest day a default known at Q still reaches the
    entry's copy chain (``deadline``), the sharing hops and the chain index of that route
    (the kernel's :meth:`~spillover.engines.batch.Index._reach`)."""
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
    cur = e.select(
        F.col("entry_id").alias("entry"),
        F.lit(0).alias("i"),
        "platform",
        F.col("listed").alias("t"),
        F.col("copied_from").alias("up"),
    ).localCheckpoint()
    targets = [cur.select("entry", "i", "platform", "t")]
    i = 0
    while True:
        i += 1
        nxt = (
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
            .localCheckpoint()
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


def _cache(df: DataFrame) -> DataFrame:
    """``df`` computed now and kept, its plan cut short (every layer builds on the one
    before: without the cut, the plans would grow with every layer)."""
    return df.localCheckpoint()


def _audit_graph(spark: SparkSession, g: _Graph, policy: Policy) -> DataFrame:
    """The audit rows of a typed graph (docs/contract.md §4 columns, entry_id order)."""
    from pyspark.sql import functions as F

    col = F.col
    rules = _rules(policy)
    kf = rules.kind_factor

    def match_f(c: Column) -> Column:
        """The factor of a match (1.0: none, -1)."""
        return F.coalesce(_lookup(rules.match_factor, c), F.lit(1.0))

    # --- uses: (phone, role, loan) from applicant phones and links, with the owner
    # of the phone on the application day -------------------------------------------
    loans = g.loans
    applicant = loans.where(col("applicant").isNotNull()).select(
        "loan_id", col("applicant").alias("phone"), F.lit(APPLICANT).alias("role")
    )
    uses = applicant.unionByName(g.links.select("loan_id", "phone", "role")).join(
        loans.select("loan_id", "borrower", "applied", "sms", "match"), "loan_id"
    )
    pairs = uses.select("phone", col("applied").alias("day")).distinct()
    owners = _period_at(g.periods, pairs)
    uses = _cache(
        uses.join(
            owners,
            (col("phone") == col("o_phone")) & (col("applied") == col("o_day")),
            "left",
        ).select(
            "loan_id",
            "phone",
            "role",
            "borrower",
            "applied",
            "sms",
            "match",
            "owner",
            F.coalesce(col("owner_verified"), F.lit(False)).alias("owner_verified"),
        )
    )
    # --- person -> loan ties -------------------------------------------------------------
    own = loans.select(
        col("borrower").alias("person"),
        "loan_id",
        "applied",
        F.lit("").alias("t_phone"),
        F.lit("").alias("t_role"),
        F.lit(None).cast("int").alias("t_kind"),
        # an own loan named by a record: the record's match step first
        match_f(col("match")).alias("t_f1"),
        F.lit(False).alias("t_unverified"),
        col("match").alias("l_match"),
    )
    owns_kind = _lookup(rules.owns_kind, _text(col("owner_verified")))
    via_phone = uses.where(col("owner").isNotNull() & (col("owner") != col("borrower"))).select(
        col("owner").alias("person"),
        "loan_id",
        "applied",
        col("phone").alias("t_phone"),
        col("role").alias("t_role"),
        _lookup(rules.use_kind, F.concat_ws("|", col("role"), _text(col("sms")))).alias("t_kind"),
        _lookup(kf, owns_kind).alias("t_f1"),
        (owns_kind == rules.own_unverified).alias("t_unverified"),
        col("match").alias("l_match"),
    )
    ties = _cache(own.unionByName(via_phone))
    origins = loans.select(
        "loan_id",
        col("platform").alias("o_platform"),
        col("borrower").alias("o_borrower"),
        "known",
    ).where(col("status").isin(*sorted(s.value for s in policy.origin_statuses)))
    # loan -BORROWED_BY-> borrower, through the loan's record's match step if any
    borrowers = loans.select(
        "loan_id", col("borrower").alias("b_person"), match_f(col("match")).alias("b_mf")
    )

    # --- entries, reach, start ---------------------------------------------------------
    entries = g.entries
    reach = _cache(_reach(spark, g))
    listed = entries.select(col("entry_id").alias("entry"), col("listed").alias("e_listed"))
    # person subjects, and record subjects from their person through the match step
    person_entries = entries.where(col("person").isNotNull())
    frontier = person_entries.select(
        col("entry_id").alias("entry"),
        "person",
        match_f(col("match")).alias("resp"),
        F.array().cast("array<string>").alias("key"),
        F.array().cast("array<int>").alias("path"),
        F.array().cast("array<int>").alias("mpath"),
    )
    seen_persons = frontier.select("entry", "person", "resp")
    seen_loans = spark.createDataFrame([], "entry string, loan_id string, resp double")
    best = spark.createDataFrame(
        [],
        "entry string, b_resp double, b_depth int, b_loan string, b_borrower string, "
        "b_platform string, b_path array<int>, b_mpath array<int>, b_hops int, b_chain int",
    )
    # phone subjects and their owner on the listing day
    phone_entries = entries.where(col("kind") == SubjectKind.PHONE.value)
    now = _period_at(
        g.periods,
        phone_entries.select(col("subject").alias("phone"), col("listed").alias("day")).distinct(),
    )
    phone_entries = phone_entries.join(
        now, (col("subject") == col("o_phone")) & (col("listed") == col("o_day")), "left"
    ).select(
        col("entry_id").alias("entry"),
        col("subject").alias("s_phone"),
        col("listed").alias("e_listed"),
        col("owner").alias("owner_now"),
    )

    def best_resp(df: DataFrame) -> DataFrame:
        return df.join(best.select("entry", "b_resp"), "entry", "left").withColumn(
            "b_resp", F.coalesce(col("b_resp"), F.lit(-1.0))
        )

    for depth in range(1, policy.max_loans + 1):
        # candidates: frontier people -> loans
        own_kind = rules.own_loan[int(depth == 1)]
        c = frontier.join(ties, "person").join(listed, "entry")
        kind = F.coalesce(col("t_kind"), F.lit(own_kind))
        c = c.withColumn("kind", kind).withColumn(
            "c_resp", (col("resp") * col("t_f1")) * _lookup(kf, col("kind"))
        )
        c = best_resp(c).where(
            (col("applied") <= col("e_listed")) & (col("c_resp") > col("b_resp"))
        )
        candidates = c.select(
            "entry",
            "loan_id",
            col("c_resp").alias("resp"),
            F.concat(col("key"), F.array(col("t_phone"), col("t_role"))).alias("key"),
            F.concat(
                col("path"),
                F.array((col("kind") * 2 + col("t_unverified").cast("int")).cast("int")),
            ).alias("path"),
            # the match of each layer's loan's record (-1: none), for the reason codes
            F.concat(col("mpath"), F.array(col("l_match").cast("int"))).alias("mpath"),
        )
        if depth == 1:
            p = phone_entries.join(uses, col("s_phone") == col("phone")).where(
                col("applied") <= col("e_listed")
            )
            owned = col("owner").isNotNull() & (col("owner") == col("borrower"))
            changed = col("owner_now").isNotNull() & ~(
                col("owner").isNotNull() & (col("owner_now") == col("owner"))
            )
            skind = _lookup(
                rules.subject_kind,
                F.concat_ws("|", col("role"), _text(col("sms")), _text(owned), _text(changed)),
            )
            p = p.withColumn("kind", skind)
            candidates = candidates.unionByName(
                p.select(
                    "entry",
                    "loan_id",
                    (F.lit(1.0) * _lookup(kf, col("kind"))).alias("resp"),
                    F.array(col("s_phone"), col("role")).alias("key"),
                    F.array((col("kind") * 2).cast("int")).alias("path"),
                    F.array(col("match").cast("int")).alias("mpath"),
                )
            )
        # the best label per (entry, loan), less what an earlier layer beats
        labels = candidates.groupBy("entry", "loan_id").agg(
            F.min(F.struct(F.negative("resp").alias("nr"), "key", "path", "mpath")).alias("m")
        )
        labels = labels.select(
            "entry", "loan_id", F.negative("m.nr").alias("resp"), "m.key", "m.path", "m.mpath"
        )
        seen = seen_loans.groupBy("entry", "loan_id").agg(F.max("resp").alias("s_resp"))
        labels = _cache(
            labels.join(seen, ["entry", "loan_id"], "left")
            .where(col("s_resp").isNull() | (col("s_resp") < col("resp")))
            .drop("s_resp")
        )
        seen_loans = seen_loans.unionByName(labels.select("entry", "loan_id", "resp"))
        # origins of this layer that reach the listing in time; the best beats the best so far
        o = (
            labels.join(origins, "loan_id")
            .join(
                reach,
                (col("entry") == col("r_entry")) & (col("o_platform") == col("reach_platform")),
            )
            .where(col("known") <= col("deadline"))
        )
        o = o.groupBy("entry").agg(
            F.min(
                F.struct(
                    F.negative("resp").alias("nr"),
                    col("loan_id"),
                    col("o_borrower"),
                    col("o_platform"),
                    col("path"),
                    col("mpath"),
                    col("sharing_hops"),
                    col("chain_index"),
                )
            ).alias("m")
        )
        layer_best = o.select(
            "entry",
            F.negative("m.nr").alias("n_resp"),
            F.lit(depth).alias("n_depth"),
            col("m.loan_id").alias("n_loan"),
            col("m.o_borrower").alias("n_borrower"),
            col("m.o_platform").alias("n_platform"),
            col("m.path").alias("n_path"),
            col("m.mpath").alias("n_mpath"),
            col("m.sharing_hops").alias("n_hops"),
            col("m.chain_index").alias("n_chain"),
        )
        merged = best.join(layer_best, "entry", "full_outer")
        take = col("n_resp").isNotNull() & (
            col("b_resp").isNull() | (col("n_resp") > col("b_resp"))
        )
        best = _cache(
            merged.select(
                "entry",
                *(
                    F.when(take, col(f"n_{f}")).otherwise(col(f"b_{f}")).alias(f"b_{f}")
                    for f in (
                        "resp",
                        "depth",
                        "loan",
                        "borrower",
                        "platform",
                        "path",
                        "mpath",
                        "hops",
                        "chain",
                    )
                ),
            )
        )
        if depth == policy.max_loans:
            break
        # the next frontier: loan labels -> the loans' borrowers
        t = best_resp(
            labels.join(borrowers, "loan_id").withColumn(
                "n_resp", (col("resp") * F.lit(rules.chain_factor)) * col("b_mf")
            )
        ).where(col("n_resp") > col("b_resp"))
        seen = seen_persons.groupBy("entry", "person").agg(F.max("resp").alias("s_resp"))
        seen = seen.withColumnRenamed("person", "b_person")
        t = t.join(seen, ["entry", "b_person"], "left").where(
            col("s_resp").isNull() | (col("s_resp") < col("n_resp"))
        )
        nxt = t.groupBy("entry", "b_person").agg(
            F.min(
                F.struct(F.negative("n_resp").alias("nr"), "key", "loan_id", "path", "mpath")
            ).alias("m")
        )
        frontier = _cache(
            nxt.select(
                "entry",
                col("b_person").alias("person"),
                F.negative("m.nr").alias("resp"),
                F.concat(col("m.key"), F.array(col("m.loan_id"), col("b_person"))).alias("key"),
                col("m.path").alias("path"),
                col("m.mpath").alias("mpath"),
            )
        )
        seen_persons = seen_persons.unionByName(frontier.select("entry", "person", "resp"))
    return _rows(spark, entries, best, policy)


def _rows(spark: SparkSession, entries: DataFrame, best: DataFrame, policy: Policy) -> DataFrame:
    """The §4 rows: each entry with its best origin, scored and its reason codes spelled
    (both computed on the driver once per distinct value, with the rules' functions)."""
    from pyspark.sql import functions as F

    from ..engines.batch import path_codes
    from .rows import AUDIT_COLUMNS

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
        )
        .distinct()
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
    values = [r[0] for r in found.select("b_resp").distinct().collect()]
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


# -- the library calls ----------------------------------------------------------------------


def audit_frames(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    policy: Policy | None = None,
    *,
    region: str = DEFAULT_REGION,
    check: bool = True,
) -> DataFrame:
    """The audit rows (docs/contract.md §4 columns, in ``entry_id`` order) of a graph
    given as Spark DataFrames, one per table of docs/contract.md §1 (column names as
    there, values as text or typed; absent optional tables may be left out).

    ``check`` runs the Spark path's checks (:func:`read_tables` gives text columns;
    docs/scale-out.md says what is checked). The simulator's audit step can call this
    with the tables it made."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    policy = policy or default_policy()
    full: dict[str, DataFrame] = {}
    for table, (required, optional) in TABLES.items():
        df = tables.get(table)
        if df is None:
            if table in REQUIRED_TABLES:
                raise SpilloverError(f"required table '{table}' is missing")
            df = spark.createDataFrame(
                [], StructType([StructField(c, StringType()) for c in (*required, *optional)])
            )
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise SpilloverError(f"{table}: required column(s) missing: {', '.join(missing)}")
        cols = []
        for c in (*required, *optional):
            if c in df.columns:
                text = F.trim(F.col(c).cast("string"))
                cols.append(F.when(text == "", None).otherwise(text).alias(c))
            else:
                cols.append(F.lit(None).cast("string").alias(c))
        file = F.col("_file") if "_file" in df.columns else F.lit(table)
        # read once: the checks and every layer come back to the tables
        full[table] = df.select(*cols, file.alias("_file")).cache()
    return _audit_graph(spark, _graph(spark, full, region, check), policy)


def frames_from_columns(spark: SparkSession, cols: Columns) -> dict[str, DataFrame]:
    """The tables of :func:`audit_frames` made from validated :class:`~spillover.facts.columns.Columns`
    (what the simulator audits): ids, days as ISO text, booleans as ``true``/``false``.
    Display fields the audit does not read (names, amounts, stated reasons, the records'
    identity fields, a match's waterfall) are left out. Platform records come as
    ``records`` and ``matches`` (every record's resolved match, ``known`` ones too) and
    ``loans.borrower_record``."""
    from datetime import date

    import numpy as np

    from ..facts.columns import FOREVER, NEVER

    def days(values: Any, *, missing: int | None = None) -> list[str | None]:
        out: list[str | None] = []
        for v in np.asarray(values, dtype=np.int64).tolist():
            out.append(
                None
                if v in (int(NEVER), int(FOREVER), missing)
                else date.fromordinal(v).isoformat()
            )
        return out

    def text(values: Any) -> list[str | None]:
        return [
            None if v in ("", None) else str(v) for v in np.asarray(values, dtype=object).tolist()
        ]

    def flags(values: Any) -> list[str]:
        return [TRUE if bool(v) else FALSE for v in np.asarray(values).tolist()]

    def frame(table: str, data: Mapping[str, list[Any]]) -> DataFrame:
        from pyspark.sql.types import StringType, StructField, StructType

        names = list(data)
        schema = StructType([StructField(c, StringType()) for c in names])
        rows = list(zip(*(data[c] for c in names), strict=True))
        return spark.createDataFrame(rows, schema)

    people = text(cols.person_ids)
    platforms = text(cols.platform_ids)
    applied = np.asarray(cols.loan_applied, dtype=np.int64)
    known = np.asarray(cols.loan_known, dtype=np.int64)
    records = sorted(cols.records.values(), key=lambda r: r.record_id)
    matches = sorted(cols.matches.values(), key=lambda m: m.record_id)
    no_record: list[str | None] = [None] * len(cols.loan_ids)
    return {
        "people": frame("people", {"person_id": people, "name": people}),
        "platforms": frame("platforms", {"platform_id": platforms, "name": platforms}),
        "phones": frame(
            "phones",
            {
                "phone": text(cols.period_phone),
                "owner_id": text(cols.period_owner),
                "verified": flags(cols.period_verified),
                "since": days(cols.period_since),
                "until": days(cols.period_until),
            },
        ),
        "loans": frame(
            "loans",
            {
                "loan_id": text(cols.loan_ids),
                "platform_id": text(cols.loan_platform),
                "borrower_id": text(cols.loan_borrower),
                "borrower_record": (
                    no_record if cols.loan_record is None else text(cols.loan_record)
                ),
                "applied_at": days(applied),
                "status": text(cols.loan_status),
                "applicant_phone": text(cols.loan_applicant_phone),
                "phone_verified": flags(cols.loan_phone_verified),
                # the day the status was known: the same day as applied_at when unknown
                "status_at": days(known),
            },
        ),
        "loan_links": frame(
            "loan_links",
            {
                "loan_id": text(cols.link_loan),
                "phone": text(cols.link_phone),
                "role": text(cols.link_role),
            },
        ),
        "blacklist": frame(
            "blacklist",
            {
                "entry_id": text(cols.entry_ids),
                "platform_id": text(cols.entry_platform),
                "subject_kind": text(cols.entry_kind),
                "subject": text(cols.entry_subject),
                "listed_at": days(cols.entry_listed),
                "copied_from": text(cols.entry_copied_from),
            },
        ),
        "sharing": frame(
            "sharing",
            {
                "from_platform": text(cols.share_from),
                "to_platform": text(cols.share_to),
                "since": days(cols.share_since),
            },
        ),
        "records": frame(
            "records",
            {
                "record_id": [r.record_id for r in records],
                "platform_id": [r.platform_id for r in records],
            },
        ),
        # resolved matches: a record the data names comes as its ``known`` match
        "matches": frame(
            "matches",
            {
                "record_id": [m.record_id for m in matches],
                "person_id": [m.person_id for m in matches],
                "match_probability": [repr(m.match_probability) for m in matches],
                "matched_by": [m.matched_by.value for m in matches],
            },
        ),
    }


def _is_local(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is None or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://"))


def audit_path(
    spark: SparkSession,
    data: str | Path,
    out: str | Path,
    policy: Policy | None = None,
    *,
    region: str = DEFAULT_REGION,
    progress: Callable[[str, int, int], None] | None = None,
) -> SparkAuditSummary:
    """Audit the data folder at ``data`` (any path Spark reads) and write the rows to
    ``out``: ``.parquet`` a Parquet dataset (any path Spark writes), ``.csv`` /
    ``.jsonl`` one local file written exactly as the embedded audit writes it
    (:func:`spillover.audit.batch.write_audit`). Both are written atomically (a hidden
    temporary renamed into place)."""
    out = str(out)
    suffix = "." + out.rsplit(".", 1)[-1] if "." in out.rsplit("/", 1)[-1] else ""
    if suffix not in OUT_FORMATS:
        raise SpilloverError(f"{out}: the audit output must end in .csv, .jsonl or .parquet")
    if suffix != ".parquet" and not _is_local(out):
        raise SpilloverError(
            f"{out}: a .csv or .jsonl audit is one file written by the driver; "
            "write .parquet to a cluster file system"
        )
    if suffix != ".parquet":
        target = _local(out)
        if not target.parent.is_dir():
            raise SpilloverError(f"{out}: folder {target.parent} does not exist")
        if target.is_dir():
            raise SpilloverError(f"{out}: is a directory; give a file name for --out")
    report = progress or (lambda stage, done, total: None)
    report("read", 0, 1)
    tables = read_tables(spark, data)
    report("read", 1, 1)
    report("audit", 0, 1)
    rows = audit_frames(spark, tables, policy, region=region)
    if suffix == ".parquet":
        rows = rows.localCheckpoint()
        verdicts = {
            r["verdict"]: int(r["n"])
            for r in rows.groupBy("verdict").count().withColumnRenamed("count", "n").collect()
        }
        _write_parquet(spark, rows, out)
        report("audit", 1, 1)
        return SparkAuditSummary(out, sum(verdicts.values()), dict(sorted(verdicts.items())))
    from .batch import write_audit

    summary = write_audit(_iter_rows(rows), _local(out))
    report("audit", 1, 1)
    return SparkAuditSummary(str(summary.path), summary.rows, summary.verdicts)


def _iter_rows(rows: DataFrame) -> Iterator[dict[str, Any]]:
    for r in rows.toLocalIterator(prefetchPartitions=True):
        yield r.asDict()


def _write_parquet(spark: SparkSession, rows: DataFrame, out: str) -> None:
    """Write a Parquet dataset under a hidden temporary name beside ``out``, then rename
    it into place (replacing an older one)."""
    parent, _, name = out.rstrip("/").rpartition("/")
    parent = parent or "."
    temp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.part"
    fs, target = _fs(spark, out)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    if not fs.exists(jvm.org.apache.hadoop.fs.Path(parent)):
        raise SpilloverError(f"{out}: folder {parent} does not exist")
    if fs.exists(target) and fs.getFileStatus(target).isFile():
        raise SpilloverError(f"{out}: is a file; a Parquet audit is a folder of parts")
    temp_path = jvm.org.apache.hadoop.fs.Path(temp)
    try:
        rows.write.mode("error").parquet(temp)
        if fs.exists(target):
            fs.delete(target, True)
        if not fs.rename(temp_path, target):
            raise SpilloverError(f"{out}: could not move the finished audit into place")
    finally:
        if fs.exists(temp_path):
            fs.delete(temp_path, True)


def audit_spark(
    data: str | Path,
    out: str | Path,
    policy: Policy | None = None,
    *,
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    region: str = DEFAULT_REGION,
) -> SparkAuditSummary:
    """``spillover audit --engine spark``: a session on ``master`` with ``conf``, then
    :func:`audit_path`. Spark errors (a path it cannot read, a failed job) come back as
    one-line :class:`~spillover.errors.SpilloverError` messages."""
    spark = session(master, conf)
    try:
        return audit_path(spark, data, out, policy, region=region)
    except SpilloverError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            raise SpilloverError(f"Spark failed: {_first_line(exc)}") from None
        raise
