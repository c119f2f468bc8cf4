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


def _random_ids(rng: random.Random, n: int) -> list[str]:
    """Ids of every shape a column may hold: prefix + digits of one width mostly, then
    other widths, other prefixes, letters, spaces, non-ASCII and empty cells."""
    odd = ["", "P1", "P00000001", "Q0000001", "P000000x", " P000001", "P000001 ", "Ｐ000001"]
    return [
        rng.choice(odd) if rng.random() < 0.2 else f"P{rng.randrange(0, 3 * n):06d}"
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(20))
def test_dense_ids_find_what_a_hash_lookup_finds(seed):
    rng = random.Random(seed)
    pool = list(dict.fromkeys(f"P{rng.randrange(0, 300):06d}" for _ in range(200)))
    dense = fixedtext.DenseIds.of(pa.array(pool))
    assert dense is not None
    values = _random_ids(rng, 500) + rng.sample(pool, 20)
    expected = [pool.index(v) if v in pool else -1 for v in values]
    assert dense.rows(pa.array(values)).tolist() == expected
    one_width = [v for v in values if len(v) == 7 and v.isascii()]
    assert dense.rows(pa.array(one_width)).tolist() == [
        pool.index(v) if v in pool else -1 for v in one_width
    ]
    assert dense.rows(pa.array(values).slice(7)).tolist() == expected[7:]


@pytest.mark.parametrize(
    "ids",
    [
        ["P1", "P22"],  # two widths
        ["P01", "Q02"],  # two prefixes
        ["P01", None],  # a null
        ["P0000000000000000001", "P0000000000000000002"],  # 19 digits
        ["P000000", "P999999"],  # too sparse for a table
    ],
)
def test_dense_ids_refuse_other_columns(ids):
    assert fixedtext.DenseIds.of(pa.array(ids, pa.string())) is None


def test_iso_shape_is_digits_and_dashes():
    def shaped(texts: list[str]) -> bool:
        return fixedtext.iso_shaped(fixedtext.matrix(pa.array(texts)))

    assert shaped(["2024-02-29", "0000-99-99"])
    assert not shaped(["2024-02-29", "2024/02/29"])
    assert not shaped(["2024-02-29", "2024-0a-29"])
    assert not shaped(["2024-02-2900"])
