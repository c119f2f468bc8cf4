"""Synthetic data folders with known ground truth, from a few people to millions.

:func:`generate` writes a contract-valid data folder (docs/contract.md §1: ``people``,
``platforms``, ``phones``, ``loans``, ``loan_links``, ``blacklist``, ``sharing``)
and, next to it, the ground truth the analyzer cannot see (``ground_truth/``):
for every blacklist entry the loan whose default caused it, how the platform's
policy reached the subject and whether the subject is someone else than the
defaulter (a spillover).

The generative model (documented in ``docs/synthetic-data.md``) in short:
people live in communities inside cities and have a small circle of
acquaintances; they own one or two mobile numbers (a few numbers are reassigned
to a new subscriber); a risky minority borrows much more and defaults much more;
loan applications name emergency contacts, references, guarantors and upload
address books, mostly from the circle; a few applications use a phone that is
not the applicant's. Platforms blacklist their delinquent borrowers, some also
list the phones (or their real-name owners) tied to the loan; data brokers copy
the lists they receive, banks and lenders list their customers found on the
lists shared with them.

Everything is drawn from one ``numpy.random.default_rng(seed)`` stream with
vectorised array operations, and the CSV files are assembled as byte matrices,
so that a million people take well under a minute. The same ``(people, seed,
params)`` always gives byte-identical files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from ..data.contract import FALSE, TRUE, columns
from ..data.formats import check_format, convert_folder
from ..facts.resident_id import CHECK_WEIGHTS
from ..files.write import atomic_folder
from .params import YEAR, SynthParams, check_target, read_params

__all__ = ["MECHANISMS", "SynthParams", "SynthSummary", "generate"]

#: ``progress(stage, done, total)``: called at the start and end of every stage
#: and after every chunk written.
Progress = Callable[[str, int, int], None]

#: Values of the ``mechanism`` column of ``ground_truth/entries.csv``.
MECHANISMS = ("own_default", "contact_listing", "misused_phone", "copy", "shared")
_OWN, _CONTACT, _MISUSED, _COPY, _SHARED = range(5)

#: Internal platform classes (``kind`` in platforms.csv is bank / data_broker / online_lender).
_BANK, _BROKER, _LENDER, _INFORMAL = range(4)

_ROLES = ("emergency_contact", "reference", "address_book", "guarantor")
_EC, _REF, _AB, _GUAR = range(4)

_STATUSES = ("current", "repaid", "overdue", "defaulted")
_CURRENT, _REPAID, _OVERDUE, _DEFAULTED = range(4)

_REASONS = (
    "loan defaulted",
    "loan overdue",
    "applicant phone of a defaulted loan",
    "applicant phone of an overdue loan",
    "emergency contact of a defaulter",
    "reference of a defaulter",
    "in a defaulter's address book",
    "guarantor of a defaulted loan",
    "multi-platform blacklist hit",
    "multi-platform blacklist hit (phone resolved to real-name owner)",
    "internet blacklist",
)
_R_CONTACT = 4  # + role code
_R_BROKER, _R_BROKER_RESOLVED, _R_SCREEN = 8, 9, 10

_MISSING = np.iinfo(np.int32).min  # a missing date / id in the internal arrays
_EPOCH = date(1970, 1, 1).toordinal()

# ---------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote."""

    out: Path  #: the data folder
    people: int
    seed: int
    counts: dict[str, int] = field(hash=False)  #: rows per data table
    truth_counts: dict[str, int] = field(hash=False)  #: rows per ground-truth table
    elapsed: float = field(compare=False)  #: seconds
    params: SynthParams = field(default_factory=SynthParams)


# ---------------------------------------------------------------------------------------------
# vocabulary

_CITIES = (
    ("Shanghai", 3101, 14), ("Beijing", 1101, 13), ("Shenzhen", 4403, 10),
    ("Guangzhou", 4401, 10), ("Chengdu", 5101, 9), ("Chongqing", 5001, 9),
    ("Hangzhou", 3301, 7), ("Wuhan", 4201, 7), ("Xian", 6101, 6), ("Suzhou", 3205, 6),
    ("Tianjin", 1201, 6), ("Nanjing", 3201, 5), ("Changsha", 4301, 5), ("Zhengzhou", 4101, 5),
    ("Dongguan", 4419, 5), ("Qingdao", 3702, 4), ("Shenyang", 2101, 4), ("Ningbo", 3302, 4),
    ("Kunming", 5301, 4), ("Hefei", 3401, 4), ("Foshan", 4406, 4), ("Wuxi", 3202, 3),
    ("Xiamen", 3502, 3), ("Harbin", 2301, 3), ("Jinan", 3701, 3), ("Fuzhou", 3501, 3),
    ("Wenzhou", 3303, 3), ("Dalian", 2102, 3), ("Changchun", 2201, 2), ("Nanning", 4501, 2),
    ("Shijiazhuang", 1301, 2), ("Guiyang", 5201, 2), ("Nanchang", 3601, 2), ("Taiyuan", 1401, 2),
    ("Xuzhou", 3203, 2), ("Lanzhou", 6201, 1), ("Urumqi", 6501, 1), ("Haikou", 4601, 1),
    ("Hohhot", 1501, 1), ("Yinchuan", 6401, 1), ("Xining", 6301, 1),
)  # fmt: skip
_SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Ma", "Zhu", "Hu", "Guo", "He", "Gao", "Lin", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang",
    "Han", "Feng", "Deng", "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai",
    "Jiang", "Yu", "Du", "Ye", "Cheng", "Wei", "Su", "Lu", "Ding", "Ren", "Shen", "Yao", "Fan",
)  # fmt: skip
_GIVEN = (
    "Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie",
    "Tao", "Ming", "Chao", "Xiu", "Xia", "Ping", "Gang", "Gui", "Hui", "Hong", "Lan", "Mei", "Hua",
    "Jian", "Bo", "Ning", "Yu", "Xin", "Hao", "Yi", "Chen", "Rui", "Zi", "Han", "Yun", "Kai", "Long",
)  # fmt: skip
_MOBILE_PREFIXES = (
    130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 145, 147, 150, 151, 152, 153, 155, 156, 157,
    158, 159, 166, 170, 171, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188,
    189, 191, 193, 195, 196, 197, 198, 199,
)  # fmt: skip
_PLACES = (
    "Qiantang", "Westlake", "Zhemin", "Huaxia", "Jinling", "Minjiang", "Pearl River", "Yangtze",
    "Taihu", "Lingnan", "Bashu", "Qilu", "Jianghuai", "Songliao", "Tianfu", "Haixi", "Zhongyuan",
    "Jingjin", "Yunling", "Guanzhong",
)  # fmt: skip
_BANK_SUFFIXES = ("Commercial Bank", "Rural Bank", "City Bank", "Merchants Bank", "Trust Bank")
_LENDER_WORDS = (
    "Quick", "Easy", "Happy", "Golden", "Lucky", "Star", "Cloud", "Jade", "Pearl", "Dragon",
    "Phoenix", "Lotus", "Bamboo", "Panda", "Sunny", "Rapid", "Smart", "Silver", "Red", "Blue",
    "Huaqian", "Yidai", "Xiaoyu", "Anxin", "Jiedai", "Lanhai", "Money", "Pocket", "Flash", "Swift",
)  # fmt: skip
_LENDER_SUFFIXES = ("Cash", "Loan", "Credit", "Wallet", "Fund", "Lend", "Finance", "Microcredit")
_BROKER_WORDS = ("Tianyan", "Zhixin", "Bairong", "Tongdun", "Xinde", "Shujia", "Ruixin", "Hengxin")
_BROKER_SUFFIXES = ("Big Data", "Credit Data", "Risk Data", "Data Services")


# ---------------------------------------------------------------------------------------------
# byte-matrix CSV assembly: every column is an (n, width) uint8 matrix padded with NUL bytes;
# a row is its columns joined by commas, and the NULs are dropped when the chunk is written.


def _table(strings: Sequence[str]) -> np.ndarray:
    """Lookup matrix of ``strings``; one extra all-NUL row at the end, so index -1 is empty."""
    encoded = [s.encode() for s in strings]
    width = max([1, *map(len, encoded)])
    out = np.zeros((len(encoded) + 1, width), np.uint8)
    for i, text in enumerate(encoded):
        out[i, : len(text)] = np.frombuffer(text, np.uint8)
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = 48 + v % 10
        v //= 10
    return out


def _number(values: np.ndarray) -> np.ndarray:
    """Decimal digits without leading zeros."""
    v = np.asarray(values, dtype=np.int64)
    width = len(str(int(v.max()))) if v.size else 1
    out = _digits(v, width)
    if width > 1:
        lead = np.cumprod(out[:, :-1] == 48, axis=1).astype(bool)
        out[:, :-1][lead] = 0
    return out


