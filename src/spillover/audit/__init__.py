"""Whole-graph answers: the audit and its engine choice (numpy, Spark, Neo4j write-back), findings.

Spark is reached through ``spillover.audit.spark`` (the ``spark`` extra).
"""

from .batch import AuditSummary, audit, audit_folder, audit_rows, write_audit
from .findings import Findings, find, findings_text
from .run import AuditRequest, run_audit

__all__ = [
    "AuditRequest",
    "AuditSummary",
    "Findings",
    "audit",
    "audit_folder",
    "audit_rows",
    "find",
    "findings_text",
    "run_audit",
    "write_audit",
]
