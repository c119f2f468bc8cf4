"""The edge of the service: its request and response models (pydantic), and the shape
of its validation errors (docs/service.md, Errors)."""

import math
import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ..data.contract import ISO_DAY, MAX_YEAR, MIN_YEAR
from ..facts.resident_id import mask_ids_in
from ..render.json import ExplanationOut
from ..rules import Recommendation

__all__ = [
    "JIANG_CHECK",
    "BatchIn",
    "BatchItemOut",
    "BatchOut",
    "CheckIn",
    "CheckOut",
    "ErrorOut",
    "ItemErrorOut",
    "StatusOut",
    "SubjectIn",
    "Text",
    "clean_errors",
    "model_errors",
    "safe",
    "validation_error",
]

#: the Jiang case (examples/jiang_case): the proposed listing the OpenAPI document shows
JIANG_CHECK: dict[str, Any] = {
    "platform_id": "quickcash",
    "subject": {"kind": "person", "id": "jiang"},
    "listed_at": "2024-03-01",
    "stated_reason": "phone 13957112345 named on a defaulted loan",
}


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None
    return value


#: a day as the requests write it: the contract's ISO day, ``YYYY-MM-DD`` (ASCII digits)
_ISO_DAY = re.compile(ISO_DAY)


#: text of a request: valid Unicode (JSON can spell a lone surrogate, ``"\ud800"``,
#: which no answer and no log line could hold)
Text = Annotated[str, AfterValidator(_unicode)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectIn(_In):
    """Who would be listed: a person (``person_id``) or a phone (any written form)."""

    kind: Literal["person", "phone"]
    id: Text = Field(min_length=1, max_length=200)


class CheckIn(_In):
    """A proposed listing: ``platform_id`` would list ``subject`` on ``listed_at``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [dict(JIANG_CHECK)]}
    )

    platform_id: Text = Field(min_length=1, max_length=200)
    subject: SubjectIn
    listed_at: date | None = Field(
        default=None, description="Day of the proposed listing (default: today, UTC)."
    )
    stated_reason: Text | None = Field(default=None, max_length=2000)

    @field_validator("listed_at", mode="before")
    @classmethod
    def _iso_day(cls, value: Any) -> Any:
        # pydantic's own parsing would read a number or digit text as a Unix time
        # (0: 1970-01-01) and a datetime as its day: a day is ISO text, nothing else
        if value is None or type(value) is date:
            return value
        if isinstance(value, str) and _ISO_DAY.fullmatch(value):
            return value
        raise PydanticCustomError("date_format", "Input should be a day written YYYY-MM-DD")

    @field_validator("listed_at")
    @classmethod
    def _year(cls, value: date | None) -> date | None:
        if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"the year must lie in {MIN_YEAR}-{MAX_YEAR}")
        return value


class CheckOut(ExplanationOut):
    """The explanation of the proposed listing (docs/contract.md §3), its recommendation
    (docs/contract.md §6) and the id under which it is recorded in the check log."""

    check_id: str
    recommendation: Recommendation


class ErrorOut(BaseModel):
    """An error: ``detail`` says what was wrong."""

    detail: str


class ItemErrorOut(BaseModel):
    """Why one item of a batch got no answer: ``status`` as the single call would give it;
    ``detail`` the single call's too, but a 422's ``loc`` names the field within the item
    (``["subject", "id"]``; ``[]``: the item itself, not an object)."""

    status: int
    detail: Any


#: an item of a batch: anything (the schema says an object); a bad one, even one that
#: is no object at all, gets an error of its own, not the whole batch
_Item = Annotated[Any, WithJsonSchema({"type": "object", "additionalProperties": True})]


class BatchIn(_In):
    """Proposed listings, answered in order (at most the service's ``max_batch``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"checks": [JIANG_CHECK]}]}
    )

    checks: list[_Item] = Field(
        min_length=1,
        description="Each item is a CheckIn; a bad item gets an error, not the whole batch.",
    )


class BatchItemOut(BaseModel):
    """One answer of a batch: ``check`` or ``error``, for the item at ``index``."""

    index: int
    check: CheckOut | None = None
    error: ItemErrorOut | None = None


class BatchOut(BaseModel):
    """The answers of a batch, in the order of its items."""

    results: list[BatchItemOut]


class StatusOut(BaseModel):
    """Health and readiness."""

    status: Literal["ok", "unavailable"]
    backend: str | None = None


# ---------------------------------------------------------------------------
# Validation errors as the answers give them
# ---------------------------------------------------------------------------


def validation_error(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    """A 422 answer about the field at ``loc``."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error", "input": value}])


def safe(value: Any) -> Any:
    """``value`` made fit for a JSON answer: text with lone surrogates escaped
    (``\\ud800`` as six characters), numbers that JSON cannot spell (NaN, Infinity) as
    text.

    >>> safe("\\ud800"), safe(float("nan")), safe(3)
    ('\\\\ud800', 'nan', 3)
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors as the answer gives them: where, what, which kind, never the
    input (it may be what made the error: a NaN, a lone surrogate, or just personal);
    a resident ID number in ``loc`` or ``msg`` (an unknown field may be named like one)
    masked.

    >>> clean_errors([{"loc": ("body", "x330106198203154015", 0), "msg": "Extra", "type": "t"}])
    [{'loc': ['body', 'x330*************15', 0], 'msg': 'Extra', 'type': 't'}]
    """
    return [
        {
            # a field's name is the client's text too (an unknown field): masked alike
            "loc": [safe(mask_ids_in(x) if isinstance(x, str) else x) for x in e.get("loc", ())],
            "msg": safe(mask_ids_in(str(e.get("msg", "")))),
            "type": safe(str(e.get("type", ""))),
        }
        for e in errors
    ]


def model_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors of a model's validation, as the answer gives them."""
    return clean_errors(exc.errors(include_url=False, include_input=False, include_context=False))
