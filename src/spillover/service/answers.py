"""What the service answers, apart from HTTP: a check and its check-log record, a batch
item, the entries about a subject. The routes (:mod:`spillover.service.routes`) call
these in a worker thread: they ask the graph."""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..engines.search import Explanation, entries_about, explain_entries
from ..engines.search import check as run_check
from ..errors import NotFoundError
from ..facts.graph import GraphBackend
from ..facts.phones import normalize_phone
from ..facts.resident_id import mask_ids_in
from ..policy import Policy
from ..render.json import explanation_out
from ..rules import recommendation
from .auth import TokenGrant, acts_for
from .config import ServeConfig
from .ids import new_id
from .schemas import (
    BatchItemOut,
    CheckIn,
    CheckOut,
    ItemErrorOut,
    clean_errors,
    model_errors,
    safe,
    validation_error,
)

__all__ = [
    "about_subject",
    "answer_check",
    "answer_item",
    "check_record",
    "forbidden",
    "graph_subject",
    "phone_owner",
]


def forbidden(token: str, platform_id: str) -> str:
    """The 403 answer's detail: ``token`` does not act for ``platform_id``."""
    return mask_ids_in(f"the token {token!r} does not act for the platform {safe(platform_id)!r}")


def graph_subject(kind: str, subject: str, region: str, loc: tuple[str | int, ...]) -> str:
    """The subject as the graph names it: a phone in E.164 (a 422 about ``loc`` when it
    cannot be read), a person as given."""
    if kind != "phone":
        return subject
    try:
        return normalize_phone(subject, region)
    except ValueError as exc:
        raise validation_error(loc, str(exc), subject) from None


def answer_check(
    graph: GraphBackend,
    item: CheckIn,
    token: str,
    loc: tuple[str | int, ...],
    *,
    policy: Policy,
    config: ServeConfig,
) -> tuple[CheckOut, dict[str, Any]]:
    """The answer to one check and its check-log record (written by the caller, once
    the answer can still be given)."""
    subject = graph_subject(
        item.subject.kind, item.subject.id, config.region, (*loc, "subject", "id")
    )
    day = item.listed_at or datetime.now(UTC).date()
    e = run_check(
        graph,
        item.platform_id,
        item.subject.kind,
        subject,
        day,
        policy,
        max_paths=config.max_paths,
    )
    check_id = new_id()
    # the explanation's fields were validated when its model was built, the other two
    # are made here: the answer is put together without validating it again
    out = CheckOut.model_construct(
        **dict(explanation_out(e)),
        check_id=check_id,
        recommendation=recommendation(e.contamination, policy),
    )
    record = check_record(check_id, item, token, subject, day, e, policy)
    if item.subject.kind == "phone":
        # whose phone it was on the listing day: `spillover checks --subject PERSON`
        # finds the checks made on a person's phones by it
        record["phone_owner_id"] = phone_owner(graph, subject, day)
    return out, record


def check_record(
    check_id: str,
    item: CheckIn,
    token: str,
    subject: str,
    day: date,
    e: Explanation,
    policy: Policy,
) -> dict[str, Any]:
    """The check log's record of a check (docs/service.md, The check log)."""
    return {
        "check_id": check_id,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "token_name": token,
        "platform_id": item.platform_id,
        "subject": {"kind": item.subject.kind, "id": subject},
        "listed_at": day.isoformat(),
        "stated_reason": item.stated_reason,
        "result": {
            "recommendation": recommendation(e.contamination, policy).value,
            "verdict": e.verdict.value,
            "contamination": e.contamination,
            "reason_codes": list(e.reason_codes),
            "origin_loan_id": e.best.origin.loan_id if e.best else None,
        },
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "digest": policy.digest,
        },
    }


def answer_item(
    graph: GraphBackend,
    i: int,
    raw: Any,
    token: str,
    records: list[dict[str, Any]],
    *,
    grants: Mapping[str, TokenGrant],
    policy: Policy,
    config: ServeConfig,
) -> BatchItemOut:
    """The answer to item ``i`` of a batch: its check (its record appended to
    ``records``) or its error, with the status the single call would give; a 422's
    ``loc`` names the field within the item, whatever found it (``[]``: the item)."""
    try:
        # validated as FastAPI validates the single call's body: the same errors
        item = CheckIn.model_validate(raw, from_attributes=True)
        if not acts_for(grants, token, item.platform_id):
            error = ItemErrorOut(status=403, detail=forbidden(token, item.platform_id))
            return BatchItemOut(index=i, error=error)
        out, record = answer_check(graph, item, token, (), policy=policy, config=config)
    except ValidationError as exc:
        return BatchItemOut(index=i, error=ItemErrorOut(status=422, detail=model_errors(exc)))
    except RequestValidationError as exc:
        detail = clean_errors(exc.errors())
        return BatchItemOut(index=i, error=ItemErrorOut(status=422, detail=detail))
    except NotFoundError as exc:
        return BatchItemOut(index=i, error=ItemErrorOut(status=404, detail=str(exc)))
    records.append(record)
    return BatchItemOut(index=i, check=out)


def phone_owner(graph: GraphBackend, phone: str, day: date) -> str | None:
    """The person who owned ``phone`` on ``day`` (None: nobody known)."""
    facts = graph.expand((), (phone,), day)
    for period in facts.periods:
        if period.phone == phone and period.owner_id is not None and period.covers(day):
            return period.owner_id
    return None


def about_subject(
    graph: GraphBackend, kind: str, subject: str, policy: Policy, max_paths: int | None
) -> list[Explanation]:
    """Every recorded entry on a person (also those on a phone they owned on the
    listing day) or a phone, explained."""
    entries = entries_about(graph, kind, subject)
    return explain_entries(graph, entries, policy, max_paths=max_paths)
