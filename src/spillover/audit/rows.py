"""The audit row (docs/contract.md §4): its columns, its pydantic model, and the row of an
explanation. The batch audit (:mod:`spillover.audit.batch`) writes these rows, the Spark
audit (:mod:`spillover.audit.spark`) gives the same columns."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from ..engines.search import Explanation

__all__ = ["AUDIT_COLUMNS", "AuditRowOut", "audit_row"]


class AuditRowOut(BaseModel):
    """One row of the batch audit (docs/contract.md §4); the fields are its columns."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    entry_id: str
    platform_id: str
    subject_kind: str
    subject: str
    listed_at: date
    contamination: float
    verdict: str
    origin_loan_id: str | None
    origin_borrower_id: str | None
    origin_platform_id: str | None
    responsibility: float | None
    hops: int | None
    reason_codes: str


#: the audit's columns, in the order of the CSV header
AUDIT_COLUMNS = list(AuditRowOut.model_fields)


def audit_row(e: Explanation) -> AuditRowOut:
    """The audit row of an explanation (origin fields None when unexplained)."""
    best = e.best
    return AuditRowOut(
        entry_id=e.entry.entry_id or "",
        platform_id=e.entry.platform_id,
        subject_kind=e.entry.subject_kind.value,
        subject=e.entry.subject,
        listed_at=e.entry.listed_at,
        contamination=e.contamination,
        verdict=e.verdict.value,
        origin_loan_id=best.origin.loan_id if best else None,
        origin_borrower_id=best.origin.borrower_id if best else None,
        origin_platform_id=best.origin.platform_id if best else None,
        responsibility=best.responsibility if best else None,
        hops=best.depth if best else None,
        reason_codes=" ".join(e.reason_codes),
    )
