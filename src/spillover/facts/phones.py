"""Phone numbers: everything is compared in E.164 form.

A number is accepted only when it is written with digits (and the usual
separators: spaces, ``-``, ``.``, ``/``, parentheses, a leading ``+``) and is a
*valid* number by the ``phonenumbers`` metadata (``is_valid_number``), not only a
parseable one: letters are never turned into keypad digits, and ``12345`` is no
number in CN.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from .digitpattern import PrefixTable, prefix_table

__all__ = [
    "CN_MOBILE_E164",
    "CN_MOBILE_NATIONAL",
    "CN_MOBILE_SHAPE",
    "DEFAULT_REGION",
    "display_phone",
    "mobile_pattern",
    "mobile_prefixes",
    "normalize_phone",
]


DEFAULT_REGION = "CN"

#: characters a written phone number may hold besides decimal digits
_SEPARATORS = frozenset(" \t\u00a0-./()")


def check_region(region: str) -> str:
    """``region`` as a two-letter region code phonenumbers knows (upper-cased).

    >>> check_region("cn")
    'CN'

    Raises ``ValueError`` for an unknown region.
    """
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"unknown region {region!r}: give a two-letter region code such as CN, HK or US"
        )
    return code


def _shape_problem(text: str) -> str | None:
    """Why ``text`` is not written like a phone number, or None."""
    for i, char in enumerate(text):
        if char.isdecimal() or char in _SEPARATORS or (char == "+" and i == 0):
            continue
        if char.isalpha():
            return "letters are not allowed in a phone number"
        return f"character {char!r} is not allowed in a phone number"
    if not any(char.isdecimal() for char in text):
        return "no digits"
    return None


@lru_cache(maxsize=1 << 16)
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` in E.164 form; a national number is read in ``region``.

    >>> normalize_phone("138 0000 0001")
    '+8613800000001'
    >>> normalize_phone("+86-138-0000-0001")
    '+8613800000001'

    Raises ``ValueError`` with a short reason when the text is not a valid number.
    """
    text = raw.strip()
    if _CN_MOBILE.match(text):
        return text  # a mainland mobile number in E.164 form already (every match is valid)
    if not text:
        raise ValueError("empty phone number")
    shape = _shape_problem(text)
    if shape is not None:
        raise ValueError(f"not a phone number: {raw!r} ({shape})")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {raw!r} ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        where = "" if text.startswith("+") else f" in region {region}"
        raise ValueError(f"not a valid phone number{where}: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=8)
def mobile_pattern(region: str) -> tuple[str, str]:
    """Regular expressions (RE2 and Python compatible) for the region's mobile numbers,
    ``(E.164 form, national form)``, from the phonenumbers metadata. Every match is a
    valid number; the fast loader takes CN matches as they are (tests check that
    :func:`normalize_phone` agrees) and checks everything else one by one."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.mobile is None or meta.mobile.national_number_pattern is None:
        raise ValueError(f"no mobile numbering plan for region {region!r}")
    pattern = meta.mobile.national_number_pattern
    return rf"^\+{meta.country_code}(?:{pattern})$", rf"^(?:{pattern})$"


@lru_cache(maxsize=8)
def mobile_prefixes(region: str) -> tuple[bytes, PrefixTable] | None:
    """The region's mobile numbers in E.164 form as ``(b"+" and the country code, the
    table of their national digits)``: the language of :func:`mobile_pattern`'s E.164
    form, answered a column at a time (:mod:`spillover.facts.digitpattern`); None where
    the numbering plan's pattern is outside what that table can say.

    >>> lead, table = mobile_prefixes("CN")
    >>> lead, table.width, table.depth
    (b'+86', 11, 5)
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.mobile is None or meta.mobile.national_number_pattern is None:
        raise ValueError(f"no mobile numbering plan for region {region!r}")
    table = prefix_table(meta.mobile.national_number_pattern)
    return None if table is None else (f"+{meta.country_code}".encode(), table)


#: a mainland mobile number in E.164 form (``+8613957112345``) and in national form
#: (``13957112345``): the regular expressions of :func:`mobile_pattern` for ``CN``, the one
#: spelling of a mainland mobile number's shape (every match is a valid number)
CN_MOBILE_E164, CN_MOBILE_NATIONAL = mobile_pattern("CN")
_CN_MOBILE = re.compile(CN_MOBILE_E164.removesuffix("$") + r"\Z")
#: the outline of a mainland mobile number in national form (11 digits, ``1`` and ``3``-``9``
#: first), without :data:`CN_MOBILE_NATIONAL`'s validity check: identity linkage reads a
#: platform record's phone so (a record keeps what was typed, :mod:`spillover.link.resolve`)
CN_MOBILE_SHAPE = r"1[3-9]\d{9}"


def looks_like_phone(text: str, region: str = DEFAULT_REGION) -> bool:
    """Whether ``text`` is a valid phone number (for hints in messages)."""
    try:
        normalize_phone(text, region)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1 << 16)
def display_phone(e164: str) -> str:
    """Human form of an E.164 number (the number itself when it cannot be parsed).
    Remembered for the last 65,536 numbers asked for: an explanation names its phones
    so, and parsing and formatting one is a tenth of a check's time.

    >>> display_phone("+8613957112345")
    '+86 139 5711 2345'
    """
    if _CN_MOBILE.match(e164):
        # a mainland mobile number: +86 and its 11 digits as 3, 4, 4 (phonenumbers'
        # format for every number of the pattern, tests/test_fuzz_loaders.py)
        return f"+86 {e164[3:6]} {e164[6:10]} {e164[10:]}"
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
