"""Mainland China resident identity numbers (GB 11643-1999): 17 digits and an ISO 7064 MOD 11-2 check character."""

from __future__ import annotations

import re
from datetime import date

__all__ = [
    "CHECK_CHARACTERS",
    "CHECK_WEIGHTS",
    "ID_SHAPE",
    "check_character",
    "mask_ids_in",
    "validate_record_id_number",
    "validate_resident_id",
]

#: the shape of a resident ID number: 17 digits and a digit or ``X`` (a regular expression
#: that Python and Arrow's RE2 read alike; the fast loader matches whole columns with it)
ID_SHAPE = r"^[0-9]{17}[0-9X]$"
_SHAPE = re.compile(ID_SHAPE)
#: the check character as a message may show it: ``X`` or ``x``, also full-width (``Ｘ``, ``ｘ``)
_CHECK_X = "[Xx\uff38\uff58]"
#: anything that could be a resident ID number inside a longer text: 17 digits and a
#: digit or ``X``/``x``, wherever it stands (``x330...``, ``330...x`` too), but not a part of a
#: longer run of digits (a 19-digit number is no ID number). A digit is any Unicode decimal
#: digit (``\d``: ``0``-``9``, full-width ``０``-``９``, Arabic-Indic, ...)
_ID_LIKE = re.compile(rf"(?<!\d)\d{{17}}(?:\d(?!\d)|{_CHECK_X})")
#: what may stand between two digits of an ID number typed in groups: a space (also a
#: no-break or an ideographic space), a hyphen (also a dash, a minus or a dot, full-width
#: too) and a space, in that order, each of them optional (``1``, ``1 2``, ``1-2``,
#: ``1 - 2``); possessive (``?+``): no backtracking, the chain is read in one pass
_SEPARATOR = "[ \u00a0\u3000]?+[-.\u2010-\u2015\u2212\uff0d\uff0e]?+[ \u00a0\u3000]?+"
#: the spaces of :data:`_SEPARATOR` a message shows escaped (:func:`repr` writes a no-break
#: and an ideographic space so): each escape and the space it stands for
_UNESCAPED = {"\\xa0": "\u00a0", "\\u00a0": "\u00a0", "\\u3000": "\u3000"}
#: what any other escape is read as: one character that is neither a digit nor a
#: separator (the escape's hex digits are no digits of a number beside it)
_OTHER = "\x00"
#: the escapes a message may show: those spaces, in either case (``\\XA0``), and any
#: other character :func:`repr` writes escaped (a control character ``\\x07``, a line
#: separator ``\\u2028``, a lone surrogate ``\\ud800``, ``\\U000e0001``)
_ESCAPE = re.compile(
    "(?i:" + "|".join(map(re.escape, _UNESCAPED)) + ")"
    r"|\\(?:[xX][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)
#: a chain of at least 17 digits joined by separators (``330106 19820315 4015``), as
#: long as it goes, and an ``X`` after it (:func:`mask_ids_in` decides what to mask)
_DIGIT_CHAIN = re.compile(rf"(?<!\d)\d(?:{_SEPARATOR}\d){{16,}}+(?:{_SEPARATOR}{_CHECK_X})?+")

#: the first two digits an ID number's address code (GB/T 2260) may begin with: a
#: province (11-15, 21-23, 31-37, 41-46, 50-54, 61-65), Taiwan, Hong Kong, Macau (71,
#: 81-83), and 9 with a province's first digit (a foreigner's permanent residence number;
#: 99, spillover's pseudonyms): what an ID number typed in groups must begin with to be
#: masked (a year, 19../20.., or an IP address, 10./172./192., begins with none)
_ADDRESS_STARTS = frozenset(
    (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        *(71, 81, 82, 83),
        *range(91, 100),
    )
)

#: ISO 7064 MOD 11-2 weights of the 17 digits (the check character's sum)
CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: the check character of each remainder (the weighted sum of the 17 digits modulo 11)
CHECK_CHARACTERS = "10X98765432"


def check_character(first17: str) -> str:
    """The check character for the first 17 digits.

    >>> check_character("11010519491231002")
    'X'
    """
    total = sum(int(d) * w for d, w in zip(first17, CHECK_WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def validate_resident_id(value: str) -> str:
    """Return the id upper-cased when valid; raise ``ValueError`` saying what is wrong."""
    text = value.strip().upper()
    if len(text) != 18:
        raise ValueError(f"resident ID must have 18 characters, got {len(text)}")
    if not _SHAPE.match(text):
        raise ValueError("resident ID must be 17 digits followed by a digit or X")
    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise ValueError(f"resident ID has an impossible birth date {text[6:14]}") from None
    expected = check_character(text[:17])
    if text[17] != expected:
        raise ValueError(f"resident ID check digit is {text[17]}, expected {expected}")
    return text


def validate_record_id_number(value: str) -> str:
    """Return an ID number as a platform's record holds it, upper-cased, when it has the shape.

    A platform's customer record keeps what the customer or a clerk typed, typos
    included, and identity linkage compares it as written: so only the shape
    (17 digits and a digit or ``X``) is required, not a real birth date or the check
    character (docs/contract.md §1, ``records``).

    >>> validate_record_id_number("330106198203154019")  # check character off by a typo
    '330106198203154019'
    >>> validate_record_id_number("33010619820315401")
    Traceback (most recent call last):
    ...
    ValueError: resident ID must have 18 characters, got 17
    """
    text = value.strip().upper()
    if len(text) != 18:
        raise ValueError(f"resident ID must have 18 characters, got {len(text)}")
    if not _SHAPE.match(text):
        raise ValueError("resident ID must be 17 digits followed by a digit or X")
    return text


def mask_id(value: str) -> str:
    """An ID number with all but its first 3 and last 2 characters hidden.

    >>> mask_id("330106198203154015")
    '330*************15'
    """
    text = value.strip()
    if len(text) <= 5:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def mask_ids_in(text: str) -> str:
    """``text`` with every resident-ID-shaped number masked (for messages and logs), its
    first 3 and last 2 characters kept.

    What is masked: 17 digits and a digit or an ``X``, in a row, wherever they stand, also
    written into a longer value (``x330...``, ``330...x``), but not a part of a longer run
    of digits (a 19-digit number is no ID number); and an ID number typed in groups: a
    chain of digits, each joined to the next by a space, a hyphen (a dash, a minus, a dot)
    or both (``330106 19820315 4015``, ``330106-1982-0315-4015``, ``1982.03.15``,
    ``330106 - 198203 - 154015``), that holds exactly 18 digits, or 17 and an ``X``,
    and begins as an address code may (:data:`_ADDRESS_STARTS`: not a year, ``2024-01-01
    2024-12-31 15``, nor an IP address). A longer chain is no ID number (two dates and a
    count), unless a run of 18 stands in it.
    A digit is any Unicode decimal digit (full-width ``３３０...`` too), the ``X`` may be
    ``x`` or full-width. Separators stay in place and each hidden character becomes one
    ``*``, so the masked text keeps its length and layout. A no-break or an ideographic
    space a message shows escaped (``repr()`` writes ``\\xa0``, ``\\u3000``) joins
    digits as the space does; any other escape (``\\x07``, ``\\u2028``) stands apart from
    the digits beside it, as the character it stands for does.

    >>> mask_ids_in("unknown person '330106198203154015'")
    "unknown person '330*************15'"
    >>> mask_ids_in("got 'x330106198203154015', '33010619820315401X5', 'a3301061982031540155'")
    "got 'x330*************15', '330*************1X5', 'a3301061982031540155'"
    >>> mask_ids_in("got '３３０１０６１９８２０３１５４０１Ｘ'")
    "got '３３０*************１Ｘ'"
    >>> mask_ids_in("'330106 19820315 4015', '330106-1982-0315-4015', '330106 - 198203 - 154015'")
    "'330*** ******** **15', '330***-****-****-**15', '330*** - ****** - ****15'"

    Phone numbers (11 to 13 digits), dates, amounts and longer chains are left alone:

    >>> mask_ids_in("+86 138 0013 8000 on 2024-03-01 2024-03-02, 2024-01-01 2024-12-31 150")
    '+86 138 0013 8000 on 2024-03-01 2024-03-02, 2024-01-01 2024-12-31 150'
    """
    if "\\" not in text:
        return _DIGIT_CHAIN.sub(_mask_chain, text)
    # a message shows a no-break or an ideographic space escaped (its repr: ``\\xa0``,
    # ``\\u3000``): each escape is read as the space it stands for, any other escape
    # (``\\x07``) as one character that joins no digits, and written back
    escapes: dict[int, str] = {}  # the place of each escape in the text read, its text
    parts: list[str] = []
    at = length = 0
    for m in _ESCAPE.finditer(text):
        parts.append(text[at : m.start()])
        length += m.start() - at
        escapes[length] = m.group(0)
        parts.append(_UNESCAPED.get(m.group(0).lower(), _OTHER))
        length += 1
        at = m.end()
    parts.append(text[at:])
    masked = _DIGIT_CHAIN.sub(_mask_chain, "".join(parts))
    return "".join(escapes.get(i, c) for i, c in enumerate(masked))


def _mask_chain(match: re.Match[str]) -> str:
    """A chain of digits :data:`_DIGIT_CHAIN` found, with the ID number in it masked."""
    chain = match.group(0)
    if len(chain) == 18 and chain.isalnum():
        return mask_id(chain)  # the common case: 18 in a row
    masked = _ID_LIKE.sub(lambda m: mask_id(m.group(0)), chain)
    if masked != chain:
        return masked  # a run of 18 (the plain form): masked as it always was
    digits = [i for i, c in enumerate(chain) if c.isdigit()]
    if len(digits) == 17 and not chain[-1].isdigit():
        digits.append(len(chain) - 1)  # and the X
    elif len(digits) != 18:
        return chain
    if int(chain[digits[0]]) * 10 + int(chain[digits[1]]) not in _ADDRESS_STARTS:
        return chain  # grouped, but no address code begins so (dates, addresses, counts)
    out = list(chain)
    for i in digits[3:16]:
        out[i] = "*"
    return "".join(out)
