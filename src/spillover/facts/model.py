"""The graph facts as small frozen dataclasses, shared by every backend and the core.

Node references are strings ``KIND:ID`` (docs/contract.md §2): ``person:jiang``,
``phone:+8613800000001``, ``loan:L1``, ``platform:quickcash``, ``entry:E7``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

__all__ = [
    "APPLICANT",
    "MATCH_FIELDS",
    "Dataset",
    "Entry",
    "FrontierFacts",
    "LinkRole",
    "Loan",
    "LoanLink",
    "LoanStatus",
    "Match",
    "MatchKey",
    "MatchLevel",
    "Person",
    "PhonePeriod",
    "PhoneUse",
    "Platform",
    "PlatformKind",
    "Record",
    "Sharing",
    "SubjectKind",
    "Surroundings",
    "match_from",
    "match_props",
    "record_name",
    "ref",
    "split_ref",
]


class PlatformKind(StrEnum):
    """What a platform is (``platforms.kind``)."""

    BANK = "bank"
    ONLINE_LENDER = "online_lender"
    DATA_BROKER = "data_broker"
    OTHER = "other"


class LoanStatus(StrEnum):
    """The state of a loan (``loans.status``)."""

    CURRENT = "current"
    REPAID = "repaid"
    OVERDUE = "overdue"
    DEFAULTED = "defaulted"


class LinkRole(StrEnum):
    """How a loan names a phone other than the applicant's (``loan_links.role``)."""

    EMERGENCY_CONTACT = "emergency_contact"
    REFERENCE = "reference"
    ADDRESS_BOOK = "address_book"
    GUARANTOR = "guarantor"


#: the role of a phone given as the applicant's own number (``loans.applicant_phone``);
#: the other roles are :class:`LinkRole` (their meaning: :data:`spillover.rules.ROLES`)
APPLICANT = "applicant"


class SubjectKind(StrEnum):
    """What a blacklist entry lists: a person, a phone number or a platform record
    (``blacklist.subject_kind``)."""

    PERSON = "person"
    PHONE = "phone"
    RECORD = "record"


def ref(kind: str, ident: str) -> str:
    """The node reference ``KIND:ID``.

    >>> ref("person", "jiang")
    'person:jiang'
    """
    return f"{kind}:{ident}"


def split_ref(node: str) -> tuple[str, str]:
    """The kind and the id of a node reference (the id may hold more colons).

    >>> split_ref("person:jiang")
    ('person', 'jiang')
    >>> split_ref("loan:L:7")
    ('loan', 'L:7')
    """
    kind, _, ident = node.partition(":")
    return kind, ident


@dataclass(frozen=True, slots=True)
class Person:
    """A person (``people``); ``id_number`` is the resident identity number, if known."""

    person_id: str
    name: str
    id_number: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class Platform:
    """A lender, bank, data broker or other platform (``platforms``)."""

    platform_id: str
    name: str
    kind: PlatformKind = PlatformKind.OTHER


@dataclass(frozen=True, slots=True)
class PhonePeriod:
    """One owner period of a phone number. ``owner_id`` None: the subscriber is unknown."""

    phone: str
    owner_id: str | None
    verified: bool = False
    since: date | None = None
    until: date | None = None

    def covers(self, day: date) -> bool:
        """Whether ``day`` falls in the period (both ends inclusive, a missing end open)."""
        return (self.since is None or self.since <= day) and (
            self.until is None or day <= self.until
        )


@dataclass(frozen=True, slots=True)
class Loan:
    """A loan application (``loans``), with the applicant's phone and its status."""

    loan_id: str
    platform_id: str
    borrower_id: str
    applied_at: date
    status: LoanStatus
    applicant_phone: str | None = None
    phone_verified: bool | None = None
    amount: float | None = None
    status_at: date | None = None
    #: the platform record the loan names its borrower by (``loans.borrower_record``);
    #: ``borrower_id`` is then the record's resolved person
    borrower_record: str | None = None
    #: how that record was resolved to ``borrower_id`` (a :class:`MatchKey` value)
    matched_by: str | None = None

    @property
    def known_at(self) -> date:
        """The day the loan reached its status (``status_at``, else ``applied_at``)."""
        return self.status_at if self.status_at is not None else self.applied_at


