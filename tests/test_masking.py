"""Masking resident ID numbers in messages (``spillover.facts.resident_id.mask_ids_in``):
every way an ID number may be written is masked, and nothing else spillover prints is.

docs/privacy.md promises that messages never print a full resident ID number; the plain
form (18 in a row) is tested through the CLI and the service in tests/test_bad_input.py
and tests/test_service.py, the other forms end to end there too.
"""

from __future__ import annotations

import pytest

from spillover.facts.resident_id import mask_ids_in

FULL = "330106198203154015"
#: the same number in full-width digits, as a Chinese input method types them
WIDE = "".join(chr(ord(c) - ord("0") + 0xFF10) for c in FULL)


def wide(text: str) -> str:
    """``text`` with its ASCII digits full-width."""
    return "".join(chr(ord(c) - ord("0") + 0xFF10) if c.isdigit() else c for c in text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # full-width digits and check characters
        (WIDE, "３３０*************１５"),
        (f"unknown person 'x{WIDE}'", "unknown person 'x３３０*************１５'"),
        (wide("33010619820315401") + "Ｘ", "３３０*************１Ｘ"),
        (wide("33010619820315401") + "ｘ7", "３３０*************１ｘ7"),
        ("33010619820315401Ｘ", "330*************1Ｘ"),
        # digits of two widths in one number, other scripts' digits
        ("330106" + wide("198203154015"), "330*************１５"),
        ("٣٣٠١٠٦١٩٨٢٠٣١٥٤٠١٥", "٣٣٠*************١٥"),
        # a 19-digit run is no ID number, in full-width digits too
        (wide("3301061982031540155"), wide("3301061982031540155")),
        ("3" + WIDE, "3" + WIDE),
    ],
)
def test_other_digits_are_masked(text: str, masked: str) -> None:
    assert mask_ids_in(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("330106 19820315 4015", "330*** ******** **15"),
        ("330106-1982-0315-4015", "330***-****-****-**15"),
        ("330106 198203 154015", "330*** ****** ****15"),
        ("330 106 1982 0315 4015", "330 *** **** **** **15"),
        ("330106 - 19820315 - 4015", "330*** - ******** - **15"),
        ("330106.1982.03.15.4015", "330***.****.**.**.**15"),
        ("330106\u300019820315\u30004015", "330***\u3000********\u3000**15"),
        ("330106\u00a019820315\u00a04015", "330***\u00a0********\u00a0**15"),
        ("330106－19820315－4015", "330***－********－**15"),
        ("330106\u201419820315\u20144015", "330***\u2014********\u2014**15"),
        ("3301061982031540  15", "330*************  15"),
        (wide("330106 19820315 4015"), "３３０*** ******** **１５"),
        # ending in X, also after a separator
        ("110105 19491231 002X", "110*** ******** **2X"),
        ("110105 19491231 002 x", "110*** ******** **2 x"),
        ("110105-19491231-002Ｘ.", "110***-********-**2Ｘ."),
        # in a message, in quotes, written into a longer value
        ("unknown person 'p330106 19820315 4015'", "unknown person 'p330*** ******** **15'"),
        ("got '330106-1982-0315-4015x'", "got '330***-****-****-**15x'"),
        (
            "ids 330106 19820315 4015, 330102 19900708 3028.",
            "ids 330*** ******** **15, 330*** ******** **28.",
        ),
    ],
)
def test_an_id_number_typed_in_groups_is_masked(text: str, masked: str) -> None:
    assert mask_ids_in(text) == masked
    assert len(mask_ids_in(text)) == len(text)


