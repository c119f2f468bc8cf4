"""The library calls that write an audit: :func:`audit_path` (a data folder to a file or a
Parquet dataset) and :func:`audit_spark` (``spillover audit --engine spark``)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...data.contract import CSV, JSONL, PARQUET
from ...errors import SpilloverError
from ...facts.phones import DEFAULT_REGION
from ...policy import Policy
from ..batch import write_audit
from .frames import read_tables
from .kept import Kept, checkpoint
from .search import audit_frames
from .session import file_system, first_line, session

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "BYTES_PER_PARTITION",
    "OUT_FORMATS",
    "SparkAuditSummary",
    "audit_path",
    "audit_spark",
    "size_shuffles",
]

#: what ``--out`` may end with: one file (.csv, .jsonl, written by the driver from the
#: rows in entry_id order, byte for byte as the embedded audit writes it) or a Parquet
#: dataset (a folder of parts, written by the executors, to any path Spark writes)
OUT_FORMATS = (CSV, JSONL, PARQUET)


@dataclass(frozen=True, slots=True)
class SparkAuditSummary:
    """What :func:`audit_path` wrote: where, how many rows, the rows per verdict."""

    path: str
    rows: int
    verdicts: dict[str, int]


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
    name = out.rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if name in OUT_FORMATS:  # as the embedded audit: ".csv" alone is not a file name
        raise SpilloverError(f"{out}: give the audit output a name before {name}")
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
    with Kept():  # every table and layer the audit keeps, released once it is written
        return _audit_to(spark, data, out, suffix, policy, region, report)


def _audit_to(
    spark: SparkSession,
    data: str | Path,
    out: str,
    suffix: str,
    policy: Policy | None,
    region: str,
    report: Callable[[str, int, int], None],
) -> SparkAuditSummary:
    report("read", 0, 1)
    size_shuffles(spark, str(data))
    tables = read_tables(spark, data)
    report("read", 1, 1)
    report("audit", 0, 1)
    rows = audit_frames(spark, tables, policy, region=region)
    if suffix == ".parquet":
        rows = checkpoint(rows)
        verdicts = {
            r["verdict"]: int(r["n"])
            for r in rows.groupBy("verdict").count().withColumnRenamed("count", "n").collect()
        }
        _write_parquet(spark, rows, out)
        report("audit", 1, 1)
        return SparkAuditSummary(out, sum(verdicts.values()), dict(sorted(verdicts.items())))
    summary = write_audit(_iter_rows(rows), _local(out))
    report("audit", 1, 1)
    return SparkAuditSummary(str(summary.path), summary.rows, summary.verdicts)


#: the input bytes per shuffle partition (the labels of a layer are a few times the input)
BYTES_PER_PARTITION = 8 << 20
#: the settings :func:`size_shuffles` makes (unless given): adaptive execution coalesces
#: small partitions after each shuffle
_ADAPTIVE = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
}


def size_shuffles(spark: SparkSession, data: str) -> int | None:
    """Size ``spark.sql.shuffle.partitions`` to the data folder (one partition per
    :data:`BYTES_PER_PARTITION` of input, at least two per core), and turn adaptive
    execution on, each unless the session was given that setting (``--conf``): a small
    folder then runs its shuffles in a few tasks, not Spark's default 200. Returns the
    number set (None: the session's own)."""
    given = spark.sparkContext.getConf()
    for key, value in _ADAPTIVE.items():
        if not given.contains(key):
            spark.conf.set(key, value)
    if given.contains("spark.sql.shuffle.partitions"):
        return None
    fs, root = file_system(spark, data)
    size = int(fs.getContentSummary(root).getLength()) if fs.exists(root) else 0
    n = max(2 * spark.sparkContext.defaultParallelism, math.ceil(size / BYTES_PER_PARTITION))
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    return n


def _iter_rows(rows: DataFrame) -> Iterator[dict[str, Any]]:
    for r in rows.toLocalIterator(prefetchPartitions=True):
        yield r.asDict()


def _write_parquet(spark: SparkSession, rows: DataFrame, out: str) -> None:
    """Write a Parquet dataset under a hidden temporary name beside ``out``, then rename
    it into place (replacing an older one)."""
    parent, _, name = out.rstrip("/").rpartition("/")
    parent = parent or "."
    temp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.part"
    fs, target = file_system(spark, out)
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
            raise SpilloverError(f"Spark failed: {first_line(exc)}") from None
        raise