@dataclass(frozen=True, slots=True)
class LoanLink:
    """A phone named on a loan in a role other than the applicant's (``loan_links``)."""

    loan_id: str
    phone: str
    role: LinkRole


@dataclass(frozen=True, slots=True)
class Entry:
    """A blacklist entry (``blacklist``): a platform lists a person or a phone number.

    ``entry_id`` is None only for a proposed entry that :func:`spillover.check` tests.
    """

    entry_id: str | None
    platform_id: str
    subject_kind: SubjectKind
    subject: str
    listed_at: date
    stated_reason: str | None = None
    copied_from: str | None = None

    @property
    def subject_ref(self) -> str:
        """The node reference of the listed subject (``person:jiang``, ``phone:+86...``)."""
        return ref(self.subject_kind.value, self.subject)


@dataclass(frozen=True, slots=True)
class Record:
    """A platform's own customer record (``records``); ``person_id`` when the data names it."""

    record_id: str
    platform_id: str
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    city: str | None = None
    person_id: str | None = None


def record_name(record: Record) -> str:
    """How an explanation names a platform record: its name and id.

    >>> record_name(Record("TY-R-XU", "tianyan", "Xu Yan"))
    'Xu Yan (record TY-R-XU)'
    """
    return f"{record.name or 'unnamed'} (record {record.record_id})"


# Identity linkage: how a platform record was resolved to a person (docs/contract.md §1,
# the ``matched_by`` column of the ``matches`` table); the match step's kinds, factors and
# reason codes are in :mod:`spillover.rules`.

#: The record fields a match compares, in waterfall order.
MATCH_FIELDS: tuple[str, ...] = ("id_number", "name", "phone", "birth_date", "city")


class MatchKey(StrEnum):
    """What decided that a record is a given person; the values are ``matched_by`` strings.

    ``known``: the data gives the record's person (``records.person_id``);
    ``new_identity``: no other record matched, the record is a person of its own;
    the others name the fields that agreed, strongest evidence first.
    """

    KNOWN = "known"
    ID_NUMBER = "id_number"
    NAME_AND_PHONE = "name_and_phone"
    NAME_AND_BIRTH_DATE = "name_and_birth_date"
    NAME_AND_CITY = "name_and_city"
    PHONE_ONLY = "phone_only"
    NAME_ONLY = "name_only"
    OTHER = "other"
    NEW_IDENTITY = "new_identity"


@dataclass(frozen=True, slots=True)
class MatchLevel:
    """One field of a match's waterfall: the comparison level and its weight."""

    field: str
    level: str
    agreed: bool | None
    log2_bayes_factor: float


@dataclass(frozen=True, slots=True)
class Match:
    """How a record was resolved to a person (``matches``, or ``records.person_id``:
    ``matched_by`` ``known``, probability 1)."""

    record_id: str
    person_id: str
    match_probability: float
    matched_by: MatchKey
    matched_with: str | None = None
    match_weight: float | None = None
    waterfall: tuple[MatchLevel, ...] = ()


def match_props(match: Match) -> dict[str, Any]:
    """A match as stored properties (the ``MATCHED_TO`` relationship): no nulls, the
    waterfall as JSON text.

    >>> match_props(Match("R1", "jiang", 0.62, MatchKey.PHONE_ONLY))
    {'matched_by': 'phone_only', 'match_probability': 0.62}
    """
    out: dict[str, Any] = {
        "matched_by": match.matched_by.value,
        "match_probability": match.match_probability,
    }
    if match.matched_with is not None:
        out["matched_with"] = match.matched_with
    if match.match_weight is not None:
        out["match_weight"] = match.match_weight
    if match.waterfall:
        out["waterfall"] = json.dumps(
            [
                {
                    "field": w.field,
                    "level": w.level,
                    "agreed": w.agreed,
                    "log2_bayes_factor": w.log2_bayes_factor,
                }
                for w in match.waterfall
            ]
        )
    return out


