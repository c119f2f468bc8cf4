"""Listing rules as data: what a platform does when a loan goes bad (docs/research.md).

A *listing rule* is not the scoring policy (which says how an explanation is
scored); it says, per platform kind or per platform, which ties of a delinquent
loan lead to a blacklist entry, after what delay, how deep (are the listed
people's own contacts listed in turn) and whether blacklists received through
sharing are acted on. :mod:`spillover.simulate.run` runs rules over a data folder.

A rule is a TOML file (the shipped ones are in ``spillover/simulate/listing_rules/``)::

    [rule]
    name = "contacts"
    description = "What the story's lenders did."

    [default]                      # every platform, unless overridden below
    ties = ["own_loan", "applicant", "guarantor", "emergency_contact", "reference"]
    delay_days = [1, 14]           # after the loan's status_at (an int: exactly)
    depth = 1                      # 2: contacts on the listed contacts' own loans too
    act_on_shared = true           # copy the entries received through sharing
    copy_delay_days = [0, 10]      # after the source entry or the sharing's since
    verified_only = false          # skip ties the subject did not verify
    subject = "owner"              # list the phone's owner on the listing day, or "phone"
    statuses = ["overdue", "defaulted"]

    [kind.bank]                    # per platform kind (platforms.kind)
    ties = ["own_loan", "guarantor"]

    [platform.lend01]              # per platform id (wins over its kind)
    act_on_shared = false

The tie names come from :mod:`spillover.rules`, never from a list of their own:
``own_loan`` (the borrower: :func:`~spillover.rules.loan_kind`), a role name of
:data:`~spillover.rules.ROLES` (``applicant`` covers both applicant step kinds),
or a step kind a role's use takes (:func:`~spillover.rules.use_kind`:
``applicant_sms_verified``, ``applicant_unverified``, ...).

>>> rule = shipped_rule("contacts")
>>> sorted(rule.action_for("bank", "bank01").ties)
['guarantor', 'own_loan']
>>> rule.action_for("online_lender", "lend01").depth
1
>>> sorted(TIES["applicant"])
['applicant_sms_verified', 'applicant_unverified']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ..errors import SpilloverError
from ..facts.model import LoanStatus, PlatformKind
from ..files.toml import Boolean, Integer, parse_toml
from ..rules import ROLES, loan_kind, use_kind

__all__ = [
    "MAX_HOPS",
    "OWN_TIE",
    "SUBJECTS",
    "TIES",
    "TIE_KINDS",
    "Action",
    "ListingRule",
    "ListingRuleError",
    "load_rule",
    "parse_rule",
    "shipped_rule",
    "shipped_rule_names",
]

#: the deepest hop a rule may ask for (``depth`` <= 5 in a rule file)
MAX_HOPS = 5

#: the borrower's own loan (step kind ``own_loan``)
OWN_TIE: str = loan_kind(subject=True).name


def _use_kinds(role: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(use_kind(role, sms).name for sms in (False, True)))


#: every tie kind a rule can act on: the borrower, then each step kind a role's use takes
TIE_KINDS: tuple[str, ...] = (OWN_TIE, *dict.fromkeys(k for r in ROLES for k in _use_kinds(r)))

#: every name a rule file may give in ``ties``, and the tie kinds it stands for
TIES: Mapping[str, frozenset[str]] = {
    OWN_TIE: frozenset({OWN_TIE}),
    **{role: frozenset(_use_kinds(role)) for role in ROLES},
    **{kind: frozenset({kind}) for role in ROLES for kind in _use_kinds(role)},
}

#: what an entry names: the phone's owner on the listing day (the phone when the
#: subscriber is unknown), or the phone itself
SUBJECTS = ("owner", "phone")

_RULES_FOLDER = "listing_rules"
_PACKAGE = __name__.rpartition(".")[0]  # spillover
_DELINQUENT = (LoanStatus.OVERDUE, LoanStatus.DEFAULTED)


class ListingRuleError(SpilloverError):
    """A listing rule that cannot be read or is not valid."""


def _days_not_booleans(value: Any) -> Any:
    """``true`` is no number of days (pydantic alone would read it as 1)."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(v, bool) for v in items):
        raise ValueError("expected a number of days or [low, high], not a boolean")
    return value


Days = Annotated[int | tuple[int, int], BeforeValidator(_days_not_booleans)]


