"""One-width text columns read from their bytes agree with the per-value checks they replace."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from spillover.facts import fixedtext
from spillover.facts.columns import EPOCH_ORDINAL
from spillover.facts.phonecodes import phone_keys


def _day_or_none(text: str) -> int | None:
    try:
        return date.fromisoformat(text).toordinal() - EPOCH_ORDINAL
    except ValueError:
        return None


def _random_days(rng: random.Random, n: int) -> list[str]:
    digits = "0123456789"
    out = []
    for _ in range(n):
        year = rng.choice(["1900", "2000", "2023", "2024", "2100", "0000", "0001", "1999"])
        month = rng.choice(["01", "02", "12", "13", "00", "1x"])
        day = rng.choice(["01", "28", "29", "30", "31", "00", "32", rng.choice(digits) * 2])
        out.append(f"{year}-{month}-{day}" if rng.random() < 0.9 else f"{year}/{month}/{day}")
    return out


@pytest.mark.parametrize("seed", range(20))
def test_iso_days_agree_with_fromisoformat(seed):
    rng = random.Random(seed)
    for text in _random_days(rng, 50):
        m = np.frombuffer(text.encode(), dtype=np.uint8).reshape(1, 10)
        found = fixedtext.iso_days(m)
        expected = _day_or_none(text) if "/" not in text else None
        assert (None if found is None else int(found[0])) == expected, text
    texts = [t for t in _random_days(rng, 200) if "/" not in t and _day_or_none(t) is not None]
    found = fixedtext.iso_days(fixedtext.matrix(pa.array(texts)))
    assert found is not None
    assert found.tolist() == [_day_or_none(t) for t in texts]


def test_matrix_only_for_one_width_without_nulls():
    assert fixedtext.matrix(pa.array(["ab", "cd", "ef"]).slice(1)).tolist() == [
        [99, 100],
        [101, 102],
    ]
    assert fixedtext.matrix(pa.array(["ab", "c"])) is None
    assert fixedtext.matrix(pa.array(["ab", None])) is None
    assert fixedtext.matrix(pa.array(["", ""])) is None
    assert fixedtext.matrix(pa.array([], pa.string())) is None


def test_edges_are_the_first_and_last_bytes():
    first, last, empty = fixedtext.edges(pa.array(["ab", "", " c", "\u3000"]).slice(1))
    assert empty.tolist() == [True, False, False]
    assert first.tolist() == [ord(" "), 0xE3]
    assert last.tolist() == [ord("c"), 0x80]


@pytest.mark.parametrize(
    "numbers",
    [
        ["+8613800000001", "+8619912345678", "+8613800000001"],
        ["+1", "+9"],
        ["+123456789012345", "+999999999999999"],
        ["+8613800000001", "+861380000000x"],  # not all digits: the general reading
        ["8613800000001", "+8613800000001"],
    ],
)
def test_one_width_phone_keys_equal_the_general_reading(numbers):
    one_width = phone_keys(pa.array(numbers))
    general = phone_keys(pa.array([*numbers, "+12"]))[:-1]  # two widths: per value
    assert one_width.tolist() == general.tolist()