def match_from(record_id: str, person_id: str, props: Mapping[str, Any]) -> Match:
    """The :class:`Match` of stored properties (:func:`match_props`)."""
    waterfall = json.loads(props["waterfall"]) if props.get("waterfall") else []
    return Match(
        record_id,
        person_id,
        float(props["match_probability"]),
        MatchKey(props["matched_by"]),
        props.get("matched_with"),
        props.get("match_weight"),
        tuple(
            MatchLevel(w["field"], w["level"], w["agreed"], float(w["log2_bayes_factor"]))
            for w in waterfall
        ),
    )


@dataclass(frozen=True, slots=True)
class Sharing:
    """``from_platform`` passes its blacklist to ``to_platform`` from ``since`` on (``sharing``)."""

    from_platform: str
    to_platform: str
    since: date | None = None


@dataclass(frozen=True, slots=True)
class PhoneUse:
    """A loan that names a phone: as the applicant's number (role ``applicant``) or through a link."""

    phone: str
    role: str
    loan: Loan


@dataclass(frozen=True, slots=True)
class FrontierFacts:
    """Graph facts around a frontier of people and phones, as a backend supplies them.

    - ``periods``: every owner period of every phone owned by a frontier person or
      named in ``uses`` (so the core can tell who owned a number on a given day);
    - ``own_loans``: loans borrowed by frontier people;
    - ``uses``: loans that name a frontier phone or a phone owned by a frontier person.

    Only loans applied for on or before the day asked for are included.
    """

    periods: tuple[PhonePeriod, ...] = ()
    own_loans: tuple[Loan, ...] = ()
    uses: tuple[PhoneUse, ...] = ()
    #: for a neighbourhood: the people whose facts are all here (see GraphBackend.neighbourhood)
    covers: frozenset[str] = frozenset()
    #: for a neighbourhood, from a backend where a call is a round trip: display names
    #: (``person:ID`` / ``platform:ID`` -> name) of the people covered, the borrowers and
    #: platforms of the loans here and the platforms asked for, so an explanation names
    #: its paths without another round trip. A hint, never an answer: the search keeps
    #: only the names of what its paths show (GraphBackend.names gives the rest).
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Surroundings:
    """What a graph view needs beyond :class:`FrontierFacts` (GraphBackend.surroundings):

    - ``uses``: every phone named on the loans asked for (applicant's number or link);
    - ``entries``: every blacklist entry listing one of the people or phones asked for.
    """

    uses: tuple[PhoneUse, ...] = ()
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A validated data folder (docs/contract.md §1), every reference resolved."""

    people: Mapping[str, Person]
    platforms: Mapping[str, Platform]
    phone_periods: Mapping[str, tuple[PhonePeriod, ...]]
    loans: Mapping[str, Loan]
    links: tuple[LoanLink, ...] = ()
    entries: Mapping[str, Entry] = field(default_factory=dict)
    sharing: tuple[Sharing, ...] = ()
    #: platform records (``records``) and the person each resolves to (by record_id;
    #: unresolved records have no match)
    records: Mapping[str, Record] = field(default_factory=dict)
    matches: Mapping[str, Match] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The number of rows of each table, by table name (``phones``: owner periods)."""
        return {
            "people": len(self.people),
            "platforms": len(self.platforms),
            "phones": sum(len(v) for v in self.phone_periods.values()),
            "loans": len(self.loans),
            "loan_links": len(self.links),
            "blacklist": len(self.entries),
            "sharing": len(self.sharing),
            **({"records": len(self.records)} if self.records else {}),
            **({"matches": len(self.matches)} if self.matches else {}),
        }
