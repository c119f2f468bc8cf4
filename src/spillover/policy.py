"""Scoring policies: versioned TOML files of step factors, validated against the contract.

The default policy ships in the package (``spillover/policies/default.toml``);
``load_policy(path)`` reads another one. A policy that breaks a property every
policy must keep (docs/contract.md §3) is refused with :class:`~spillover.errors.PolicyError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .errors import PolicyError
from .facts.model import LoanStatus
from .files.toml import Integer, Number, parse_toml
from .rules import (
    DEFAULT_POLICY_FILE,
    FACTOR_KEYS,
    MATCH_FACTOR_DEFAULTS,
    factor,
    owns_kind,
    use_kind,
)

__all__ = ["Policy", "default_policy", "default_policy_bytes", "load_policy", "parse_policy"]


def _unsigned_zero(value: float) -> float:
    """A factor of ``-0.0`` (TOML writes it; it is in [0, 1]) as ``0.0``: a path through
    it is written with responsibility 0.0 by every engine, never ``-0.0``.

    >>> _unsigned_zero(-0.0), _unsigned_zero(0.25)
    (0.0, 0.25)
    """
    return value + 0.0


#: a factor: a finite TOML number (an integer too), -0.0 read as 0.0
Factor = Annotated[Number, AfterValidator(_unsigned_zero)]


class _FactorRules(BaseModel):
    """The properties every policy keeps (docs/contract.md §3); the fields come from the rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _contract(self) -> _FactorRules:
        f = self.model_dump()
        problems = []
        if f["own_loan"] != 1.0:
            problems.append("own_loan must be 1.0 (an own default explains a listing fully)")
        if f["own_phone"] != 1.0:
            problems.append("own_phone must be 1.0 (the borrower's own number is own conduct)")
        stranger = max(
            f["applicant_sms_verified"],
            f["applicant_unverified"],
            f["emergency_contact"],
            f["reference"],
            f["address_book"],
            f["reassigned_phone"],
        )
        if stranger > 0.1:
            problems.append(
                "a stranger's loan that lists or uses the subject's phone must leave "
                "contamination >= 0.9: applicant_*, emergency_contact, reference, "
                "address_book and reassigned_phone must be <= 0.1"
            )
        if f["guarantor"] * min(f["owns_verified"], f["owns_unverified"]) < 0.7:
            problems.append(
                "a guarantor must score contamination <= 0.3: guarantor * owns_* >= 0.7"
            )
        if f["address_book"] > f["emergency_contact"]:
            problems.append("address_book must not exceed emergency_contact")
        problems += _match_problems(f)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _match_problems(f: dict[str, float]) -> list[str]:
    """The properties of the match factors (docs/contract.md §3): a record the data
    names, or one matched by ID number, is the person; a phone-only match is weak
    evidence (like a stranger's use of the phone); more agreeing fields never weigh less."""
    problems = []
    if f["match_known"] != 1.0:
        problems.append("match_known must be 1.0 (the data names the record's person)")
    if f["match_phone_only"] > 0.1:
        problems.append(
            "a phone-only match must leave contamination >= 0.9: match_phone_only must be <= 0.1"
        )
    order = (
        ("match_phone_only", "match_name_and_phone"),
        ("match_name_only", "match_name_and_phone"),
        ("match_name_only", "match_name_and_birth_date"),
        ("match_name_only", "match_name_and_city"),
        ("match_name_and_phone", "match_id_number"),
        ("match_name_and_birth_date", "match_id_number"),
        ("match_name_and_city", "match_id_number"),
        ("match_other", "match_id_number"),
    )
    for weaker, stronger in order:
        if f[weaker] > f[stronger]:
            problems.append(f"{weaker} must not exceed {stronger}")
    return problems


#: one factor in [0, 1] per factor key of the rules (spillover.rules.FACTOR_KEYS): required,
#: but for the match factors, which a policy written before records may leave out
_Factors = create_model(  # type: ignore[call-overload]
    "_Factors",
    __base__=_FactorRules,
    **{
        key: (Factor, Field(default=MATCH_FACTOR_DEFAULTS[key], ge=0, le=1))
        if key in MATCH_FACTOR_DEFAULTS
        else (Factor, Field(ge=0, le=1))
        for key in FACTOR_KEYS
    },
)


#: the loan statuses that are a default (``OWN_DEFAULT``: "overdue or defaulted"); a
#: policy's ``origin_statuses`` holds ``defaulted`` and may hold ``overdue``
_DEFAULTS = (LoanStatus.DEFAULTED, LoanStatus.OVERDUE)


