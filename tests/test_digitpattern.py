"""The prefix table of a digit pattern answers what the pattern does (facts.digitpattern),
and the fast loader's column check of CN mobiles what CN_MOBILE_E164 does."""

from __future__ import annotations

import random
import re

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spillover.data import fast as fastload
from spillover.facts.digitpattern import PrefixTable, prefix_table
from spillover.facts.phones import CN_MOBILE_E164, mobile_pattern, mobile_prefixes


def _rows(texts: list[str], width: int) -> np.ndarray:
    return np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def _agree(pattern: str, table: PrefixTable, texts: list[str]) -> None:
    """The table's answers equal Python's and Arrow's (RE2) full matches of ``pattern``."""
    found = table.matches(_rows(texts, table.width)).tolist()
    assert found == [re.fullmatch(pattern, t, re.ASCII) is not None for t in texts]
    arrow = pc.match_substring_regex(pa.array(texts), f"^(?:{pattern})$").to_pylist()
    assert found == arrow


def _plans() -> list[tuple[str, str, PrefixTable]]:
    """Every region's mobile pattern that has a table: (region, pattern, table)."""
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is None or meta.mobile is None or meta.mobile.national_number_pattern is None:
            continue
        pattern = meta.mobile.national_number_pattern
        table = prefix_table(pattern)
        if table is not None:
            out.append((region, pattern, table))
    return out


def test_the_mainland_table_agrees_with_the_pattern_on_every_prefix() -> None:
    """Every one of the 10**5 five-digit prefixes, each with three completions (zeros,
    nines, seeded random digits): the same answer as the pattern, Python's and RE2's."""
    _, national = mobile_pattern("CN")
    pattern = national.removeprefix("^(?:").removesuffix(")$")
    table = prefix_table(pattern)
    assert table is not None and (table.width, table.depth) == (11, 5)
    rng = random.Random(5)
    texts = [
        f"{p:05d}{tail}"
        for p in range(10**5)
        for tail in ("000000", "999999", f"{rng.randrange(10**6):06d}")
    ]
    _agree(pattern, table, texts)


def test_most_regions_have_a_table_and_each_agrees_with_its_pattern() -> None:
    """Seeded samples per region: allowed prefixes with random tails, random digits,
    and a non-digit put anywhere."""
    plans = _plans()
    assert len(plans) > 150  # (201 of phonenumbers 9's regions when written)
    rng = random.Random(7)
    for _, pattern, table in plans:
        allowed = np.flatnonzero(table.allowed)
        texts = []
        for _ in range(200):
            prefix = f"{int(rng.choice(allowed)):0{table.depth}d}" if table.depth else ""
            tail = "".join(rng.choice("0123456789") for _ in range(table.width - table.depth))
            texts.append(prefix + tail)
            texts.append("".join(rng.choice("0123456789") for _ in range(table.width)))
            spoiled = list(prefix + tail)
            spoiled[rng.randrange(table.width)] = rng.choice("x/ +")
            texts.append("".join(spoiled))
        _agree(pattern, table, texts)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(["1", "2", r"\d", "[0-3]", "[13-5]", "(?:4|5)", "(?:6[7-9]|70)"]),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 3),
    st.data(),
)
def test_any_pattern_of_the_language_agrees(parts: list[str], count: int, data) -> None:
    """Patterns built from the language's pieces, with a fixed count: a table that
    agrees with the pattern on strings drawn from it and from random digits."""
    pattern = "".join(parts) + (rf"\d{{{count}}}" if count else "")
    table = prefix_table(pattern)
    if table is None:  # only when the restricted digits reach past the table's depth
        widths = [2 if p.startswith("(?:6") else 1 for p in parts]
        last = max(i for i, p in enumerate(parts) if p != r"\d") if set(parts) - {r"\d"} else -1
        assert sum(widths[: last + 1]) > 6
        return
    width = table.width
    texts = [data.draw(st.from_regex(f"\\A(?:{pattern})\\Z", fullmatch=True)) for _ in range(3)]
    texts = [t for t in texts if t.isascii() and len(t) == width]
    texts += [data.draw(st.text("0123456789", min_size=width, max_size=width)) for _ in range(5)]
    _agree(pattern, table, texts)


@pytest.mark.parametrize(
    "pattern",
    [
        r"1\d{7,8}",  # two lengths
        r"1(?:2|34)",  # alternatives of two lengths
        r"1?2",
        r"1*",
        r"[^1]2",
        r"(1)2",  # a capturing group
        r"1.",
        r"a1",
        r"1\d{2}{3}",
        r"\d{7}[1-2]",  # restricted past six digits
        r"1(?:2",
        "",
    ],
)
def test_anything_outside_the_language_has_no_table(pattern: str) -> None:
    assert prefix_table(pattern) is None


def test_a_table_refuses_rows_of_another_width() -> None:
    table = prefix_table(r"1\d")
    assert table is not None
    with pytest.raises(ValueError, match="rows of 2"):
        table.matches(_rows(["123"], 3))


def test_the_loaders_column_check_equals_the_e164_pattern() -> None:
    """``fast._cn_mobiles`` says "all CN mobiles" exactly when CN_MOBILE_E164 matches every
    value (and else leaves the answer to it: False)."""
    lead, table = mobile_prefixes("CN") or (b"", None)
    assert lead == b"+86" and table is not None
    rng = random.Random(11)
    good = [f"+861{rng.choice('38')}{rng.randrange(10**9):09d}" for _ in range(2000)]
    column = pa.array(good)
    assert pc.all(pc.match_substring_regex(column, CN_MOBILE_E164)).as_py()
    assert fastload._cn_mobiles(column)
    for bad in ("+8612000000000", "+8513800000000", "+86138000000x0", "+861380000000", ""):
        spoiled = pa.array([*good[:10], bad, *good[10:20]])
        assert not pc.all(pc.match_substring_regex(spoiled, CN_MOBILE_E164)).as_py()
        assert not fastload._cn_mobiles(spoiled)
