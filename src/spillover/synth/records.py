"""Customer records (``generate(..., records=True)``): every platform's own record of a
person, written as each platform spells names, ID numbers and phones, and the ground truth
of whom each record is (``docs/synthetic-data.md``).
"""

from __future__ import annotations

import dataclasses
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
    iso_day,
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

__all__ = [
    "Journey",
    "Records",
    "make_journey",
    "make_records",
    "swap_name_orders",
    "write_journey",
    "write_records",
]

# ---------------------------------------------------------------------------------------------
# customer records (generate(..., records=True)): every platform's own record of a person

#: Chinese characters of SURNAMES and GIVEN (pypinyin reads each back as that pinyin)
_SURNAMES_HANZI = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯邓曹彭增肖田董潘袁蔡蒋于杜叶程魏苏卢丁任沈姚范"
_GIVEN_HANZI = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂慧红兰梅华建波宁玉欣浩怡晨瑞子涵云凯龙"
#: how a record writes the name (ground_truth/records.csv name_form)
NAME_FORMS = ("pinyin", "hanzi", "upper", "compact", "spaced", "swapped")
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


def swap_name_orders(rec: Records, p: SynthParams, rng: np.random.Generator) -> Records:
    """Some pinyin names written given name first (``Weifang Wang`` for ``Wang Weifang``,
    a typo kept where it is): ``p.p_record_swapped`` of the records written ``pinyin``, drawn
    from ``rng`` (a stream of its own, so that the other records stay as they were)."""
    draw = rng.random(rec.n)
    rows = np.flatnonzero((rec.form == 0) & (draw < p.p_record_swapped))
    name, form = rec.name.copy(), rec.form.copy()
    for i in rows.tolist():
        text = bytes(name[i][name[i] != 0])
        surname, _, given = text.partition(b" ")
        swapped = np.frombuffer(given + b" " + surname, np.uint8)
        name[i] = 0
        name[i, : swapped.size] = swapped
    form[rows] = NAME_FORMS.index("swapped")
    return dataclasses.replace(rec, name=name, form=form)


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


# ---------------------------------------------------------------------------------------------
# the journey to the end (generate(..., records=True)): loans named by a record, entries on
# records, and one record of a person posing as another (the seed case's misidentification)


@dataclass(frozen=True)
class Journey:
    """Loans that name their borrower by a platform record (``loans.borrower_record``) and
    the entries listing those records (``subject_kind`` ``record``); one record (``posing``)
    is a person's application under another's name and phone, which linkage takes for
    that other person. Indices into :class:`Records`; days are internal day numbers."""

    record: np.ndarray  # the record each loan names (and each entry lists)
    applied: np.ndarray
    defaulted: np.ndarray
    listed: np.ndarray
    amount: np.ndarray
    posing: int  # the record written with another person's name and phone
    posing_as: int  # that other person

    @property
    def n(self) -> int:
        """How many loans (and entries)."""
        return int(self.record.size)


def _append_record(rec: Records, copy_of: int, person: int, platform: int) -> Records:
    """``rec`` with one more record: ``copy_of``'s name, phone and city, held by ``platform``
    and truly ``person``'s (no ID number, no birth date, not known to the data)."""

    def one(field: np.ndarray, value: object) -> np.ndarray:
        return np.concatenate([field, np.asarray([value], dtype=field.dtype)])

    return Records(
        person=one(rec.person, person),
        platform=one(rec.platform, platform),
        name=np.concatenate([rec.name, rec.name[copy_of : copy_of + 1]]),
        form=one(rec.form, rec.form[copy_of]),
        typo=one(rec.typo, False),
        id_number=np.concatenate([rec.id_number, np.zeros((1, 18), rec.id_number.dtype)]),
        id_typo=one(rec.id_typo, False),
        phone=one(rec.phone, rec.phone[copy_of]),
        national=one(rec.national, False),
        source=one(rec.source, PHONE_SOURCES.index("shared")),
        birth=one(rec.birth, MISSING),
        city=one(rec.city, rec.city[copy_of]),
        known=one(rec.known, False),
    )


