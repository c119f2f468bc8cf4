"""The tables as Spark DataFrames: read from a data folder at any path Spark reads
(:func:`read_tables`), made from validated columns (:func:`frames_from_columns`, what the
simulator audits), or given by the caller (:func:`text_frames` brings them to text)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...data.contract import (
    CSV,
    FALSE,
    JSONL,
    PARQUET,
    REQUIRED_TABLES,
    SPACES,
    SUFFIXES,
    TRUE,
    field_kinds,
    required_columns,
)
from ...data.contract import TABLES as CONTRACT_TABLES
from ...data.parquet import type_refused
from ...errors import SpilloverError
from ...facts.columns import FOREVER, NEVER
from .jsonl import jsonl_problems
from .kept import cache
from .session import file_system, first_line

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from ...facts.columns import Columns

__all__ = ["TABLES", "frames_from_columns", "read_tables", "refusal", "text_frames"]

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
#: every column name of the contract's tables (a CSV header cell that is one keeps its name)
_COLUMNS = frozenset(c for model in CONTRACT_TABLES.values() for c in model.model_fields)


# -- a data folder --------------------------------------------------------------------------


def _join_path(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _find(spark: SparkSession, folder: str, table: str) -> str | None:
    fs, _ = file_system(spark, folder)
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
    fs, root = file_system(spark, folder)
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
        if path.endswith(JSONL):  # its lines as the embedded loader reads them
            problems = jsonl_problems(spark, path, table)
            if problems:
                raise SpilloverError(refusal(problems))
        df = _read(spark, path, (*required, *optional))
        names = {c.strip(): c for c in df.columns}
        missing = [c for c in required if c not in names]
        if missing:
            raise SpilloverError(f"{path}: required column(s) missing: {', '.join(missing)}")
        if path.endswith(PARQUET):
            _check_types(df, table, names, path)
        if not path.endswith(JSONL):  # a CSV line or Parquet row of blanks is skipped
            df = df.where(~_all_blank(df))
        cols = []
        for c in (*required, *optional):
            if c in names:
                text = _trimmed(F.col(f"`{names[c]}`"))
                cols.append(F.when(text == "", None).otherwise(text).alias(c))
            else:
                cols.append(F.lit(None).cast("string").alias(c))
        tables[table] = df.select(*cols).withColumn("_file", F.lit(path))
    return tables


def _read(spark: SparkSession, path: str, columns: tuple[str, ...]) -> DataFrame:
    """The table at ``path`` (``.csv``, ``.jsonl``, ``.parquet``) as Spark reads it, CSV and
    JSON values as text; a file Spark cannot read is refused in one line. A JSONL table
    (its lines checked: :func:`~spillover.audit.spark.jsonl.jsonl_problems`) gives
    ``columns``, each the key of that exact name (another case is another key, as the
    embedded loader reads it), a value not a JSON string as written (``1.50``)."""
    from pyspark.sql.types import StringType, StructField, StructType

    try:
        if path.endswith(CSV):
            return spark.read.csv(
                path,
                schema=_header_schema(path),
                header=True,
                inferSchema=False,
                # a file whose values hold no line break is split across tasks
                multiLine=not _one_line_rows(path),
                escape='"',
                mode="FAILFAST",
            )
        if path.endswith(JSONL):
            # JSON has no NaN or Infinity, and strings in double quotes only (the embedded
            # loader refuses them too; Spark's reader takes 'single quoted' text unless told);
            # the lines are checked, a line dropped here is one the loader skips (U+3000)
            return spark.read.json(
                path,
                schema=StructType([StructField(c, StringType()) for c in columns]),
                allowNonNumericNumbers=False,
                allowSingleQuotes=False,
                mode="DROPMALFORMED",
            )
        return spark.read.parquet(path)
    except Exception as exc:
        raise SpilloverError(f"{path}: cannot be read: {first_line(exc)}") from None


def refusal(problems: list[str]) -> str:
    """The refusal: the first problem, and how many more kinds there are."""
    more = f" (and {len(problems) - 1} more kind(s) of problem)" if len(problems) > 1 else ""
    return f"the data was refused: {problems[0]}{more}"


def _all_blank(df: DataFrame) -> Column:
    """Every cell of a row (of any column, read or not) missing or blank after trimming: the
    embedded loaders skip such a row (a CSV line of empty cells, a Parquet row of nulls)."""
    from pyspark.sql import functions as F

    blank = F.lit(True)
    for c in df.columns:
        blank = blank & F.coalesce(_trimmed(F.col(f"`{c}`")) == "", F.lit(True))
    return blank


def _type_accepted(kind: str, dtype: Any) -> bool:
    """Whether a Parquet column Spark reads as ``dtype`` may hold a field of ``kind`` (the
    embedded loaders' rule, :func:`spillover.data.parquet.column_problem`): text anywhere, a
    boolean, a date, a number (integer, floating point, decimal) for its own kind."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.StringType | T.VarcharType | T.CharType | T.NullType):
        return True
    return (
        (kind == "bool" and isinstance(dtype, T.BooleanType))
        or (kind == "date" and isinstance(dtype, T.DateType))
        or (kind == "number" and isinstance(dtype, T.NumericType))
    )


def _check_types(df: DataFrame, table: str, names: Mapping[str, str], path: str) -> None:
    """Refuse a Parquet column of the contract whose type may not hold its field (an integer
    id or boolean, a timestamp, binary, a list: docs/contract.md §1, Parquet tables), as the
    embedded loaders do. A column that holds no value passes when it is of Arrow's ``null``
    type (accepted by both; Spark reads it as integers) in every part, told by the parts'
    Parquet schemas (:func:`_null_columns`); one of another type is refused all the same."""
    from pyspark.sql import functions as F

    kinds = field_kinds(CONTRACT_TABLES[table])
    types = {f.name: f.dataType for f in df.schema.fields}
    wrong = [
        (c, names[c]) for c in kinds if c in names and not _type_accepted(kinds[c], types[names[c]])
    ]
    if not wrong:
        return
    counts = df.agg(*(F.count(F.col(f"`{name}`")) for _, name in wrong)).first()
    assert counts is not None
    nulls: set[str] | None = None
    for (c, name), n in zip(wrong, counts, strict=True):
        if not n:
            nulls = _null_columns(df.sparkSession, path) if nulls is None else nulls
            if name in nulls:
                continue
        problem = type_refused(kinds[c], types[name].simpleString())
        raise SpilloverError(f"the data was refused: {path}: {c}: {problem}")


def _null_columns(spark: SparkSession, path: str) -> set[str]:
    """The columns of the Parquet table at ``path`` (a file or a folder of parts, as Spark
    reads it: its files not named ``_*`` or ``.*``) whose Parquet type is the null type
    (logical type ``UNKNOWN``: what Arrow's ``null`` is written as) in every part. Reads
    the parts' footers only."""
    fs, root = file_system(spark, path)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    status = fs.getFileStatus(root)
    parts = (
        [status]
        if status.isFile()
        else [
            s
            for s in fs.listStatus(root)
            if s.isFile() and not s.getPath().getName().startswith(("_", "."))
        ]
    )
    common: set[str] | None = None
    for part in parts:
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
            jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromStatus(part, conf)
        )
        try:
            schema = reader.getFooter().getFileMetaData().getSchema()
        finally:
            reader.close()
        found = {
            f.getName()
            for f in schema.getFields()
            if f.isPrimitive() and str(f.getLogicalTypeAnnotation()) == "UNKNOWN"
        }
        common = found if common is None else common & found
    return common or set()


