"""The shape of the graph in Neo4j that more than one module writes or reads: node labels
and the properties the write-back adds (the Cypher itself is in ``cypher/``).

It imports nothing of spillover: the ingest, the write-back and the saved queries all
build on it.
"""

from __future__ import annotations

__all__ = ["LABELS", "WRITE_BACK_PROPERTIES"]

#: the node label of each kind of node reference (spillover.facts.model.ref)
LABELS = {
    "person": "Person",
    "phone": "Phone",
    "loan": "Loan",
    "platform": "Platform",
    "entry": "Entry",
    "record": "Record",
}

#: the properties the write-back sets on an Entry (an ingest ignores them when it compares
#: an entry with its row; when it rewrites it, it drops them with its TRACED_TO but keeps
#: the last answer as stale_* and the last change, previous_* and changed_at)
WRITE_BACK_PROPERTIES = (
    "contamination",
    "verdict",
    "reason_codes",
    "policy_name",
    "policy_version",
    "policy_digest",
    "audited_at",
    "audit_run",
    # the digest of the entry's TRACED_TO under its audit_run (a rerun leaves unchanged
    # traces untouched: spillover.neo4j.writeback)
    "traces_digest",
    # what changed (issue 23): the answer of the run before the last change, and when
    "previous_contamination",
    "previous_verdict",
    "previous_reason_codes",
    "previous_audited_at",
    "changed_at",
    # the last run's answer, kept by an ingest that rewrote the entry (until the next run)
    "stale_contamination",
    "stale_verdict",
    "stale_reason_codes",
    "stale_audited_at",
    "stale_audit_run",
)