class _Search(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_loans: Integer = Field(default=3, ge=1, le=10)
    max_paths: Integer = Field(default=10, ge=1)
    origin_statuses: tuple[LoanStatus, ...] = _DEFAULTS

    @field_validator("origin_statuses")
    @classmethod
    def _defaults_only(cls, statuses: tuple[LoanStatus, ...]) -> tuple[LoanStatus, ...]:
        """An own default explains a listing (contamination 0), and only a default is one
        (docs/contract.md §3): ``defaulted`` is an origin status, ``current`` and
        ``repaid`` are not."""
        if LoanStatus.DEFAULTED not in statuses:
            raise ValueError(
                "must include 'defaulted' (an own default explains a listing: contamination 0)"
            )
        others = sorted(s.value for s in set(statuses) - set(_DEFAULTS))
        if others:
            raise ValueError(
                f"may hold only 'defaulted' and 'overdue', not "
                f"{', '.join(repr(o) for o in others)} (a loan that is not in default "
                "would be scored as an own default)"
            )
        return statuses


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spillover_at: Number = Field(default=0.5, gt=0, le=1)


class _Recommendation(BaseModel):
    """``[recommendation]``: contamination thresholds of the pre-blacklist check's answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review_at: Number = Field(default=0.3, gt=0, le=1)
    do_not_list_at: Number = Field(default=0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> _Recommendation:
        if self.review_at > self.do_not_list_at:
            raise ValueError("review_at must not exceed do_not_list_at")
        return self


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    description: str = ""

    @field_validator("name", "version")
    @classmethod
    def _named(cls, text: str) -> str:
        """Every explanation names its policy as ``name version sha256:DIGEST``."""
        if not text.strip():
            raise ValueError("must not be empty (every explanation names the policy by it)")
        return text


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: _Header
    factors: _Factors
    search: _Search = _Search()
    verdict: _Verdict = _Verdict()
    recommendation: _Recommendation = _Recommendation()


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated scoring policy. ``digest`` is the SHA-256 of the file's bytes."""

    name: str
    version: str
    digest: str
    factors: dict[str, float]
    max_loans: int
    max_paths: int
    origin_statuses: frozenset[LoanStatus]
    spillover_at: float
    description: str = ""
    source: str = ""
    #: the check's recommendation: ``review`` from this contamination on (``[recommendation]``)
    review_at: float = 0.3
    #: ... and ``do_not_list`` from this one on
    do_not_list_at: float = 0.5

    @property
    def label(self) -> str:
        """``name version sha256:digest`` as written into every explanation."""
        return f"{self.name} {self.version} sha256:{self.digest}"

    def factor(self, name: str) -> float:
        """The factor named ``name`` in the policy's ``[factors]``."""
        return self.factors[name]

    def role_factor(self, role: str, sms_verified: bool | None) -> float:
        """Factor of a phone named on someone else's loan in ``role`` (see :mod:`spillover.rules`)."""
        return factor(self, use_kind(role, sms_verified))

    def owns_factor(self, verified: bool) -> float:
        """Factor of owning a phone, real-name verified or not (see :mod:`spillover.rules`)."""
        return factor(self, owns_kind(verified))


def parse_policy(raw: bytes, source: str = "<policy>") -> Policy:
    """Parse and validate policy TOML bytes."""
    data = parse_toml(raw, source, PolicyError, "not valid TOML")
    try:
        parsed = _PolicyFile.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise PolicyError(f"{source}: {details}") from None
    return Policy(
        name=parsed.policy.name,
        version=parsed.policy.version,
        digest=hashlib.sha256(raw).hexdigest(),
        factors=parsed.factors.model_dump(),
        max_loans=parsed.search.max_loans,
        max_paths=parsed.search.max_paths,
        origin_statuses=frozenset(parsed.search.origin_statuses),
        spillover_at=parsed.verdict.spillover_at,
        description=parsed.policy.description,
        source=source,
        review_at=parsed.recommendation.review_at,
        do_not_list_at=parsed.recommendation.do_not_list_at,
    )


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default when ``path`` is None."""
    if path is None:
        return default_policy()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from None
    return parse_policy(raw, str(path))


def default_policy_bytes() -> bytes:
    """The packaged default policy file, e.g. to start a variant of it."""
    return resources.files("spillover").joinpath(DEFAULT_POLICY_FILE).read_bytes()


@cache
def default_policy() -> Policy:
    """The policy packaged with spillover (``spillover/policies/default.toml``), parsed once."""
    return parse_policy(default_policy_bytes(), f"spillover/{DEFAULT_POLICY_FILE}")
