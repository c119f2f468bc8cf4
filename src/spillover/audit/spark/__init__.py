"""The one-pass audit on Apache Spark: the numpy kernel's search as DataFrame joins.

:mod:`spillover.engines.batch` audits a whole blacklist in one machine's memory. This
package runs the *same* layered search as Spark DataFrame operations, so the audit
scales out to a cluster (``spillover audit --engine spark``, docs/scale-out.md),
and gives exactly the kernel's rows (tests hold the two to each other):

* :mod:`.session`: the Spark session, its log kept to errors;
* :mod:`.frames`: the tables as DataFrames (a data folder, the simulator's columns);
* :mod:`.jsonl`: a JSONL table's lines checked as the embedded loader reads them;
* :mod:`.validate`: the contract's checks over the DataFrames;
* :mod:`.graph`: the checked tables typed (days as numbers, phones in E.164, records
  resolved);
* :mod:`.reach`: origin platform -> listing, along copy chains and sharing;
* :mod:`.search`: the layered search, one DataFrame step per step of the kernel;
* :mod:`.result`: the audit rows, scored and their reason codes spelled;
* :mod:`.write`: the audit written (a file, or a Parquet dataset);
* :mod:`.difference`: the difference of two versions of one dataset by anti joins, and
  the entries it can reach by bounded-depth joins;
* :mod:`.incremental`: the re-audit of only what a correction changed, those entries
  re-scored by Spark's pass and the rest carried over by a join;
* :mod:`.kept`: what a step cached or checkpointed, released when it ends (a session
  that runs many audits holds none of them after).

Every step kind, factor, reason code and the score come from :mod:`spillover.rules`
through the kernel's compiled tables (``USE_KIND``, ``SUBJECT_PHONE_KIND``, ...)
and the policy; the reason-code text of each distinct path shape and the score of
each distinct responsibility are computed on the driver with the rules' own
functions and joined back (a few hundred rows). No Python runs on the executors.

pyspark is an optional extra (``pip install "spillover[spark]"``); it is imported
when a function here is called, never by ``import spillover`` (nor by importing this
package).
"""

from .frames import TABLES, frames_from_columns, read_tables
from .incremental import SparkReaudit, reaudit_frames, reaudit_spark
from .kept import Kept
from .search import audit_frames
from .session import SparkUnavailable, session
from .write import OUT_FORMATS, SparkAuditSummary, audit_path, audit_spark

__all__ = [
    "OUT_FORMATS",
    "TABLES",
    "Kept",
    "SparkAuditSummary",
    "SparkReaudit",
    "SparkUnavailable",
    "audit_frames",
    "audit_path",
    "audit_spark",
    "frames_from_columns",
    "read_tables",
    "reaudit_frames",
    "reaudit_spark",
    "session",
]
