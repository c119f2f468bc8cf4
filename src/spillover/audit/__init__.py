"""Whole-graph answers: the audit and its engine choice (numpy, Spark, Neo4j write-back), findings.

Spark is reached through ``spillover.audit.spark`` (the ``spark`` extra).
"""

from .batch import AuditSummary, audit, audit_folder, audit_rows, write_audit
from .findings import Findings, find, findings_text
from .incremental import reaudit_rows
from .rows import AUDIT_COLUMNS, AuditRowOut, audit_row
from .run import AuditRequest, run_audit

__all__ = [
    "AUDIT_COLUMNS",
    "AuditRequest",
    "AuditRowOut",
    "AuditSummary",
    "Findings",
    "audit",
    "audit_folder",
    "audit_row",
    "audit_rows",
    "find",
    "findings_text",
    "reaudit_rows",
    "run_audit",
    "write_audit",
]
