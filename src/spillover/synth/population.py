"""The synthetic world, drawn as numpy arrays: platforms and their policies, people in
communities with their circles, phones and their owner periods, loans, loan links and the
blacklist entries (with the ground truth of how each came about).

Every stage draws from the one ``numpy.random.Generator`` that
:func:`spillover.synth.generate.generate` passes down, in the order it calls them; the
generative model is documented in ``docs/synthetic-data.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from ..data.contract import enum_values
from ..facts.model import LinkRole, LoanStatus
from .params import YEAR, SynthParams

__all__ = [
    "BANK",
    "BROKER",
    "CITIES",
    "DEFAULTED",
    "GIVEN",
    "INFORMAL",
    "LENDER",
    "MECHANISMS",
    "MISSING",
    "OVERDUE",
    "REASONS",
    "ROLES",
    "STATUSES",
    "SURNAMES",
    "Entries",
    "Links",
    "Loans",
    "People",
    "Phones",
    "Platforms",
    "day_number",
    "id_width",
    "iso_day",
    "make_entries",
    "make_links",
    "make_loans",
    "make_people",
    "make_phones",
    "make_platforms",
]

#: Values of the ``mechanism`` column of ``ground_truth/entries.csv``.
MECHANISMS = ("own_default", "contact_listing", "misused_phone", "copy", "shared")
OWN, CONTACT, MISUSED, COPY, SHARED = range(5)

#: Internal platform classes (``kind`` in platforms.csv is bank / data_broker / online_lender).
BANK, BROKER, LENDER, INFORMAL = range(4)

ROLES = enum_values(LinkRole)
EC, REF, AB, GUAR = range(4)

STATUSES = enum_values(LoanStatus)
CURRENT, REPAID, OVERDUE, DEFAULTED = range(4)

REASONS = (
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
R_CONTACT = 4  # + role code
R_BROKER, R_BROKER_RESOLVED, R_SCREEN = 8, 9, 10

MISSING = np.iinfo(np.int32).min  # a missing date / id in the internal arrays
EPOCH = date(1970, 1, 1).toordinal()

# ---------------------------------------------------------------------------------------------
# vocabulary

CITIES = (
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
SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Ma", "Zhu", "Hu", "Guo", "He", "Gao", "Lin", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang",
    "Han", "Feng", "Deng", "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai",
    "Jiang", "Yu", "Du", "Ye", "Cheng", "Wei", "Su", "Lu", "Ding", "Ren", "Shen", "Yao", "Fan",
)  # fmt: skip
GIVEN = (
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
# helpers


def day_number(d: date) -> int:
    """The day ``d`` as days since 1970-01-01 (the internal arrays' dates)."""
    return d.toordinal() - EPOCH


def iso_day(day: int) -> str:
    """An internal day number as an ISO date."""
    return date.fromordinal(day + EPOCH).isoformat()


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


def id_width(count: int) -> int:
    """Digits in the ids of ``count`` rows (at least 6)."""
    return max(6, len(str(count)))


# ---------------------------------------------------------------------------------------------
# the world


@dataclass
class Platforms:
    """The platforms: ids, names, class (bank, broker, lender, informal lender), policies
    and the sharing agreements between them."""

    ids: list[str]
    names: list[str]
    cls: np.ndarray  # BANK / BROKER / LENDER / INFORMAL
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
        """How many platforms."""
        return len(self.ids)


@dataclass
class People:
    """The people: community, city, circle of acquaintances, risk type, birth day, what
    their ID number is made of, their name."""

    n: int
    community: np.ndarray
    city: np.ndarray  # index into CITIES, -1 unknown (data); true city in city_true
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
class Phones:
    """The phone numbers and their owner periods (current and, for a reassigned number,
    previous owner)."""

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
class Loans:
    """The loans: borrower, platform, dates, status, the applicant phone and who used it."""

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
class Links:
    """The loan links: a phone named on a loan in a role, and the person the borrower
    meant."""

    loan: np.ndarray
    phone: np.ndarray
    role: np.ndarray
    person: np.ndarray  # the person the borrower meant


_ENTRY_FIELDS = (
    "plat", "kind", "subj", "listed", "cause", "mech", "src", "src_true", "root", "via",
    "linked", "reason", "role",
)  # fmt: skip


@dataclass
class Entries:
    """The blacklist entries, one column per field (``_ENTRY_FIELDS``), with their ground
    truth."""

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
        """How many entries."""
        return self.plat.size

    def take(self, idx: np.ndarray) -> Entries:
        """The entries at ``idx``."""
        return Entries(*(getattr(self, f)[idx] for f in _ENTRY_FIELDS))

    @staticmethod
    def concat(parts: Sequence[Entries]) -> Entries:
        """The entries of ``parts`` one after the other."""
        return Entries(
            *(
                np.concatenate([getattr(p, f) for p in parts]).astype(np.int64)
                for f in _ENTRY_FIELDS
            )
        )

    @staticmethod
    def empty() -> Entries:
        """No entries."""
        return Entries(*(np.zeros(0, np.int64) for _ in _ENTRY_FIELDS))


def _entries(**columns: Any) -> Entries:
    n = next(np.asarray(v).size for v in columns.values() if np.ndim(v) > 0)
    values = []
    for f in _ENTRY_FIELDS:
        v = columns.get(f, -1)
        values.append(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy())
    return Entries(*values)


# ---------------------------------------------------------------------------------------------
# generation stages


def make_platforms(people: int, p: SynthParams, rng: np.random.Generator) -> Platforms:
    """Draw the platforms, their policies and who shares their blacklist with whom."""
    n = p.platforms or int(np.clip(people // 100, 4, 30))
    banks = max(1, round(n * p.bank_share))
    brokers = max(1, round(n * p.broker_share))
    lenders = n - banks - brokers
    if lenders < 2:
        banks, brokers, lenders = 1, 1, n - 2
    informal = min(lenders - 1, max(1, round(lenders * p.informal_share)))
    lender_cls = np.full(lenders, LENDER, np.int64)
    lender_cls[rng.permutation(lenders)[:informal]] = INFORMAL
    cls = np.concatenate(
        [np.full(banks, BANK, np.int64), np.full(brokers, BROKER, np.int64), lender_cls]
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

    is_lender = (cls == LENDER) | (cls == INFORMAL)
    lists_app = is_lender & (rng.random(n) < p.p_lists_applicant_phone)
    lists_contacts = is_lender & (rng.random(n) < p.p_lists_contacts)
    lists_owner = lists_contacts & (rng.random(n) < p.p_lists_owner)
    lists_ab = lists_contacts & (rng.random(n) < p.p_lists_address_book)
    ab_p = np.where(
        cls == INFORMAL,
        p.p_address_book_informal,
        np.where(cls == LENDER, p.p_address_book_verifying, 0.0),
    )
    uploads_ab = rng.random(n) < ab_p
    resolves = (cls == BROKER) & (rng.random(n) < p.p_broker_resolves)
    # small worlds still show every mechanism: the first informal lender has every policy,
    # the first broker resolves phones to owners
    first_informal = int(np.flatnonzero(cls == INFORMAL)[0])
    lists_app[first_informal] = lists_contacts[first_informal] = True
    uploads_ab[first_informal] = lists_ab[first_informal] = True
    resolves[banks] = True
    weight = rng.lognormal(0.0, 0.8, n)

    start, end = day_number(p.start), day_number(p.end)
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
    return Platforms(
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


def make_people(n: int, p: SynthParams, rng: np.random.Generator) -> People:
    """Draw ``n`` people in communities inside cities, each with a circle of
    acquaintances."""
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
    city_weight = np.array([c[2] for c in CITIES], float)
    comm_city = rng.choice(len(CITIES), sizes.size, p=city_weight / city_weight.sum())
    city_true = comm_city[community]
    city = np.where(rng.random(n) < p.p_no_city, -1, city_true)
    start = day_number(p.start)
    birth = start - rng.integers(18 * YEAR, 65 * YEAR, n)
    surname_w = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(SURNAMES), n, p=surname_w / surname_w.sum())
    given1 = rng.integers(0, len(GIVEN), n)
    given2 = np.where(rng.random(n) < 0.6, rng.integers(0, len(GIVEN), n), -1)
    district = rng.integers(1, 13, n)
    seq = rng.integers(0, 1000, n)
    has_id = rng.random(n) >= p.p_no_id_number
    # resident ID numbers must be unique: a duplicate (rare) is left out of the data
    key = ((np.array([c[1] for c in CITIES])[city_true] * 100 + district) * 100_000 + birth) * 1000
    key = key + seq
    _, first = np.unique(key, return_index=True)
    unique = np.zeros(n, bool)
    unique[first] = True
    has_id &= unique
    return People(
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


def make_phones(people: People, p: SynthParams, rng: np.random.Generator) -> Phones:
    """Draw every person's numbers (a second one for some) and their owner periods
    (reassigned numbers, unverified or unknown subscribers)."""
    n = people.n
    start, end = day_number(p.start), day_number(p.end)
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
    prev_since = np.full(m, MISSING, np.int64)
    prev_until = np.full(m, MISSING, np.int64)
    prev_owner[x] = previous
    prev_until[x] = new_since - 1
    prev_since[x] = prev_until[x] - rng.integers(YEAR, 8 * YEAR, x.size)
    ex = np.full(n, -1, np.int64)
    ex_since = np.full(n, MISSING, np.int64)
    ex_until = np.full(n, MISSING, np.int64)
    ex[previous] = x
    ex_since[previous] = prev_since[x]
    ex_until[previous] = prev_until[x]
    cur_known = rng.random(m) >= p.p_owner_unknown
    prev_known = rng.random(m) >= p.p_owner_unknown
    return Phones(
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
        sec_since=np.where(has_sec, cur_since[np.maximum(sec, 0)], MISSING),
        ex=ex,
        ex_since=ex_since,
        ex_until=ex_until,
    )


def _class_probs(plat: Platforms, shares: tuple[float, float, float]) -> np.ndarray:
    probs = np.zeros(plat.n)
    for share, c in zip(shares, (BANK, LENDER, INFORMAL), strict=True):
        members = plat.cls == c
        probs[members] = share * plat.weight[members] / plat.weight[members].sum()
    return np.cumsum(probs / probs.sum())


def make_loans(
    people: People, phones: Phones, plat: Platforms, p: SynthParams, rng: np.random.Generator
) -> Loans:
    """Draw the loans of every person (risky people borrow and default more) and the phone
    each application gives."""
    n = people.n
    start, end = day_number(p.start), day_number(p.end)
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
    is_bank, is_informal = cls == BANK, cls == INFORMAL

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
    status = np.full(size, CURRENT, np.int64)
    status_at = np.full(size, MISSING, np.int64)
    done = good & (due <= end)
    status[done], status_at[done] = REPAID, repaid_at[done]
    over = ~good & (overdue_at <= end)
    status[over], status_at[over] = OVERDUE, overdue_at[over]
    gone = bad & (default_at <= end)
    status[gone], status_at[gone] = DEFAULTED, default_at[gone]

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
    verifies = plat.cls[platform] != INFORMAL
    return Loans(
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


def make_links(
    people: People,
    phones: Phones,
    plat: Platforms,
    loans: Loans,
    p: SynthParams,
    rng: np.random.Generator,
) -> Links:
    """Draw the loan links: emergency contacts, references, guarantors and uploaded address
    books, mostly from the borrower's circle."""
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
    second = (cls != BANK) & (rng.random(loans.n) < p.p_second_contact)
    ec = np.concatenate([everyone, np.flatnonzero(second)])
    ec.sort(kind="stable")
    slot = np.minimum(rng.geometric(0.5, ec.size) - 1, k - 1)
    contacts(ec, slot, EC, True)
    ref = np.flatnonzero(rng.random(loans.n) < p.p_reference)
    contacts(ref, rng.integers(0, k, ref.size), REF, True)
    p_guar = np.where(cls == BANK, p.p_guarantor_bank, p.p_guarantor_lender)
    guar = np.flatnonzero(rng.random(loans.n) < p_guar)
    contacts(guar, rng.integers(0, k, guar.size), GUAR, True)
    ab_loans = np.flatnonzero(plat.uploads_ab[loans.platform])
    size = rng.integers(p.address_book_min, p.address_book_max + 1, ab_loans.size)
    size = np.minimum(size, k)
    first = rng.integers(0, k, ab_loans.size)
    ab = np.repeat(ab_loans, size)
    within = np.arange(ab.size) - np.repeat(np.cumsum(size) - size, size)
    contacts(ab, (np.repeat(first, size) + within) % k, AB, False)

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
    return Links(loan[new], phone[new], role[new], person[new])


def make_entries(
    people: People,
    phones: Phones,
    plat: Platforms,
    loans: Loans,
    links: Links,
    p: SynthParams,
    rng: np.random.Generator,
) -> Entries:
    """Every blacklist entry, in the three rounds a listing travels (each drawing from
    ``rng`` in this order): the platforms' own listings, the brokers' copies, the banks'
    and lenders' screening of the lists shared with them."""
    end = day_number(p.end)
    first = _entries_first(phones, plat, loans, links, p, rng, end)
    brokered = _entries_copy(first, phones, plat, p, rng, end)
    screened = _entries_shared(first, brokered, people.n, plat, loans, p, rng, end)
    return Entries.concat([first, brokered, screened])


def _entries_first(
    phones: Phones,
    plat: Platforms,
    loans: Loans,
    links: Links,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> Entries:
    """1. every platform lists its delinquent borrowers; some also phones tied to the loan
    (the applicant's, the contacts'); the first listing of a subject on a platform stays,
    each its own root."""
    delinquent = (loans.status == OVERDUE) | (loans.status == DEFAULTED)
    list_day = np.full(loans.n, MISSING, np.int64)
    d = np.flatnonzero(delinquent)
    list_day[d] = loans.status_at[d] + rng.integers(1, p.listing_delay_max + 1, d.size)
    d = d[list_day[d] <= end]
    own = _entries_own_default(loans, list_day, d)
    applicant = _entries_applicant_phone(plat, loans, list_day, d)
    contact = _entries_contact_listing(phones, plat, loans, links, list_day, end)
    first = Entries.concat([own, applicant, contact])
    first = first.take(
        _first_per_group((first.plat, first.kind, first.subj), first.listed, first.cause)
    )
    first.root = np.arange(first.n)
    return first


def _entries_own_default(loans: Loans, list_day: np.ndarray, d: np.ndarray) -> Entries:
    """The borrowers of the delinquent loans ``d``, listed by their lenders."""
    defaulted = loans.status[d] == DEFAULTED
    return _entries(
        plat=loans.platform[d],
        kind=0,
        subj=loans.borrower[d],
        listed=list_day[d],
        cause=d,
        mech=OWN,
        linked=loans.borrower[d],
        reason=np.where(defaulted, 0, 1),
    )


def _entries_applicant_phone(
    plat: Platforms, loans: Loans, list_day: np.ndarray, d: np.ndarray
) -> Entries:
    """The applicant phones of the delinquent loans ``d`` at the lenders that list them
    (a misused phone when it is not the borrower's)."""
    a = d[plat.lists_app[loans.platform[d]]]
    return _entries(
        plat=loans.platform[a],
        kind=1,
        subj=loans.phone[a],
        listed=list_day[a],
        cause=a,
        mech=np.where(loans.misused[a], MISUSED, OWN),
        via=loans.phone[a],
        linked=loans.user[a],
        reason=np.where(loans.status[a] == DEFAULTED, 2, 3),
    )


def _entries_contact_listing(
    phones: Phones,
    plat: Platforms,
    loans: Loans,
    links: Links,
    list_day: np.ndarray,
    end: int,
) -> Entries:
    """The contact, reference, guarantor (and address-book) phones of the listed loans at
    the lenders that list them, or their real-name owners where that is the policy."""
    lk = np.flatnonzero((list_day[links.loan] != MISSING) & (list_day[links.loan] <= end))
    lk_plat = loans.platform[links.loan[lk]]
    lk = lk[plat.lists_contacts[lk_plat] & ((links.role[lk] != AB) | plat.lists_ab[lk_plat])]
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
        mech=CONTACT,
        via=links.phone[lk],
        linked=links.person[lk],
        reason=R_CONTACT + links.role[lk],
        role=links.role[lk],
    )


def _by_platform(entries: Entries, platforms: int) -> tuple[np.ndarray, np.ndarray]:
    """The entries' indices ordered by platform, and where each platform's run starts."""
    order = np.argsort(entries.plat, kind="stable")
    return order, np.searchsorted(entries.plat[order], np.arange(platforms + 1))


def _of_platform(q: int, by: tuple[np.ndarray, np.ndarray], offset: int = 0) -> np.ndarray:
    """The indices (plus ``offset``) of platform ``q``'s entries, from :func:`_by_platform`."""
    order, bounds = by
    return offset + order[bounds[q] : bounds[q + 1]]


def _entries_copy(
    first: Entries,
    phones: Phones,
    plat: Platforms,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> Entries:
    """2. brokers copy what lenders pass them (resolving phones to owners if that is their
    policy); the first copy of a subject on a broker stays."""
    by_plat = _by_platform(first, plat.n)
    copies: list[Entries] = []
    for s, b, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True):
        if plat.cls[b] != BROKER:
            continue
        src = _of_platform(int(s), by_plat)
        listed = np.maximum(first.listed[src], since) + rng.integers(
            0, p.copy_delay_max + 1, src.size
        )
        kind = first.kind[src].copy()
        subj = first.subj[src].copy()
        reason = np.full(src.size, R_BROKER, np.int64)
        if plat.resolves[b]:
            owner = phones.owner_at(subj, listed, registered=True)
            hit = (kind == 1) & (owner >= 0)
            kind[hit], subj[hit], reason[hit] = 0, owner[hit], R_BROKER_RESOLVED
        copies.append(
            _entries(
                plat=b,
                kind=kind,
                subj=subj,
                listed=listed,
                cause=first.cause[src],
                mech=COPY,
                src=src,
                src_true=src,
                root=first.root[src],
                via=first.via[src],
                linked=first.linked[src],
                reason=reason,
                role=first.role[src],
            )
        )
    brokered = Entries.concat(copies) if copies else Entries.empty()
    brokered = brokered.take(np.flatnonzero(brokered.listed <= end))
    return brokered.take(
        _first_per_group(
            (brokered.plat, brokered.kind, brokered.subj), brokered.listed, brokered.src
        )
    )


def _customers(loans: Loans, n: int) -> tuple[np.ndarray, np.ndarray]:
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
    first: Entries,
    brokered: Entries,
    n: int,
    plat: Platforms,
    loans: Loans,
    p: SynthParams,
    rng: np.random.Generator,
    end: int,
) -> Entries:
    """3. banks and lenders list their customers found on the lists shared with them (the
    source recorded in ``copied_from`` or not); the first listing of a person stays."""
    n1 = first.n
    cust_key, cust_since = _customers(loans, n)
    listed_key = np.sort(first.plat[first.kind == 0] * n + first.subj[first.kind == 0])
    by_plat, by_plat2 = _by_platform(first, plat.n), _by_platform(brokered, plat.n)
    screens: list[Entries] = []
    for s, r, since in zip(plat.share_from, plat.share_to, plat.share_since, strict=True):
        if plat.cls[r] == BROKER:
            continue
        if plat.cls[s] == BROKER:
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
        p_record = p.p_bank_records_source if plat.cls[r] == BANK else p.p_lender_records_source
        recorded = rng.random(src.size) < p_record
        screens.append(
            _entries(
                plat=r,
                kind=0,
                subj=pool.subj[local],
                listed=listed,
                cause=pool.cause[local],
                mech=np.where(recorded, COPY, SHARED),
                src=np.where(recorded, src, -1),
                src_true=src,
                root=pool.root[local],
                via=pool.via[local],
                linked=pool.linked[local],
                reason=R_SCREEN,
                role=pool.role[local],
            )
        )
    screened = Entries.concat(screens) if screens else Entries.empty()
    screened = screened.take(np.flatnonzero(screened.listed <= end))
    return screened.take(
        _first_per_group((screened.plat, screened.subj), screened.listed, screened.src_true)
    )
