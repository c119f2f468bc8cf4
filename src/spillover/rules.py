"""The rules of spillover in one place: every kind of step, its factor, code and date rule.

Every engine that explains or scores a blacklisting (the per-entry search in
:mod:`spillover.engines.search`, the batch pass in :mod:`spillover.engines.batch`, the Neo4j
queries' parameters) and every renderer (:mod:`spillover.render.text`,
:mod:`spillover.render.json`) takes from here:

* :data:`ROLES`: how a phone can be named on a loan (the applicant's number, or a
  link role): the data value, the stored relationship, the explanation step's name;
* :data:`STEP_KINDS`: every kind of step on an explanation path: its relationship
  name, its factor key in the scoring policy (``None``: factor 1, the step relays
  knowledge, not responsibility), its reason code, the day it carries, its text;
* small pure functions that choose a step kind (:func:`use_kind`, :func:`owns_kind`,
  :func:`subject_phone_kind`, :func:`loan_kind`), give its factor
  (:func:`factor`), order reason codes (:func:`reason_codes`) and turn a
  responsibility into a contamination and a :class:`Verdict` (:func:`score`).

Adding a tie kind or a reason code is a change here (and a factor in the policy
file); ``docs/architecture.md`` says how a new engine plugs in.

>>> from spillover.policy import default_policy
>>> p = default_policy()
>>> k = use_kind("emergency_contact", sms_verified=None)
>>> k.rel_for("emergency_contact"), k.factor_key, k.code, factor(p, k)
('EMERGENCY_CONTACT_OF', 'emergency_contact', 'EMERGENCY_CONTACT', 0.05)
>>> score(0.05, p)
Score(responsibility=0.05, contamination=0.95, verdict=<Verdict.SPILLOVER: 'spillover'>)
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol

from .facts.model import APPLICANT, MATCH_FIELDS, LinkRole, MatchKey

__all__ = [
    "APPLICANT",
    "CHAIN_STEP",
    "COPY_STEP",
    "DEFAULT_POLICY_FILE",
    "DIAGNOSIS_CODES",
    "FACTOR_KEYS",
    "FINDINGS",
    "IGNORES_DATES",
    "LISTING_STEP",
    "MATCHED_TO",
    "MATCH_FACTOR_DEFAULTS",
    "MATCH_FIELDS",
    "MATCH_KINDS",
    "MATCH_TEXTS",
    "NO_PATH",
    "NO_ROUTE",
    "NO_TIE",
    "ORIGIN_STEP",
    "REASONS",
    "ROLES",
    "ROUND",
    "SHARING_STEP",
    "STEP_KINDS",
    "TIE_KINDS",
    "UNRESOLVED_RECORD",
    "UNVERIFIED_TIE_CODES",
    "FindingKind",
    "MatchKey",
    "PolicyNumbers",
    "Recommendation",
    "Role",
    "Score",
    "StepKind",
    "Verdict",
    "factor",
    "kind_of",
    "loan_in_time",
    "loan_kind",
    "match_key",
    "match_kind",
    "owns_kind",
    "reason_codes",
    "recommendation",
    "relay_day",
    "role_of",
    "rounded",
    "score",
    "subject_phone_kind",
    "unverified_tie",
    "use_kind",
    "vocabulary_markdown",
]

#: decimals of every responsibility and contamination written out
ROUND = 6


class Verdict(StrEnum):
    """What a contamination means; the values are the JSON and CSV ``verdict`` strings."""

    OWN_CONDUCT = "own_conduct"
    SPILLOVER = "spillover"
    UNEXPLAINED = "unexplained"


# ---------------------------------------------------------------------------
# Stored relationships: the graph stores' names (Neo4j types, embedded graph keys)
# ---------------------------------------------------------------------------

#: person -> phone, one per owner period (``since``, ``until``, ``verified``)
OWNS = "OWNS"
#: person -> loan
BORROWED = "BORROWED"
#: loan -> platform
AT = "AT"
#: loan -> phone, the applicant's number (``verified``)
APPLIED_WITH = "APPLIED_WITH"
#: loan -> phone, a link (``role``)
LINKS = "LINKS"
#: entry -> platform
ON = "ON"
#: entry -> person or phone
LISTS = "LISTS"
#: entry -> the entry it was copied from
COPIED_FROM = "COPIED_FROM"
#: platform -> platform (``since``)
SHARES_WITH = "SHARES_WITH"
#: record -> person, the record's identity (``matched_by``, ``match_probability``, ...)
MATCHED_TO = "MATCHED_TO"
#: record -> platform, the platform that holds the record
HELD_BY = "HELD_BY"

# ---------------------------------------------------------------------------
# Roles: how a phone is named on a loan
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Role:
    """How a loan names a phone.

    ``name`` is the value in the data (``loan_links.role``, or ``applicant`` for
    ``loans.applicant_phone``); ``rel`` the name of the explanation step
    ``phone -> loan``; ``stored_as`` the relationship ``loan -> phone`` in the
    graph stores (Neo4j type, and the key of the embedded graph's edge), which for a
    link carries the role as its ``role`` property; ``text`` how a sentence says it.
    """

    name: str
    rel: str
    stored_as: str
    text: str
    #: how a sentence says it when the phone was the borrower's own number
    own_text: str


ROLES: Mapping[str, Role] = {
    r.name: r
    for r in (
        Role(
            APPLICANT,
            "APPLICANT_PHONE_OF",
            APPLIED_WITH,
            "was given as the applicant's phone for",
            "was the borrower's own number on",
        ),
        *(
            Role(role.value, rel, LINKS, text, text)
            for role, rel, text in (
                (LinkRole.GUARANTOR, "GUARANTOR_OF", "is the guarantor on"),
                (LinkRole.EMERGENCY_CONTACT, "EMERGENCY_CONTACT_OF", "is an emergency contact on"),
                (LinkRole.REFERENCE, "REFERENCE_OF", "is a reference on"),
                (
                    LinkRole.ADDRESS_BOOK,
                    "IN_ADDRESS_BOOK_OF",
                    "was in the uploaded address book of",
                ),
            )
        ),
    )
}

_ROLE_BY_REL = {r.rel: r for r in ROLES.values()}


def role_of(rel: str) -> Role | None:
    """The role whose explanation steps are named ``rel`` (None: not a role's step)."""
    return _ROLE_BY_REL.get(rel)


# ---------------------------------------------------------------------------------------------
# Identity linkage: how a platform record was resolved to a person (docs/contract.md §1,
# the ``matched_by`` column of the ``matches`` table). The step kinds, factors and reason
# codes of the match step build on these keys (:class:`spillover.facts.model.MatchKey`, the data
# values, and :data:`spillover.facts.model.MATCH_FIELDS` are imported above and named here too).


def match_key(agreed: Iterable[str]) -> MatchKey:
    """Name the evidence of a match from the fields that agreed (exactly or closely).

    An ID number outweighs everything; a name counts with a second field; a phone
    without a name is the weakest tie a platform acts on (docs/contract.md §1).

    >>> match_key(["phone"])
    <MatchKey.PHONE_ONLY: 'phone_only'>
    >>> match_key({"name", "phone", "city"})
    <MatchKey.NAME_AND_PHONE: 'name_and_phone'>
    >>> match_key(["id_number", "phone"]).value
    'id_number'
    >>> match_key([])
    <MatchKey.OTHER: 'other'>
    """
    fields = set(agreed)
    unknown = fields - set(MATCH_FIELDS)
    if unknown:
        raise ValueError(f"not a match field: {sorted(unknown)[0]!r}")
    if "id_number" in fields:
        return MatchKey.ID_NUMBER
    if "name" in fields:
        for other, key in (
            ("phone", MatchKey.NAME_AND_PHONE),
            ("birth_date", MatchKey.NAME_AND_BIRTH_DATE),
            ("city", MatchKey.NAME_AND_CITY),
        ):
            if other in fields:
                return key
        return MatchKey.NAME_ONLY
    if "phone" in fields:
        return MatchKey.PHONE_ONLY
    return MatchKey.OTHER


#: how a sentence names the evidence of each match key (``... matched to Jiang by ...``)
MATCH_TEXTS: Mapping[MatchKey, str] = {
    MatchKey.KNOWN: "the data (the record names its person)",
    MatchKey.ID_NUMBER: "the ID number",
    MatchKey.NAME_AND_PHONE: "name and phone number",
    MatchKey.NAME_AND_BIRTH_DATE: "name and birth date",
    MatchKey.NAME_AND_CITY: "name and city",
    MatchKey.PHONE_ONLY: "the phone number alone",
    MatchKey.NAME_ONLY: "the name alone",
    MatchKey.OTHER: "weak evidence (no name, ID number or phone agreed)",
    MatchKey.NEW_IDENTITY: "no other record (the record is a person of its own)",
}

#: the packaged default policy, in the package folder (read by :mod:`spillover.policy`)
DEFAULT_POLICY_FILE = "policies/default.toml"


def _packaged_match_factors() -> dict[str, float]:
    """The match factors of the packaged default policy, one per :class:`MatchKey`: the
    file is where their values are written (once)."""
    raw = resources.files("spillover").joinpath(DEFAULT_POLICY_FILE).read_bytes()
    factors = tomllib.loads(raw.decode("utf-8"))["factors"]
    return {f"match_{k.value}": float(factors[f"match_{k.value}"]) for k in MatchKey}


#: the factor of a match step when a policy file does not set it (docs/scoring.md
#: justifies each value): the values of the default policy file
MATCH_FACTOR_DEFAULTS: Mapping[str, float] = _packaged_match_factors()


# ---------------------------------------------------------------------------
# Step kinds
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepKind:
    """One kind of step on an explanation path.

    - ``name``: the kind's name (for a tie, the factor key it is scored with, where
      that is one-to-one);
    - ``rel``: the step's relationship name in explanations (``None``: the name of the
      role the phone plays on the loan, :data:`ROLES`);
    - ``factor_key``: the factor in the policy's ``[factors]``; ``None``: factor 1.0
      (relaying a listing moves knowledge, not responsibility);
    - ``code``: the reason code the step contributes, if any (:data:`REASONS`);
    - ``at``: the day the step carries (its date rule);
    - ``follows``: the stored relationship(s) the step walks;
    - ``text``: the step as a sentence, with ``{src}``, ``{dst}``, ``{at}``, ``{role}``
      (the role's text), ``{own_role}`` (the role's text for the borrower's own number),
      and for the origin ``{amount}`` and ``{status}``.
    """

    name: str
    rel: str | None
    factor_key: str | None
    code: str | None
    at: str
    follows: str
    text: str

    def rel_for(self, role: str | None = None) -> str:
        """The step's relationship name (the role's, for a step ``phone -> loan``)."""
        if self.rel is not None:
            return self.rel
        if role is None:
            raise ValueError(f"step kind {self.name} takes its name from a role")
        return ROLES[role].rel


_ROLE_AT = "the loan's applied_at, no later than the listing"
_PHONE_USE = "{src} {role} {dst}, applied {at}"

_KINDS = (
    # --- ties: subject -> origin loan ------------------------------------------------
    StepKind(
        "own_loan",
        "BORROWED",
        "own_loan",
        "OWN_DEFAULT",
        _ROLE_AT,
        f"{BORROWED} (person -> loan)",
        "{src} borrowed {dst}, applied {at}",
    ),
    StepKind(
        "chained_loan",  # a loan of a borrower the chain reached: no code of its own
        "BORROWED",
        "own_loan",
        None,
        _ROLE_AT,
        f"{BORROWED} (person -> loan)",
        "{src} borrowed {dst}, applied {at}",
    ),
    StepKind(
        "owns_verified",
        "OWNS",
        "owns_verified",
        None,
        "the owner period's since; the period covers the loan's applied_at",
        f"{OWNS} (person -> phone)",
        "{src} owns phone {dst} (since {at}, real-name verified)",
    ),
    StepKind(
        "owns_unverified",
        "OWNS",
        "owns_unverified",
        "OWNER_UNVERIFIED",
        "the owner period's since; the period covers the loan's applied_at",
        f"{OWNS} (person -> phone)",
        "{src} owns phone {dst} (since {at}, not real-name verified)",
    ),
    StepKind(
        "own_phone",
        None,
        "own_phone",
        "OWN_PHONE",
        _ROLE_AT + "; the borrower owned the phone that day",
        f"{APPLIED_WITH} or {LINKS} (loan -> phone)",
        "{src} {own_role} {dst}, applied {at}",
    ),
    StepKind(
        "reassigned_phone",
        None,
        "reassigned_phone",
        "PHONE_REASSIGNED",
        _ROLE_AT + "; another known owner on the listing day",
        f"{APPLIED_WITH} or {LINKS} (loan -> phone)",
        "{src} {own_role} {dst}, applied {at}",
    ),
    StepKind(
        "applicant_sms_verified",
        "APPLICANT_PHONE_OF",
        "applicant_sms_verified",
        "PHONE_USED_SMS_VERIFIED",
        _ROLE_AT,
        f"{APPLIED_WITH} (loan -> phone)",
        "{src} was given as the applicant's phone for {dst}, applied {at} (SMS-verified)",
    ),
    StepKind(
        "applicant_unverified",
        "APPLICANT_PHONE_OF",
        "applicant_unverified",
        "PHONE_USED_UNVERIFIED",
        _ROLE_AT,
        f"{APPLIED_WITH} (loan -> phone)",
        "{src} was given as the applicant's phone for {dst}, applied {at} (no SMS check)",
    ),
    *(
        StepKind(
            role,
            ROLES[role].rel,
            role,
            role.upper(),
            _ROLE_AT,
            f"{LINKS} {{role: '{role}'}} (loan -> phone)",
            _PHONE_USE,
        )
        for role in ROLES
        if role != APPLICANT
    ),
    StepKind(
        "borrower_of_linked_loan",
        "BORROWED_BY",
        "borrower_of_linked_loan",
        "CHAIN_VIA_BORROWER",
        "none (no date)",
        f"{BORROWED} (loan <- person)",
        "{src} was borrowed by {dst}, whose other loans follow",
    ),
    # --- reach: origin loan -> listing (factor 1) --------------------------------------
    StepKind(
        "origin",
        "AT",
        None,
        None,
        "the loan's known_at (status_at, else applied_at); it must reach a target in time",
        f"{AT} (loan -> platform)",
        "{src}{amount} is {status} at {dst} since {at}",
    ),
    StepKind(
        "sharing",
        "SHARES_WITH",
        None,
        "SHARED_BLACKLIST",
        "max(day known at the sharing platform, the agreement's since)",
        f"{SHARES_WITH} (platform -> platform)",
        "{src} passed its blacklist to {dst} ({at})",
    ),
    StepKind(
        "listing",
        "LISTED",
        None,
        None,
        "the entry's listed_at",
        f"{ON} (entry -> platform)",
        "{src} listed the subject as {dst} on {at}",
    ),
    StepKind(
        "copy",
        "COPIED_TO",
        None,
        "COPIED_ENTRY",
        "the copy's listed_at (a copy counts when no earlier than what it copies)",
        f"{COPIED_FROM} (entry -> entry, walked backwards)",
        "{src} was copied into {dst} on {at}",
    ),
)

#: the match steps: a platform record resolved to a person, one kind per match key
#: (docs/contract.md §1 ``matches``); walked record -> person when an entry lists a
#: record, person -> record on the way to a loan that names its borrower by a record
MATCH_KINDS: Mapping[MatchKey, StepKind] = {
    k: StepKind(
        f"match_{k.value}",
        MATCHED_TO,
        f"match_{k.value}",
        f"MATCHED_BY_{k.value.upper()}",
        "none (no date): the record's match",
        f"{MATCHED_TO} (record -> person)",
        "{src} was matched to {dst} by " + MATCH_TEXTS[k],
    )
    for k in MatchKey
}
_KINDS = (*_KINDS, *MATCH_KINDS.values())

#: every step kind, by name
STEP_KINDS: Mapping[str, StepKind] = {k.name: k for k in _KINDS}

#: the step from a linked loan to its borrower, and the steps of the reach
CHAIN_STEP = STEP_KINDS["borrower_of_linked_loan"]
ORIGIN_STEP = STEP_KINDS["origin"]
SHARING_STEP = STEP_KINDS["sharing"]
LISTING_STEP = STEP_KINDS["listing"]
COPY_STEP = STEP_KINDS["copy"]
_REACH = (ORIGIN_STEP, SHARING_STEP, LISTING_STEP, COPY_STEP)

#: the kinds a tie (subject -> origin loan) is made of, in a fixed order (engines
#: that work on integer codes use the index in this tuple)
TIE_KINDS: tuple[StepKind, ...] = tuple(
    k for k in _KINDS if k not in _REACH and k not in MATCH_KINDS.values()
)

#: every factor key a policy sets, in the policy file's order
FACTOR_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(k.factor_key for k in _KINDS if k.factor_key is not None)
)

_BY_CODE = {k.code: k for k in _KINDS if k.code is not None}
_BY_REL = {k.rel: k for k in _KINDS if k.code is None and k.rel is not None}


def kind_of(rel: str, code: str | None) -> StepKind:
    """The kind of a step with relationship ``rel`` and reason code ``code``.

    >>> kind_of("OWNS", None).name, kind_of("GUARANTOR_OF", "OWN_PHONE").name
    ('owns_verified', 'own_phone')
    """
    kind = _BY_CODE.get(code) if code is not None else _BY_REL.get(rel)
    if kind is None:
        raise KeyError(f"no step kind for {rel} with code {code}")
    return kind


class PolicyNumbers(Protocol):
    """The numbers of a scoring policy that the rules read (:class:`spillover.policy.Policy`
    has them; the rules do not import the policy, which is built on them)."""

    @property
    def factors(self) -> Mapping[str, float]:
        """Each factor key (:data:`FACTOR_KEYS`) and its factor."""
        ...

    @property
    def spillover_at(self) -> float:
        """``spillover`` from this contamination on."""
        ...

    @property
    def review_at(self) -> float:
        """The check's ``review`` from this contamination on."""
        ...

    @property
    def do_not_list_at(self) -> float:
        """The check's ``do_not_list`` from this contamination on."""
        ...


def factor(policy: PolicyNumbers, kind: StepKind) -> float:
    """The factor of a step of ``kind`` under ``policy`` (1.0 for a step that relays).

    >>> from spillover.policy import default_policy
    >>> factor(default_policy(), use_kind("guarantor", None)), factor(default_policy(), SHARING_STEP)
    (0.8, 1.0)
    """
    return 1.0 if kind.factor_key is None else policy.factors[kind.factor_key]


def loan_kind(*, subject: bool) -> StepKind:
    """``person -BORROWED-> loan``: the subject's own loan, or a loan the chain reached."""
    return STEP_KINDS["own_loan" if subject else "chained_loan"]


def owns_kind(verified: bool) -> StepKind:
    """``person -OWNS-> phone``, real-name verified or not."""
    return STEP_KINDS["owns_verified" if verified else "owns_unverified"]


def match_kind(matched_by: str | MatchKey) -> StepKind:
    """The step from a platform record to the person it was matched to (``matched_by``).

    >>> k = match_kind("phone_only")
    >>> k.rel, k.factor_key, k.code
    ('MATCHED_TO', 'match_phone_only', 'MATCHED_BY_PHONE_ONLY')
    """
    return MATCH_KINDS[MatchKey(matched_by)]


def use_kind(role: str, sms_verified: bool | None) -> StepKind:
    """``phone -ROLE-> loan`` where the phone is not the borrower's own number.

    ``sms_verified`` is the loan's ``phone_verified`` (it matters for the applicant
    role only; missing counts as not verified).
    """
    if role == APPLICANT:
        return STEP_KINDS["applicant_sms_verified" if sms_verified else "applicant_unverified"]
    return STEP_KINDS[role]


def subject_phone_kind(
    role: str, sms_verified: bool | None, *, borrower_owned: bool, owner_changed: bool
) -> StepKind:
    """``phone -ROLE-> loan`` from a phone subject.

    ``borrower_owned``: the loan's borrower owned the phone on the application day;
    ``owner_changed``: the phone has another known owner on the listing day.
    """
    if borrower_owned:
        return STEP_KINDS["reassigned_phone" if owner_changed else "own_phone"]
    return use_kind(role, sms_verified)


def loan_in_time(applied_at: Any, until: Any) -> Any:
    """A loan belongs on a path for a listing on ``until`` when applied for by then
    (works on dates, and elementwise on arrays of day numbers)."""
    return applied_at <= until


def relay_day(known: Any, since: Any) -> Any:
    """The day a default known on ``known`` arrives over a sharing agreement in force
    from ``since`` (None: always).

    >>> from datetime import date
    >>> relay_day(date(2023, 8, 20), date(2024, 1, 1)), relay_day(date(2023, 8, 20), None)
    (datetime.date(2024, 1, 1), datetime.date(2023, 8, 20))
    """
    return known if since is None else max(known, since)


def vocabulary_markdown() -> str:
    """The tables of roles and step kinds as Markdown: one name per thing, and how the
    explanation steps map onto the stored relationships (``docs/architecture.md``
    holds this text; a test keeps the two equal)."""
    lines = [
        "| role (data value) | explanation step | stored relationship (Neo4j and embedded graph) |",
        "|---|---|---|",
    ]
    for r in ROLES.values():
        stored = f"`{r.stored_as}`" if r.stored_as != LINKS else f"`{LINKS} {{role: '{r.name}'}}`"
        lines.append(f"| `{r.name}` | `{r.rel}` | loan -> phone {stored} |")
    lines += [
        "",
        "| step kind | explanation step | walks | factor key | reason code | day the step carries |",
        "|---|---|---|---|---|---|",
    ]
    for k in _KINDS:
        rel = f"`{k.rel}`" if k.rel else "the role's"
        key = f"`{k.factor_key}`" if k.factor_key else "1 (relays knowledge)"
        code = f"`{k.code}`" if k.code else ""
        lines.append(f"| `{k.name}` | {rel} | {k.follows} | {key} | {code} | {k.at} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Reason codes
# ---------------------------------------------------------------------------

#: the code of an entry with no time-respecting path; a diagnosis code follows it
NO_PATH = "NO_TIME_RESPECTING_PATH"
#: why no path explains an entry (``spillover explain`` adds one of these after NO_PATH):
#: a tie exists only by ignoring dates; ties to defaults, none on a platform that
#: reaches the listing; no tie to any default at all
IGNORES_DATES, NO_ROUTE, NO_TIE = "PATH_IGNORES_DATES", "NO_PLATFORM_ROUTE", "NO_TIE_TO_ANY_DEFAULT"
#: why an entry on a platform record has no path: the record has no person (no
#: ``records.person_id``, no ``matches`` row)
UNRESOLVED_RECORD = "RECORD_NOT_RESOLVED"
DIAGNOSIS_CODES = (IGNORES_DATES, NO_ROUTE, NO_TIE, UNRESOLVED_RECORD)

#: every reason code with its one-line text. Codes are part of the output contract:
#: never rename one; add new ones.
REASONS: Mapping[str, str] = {
    "OWN_DEFAULT": "The subject's own loan is overdue or defaulted.",
    "OWN_PHONE": "The listed phone was the borrower's own number when the loan was taken.",
    "PHONE_REASSIGNED": "The listed number was the borrower's then, but has another owner at the listing.",
    "PHONE_USED_SMS_VERIFIED": "Another person applied with the subject's phone and passed an SMS check.",
    "PHONE_USED_UNVERIFIED": "Another person applied with the subject's phone without SMS verification.",
    "GUARANTOR": "The subject's phone stands as guarantor on the loan: a guarantee responsibility.",
    "EMERGENCY_CONTACT": "The subject's phone is only an emergency contact on another person's loan.",
    "REFERENCE": "The subject's phone is only a reference on another person's loan.",
    "ADDRESS_BOOK": "The subject's phone was only in another borrower's uploaded address book.",
    "OWNER_UNVERIFIED": "The subject's ownership of the phone is not real-name verified.",
    "CHAIN_VIA_BORROWER": "The tie runs through another borrower's loans.",
    "SHARED_BLACKLIST": "The listing reached this platform through blacklist sharing.",
    "COPIED_ENTRY": "The entry was copied from another platform's entry.",
    "MATCHED_BY_KNOWN": "A platform record on the path is the person by the data itself.",
    "MATCHED_BY_ID_NUMBER": "A platform record on the path was matched to the person by ID number.",
    "MATCHED_BY_NAME_AND_PHONE": "A platform record was matched to the person by name and phone.",
    "MATCHED_BY_NAME_AND_BIRTH_DATE": "A platform record was matched to the person by name and birth date.",
    "MATCHED_BY_NAME_AND_CITY": "A platform record was matched to the person by name and city only.",
    "MATCHED_BY_PHONE_ONLY": "A platform record was matched to the person by phone number alone: weak evidence that it is them.",
    "MATCHED_BY_NAME_ONLY": "A platform record was matched to the person by name alone.",
    "MATCHED_BY_OTHER": "A platform record was matched to the person on weak evidence (no name, ID number or phone agreed).",
    "MATCHED_BY_NEW_IDENTITY": "A platform record matched no other and stands as a person of its own.",
    UNRESOLVED_RECORD: "The listed platform record was never resolved to a person.",
    NO_PATH: "No record ties the subject to a default that reached this platform in time.",
    IGNORES_DATES: "A tie exists only by ignoring dates (listed before the default or the sharing).",
    NO_ROUTE: "The subject is tied to defaults, but none on a platform that reaches this one.",
    NO_TIE: "No record ties the subject to any overdue or defaulted loan.",
}


def reason_codes(codes: Iterable[str | None]) -> tuple[str, ...]:
    """The reason codes of a path: its steps' codes in step order, each once.

    >>> reason_codes(["EMERGENCY_CONTACT", None, "SHARED_BLACKLIST", "SHARED_BLACKLIST"])
    ('EMERGENCY_CONTACT', 'SHARED_BLACKLIST')
    """
    return tuple(dict.fromkeys(c for c in codes if c))


# ---------------------------------------------------------------------------
# The score
# ---------------------------------------------------------------------------


def rounded(value: float) -> float:
    """A responsibility or contamination as written out (:data:`ROUND` decimals)."""
    return round(value, ROUND)


@dataclass(frozen=True, slots=True)
class Score:
    """The best path's responsibility (None: no path), the contamination and the verdict."""

    responsibility: float | None
    contamination: float
    verdict: Verdict


def score(responsibility: float | None, policy: PolicyNumbers) -> Score:
    """Score a listing from its best path's responsibility (None when no path explains it).

    ``contamination = 1 - responsibility`` (both rounded), 1 when unexplained;
    ``spillover`` from the policy's ``spillover_at`` on, else ``own_conduct``.

    >>> from spillover.policy import default_policy
    >>> score(1.0, default_policy())
    Score(responsibility=1.0, contamination=0.0, verdict=<Verdict.OWN_CONDUCT: 'own_conduct'>)
    >>> score(0.3, default_policy()).verdict, score(None, default_policy()).contamination
    (<Verdict.SPILLOVER: 'spillover'>, 1.0)
    """
    if responsibility is None:
        return Score(None, 1.0, Verdict.UNEXPLAINED)
    r = rounded(responsibility)
    contamination = rounded(1.0 - r)
    verdict = Verdict.SPILLOVER if contamination >= policy.spillover_at else Verdict.OWN_CONDUCT
    return Score(r, contamination, verdict)


class Recommendation(StrEnum):
    """The pre-blacklist check's answer; the values are the JSON ``recommendation`` strings."""

    LIST = "list"
    REVIEW = "review"
    DO_NOT_LIST = "do_not_list"


def recommendation(contamination: float, policy: PolicyNumbers) -> Recommendation:
    """What to do with a proposed listing of this contamination, by the policy's
    ``[recommendation]`` thresholds (``review_at`` <= ``do_not_list_at``).

    >>> from spillover.policy import default_policy
    >>> [recommendation(c, default_policy()).value for c in (0.0, 0.3, 0.5, 1.0)]
    ['list', 'review', 'do_not_list', 'do_not_list']
    """
    if contamination >= policy.do_not_list_at:
        return Recommendation.DO_NOT_LIST
    if contamination >= policy.review_at:
        return Recommendation.REVIEW
    return Recommendation.LIST


# ---------------------------------------------------------------------------
# Red flags (spillover findings)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingKind:
    """One kind of red flag ``spillover findings`` reports: a stable ``code`` (part of
    the output contract: never renamed), a short ``title``, what it means (``text``),
    the saved Cypher query that finds it on Neo4j (``query``, in
    ``cypher/investigate/``; None: computed from the audit's verdicts on every backend)."""

    code: str
    title: str
    text: str
    query: str | None


#: every kind of finding, in report order
FINDINGS: Mapping[str, FindingKind] = {
    f.code: f
    for f in (
        FindingKind(
            "APPLICANT_PHONE_OF_ANOTHER",
            "phone used by someone who is not its owner, without SMS check",
            "A borrower gave as their own number a phone that belonged to another person on "
            "the application day, and no SMS check was made: the owner bears the consequences.",
            "unverified_applicant_phone",
        ),
        FindingKind(
            "CONTACT_HUB",
            "phone named as a contact by many unrelated borrowers",
            "A phone is named as a contact (emergency contact, reference, guarantor, address "
            "book) on the loans of many borrowers who never owned it.",
            "shared_phone_hubs",
        ),
        FindingKind(
            "LISTED_ONLY_UNVERIFIED",
            "person listed only through ties they did not verify",
            "A listed person with no overdue or defaulted loan of their own, whose every tie "
            "to another person's overdue or defaulted loan is one they did not verify "
            "(unverified ownership, unverified applicant use, an address-book upload).",
            "listed_only_unverified",
        ),
        FindingKind(
            "MOSTLY_SPILLOVER_PLATFORM",
            "platform whose listings are mostly spillover",
            "More than the given share of a platform's listings are spillover (the audit's "
            "verdicts under the policy).",
            None,
        ),
        FindingKind(
            "COPY_AFTER_REPAID",
            "copy that travelled after the origin loan was repaid",
            "A copied listing made after every loan tying the first listing's subject to its "
            "platform had been repaid.",
            "copies_after_repaid",
        ),
        FindingKind(
            "PHONE_ONLY_RECORD_LINK",
            "records on different platforms joined by a phone number alone",
            "Two platform records on different platforms share a phone number but neither "
            "a name nor an ID number (the Xu Yan pattern): a platform that matches on the "
            "phone alone takes one person's record for the other's.",
            "phone_only_record_links",
        ),
        FindingKind(
            "CLUSTER_WITHOUT_ID_NUMBER",
            "person whose matched records never share an ID number",
            "The records resolved to one person (records.person_id or matches) include two "
            "that share no ID number: at least one of them has none, or they differ, so the "
            "cluster rests on weaker evidence (phone, name).",
            "clusters_without_id_number",
        ),
        FindingKind(
            "PHONE_FANOUT",
            "phone number on the records of many people",
            "A phone number appears on platform records of many different names or ID "
            "numbers: a matching on that phone joins strangers.",
            "record_phone_fanout",
        ),
    )
}

#: the reason codes of the tie steps a subject did not verify
UNVERIFIED_TIE_CODES: tuple[str, ...] = tuple(
    c
    for c in (
        owns_kind(False).code,
        use_kind(APPLICANT, False).code,
        use_kind("address_book", None).code,
    )
    if c is not None
)


def unverified_tie(owner_verified: bool, role: str, sms_verified: bool | None) -> bool:
    """Whether a tie (the subject owns a phone that a loan names in ``role``) is one the
    subject did not verify: its ownership step or its use step carries one of
    :data:`UNVERIFIED_TIE_CODES`."""
    return (
        owns_kind(owner_verified).code in UNVERIFIED_TIE_CODES
        or use_kind(role, sms_verified).code in UNVERIFIED_TIE_CODES
    )
