"""Re-audit only what a correction changed, on any engine that audits (issue 23 item 4).

:func:`spillover.engines.batch.incremental.entries_to_reaudit` finds, from the difference
between two versions of one dataset, the entries of the new version whose answer can have
moved; :func:`reaudit_rows` re-scores only those, on the engine asked for, and carries
every other entry's row over from the audit of the old version:

- the **batch pass** (numpy, :func:`spillover.engines.batch.audit.audit_entries`) over
  the new version's columns, whatever they were read from: a data folder, the embedded
  backends' facts, or what Neo4j holds (``Neo4jBackend.columns``, as ``audit`` and the
  write-back read the store);
- the **per-entry search** (:func:`spillover.engines.search.explain`, as ``audit_rows(...,
  method="per-entry")`` runs it) on any :class:`~spillover.facts.graph.GraphBackend` of
  the new version: the networkx graph (``MemoryBackend``), the arrays (``ArrayBackend``)
  and Neo4j (``Neo4jBackend``: Cypher round trips per entry).

Either way the rows equal a full audit of the new version (tests/test_incremental.py,
parametrized over the engines). Spark's re-audit finds the difference and the entries it
reaches as DataFrame joins, with nothing of either version on the driver
(:mod:`spillover.audit.spark.incremental`; docs/disputes.md, "Only what changed is
re-audited").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engines.batch import CodedGraph, Columns
from ..engines.batch import rows as kernel_rows
from ..engines.batch.audit import audit_entries
from ..engines.batch.incremental import entries_to_reaudit
from ..engines.search import explain_entries
from ..facts.graph import GraphBackend
from ..policy import Policy, default_policy
from .rows import audit_row

__all__ = ["reaudit_rows"]

#: an audit row: the fields of spillover.audit.rows.AuditRowOut, JSON-ready
AuditRow = dict[str, Any]


def reaudit_rows(
    before: Columns | CodedGraph,
    rows_before: Mapping[str, Mapping[str, Any]],
    after: CodedGraph,
    policy: Policy | None = None,
    *,
    backend: GraphBackend | None = None,
) -> dict[str, Mapping[str, Any]]:
    """The audit rows of the new version ``after`` (its index), by entry id in id order:
    the entries the difference from ``before`` (the old version's columns or index) can
    reach re-scored, every other entry's row taken from ``rows_before`` (the old version's
    audit rows by entry id).

    The entries are re-scored by the batch pass over ``after``, or, with ``backend`` (a
    backend holding the new version), by the per-entry search on it. The same rows as a
    full audit of the new version on either engine."""
    policy = policy or default_policy()
    rows = entries_to_reaudit(before, after)
    # in entry_id order (the index's), as the audit lists them
    ids: list[str] = after.entry_ids_by_code().to_pylist()
    fresh: dict[str, AuditRow]
    if backend is None:
        result = audit_entries(after, rows)
        fresh = {str(row["entry_id"]): row for row in kernel_rows(result, policy)}
    else:
        wanted = [ids[i] for i in rows]
        entries = backend.entries(wanted)
        found = [entries[e] for e in wanted]
        fresh = {
            str(x.entry.entry_id): audit_row(x).model_dump(mode="json")
            for x in explain_entries(backend, found, policy, max_paths=1, diagnose=False)
        }
    return {e: fresh[e] if e in fresh else rows_before[e] for e in ids}
