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

#: the properties the write-back sets on every Entry (an ingest ignores them when it
#: compares an entry with its row, and drops them with its TRACED_TO when it rewrites it)
WRITE_BACK_PROPERTIES = (
    "contamination",
    "verdict",
    "reason_codes",
    "policy_name",
    "policy_version",
    "policy_digest",
    "audited_at",
    "audit_run",
)
