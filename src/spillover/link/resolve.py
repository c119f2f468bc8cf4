"""Identity linkage: platform records resolved to people (``spillover link``, docs/linkage.md).

Every platform holds its own customer records (a name, maybe an ID number, a
phone number...). :func:`link` decides which records are the same person with a
probabilistic Fellegi-Sunter model (Splink on DuckDB, deduplication across
platforms) and writes a complete data folder: the input tables, ``records`` as
given (a ``person_id`` only where the input named one), ``people`` with one row per
new identity, and the ``matches`` table that says, for every record, its person,
which pair decided it and which comparison levels decided that pair
(docs/contract.md §6): a match stays evidence, read with its factor and waterfall.
The input folder is checked whole by the project's loaders first.

The model: blocking on ID number, on phone, on name (order swaps undone) with city
or with birth date, and on birth date alone (a key value on more than
:data:`MAX_BLOCK_SIZE` records is not used alone); one comparison per field of
:data:`spillover.rules.MATCH_FIELDS` (names compared written, as pinyin, with order
swaps undone, with Jaro-Winkler and Damerau-Levenshtein levels and by their parts, so
``徐燕``, ``Xu Yan``, ``YAN Xu`` and ``Xu Yen`` agree; term-frequency adjustment on
names and phones, so a phone shared by many records counts for less). Its
parameters are estimated from the records without labels (by default on a folder of
at least :data:`AUTO_TRAIN_RECORDS` records, or ``train=True``: the prior and u by
seeded random sampling, m by expectation maximisation over blocking rules chosen
from the fields present), else come from a versioned settings file shipped with the
package (``spillover/link/splink-v5.json``). Pairs at or above the threshold are
clustered into people (connected components), except that no pair is ever joined
unless its names or its ID numbers agree: a shared phone alone never makes two
records one person (the hard rule of issue 14); on a phone the records of several
identities carry (a misused phone), names agree for this rule only within one typo
(:data:`MISUSED_PHONE_NAME_LEVELS`); and no person is made of records with two
different valid resident ID numbers (the pair that would, taken heaviest first, is
left out).

Names are normalized before comparison:

>>> name_forms("徐燕"), name_forms(" XU  Yan "), name_forms("xu-yan")
(('徐燕', 'xuyan'), ('xuyan', 'xuyan'), ('xuyan', 'xuyan'))
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import logging
import math
import re
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pypinyin import lazy_pinyin
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..data import parquet as parquetio
from ..data.exact import checked_region, read_valid_table, table_file, table_paths
from ..data.fast import read_columns
from ..data.outputs import check_not_inside, check_outside
from ..data.rows import LoanRow, MatchRow, RecordRow
from ..errors import DataError, OptionError, Problem, SpilloverError
from ..facts.columns import Columns
from ..facts.model import MATCH_FIELDS, Match, MatchKey
from ..facts.phones import CN_MOBILE_SHAPE, DEFAULT_REGION, normalize_phone
from ..facts.resident_id import validate_resident_id
from ..files.write import atomic_file, atomic_folder, write_data_rows
from ..rules import match_key
from .settings import (
    AUTO_TRAIN_RECORDS,
    DEFAULT_THRESHOLD,
    MAX_BLOCK_SIZE,
    SETTINGS_VERSION,
    SHIPPED_PRIOR_RECORDS,
)

__all__ = [
    "AUTO_TRAIN_RECORDS",
    "DEFAULT_THRESHOLD",
    "LEVEL_AGREES",
    "MAX_BLOCK_SIZE",
    "MAX_NAME_LETTERS",
    "MISUSED_PHONE_FACTOR",
    "MISUSED_PHONE_NAME_LEVELS",
    "PINYIN_SYLLABLES",
    "PLACEHOLDERS",
    "RECORD_COLUMNS",
    "SETTINGS_VERSION",
    "SHIPPED_PRIOR_RECORDS",
    "SURNAME_READINGS",
    "TF_MIN_RECORDS",
    "WIDE_RULE_KEY",
    "LinkSummary",
    "ModelRun",
    "city_key",
    "default_settings",
    "link",
    "load_settings",
    "name_canon",
    "name_forms",
    "name_parts",
    "name_turned",
    "new_person_id",
    "pairwise_quality",
    "shipped_prior",
]

#: The columns of the ``records`` table (docs/contract.md §1), in file order.
RECORD_COLUMNS: tuple[str, ...] = tuple(RecordRow.model_fields)

#: The comparison-level labels a model may use and what each says about the field:
#: agreed (exactly or closely), disagreed, or could not be compared (a value missing).
LEVEL_AGREES: Mapping[str, bool | None] = {
    "exact": True,
    "pinyin": True,
    "swapped": True,
    "close": True,
    "similar": True,
    "alike": False,
    "partial": False,
    "different": False,
    "missing": None,
}

#: Term frequencies (how common a name or a phone is) are counted against at least this
#: many records, so that a handful of records is not read as a population in which
#: every value is common. A model estimated from the records themselves counts them against
#: the records (its u probabilities come from the same population).
TF_MIN_RECORDS = 100_000

#: The columns the model compares (made from the records by :func:`_prepare`).
_MODEL_COLUMNS = (
    "record_id",
    "id_number",
    "name_norm",
    "name_key",
    "name_canon",
    "name_turned",
    "name_parts",
    "name_lo",
    "name_hi",
    "phone",
    "birth_date",
    "city",
)

#: The columns of the ``matches`` table (docs/contract.md §1), in file order.
_MATCH_COLUMNS: tuple[str, ...] = tuple(MatchRow.model_fields)

_E164_CN = re.compile(rf"\+86{CN_MOBILE_SHAPE}")


@dataclass(frozen=True, slots=True)
class LinkSummary:
    """What :func:`link` wrote: the folder, the counts, the model used and the time taken."""

    out: Path
    records: int
    known: int
    people_new: int
    matched: int
    pairs_scored: int
    pairs_joined: int
    pairs_refused_phone_only: int
    threshold: float
    settings: str
    trained: bool
    seed: int
    elapsed: float
    #: the cap on a blocking key's records (:data:`MAX_BLOCK_SIZE`), the key values over it
    #: (not used alone for blocking) and how many records they held
    max_block_size: int = 0
    blocking_keys_capped: int = 0
    records_in_capped_keys: int = 0
    #: what the run left out or could not do (capped blocking keys, skipped training rules)
    notes: tuple[str, ...] = ()
    #: pairs over the threshold refused because their names agree only below
    #: :data:`MISUSED_PHONE_NAME_LEVELS` (``similar``) on a phone several identities use
    pairs_refused_misused_phone: int = 0
    #: joining pairs left out because they would make one person of two different valid
    #: resident ID numbers (:func:`_without_id_conflicts`)
    pairs_refused_id_conflict: int = 0
    #: joining pairs left out because they would make one person of two birth dates farther
    #: apart than a typo (:func:`_without_id_conflicts`)
    pairs_refused_birth_conflict: int = 0
    #: records without a ``person_id`` that a loan names with its ``borrower_id``: kept
    #: with their match as the input gave it, not linked again
    held: int = 0


@dataclass(frozen=True, slots=True)
class ModelRun:
    """The model run of :func:`link` while its DuckDB connection is open, handed to
    ``link(..., on_model=...)`` (``link --report``, :mod:`spillover.link.report`): the
    connection (tables ``prepared``, ``scored`` and the term-frequency lookups
    ``tf_lookup_<column>``), the model before and after training, and the model as it
    scored (its blocking rules capped)."""

    con: Any
    start: Mapping[str, Any]
    model: Mapping[str, Any]
    scoring: Mapping[str, Any]
    scored: int
    threshold: float
    seed: int
    trained: bool


# ---------------------------------------------------------------------------------------------
# names


def name_forms(name: str) -> tuple[str, str]:
    """A name as written (its letters only: case, spaces, punctuation and tone marks
    dropped, :func:`_letters`) and as toneless pinyin.

    Chinese characters become their pinyin (``pypinyin``; the first, or the first two,
    read as a surname, :data:`SURNAME_READINGS`), so a name written in 汉字 and the same
    name in pinyin have the same second form. A name with no letter, one that says it
    is not known (:data:`PLACEHOLDERS`: 未知, N/A), or one of more than
    :data:`MAX_NAME_LETTERS` letters is ``("", "")``: no name.

    >>> name_forms("王伟芳"), name_forms("Wang Weifang"), name_forms("WANG, Wěi-fāng")
    (('王伟芳', 'wangweifang'), ('wangweifang', 'wangweifang'), ('wangweifang', 'wangweifang'))
    >>> name_forms("曾志伟")[1], name_forms("阿卜杜•热合曼")
    ('zengzhiwei', ('阿卜杜热合曼', 'abodureheman'))
    """
    written, parts, _ = _name_words(name)
    return written, "".join(parts)


def name_parts(name: str) -> tuple[str, ...]:
    """A name's parts as toneless pinyin, in the order written: its words, and for each
    Chinese character one syllable (the surname first).

    >>> name_parts("徐燕"), name_parts("Yan  XU"), name_parts("Wang Wei-fang")
    (('xu', 'yan'), ('yan', 'xu'), ('wang', 'wei', 'fang'))
    >>> name_parts("Zhang小明"), name_parts("Wáng Wěifāng")
    (('zhang', 'xiao', 'ming'), ('wang', 'weifang'))
    """
    return _name_words(name)[1]


#: The surnames whose reading is not what ``pypinyin`` gives the character alone (a name in
#: Chinese characters begins with its surname): compound surnames first, then single ones.
#: 曾 is Zeng as a surname (alone: ceng), 翟 Zhai (di), 单 Shan (dan), 仇 Qiu (chou), ...
#: Where a surname has two readings, the common one (覃 Qin, also Tan; 乐 Yue, also Le).
SURNAME_READINGS: Mapping[str, tuple[str, ...]] = {
    # compound surnames, read one character at a time otherwise (万 wan, 俟 qi)
    "万俟": ("mo", "qi"),
    "尉迟": ("yu", "chi"),
    "单于": ("chan", "yu"),
    "澹台": ("tan", "tai"),
    "长孙": ("zhang", "sun"),
    "乐正": ("yue", "zheng"),
    "子车": ("zi", "ju"),
    # single surnames
    "曾": ("zeng",),
    "单": ("shan",),
    "解": ("xie",),
    "仇": ("qiu",),
    "区": ("ou",),
    "朴": ("piao",),
    "查": ("zha",),
    "覃": ("qin",),
    "盖": ("ge",),
    "缪": ("miao",),
    "乐": ("yue",),
    "翟": ("zhai",),
    "秘": ("bi",),
    "繁": ("po",),
    "折": ("she",),
    "藏": ("zang",),
    "都": ("du",),
    "薄": ("bo",),
    "阚": ("kan",),
    "召": ("shao",),
    "种": ("chong",),
    "重": ("chong",),
    "卜": ("bu",),
    "员": ("yun",),
    "贠": ("yun",),
    "句": ("gou",),
    "祭": ("zhai",),
    "隗": ("wei",),
    "能": ("nai",),
    "佴": ("nai",),
    "蕃": ("pi",),
    "粘": ("nian",),
}


#: Names and cities that say the value is not known (read by :func:`_letters`, spaces
#: dropped): 未知 "unknown", 不详, 无名氏, 匿名 "anonymous", 测试 "test", N/A, ... Such a
#: name or city is missing, as one without a letter is: two strangers registered under 未知
#: on one placeholder phone do not agree on a name.
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        *("未知", "不详", "不明", "无", "无名", "无名氏", "匿名", "某某", "某人", "测试"),
        *("暂无", "待定", "未填", "未填写", "空", "客户", "用户", "先生", "女士", "小姐"),
        *("unknown", "unk", "na", "none", "null", "nil", "test", "tbd", "anonymous"),
        *("noname", "xxx", "customer", "user"),
    }
)


#: The most letters a name may have: a longer one (a field filled with text that is no
#: name) is missing, as a placeholder is. Real names are far shorter, and comparing two
#: names costs the product of their lengths (Damerau-Levenshtein, Jaro-Winkler): 50
#: records named with 2,500 letters each took minutes to link.
MAX_NAME_LETTERS = 100


#: a name as :func:`_name_words` reads it: its letters as written, its parts as pinyin and
#: whether it is written in Chinese characters
_NameWords = tuple[str, tuple[str, ...], bool]


def _name_words(name: str) -> _NameWords:
    """A name's letters as written (:func:`_letters`, spaces dropped), its parts as pinyin
    (:func:`name_parts`: its words, each Chinese character a syllable of its own, the
    surname read as one) and whether it is written in Chinese characters (its first
    letter is one)."""
    text = _letters(name)
    written = "".join(text.split())
    if written in PLACEHOLDERS or len(written) > MAX_NAME_LETTERS:
        return "", (), False
    if text.isascii():  # the common case: no Chinese character to read
        return written, tuple(text.split()), False
    hanzi = bool(written) and _pinyin(written[0]) != written[0]
    surname: tuple[str, ...] = ()
    if hanzi:
        surname = SURNAME_READINGS.get(written[:2]) or SURNAME_READINGS.get(written[0], ())
    parts: list[str] = []
    word = ""
    at = 0  # the letter's place in the name, spaces left out
    for char in text:
        if char == " ":
            parts.append(word)
            word = ""
            continue
        reading = surname[at] if at < len(surname) else _pinyin(char)
        at += 1
        if reading == char:  # a letter of a word (Latin, or a script pypinyin leaves alone)
            word += char
        else:  # a Chinese character: a syllable of its own
            parts += [word, reading]
            word = ""
    parts.append(word)
    return written, tuple(p for p in parts if p), hanzi


#: Letters (``L``), digits (``N``) and marks (``M``: on a letter outside Latin) make a name
#: or a city; a character of any other Unicode category (a space of any kind, punctuation:
#: a dash, a middle dot ``·`` ``•`` ``‧``, a comma, a slash, a bracket, an apostrophe; a
#: symbol: ``∙``, ``<``; an invisible format character: a zero-width space or joiner, a soft
#: hyphen, a byte-order mark) separates its parts. Text without a letter is no name or city
#: (``-``; a phone number written as the name)
_KEPT_CATEGORIES = frozenset("LNM")
_ASCII_OTHER = re.compile(r"[^a-z0-9]+")


def _letters(text: str) -> str:
    """``text`` as its letters and digits in lower case, every other character a space, or
    nothing when it holds no letter (``-``, ``138 1234 5678``):
    compatibility forms folded (NFKC: full-width letters ``ＷＡＮＧ``, the KangXi radical
    ``⾦`` for ``金``), Latin letters without their tone marks or accents (``Wáng`` is
    ``wang``, in NFC or NFD alike), and ``ü`` written ``v``, as pinyin is typed and
    ``pypinyin`` reads ``吕`` (``Lǚ`` is ``lv``).

    >>> _letters("WANG, Wěi-fāng"), _letters("王\\u200b伟芳"), _letters("Lǚ Xīn")
    ('wang  wei fang', '王 伟芳', 'lv xin')
    """
    if text.isascii():
        text = _ASCII_OTHER.sub(" ", text.lower())
        return text if any("a" <= c <= "z" for c in text) else ""
    decomposed = unicodedata.normalize("NFKD", text).lower().replace("u\u0308", "v")
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue  # a mark on a Latin letter: a tone mark, an accent
        kept.append(char)
    composed = unicodedata.normalize("NFKC", "".join(kept))
    text = "".join(c if unicodedata.category(c)[0] in _KEPT_CATEGORIES else " " for c in composed)
    return text if any(c.isalpha() for c in text) else ""


def name_canon(name: str) -> str | None:
    """A name with a swap of its order undone, however its given names are spaced: of the
    name's turns (its letters read from another starting point, as when a surname is
    written last), the smallest.

    A name written in pinyin or Chinese characters (its letters all read as pinyin
    syllables, :data:`PINYIN_SYLLABLES`) turns at every point that leaves pinyin on both
    sides, so the order of the surname and the given name and the spacing of a given name
    of two syllables do not matter: ``Xia Han``, ``Han Xia`` and ``韩霞`` meet, as do
    ``Wang Wei Fang``, ``Weifang Wang``, ``Wei Fang Wang``, ``wangweifang`` and ``王伟芳``
    (the given name's syllables keep their order: ``Wang Fangwei`` is another name). Any
    other name (a typo, a name not in pinyin) turns where it was written apart: its last
    word moved to the front (in Chinese characters: its surname, the first, to the end).

    >>> name_canon("Xia Han") == name_canon("Han Xia") == name_canon("韩霞") == "hanxia"
    True
    >>> {name_canon(n) for n in ("Wang Wei Fang", "Weifang Wang", "王伟芳", "wangweifang")}
    {'fangwangwei'}
    >>> name_canon("Wang Fangwei") == name_canon("Wang Weifang"), name_canon("Smith John")
    (False, 'johnsmith')
    """
    return _canon(_name_words(name))


def _canon(words: _NameWords) -> str | None:
    """:func:`name_canon` of a name read by :func:`_name_words`."""
    parts = words[1]
    if not parts:
        return None
    written = "".join(parts)
    bounds = frozenset(np.cumsum([len(p) for p in parts[:-1]]).tolist())
    cuts = _pinyin_cuts(written, bounds)
    if cuts:
        return min(written[k:] + written[:k] for k in (0, *cuts))
    return _turned(words)


def name_turned(name: str) -> str | None:
    """A name with a swap of its order undone where it was written apart: of the name and
    the name turned round (in Chinese characters: its surname, the first, moved to the
    end; else its last word moved to the front), the smaller. The key ``name_canon``
    gives a name that is no pinyin (a typo); the ``similar`` name level compares it within
    one typo, so that a typo in a swapped name still reads as a name that agrees:
    ``Ziwed Yang`` and ``Yang Ziwei`` (``yangziwed``, ``yangziwei``).

    >>> name_turned("Ziwed Yang"), name_turned("Yang Ziwei"), name_turned("王伟芳")
    ('yangziwed', 'yangziwei', 'wangweifang')
    """
    return _turned(_name_words(name))


def _turned(words: _NameWords) -> str | None:
    """:func:`name_turned` of a name read by :func:`_name_words`."""
    _, parts, hanzi = words
    if not parts:
        return None
    written = "".join(parts)
    if len(parts) < 2:
        return written
    turned = "".join(parts[1:]) + parts[0] if hanzi else parts[-1] + "".join(parts[:-1])
    return min(written, turned)


#: The syllables of Mandarin pinyin without tones (``ü`` written ``v``, or ``u`` after
#: ``l`` and ``n``), as :func:`name_canon` reads a name: the syllables ``pypinyin`` gives
#: the common Chinese characters, less the interjections ``m``, ``n`` and ``hm``.
_SYLLABLES = """a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai
    can cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua
    chuai chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de
    den deng di dian diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang
    fei fen feng fiao fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan
    guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui
    hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao
    ke ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei leng li
    lia lian liang liao lie lin ling liu lo long lou lu luan lue lun luo lv lve ma mai man mang
    mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei nen
    neng ni nian niang niao nie nin ning niu nong nou nu nuan nue nun nuo nv nve o ou pa pai
    pan pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie
    qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run
    ruo sa sai san sang sao se sen seng sha shai shan shang shao she shen sheng shi shou shu
    shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao
    te teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo
    wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin
    ying yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang
    zhao zhe zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou
    zu zuan zui zun zuo"""
PINYIN_SYLLABLES: frozenset[str] = frozenset(_SYLLABLES.split())
_SYLLABLE_MAX = max(map(len, PINYIN_SYLLABLES))


def _pinyin_cuts(text: str, bounds: frozenset[int] = frozenset()) -> tuple[int, ...]:
    """The points (0 < k < len) at which ``text`` splits into two runs of pinyin syllables,
    when ``text`` itself is one (else none). As pinyin is written, a syllable starting with
    ``a``, ``o`` or ``e`` starts the text or a word (``bounds``: where the words of the
    name as written start): ``xiahan`` is ``xia han``, not ``xi a han``.

    >>> _pinyin_cuts("wangweifang"), _pinyin_cuts("smith"), _pinyin_cuts("xiahan")
    ((4, 7), (), (3,))
    >>> _pinyin_cuts("xian"), _pinyin_cuts("xian", frozenset({2}))
    ((), (2,))
    """
    n = len(text)
    if n < 2 or not text.isascii() or not text.isalpha():
        return ()
    ends = [False] * (n + 1)  # text[:i] is pinyin
    ends[0] = True
    starts = [False] * (n + 1)  # text[i:] is pinyin
    starts[n] = True
    # where a syllable may start: a vowel-initial one only at the start of a word
    may = [i == 0 or i in bounds or text[i] not in "aoe" for i in range(n)]
    for i in range(1, n + 1):
        ends[i] = any(
            ends[j] and may[j] and text[j:i] in PINYIN_SYLLABLES
            for j in range(max(0, i - _SYLLABLE_MAX), i)
        )
    for i in range(n - 1, -1, -1):
        starts[i] = may[i] and any(
            starts[j] and text[i:j] in PINYIN_SYLLABLES
            for j in range(i + 1, min(n, i + _SYLLABLE_MAX) + 1)
        )
    if not ends[n]:
        return ()
    return tuple(k for k in range(1, n) if ends[k] and starts[k])


@functools.lru_cache(maxsize=65536)
def _pinyin(char: str) -> str:
    """One character's toneless pinyin (itself when it is not Chinese); read one character
    at a time, as names are (a name is no phrase whose context changes a reading)."""
    if char.isascii():
        return char
    return "".join(lazy_pinyin(char, errors="default"))


#: A city written with this suffix (市, city) is the city without it: 北京市 is 北京
_CITY_SUFFIX = "市"


@functools.lru_cache(maxsize=1 << 14)
def city_key(city: str) -> str | None:
    """A city as it is compared: its letters (:func:`_letters`: case, spaces, punctuation,
    full-width forms and accents do not matter) without the suffix 市; None when it holds
    no letter (``-``) or says it is not known (:data:`PLACEHOLDERS`: 未知, N/A). A city in
    Chinese characters is compared by its characters, never by their pinyin: 苏州 and 宿州
    are both Suzhou, 泰州 and 台州 both Taizhou, and two namesakes, one in each, must not
    meet on a city that only sounds the same (so 北京 and Beijing stay two spellings that
    do not meet).

    >>> city_key("北京市"), city_key("北 京"), city_key("ＢＥＩ ＪＩＮＧ"), city_key(" - ")
    ('北京', '北京', 'beijing', None)
    >>> city_key("苏州") == city_key("宿州")
    False
    """
    written = "".join(_letters(city).split())
    if len(written) > 2 and written.endswith(_CITY_SUFFIX):
        written = written[: -len(_CITY_SUFFIX)]
    return written if written and written not in PLACEHOLDERS else None


# ---------------------------------------------------------------------------------------------
# settings


def default_settings() -> dict[str, Any]:
    """The model shipped with the package (a Splink settings dictionary with its parameters)."""
    text = (
        resources.files("spillover.link")
        .joinpath(f"{SETTINGS_VERSION}.json")
        .read_text(encoding="utf-8")
    )
    settings: dict[str, Any] = json.loads(text)
    return settings


def shipped_prior(records: int, estimated_on: int = SHIPPED_PRIOR_RECORDS) -> float:
    """The shipped model's prior (``probability_two_random_records_match``) for a folder of
    ``records`` records: as shipped up to ``estimated_on`` records (those it was estimated
    on, :data:`SHIPPED_PRIOR_RECORDS`), scaled by ``estimated_on / records`` above (the
    chance that two random records are one person falls about as 1 / records).

    >>> shipped_prior(500) == default_settings()["probability_two_random_records_match"]
    True
    >>> f"{shipped_prior(1_000_000):.2g}", f"{shipped_prior(200, estimated_on=100):.2g}"
    ('1.6e-06', '5e-05')
    """
    prior = float(default_settings()["probability_two_random_records_match"])
    if records <= estimated_on:
        return prior
    return prior * (estimated_on / records)


def _prior_note(records: int, prior: float) -> str:
    return f"prior: the shipped model's prior scaled to {records} records ({prior:.2g})"


def _scaled_prior(
    settings: str | Path | None,
    records: int,
    start: dict[str, Any],
    model: dict[str, Any],
    notes: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``start`` and ``model`` with the shipped prior scaled to ``records``
    (:func:`shipped_prior`) where the model linked with keeps it (no ``settings`` file, more
    than :data:`SHIPPED_PRIOR_RECORDS` records, and no prior estimated from these records),
    said in ``notes``; else as they are."""
    key = "probability_two_random_records_match"
    if settings is not None or records <= SHIPPED_PRIOR_RECORDS or model[key] != start[key]:
        return start, model
    prior = shipped_prior(records)
    notes.append(_prior_note(records, prior))
    return {**start, key: prior}, {**model, key: prior}


def load_settings(path: Path | None) -> dict[str, Any]:
    """The model in ``path`` (a Splink settings JSON), or the shipped one when ``None``.

    The model must compare the fields of :data:`~spillover.rules.MATCH_FIELDS` (one
    comparison named after each) with the level labels of :data:`LEVEL_AGREES`, on
    the prepared columns (``record_id``, ``id_number``, ``name_norm``, ``name_key``,
    ``phone``, ``birth_date``, ``city``); anything else raises
    :class:`~spillover.errors.OptionError`.

    >>> [c["output_column_name"] for c in load_settings(None)["comparisons"]]
    ['id_number', 'name', 'phone', 'birth_date', 'city']
    """
    if path is None:
        settings = default_settings()
    else:
        try:
            settings = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OptionError("--settings", f"cannot read {path}: {exc}") from None
    _check_settings(settings)
    return settings


def _check_settings(settings: Any) -> None:
    """Refuse, with one :class:`~spillover.errors.OptionError`, a model that is not a
    Splink settings dictionary of the shape :func:`load_settings` describes, or whose
    probabilities are not numbers above 0 and at most 1 (the prior below 1)."""
    _check_comparisons(settings)
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            _check_level(comparison["output_column_name"], level)
    if "probability_two_random_records_match" in settings:
        prior = settings["probability_two_random_records_match"]
        _check_probability("probability_two_random_records_match", prior, below_one=True)
    _check_blocking(settings.get("blocking_rules_to_generate_predictions"))
    if settings.get("unique_id_column_name", "record_id") != "record_id":
        raise OptionError("--settings", "unique_id_column_name must be record_id")


def _check_comparisons(settings: Any) -> None:
    """One comparison per field of :data:`MATCH_FIELDS`, each with a list of levels."""
    if not isinstance(settings, dict) or not isinstance(settings.get("comparisons"), list):
        raise OptionError("--settings", "not a Splink settings dictionary (no 'comparisons')")
    for i, comparison in enumerate(settings["comparisons"]):
        if not isinstance(comparison, dict) or not isinstance(
            comparison.get("comparison_levels"), list
        ):
            raise OptionError("--settings", f"comparison {i + 1}: no list 'comparison_levels'")
    names = [c.get("output_column_name") for c in settings["comparisons"]]
    if sorted(map(str, names)) != sorted(MATCH_FIELDS):
        raise OptionError(
            "--settings", f"the comparisons must be {', '.join(MATCH_FIELDS)}; found {names}"
        )


def _check_level(field: str, level: Any) -> None:
    """A comparison level: a condition, a known label, probabilities, a column to adjust for."""
    if not isinstance(level, dict) or not isinstance(level.get("sql_condition"), str):
        raise OptionError("--settings", f"{field}: a level without a 'sql_condition'")
    label = level.get("label_for_charts")
    if label not in LEVEL_AGREES:
        raise OptionError(
            "--settings",
            f"{field}: level label {label!r} is not one of {', '.join(LEVEL_AGREES)}",
        )
    for key in ("m_probability", "u_probability"):
        if key in level and level[key] is not None:
            _check_probability(f"{field}: level {label!r}: {key}", level[key])
    column = level.get("tf_adjustment_column")
    if column is not None and column not in _MODEL_COLUMNS:
        raise OptionError("--settings", f"{field}: no column {column!r} to adjust for")


def _check_blocking(rules: Any) -> None:
    """At least one prediction blocking rule, each a non-empty SQL condition."""
    if not isinstance(rules, list) or not rules:
        raise OptionError(
            "--settings",
            "blocking_rules_to_generate_predictions must list at least one rule "
            "(without one every pair of records would be scored)",
        )
    for rule in rules:
        text = rule.get("blocking_rule") if isinstance(rule, dict) else rule
        if not isinstance(text, str) or not text.strip():
            raise OptionError("--settings", f"not a blocking rule: {rule!r}")


def _check_probability(what: str, value: Any, *, below_one: bool = False) -> None:
    """``value`` must be a number (not a boolean) above 0 and at most 1 (below 1 with
    ``below_one``): Splink takes logarithms of these and of their odds."""
    top = 1 if not below_one else math.nextafter(1, 0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= top
    ):
        where = "below 1" if below_one else "at most 1"
        raise OptionError(
            "--settings", f"{what} must be a number above 0 and {where}, not {value!r}"
        )


def _levels(settings: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """Per field, the label of every comparison vector value (Splink's numbering: the null
    level is -1, the others count down from the first, most specific, level)."""
    out: dict[str, dict[int, str]] = {}
    for comparison in settings["comparisons"]:
        levels = comparison["comparison_levels"]
        plain = [lv for lv in levels if not lv.get("is_null_level")]
        labels = {len(plain) - 1 - i: lv["label_for_charts"] for i, lv in enumerate(plain)}
        for lv in levels:
            if lv.get("is_null_level"):
                labels[-1] = lv["label_for_charts"]
        out[comparison["output_column_name"]] = labels
    return out


def _untrained(settings: Mapping[str, Any]) -> dict[str, Any]:
    fresh = copy.deepcopy(dict(settings))
    for comparison in fresh["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("m_probability", None)
            level.pop("u_probability", None)
    fresh.pop("linker_uid", None)
    return fresh


# ---------------------------------------------------------------------------------------------
# reading the records


def _read_records(
    data: Path, region: str = DEFAULT_REGION
) -> tuple[pa.Table, set[str], dict[str, Match]]:
    """The ``records`` table of ``data`` as text columns (missing values null), the ids
    of its people and the records held to their person by a loan (:func:`_held`), after
    the whole folder has been checked by the project's loader
    (:func:`spillover.data.fast.read_dataset`: every table, every reference, the usual
    ``file:line: field`` messages), so that nothing is written from a folder that every
    later command would refuse."""
    if not data.is_dir():
        raise OptionError("--data", f"not a folder: {data}")
    if not table_paths(data, "records"):
        raise DataError(
            [Problem(str(data / "records.csv"), 0, "(table)", "table 'records' is missing")]
        )
    # the fast loader: its vectorized checks, and the exact loader's messages for any defect;
    # its columns, not the whole dataset's objects (people, loans, entries: unused here)
    checked = read_columns(data, region=region)
    rows: list[Any] = list(checked.records.values())
    people = set(checked.person_ids.tolist())
    held = _held(data, region, checked)
    del checked

    def text(value: object) -> str | None:
        if value is None:
            return None
        return value.isoformat() if isinstance(value, date) else str(value)

    columns: dict[str, pa.Array] = {
        name: pa.array([text(getattr(r, name, None)) for r in rows], pa.string())
        for name in RECORD_COLUMNS
    }
    return pa.table(columns), people, held


def _held(data: Path, region: str, checked: Columns) -> dict[str, Match]:
    """The records a loan names together with its ``borrower_id`` whose person the input
    gives only through ``matches``, with that match: the loan says which person the
    record is (the loader has checked that the record resolves to ``borrower_id``), so
    link keeps the record's match as given rather than linking it again (docs/linkage.md,
    "Records a loan names"). The loans are read again only when one names a record."""
    if checked.loan_record is None or not (checked.loan_record != "").any():
        return {}
    held: dict[str, Match] = {}
    for row in read_valid_table(data, "loans", region):
        assert isinstance(row, LoanRow)
        rid = row.borrower_record
        if rid is None or row.borrower_id is None or checked.records[rid].person_id:
            continue
        held[rid] = checked.matches[rid]
    return held


def _prepare(records: pa.Table, region: str = DEFAULT_REGION) -> pa.Table:
    """The columns the model compares: names written, as pinyin, with order swaps undone
    and in parts, phones in E.164 (a number without ``+`` read in ``region``), ID numbers
    upper-case, birth dates (when missing, from the ID number if it is a valid resident
    ID), cities by their letters (:func:`city_key`)."""
    names = records["name"].combine_chunks()
    distinct = pc.unique(names).drop_null().to_pylist()
    words = [_name_words(n) for n in distinct]  # each name read once
    index = pc.index_in(names, pa.array(distinct, pa.string()))
    written = pa.array([w[0] or None for w in words], pa.string())
    keyed = pa.array(["".join(w[1]) or None for w in words], pa.string())
    name_norm = pc.take(written, index)
    name_key = pc.take(keyed, index)
    canon = pa.array([_canon(w) for w in words], pa.string())
    turned = pa.array([_turned(w) for w in words], pa.string())
    split = [w[1] for w in words]
    parts = pa.array([list(p) or None for p in split], pa.list_(pa.string()))
    # a name's parts in alphabetical order, the first and the last (order swaps ignored):
    # a typo in one part leaves the other to block on
    lo = pa.array([min(p) if len(p) > 1 else None for p in split], pa.string())
    hi = pa.array([max(p) if len(p) > 1 else None for p in split], pa.string())

    phones = records["phone"].combine_chunks()
    if region == "CN":  # the common case without phonenumbers: a CN national mobile number
        national = pc.match_substring_regex(phones, rf"^{CN_MOBILE_SHAPE}$")
        phones = pc.if_else(national, pc.binary_join_element_wise("+86", phones, ""), phones)
    odd = [p for p in pc.unique(phones).drop_null().to_pylist() if not _E164_CN.fullmatch(p)]
    fixed: dict[str, str | None] = {}
    for raw in odd:
        try:
            fixed[raw] = normalize_phone(raw, region)
        except SpilloverError:
            fixed[raw] = None  # not a phone number: not compared
    if fixed:
        keys = pa.array(list(fixed), pa.string())
        values = pa.array(list(fixed.values()), pa.string())
        where = pc.index_in(phones, keys)
        phones = pc.if_else(pc.is_null(where), phones, pc.take(values, where))

    id_number = pc.utf8_upper(records["id_number"].combine_chunks())
    birth = pc.coalesce(records["birth_date"].combine_chunks(), _birth_dates(id_number))
    cities = records["city"].combine_chunks()
    known = pc.unique(cities).drop_null().to_pylist()
    city = pc.take(
        pa.array([city_key(c) for c in known], pa.string()),
        pc.index_in(cities, pa.array(known, pa.string())),
    )
    return pa.table(
        {
            "record_id": records["record_id"],
            "id_number": id_number,
            "name_norm": name_norm,
            "name_key": name_key,
            "name_canon": pc.take(canon, index),
            "name_turned": pc.take(turned, index),
            "name_parts": pc.take(parts, index),
            "name_lo": pc.take(lo, index),
            "name_hi": pc.take(hi, index),
            "phone": phones,
            "birth_date": birth,
            "city": city,
        }
    )


def _birth_dates(id_numbers: pa.Array) -> pa.Array:
    """The birth date an ID number holds when it is a valid Chinese resident ID (its date
    real, its check character right); null for any other identifier (a foreign ID, a
    customer number, a resident ID with a typo), which is compared as text only."""
    distinct = pc.unique(id_numbers).drop_null().to_pylist()
    dates: list[str | None] = []
    for value in distinct:
        try:
            text = validate_resident_id(value)
        except ValueError:
            dates.append(None)
        else:
            dates.append(f"{text[6:10]}-{text[10:12]}-{text[12:14]}")
    return pc.take(
        pa.array(dates, pa.string()), pc.index_in(id_numbers, pa.array(distinct, pa.string()))
    )


# ---------------------------------------------------------------------------------------------
# the model


@contextmanager
def _quiet_splink() -> Iterator[None]:
    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tf_columns(settings: Mapping[str, Any]) -> list[str]:
    columns = {
        lv["tf_adjustment_column"]
        for c in settings["comparisons"]
        for lv in c["comparison_levels"]
        if lv.get("tf_adjustment_column")
    }
    return sorted(columns)


def _term_frequencies(con: Any, settings: Mapping[str, Any], floor: int = TF_MIN_RECORDS) -> None:
    """Every term-frequency column's value frequencies, counted against at least ``floor``
    records (tables ``tf_lookup_<column>``)."""
    n: int = con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]
    for column in _tf_columns(settings):
        if column not in _MODEL_COLUMNS:
            raise OptionError("--settings", f"no column {column!r} to adjust for")
        frequency = f"count(*) / {max(n, floor, 1)}::DOUBLE"
        if column == "phone":
            frequency = (
                f"least(1.0, {frequency} * "
                f"pow({MISUSED_PHONE_FACTOR}, coalesce(any_value(i.identities), 1) - 1))"
            )
            con.execute(
                f"CREATE OR REPLACE TABLE tf_lookup_phone AS SELECT p.phone, {frequency} "
                "AS tf_phone FROM prepared AS p LEFT JOIN phone_identities AS i USING (phone) "
                "WHERE p.phone IS NOT NULL GROUP BY p.phone"
            )
            continue
        con.execute(
            f"CREATE OR REPLACE TABLE tf_lookup_{column} AS SELECT {column}, "
            f"{frequency} AS tf_{column} "
            f"FROM prepared WHERE {column} IS NOT NULL GROUP BY {column}"
        )


_EXACT_ON = re.compile(r'\s*"?(\w+)_l"?\s*=\s*"?(\w+)_r"?\s*')


def _scale_term_frequencies(con: Any, settings: Mapping[str, Any]) -> dict[str, float]:
    """Measure a value's rarity against all the agreement on its column, not the share of
    it left to one level. Splink adjusts a level for a term frequency ``tf(v)`` by
    ``log2(u / tf(v))``, ``u`` that of the exact match level on the column; where earlier
    levels of the comparison already take part of that agreement (a name written the same
    way before a name read the same in pinyin, before a name with its order swapped), that
    ``u`` is only their remainder, and every value at the level weighed ``log2`` (the
    column's agreement / the remainder) bits less than its rarity says (``pinyin``: about
    1.3 bits). Each such column's lookup is scaled by ``u / U``, ``U`` the u of the levels
    from the first through the exact one (they all agree on the column: the same written
    name is the same pinyin and the same name with its order undone), so the adjustment is
    ``log2(U / tf(v))``. A column whose exact level is the first (a phone, the written
    name) is left as it is. Returns the factors applied, by column."""
    factors: dict[str, float] = {}
    for comparison in settings["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        columns = {lv["tf_adjustment_column"] for lv in levels if lv.get("tf_adjustment_column")}
        for column in sorted(columns):
            base = next(
                (
                    i
                    for i, lv in enumerate(levels)
                    if (m := _EXACT_ON.fullmatch(lv["sql_condition"])) and m[1] == m[2] == column
                ),
                None,
            )
            if not base:  # none, or the first level: its u is all the column's agreement
                continue
            us = [lv.get("u_probability") for lv in levels[: base + 1]]
            if any(not isinstance(u, int | float) or u <= 0 for u in us):
                continue
            factor = float(us[-1]) / float(sum(us))
            con.execute(f"UPDATE tf_lookup_{column} SET tf_{column} = tf_{column} * {factor!r}")
            factors[column] = factor
    return factors


#: A phone on the records of k identities (names more than one typo apart) counts as if
#: MISUSED_PHONE_FACTOR ** (k - 1) times as common: each identity beyond its owner lowers the
#: weight of agreeing on it by log2(MISUSED_PHONE_FACTOR) bits (2 bits).
MISUSED_PHONE_FACTOR = 4

#: On a misused phone (k > 1 identities above), two records sharing it are joined on their
#: names only when the names agree at one of these levels (one typo at most): a ``similar``
#: name (two typos apart, or Jaro-Winkler 0.92, as ``zhengfang`` and ``zhengming`` are) is
#: there no name agreeing, for the hard rule that a phone alone joins nothing. An ID number
#: agreeing still joins.
MISUSED_PHONE_NAME_LEVELS: frozenset[str] = frozenset({"exact", "pinyin", "swapped", "close"})


def _phone_identities(con: Any) -> None:
    """How many identities each shared phone's records carry (table ``phone_identities``):
    its distinct names (the letters of their pinyin, sorted: order and spacing do not
    matter), a name within one typo (Damerau-Levenshtein 1 as pinyin, the ``close`` level,
    or with order swaps undone, ``name_canon`` or ``name_turned``) of a more common one on
    the same phone counting as that one, as
    :data:`MISUSED_PHONE_NAME_LEVELS` joins them. A phone on more than
    :data:`MAX_BLOCK_SIZE` records counts its distinct names (comparing them all would be
    quadratic)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE phone_names AS SELECT phone, "
        "array_to_string(list_sort(string_split(name_key, '')), '') AS v, "
        "coalesce(min(name_canon), v) AS n, min(name_key) AS w, min(name_turned) AS t, "
        "count(*) AS c, count(*) OVER (PARTITION BY phone) AS k FROM prepared "
        "WHERE phone IS NOT NULL AND name_key IS NOT NULL GROUP BY phone, v"
    )
    # an explicit join on the phone (no correlated subquery: nothing quadratic in the records)
    con.execute(
        "CREATE OR REPLACE TABLE phone_identities AS SELECT phone, count(*) AS identities "
        "FROM (SELECT phone, v FROM phone_names WHERE k > 1 EXCEPT SELECT a.phone, a.v "
        "FROM phone_names AS a JOIN phone_names AS b ON a.phone = b.phone "
        f"WHERE a.k > 1 AND a.k <= {MAX_BLOCK_SIZE} AND (b.c > a.c OR (b.c = a.c AND b.v < a.v)) "
        "AND (damerau_levenshtein(a.n, b.n) <= 1 OR damerau_levenshtein(a.w, b.w) <= 1 "
        "OR damerau_levenshtein(a.t, b.t) <= 1)) "
        "GROUP BY phone"
    )


def _linker(con: Any, settings: Mapping[str, Any]) -> Any:
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    table = db_api.register("prepared")
    plain = copy.deepcopy(dict(settings))
    plain["blocking_rules_to_generate_predictions"] = [
        {k: v for k, v in rule.items() if k != WIDE_RULE_KEY} if isinstance(rule, dict) else rule
        for rule in plain.get("blocking_rules_to_generate_predictions", [])
    ]
    linker = Linker(table, plain, log_level=None)
    for column in _tf_columns(settings):
        lookup = db_api.register(f"tf_lookup_{column}")
        linker.table_management.register_term_frequency_lookup(lookup, column)
    return linker


#: A prediction blocking rule of the model with this key (a number) is wide: used only when
#: it brings at most that many pairs per record together (the key is not passed to Splink).
WIDE_RULE_KEY = "max_pairs_per_record"

#: The name column that blocks (order swaps undone): a key over the cap is still used
#: where it also agrees.
_NAME_KEY = "name_canon"

_RULE_PART = re.compile(r'\(?\s*l\.("?)([A-Za-z_]\w*)\1\s*=\s*r\.("?)([A-Za-z_]\w*)\3\s*\)?')


def _rule_columns(rule: str) -> tuple[str, ...] | None:
    """The columns of a blocking rule that only equates columns (``l.a = r.a AND l.b =
    r.b``), else ``None``.

    >>> _rule_columns('l.name_key = r.name_key AND l."city" = r."city"')
    ('name_key', 'city')
    >>> _rule_columns("levenshtein(l.name_key, r.name_key) <= 1") is None
    True
    """
    columns: list[str] = []
    for part in re.split(r"\s+AND\s+", rule.strip(), flags=re.IGNORECASE):
        found = _RULE_PART.fullmatch(part.strip())
        if found is None or found[2] != found[4] or found[2] not in _MODEL_COLUMNS:
            return None
        columns.append(found[2])
    return tuple(columns)


class _Blocking:
    """The blocking rules with the cap on a key's size (:data:`MAX_BLOCK_SIZE`).

    A rule that equates columns (``l.phone = r.phone``) is rewritten, when some value
    of its key is shared by more than ``cap`` records, so that those records are not
    brought together by it alone: the rule skips them (a flag column added to the
    ``prepared`` table), and a second rule compares them where their names also agree
    (itself capped). A folder with no such value keeps its rules as they are.
    """

    def __init__(self, con: Any, cap: int) -> None:
        self.con = con
        self.cap = cap
        self.notes: list[str] = []
        self.capped_keys = 0
        self.capped_records = 0
        self._flags: dict[tuple[str, ...], str | None] = {}

    def _flag(self, columns: tuple[str, ...]) -> str | None:
        """The column flagging the records whose key ``columns`` is over the cap (``None``
        when no value is)."""
        if columns in self._flags:
            return self._flags[columns]
        present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
        key = ", ".join(columns)
        big = (
            f"SELECT {key} FROM prepared WHERE {present} GROUP BY {key} "
            f"HAVING count(*) > {self.cap}"
        )
        values, records = self.con.execute(
            f"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM prepared "
            f"WHERE {present} GROUP BY {key} HAVING count(*) > {self.cap})"
        ).fetchall()[0]
        if not values:
            self._flags[columns] = None
            return None
        name = f"blocking_over_cap_{len(self._flags)}"
        self.con.execute(
            f"CREATE OR REPLACE TABLE prepared AS SELECT p.*, h.{columns[0]} IS NOT NULL "
            f"AS {name} FROM prepared AS p LEFT JOIN ({big}) AS h USING ({key}) "
            "ORDER BY p.record_id"
        )
        self._flags[columns] = name
        self.capped_keys += int(values)
        self.capped_records += int(records)
        self.notes.append(
            f"blocking on {' + '.join(columns)}: {values} value(s) shared by more than "
            f"{self.cap} records ({records} records) "
            + (
                "not used: their pairs compared only where another rule brings them together"
                if _NAME_KEY in columns
                else "not used alone: their pairs compared only where the name also agrees"
            )
        )
        return name

    def capped(self, columns: tuple[str, ...]) -> bool:
        """Whether some value of the key ``columns`` was over the cap."""
        return self._flags.get(columns) is not None

    def rules(self, rule: str) -> list[str]:
        """``rule`` with the cap: itself, or the capped rule and its rule by name."""
        columns = _rule_columns(rule)
        if columns is None:
            return [rule]
        flag = self._flag(columns)
        if flag is None:
            return [rule]
        out = [f"({rule}) AND NOT l.{flag} AND NOT r.{flag}"]
        if _NAME_KEY not in columns:
            by_name = f"({rule}) AND l.{_NAME_KEY} = r.{_NAME_KEY} AND l.{flag}"
            sub = self._flag((*columns, _NAME_KEY))
            if sub is not None:
                by_name += f" AND NOT l.{sub} AND NOT r.{sub}"
            out.append(by_name)
        return out

    def settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` with every prediction blocking rule capped."""
        out = copy.deepcopy(dict(settings))
        rules: list[Any] = []
        for item in settings["blocking_rules_to_generate_predictions"]:
            text = item["blocking_rule"] if isinstance(item, dict) else item
            if isinstance(item, dict) and WIDE_RULE_KEY in item:
                if not self._within_budget(text, item[WIDE_RULE_KEY]):
                    continue
                item = {k: v for k, v in item.items() if k != WIDE_RULE_KEY}
            if _rule_columns(text) is None:
                self._note(
                    f"blocking rule {text!r} is not a plain equality of columns: "
                    f"not capped at {self.cap} records"
                )
            capped = self.rules(text)
            if capped == [text]:
                rules.append(copy.deepcopy(item))
                continue
            base = dict(item) if isinstance(item, dict) else {"sql_dialect": "duckdb"}
            rules.extend({**base, "blocking_rule": r} for r in capped)
        out["blocking_rules_to_generate_predictions"] = rules
        return out

    def _within_budget(self, rule: str, per_record: Any) -> bool:
        """Whether a wide rule (a name alone, a name part and a city...) brings at most
        ``per_record`` pairs per record together (its key's values over the cap left out);
        else it is not used, and a note says so. A rule that is not a plain equality of
        columns is used as it is."""
        columns = _rule_columns(rule)
        if columns is None:
            return True
        n: int = self.con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]
        pairs = _shared_pairs(self.con, columns, self.cap)
        if pairs <= float(per_record) * n:
            return True
        self._note(
            f"blocking rule {rule!r} not used: it would compare {pairs} pairs, more than "
            f"{per_record} per record (names too common in these records to block on alone)"
        )
        return False

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@contextmanager
def _run_errors(settings: str | Path | None) -> Iterator[None]:
    """Errors of DuckDB and Splink while a model runs, as one clean message: out of memory
    says what to lower; a model given with ``--settings`` that cannot run is refused."""
    import duckdb
    from splink.internals.exceptions import SplinkException

    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise SpilloverError(
            f"the linkage ran out of memory ({_first_line(exc)}); lower --max-block-size, "
            "or run it where DuckDB has more memory"
        ) from None
    except (duckdb.Error, SplinkException, KeyError, TypeError, ValueError) as exc:
        if settings is None or isinstance(exc, SpilloverError):
            raise
        raise OptionError("--settings", f"the model cannot run: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: The rules whose pairs are taken as matches to estimate the prior (with a recall of 0.8),
#: and the keys of the sessions of expectation maximisation: each used only when some
#: pair of records shares it (the fields a folder actually has).
_PRIOR_KEYS = (("id_number",), ("name_canon", "phone"), ("name_canon", "birth_date"))
_SESSION_KEYS = (("birth_date",), ("phone",), ("id_number",), ("name_canon",))
#: A session of expectation maximisation is skipped when more pairs than this many per
#: record (and than _SESSION_MIN_PAIRS) share its key: EM scores every pair its rule
#: brings (a birth date alone: about 22 million pairs at a million records).
_SESSION_PAIRS_PER_RECORD = 5
_SESSION_MIN_PAIRS = 1_000_000


def _train(
    con: Any, settings: Mapping[str, Any], seed: int, blocking: _Blocking, notes: list[str]
) -> dict[str, Any]:
    """Estimate the model's parameters from the records themselves (no labels).

    The prior's rules and the sessions of expectation maximisation are chosen from the
    fields the records actually share: a session whose key no two records share (records
    with no phone: nothing to block on) is skipped and said in ``notes``; the levels no
    session estimated keep the m probabilities ``settings`` had (the shipped model's by
    default). With fewer than two records nothing is estimated: ``settings`` as given."""
    n: int = con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]
    if n < 2:
        notes.append("training: fewer than two records, nothing to estimate: the model as given")
        return dict(settings)
    shared = {key: _shared_pairs(con, key) for key in {*_PRIOR_KEYS, *_SESSION_KEYS}}
    # the capped rules first: capping may add columns to ``prepared``, read by the linker
    deterministic = [
        capped
        for key in _PRIOR_KEYS
        if shared[key]
        for capped in blocking.rules(" AND ".join(f"l.{c} = r.{c}" for c in key))
    ]
    sessions = {
        key: blocking.rules(" AND ".join(f'l."{c}" = r."{c}"' for c in key))[0]
        for key in _SESSION_KEYS
    }
    linker = _linker(con, _untrained(settings))
    prior_estimated = False
    if deterministic:
        try:
            linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
            prior_estimated = True
        except ValueError:  # more pairs agree than the recall allows: too few records
            pass
    linker.training.estimate_u_using_random_sampling(max_pairs=_U_SAMPLE_PAIRS, seed=seed)
    budget = max(_SESSION_PAIRS_PER_RECORD * n, _SESSION_MIN_PAIRS)
    for key, rule in sessions.items():
        if shared[key] > budget:  # EM scores every pair of its rule: bounded like the wide rules
            notes.append(
                f"training: {shared[key]} pairs share {' and '.join(key)}, more than "
                f"{budget}: the session blocked on it skipped (the other sessions estimate "
                "its fields)"
            )
            continue
        if not (shared[key] and _em_session(linker, rule)):
            capped = " under --max-block-size" if blocking.capped(key) else ""
            notes.append(
                f"training: no record pairs share {' and '.join(key)}{capped}: the "
                "session blocked on it skipped"
            )
    trained: dict[str, Any] = linker.misc.save_model_to_json()
    trained.pop("linker_uid", None)
    # the prediction rules as the model gives them: Splink's saved model has lost the
    # wide rules' budgets (_linker strips WIDE_RULE_KEY), which would make them unbounded
    trained["blocking_rules_to_generate_predictions"] = copy.deepcopy(
        settings["blocking_rules_to_generate_predictions"]
    )
    kept = _keep_untrained_m(trained, settings)
    if kept:
        notes.append(
            f"training: m probabilities of {', '.join(kept)} not estimated (no pairs): "
            "kept from the model"
        )
    _keep_prior(trained, settings, notes, estimated=prior_estimated, records=n)
    _fill_unseen(trained, 1.0 / _U_SAMPLE_PAIRS)
    _keep_implausible(trained, settings, notes)
    return trained


def _keep_implausible(
    trained: dict[str, Any], settings: Mapping[str, Any], notes: list[str]
) -> None:
    """A level that says a field agrees but that training made no evidence for a match
    (m at most u: too few records to tell, e.g. one ID number on every record that has
    one) takes its m and u from ``settings``."""
    before = {
        (c["output_column_name"], lv.get("label_for_charts")): lv
        for c in settings["comparisons"]
        for lv in c["comparison_levels"]
    }
    for comparison in trained["comparisons"]:
        field = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            label = level.get("label_for_charts")
            old = before.get((field, label), {})
            m, u = level.get("m_probability"), level.get("u_probability")
            if not LEVEL_AGREES.get(label) or m is None or u is None or m > u:
                continue
            if old.get("m_probability") is None or old.get("u_probability") is None:
                continue
            level["m_probability"] = old["m_probability"]
            level["u_probability"] = old["u_probability"]
            notes.append(
                f"training: {field} {label!r} estimated as no evidence for a match "
                "(too few records to tell): kept from the model"
            )


def _shared_pairs(con: Any, key: tuple[str, ...], cap: int | None = None) -> int:
    """How many pairs of records share the values of ``key`` (none of them missing), the
    values on more than ``cap`` records left out when given."""
    present = " AND ".join(f"{c} IS NOT NULL" for c in key)
    within = f" HAVING count(*) <= {int(cap)}" if cap is not None else ""
    pairs = con.execute(
        f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM prepared "
        f"WHERE {present} GROUP BY {', '.join(key)}{within})"
    ).fetchall()[0][0]
    return int(pairs)


def _em_session(linker: Any, rule: str) -> bool:
    """One session of expectation maximisation blocked on ``rule``; ``False`` when Splink
    finds no pair to train on (every pair under the cap, or every field fixed by it)."""
    from splink.internals.exceptions import EMTrainingException

    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )
    except EMTrainingException:
        return False
    return True


def _keep_prior(
    trained: dict[str, Any],
    settings: Mapping[str, Any],
    notes: list[str],
    *,
    estimated: bool,
    records: int,
) -> None:
    """The prior of ``settings`` (or the shipped model's, scaled to ``records``:
    :func:`shipped_prior`) when training gave none that a model can use: no pair agreed on
    the prior's rules (Splink's estimate is 0, nothing would join) or every pair did (1,
    whose odds are infinite)."""
    prior = trained.get("probability_two_random_records_match")
    if estimated and isinstance(prior, int | float) and 0 < prior < 1:
        return
    if "probability_two_random_records_match" in settings:
        kept = settings["probability_two_random_records_match"]
    else:
        kept = shipped_prior(records)
        if records > SHIPPED_PRIOR_RECORDS:
            notes.append(_prior_note(records, kept))
    trained["probability_two_random_records_match"] = kept
    notes.append(
        "training: no pair shares an ID number or a name and a phone: the prior "
        "(probability_two_random_records_match) kept from the model"
    )


def _keep_untrained_m(trained: dict[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """Levels left without an m probability by training take the one of ``settings`` (and a
    comparison training dropped comes back as it was); returns the fields concerned."""
    before = {
        (c["output_column_name"], lv.get("label_for_charts")): lv.get("m_probability")
        for c in settings["comparisons"]
        for lv in c["comparison_levels"]
    }
    fields: list[str] = []
    # a comparison on a column with no value at all is dropped by Splink: put it back as it was
    have = {c["output_column_name"]: c for c in trained["comparisons"]}
    trained["comparisons"] = [
        have.get(c["output_column_name"]) or copy.deepcopy(c) for c in settings["comparisons"]
    ]
    for comparison in settings["comparisons"]:
        if comparison["output_column_name"] not in have:
            fields.append(comparison["output_column_name"])
    for comparison in trained["comparisons"]:
        field = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level") or level.get("m_probability") is not None:
                continue
            old = before.get((field, level.get("label_for_charts")))
            if old is not None:
                level["m_probability"] = old
                if field not in fields:
                    fields.append(field)
    return fields


#: Pairs sampled at random to estimate the u probabilities (``train=True``): Splink's own
#: default. The sample is most of an estimation's time (every level of every field computed
#: for every sampled pair; Damerau-Levenshtein is the slow part); 2 million gave the same
#: FEBRL figures in twice the time.
_U_SAMPLE_PAIRS = 1_000_000


def _fill_unseen(settings: dict[str, Any], u_floor: float) -> dict[str, Any]:
    """A level no random pair fell into gets u = 1 / (pairs sampled), not Splink's default."""
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            if level.get("u_probability") is None:
                level["u_probability"] = u_floor
    return settings


def _score(con: Any, settings: Mapping[str, Any], threshold: float | None = None) -> int:
    """Score every blocked pair into the DuckDB table ``scored``; returns how many pairs
    were scored. With ``threshold``, ``scored`` keeps only the pairs that may reach it (a
    hair below, the exact cut is :func:`_pairs`'s): the pairs below it are scored as they
    stream by and never stored (at a million records they are three quarters of them)."""
    linker = _linker(con, settings)
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    n: int = con.execute(f"SELECT count(*) FROM {blocked.physical_name}").fetchall()[0][0]
    weight = None
    if threshold is not None and threshold < 1:
        weight = math.log2(threshold / (1 - threshold)) - _THRESHOLD_MARGIN_BITS
    predictions = linker.inference.predict(threshold_match_weight=weight, warning_mode="never")
    blocked.drop_table_from_database_and_remove_from_cache()
    # the predictions table itself becomes ``scored`` (no copy of it)
    con.execute("DROP TABLE IF EXISTS scored")
    con.execute(f"ALTER TABLE {predictions.physical_name} RENAME TO scored")
    return n


#: Splink's threshold is on the match weight: the pairs kept reach a hair (this many bits)
#: below the threshold's weight, so rounding never loses a pair at the threshold itself.
_THRESHOLD_MARGIN_BITS = 1e-3


def _pair_sql(settings: Mapping[str, Any]) -> tuple[str, list[str]]:
    """SELECT over ``scored``: every pair with its fields' labels, agreement and weights."""
    levels = _levels(settings)
    tf_fields = {
        c["output_column_name"]
        for c in settings["comparisons"]
        if any(lv.get("tf_adjustment_column") for lv in c["comparison_levels"])
    }
    parts: list[str] = []
    structs: list[str] = []
    for field in MATCH_FIELDS:
        cases = " ".join(f"WHEN {g} THEN '{label}'" for g, label in sorted(levels[field].items()))
        label = f"(CASE gamma_{field} {cases} END)"
        lbf = f"mw_{field}" + (f" + coalesce(mw_tf_adj_{field}, 0)" if field in tf_fields else "")
        agrees = [lab for lab, ok in LEVEL_AGREES.items() if ok]
        refuses = [lab for lab, ok in LEVEL_AGREES.items() if ok is False]
        agree_sql = (
            f"(CASE WHEN {label} IN ({', '.join(repr(a) for a in agrees)}) THEN true "
            f"WHEN {label} IN ({', '.join(repr(a) for a in refuses)}) THEN false END)"
        )
        parts.append(f"{label} AS level_{field}")
        parts.append(f"{agree_sql} AS agreed_{field}")
        parts.append(f"round({lbf}, 4) AS lbf_{field}")
        structs.append(
            f"{{'field': '{field}', 'level': level_{field}, 'agreed': agreed_{field}, "
            f"'log2_bayes_factor': lbf_{field}}}"
        )
    return (
        "SELECT record_id_l, record_id_r, round(match_probability, 6) AS p, "
        "round(match_weight, 4) AS w, " + ", ".join(parts) + " FROM scored",
        structs,
    )


def new_person_id(record_id: str, taken: set[str]) -> str:
    """The person id of a new identity: from its smallest record id, never one in ``taken``.

    >>> new_person_id("R000017", {"P000001"}), new_person_id("R1", {"new-R1", "new-R1~2"})
    ('new-R000017', 'new-R1~3')
    """
    base = f"new-{record_id}"
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}~{k}"
    return candidate


def _without_id_conflicts(
    records: pa.Table,
    order: np.ndarray,
    pairs: pa.Table,
    left: np.ndarray,
    right: np.ndarray,
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The joining pairs less those that would make one person of two identities: two
    different valid resident ID numbers (checksum right), or, through a pair whose ID
    numbers do not agree (``exact`` or ``close``), two birth dates farther apart than a
    typo (:func:`_births_apart`; a birth date as given, else the one of a valid resident
    ID). Taken heaviest first (ties: by their ends), such a pair joining two groups is left
    out (counted in the table's metadata, ``refused_id_conflict`` and
    ``refused_birth_conflict``). A shared phone with a name one letter off, or a namesake,
    then joins no one whose ID number says otherwise, nor, without an ID number agreeing,
    anyone born otherwise, directly or through a record that has no birth date."""
    ids = pc.utf8_upper(records["id_number"].combine_chunks())
    born = _birth_dates(ids)
    valid = pc.if_else(pc.is_null(born), pa.scalar(None, pa.string()), ids)
    resident = np.array(valid.to_pylist(), dtype=object)[order]
    given = pc.utf8_trim_whitespace(records["birth_date"].combine_chunks())
    given = pc.if_else(pc.equal(given, ""), pa.scalar(None, pa.string()), given)
    birth = np.array(pc.coalesce(given, born).to_pylist(), dtype=object)[order]
    parent = list(range(order.size))
    holds: dict[int, tuple[Any, Any]] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keep = np.ones(left.size, bool)
    why = np.zeros(left.size, np.int8)  # 1: two resident IDs, 2: two birth dates
    weight = pairs["w"].to_numpy(zero_copy_only=False).astype(float)
    id_agreed = pairs["id_agreed"].to_numpy(zero_copy_only=False).astype(bool).tolist()
    for e in np.lexsort((right, left, -weight)).tolist():
        a, b = root(int(left[e])), root(int(right[e]))
        if a == b:
            continue
        ia, ba = holds.get(a, (resident[a], birth[a]))
        ib, bb = holds.get(b, (resident[b], birth[b]))
        clash = _clash(ia, ib, ba, bb, id_agreed[e])
        if clash:
            keep[e], why[e] = False, clash
            continue
        parent[b] = a
        holds[a] = (ia if ia is not None else ib, ba if ba is not None else bb)
    meta = {
        **(pairs.schema.metadata or {}),
        b"refused_id_conflict": str(int((why == 1).sum())),
        b"refused_birth_conflict": str(int((why == 2).sum())),
    }
    kept = pairs.filter(pa.array(keep)) if not keep.all() else pairs
    return kept.replace_schema_metadata(meta), left[keep], right[keep]


def _clash(ia: str | None, ib: str | None, ba: str | None, bb: str | None, id_agreed: bool) -> int:
    """Why a pair may not join two groups of records: 1, they hold two resident ID numbers;
    2, the pair's ID numbers do not agree (it joins on a name, a phone...) and the groups
    hold two birth dates farther apart than a typo; 0, neither."""
    if ia is not None and ib is not None and ia != ib:
        return 1
    if not id_agreed and ba is not None and bb is not None and ba != bb:
        return 2 if _births_apart(ba, bb) else 0
    return 0


def _births_apart(a: str, b: str) -> bool:
    """Whether two birth dates (ISO text) are farther apart than a typo: more than one
    character apart (the ``close`` level: a digit mistyped, two swapped) and more than
    one day apart (``1990-01-09`` / ``1990-01-10``: a day off, two characters).

    >>> _births_apart("1990-01-09", "1990-01-10"), _births_apart("1990-01-19", "1990-10-19")
    (False, False)
    >>> _births_apart("1996-05-14", "1967-03-27"), _births_apart("1990-03-05", "1990-05-03")
    (True, True)
    """
    if _within_one_edit(a, b):
        return False
    try:
        return abs((date.fromisoformat(a) - date.fromisoformat(b)).days) > 1
    except ValueError:
        return True


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance at most 1 (one character changed, added, dropped, or
    two neighbours swapped)."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) <= 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    if abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1 :]


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(left.size, np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# people


def _append_people(path: Path, rows: list[dict[str, str]]) -> None:
    """The new people added to the ``people`` table ``path`` in its own form."""
    if not rows:
        return
    if path.suffix == parquetio.SUFFIX:
        _append_people_parquet(path, rows)
        return
    if path.suffix == ".jsonl":
        with path.open("a", encoding="utf-8") as handle:
            text = path.read_bytes()
            if text and not text.endswith(b"\n"):
                handle.write("\n")
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    header = [h.strip() for h in header]
    ends_with_newline = path.read_bytes().endswith(b"\n")
    with path.open("a", encoding="utf-8", newline="") as handle:
        if not ends_with_newline:
            handle.write("\n")
        write_data_rows(handle, ([row.get(h, "") for h in header] for row in rows))


def _append_people_parquet(path: Path, rows: list[dict[str, str]]) -> None:
    """The new people as one more Parquet part: the table's last part when it is a folder
    of parts, else the file rewritten with the rows added (its column types kept). A
    column of nulls only (type ``null``, a column of missing values) that the new people
    give values in becomes text (``string``): in the new part, and in the whole file."""
    files = parquetio.parts(path)
    schema = pq.read_schema(files[0]).remove_metadata()
    columns = []
    for i, field in enumerate(schema):
        values = [row.get(field.name) or None for row in rows]
        if any(v is not None for v in values):
            if pa.types.is_null(field.type):  # no value to keep the type of: text now
                schema = schema.set(i, field.with_type(pa.string()))
            columns.append(pa.array(values, pa.string()).cast(schema.field(i).type))
        else:
            columns.append(pa.nulls(len(rows), field.type))
    added = pa.Table.from_arrays(columns, schema=schema)
    if path.is_dir():
        last = files[-1].name
        pq.write_table(added, path / f"{last.removesuffix(parquetio.SUFFIX)}~linked.parquet")
        return
    given = pq.read_table(path).select(schema.names).cast(schema)
    pq.write_table(pa.concat_tables([given, added]), path)


# ---------------------------------------------------------------------------------------------
# the whole step


def link(
    data: str | Path,
    out: str | Path,
    *,
    settings: str | Path | None = None,
    train: bool | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    save_settings: str | Path | None = None,
    max_block_size: int = MAX_BLOCK_SIZE,
    on_model: Callable[[ModelRun], None] | None = None,
    region: str = DEFAULT_REGION,
) -> LinkSummary:
    """Resolve the records of ``data`` to people and write the linked folder ``out``.

    ``settings``: a Splink settings JSON (default: the model shipped with the
    package); ``train``: estimate its parameters from these records instead (u by
    random sampling seeded with ``seed``, m by EM), and with ``save_settings``
    write the trained model there (a file not inside ``data`` or ``out``:
    :class:`~spillover.errors.OptionError` otherwise, nothing written); ``None`` (the default): trained when ``settings``
    is ``None`` and there are at least :data:`AUTO_TRAIN_RECORDS` records. ``threshold``: the match probability at or
    above which a pair is the same person. ``max_block_size``: a blocking key
    value (a phone, an ID number, a name in a city...) on more records than this
    is not used alone to bring pairs together (said in the summary's ``notes``).
    ``out`` must not exist or be empty. ``data`` must be a folder the loaders
    accept (:class:`~spillover.errors.DataError` otherwise, nothing written). The
    same input, settings and seed give the same folder. ``on_model``: called with the
    :class:`ModelRun` once the pairs are scored, before anything is written
    (``link --report``). ``region``: the region a phone number written without ``+`` is
    read in, in every table (docs/contract.md §1, ``--region``); the records are written
    with their phones in E.164, so the linked folder reads the same in any region.
    """
    began = time.perf_counter()
    data, out = Path(data), Path(out)
    _check_options(data, out, threshold, seed, max_block_size)
    region = checked_region(region)
    if save_settings is not None:
        _check_save_settings(Path(save_settings), data, out)
    model = load_settings(Path(settings) if settings is not None else None)
    records, taken, held = _read_records(data, region)
    n = records.num_rows
    if train is None:
        train = settings is None and n >= AUTO_TRAIN_RECORDS
    notes: list[str] = []
    model, scored, pairs, blocking = _run_model(
        _prepare(records, region),
        model,
        settings,
        train,
        seed,
        threshold,
        max_block_size,
        notes,
        on_model,
    )
    left, right = _pair_positions(records, pairs)
    order = pc.array_sort_indices(records["record_id"]).to_numpy()
    pairs, left, right = _without_id_conflicts(records, order, pairs, left, right)
    clusters = _components(n, left, right)
    result = _resolve(records, order, clusters, pairs, left, right, taken, held)
    refused = _refused(pairs)
    del pairs  # the joining pairs' waterfalls are in result's matches now
    if save_settings is not None:
        Path(save_settings).parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(save_settings) as handle:
            handle.write(json.dumps(model, indent=2, ensure_ascii=False) + "\n")
    known = int(n - records["person_id"].null_count)
    people_new, matched, kept = len(result["people"]), result["matched"], result["held"]
    with _linked_folder(data, out) as tmp:
        _write_linked(data, tmp, records, result)
        del records, result  # the check reads the whole folder again: their memory first
        _check_written(tmp, out, region)
    return LinkSummary(
        out=out,
        records=n,
        known=known,
        people_new=people_new,
        matched=matched,
        held=kept,
        pairs_scored=scored,
        pairs_joined=int(left.size),
        pairs_refused_phone_only=refused["refused"],
        pairs_refused_misused_phone=refused["refused_misused"],
        pairs_refused_id_conflict=refused["refused_id_conflict"],
        pairs_refused_birth_conflict=refused["refused_birth_conflict"],
        threshold=threshold,
        settings=str(settings) if settings is not None else SETTINGS_VERSION,
        trained=train,
        seed=seed,
        elapsed=time.perf_counter() - began,
        max_block_size=max_block_size,
        blocking_keys_capped=blocking.capped_keys,
        records_in_capped_keys=blocking.capped_records,
        notes=tuple(notes),
    )


def _check_options(data: Path, out: Path, threshold: float, seed: int, cap: int) -> None:
    """Refuse options :func:`link` cannot run with, before anything is read."""
    if not 0.0 < threshold <= 1.0 or math.isnan(threshold):
        raise OptionError("--threshold", f"must be in (0, 1], not {threshold}")
    if seed < 0:
        raise OptionError("--seed", "must be >= 0")
    check_outside(out, data)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OptionError("--out", f"{out} exists and is not an empty folder")
    if cap < 2:
        raise OptionError("--max-block-size", f"must be >= 2, not {cap}")


def _check_save_settings(path: Path, data: Path, out: Path) -> None:
    """Refuse a ``--save-settings`` file that would overwrite a table of the data folder
    (any file inside it: the model is written before the linked folder, which copies the
    data folder) or land inside the linked folder (which must be new or empty), or that
    is a folder (its folder is made when missing)."""
    for folder, option in ((data, "--data"), (out, "--out")):
        check_not_inside(path, folder, option="--save-settings", folder_option=option)
    if path.is_dir():
        raise OptionError("--save-settings", f"{path} is a folder, not a file")
    above = next((p for p in path.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OptionError("--save-settings", f"{above} is not a folder")


def _run_model(
    prepared: pa.Table,
    model: dict[str, Any],
    settings: str | Path | None,
    train: bool,
    seed: int,
    threshold: float,
    cap: int,
    notes: list[str],
    on_model: Callable[[ModelRun], None] | None = None,
) -> tuple[dict[str, Any], int, pa.Table, _Blocking]:
    """The model (trained when ``train``), how many pairs it scored and the pairs that
    join, in DuckDB; the blocking's notes come first in ``notes``. With no ``settings`` (the
    shipped model) its prior is scaled to the records (:func:`shipped_prior`), and a run
    that keeps it so says it in ``notes``."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("prepared_arrow", prepared)
        con.execute("CREATE TABLE prepared AS SELECT * FROM prepared_arrow ORDER BY record_id")
        con.unregister("prepared_arrow")
        records = prepared.num_rows
        del prepared  # in DuckDB now
        blocking = _Blocking(con, cap)
        _phone_identities(con)  # the phone's term frequency and the hard rule use it
        with _quiet_splink(), _run_errors(settings):
            # the shipped model's u come from another population: its frequencies are counted
            # against TF_MIN_RECORDS at least; an estimated or given model's against these
            # records (a model estimated here and saved links the same way given back)
            shipped = settings is None and not train
            _term_frequencies(con, model, TF_MIN_RECORDS if shipped else 1)
            start = model
            if train:  # from the prior as shipped: a trained model is the one it always was
                model = _train(con, model, seed, blocking, notes)
            start, model = _scaled_prior(settings, records, start, model, notes)
            _scale_term_frequencies(con, model)
            # the pairs below the threshold are kept only for the report
            cut = None if on_model is not None else threshold
            scored = _score(con, blocking.settings(model), cut) if records > 1 else 0
            pairs = _pairs(con, model, scored, threshold)
        if on_model is not None:
            with _quiet_splink():
                scoring = blocking.settings(model)
                on_model(ModelRun(con, start, model, scoring, scored, threshold, seed, train))
    finally:
        con.close()
    notes[:0] = blocking.notes
    return model, scored, pairs, blocking


def _pair_positions(records: pa.Table, pairs: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The joining pairs' two ends as positions among the records sorted by id."""
    ids = pc.array_sort_indices(records["record_id"])
    ordered = pc.take(records["record_id"], ids).combine_chunks()
    left = pc.index_in(pairs["l"], value_set=ordered).to_numpy(zero_copy_only=False)
    right = pc.index_in(pairs["r"], value_set=ordered).to_numpy(zero_copy_only=False)
    return left.astype(np.int64), right.astype(np.int64)


@contextmanager
def _linked_folder(data: Path, out: Path) -> Iterator[Path]:
    """The folder the linked folder is written in, a copy of ``data`` without its
    ``records`` and ``matches``, that appears at ``out`` when the block succeeds
    (:func:`~spillover.files.write.atomic_folder`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.rmdir()
    with atomic_folder(out, private=True) as tmp:  # every personal value, as --data
        shutil.copytree(data, tmp, dirs_exist_ok=True)
        tmp.chmod(0o700)  # (copytree gave it the mode of --data)
        for stale in (*table_paths(tmp, "records"), *table_paths(tmp, "matches")):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        yield tmp


def _write_linked(data: Path, tmp: Path, records: pa.Table, result: Mapping[str, Any]) -> None:
    """The linked folder in ``tmp`` (:func:`_linked_folder`): ``records`` as given (a
    person only where the input named one), every resolution in ``matches`` (read by the
    loaders with its factor and waterfall) and the new people added to ``people``."""
    _write_csv(tmp / "records.csv", records)
    _write_csv(tmp / "matches.csv", result["matches"])
    people_path = table_file(data, "people")
    if people_path is not None:
        _append_people(tmp / people_path.name, result["people"])


def _check_written(tmp: Path, out: Path, region: str) -> None:
    """Refuse to write the linked folder (being written in ``tmp``) when the loader
    refuses it: a defect of link itself, said with the loader's first problems (their
    files named in ``out``), as one :class:`~spillover.errors.SpilloverError`."""
    try:
        read_columns(tmp, region=region)
    except DataError as exc:
        problems = [
            str(Problem(str(out / Path(p.file).relative_to(tmp)), p.line, p.field, p.message))
            if Path(p.file).is_relative_to(tmp)
            else str(p)
            for p in exc.problems[:_CHECK_SHOWN]
        ]
        more = exc.total - len(problems)
        raise SpilloverError(
            f"link would have written a folder the loaders refuse ({exc.total} problem(s)); "
            f"nothing was written to {out} (a defect of link: please report it):\n  "
            + "\n  ".join(problems)
            + (f"\n  ... {more} more" if more > 0 else "")
        ) from None


#: the problems of a refused linked folder :func:`_check_written` shows
_CHECK_SHOWN = 10


def _pairs(con: Any, model: Mapping[str, Any], scored: int, threshold: float) -> pa.Table:
    """The pairs that join: at or above ``threshold`` and agreeing on an ID number or on a
    name, at one of :data:`MISUSED_PHONE_NAME_LEVELS` when the phone the two records share
    is misused (the table ``phone_identities``: the records of several identities carry it),
    in record-id order, as Arrow columns ``l``, ``r``, ``p``, ``w``, ``waterfall`` (its JSON)
    and ``key`` (its ``matched_by``). The table's metadata counts the pairs at or above the
    threshold that agree on neither (``refused``: the hard rule) and those whose name agrees
    only below those levels on a misused phone (``refused_misused``)."""
    if not scored:
        return pa.table(
            {name: pa.array([], kind) for name, kind in _PAIR_COLUMNS.items()}
        ).replace_schema_metadata({"refused": "0", "refused_misused": "0"})
    select, structs = _pair_sql(model)
    # each pair with whether the phone it agrees on is misused (several identities on it)
    con.execute(
        f"CREATE TABLE pairs AS SELECT s.*, coalesce(i.identities, 1) > 1 AS misused_phone "
        f"FROM ({select} WHERE match_probability >= {threshold!r}) AS s "
        "JOIN prepared AS a ON a.record_id = s.record_id_l "
        "JOIN prepared AS b ON b.record_id = s.record_id_r "
        "LEFT JOIN phone_identities AS i ON i.phone = a.phone AND a.phone = b.phone"
    )
    agreed_name = "coalesce(agreed_name, false)"
    agreed_id = "coalesce(agreed_id_number, false)"
    strong = ", ".join(repr(level) for level in sorted(MISUSED_PHONE_NAME_LEVELS))
    name_holds = f"({agreed_name} AND NOT (misused_phone AND level_name NOT IN ({strong})))"
    refused, refused_misused = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({agreed_name} OR {agreed_id})), "
        f"count(*) FILTER (WHERE {agreed_name} AND NOT ({name_holds} OR {agreed_id})) FROM pairs"
    ).fetchall()[0]
    # which fields agreed, as bits (MATCH_FIELDS order): one match_key per pattern
    mask = " + ".join(
        f"(CASE WHEN coalesce(agreed_{f}, false) THEN {1 << i} ELSE 0 END)"
        for i, f in enumerate(MATCH_FIELDS)
    )
    table = _arrow(
        con,
        f"SELECT record_id_l AS l, record_id_r AS r, p::DOUBLE AS p, w::DOUBLE AS w, "
        f"to_json([{', '.join(structs)}])::VARCHAR AS waterfall, ({mask})::INTEGER AS mask, "
        f"{agreed_id} AS id_agreed "
        f"FROM pairs WHERE {name_holds} OR {agreed_id} ORDER BY record_id_l, record_id_r",
    )
    con.execute("DROP TABLE pairs")
    keys = [
        match_key(f for i, f in enumerate(MATCH_FIELDS) if bits >> i & 1).value
        for bits in range(1 << len(MATCH_FIELDS))
    ]
    masks = table["mask"].to_numpy(zero_copy_only=False).astype(np.int64)
    key = pa.array(np.asarray(keys, dtype=object)[masks], pa.string())
    table = table.drop_columns(["mask"]).append_column("key", key).combine_chunks()
    return table.replace_schema_metadata(
        {"refused": str(int(refused)), "refused_misused": str(int(refused_misused))}
    )


#: The columns of :func:`_pairs`'s table.
_PAIR_COLUMNS = {
    "l": pa.string(),
    "r": pa.string(),
    "p": pa.float64(),
    "w": pa.float64(),
    "waterfall": pa.string(),
    "id_agreed": pa.bool_(),
    "key": pa.string(),
}


def _arrow(con: Any, sql: str) -> pa.Table:
    """The result of ``sql`` as an Arrow table, read from the relation (a DB-API result
    makes an extra copy of the rows; DuckDB 2 names the call ``to_arrow_table``, DuckDB 1
    ``arrow``)."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = fetch()
    return table


#: The counts :func:`_pairs` and :func:`_without_id_conflicts` keep in the table's metadata.
_REFUSED_COUNTS = (
    "refused",
    "refused_misused",
    "refused_id_conflict",
    "refused_birth_conflict",
)


def _refused(pairs: pa.Table) -> dict[str, int]:
    """The pairs the rules refused (:func:`_pairs`, :func:`_without_id_conflicts`), by rule."""
    meta = pairs.schema.metadata or {}
    return {name: int(meta.get(name.encode(), b"0")) for name in _REFUSED_COUNTS}


def _resolve(
    records: pa.Table,
    order: np.ndarray,
    cluster: np.ndarray,
    pairs: pa.Table,
    left: np.ndarray,
    right: np.ndarray,
    taken: set[str],
    held: Mapping[str, Match] | None = None,
) -> dict[str, Any]:
    """Every record's person and deciding pair (the ``matches`` table, in record-id order),
    and the new people (positions: sorted ids). A record of ``held`` keeps its match as
    given, and its person counts as a known one of its cluster."""
    n = order.size
    rid_sorted = pc.take(records["record_id"], order).combine_chunks()
    rid = np.asarray(rid_sorted.to_pylist(), dtype=object)
    known_sorted = pc.take(records["person_id"], order).combine_chunks()
    known = np.asarray(known_sorted.to_pylist(), dtype=object)
    is_known = known_sorted.is_valid().to_numpy(zero_copy_only=False)
    is_held = np.zeros(n, bool)
    if held:
        is_held = np.fromiter((r in held for r in rid.tolist()), bool, n) & ~is_known
        known[is_held] = [held[r].person_id for r in rid[is_held].tolist()]
    best = _deciding_pairs(n, pairs, left, right)
    person, new_people = _people(records, order, cluster, rid, known, taken)

    # the matches table: known, held as given, a new identity, or matched by its deciding pair
    matched = ~is_known & ~is_held & (best >= 0)
    at = np.flatnonzero(matched)
    e = best[at]
    partner = np.where(left[e] == at, right[e], left[e])
    probability = np.full(n, "1", dtype=object)
    probability[at] = [f"{v:.6g}" for v in pairs["p"].to_numpy()[e].tolist()]
    by = np.where(is_known, MatchKey.KNOWN.value, MatchKey.NEW_IDENTITY.value).astype(object)
    by[at] = pairs["key"].to_numpy(zero_copy_only=False)[e]
    with_ = np.full(n, "", dtype=object)
    with_[at] = rid[partner]
    weight = np.full(n, "", dtype=object)
    weight[at] = [f"{v:.4f}" for v in pairs["w"].to_numpy()[e].tolist()]
    pick = np.full(n, -1, np.int64)
    pick[at] = e
    waterfall = pc.fill_null(pc.take(pairs["waterfall"], pa.array(pick, mask=pick < 0)), "[]")
    if held and is_held.any():
        given = np.full(n, None, dtype=object)
        for i in np.flatnonzero(is_held).tolist():
            m = held[rid[i]]
            probability[i], by[i] = _number_text(m.match_probability), m.matched_by.value
            with_[i] = m.matched_with or ""
            weight[i] = "" if m.match_weight is None else _number_text(m.match_weight)
            given[i] = json.dumps(
                [
                    {
                        "field": w.field,
                        "level": w.level,
                        "agreed": w.agreed,
                        "log2_bayes_factor": w.log2_bayes_factor,
                    }
                    for w in m.waterfall
                ],
                ensure_ascii=False,
            )
        waterfall = pc.if_else(pa.array(is_held), pa.array(given, pa.string()), waterfall)
    columns = [rid_sorted, person, probability, by, with_, weight, waterfall]
    table = pa.table(
        {
            name: column if isinstance(column, pa.Array) else pa.array(column, pa.string())
            for name, column in zip(_MATCH_COLUMNS, columns, strict=True)
        }
    )
    return {
        "matches": table,
        "people": new_people,
        "matched": int(at.size),
        "held": int(is_held.sum()),
    }


def _number_text(value: float) -> str:
    """A number of a given match as the text that reads back as it (``1``, ``0.62``).

    >>> _number_text(1.0), _number_text(0.62), _number_text(-6.1)
    ('1', '0.62', '-6.1')
    """
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _deciding_pairs(n: int, pairs: pa.Table, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The deciding pair of every record (a row of ``pairs``; -1 none): its heaviest
    joining pair (ties: the smaller other id)."""
    best = np.full(n, -1, np.int64)
    if left.size:
        weight = pairs["w"].to_numpy()
        ends = np.concatenate([left, right])
        other = np.concatenate([right, left])
        w2 = np.concatenate([weight, weight])
        edge = np.concatenate([np.arange(left.size), np.arange(left.size)])
        pick = np.lexsort((other, -w2, ends))
        first = np.ones(pick.size, bool)
        first[1:] = ends[pick][1:] != ends[pick][:-1]
        best[ends[pick][first]] = edge[pick][first]
    return best


def _people(
    records: pa.Table,
    order: np.ndarray,
    cluster: np.ndarray,
    rid: np.ndarray,
    known: np.ndarray,
    taken: set[str],
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Every record's person (positions: sorted ids) and the new people: a cluster with
    known people takes its most common one (ties: the smallest id) for its unknown records;
    one without becomes a new person named after its smallest record id, in that order."""
    n = order.size
    names = np.asarray(pc.take(records["name"], order).to_pylist(), dtype=object)
    cities = np.asarray(pc.take(records["city"], order).to_pylist(), dtype=object)
    # the members of each cluster together, in id order; the clusters by their smallest id
    by_cluster = np.lexsort((np.arange(n), cluster))
    grouped = cluster[by_cluster]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if n else grouped
    bounds = np.r_[starts, n]
    person = np.empty(n, dtype=object)
    used = set(taken)
    new_people: list[dict[str, str]] = []
    for g in np.argsort(by_cluster[starts], kind="stable").tolist():
        idx = by_cluster[bounds[g] : bounds[g + 1]].tolist()
        knowns = [known[i] for i in idx if known[i] is not None]
        if knowns:
            counts: dict[str, int] = {}
            for k in knowns:
                counts[k] = counts.get(k, 0) + 1
            chosen = min(counts, key=lambda k: (-counts[k], k))
            for i in idx:
                person[i] = known[i] if known[i] is not None else chosen
            continue
        pid = new_person_id(rid[idx[0]], used)
        used.add(pid)
        for i in idx:
            person[i] = pid
        new_people.append(
            {
                "person_id": pid,
                "name": _most_common([names[i] for i in idx]) or pid,
                "id_number": "",
                "city": _most_common([cities[i] for i in idx]) or "",
            }
        )
    return person, new_people


def _most_common(values: list[Any]) -> str | None:
    counts: dict[str, int] = {}
    for v in values:
        if v:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], k))


def _write_csv(path: Path, table: pa.Table) -> None:
    """A CSV of text columns in row order, quoted only where needed, empty for missing."""
    import duckdb

    columns = {}
    for name in table.column_names:
        col = table[name].cast(pa.string())
        empty = pc.equal(col, "")
        # a column with no empty value is written as it is (no copy of it)
        columns[name] = pc.if_else(empty, None, col) if pc.any(empty).as_py() else col
    con = duckdb.connect()
    try:
        con.register("out_table", pa.table(columns))
        con.execute(
            f"COPY out_table TO '{_sql_text(path)}' (FORMAT csv, HEADER, DELIMITER ',', "
            "QUOTE '\"', ESCAPE '\"', NEW_LINE '\n')"
        )
    finally:
        con.close()


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


# ---------------------------------------------------------------------------------------------
# quality


def pairwise_quality(predicted: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering against the true people.

    A pair of records is predicted when both have the same predicted person, true
    when both have the same true person; records missing from either side are left out.

    >>> q = pairwise_quality({"a": "x", "b": "x", "c": "y"}, {"a": "1", "b": "1", "c": "1"})
    >>> q["precision"], q["recall"], round(q["f1"], 3)
    (1.0, 0.3333333333333333, 0.5)
    """
    common = sorted(set(predicted) & set(truth))
    pred = np.array([predicted[r] for r in common], dtype=object).astype(str)
    true = np.array([truth[r] for r in common], dtype=object).astype(str)

    def pair_count(*keys: np.ndarray) -> int:
        if not common:
            return 0
        _, counts = np.unique(np.stack(keys, axis=1), axis=0, return_counts=True)
        return int((counts * (counts - 1) // 2).sum())

    tp = pair_count(pred, true)
    n_pred, n_true = pair_count(pred), pair_count(true)
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_pairs": float(n_true),
        "predicted_pairs": float(n_pred),
        "correct_pairs": float(tp),
    }
