"""Input rows (docs/contract.md §1) as pydantic models: the edge where raw text becomes typed facts.

Every model turns an empty cell into ``None``, reads booleans as ``true/false``,
``1/0`` or ``yes/no``, dates as ISO ``YYYY-MM-DD`` (years 1900-2100), amounts as
finite non-negative numbers and phone numbers into E.164 (valid numbers only, in
the region given through the validation context, ``{"region": "CN"}``).
Unknown extra columns are ignored, so that new optional columns never break a loader.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from ..facts.model import MATCH_FIELDS, LinkRole, LoanStatus, MatchKey, PlatformKind, SubjectKind
from ..facts.phones import DEFAULT_REGION, normalize_phone
from ..facts.resident_id import validate_record_id_number, validate_resident_id

__all__ = [
    "FALSE_TEXTS",
    "ISO_DAY",
    "MAX_YEAR",
    "MIN_YEAR",
    "SPACES",
    "TRUE_TEXTS",
    "BlacklistRow",
    "JsonFloat",
    "JsonInt",
    "LoanLinkRow",
    "LoanRow",
    "MatchRow",
    "PersonRow",
    "PhoneRow",
    "PlatformRow",
    "RecordRow",
    "Row",
    "SharingRow",
    "field_kinds",
    "required_columns",
]


#: how a boolean cell may be spelled (case-insensitive; docs/contract.md §1). These and the
#: day bounds below are the contract's reading rules: other modules take them from
#: :mod:`spillover.data.contract` (which re-exports them), never spell them again.
TRUE_TEXTS = ("true", "1", "yes")
FALSE_TEXTS = ("false", "0", "no")
#: an ISO day ``YYYY-MM-DD`` (a regular expression; the years are checked against the bounds)
ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: dates outside these years are refused (every loader): typos such as 0000 or 9999
MIN_YEAR = 1900
MAX_YEAR = 2100
#: every character Python's ``str.strip()`` removes (``str.isspace()``): a cell is trimmed
#: of these at both ends, an id compared after (every loader, the Spark audit too)
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_AMOUNT = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_ISO_DAY = re.compile(ISO_DAY)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _parse_bool(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, JsonFloat | JsonInt):  # a JSONL number: as written (``-0`` is no 0)
        value = value.literal
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_TEXTS:
        return True
    if text in FALSE_TEXTS:
        return False
    raise ValueError(f"expected true/false (or 1/0, yes/no), got {value!r}")


def _year_in_range(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(
            f"year {year:04d} is out of range: dates must lie in {MIN_YEAR}-{MAX_YEAR}"
        )


def _parse_day(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None:
        return value
    if isinstance(value, date):  # a Parquet date column: the same years as text
        _year_in_range(value.year)
        return value
    text = str(value).strip()
    if not _ISO_DAY.match(text):
        raise ValueError(f"expected an ISO date YYYY-MM-DD, got {value!r}")
    _year_in_range(int(text[:4]))
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"impossible date {text!r} ({exc})") from None


def _parse_amount(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        number = float(value) if abs(value) < 10**300 else math.inf
    elif isinstance(value, float):
        number = value
    elif isinstance(value, Decimal):  # a Parquet decimal column
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ValueError(f"amount must be a finite number, got {value!r}")
        if not _AMOUNT.match(text):
            raise ValueError(f"expected a number such as 3000 or 1250.50, got {value!r}")
        number = float(text)
    else:
        raise ValueError("expected a number")
    if not math.isfinite(number):
        raise ValueError(f"amount must be a finite number, got {value!r}")
    if number < 0:
        raise ValueError(f"amount must not be negative, got {value!r}")
    return number + 0.0  # -0.0 becomes 0.0


class JsonFloat(float):
    """A JSON number with a fraction or an exponent (``1.50``, ``1e2``), as the exact
    loader reads a JSONL line: the float, and :attr:`literal`, the number as written. A
    text field (an id, a phone) takes the literal, as Spark's JSON reader does: ``1.50``
    is the id ``1.50``, not ``1.5`` (docs/contract.md §1: ids are compared exactly).

    >>> number = JsonFloat("1.50")
    >>> number == 1.5, number.literal, _text(number)
    (True, '1.50', '1.50')
    """

    literal: str

    def __new__(cls, literal: str) -> JsonFloat:
        """The number ``literal`` (JSON number text) reads as, remembering it."""
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


class JsonInt(int):
    """A JSON integer as the exact loader reads a JSONL line: the integer, and
    :attr:`literal`, as written (``-0`` stays the id ``-0``; see :class:`JsonFloat`)."""

    literal: str

    def __new__(cls, literal: str) -> JsonInt:
        """The integer ``literal`` (JSON integer text) reads as, remembering it."""
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def _text(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, JsonFloat | JsonInt):
        return value.literal
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
OptText = Annotated[str | None, BeforeValidator(_text)]
OptBool = Annotated[bool | None, BeforeValidator(_parse_bool)]
Day = Annotated[date, BeforeValidator(_parse_day)]
OptDay = Annotated[date | None, BeforeValidator(_parse_day)]


def _phone(value: str | None, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    region = (info.context or {}).get("region", DEFAULT_REGION)
    return normalize_phone(value, region)


Phone = Annotated[str, BeforeValidator(_text), AfterValidator(_phone)]
OptPhone = Annotated[str | None, BeforeValidator(_text), AfterValidator(_phone)]


def _trimmed(value: Any) -> Any:
    """A value cell (an enum's) trimmed of :data:`SPACES` as every other cell is: `` defaulted``
    is ``defaulted`` (the Spark audit reads it so too); a blank cell stays as it came, for
    the enum's own message."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return value


def _kind_or_other(value: Any) -> Any:
    """An empty ``kind`` cell (or a JSON null) means ``other``, as a missing column does."""
    value = _blank_to_none(value)
    return PlatformKind.OTHER if value is None else _trimmed(value)


class Row(BaseModel):
    """A row of an input table: frozen, extra columns ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class PersonRow(Row):
    """A row of ``people``; ``id_number`` must be a valid resident identity number."""

    person_id: Text
    name: Text
    id_number: OptText = None
    city: OptText = None

    @field_validator("id_number")
    @classmethod
    def _resident_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_resident_id(value)


class PlatformRow(Row):
    """A row of ``platforms``; an empty ``kind`` is ``other``."""

    platform_id: Text
    name: Text
    kind: Annotated[PlatformKind, BeforeValidator(_kind_or_other)] = PlatformKind.OTHER


class PhoneRow(Row):
    """A row of ``phones``: one owner period of a number (``until`` >= ``since``)."""

    phone: Phone
    owner_id: OptText = None
    verified: OptBool = None
    since: OptDay = None
    until: OptDay = None

    @field_validator("until")
    @classmethod
    def _until_after_since(cls, value: date | None, info: ValidationInfo) -> date | None:
        since = info.data.get("since")
        if value is not None and since is not None and value < since:
            raise ValueError(f"until {value} is before since {since}")
        return value


class LoanRow(Row):
    """A row of ``loans`` (``status_at`` >= ``applied_at``); the borrower is named by
    ``borrower_id``, by a platform record (``borrower_record``), or both."""

    loan_id: Text
    platform_id: Text
    borrower_record: OptText = None
    borrower_id: Annotated[str | None, BeforeValidator(_text), Field(validate_default=True)] = None
    applied_at: Day
    status: Annotated[LoanStatus, BeforeValidator(_trimmed)]
    applicant_phone: OptPhone = None
    phone_verified: OptBool = None
    amount: Annotated[float | None, BeforeValidator(_parse_amount)] = None
    status_at: OptDay = None

    @field_validator("status_at")
    @classmethod
    def _status_after_application(cls, value: date | None, info: ValidationInfo) -> date | None:
        applied = info.data.get("applied_at")
        if value is not None and applied is not None and value < applied:
            raise ValueError(f"status_at {value} is before applied_at {applied}")
        return value

    @field_validator("borrower_id")
    @classmethod
    def _a_borrower(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("borrower_record") is None:
            raise ValueError("required value is missing (give borrower_id or borrower_record)")
        return value


class LoanLinkRow(Row):
    """A row of ``loan_links``: a phone named on a loan in a role."""

    loan_id: Text
    phone: Phone
    role: Annotated[LinkRole, BeforeValidator(_trimmed)]


class BlacklistRow(Row):
    """A row of ``blacklist``; a ``phone`` subject is read as a phone number."""

    entry_id: Text
    platform_id: Text
    subject_kind: Annotated[SubjectKind, BeforeValidator(_trimmed)]
    subject: Text
    listed_at: Day
    stated_reason: OptText = None
    copied_from: OptText = None

    @field_validator("subject")
    @classmethod
    def _phone_subject(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("subject_kind") == SubjectKind.PHONE:
            return _phone(value, info) or value
        return value


class RecordRow(Row):
    """A row of ``records``: a platform's own customer record (docs/contract.md §1)."""

    record_id: Text
    platform_id: Text
    name: OptText = None
    id_number: OptText = None
    phone: OptPhone = None
    birth_date: OptDay = None
    city: OptText = None
    person_id: OptText = None

    @field_validator("id_number")
    @classmethod
    def _resident_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_record_id_number(value)


def _probability(value: Any) -> Any:
    number = _parse_amount(value)
    if number is not None and number > 1:
        raise ValueError(f"a probability lies in 0..1, got {value!r}")
    return number


def _weight(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    text = str(value).strip()
    if not _AMOUNT.match(text):
        raise ValueError(f"expected a number such as 12.5 or -3, got {value!r}")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    # -0.0 becomes 0.0, as an amount does: Neo4j keeps a stored 0.0 that an ingest sets
    # to -0.0 (an equal value), and the two would print differently
    return number + 0.0


class WaterfallLevel(BaseModel):
    """One field of a match's waterfall (the ``waterfall`` JSON list of ``matches``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: Literal[MATCH_FIELDS]  # type: ignore[valid-type]
    level: Annotated[str, Field(min_length=1, max_length=40)]
    agreed: bool | None
    log2_bayes_factor: Annotated[float, BeforeValidator(_weight)]


def _waterfall(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None or isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a JSON list of field levels")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(parsed, list):
        raise ValueError("expected a JSON list of field levels")
    return parsed


class MatchRow(Row):
    """A row of ``matches``: a record resolved to a person, and how (docs/contract.md §1)."""

    record_id: Text
    person_id: Text
    match_probability: Annotated[float, BeforeValidator(_probability)]
    matched_by: Annotated[MatchKey, BeforeValidator(_trimmed)]
    matched_with: OptText = None
    match_weight: Annotated[float | None, BeforeValidator(_weight)] = None
    waterfall: Annotated[tuple[WaterfallLevel, ...] | None, BeforeValidator(_waterfall)] = None


class SharingRow(Row):
    """A row of ``sharing``: one platform passes its blacklist to another."""

    from_platform: Text
    to_platform: Text
    since: OptDay = None


def required_columns(model: type[Row]) -> list[str]:
    """The columns a table must have (its row model's required fields), in order.

    >>> required_columns(LoanLinkRow)
    ['loan_id', 'phone', 'role']
    """
    return [name for name, f in model.model_fields.items() if f.is_required()]


def field_kinds(model: type[Row]) -> dict[str, str]:
    """The kind of value each field of a table holds: ``date``, ``bool``, ``number`` or ``text``
    (what a typed column, e.g. in Parquet, may hold; read from the row model's types).

    >>> field_kinds(SharingRow)
    {'from_platform': 'text', 'to_platform': 'text', 'since': 'date'}
    >>> field_kinds(LoanRow)["amount"], field_kinds(LoanRow)["phone_verified"]
    ('number', 'bool')
    """
    out = {}
    for name, f in model.model_fields.items():
        annotation = f.annotation
        choices = (
            [a for a in typing.get_args(annotation) if a is not type(None)]
            if typing.get_origin(annotation) in (typing.Union, types.UnionType)
            else [annotation]
        )
        kind = "text"
        for value_type, what in ((bool, "bool"), (date, "date"), (float, "number")):
            if choices == [value_type]:
                kind = what
        out[name] = kind
    return out
