"""Customer records (``generate(..., records=True)``): every platform's own record of a
person, written as each platform spells names, ID numbers and phones, and the ground truth
of whom each record is (``docs/synthetic-data.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.contract import columns
from .params import YEAR, SynthParams
from .population import (
    CITIES,
    GIVEN,
    MISSING,
    SURNAMES,
    People,
    Phones,
    Platforms,
    day_number,
    id_width,
)
from .writers import (
    CITY_NAMES,
    Dates,
    Out,
    bool_cells,
    id_cells,
    id_numbers,
    lookup_table,
    phone_cells,
)

__all__ = ["Records", "make_records", "write_records"]

# ---------------------------------------------------------------------------------------------
# customer records (generate(..., records=True)): every platform's own record of a person

#: Chinese characters of SURNAMES and GIVEN (pypinyin reads each back as that pinyin)
_SURNAMES_HANZI = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯邓曹彭增肖田董潘袁蔡蒋于杜叶程魏苏卢丁任沈姚范"
_GIVEN_HANZI = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂慧红兰梅华建波宁玉欣浩怡晨瑞子涵云凯龙"
#: how a record writes the name (ground_truth/records.csv name_form)
NAME_FORMS = ("pinyin", "hanzi", "upper", "compact", "spaced")
#: where a record's phone comes from (ground_truth/records.csv phone_source)
PHONE_SOURCES = ("own", "second", "shared", "hub", "none")


@dataclass
class Records:
    """Every platform's own record of a person (names, ID numbers, phones as written) and
    its ground truth."""

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
    birth: np.ndarray  # day or MISSING
    city: np.ndarray  # index or -1
    known: np.ndarray

    @property
    def n(self) -> int:
        """How many records."""
        return int(self.person.size)


def _concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=1)


def _pad(matrix: np.ndarray, width: int) -> np.ndarray:
    return np.pad(matrix, ((0, 0), (0, width - matrix.shape[1])))


def _record_names(
    people: People, person: np.ndarray, p: SynthParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = person.size
    sur, g1, g2 = people.surname[person], people.given1[person], people.given2[person]
    space = np.full((m, 1), 32, np.uint8)
    space2 = np.where((g2 >= 0)[:, None], space, 0).astype(np.uint8)
    cap = lookup_table(SURNAMES), lookup_table(GIVEN)
    low = lookup_table([x.lower() for x in SURNAMES]), lookup_table([x.lower() for x in GIVEN])
    up = lookup_table([x.upper() for x in SURNAMES]), lookup_table([x.upper() for x in GIVEN])
    han = lookup_table(list(_SURNAMES_HANZI)), lookup_table(list(_GIVEN_HANZI))
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


def make_records(
    people: People, phones: Phones, plat: Platforms, p: SynthParams, rng: np.random.Generator
) -> Records:
    """Draw the platform records of every person, each written as its platform spells it."""
    n = people.n
    per = 1 + np.minimum(rng.poisson(p.records_extra, n), plat.n - 1)
    person = rng.permutation(np.repeat(np.arange(n), per))
    m = person.size
    platform = rng.choice(plat.n, m, p=plat.weight / plat.weight.sum())
    name, form, typo = _record_names(people, person, p, rng)

    start, end = day_number(p.start), day_number(p.end)
    dates = Dates(start - 90 * YEAR, end + 1)
    id_number = id_numbers(people, dates, person)
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
    birth = np.where(rng.random(m) < p.p_record_no_birth, MISSING, birth)
    city = people.city_true[person].astype(np.int64)
    city = np.where(rng.random(m) < p.p_record_moved, rng.integers(0, len(CITIES), m), city)
    city = np.where(rng.random(m) < p.p_record_no_city, -1, city)
    known = rng.random(m) < p.p_record_known
    return Records(
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


def write_records(o: Out, rec: Records, gt: Path) -> tuple[int, int]:
    """Write ``records.csv`` and the ground truth's ``records.csv``; the rows written of
    each."""
    rw, pw, dates = id_width(rec.n), o.pw, o.dates

    def record_rows(s: slice) -> list[np.ndarray]:
        phone = phone_cells(rec.phone[s])
        phone[rec.national[s], :3] = 0  # 13912345678: a national number
        return [
            id_cells(b"R", np.arange(s.start, s.stop), rw),
            o.plat_ids[rec.platform[s]],
            rec.name[s],
            rec.id_number[s],
            phone,
            dates.iso(rec.birth[s]),
            CITY_NAMES[rec.city[s]],
            id_cells(b"P", np.where(rec.known[s], rec.person[s], -1), pw),
        ]

    def truth_rows(s: slice) -> list[np.ndarray]:
        return [
            id_cells(b"R", np.arange(s.start, s.stop), rw),
            id_cells(b"P", rec.person[s], pw),
            lookup_table(NAME_FORMS)[rec.form[s]],
            bool_cells(rec.typo[s]),
            bool_cells(rec.id_typo[s]),
            lookup_table(PHONE_SOURCES)[rec.source[s]],
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
