"""The JSON edge: explanations as pydantic models (docs/contract.md §3; the audit row of §4
is :mod:`spillover.audit.rows`).

Fields of the contract are never renamed or dropped; fields added beyond it
(``listed_at``, ``hops``, ``at``, ``code``, ``reasons``, ``policy_detail``,
``names``, ``paths_total``, ``origins_total``) are documented in ``docs/contract.md`` §3.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from ..engines.search import Explanation, ExplanationPath, Step, step_match
from ..facts.model import Match
from ..rules import REASONS, Verdict

__all__ = [
    "ExplanationOut",
    "MatchLevelOut",
    "MatchOut",
    "OriginOut",
    "PathOut",
    "PolicyOut",
    "ReasonOut",
    "StepOut",
    "SubjectOut",
    "explanation_dict",
    "explanation_json",
    "explanation_out",
]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class SubjectOut(_Out):
    """The listed subject: ``kind`` ``person``, ``phone`` or ``record`` (a platform
    record), ``id`` (a phone in E.164)."""

    kind: Literal["person", "phone", "record"]
    id: str


class MatchLevelOut(_Out):
    """One field of a match's waterfall: its comparison level and weight (log2 Bayes factor)."""

    field: str
    level: str
    agreed: bool | None
    log2_bayes_factor: float


class MatchOut(_Out):
    """The match behind a ``MATCHED_TO`` step: the record, its person, and what decided it."""

    record_id: str
    person_id: str
    matched_by: str
    match_probability: float
    matched_with: str | None = None
    match_weight: float | None = None
    waterfall: list[MatchLevelOut] = []


class OriginOut(_Out):
    """The overdue or defaulted loan a path starts from."""

    loan_id: str
    borrower_id: str
    platform_id: str
    status: str
    applied_at: date
    status_at: date | None = None
    amount: float | None = None


class StepOut(_Out):
    """One step of a path: ``from`` -``rel``-> ``to`` with its factor, day and reason code."""

    from_: str = Field(alias="from")
    rel: str
    to: str
    factor: float
    at: date | None = None
    code: str | None = None
    #: only on a ``MATCHED_TO`` step (left out of the JSON elsewhere)
    match: MatchOut | None = None

    @model_serializer(mode="wrap")
    def _no_empty_match(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("match") is None:
            out.pop("match", None)
        return out


class PathOut(_Out):
    """One path from the subject to an origin loan and on to the listing."""

    origin: OriginOut
    responsibility: float
    hops: int
    steps: list[StepOut]


class ReasonOut(_Out):
    """A reason code and its one-line text."""

    code: str
    text: str


class PolicyOut(_Out):
    """The scoring policy used: name, version and digest."""

    name: str
    version: str
    digest: str


class ExplanationOut(_Out):
    """The explanation JSON of one entry (docs/contract.md §3)."""

    entry_id: str | None
    platform_id: str
    subject: SubjectOut
    listed_at: date
    contamination: float = Field(ge=0, le=1)
    verdict: Verdict
    paths: list[PathOut]
    reason_codes: list[str]
    reasons: list[ReasonOut]
    policy: str
    policy_detail: PolicyOut
    names: dict[str, str]
    #: every time-respecting path from the subject to an origin (each tie walk, as the
    #: remedy counts them); ``paths`` holds the best one to each origin loan
    paths_total: int = Field(ge=0)
    #: the origin loans some path reaches; ``paths`` lists up to ``max_paths`` of them
    origins_total: int = Field(ge=0)


def _match(m: Match | None) -> MatchOut | None:
    if m is None:
        return None
    return MatchOut(
        record_id=m.record_id,
        person_id=m.person_id,
        matched_by=m.matched_by.value,
        match_probability=m.match_probability,
        matched_with=m.matched_with,
        match_weight=m.match_weight,
        waterfall=[
            MatchLevelOut(
                field=w.field, level=w.level, agreed=w.agreed, log2_bayes_factor=w.log2_bayes_factor
            )
            for w in m.waterfall
        ],
    )


def _step(s: Step, e: Explanation) -> StepOut:
    return StepOut(
        from_=s.source,
        rel=s.rel,
        to=s.target,
        factor=s.factor,
        at=s.at,
        code=s.code,
        match=_match(step_match(s, e)),
    )


def _path(p: ExplanationPath, e: Explanation) -> PathOut:
    o = p.origin
    return PathOut(
        origin=OriginOut(
            loan_id=o.loan_id,
            borrower_id=o.borrower_id,
            platform_id=o.platform_id,
            status=o.status.value,
            applied_at=o.applied_at,
            status_at=o.status_at,
            amount=o.amount,
        ),
        responsibility=p.responsibility,
        hops=p.depth,
        steps=[_step(s, e) for s in p.steps],
    )


def explanation_out(e: Explanation) -> ExplanationOut:
    """The explanation as its JSON model."""
    return ExplanationOut(
        entry_id=e.entry.entry_id,
        platform_id=e.entry.platform_id,
        subject=SubjectOut(kind=e.entry.subject_kind.value, id=e.entry.subject),
        listed_at=e.entry.listed_at,
        contamination=e.contamination,
        verdict=e.verdict,
        paths=[_path(p, e) for p in e.paths],
        reason_codes=list(e.reason_codes),
        reasons=[ReasonOut(code=c, text=REASONS[c]) for c in e.reason_codes],
        policy=e.policy.label,
        policy_detail=PolicyOut(
            name=e.policy.name, version=e.policy.version, digest=e.policy.digest
        ),
        names=e.names,
        paths_total=max(e.paths_total, len(e.paths)),
        origins_total=max(e.origins_total, len(e.paths)),
    )


def explanation_json(e: Explanation, indent: int | None = 2) -> str:
    """The explanation JSON as text (``indent`` None: on one line)."""
    return explanation_out(e).model_dump_json(by_alias=True, indent=indent)


def explanation_dict(e: Explanation) -> dict[str, Any]:
    """The explanation JSON as plain Python values (dates as ISO strings).

    >>> from spillover import examples, explain_entry, open_folder
    >>> d = explanation_dict(explain_entry(open_folder(examples.jiang_case_path()), "E-QT-J"))
    >>> d["verdict"], d["paths"][0]["steps"][0]
    ('spillover', {'from': 'person:jiang', 'rel': 'OWNS', 'to': 'phone:+8613957112345', 'factor': 1.0, 'at': '2012-03-01', 'code': None})
    """
    return explanation_out(e).model_dump(by_alias=True, mode="json")
