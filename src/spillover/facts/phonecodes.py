"""Phone numbers as integers: E.164 text -> an int64 key that sorts like the text.

The loaders hand phone numbers over as E.164 text; hashing and sorting millions of
such strings is most of what indexing a large graph would cost. :func:`phone_keys`
turns each number into an integer (the digits padded to 15, times 16, plus the
count of digits) in a few whole-column Arrow operations, and :class:`PhoneCodes`
numbers the distinct ones densely, in text order. :mod:`spillover.data.fast` builds
them while it checks a folder (its period and link checks use them), and the batch
pass's index reuses them (:class:`~spillover.facts.columns.Codes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import csr, fixedtext

__all__ = [
    "PhoneCodes",
    "codes_in",
    "phone_keys",
    "phone_text",
    "sorted_unique",
    "string_array",
]


def string_array(values: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A string column as one Arrow array (numpy object/str arrays are converted).

    >>> string_array(np.array(["a", "b"], dtype=object)).to_pylist()
    ['a', 'b']
    """
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(np.asarray(values, dtype=object), pa.string())


def sorted_unique(*columns: np.ndarray | pa.Array) -> pa.Array:
    """The distinct strings of ``columns``, sorted (so codes sort like the strings)."""
    arrays = [string_array(c) for c in columns]
    distinct = pc.unique(pa.concat_arrays(arrays)) if arrays else pa.array([], pa.string())
    return distinct.take(pc.sort_indices(distinct))


def codes_in(universe: pa.Array, values: np.ndarray | pa.Array) -> np.ndarray:
    """Index of each value in ``universe`` (a hash lookup), -1 where absent."""
    found = pc.index_in(string_array(values), value_set=universe)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


#: the longest E.164 number: 15 digits after the "+"
_E164_DIGITS = 15


def phone_keys(numbers: np.ndarray | pa.Array) -> np.ndarray:
    """Each E.164 number as an int64 that sorts like its text; -1 for a value that is
    not ``+`` and 1 to 15 ASCII digits.

    The key is the digits padded on the right with zeros to 15 digits, times 16,
    plus the count of digits (1 to 15): a number that is a prefix of another sorts
    first, as its text does.

    >>> keys = phone_keys(pa.array(["+8613800000001", "+1", "+12", "x"]))
    >>> bool(keys[1] < keys[2] < keys[0]), int(keys[3])
    (True, -1)
    >>> [phone_text(int(k)) for k in keys[:3]]
    ['+8613800000001', '+1', '+12']
    """
    values = string_array(numbers)
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    fixed = _fixed_keys(values)
    if fixed is not None:
        return fixed
    size = pc.binary_length(values)
    digits = pc.utf8_slice_codeunits(values, 1)
    ok = pc.and_(
        pc.and_(pc.starts_with(values, "+"), pc.greater(size, 1)),
        pc.and_(pc.less_equal(size, _E164_DIGITS + 1), pc.ascii_is_decimal(digits)),
    )
    every = _true(ok)
    if not every:
        digits = pc.if_else(ok, digits, "0")
    padded = pc.cast(pc.utf8_rpad(digits, _E164_DIGITS, "0"), pa.int64()).to_numpy()
    keys = padded * 16 + (size.to_numpy().astype(np.int64) - 1)  # digits: size less the +
    return keys if every else np.where(ok.to_numpy(zero_copy_only=False), keys, -1)


def _fixed_keys(values: pa.Array) -> np.ndarray | None:
    """:func:`phone_keys` of a column of numbers all of one width, all ``+`` and digits,
    read from its bytes (no string per value); None for any other column."""
    m = fixedtext.matrix(values)
    if m is None or not 2 <= m.shape[1] <= _E164_DIGITS + 1:
        return None
    if not ((m[:, 0] == ord("+")).all() and fixedtext.all_digits(m[:, 1:])):
        return None
    count = m.shape[1] - 1
    keys = fixedtext.decimal(m[:, 1:])
    keys *= 10 ** (_E164_DIGITS - count) * 16  # in place: one int64 per number at a time
    keys += count
    return keys