def _trimmed(column: Column) -> Column:
    """``column`` as text, trimmed at both ends of every character the embedded loaders
    trim (:data:`~spillover.data.contract.SPACES`, Python's ``str.strip()``: tabs, line
    breaks, U+3000, U+00A0, ...; Spark's ``trim`` removes only ``' '``). One expression."""
    from pyspark.sql import functions as F

    return F.btrim(column.cast("string"), F.lit(SPACES))


def _header_schema(path: str) -> StructType | None:
    """The columns of a local CSV file named from its header, all text: read here, so that
    Spark does not run a job to read the header. A column the embedded loaders read (its
    name, trimmed, one of the contract's) keeps its name, and one given twice as written
    becomes ``<name><i>`` (Spark's own rule); any other column is ``_c<i>``, so that a
    column the loaders ignore (``Status`` beside ``status``) never clashes with one they
    read (Spark compares names in any case, and took both for twins). None (Spark reads
    the header) for a folder of parts, a file on a cluster file system or an empty one."""
    from pyspark.sql.types import StringType, StructField, StructType

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) and not path.startswith("file://"):
        return None
    file = Path(path.removeprefix("file://"))
    if not file.is_file():
        return None
    with file.open("rb") as f:
        head = f.read(1 << 16).decode("utf-8", errors="replace").removeprefix("\ufeff")
    row = next(csv.reader(io.StringIO(head, newline="")), [])
    if not row:
        return None
    safe = [
        (f"{v}{i}" if row.count(v) > 1 else v) if v.strip() in _COLUMNS else f"_c{i}"
        for i, v in enumerate(row)
    ]
    return StructType([StructField(c, StringType()) for c in safe])