@pytest.mark.parametrize(
    "text",
    [
        # phone numbers, alone and in lists
        "+86 138 0013 8000",
        "138-0013-8000, +86 139 5711 2345",
        "13800138000 13957112345",
        "+1 212 555 1234",
        # dates, times, amounts, counts, ids
        "listed on 2024-03-01, checked 2024-03-02 12:00:00",
        "between 2024-01-01 and 2024-12-31: 1,234,567.89 yuan in 12 loans",
        "2024.03.01 2024.03.02",
        "from 127.0.0.1:8000",
        "loan L-2024-0315-000123 of 50000",
        "impossible birth date 19900230",
        # a chain of 17 digits, or of 19 (two dates and a count; an id and a digit)
        "33010619820315401",
        "330106 19820315 401",
        "2024-01-01 2024-12-31 150",
        # 18 digits in groups that begin as no address code does: dates, addresses
        "2024-01-01 2024-12-31 15",
        "1982.03.15 2024.12.31 15",
        "192.168.100.200 10.0.0.12",
        "10.0.0.12 192.168.100.200",
        "172.16.254.1 10.20.30.40 5",
        "330106 19820315 4015 2",
        "1 330106 19820315 4015",
        "330106 19820315 40155",
        # separators that do not join: two hyphens, a slash, a comma, a tab
        "330106--19820315--4015",
        "330106/19820315/4015",
        "330106,19820315,4015",
        "330106\t19820315\t4015",
    ],
)
def test_what_is_no_id_number_is_left_alone(text: str) -> None:
    assert mask_ids_in(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # the plain form in a longer chain is masked as before
        ("330106198203154015 2", "330*************15 2"),
        ("1 330106198203154015", "1 330*************15"),
        ("2024-03-01 330106198203154015", "2024-03-01 330*************15"),
        ("1 33010619820315401X", "1 330*************1X"),
    ],
)
def test_a_run_of_18_is_masked_wherever_it_stands(text: str, masked: str) -> None:
    assert mask_ids_in(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # a message quotes a value with repr(), which writes these two spaces escaped
        (repr("330106\u00a019820315\u00a04015"), "'330***\\xa0********\\xa0**15'"),
        (repr("330106\u300019820315\u30004015"), "'330***\\u3000********\\u3000**15'"),
        ("'330106\\u00a019820315\\u00a04015'", "'330***\\u00a0********\\u00a0**15'"),
        # the digits of an escape are no part of an ID number beside it
        (repr("\u3000330106198203154015"), "'\\u3000330*************15'"),
        # an escape beside no ID number, and a chain of 19, are left alone
        (repr("a\\b \u00a0 2024-01-01"), repr("a\\b \u00a0 2024-01-01")),
        (repr("330106\u00a019820315\u00a040155"), repr("330106\u00a019820315\u00a040155")),
    ],
)
def test_an_id_number_grouped_by_escaped_spaces_is_masked(text: str, masked: str) -> None:
    assert mask_ids_in(text) == masked
    assert len(mask_ids_in(text)) == len(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # a message quotes a value with repr(), which escapes a control character, a line
        # separator or a lone surrogate: the escape's last hex digits are no digits of the
        # ID number after it (they made a run of 19 or more, which was shown in full)
        (repr("p\x07" + FULL), "'p\\x07330*************15'"),
        (repr("\x00" + FULL), "'\\x00330*************15'"),
        (repr("\x85" + FULL), "'\\x85330*************15'"),
        (repr("\u2028" + FULL), "'\\u2028330*************15'"),
        (repr("\U000e0001" + FULL), "'\\U000e0001330*************15'"),
        ("'p\\ud800" + FULL + "'", "'p\\ud800330*************15'"),
        (repr("\x07" + FULL + "\x07"), "'\\x07330*************15\\x07'"),
        (repr("\x01" + "330106 19820315 4015"), "'\\x01330*** ******** **15'"),
        # beside a run of 19 the escape changes nothing: no ID number
        (repr("\x07" + FULL + "5"), repr("\x07" + FULL + "5")),
        (repr("\x07" + "12"), repr("\x07" + "12")),
    ],
)
def test_the_digits_of_any_escape_are_no_part_of_an_id_number(text: str, masked: str) -> None:
    assert mask_ids_in(text) == masked
    assert len(mask_ids_in(text)) == len(text)