def _distinct_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct :func:`phone_keys` of ``keys`` (none negative), sorted, and each
    key's index among them.

    Numbers of one width (a usual folder: every key ends in the same digit count) lie
    a whole number of steps apart (one step: the last digit's place); when the steps
    from the lowest key and the row number fit one int64 together, one sort of those
    packed (:func:`~spillover.facts.csr.sorted_packed`, numpy's SIMD sort) finds both,
    in about half the time of hashing the keys (docs/benchmarks.md, session 47). Any
    other set of keys: Arrow's dictionary encoding, then a sort of the distinct keys
    only.

    >>> distinct, codes = _distinct_codes(phone_keys(pa.array(["+862", "+861", "+862"])))
    >>> [phone_text(int(k)) for k in distinct], codes.tolist()
    (['+861', '+862'], [1, 0, 1])
    """
    rows = len(keys)
    count = int(keys[0]) % 16 if rows else 0
    if rows and bool((keys % 16 == count).all()):
        step = 16 * 10 ** (_E164_DIGITS - count)
        lowest = int(keys.min())
        steps = (keys - lowest) // step
        found = csr.sorted_packed(steps, int(steps.max()) + 1)
        if found is not None:
            packed, bits = found
            row = packed & ((1 << bits) - 1)
            packed >>= bits  # the steps + 1, sorted
            new = np.empty(rows, dtype=bool)
            new[0] = True
            np.not_equal(packed[1:], packed[:-1], out=new[1:])
            codes = np.empty(rows, dtype=np.int64)
            codes[row] = np.cumsum(new) - 1
            return (packed[new] - 1) * step + lowest, codes
    encoded = pc.dictionary_encode(pa.array(keys))
    distinct = encoded.dictionary.to_numpy()
    order = np.argsort(distinct)
    return distinct[order], csr.rank(order)[encoded.indices.to_numpy()]


def _true(mask: pa.Array) -> bool:
    """Every value true (an empty column counts as true)."""
    return pc.all(mask).as_py() in (True, None)


def phone_text(key: int) -> str:
    """The E.164 text of a :func:`phone_keys` key."""
    count = key % 16
    return "+" + str(key // 16 // 10 ** (_E164_DIGITS - count)).zfill(count)


@dataclass(frozen=True)
class PhoneCodes:
    """The phone numbers of an index: code ``i`` is the ``i``-th number in text order.

    Numbers are kept as :func:`phone_keys` integers, never as strings; should a
    source hand over a number that is not E.164, the numbers are kept as text
    (``texts``) and ``keys`` are their ranks.
    """

    keys: np.ndarray  # per code, sorted: the number's key (or its rank, with texts)
    texts: pa.Array | None = None

    def __len__(self) -> int:
        """How many distinct numbers."""
        return len(self.keys)

    @classmethod
    def build(cls, columns: Sequence[pa.Array | np.ndarray]) -> tuple[PhoneCodes, list[np.ndarray]]:
        """The numbers of ``columns`` (no empty values), and each column as codes.

        One hash pass over the keys of all columns (Arrow's dictionary encoding),
        then a sort of the distinct keys only."""
        keys = [phone_keys(c) for c in columns]
        every = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        if (every < 0).any():  # not all E.164: the numbers as text
            texts = sorted_unique(*(string_array(c) for c in columns))
            universe = np.arange(len(texts), dtype=np.int64)
            return cls(universe, texts), [codes_in(texts, c) for c in columns]
        distinct, codes = _distinct_codes(every)
        bounds = np.cumsum([0, *(len(k) for k in keys)])
        return cls(distinct), [codes[a:b] for a, b in pairwise(bounds)]

    def codes(self, numbers: np.ndarray | pa.Array) -> np.ndarray:
        """The code of each number, -1 where it is not one of these."""
        if self.texts is not None:
            return codes_in(self.texts, numbers)
        keys = phone_keys(numbers)
        if not len(self.keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where((keys >= 0) & (self.keys[pos] == keys), pos, -1).astype(np.int64)

    def text(self, code: int) -> str:
        """The number of a code, as E.164 text."""
        if self.texts is not None:
            return str(self.texts[code].as_py())
        return phone_text(int(self.keys[code]))