#: the bytes :func:`_one_line_rows` reads at a time
_SCAN_BYTES = 16 << 20


def _one_line_rows(path: str) -> bool:
    """Whether every row of a local CSV file is one line: no quote character (so no
    quoted value can hold a line break) and no carriage return but in ``\r\n``. Spark
    then reads it without ``multiLine``, split into parts read in parallel (a
    ``multiLine`` file is one task and one partition, whatever its size). False for a
    file on a cluster file system or a folder of parts (read as before)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) and not path.startswith("file://"):
        return False
    file = Path(path.removeprefix("file://"))
    if not file.is_file():
        return False
    last = b""
    with file.open("rb") as f:
        while chunk := f.read(_SCAN_BYTES):
            if b'"' in chunk:
                return False
            # a carriage return split from its line feed by the chunk boundary counts too
            both = last + chunk
            if both.count(b"\r") != both.count(b"\r\n") + both.endswith(b"\r"):
                return False
            last = chunk[-1:]
    return not last.endswith(b"\r")


def text_frames(spark: SparkSession, tables: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    """The tables given to :func:`~spillover.audit.spark.audit_frames`, each with the columns
    of :data:`TABLES` as trimmed text (empty: null) and ``_file`` (its file, else its
    name), kept (the checks and every layer come back to them). An absent optional table
    is an empty one; raises for a missing table or column."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

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
                text = _trimmed(F.col(c))
                cols.append(F.when(text == "", None).otherwise(text).alias(c))
            else:
                cols.append(F.lit(None).cast("string").alias(c))
        file = F.col("_file") if "_file" in df.columns else F.lit(table)
        # read once: the checks and every layer come back to the tables
        full[table] = cache(df.select(*cols, file.alias("_file")))
    return full


# -- the simulator's columns -----------------------------------------------------------------


def frames_from_columns(spark: SparkSession, cols: Columns) -> dict[str, DataFrame]:
    """The tables of :func:`~spillover.audit.spark.audit_frames` made from validated
    :class:`~spillover.facts.columns.Columns` (what the simulator audits): ids, days as ISO
    text, booleans as ``true``/``false``. Display fields the audit does not read (names,
    amounts, stated reasons, the records' identity fields, a match's waterfall) are left
    out. Platform records come as ``records`` and ``matches`` (every record's resolved
    match, ``known`` ones too) and ``loans.borrower_record``."""
    return {
        "people": _frame_people(spark, cols),
        "platforms": _frame_platforms(spark, cols),
        "phones": _frame_phones(spark, cols),
        "loans": _frame_loans(spark, cols),
        "loan_links": _frame_loan_links(spark, cols),
        "blacklist": _frame_blacklist(spark, cols),
        "sharing": _frame_sharing(spark, cols),
        "records": _frame_records(spark, cols),
        "matches": _frame_matches(spark, cols),
    }


def _days(values: Any, *, missing: int | None = None) -> list[str | None]:
    """Ordinal days as ISO text (None: NEVER, FOREVER or ``missing``)."""
    out: list[str | None] = []
    for v in np.asarray(values, dtype=np.int64).tolist():
        out.append(
            None if v in (int(NEVER), int(FOREVER), missing) else date.fromordinal(v).isoformat()
        )
    return out