class _Action(BaseModel):
    """One ``[default]``, ``[kind.K]`` or ``[platform.P]`` table (every field optional
    but in ``[default]``, where a missing field takes the documented default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ties: tuple[str, ...] | None = None
    delay_days: Days | None = None
    depth: Integer | None = Field(default=None, ge=1, le=MAX_HOPS)
    act_on_shared: Boolean | None = None
    copy_delay_days: Days | None = None
    verified_only: Boolean | None = None
    subject: Literal["owner", "phone"] | None = None
    statuses: tuple[LoanStatus, ...] | None = None

    @field_validator("ties")
    @classmethod
    def _known_ties(cls, ties: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tie in ties or ():
            if tie not in TIES:
                raise ValueError(f"unknown tie {tie!r}; choose from {', '.join(TIES)}")
        return ties

    @field_validator("delay_days", "copy_delay_days")
    @classmethod
    def _days(cls, days: Days | None) -> Days | None:
        lo, hi = (days, days) if isinstance(days, int) else (days or (0, 0))
        if not 0 <= lo <= hi <= 3650:
            raise ValueError("days must be 0..3650, a range as [low, high] with low <= high")
        return days

    @field_validator("statuses")
    @classmethod
    def _delinquent(cls, statuses: tuple[LoanStatus, ...] | None) -> tuple[LoanStatus, ...] | None:
        for s in statuses or ():
            if s not in _DELINQUENT:
                raise ValueError(f"a rule lists on overdue or defaulted loans, not {s.value!r}")
        return statuses


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: _Header
    default: _Action = _Action()
    kind: dict[PlatformKind, _Action] = {}
    platform: dict[str, _Action] = {}


@dataclass(frozen=True, slots=True)
class Action:
    """What one platform does (a rule resolved for it): the tie kinds that lead to a
    listing (:data:`TIE_KINDS`), the listing delay (inclusive day range after the
    loan's ``status_at``), the depth, whether received entries are copied and after
    what delay, whether unverified ties are skipped, what an entry names, and the
    loan statuses that set it off."""

    ties: frozenset[str]
    delay_days: tuple[int, int]
    depth: int
    act_on_shared: bool
    copy_delay_days: tuple[int, int]
    verified_only: bool
    subject: str
    statuses: frozenset[LoanStatus]


_DEFAULT = Action(
    ties=frozenset({OWN_TIE}),
    delay_days=(1, 14),
    depth=1,
    act_on_shared=True,
    copy_delay_days=(0, 10),
    verified_only=False,
    subject="owner",
    statuses=frozenset(_DELINQUENT),
)


def _range(days: Days) -> tuple[int, int]:
    return (days, days) if isinstance(days, int) else (int(days[0]), int(days[1]))


def _apply(base: Action, over: _Action) -> Action:
    return Action(
        ties=(
            frozenset(k for t in over.ties for k in TIES[t]) if over.ties is not None else base.ties
        ),
        delay_days=_range(over.delay_days) if over.delay_days is not None else base.delay_days,
        depth=over.depth if over.depth is not None else base.depth,
        act_on_shared=over.act_on_shared if over.act_on_shared is not None else base.act_on_shared,
        copy_delay_days=(
            _range(over.copy_delay_days)
            if over.copy_delay_days is not None
            else base.copy_delay_days
        ),
        verified_only=over.verified_only if over.verified_only is not None else base.verified_only,
        subject=over.subject if over.subject is not None else base.subject,
        statuses=frozenset(over.statuses) if over.statuses is not None else base.statuses,
    )


@dataclass(frozen=True, slots=True)
class ListingRule:
    """A validated listing rule: its name, text, where it came from, the action of
    ``[default]``, the actions by platform kind (merged over the default) and the
    per-platform tables (merged over the platform's kind when asked for)."""

    name: str
    description: str
    source: str
    default: Action
    kinds: Mapping[str, Action]
    platforms: Mapping[str, _Action]

    def action_for(self, kind: str, platform_id: str) -> Action:
        """What platform ``platform_id`` of kind ``kind`` does: its own table over its
        kind's action, else its kind's, else the default."""
        base = self.kinds.get(kind, self.default)
        over = self.platforms.get(platform_id)
        return base if over is None else _apply(base, over)


def parse_rule(raw: bytes, source: str = "<rule>") -> ListingRule:
    """A listing rule from the bytes of its TOML file (refused with
    :class:`ListingRuleError` naming the field when not valid).

    >>> sorted(parse_rule(b'[rule]\\nname = "x"\\n[default]\\nties = ["reference"]').default.ties)
    ['reference']
    """
    data: dict[str, Any] = parse_toml(raw, source, ListingRuleError, "not a TOML file")
    try:
        parsed = _RuleFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ListingRuleError(f"{source}: {where}: {err['msg']}") from None
    default = _apply(_DEFAULT, parsed.default)
    return ListingRule(
        parsed.rule.name,
        parsed.rule.description,
        source,
        default,
        {k.value: _apply(default, a) for k, a in parsed.kind.items()},
        dict(parsed.platform),
    )


def shipped_rule_names() -> list[str]:
    """The names of the rules that ship with spillover, sorted.

    >>> "contacts" in shipped_rule_names()
    True
    """
    folder = resources.files(_PACKAGE).joinpath(_RULES_FOLDER)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped_rule(name: str) -> ListingRule:
    """A rule that ships with spillover, by name."""
    if name not in shipped_rule_names():
        raise ListingRuleError(
            f"no listing rule {name!r}; shipped: {', '.join(shipped_rule_names())} "
            "(or give a path to a .toml file)"
        )
    raw = resources.files(_PACKAGE).joinpath(f"{_RULES_FOLDER}/{name}.toml").read_bytes()
    return parse_rule(raw, f"{name}.toml")


def load_rule(name_or_path: str | Path) -> ListingRule:
    """A shipped rule by name, or a rule file by path (anything ending in ``.toml``
    or naming an existing file)."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ListingRuleError(f"{text}: cannot read the rule file: {exc.strerror}") from None
        return parse_rule(raw, text)
    return shipped_rule(text)
