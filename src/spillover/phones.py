"""Phone numbers: everything is compared in E.164 form."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

__all__ = ["DEFAULT_REGION", "display_phone", "normalize_phone"]


DEFAULT_REGION = "CN"


@lru_cache(maxsize=1 << 16)
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` in E.164 form; a national number is read in ``region``.

    >>> normalize_phone("138 0000 0001")
    '+8613800000001'
    >>> normalize_phone("+86-138-0000-0001")
    '+8613800000001'

    Raises ``ValueError`` with a short reason when the text is not a possible number.
    """
    text = raw.strip()
    if not text:
        raise ValueError("empty phone number")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {raw!r} ({exc._msg})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"not a possible phone number in region {region}: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """Human form of an E.164 number, e.g. ``+86 138 0000 0001``."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