def _ids(prefix: bytes, values: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded ``values + 1``; a negative value gives an empty cell."""
    values = np.asarray(values)
    missing = values < 0
    out = np.concatenate(
        [
            np.broadcast_to(np.frombuffer(prefix, np.uint8), (values.size, len(prefix))),
            _digits(np.where(missing, 0, values + 1), width),
        ],
        axis=1,
    )
    out[missing] = 0
    return out


def _phones(numbers: np.ndarray) -> np.ndarray:
    """E.164 ``+86`` + 11 digits; a negative number gives an empty cell."""
    missing = numbers < 0
    out = np.concatenate(
        [
            np.broadcast_to(np.frombuffer(b"+86", np.uint8), (numbers.size, 3)),
            _digits(np.where(missing, 0, numbers), 11),
        ],
        axis=1,
    )
    out[missing] = 0
    return out


class _Dates:
    """ISO date strings for every day of a range, as a lookup matrix."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        days = np.arange(first, last + 1).astype("datetime64[D]")
        text = np.datetime_as_string(days).astype("S10")
        self.matrix = np.concatenate(
            [text.view(np.uint8).reshape(-1, 10), np.zeros((1, 10), np.uint8)]
        )

    def iso(self, days: np.ndarray) -> np.ndarray:
        idx = np.where(days == _MISSING, -1, days - self.first)
        return self.matrix[idx]

    def compact(self, days: np.ndarray) -> np.ndarray:
        """``YYYYMMDD`` (for resident ID numbers)."""
        return self.iso(days)[:, [0, 1, 2, 3, 5, 6, 8, 9]]


_BOOL = _table([FALSE, TRUE])


def _bools(values: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    idx = np.asarray(values, dtype=np.int64)
    if missing is not None:
        idx = np.where(missing, -1, idx)
    return _BOOL[idx]


Builder = Callable[[slice], list[np.ndarray]]


class _Writer:
    def __init__(self, report: Progress, chunk: int = 200_000) -> None:
        self.report = report
        self.chunk = chunk

    def write(self, path: Path, stage: str, header: Sequence[str], n: int, build: Builder) -> int:
        self.report(stage, 0, n)
        with path.open("wb") as handle:
            handle.write((",".join(header) + "\n").encode())
            for lo in range(0, n, self.chunk):
                hi = min(n, lo + self.chunk)
                parts: list[np.ndarray] = []
                comma = np.full((hi - lo, 1), 44, np.uint8)
                for i, column in enumerate(build(slice(lo, hi))):
                    if i:
                        parts.append(comma)
                    parts.append(column)
                parts.append(np.full((hi - lo, 1), 10, np.uint8))
                flat = np.concatenate(parts, axis=1).ravel()
                handle.write(flat[flat != 0].tobytes())
                self.report(stage, hi, n)
        return n


def _write_text(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return len(rows)


# ---------------------------------------------------------------------------------------------
# helpers


def _day(d: date) -> int:
    return d.toordinal() - _EPOCH


def _iso(day: int) -> str:
    return date.fromordinal(day + _EPOCH).isoformat()


def _first_per_group(keys: Sequence[np.ndarray], listed: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the earliest row (by ``listed``, then ``tie``) of every key group."""
    n = listed.size
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((tie, listed, *reversed(keys)))
    new = np.zeros(n, bool)
    new[0] = True
    for key in keys:
        k = key[order]
        new[1:] |= k[1:] != k[:-1]
    return np.sort(order[new])


def _width(count: int) -> int:
    return max(6, len(str(count)))


# ---------------------------------------------------------------------------------------------
# the world


@dataclass
class _Platforms:
    ids: list[str]
    names: list[str]
    cls: np.ndarray  # _BANK / _BROKER / _LENDER / _INFORMAL
    lists_app: np.ndarray
    lists_contacts: np.ndarray
    lists_owner: np.ndarray
    lists_ab: np.ndarray
    uploads_ab: np.ndarray
    resolves: np.ndarray
    weight: np.ndarray
    share_from: np.ndarray
    share_to: np.ndarray
    share_since: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class _People:
    n: int
    community: np.ndarray
    city: np.ndarray  # index into _CITIES, -1 unknown (data); true city in city_true
    city_true: np.ndarray
    circle: np.ndarray  # (n, k) person indices
    risky: np.ndarray
    birth: np.ndarray
    district: np.ndarray
    seq: np.ndarray
    has_id: np.ndarray
    surname: np.ndarray
    given1: np.ndarray
    given2: np.ndarray


@dataclass
class _Phones:
    number: np.ndarray  # per phone index
    cur_owner: np.ndarray
    cur_since: np.ndarray
    cur_known: np.ndarray
    cur_verified: np.ndarray
    prev_owner: np.ndarray  # -1 when the number was never reassigned
    prev_since: np.ndarray
    prev_until: np.ndarray
    prev_known: np.ndarray
    prev_verified: np.ndarray
    # per person
    sec: np.ndarray
    sec_since: np.ndarray
    ex: np.ndarray
    ex_since: np.ndarray
    ex_until: np.ndarray

    def owner_at(self, x: np.ndarray, t: np.ndarray, registered: bool = False) -> np.ndarray:
        """The (true, or registered in the data) owner of phones ``x`` on days ``t``; -1 none."""
        cur = self.cur_owner[x]
        if registered:
            cur = np.where(self.cur_known[x], cur, -1)
        owner = np.where(t >= self.cur_since[x], cur, -1)
        prev = self.prev_owner[x]
        if registered:
            prev = np.where(self.prev_known[x], prev, -1)
        in_prev = (self.prev_owner[x] >= 0) & (t >= self.prev_since[x]) & (t <= self.prev_until[x])
        return np.where(in_prev, prev, owner).astype(np.int64)

    def phone_at(
        self,
        person: np.ndarray,
        t: np.ndarray,
        rng: np.random.Generator,
        p_alt: float,
        p_stale: float = 0.0,
    ) -> np.ndarray:
        """The number ``person`` gives on day ``t``: the first one, sometimes another valid one,
        and (for contacts, ``p_stale``) sometimes an old number that now belongs to someone else."""
        n = person.size
        choice = person.astype(np.int64)  # the first number of person i is phone index i
        alt = rng.random(n) < p_alt
        sec = self.sec[person]
        valid_sec = (sec >= 0) & (self.sec_since[person] <= t)
        choice = np.where(alt & valid_sec, sec, choice)
        ex = self.ex[person]
        has_ex = ex >= 0
        valid_ex = has_ex & (self.ex_since[person] <= t) & (t <= self.ex_until[person])
        choice = np.where(alt & valid_ex, ex, choice)
        if p_stale > 0:
            stale = has_ex & (t > self.ex_until[person]) & (rng.random(n) < p_stale)
            choice = np.where(stale, ex, choice)
        return choice


@dataclass
class _Loans:
    n: int
    borrower: np.ndarray
    platform: np.ndarray
    applied: np.ndarray
    status: np.ndarray
    status_at: np.ndarray
    amount: np.ndarray
    phone: np.ndarray
    user: np.ndarray  # true owner of the applicant phone at application
    misused: np.ndarray
    verified: np.ndarray


@dataclass
class _Links:
    loan: np.ndarray
    phone: np.ndarray
    role: np.ndarray
    person: np.ndarray  # the person the borrower meant


_ENTRY_FIELDS = (
    "plat", "kind", "subj", "listed", "cause", "mech", "src", "src_true", "root", "via",
    "linked", "reason", "role",
)  # fmt: skip


@dataclass
class _Entries:
    plat: np.ndarray
    kind: np.ndarray  # 0 person, 1 phone
    subj: np.ndarray  # person index or phone index
    listed: np.ndarray
    cause: np.ndarray  # loan index
    mech: np.ndarray
    src: np.ndarray  # recorded source (copied_from), global index or -1
    src_true: np.ndarray  # true source, -1 for a platform's own listing
    root: np.ndarray  # the own-policy entry this one descends from
    via: np.ndarray  # the phone through which the root reached the subject, -1 none
    linked: (
        np.ndarray
    )  # the person the cause loan tied to the subject (borrower, phone user, contact)
    reason: np.ndarray
    role: np.ndarray  # link role of a contact listing, -1 otherwise

    @property
    def n(self) -> int:
        return self.plat.size

    def take(self, idx: np.ndarray) -> _Entries:
        return _Entries(*(getattr(self, f)[idx] for f in _ENTRY_FIELDS))

    @staticmethod
    def concat(parts: Sequence[_Entries]) -> _Entries:
        return _Entries(
            *(
                np.concatenate([getattr(p, f) for p in parts]).astype(np.int64)
                for f in _ENTRY_FIELDS
            )
        )

    @staticmethod
    def empty() -> _Entries:
        return _Entries(*(np.zeros(0, np.int64) for _ in _ENTRY_FIELDS))


def _entries(**columns: Any) -> _Entries:
    n = next(np.asarray(v).size for v in columns.values() if np.ndim(v) > 0)
    values = []
    for f in _ENTRY_FIELDS:
        v = columns.get(f, -1)
        values.append(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy())
    return _Entries(*values)


# ---------------------------------------------------------------------------------------------
# generation stages


def _make_platforms(people: int, p: SynthParams, rng: np.random.Generator) -> _Platforms:
    n = p.platforms or int(np.clip(people // 100, 4, 30))
    banks = max(1, round(n * p.bank_share))
    brokers = max(1, round(n * p.broker_share))
    lenders = n - banks - brokers
    if lenders < 2:
        banks, brokers, lenders = 1, 1, n - 2
    informal = min(lenders - 1, max(1, round(lenders * p.informal_share)))
    lender_cls = np.full(lenders, _LENDER, np.int64)
    lender_cls[rng.permutation(lenders)[:informal]] = _INFORMAL
    cls = np.concatenate(
        [np.full(banks, _BANK, np.int64), np.full(brokers, _BROKER, np.int64), lender_cls]
    )

    def names(words: Sequence[str], suffixes: Sequence[str], k: int) -> list[str]:
        combos = [f"{w} {s}" for w in words for s in suffixes]
        picked = rng.permutation(len(combos))
        return [
            combos[picked[i % len(combos)]]
            + (f" {i // len(combos) + 1}" if i >= len(combos) else "")
            for i in range(k)
        ]

    def ids(prefix: str, k: int) -> list[str]:
        w = max(2, len(str(k)))
        return [f"{prefix}{i + 1:0{w}d}" for i in range(k)]

    is_lender = (cls == _LENDER) | (cls == _INFORMAL)
    lists_app = is_lender & (rng.random(n) < p.p_lists_applicant_phone)
    lists_contacts = is_lender & (rng.random(n) < p.p_lists_contacts)
    lists_owner = lists_contacts & (rng.random(n) < p.p_lists_owner)
    lists_ab = lists_contacts & (rng.random(n) < p.p_lists_address_book)
    ab_p = np.where(
        cls == _INFORMAL,
        p.p_address_book_informal,
        np.where(cls == _LENDER, p.p_address_book_verifying, 0.0),
    )
    uploads_ab = rng.random(n) < ab_p
    resolves = (cls == _BROKER) & (rng.random(n) < p.p_broker_resolves)
    # small worlds still show every mechanism: the first informal lender has every policy,
    # the first broker resolves phones to owners
    first_informal = int(np.flatnonzero(cls == _INFORMAL)[0])
    lists_app[first_informal] = lists_contacts[first_informal] = True
    uploads_ab[first_informal] = lists_ab[first_informal] = True
    resolves[banks] = True
    weight = rng.lognormal(0.0, 0.8, n)

    start, end = _day(p.start), _day(p.end)
    span = end - start
    bank_idx = np.arange(banks)
    broker_idx = np.arange(banks, banks + brokers)
    lender_idx = np.arange(banks + brokers, n)
    pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def edges(
        src: np.ndarray, dst: np.ndarray, prob: float, lo: float, hi: float, force: bool
    ) -> None:
        mask = rng.random((src.size, dst.size)) < prob
        mask &= src[:, None] != dst[None, :]
        if force:  # every receiver gets at least one source
            for col in range(dst.size):
                if not mask[:, col].any():
                    options = np.flatnonzero(src != dst[col])
                    mask[options[rng.integers(options.size)], col] = True
        i, j = np.nonzero(mask)
        since = start + rng.integers(int(lo * span), int(hi * span) + 1, i.size)
        pairs.append((src[i], dst[j], since))

    edges(lender_idx, broker_idx, p.p_lender_to_broker, 0.0, 0.5, True)
    edges(broker_idx, bank_idx, p.p_broker_to_bank, 0.1, 0.6, True)
    edges(lender_idx, lender_idx, p.p_lender_to_lender, 0.0, 0.7, False)
    share_from = np.concatenate([e[0] for e in pairs])
    share_to = np.concatenate([e[1] for e in pairs])
    share_since = np.concatenate([e[2] for e in pairs])
    order = np.lexsort((share_to, share_from))
    lender_names = names(_LENDER_WORDS, _LENDER_SUFFIXES, lenders)
    return _Platforms(
        ids=ids("bank", banks) + ids("brok", brokers) + ids("lend", lenders),
        names=names(_PLACES, _BANK_SUFFIXES, banks)
        + names(_BROKER_WORDS, _BROKER_SUFFIXES, brokers)
        + lender_names,
        cls=cls,
        lists_app=lists_app,
        lists_contacts=lists_contacts,
        lists_owner=lists_owner,
        lists_ab=lists_ab,
        uploads_ab=uploads_ab,
        resolves=resolves,
        weight=weight,
        share_from=share_from[order],
        share_to=share_to[order],
        share_since=share_since[order],
    )


def _make_people(n: int, p: SynthParams, rng: np.random.Generator) -> _People:
    sizes = rng.integers(p.community_min, p.community_max + 1, n // p.community_min + 2)
    bounds = np.cumsum(sizes)
    count = int(np.searchsorted(bounds, n)) + 1
    sizes = sizes[:count].copy()
    sizes[-1] -= int(bounds[count - 1]) - n
    if count > 1 and sizes[-1] < 2:
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    community = np.repeat(np.arange(sizes.size), sizes)
    c_start = starts[community]
    c_size = sizes[community]
    k = p.circle_size
    offset = rng.integers(0, np.maximum(c_size - 1, 1)[:, None], (n, k))
    me = np.arange(n)
    circle = c_start[:, None] + ((me - c_start)[:, None] + 1 + offset) % c_size[:, None]
    lonely = c_size < 2
    if lonely.any():  # only when n is tiny: acquaintances from anywhere
        circle[lonely] = (me[lonely, None] + 1 + rng.integers(0, n - 1, (lonely.sum(), k))) % n
    city_weight = np.array([c[2] for c in _CITIES], float)
    comm_city = rng.choice(len(_CITIES), sizes.size, p=city_weight / city_weight.sum())
    city_true = comm_city[community]
    city = np.where(rng.random(n) < p.p_no_city, -1, city_true)
    start = _day(p.start)
    birth = start - rng.integers(18 * YEAR, 65 * YEAR, n)
    surname_w = 1.0 / np.arange(1, len(_SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(_SURNAMES), n, p=surname_w / surname_w.sum())
    given1 = rng.integers(0, len(_GIVEN), n)
    given2 = np.where(rng.random(n) < 0.6, rng.integers(0, len(_GIVEN), n), -1)
    district = rng.integers(1, 13, n)
    seq = rng.integers(0, 1000, n)
    has_id = rng.random(n) >= p.p_no_id_number
    # resident ID numbers must be unique: a duplicate (rare) is left out of the data
    key = ((np.array([c[1] for c in _CITIES])[city_true] * 100 + district) * 100_000 + birth) * 1000
    key = key + seq
    _, first = np.unique(key, return_index=True)
    unique = np.zeros(n, bool)
    unique[first] = True
    has_id &= unique
    return _People(
        n=n,
        community=community,
        city=city,
        city_true=city_true,
        circle=circle.astype(np.int32),
        risky=rng.random(n) < p.risky_share,
        birth=birth,
        district=district,
        seq=seq,
        has_id=has_id,
        surname=surname,
        given1=given1,
        given2=given2,
    )


def _unique_numbers(m: int, rng: np.random.Generator) -> np.ndarray:
    prefixes = np.array(_MOBILE_PREFIXES, np.int64)
    numbers = np.zeros(0, np.int64)
    while numbers.size < m:
        extra = m - numbers.size + m // 50 + 64
        draw = prefixes[rng.integers(0, prefixes.size, extra)] * 10**8 + rng.integers(
            0, 10**8, extra
        )
        numbers = np.concatenate([numbers, draw])
        _, first = np.unique(numbers, return_index=True)
        numbers = numbers[np.sort(first)]
    return numbers[:m]


def _make_phones(people: _People, p: SynthParams, rng: np.random.Generator) -> _Phones:
    n = people.n
    start, end = _day(p.start), _day(p.end)
    has_sec = rng.random(n) < p.p_second_phone
    sec_owner = np.flatnonzero(has_sec)
    n_sec = sec_owner.size
    m = n + n_sec
    number = _unique_numbers(m, rng)
    cur_owner = np.concatenate([np.arange(n), sec_owner])
    cur_since = np.concatenate(
        [
            start - rng.integers(1, 15 * YEAR, n),
            rng.integers(start - 10 * YEAR, end - 180, n_sec),
        ]
    )
    sec = np.full(n, -1, np.int64)
    sec[sec_owner] = n + np.arange(n_sec)
    # reassigned numbers: the second number of B belonged to A until the day before B got it
    reassigned = np.flatnonzero(rng.random(n_sec) < p.p_reassigned)
    new_since = rng.integers(start + 60, end - 180, reassigned.size)
    previous = rng.permutation(n)[: reassigned.size]
    ok = previous != sec_owner[reassigned]
    reassigned, new_since, previous = reassigned[ok], new_since[ok], previous[ok]
    x = n + reassigned
    cur_since[x] = new_since
    prev_owner = np.full(m, -1, np.int64)
    prev_since = np.full(m, _MISSING, np.int64)
    prev_until = np.full(m, _MISSING, np.int64)
    prev_owner[x] = previous
    prev_until[x] = new_since - 1
    prev_since[x] = prev_until[x] - rng.integers(YEAR, 8 * YEAR, x.size)
    ex = np.full(n, -1, np.int64)
    ex_since = np.full(n, _MISSING, np.int64)
    ex_until = np.full(n, _MISSING, np.int64)
    ex[previous] = x
    ex_since[previous] = prev_since[x]
    ex_until[previous] = prev_until[x]
    cur_known = rng.random(m) >= p.p_owner_unknown
    prev_known = rng.random(m) >= p.p_owner_unknown
    return _Phones(
        number=number,
        cur_owner=cur_owner,
        cur_since=cur_since,
        cur_known=cur_known,
        cur_verified=rng.random(m) >= p.p_phone_unverified,
        prev_owner=prev_owner,
        prev_since=prev_since,
        prev_until=prev_until,
        prev_known=prev_known,
        prev_verified=rng.random(m) >= p.p_phone_unverified,
        sec=sec,
        sec_since=np.where(has_sec, cur_since[np.maximum(sec, 0)], _MISSING),
        ex=ex,
        ex_since=ex_since,
        ex_until=ex_until,
    )


def _class_probs(plat: _Platforms, shares: tuple[float, float, float]) -> np.ndarray:
    probs = np.zeros(plat.n)
    for share, c in zip(shares, (_BANK, _LENDER, _INFORMAL), strict=True):
        members = plat.cls == c
        probs[members] = share * plat.weight[members] / plat.weight[members].sum()
    return np.cumsum(probs / probs.sum())


def _make_loans(
    people: _People, phones: _Phones, plat: _Platforms, p: SynthParams, rng: np.random.Generator
) -> _Loans:
    n = people.n
    start, end = _day(p.start), _day(p.end)
    base = p.loans_mean / (1 + p.risky_share * (p.risky_loan_factor - 1))
    mean = np.where(people.risky, base * p.risky_loan_factor, base)
    counts = rng.negative_binomial(
        p.loans_dispersion, p.loans_dispersion / (p.loans_dispersion + mean)
    )
    counts = np.minimum(counts, p.max_loans)
    borrower = np.repeat(np.arange(n), counts)
    applied = rng.integers(start, end + 1, borrower.size)
    order = np.lexsort((borrower, applied))
    borrower, applied = borrower[order], applied[order]
    size = borrower.size
    risky = people.risky[borrower]

    cum_n = _class_probs(plat, p.share_normal)
    cum_r = _class_probs(plat, p.share_risky)
    u = rng.random(size)
    platform = np.where(
        risky, np.searchsorted(cum_r, u, side="right"), np.searchsorted(cum_n, u, side="right")
    )
    platform = np.minimum(platform, plat.n - 1)
    cls = plat.cls[platform]
    is_bank, is_informal = cls == _BANK, cls == _INFORMAL

    term = np.where(
        is_bank,
        rng.integers(180, 1096, size),
        np.where(is_informal, rng.integers(7, 61, size), rng.integers(30, 366, size)),
    )
    kind_factor = np.array(p.risk_by_kind)[np.where(is_bank, 0, np.where(is_informal, 2, 1))]
    p_bad = np.where(risky, p.p_bad_risky, p.p_bad_normal) * kind_factor
    p_late = np.where(risky, p.p_late_risky, p.p_late_normal) * kind_factor
    u = rng.random(size)
    bad = u < p_bad
    late = ~bad & (u < p_bad + p_late)
    good = ~bad & ~late
    due = applied + term
    repaid_at = applied + (term * rng.uniform(0.3, 1.0, size)).astype(np.int64)
    overdue_at = due + rng.integers(1, 31, size)
    default_at = due + rng.integers(60, 151, size)
    status = np.full(size, _CURRENT, np.int64)
    status_at = np.full(size, _MISSING, np.int64)
    done = good & (due <= end)
    status[done], status_at[done] = _REPAID, repaid_at[done]
    over = ~good & (overdue_at <= end)
    status[over], status_at[over] = _OVERDUE, overdue_at[over]
    gone = bad & (default_at <= end)
    status[gone], status_at[gone] = _DEFAULTED, default_at[gone]

    amount = np.where(
        is_bank,
        np.round(rng.lognormal(np.log(60_000), 0.8, size), -3),
        np.where(
            is_informal,
            np.round(rng.lognormal(np.log(1_500), 0.6, size), -2),
            np.round(rng.lognormal(np.log(5_000), 0.7, size), -2),
        ),
    )
    amount = np.maximum(amount, 100).astype(np.int64)

    own = phones.phone_at(borrower, applied, rng, p.p_use_second_phone)
    p_misuse = np.where(
        is_bank, p.p_misuse_bank, np.where(is_informal, p.p_misuse_informal, p.p_misuse_verifying)
    ) * np.where(risky, p.misuse_risky_factor, 1.0)
    misused = rng.random(size) < p_misuse
    idx = np.flatnonzero(misused)
    acquaintance = rng.random(idx.size) < p.p_misuse_acquaintance
    other = np.where(
        acquaintance,
        people.circle[borrower[idx], rng.integers(0, p.circle_size, idx.size)],
        rng.integers(0, n, idx.size),
    ).astype(np.int64)
    other = np.where(other == borrower[idx], (other + 1) % n, other)
    phone = own.copy()
    phone[idx] = phones.phone_at(other, applied[idx], rng, p.p_use_second_phone)
    user = borrower.copy()
    user[idx] = other
    verifies = plat.cls[platform] != _INFORMAL
    return _Loans(
        n=size,
        borrower=borrower,
        platform=platform,
        applied=applied,
        status=status,
        status_at=status_at,
        amount=amount,
        phone=phone,
        user=user,
        misused=misused,
        verified=verifies,
    )


def _make_links(
    people: _People,
    phones: _Phones,
    plat: _Platforms,
    loans: _Loans,
    p: SynthParams,
    rng: np.random.Generator,
) -> _Links:
    n, k = people.n, p.circle_size
    cls = plat.cls[loans.platform]
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    def contacts(loan: np.ndarray, slot: np.ndarray, role: int, out_of_circle: bool) -> None:
        person = people.circle[loans.borrower[loan], slot].astype(np.int64)
        if out_of_circle:
            away = rng.random(loan.size) < p.p_out_of_circle
            person[away] = rng.integers(0, n, int(away.sum()))
        parts.append((loan, person, role))

    everyone = np.arange(loans.n)
    second = (cls != _BANK) & (rng.random(loans.n) < p.p_second_contact)
    ec = np.concatenate([everyone, np.flatnonzero(second)])
    ec.sort(kind="stable")
    slot = np.minimum(rng.geometric(0.5, ec.size) - 1, k - 1)
    contacts(ec, slot, _EC, True)
    ref = np.flatnonzero(rng.random(loans.n) < p.p_reference)
    contacts(ref, rng.integers(0, k, ref.size), _REF, True)
    p_guar = np.where(cls == _BANK, p.p_guarantor_bank, p.p_guarantor_lender)
    guar = np.flatnonzero(rng.random(loans.n) < p_guar)
    contacts(guar, rng.integers(0, k, guar.size), _GUAR, True)
    ab_loans = np.flatnonzero(plat.uploads_ab[loans.platform])
    size = rng.integers(p.address_book_min, p.address_book_max + 1, ab_loans.size)
    size = np.minimum(size, k)
    first = rng.integers(0, k, ab_loans.size)
    ab = np.repeat(ab_loans, size)
    within = np.arange(ab.size) - np.repeat(np.cumsum(size) - size, size)
    contacts(ab, (np.repeat(first, size) + within) % k, _AB, False)

    loan = np.concatenate([x[0] for x in parts])
    person = np.concatenate([x[1] for x in parts])
    role = np.concatenate([np.full(x[0].size, x[2], np.int64) for x in parts])
    keep = person != loans.borrower[loan]
    loan, person, role = loan[keep], person[keep], role[keep]
    phone = phones.phone_at(
        person, loans.applied[loan], rng, p.p_use_second_phone, p.p_stale_number
    )
    order = np.lexsort((phone, role, loan))
    loan, phone, role, person = loan[order], phone[order], role[order], person[order]
    new = np.ones(loan.size, bool)
    new[1:] = (loan[1:] != loan[:-1]) | (role[1:] != role[:-1]) | (phone[1:] != phone[:-1])
    return _Links(loan[new], phone[new], role[new], person[new])


def _make_entries(
    people: _People,
    phones: _Phones,
    plat: _Platforms,
    loans: _Loans,
    links: _Links,
    p: SynthParams,
    rng: np.random.Generator,
) -> _Entries:
    """Every blacklist entry, in the three rounds a listing travels (each drawing from
    ``rng`` in this order): the platforms' own listings, the brokers' copies, the banks'
    and lenders' screening of the lists shared with them."""
    end = _day(p.end)
    first = _entries_first(phones, plat, loans, links, p, rng, end)
    brokered = _entries_copy(first, phones, plat, p, rng, end)
    screened = _entries_shared(first, brokered, people.n, plat, loans, p, rng, end)
    return _Entries.concat([first, brokered, screened])


def _entries_first(
    phones: _Phones,
    plat: _Platforms,
    loans: _Loans,
    links: _Links,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> _Entries:
    """1. every platform lists its delinquent borrowers; some also phones tied to the loan
    (the applicant's, the contacts'); the first listing of a subject on a platform stays,
    each its own root."""
    delinquent = (loans.status == _OVERDUE) | (loans.status == _DEFAULTED)
    list_day = np.full(loans.n, _MISSING, np.int64)
    d = np.flatnonzero(delinquent)
    list_day[d] = loans.status_at[d] + rng.integers(1, p.listing_delay_max + 1, d.size)
    d = d[list_day[d] <= end]
    own = _entries_own_default(loans, list_day, d)
    applicant = _entries_applicant_phone(plat, loans, list_day, d)
    contact = _entries_contact_listing(phones, plat, loans, links, list_day, end)
    first = _Entries.concat([own, applicant, contact])
    first = first.take(
        _first_per_group((first.plat, first.kind, first.subj), first.listed, first.cause)
    )
    first.root = np.arange(first.n)
    return first


def _entries_own_default(loans: _Loans, list_day: np.ndarray, d: np.ndarray) -> _Entries:
    """The borrowers of the delinquent loans ``d``, listed by their lenders."""
    defaulted = loans.status[d] == _DEFAULTED
    return _entries(
        plat=loans.platform[d],
        kind=0,
        subj=loans.borrower[d],
        listed=list_day[d],
        cause=d,
        mech=_OWN,
        linked=loans.borrower[d],
        reason=np.where(defaulted, 0, 1),
    )


def _entries_applicant_phone(
    plat: _Platforms, loans: _Loans, list_day: np.ndarray, d: np.ndarray
) -> _Entries:
    """The applicant phones of the delinquent loans ``d`` at the lenders that list them
    (a misused phone when it is not the borrower's)."""
    a = d[plat.lists_app[loans.platform[d]]]
    return _entries(
        plat=loans.platform[a],
        kind=1,
        subj=loans.phone[a],
        listed=list_day[a],
        cause=a,
        mech=np.where(loans.misused[a], _MISUSED, _OWN),
        via=loans.phone[a],
        linked=loans.user[a],
        reason=np.where(loans.status[a] == _DEFAULTED, 2, 3),
    )


def _entries_contact_listing(
    phones: _Phones,
    plat: _Platforms,
    loans: _Loans,
    links: _Links,
    list_day: np.ndarray,
    end: int,
) -> _Entries:
    """The contact, reference, guarantor (and address-book) phones of the listed loans at
    the lenders that list them, or their real-name owners where that is the policy."""
    lk = np.flatnonzero((list_day[links.loan] != _MISSING) & (list_day[links.loan] <= end))
    lk_plat = loans.platform[links.loan[lk]]
    lk = lk[plat.lists_contacts[lk_plat] & ((links.role[lk] != _AB) | plat.lists_ab[lk_plat])]
    loan = links.loan[lk]
    listed = list_day[loan]
    kind = np.ones(lk.size, np.int64)
    subj = links.phone[lk].astype(np.int64)
    owner = phones.owner_at(subj, listed, registered=True)
    to_owner = plat.lists_owner[loans.platform[loan]] & (owner >= 0)
    kind[to_owner], subj[to_owner] = 0, owner[to_owner]
    return _entries(
        plat=loans.platform[loan],
        kind=kind,
        subj=subj,
        listed=listed,
        cause=loan,
        mech=_CONTACT,
        via=links.phone[lk],
        linked=links.person[lk],
        reason=_R_CONTACT + links.role[lk],
        role=links.role[lk],
    )


def _by_platform(entries: _Entries, platforms: int) -> tuple[np.ndarray, np.ndarray]:
    """The entries' indices ordered by platform, and where each platform's run starts."""
    order = np.argsort(entries.plat, kind="stable")
    return order, np.searchsorted(entries.plat[order], np.arange(platforms + 1))


def _of_platform(q: int, by: tuple[np.ndarray, np.ndarray], offset: int = 0) -> np.ndarray:
    """The indices (plus ``offset``) of platform ``q``'s entries, from :func:`_by_platform`."""
    order, bounds = by
    return offset + order[bounds[q] : bounds[q + 1]]


def _entries_copy(
    first: _Entries,
    phones: _Phones,
    plat: _Platforms,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> _Entries:
    """2. brokers copy what lenders pass them (resolving phones to owners if that is their
    policy); the first copy of a subject on a broker stays."""
    by_plat = _by_platform(first, plat.n)
    copies: list[_Entries] = []
    for s, b, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True):
        if plat.cls[b] != _BROKER:
            continue
        src = _of_platform(int(s), by_plat)
        listed = np.maximum(first.listed[src], since) + rng.integers(
            0, p.copy_delay_max + 1, src.size
        )
        kind = first.kind[src].copy()
        subj = first.subj[src].copy()
        reason = np.full(src.size, _R_BROKER, np.int64)
        if plat.resolves[b]:
            owner = phones.owner_at(subj, listed, registered=True)
            hit = (kind == 1) & (owner >= 0)
            kind[hit], subj[hit], reason[hit] = 0, owner[hit], _R_BROKER_RESOLVED
        copies.append(
            _entries(
                plat=b,
                kind=kind,
                subj=subj,
                listed=listed,
                cause=first.cause[src],
                mech=_COPY,
                src=src,
                src_true=src,
                root=first.root[src],
                via=first.via[src],
                linked=first.linked[src],
                reason=reason,
                role=first.role[src],
            )
        )
    brokered = _Entries.concat(copies) if copies else _Entries.empty()
    brokered = brokered.take(np.flatnonzero(brokered.listed <= end))
    return brokered.take(
        _first_per_group(
            (brokered.plat, brokered.kind, brokered.subj), brokered.listed, brokered.src
        )
    )


def _customers(loans: _Loans, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (platform, person) customer pair as the key ``platform * n + person``, sorted,
    and the day of the customer's first application there."""
    customer = loans.platform * n + loans.borrower
    order = np.lexsort((loans.applied, customer))
    keys = customer[order]
    head = np.ones(keys.size, bool)
    head[1:] = keys[1:] != keys[:-1]
    return keys[head], loans.applied[order][head]


def _found(sorted_keys: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each of ``key`` is in ``sorted_keys``, and its position there (clipped)."""
    pos = np.minimum(np.searchsorted(sorted_keys, key), max(sorted_keys.size - 1, 0))
    return (sorted_keys.size > 0) & (sorted_keys[pos] == key), pos


def _entries_shared(
    first: _Entries,
    brokered: _Entries,
    n: int,
    plat: _Platforms,
    loans: _Loans,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> _Entries:
    """3. banks and lenders list their customers found on the lists shared with them (the
    source recorded in ``copied_from`` or not); the first listing of a person stays."""
    n1 = first.n
    cust_key, cust_since = _customers(loans, n)
    listed_key = np.sort(first.plat[first.kind == 0] * n + first.subj[first.kind == 0])
    by_plat, by_plat2 = _by_platform(first, plat.n), _by_platform(brokered, plat.n)
    screens: list[_Entries] = []
    for s, r, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True):
        if plat.cls[r] == _BROKER:
            continue
        if plat.cls[s] == _BROKER:
            src = _of_platform(int(s), by_plat2, n1)
            pool = brokered
            local = src - n1
        else:
            src = _of_platform(int(s), by_plat)
            pool = first
            local = src
        person = pool.kind[local] == 0
        src, local = src[person], local[person]
        key = r * n + pool.subj[local]
        is_customer, pos = _found(cust_key, key)
        already, _ = _found(listed_key, key)
        keep = is_customer & ~already
        src, local, pos = src[keep], local[keep], pos[keep]
        listed = np.maximum(np.maximum(pool.listed[local], since), cust_since[pos])
        listed = listed + rng.integers(1, p.copy_delay_max + 2, src.size)
        p_record = p.p_bank_records_source if plat.cls[r] == _BANK else p.p_lender_records_source
        recorded = rng.random(src.size) < p_record
        screens.append(
            _entries(
                plat=r,
                kind=0,
                subj=pool.subj[local],
                listed=listed,
                cause=pool.cause[local],
                mech=np.where(recorded, _COPY, _SHARED),
                src=np.where(recorded, src, -1),
                src_true=src,
                root=pool.root[local],
                via=pool.via[local],
                linked=pool.linked[local],
                reason=_R_SCREEN,
                role=pool.role[local],
            )
        )
    screened = _Entries.concat(screens) if screens else _Entries.empty()
    screened = screened.take(np.flatnonzero(screened.listed <= end))
    return screened.take(
        _first_per_group((screened.plat, screened.subj), screened.listed, screened.src_true)
    )


# ---------------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True)
class _Out:
    """What every table writer reads: the generated population, the folder, the id
    widths and the day formats (one row builder per table below)."""

    out: Path
    people: _People
    phones: _Phones
    plat: _Platforms
    loans: _Loans
    links: _Links
    entries: _Entries
    p: SynthParams
    writer: _Writer
    pw: int  # digits of a person id
    lw: int  # of a loan id
    ew: int  # of an entry id
    dates: _Dates
    plat_ids: np.ndarray

    @classmethod
    def of(
        cls,
        out: Path,
        people: _People,
        phones: _Phones,
        plat: _Platforms,
        loans: _Loans,
        links: _Links,
        entries: _Entries,
        p: SynthParams,
        writer: _Writer,
    ) -> _Out:
        start, end = _day(p.start), _day(p.end)
        return cls(
            out,
            people,
            phones,
            plat,
            loans,
            links,
            entries,
            p,
            writer,
            pw=_width(people.n),
            lw=_width(loans.n),
            ew=_width(entries.n),
            dates=_Dates(start - 90 * YEAR, end + 1),
            plat_ids=_table(plat.ids),
        )


_CITY_NAMES = _table([c[0] for c in _CITIES])
_ROLE_NAMES = _table(_ROLES)


_ID_WEIGHTS = np.array(CHECK_WEIGHTS, np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", np.uint8)


def _id_numbers(people: _People, dates: _Dates, idx: np.ndarray) -> np.ndarray:
    """The resident ID numbers of people ``idx`` (empty for those without one)."""
    city_code = np.array([c[1] for c in _CITIES], np.int64)
    first17 = np.concatenate(
        [
            _digits(city_code[people.city_true[idx]] * 100 + people.district[idx], 6),
            dates.compact(people.birth[idx]),
            _digits(people.seq[idx], 3),
        ],
        axis=1,
    )
    total = ((first17.astype(np.int64) - 48) @ _ID_WEIGHTS) % 11
    id_number = np.concatenate([first17, _ID_CHECK[total][:, None]], axis=1)
    id_number[~people.has_id[idx]] = 0
    return id_number


def _write_people(o: _Out) -> int:
    people, dates, pw = o.people, o.dates, o.pw
    surname = _table(_SURNAMES)
    given1 = _table(_GIVEN)
    given2 = _table([g.lower() for g in _GIVEN])
    cities = _CITY_NAMES
    space = np.full((1, 1), 32, np.uint8)

    def people_rows(s: slice) -> list[np.ndarray]:
        m = s.stop - s.start
        idx = np.arange(s.start, s.stop)
        id_number = _id_numbers(people, dates, idx)
        return [
            _ids(b"P", idx, pw),
            np.concatenate(
                [
                    surname[people.surname[s]],
                    np.broadcast_to(space, (m, 1)),
                    given1[people.given1[s]],
                    given2[people.given2[s]],
                ],
                axis=1,
            ),
            id_number,
            cities[people.city[s]],
        ]

    return o.writer.write(
        o.out / "people.csv",
        "write people",
        columns("people"),
        people.n,
        people_rows,
    )


def _write_platforms(o: _Out) -> int:
    plat = o.plat
    kinds = {
        _BANK: "bank",
        _BROKER: "data_broker",
        _LENDER: "online_lender",
        _INFORMAL: "online_lender",
    }
    verifies = {_BANK: TRUE, _BROKER: "", _LENDER: TRUE, _INFORMAL: FALSE}
    return _write_text(
        o.out / "platforms.csv",
        (*columns("platforms"), "verifies_phone"),  # an extra column the loaders ignore
        [
            (plat.ids[i], plat.names[i], kinds[int(c)], verifies[int(c)])
            for i, c in enumerate(plat.cls)
        ],
    )


def _write_phones(o: _Out) -> int:
    """One row per owner period, sorted by number then since."""
    phones, dates, pw = o.phones, o.dates, o.pw
    m = phones.number.size
    prev = np.flatnonzero(phones.prev_owner >= 0)
    r_number = np.concatenate([phones.number, phones.number[prev]])
    r_owner = np.concatenate(
        [
            np.where(phones.cur_known, phones.cur_owner, -1),
            np.where(phones.prev_known[prev], phones.prev_owner[prev], -1),
        ]
    )
    r_verified = np.concatenate([phones.cur_verified, phones.prev_verified[prev]]).astype(np.int64)
    r_verified = np.where(r_owner < 0, -1, r_verified)
    r_since = np.concatenate([phones.cur_since, phones.prev_since[prev]])
    r_until = np.concatenate([np.full(m, _MISSING, np.int64), phones.prev_until[prev]])
    order = np.lexsort((r_since, r_number))

    def phone_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            _phones(r_number[o]),
            _ids(b"P", r_owner[o], pw),
            _BOOL[r_verified[o]],
            dates.iso(r_since[o]),
            dates.iso(r_until[o]),
        ]

    return o.writer.write(
        o.out / "phones.csv",
        "write phones",
        columns("phones"),
        order.size,
        phone_rows,
    )


def _write_loans(o: _Out) -> int:
    loans, phones, dates, pw, lw, plat_ids = o.loans, o.phones, o.dates, o.pw, o.lw, o.plat_ids
    statuses = _table(_STATUSES)

    def loan_rows(s: slice) -> list[np.ndarray]:
        return [
            _ids(b"L", np.arange(s.start, s.stop), lw),
            plat_ids[loans.platform[s]],
            _ids(b"P", loans.borrower[s], pw),
            dates.iso(loans.applied[s]),
            statuses[loans.status[s]],
            _phones(phones.number[loans.phone[s]]),
            _bools(loans.verified[s]),
            _number(loans.amount[s]),
            dates.iso(loans.status_at[s]),
        ]

    return o.writer.write(
        o.out / "loans.csv",
        "write loans",
        [c for c in columns("loans") if c != "borrower_record"],  # borrowers by id only
        loans.n,
        loan_rows,
    )


def _write_links(o: _Out) -> int:
    links, phones, lw = o.links, o.phones, o.lw
    roles = _ROLE_NAMES

    def link_rows(s: slice) -> list[np.ndarray]:
        return [
            _ids(b"L", links.loan[s], lw),
            _phones(phones.number[links.phone[s]]),
            roles[links.role[s]],
        ]

    return o.writer.write(
        o.out / "loan_links.csv",
        "write loan_links",
        columns("loan_links"),
        links.loan.size,
        link_rows,
    )


@dataclass(frozen=True)
class _Listing:
    """Entry ids in order of listing day, then platform: the order both the blacklist
    and its ground truth are written in, and the cells they share."""

    o: _Out
    order: np.ndarray
    rank: np.ndarray

    @classmethod
    def of(cls, o: _Out) -> _Listing:
        e = o.entries
        order = np.lexsort((np.arange(e.n), e.plat, e.listed))
        rank = np.empty(e.n, np.int64)
        rank[order] = np.arange(e.n)
        return cls(o, order, rank)

    def subjects(self, rows: np.ndarray) -> np.ndarray:
        e, phones = self.o.entries, self.o.phones
        person = _ids(b"P", np.where(e.kind[rows] == 0, e.subj[rows], 0), self.o.pw)
        phone = _phones(phones.number[np.where(e.kind[rows] == 1, e.subj[rows], 0)])
        width = max(person.shape[1], phone.shape[1])
        out_ = np.zeros((rows.size, width), np.uint8)
        is_person = e.kind[rows] == 0
        out_[is_person, : person.shape[1]] = person[is_person]
        out_[~is_person, : phone.shape[1]] = phone[~is_person]
        return out_

    def source(self, rows: np.ndarray, column: np.ndarray) -> np.ndarray:
        ref = column[rows]
        return _ids(b"E", np.where(ref >= 0, self.rank[np.maximum(ref, 0)], -1), self.o.ew)


_KINDS = _table(("person", "phone"))


def _write_blacklist(o: _Out, listing: _Listing) -> int:
    e, dates, ew, plat_ids = o.entries, o.dates, o.ew, o.plat_ids
    order, rank = listing.order, listing.rank
    kinds_t = _KINDS
    reasons = _table(_REASONS)
    subjects, source = listing.subjects, listing.source

    def entry_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            _ids(b"E", rank[o], ew),
            plat_ids[e.plat[o]],
            kinds_t[e.kind[o]],
            subjects(o),
            dates.iso(e.listed[o]),
            reasons[e.reason[o]],
            source(o, e.src),
        ]

    return o.writer.write(
        o.out / "blacklist.csv",
        "write blacklist",
        columns("blacklist"),
        e.n,
        entry_rows,
    )


def _write_sharing(o: _Out) -> int:
    plat = o.plat
    return _write_text(
        o.out / "sharing.csv",
        columns("sharing"),
        [
            (plat.ids[a], plat.ids[b], _iso(int(since)))
            for a, b, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True)
        ],
    )


def _first_bad(o: _Out) -> np.ndarray:
    """Per person, the first day one of their loans was known overdue or defaulted."""
    loans = o.loans
    delinquent = (loans.status == _OVERDUE) | (loans.status == _DEFAULTED)
    first_bad = np.full(o.people.n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_bad, loans.borrower[delinquent], loans.status_at[delinquent])
    return first_bad


def _write_truth_entries(o: _Out, listing: _Listing, gt: Path, first_bad: np.ndarray) -> int:
    e, loans, phones, dates = o.entries, o.loans, o.phones, o.dates
    pw, lw, ew, plat_ids = o.pw, o.lw, o.ew, o.plat_ids
    order, rank = listing.order, listing.rank
    kinds_t, roles = _KINDS, _ROLE_NAMES
    subjects, source = listing.subjects, listing.source
    cause_borrower = loans.borrower[e.cause]
    subject_person = np.where(e.kind == 0, e.subj, phones.owner_at(e.subj, e.listed))
    spill = subject_person != cause_borrower
    subject_delinquent = (subject_person >= 0) & (
        first_bad[np.maximum(subject_person, 0)] <= e.listed
    )
    mechanisms = _table(MECHANISMS)

    def truth_rows(s: slice) -> list[np.ndarray]:
        o = order[s]
        return [
            _ids(b"E", rank[o], ew),
            plat_ids[e.plat[o]],
            kinds_t[e.kind[o]],
            subjects(o),
            dates.iso(e.listed[o]),
            _bools(spill[o]),
            _ids(b"L", e.cause[o], lw),
            _ids(b"P", cause_borrower[o], pw),
            mechanisms[e.mech[o]],
            _ids(b"E", rank[e.root[o]], ew),
            mechanisms[e.mech[e.root[o]]],
            roles[e.role[o]],
            _phones(np.where(e.via[o] >= 0, phones.number[np.maximum(e.via[o], 0)], -1)),
            _ids(b"P", e.linked[o], pw),
            _ids(b"P", subject_person[o], pw),
            _bools(subject_delinquent[o]),
            source(o, e.src_true),
        ]

    return o.writer.write(
        gt / "entries.csv",
        "write ground_truth/entries",
        (
            "entry_id",
            "platform_id",
            "subject_kind",
            "subject",
            "listed_at",
            "is_spillover",
            "cause_loan_id",
            "cause_borrower_id",
            "mechanism",
            "root_entry_id",
            "root_mechanism",
            "link_role",
            "via_phone",
            "linked_person_id",
            "subject_person_id",
            "subject_delinquent",
            "true_source",
        ),
        e.n,
        truth_rows,
    )


def _write_truth_people(o: _Out, gt: Path, first_bad: np.ndarray) -> int:
    people, loans, pw = o.people, o.loans, o.pw
    n, end, cities = people.n, _day(o.p.end), _CITY_NAMES
    defaulted = np.zeros(n, bool)
    defaulted[loans.borrower[loans.status == _DEFAULTED]] = True
    n_loans = np.bincount(loans.borrower, minlength=n)

    def truth_people(s: slice) -> list[np.ndarray]:
        return [
            _ids(b"P", np.arange(s.start, s.stop), pw),
            _bools(defaulted[s]),
            _bools(first_bad[s] <= end),
            _bools(people.risky[s]),
            _number(people.community[s]),
            cities[people.city_true[s]],
            _number(n_loans[s]),
        ]

    return o.writer.write(
        gt / "people.csv",
        "write ground_truth/people",
        ("person_id", "defaulted", "delinquent", "risky", "community", "city", "loans"),
        n,
        truth_people,
    )


def _write_truth_loans(o: _Out, gt: Path) -> int:
    loans, pw, lw = o.loans, o.pw, o.lw

    def truth_loans(s: slice) -> list[np.ndarray]:
        return [
            _ids(b"L", np.arange(s.start, s.stop), lw),
            _bools(loans.misused[s]),
            _ids(b"P", loans.user[s], pw),
        ]

    return o.writer.write(
        gt / "loans.csv",
        "write ground_truth/loans",
        ("loan_id", "misused_phone", "applicant_phone_user_id"),
        loans.n,
        truth_loans,
    )


def _write_truth_platforms(o: _Out, gt: Path) -> int:
    plat = o.plat
    return _write_text(
        gt / "platforms.csv",
        (
            "platform_id",
            "class",
            "lists_applicant_phone",
            "lists_contacts",
            "lists_owner",
            "lists_address_book",
            "uploads_address_book",
            "resolves_phones",
        ),
        [
            (
                plat.ids[i],
                ("bank", "data_broker", "verifying_lender", "informal_lender")[int(c)],
                *(
                    TRUE if flag[i] else FALSE
                    for flag in (
                        plat.lists_app,
                        plat.lists_contacts,
                        plat.lists_owner,
                        plat.lists_ab,
                        plat.uploads_ab,
                        plat.resolves,
                    )
                ),
            )
            for i, c in enumerate(plat.cls)
        ],
    )


# ---------------------------------------------------------------------------------------------
# customer records (generate(..., records=True)): every platform's own record of a person

#: Chinese characters of _SURNAMES and _GIVEN (pypinyin reads each back as that pinyin)
_SURNAMES_HANZI = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯邓曹彭增肖田董潘袁蔡蒋于杜叶程魏苏卢丁任沈姚范"
_GIVEN_HANZI = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂慧红兰梅华建波宁玉欣浩怡晨瑞子涵云凯龙"
#: how a record writes the name (ground_truth/records.csv name_form)
NAME_FORMS = ("pinyin", "hanzi", "upper", "compact", "spaced")
#: where a record's phone comes from (ground_truth/records.csv phone_source)
PHONE_SOURCES = ("own", "second", "shared", "hub", "none")


@dataclass
class _Records:
    person: np.ndarray  # true person of every record, in record-id order
    platform: np.ndarray
    name: np.ndarray  # (m, w) bytes
    form: np.ndarray
    typo: np.ndarray
    id_number: np.ndarray  # (m, 18) bytes, NUL when missing
    id_typo: np.ndarray
    phone: np.ndarray  # number or -1
    national: np.ndarray
    source: np.ndarray
    birth: np.ndarray  # day or _MISSING
    city: np.ndarray  # index or -1
    known: np.ndarray

    @property
    def n(self) -> int:
        return int(self.person.size)


def _concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=1)


def _pad(matrix: np.ndarray, width: int) -> np.ndarray:
    return np.pad(matrix, ((0, 0), (0, width - matrix.shape[1])))


def _record_names(
    people: _People, person: np.ndarray, p: SynthParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = person.size
    sur, g1, g2 = people.surname[person], people.given1[person], people.given2[person]
    space = np.full((m, 1), 32, np.uint8)
    space2 = np.where((g2 >= 0)[:, None], space, 0).astype(np.uint8)
    cap = _table(_SURNAMES), _table(_GIVEN)
    low = _table([x.lower() for x in _SURNAMES]), _table([x.lower() for x in _GIVEN])
    up = _table([x.upper() for x in _SURNAMES]), _table([x.upper() for x in _GIVEN])
    han = _table(list(_SURNAMES_HANZI)), _table(list(_GIVEN_HANZI))
    forms = [
        _concat(cap[0][sur], space, cap[1][g1], low[1][g2]),  # Wang Weifang
        _concat(han[0][sur], han[1][g1], han[1][g2]),  # 王伟芳
        _concat(up[0][sur], space, up[1][g1], up[1][g2]),  # WANG WEIFANG
        _concat(low[0][sur], low[1][g1], low[1][g2]),  # wangweifang
        _concat(cap[0][sur], space, cap[1][g1], space2, cap[1][g2]),  # Wang Wei Fang
    ]
    width = max(f.shape[1] for f in forms)
    draw = rng.random((m, 2))
    form = np.where(draw[:, 0] < p.p_record_hanzi, 1, 0)
    other = (draw[:, 0] >= p.p_record_hanzi) & (draw[:, 1] < p.p_record_spacing)
    form = np.where(other, 2 + rng.integers(0, 3, m), form)
    name = np.zeros((m, width), np.uint8)
    for k, f in enumerate(forms):
        rows = form == k
        name[rows] = _pad(f[rows], width)
    typo = (form != 1) & (rng.random(m) < p.p_record_typo)
    letters = name >= 65
    count = letters.sum(axis=1)
    pick = (rng.random(m) * np.maximum(count, 1)).astype(np.int64)
    position = np.argmax(np.cumsum(letters, axis=1) > pick[:, None], axis=1)
    new = (97 + rng.integers(0, 26, m)).astype(np.uint8)
    rows = np.flatnonzero(typo)
    old = name[rows, position[rows]] | 32
    name[rows, position[rows]] = np.where(new[rows] == old, 97 + (old - 96) % 26, new[rows])
    return name, form, typo


def _make_records(
    people: _People, phones: _Phones, plat: _Platforms, p: SynthParams, rng: np.random.Generator
) -> _Records:
    n = people.n
    per = 1 + np.minimum(rng.poisson(p.records_extra, n), plat.n - 1)
    person = rng.permutation(np.repeat(np.arange(n), per))
    m = person.size
    platform = rng.choice(plat.n, m, p=plat.weight / plat.weight.sum())
    name, form, typo = _record_names(people, person, p, rng)

    start, end = _day(p.start), _day(p.end)
    dates = _Dates(start - 90 * YEAR, end + 1)
    id_number = _id_numbers(people, dates, person)
    id_number[rng.random(m) < p.p_record_no_id] = 0
    id_typo = (id_number[:, 0] != 0) & (rng.random(m) < p.p_record_id_typo)
    rows = np.flatnonzero(id_typo)
    col = rng.integers(0, 17, rows.size)
    digit = id_number[rows, col].astype(np.int64) - 48
    id_number[rows, col] = (48 + (digit + rng.integers(1, 10, rows.size)) % 10).astype(np.uint8)

    draw = rng.random((m, 4))
    source = np.zeros(m, np.int64)
    phone_index = person.astype(np.int64)  # the first number of person i is phone index i
    sec = phones.sec[person]
    second = (sec >= 0) & (draw[:, 0] < p.p_record_second_phone)
    source[second] = 1
    phone_index = np.where(second, sec, phone_index)
    friend = people.circle[person, rng.integers(0, people.circle.shape[1], m)]
    shared = draw[:, 1] < p.p_record_shared_phone
    source[shared] = 2
    phone_index = np.where(shared, friend, phone_index)
    hubs = rng.choice(n, max(1, m // 5000), replace=False)
    hub = draw[:, 2] < p.p_record_hub_phone
    source[hub] = 3
    phone_index = np.where(hub, hubs[rng.integers(0, hubs.size, m)], phone_index)
    none = draw[:, 3] < p.p_record_no_phone
    source[none] = 4
    phone = np.where(none, -1, phones.number[phone_index])
    national = rng.random(m) < p.p_record_national_phone

    birth = people.birth[person].astype(np.int64)
    birth = np.where(rng.random(m) < p.p_record_birth_typo, birth + 1, birth)
    birth = np.where(rng.random(m) < p.p_record_no_birth, _MISSING, birth)
    city = people.city_true[person].astype(np.int64)
    city = np.where(rng.random(m) < p.p_record_moved, rng.integers(0, len(_CITIES), m), city)
    city = np.where(rng.random(m) < p.p_record_no_city, -1, city)
    known = rng.random(m) < p.p_record_known
    return _Records(
        person=person,
        platform=platform,
        name=name,
        form=form,
        typo=typo,
        id_number=id_number,
        id_typo=id_typo,
        phone=phone,
        national=national,
        source=source,
        birth=birth,
        city=city,
        known=known,
    )


def _write_records(o: _Out, rec: _Records, gt: Path) -> tuple[int, int]:
    rw, pw, dates = _width(rec.n), o.pw, o.dates

    def record_rows(s: slice) -> list[np.ndarray]:
        phone = _phones(rec.phone[s])
        phone[rec.national[s], :3] = 0  # 13912345678: a national number
        return [
            _ids(b"R", np.arange(s.start, s.stop), rw),
            o.plat_ids[rec.platform[s]],
            rec.name[s],
            rec.id_number[s],
            phone,
            dates.iso(rec.birth[s]),
            _CITY_NAMES[rec.city[s]],
            _ids(b"P", np.where(rec.known[s], rec.person[s], -1), pw),
        ]

    def truth_rows(s: slice) -> list[np.ndarray]:
        return [
            _ids(b"R", np.arange(s.start, s.stop), rw),
            _ids(b"P", rec.person[s], pw),
            _table(NAME_FORMS)[rec.form[s]],
            _bools(rec.typo[s]),
            _bools(rec.id_typo[s]),
            _table(PHONE_SOURCES)[rec.source[s]],
        ]

    written = o.writer.write(
        o.out / "records.csv",
        "write records",
        columns("records"),
        rec.n,
        record_rows,
    )
    truth = o.writer.write(
        gt / "records.csv",
        "write ground_truth/records",
        ("record_id", "person_id", "name_form", "name_typo", "id_typo", "phone_source"),
        rec.n,
        truth_rows,
    )
    return written, truth


def _write_all(
    out: Path,
    people: _People,
    phones: _Phones,
    plat: _Platforms,
    loans: _Loans,
    links: _Links,
    entries: _Entries,
    p: SynthParams,
    writer: _Writer,
    records: _Records | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Every table of the folder and of its ground truth, in this order (the progress
    stages follow it); returns the rows written per table."""
    o = _Out.of(out, people, phones, plat, loans, links, entries, p, writer)
    counts = {
        "people": _write_people(o),
        "platforms": _write_platforms(o),
        "phones": _write_phones(o),
        "loans": _write_loans(o),
        "loan_links": _write_links(o),
    }
    listing = _Listing.of(o)
    counts["blacklist"] = _write_blacklist(o, listing)
    counts["sharing"] = _write_sharing(o)
    gt = out / "ground_truth"
    gt.mkdir()
    first_bad = _first_bad(o)
    truth = {
        "entries": _write_truth_entries(o, listing, gt, first_bad),
        "people": _write_truth_people(o, gt, first_bad),
        "loans": _write_truth_loans(o, gt),
        "platforms": _write_truth_platforms(o, gt),
    }
    if records is not None:
        counts["records"], truth["records"] = _write_records(o, records, gt)
    return counts, truth


# ---------------------------------------------------------------------------------------------
# entry point


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def generate(
    people: int,
    seed: int,
    out: str | Path,
    *,
    progress: Progress | None = None,
    format: str = "csv",
    records: bool = False,
    **params: Any,
) -> SynthSummary:
    """Write a synthetic data folder of ``people`` people to ``out`` and return what was written.

    ``out`` must not exist or be an empty directory. ``params`` override fields of
    :class:`SynthParams` by name. ``progress(stage, done, total)`` is called as every
    stage starts and ends (and after every chunk written). The same ``(people, seed,
    params)`` gives byte-identical files. ``format``: the data tables as ``csv`` (the
    default), ``jsonl`` or ``parquet`` (:func:`spillover.data.formats.convert_folder`; the
    ground truth stays CSV). Raises :class:`~spillover.errors.SpilloverError` for bad
    arguments.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     generate(200, 1, pathlib.Path(tmp) / "data").counts["people"]
    200
    """
    began = time.perf_counter()
    out = Path(out)
    p = read_params(params)
    check_format(format)
    check_target(people, seed, out)
    people, seed = int(people), int(seed)
    report = progress or _no_progress
    rng = np.random.default_rng(seed)

    def stage(name: str, make: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        report(name, 0, 1)
        result = make()
        count = size(result)
        report(name, count, count)
        return result

    plat = stage("platforms", lambda: _make_platforms(people, p, rng), lambda r: r.n)
    folk = stage("people", lambda: _make_people(people, p, rng), lambda r: r.n)
    phones = stage("phones", lambda: _make_phones(folk, p, rng), lambda r: r.number.size)
    loans = stage("loans", lambda: _make_loans(folk, phones, plat, p, rng), lambda r: r.n)
    links = stage(
        "loan_links", lambda: _make_links(folk, phones, plat, loans, p, rng), lambda r: r.loan.size
    )
    entries = stage(
        "blacklist",
        lambda: _make_entries(folk, phones, plat, loans, links, p, rng),
        lambda r: r.n,
    )
    recs = None
    if records:  # from a stream of its own: the other tables stay as they are without records
        record_rng = np.random.default_rng([seed, 14])
        recs = stage(
            "records",
            lambda: _make_records(folk, phones, plat, p, record_rng),
            lambda r: r.n,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out) as tmp:
        counts, truth = _write_all(
            tmp, folk, phones, plat, loans, links, entries, p, _Writer(report), recs
        )
        convert_folder(tmp, format, report)
    return SynthSummary(
        out=out,
        people=people,
        seed=seed,
        counts=counts,
        truth_counts=truth,
        elapsed=time.perf_counter() - began,
        params=p,
    )
