"""The one-pass audit on Apache Spark: the numpy kernel's search as DataFrame joins.

:mod:`spillover.engines.batch` audits a whole blacklist in one machine's memory. This
package runs the *same* layered search as Spark DataFrame operations, so the audit
scales out to a cluster (``spillover audit --engine spark``, docs/scale-out.md),
and gives exactly the kernel's rows (tests hold the two to each other):

* :mod:`.session`: the Spark session, its log kept to errors;
* :mod:`.frames`: the tables as DataFrames (a data folder, the simulator's columns);
* :mod:`.validate`: the contract's checks over the DataFrames;
* :mod:`.graph`: the checked tables typed (days as numbers, phones in E.164, records
  resolved);
* :mod:`.reach`: origin platform -> listing, along copy chains and sharing;
* :mod:`.search`: the layered search, one DataFrame step per step of the kernel;
* :mod:`.result`: the audit rows, scored and their reason codes spelled;
* :mod:`.write`: the audit written (a file, or a Parquet dataset);
* :mod:`.incremental`: the re-audit of only what a correction changed, the entries found
  on the driver and re-scored by Spark's pass.

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
from .incremental import reaudit_spark
from .search import audit_frames
from .session import SparkUnavailable, session
from .write import OUT_FORMATS, SparkAuditSummary, audit_path, audit_spark

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
    "reaudit_spark",
    "session",
]
