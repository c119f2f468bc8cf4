"""The audit as one call: which engine runs it, and which options go together.

:func:`run_audit` takes an :class:`AuditRequest` (what ``spillover audit`` was given),
refuses combinations that do not go together (:class:`~spillover.errors.UsageProblem`,
in the order the command line always checked them) and runs the one engine that fits:

- ``engine="spark"``: :func:`spillover.audit.spark.audit_spark` on ``data`` (any path Spark
  reads), written to ``out``;
- ``write_back=True``: :func:`spillover.neo4j.writeback.write_back` into Neo4j;
- otherwise the numpy audit: :func:`spillover.audit.batch.audit_folder` on a data folder, or
  :func:`spillover.audit.batch.audit` over Neo4j.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..connect import open_backend
from ..data.outputs import check_outside
from ..errors import UsageProblem
from ..facts.phones import DEFAULT_REGION
from ..neo4j.settings import Neo4jSettings
from ..policy import Policy, default_policy
from .batch import AuditSummary, audit, audit_folder
from .meta import write_audit_meta

if TYPE_CHECKING:
    from ..neo4j.writeback import WriteBackSummary
    from .spark import SparkAuditSummary

__all__ = ["DEFAULT_MASTER", "ENGINES", "AuditRequest", "check_spark_options", "run_audit"]

#: the audit engines: numpy (this process) and spark (extra ``spillover[spark]``)
ENGINES = ("numpy", "spark")
#: the Spark master when none is given (pyspark's own Spark, every local core)
DEFAULT_MASTER = "local[*]"


def check_spark_options(engine: str, master: str, conf: Mapping[str, str]) -> None:
    """Refuse a Spark master or Spark settings for an engine that is not Spark."""
    if engine != "spark" and (conf or master != DEFAULT_MASTER):
        raise UsageProblem("--master and --conf go with --engine spark")


@dataclass(frozen=True)
class AuditRequest:
    """What an audit was asked for: the graph (``data`` as typed, a URI keeps its ``//``;
    or Neo4j), where to write, the engine and its settings."""

    data: str | None = None
    neo4j: Neo4jSettings | None = None
    out: str | None = None
    policy: Policy | None = None
    region: str = DEFAULT_REGION
    engine: str = "numpy"
    write_back: bool = False
    max_paths: int | None = None
    #: with write_back: read back and compare every entry's TRACED_TO, whatever its digest
    check_traces: bool = False
    master: str = DEFAULT_MASTER
    conf: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse options that do not go together (:class:`UsageProblem`), then an audit
        file the loader would read as a table of the data folder (``--out DATA/loans.csv``:
        :class:`~spillover.errors.OptionError`, :func:`spillover.data.outputs.check_outside`)."""
        self._check_combination()
        if self.data is not None and self.out is not None and "://" not in self.data + self.out:
            check_outside(self.out, self.data, folder=False)

    def _check_combination(self) -> None:
        if self.engine == "spark":
            if self.write_back or self.max_paths is not None:
                raise UsageProblem("--write-back and --max-paths go with Neo4j, not --engine spark")
            if self.data is None or self.out is None:
                raise UsageProblem("--engine spark needs --data DIR and --out FILE")
            return
        check_spark_options(self.engine, self.master, self.conf)
        if self.check_traces and not self.write_back:
            raise UsageProblem("--check-traces goes with --write-back")
        if self.write_back:
            if self.out is not None:
                raise UsageProblem("--write-back stores the results in Neo4j: drop --out")
            if self.neo4j is None:
                raise UsageProblem("--write-back needs Neo4j (--neo4j-uri or NEO4J_URI)")
            return
        if self.out is None:
            raise UsageProblem("give --out FILE.csv|FILE.jsonl (or --write-back on Neo4j)")
        if self.max_paths is not None:
            raise UsageProblem("--max-paths goes with --write-back (audit rows hold the best path)")


def run_audit(
    request: AuditRequest,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditSummary | SparkAuditSummary | WriteBackSummary:
    """Check REQUEST (:meth:`AuditRequest.check`), then run the audit on its engine.

    Returns the audit file's summary (numpy or Spark) or, with ``write_back``, what was
    stored in Neo4j. ``progress(stage, done, total)`` is called by the numpy audit and
    the write-back (not by Spark).
    """
    request.check()
    summary = _run(request, progress)
    rows = getattr(summary, "rows", None)
    if rows is not None and request.out is not None and "://" not in request.out:
        write_audit_meta(request.out, request.policy or default_policy(), int(rows))
    return summary


def _run(
    request: AuditRequest,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditSummary | SparkAuditSummary | WriteBackSummary:
    data = Path(request.data) if request.data is not None else None
    if request.engine == "spark":
        from .spark import audit_spark

        assert request.data is not None and request.out is not None  # checked
        return audit_spark(
            request.data,
            request.out,
            request.policy,
            master=request.master,
            conf=request.conf,
            region=request.region,
        )
    if request.write_back:
        from ..neo4j.writeback import write_back

        # (no note of an unfinished ingest: the write-back refuses one itself)
        backend = open_backend(data, request.neo4j, region=request.region, check_ingest=False)
        try:
            return write_back(
                backend,  # type: ignore[arg-type]  # Neo4j: checked above
                request.policy,
                max_paths=request.max_paths,
                progress=progress,
                check_traces=request.check_traces,
            )
        finally:
            backend.close()
    assert request.out is not None  # checked
    if data is not None:
        return audit_folder(
            data, Path(request.out), request.policy, region=request.region, progress=progress
        )
    backend = open_backend(data, request.neo4j, region=request.region)
    try:
        return audit(backend, Path(request.out), request.policy, progress=progress)
    finally:
        backend.close()