def _text(values: Any) -> list[str | None]:
    """Values as text (None: empty or missing)."""
    return [None if v in ("", None) else str(v) for v in np.asarray(values, dtype=object).tolist()]


def _flags(values: Any) -> list[str]:
    """Booleans as the contract writes them."""
    return [TRUE if bool(v) else FALSE for v in np.asarray(values).tolist()]


def _frame(spark: SparkSession, data: Mapping[str, list[Any]]) -> DataFrame:
    """A DataFrame of text columns, ``data``'s keys in order."""
    from pyspark.sql.types import StringType, StructField, StructType

    names = list(data)
    schema = StructType([StructField(c, StringType()) for c in names])
    rows = list(zip(*(data[c] for c in names), strict=True))
    return spark.createDataFrame(rows, schema)


def _frame_people(spark: SparkSession, cols: Columns) -> DataFrame:
    people = _text(cols.person_ids)
    return _frame(spark, {"person_id": people, "name": people})


def _frame_platforms(spark: SparkSession, cols: Columns) -> DataFrame:
    platforms = _text(cols.platform_ids)
    return _frame(spark, {"platform_id": platforms, "name": platforms})


def _frame_phones(spark: SparkSession, cols: Columns) -> DataFrame:
    return _frame(
        spark,
        {
            "phone": _text(cols.period_phone),
            "owner_id": _text(cols.period_owner),
            "verified": _flags(cols.period_verified),
            "since": _days(cols.period_since),
            "until": _days(cols.period_until),
        },
    )


def _frame_loans(spark: SparkSession, cols: Columns) -> DataFrame:
    no_record: list[str | None] = [None] * len(cols.loan_ids)
    return _frame(
        spark,
        {
            "loan_id": _text(cols.loan_ids),
            "platform_id": _text(cols.loan_platform),
            "borrower_id": _text(cols.loan_borrower),
            "borrower_record": (no_record if cols.loan_record is None else _text(cols.loan_record)),
            "applied_at": _days(np.asarray(cols.loan_applied, dtype=np.int64)),
            "status": _text(cols.loan_status),
            "applicant_phone": _text(cols.loan_applicant_phone),
            "phone_verified": _flags(cols.loan_phone_verified),
            # the day the status was known: the same day as applied_at when unknown
            "status_at": _days(np.asarray(cols.loan_known, dtype=np.int64)),
        },
    )


def _frame_loan_links(spark: SparkSession, cols: Columns) -> DataFrame:
    return _frame(
        spark,
        {
            "loan_id": _text(cols.link_loan),
            "phone": _text(cols.link_phone),
            "role": _text(cols.link_role),
        },
    )


def _frame_blacklist(spark: SparkSession, cols: Columns) -> DataFrame:
    return _frame(
        spark,
        {
            "entry_id": _text(cols.entry_ids),
            "platform_id": _text(cols.entry_platform),
            "subject_kind": _text(cols.entry_kind),
            "subject": _text(cols.entry_subject),
            "listed_at": _days(cols.entry_listed),
            "copied_from": _text(cols.entry_copied_from),
        },
    )


def _frame_sharing(spark: SparkSession, cols: Columns) -> DataFrame:
    return _frame(
        spark,
        {
            "from_platform": _text(cols.share_from),
            "to_platform": _text(cols.share_to),
            "since": _days(cols.share_since),
        },
    )


def _frame_records(spark: SparkSession, cols: Columns) -> DataFrame:
    records = sorted(cols.records.values(), key=lambda r: r.record_id)
    return _frame(
        spark,
        {
            "record_id": [r.record_id for r in records],
            "platform_id": [r.platform_id for r in records],
        },
    )


def _frame_matches(spark: SparkSession, cols: Columns) -> DataFrame:
    """Resolved matches: a record the data names comes as its ``known`` match."""
    matches = sorted(cols.matches.values(), key=lambda m: m.record_id)
    return _frame(
        spark,
        {
            "record_id": [m.record_id for m in matches],
            "person_id": [m.person_id for m in matches],
            "match_probability": [repr(m.match_probability) for m in matches],
            "matched_by": [m.matched_by.value for m in matches],
        },
    )