def make_journey(
    rec: Records, plat: Platforms, p: SynthParams, rng: np.random.Generator
) -> tuple[Records, Journey]:
    """Pick the records that borrow and default (about one in fifty of those the data does
    not name a person for, at least three), and add the posing record: someone applies
    with the name and phone of a person another platform knows by a clean record.
    Returns the records (with the posing one, last) and the journey."""
    clean = rec.known & (rec.form == 0) & ~rec.typo & (rec.source == 0) & (rec.phone >= 0)
    clean &= rec.city >= 0
    candidates = np.flatnonzero(clean)
    if candidates.size == 0:  # a tiny folder: any record with a phone
        candidates = np.flatnonzero(rec.phone >= 0)
    copy_of = int(candidates[rng.integers(0, candidates.size)])
    posing_as = int(rec.person[copy_of])
    people = int(rec.person.max()) + 1
    poser = int((posing_as + 1 + rng.integers(0, max(people - 1, 1))) % people)
    platform = int((rec.platform[copy_of] + 1 + rng.integers(0, max(plat.n - 1, 1))) % plat.n)
    rec = _append_record(rec, copy_of, poser, platform)
    posing = rec.n - 1
    unnamed = np.flatnonzero(~rec.known[:posing] & (rec.phone[:posing] >= 0))
    k = min(unnamed.size, max(3, posing // 50))
    chosen = np.sort(rng.choice(unnamed, k, replace=False)) if k else unnamed[:0]
    record = np.append(chosen, posing)
    start, end = day_number(p.start), day_number(p.end)
    applied = rng.integers(start, end - 200, record.size)
    defaulted = applied + rng.integers(60, 120, record.size)
    listed = defaulted + rng.integers(1, 30, record.size)
    amount = 500 * rng.integers(2, 40, record.size)
    return rec, Journey(record, applied, defaulted, listed, amount, posing, posing_as)


def _text_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("ab") as handle:
        handle.write("".join(",".join(r) + "\n" for r in rows).encode())


def write_journey(o: Out, rec: Records, j: Journey, gt: Path) -> tuple[int, int, int]:
    """Add the journey's loans to ``loans.csv`` (a ``borrower_record`` column, empty on the
    other loans), its entries to ``blacklist.csv`` and who truly borrowed to
    ``ground_truth/record_journey.csv``; the loans, entries and truth rows written."""
    loans = o.out / "loans.csv"
    text = loans.read_bytes()
    header, _, body = text.partition(b"\n")
    loans.write_bytes(header + b",borrower_record\n" + body.replace(b"\n", b",\n"))
    rw, pw = id_width(rec.n), o.pw
    record_ids = [f"R{r + 1:0{rw}d}" for r in j.record.tolist()]
    platforms = [bytes(o.plat_ids[rec.platform[r]]).rstrip(b"\0").decode() for r in j.record]
    loan_ids = [f"LR{i + 1:06d}" for i in range(j.n)]
    entry_ids = [f"ER{i + 1:06d}" for i in range(j.n)]
    phones = [f"+86{rec.phone[r]:011d}" for r in j.record.tolist()]
    _text_rows(
        loans,
        [
            [lid, plat, "", iso_day(a), "defaulted", phone, "false", str(amt), iso_day(d), rid]
            for lid, plat, a, phone, amt, d, rid in zip(
                loan_ids, platforms, j.applied.tolist(), phones, j.amount.tolist(),
                j.defaulted.tolist(), record_ids, strict=True,
            )
        ],
    )  # fmt: skip
    _text_rows(
        o.out / "blacklist.csv",
        [
            [eid, plat, "record", rid, iso_day(day), f"loan {lid} defaulted", ""]
            for eid, plat, rid, day, lid in zip(
                entry_ids, platforms, record_ids, j.listed.tolist(), loan_ids, strict=True
            )
        ],
    )
    truth = gt / "record_journey.csv"
    truth.write_text("entry_id,loan_id,record_id,person_id,posing_as\n")
    _text_rows(
        truth,
        [
            [eid, lid, rid, f"P{rec.person[r] + 1:0{pw}d}", ""]
            if r != j.posing
            else [eid, lid, rid, f"P{rec.person[r] + 1:0{pw}d}", f"P{j.posing_as + 1:0{pw}d}"]
            for eid, lid, rid, r in zip(
                entry_ids, loan_ids, record_ids, j.record.tolist(), strict=True
            )
        ],
    )
    return j.n, j.n, j.n
