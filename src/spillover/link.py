"""Identity linkage: platform records resolved to people (``spillover link``, docs/linkage.md).

Every platform holds its own customer records (a name, maybe an ID number, a
phone number...). :func:`link` decides which records are the same person with a
probabilistic Fellegi-Sunter model (Splink on DuckDB, deduplication across
platforms) and writes a complete data folder: the input tables, ``records`` with
every ``person_id`` filled, ``people`` with one row per new identity, and the
``matches`` table that says, for every record, which pair decided its person and
which comparison levels decided that pair (docs/contract.md §6).

The model: blocking on ID number, on phone, and on name with city or with birth
date; one comparison per field of :data:`spillover.rules.MATCH_FIELDS` (names
compared written and as pinyin, so ``徐燕``, ``Xu Yan`` and ``XU YAN`` agree;
term-frequency adjustment on names and phones, so a phone shared by many records
counts for less). Its parameters come from a versioned settings file shipped
with the package (``spillover/linkage/splink-v1.json``) or are estimated from
the records without labels (``train=True``: u by seeded random sampling, m by
expectation maximisation). Pairs at or above the threshold are clustered into
people (connected components), except that no pair is ever joined unless its
names or its ID numbers agree: a shared phone alone never makes two records one
person (the hard rule of issue 14).

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
from pypinyin import lazy_pinyin

from .errors import DataError, OptionError, Problem, SpilloverError
from .linkage import DEFAULT_THRESHOLD, SETTINGS_VERSION
from .loader import read_valid_table, table_file
from .outfiles import atomic_file, atomic_folder
from .phones import DEFAULT_REGION, normalize_phone
from .rows import MatchRow, RecordRow
from .rules import MATCH_FIELDS, MatchKey, match_key

__all__ = [
    "DEFAULT_THRESHOLD",
    "LEVEL_AGREES",
    "RECORD_COLUMNS",
    "SETTINGS_VERSION",
    "TF_MIN_RECORDS",
    "LinkSummary",
    "default_settings",
    "link",
    "load_settings",
    "name_forms",
    "new_person_id",
    "pairwise_quality",
]

#: The columns of the ``records`` table (docs/contract.md §1), in file order.
RECORD_COLUMNS: tuple[str, ...] = tuple(RecordRow.model_fields)

#: The comparison-level labels a model may use and what each says about the field:
#: agreed (exactly or closely), disagreed, or could not be compared (a value missing).
LEVEL_AGREES: Mapping[str, bool | None] = {
    "exact": True,
    "pinyin": True,
    "close": True,
    "different": False,
    "missing": None,
}

#: Term frequencies (how common a name or a phone is) are counted against at least this
#: many records, so that a handful of records is not read as a population in which
#: every value is common.
TF_MIN_RECORDS = 100_000

#: The columns the model compares (made from the records by :func:`_prepare`).
_MODEL_COLUMNS = ("record_id", "id_number", "name_norm", "name_key", "phone", "birth_date", "city")

#: The columns of the ``matches`` table (docs/contract.md §1), in file order.
_MATCH_COLUMNS: tuple[str, ...] = tuple(MatchRow.model_fields)

_SPACES = re.compile(r"[\s\-_.·・'’]+")
_E164_CN = re.compile(r"\+861[3-9]\d{9}")


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


# ---------------------------------------------------------------------------------------------
# names


def name_forms(name: str) -> tuple[str, str]:
    """A name as written (case, spaces and dashes dropped) and as toneless pinyin.

    Chinese characters become their pinyin (``pypinyin``), so a name written in
    汉字 and the same name in pinyin have the same second form.

    >>> name_forms("王伟芳"), name_forms("Wang Weifang")
    (('王伟芳', 'wangweifang'), ('wangweifang', 'wangweifang'))
    """
    written = _SPACES.sub("", unicodedata.normalize("NFKC", name)).lower()
    if written.isascii():
        return written, written
    key = "".join(map(_pinyin, written))
    return written, _SPACES.sub("", unicodedata.normalize("NFKC", key)).lower()


@functools.lru_cache(maxsize=65536)
def _pinyin(char: str) -> str:
    """One character's toneless pinyin (itself when it is not Chinese); read one character
    at a time, as names are (a name is no phrase whose context changes a reading)."""
    if char.isascii():
        return char
    return "".join(lazy_pinyin(char, errors="default"))


# ---------------------------------------------------------------------------------------------
# settings


def default_settings() -> dict[str, Any]:
    """The model shipped with the package (a Splink settings dictionary with its parameters)."""
    text = (
        resources.files("spillover.linkage")
        .joinpath(f"{SETTINGS_VERSION}.json")
        .read_text(encoding="utf-8")
    )
    settings: dict[str, Any] = json.loads(text)
    return settings


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
    if not isinstance(settings, dict) or not isinstance(settings.get("comparisons"), list):
        raise OptionError("--settings", "not a Splink settings dictionary (no 'comparisons')")
    names = [c.get("output_column_name") for c in settings["comparisons"] if isinstance(c, dict)]
    if sorted(map(str, names)) != sorted(MATCH_FIELDS):
        raise OptionError(
            "--settings", f"the comparisons must be {', '.join(MATCH_FIELDS)}; found {names}"
        )
    for comparison in settings["comparisons"]:
        for level in comparison.get("comparison_levels", []):
            label = level.get("label_for_charts")
            if label not in LEVEL_AGREES:
                raise OptionError(
                    "--settings",
                    f"{comparison['output_column_name']}: level label {label!r} is not one of "
                    f"{', '.join(LEVEL_AGREES)}",
                )
    if settings.get("unique_id_column_name", "record_id") != "record_id":
        raise OptionError("--settings", "unique_id_column_name must be record_id")


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


def _read_records(data: Path, region: str = DEFAULT_REGION) -> pa.Table:
    """The ``records`` table of ``data`` as text columns (missing values null), every row
    checked by the contract's rules first (docs/contract.md §1, the loader's messages)."""
    if not data.is_dir():
        raise OptionError("--data", f"not a folder: {data}")
    rows = read_valid_table(data, "records", region)
    path = table_file(data, "records") or data / "records.csv"

    def text(value: object) -> str | None:
        if value is None:
            return None
        return value.isoformat() if isinstance(value, date) else str(value)

    columns: dict[str, pa.Array] = {
        name: pa.array([text(getattr(r, name, None)) for r in rows], pa.string())
        for name in RECORD_COLUMNS
    }
    problems: list[Problem] = []
    ids = columns["record_id"]
    if ids.null_count == 0 and len(pc.unique(ids)) != len(ids):
        counts = pc.value_counts(ids)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0].as_py()
        problems.append(Problem(str(path), 0, "record_id", f"record_id {dup!r} appears twice"))
    if problems:
        raise DataError(problems)
    return pa.table(columns)


def _prepare(records: pa.Table) -> pa.Table:
    """The columns the model compares: names written and as pinyin, phones in E.164,
    ID numbers upper-case, birth dates (from the ID number when missing), cities."""
    names = records["name"].combine_chunks()
    distinct = pc.unique(names).drop_null().to_pylist()
    forms = {n: name_forms(n) for n in distinct}
    index = pc.index_in(names, pa.array(distinct, pa.string()))
    written = pa.array([forms[n][0] or None for n in distinct], pa.string())
    keyed = pa.array([forms[n][1] or None for n in distinct], pa.string())
    name_norm = pc.take(written, index)
    name_key = pc.take(keyed, index)

    phones = records["phone"].combine_chunks()
    national = pc.match_substring_regex(phones, r"^1[3-9]\d{9}$")
    phones = pc.if_else(national, pc.binary_join_element_wise("+86", phones, ""), phones)
    odd = [p for p in pc.unique(phones).drop_null().to_pylist() if not _E164_CN.fullmatch(p)]
    fixed: dict[str, str | None] = {}
    for raw in odd:
        try:
            fixed[raw] = normalize_phone(raw)
        except SpilloverError:
            fixed[raw] = None  # not a phone number: not compared
    if fixed:
        keys = pa.array(list(fixed), pa.string())
        values = pa.array(list(fixed.values()), pa.string())
        where = pc.index_in(phones, keys)
        phones = pc.if_else(pc.is_null(where), phones, pc.take(values, where))

    id_number = pc.utf8_upper(records["id_number"].combine_chunks())
    birth = records["birth_date"].combine_chunks()
    from_id = pc.if_else(
        pc.equal(pc.utf8_length(id_number), 18),
        pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(id_number, 6, 10),
            pc.utf8_slice_codeunits(id_number, 10, 12),
            pc.utf8_slice_codeunits(id_number, 12, 14),
            "-",
        ),
        None,
    )
    birth = pc.coalesce(birth, from_id)
    city = pc.utf8_lower(pc.utf8_trim_whitespace(records["city"].combine_chunks()))
    return pa.table(
        {
            "record_id": records["record_id"],
            "id_number": id_number,
            "name_norm": name_norm,
            "name_key": name_key,
            "phone": phones,
            "birth_date": birth,
            "city": city,
        }
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


def _term_frequencies(con: Any, settings: Mapping[str, Any]) -> None:
    """Every term-frequency column's value frequencies, counted against at least
    :data:`TF_MIN_RECORDS` records (tables ``tf_lookup_<column>``)."""
    n: int = con.execute("SELECT count(*) FROM prepared").fetchone()[0]
    for column in _tf_columns(settings):
        if column not in _MODEL_COLUMNS:
            raise OptionError("--settings", f"no column {column!r} to adjust for")
        con.execute(
            f"CREATE OR REPLACE TABLE tf_lookup_{column} AS SELECT {column}, "
            f"count(*) / {max(n, TF_MIN_RECORDS)}::DOUBLE AS tf_{column} "
            f"FROM prepared WHERE {column} IS NOT NULL GROUP BY {column}"
        )


def _linker(con: Any, settings: Mapping[str, Any]) -> Any:
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    table = db_api.register("prepared")
    linker = Linker(table, copy.deepcopy(dict(settings)), log_level=None)
    for column in _tf_columns(settings):
        lookup = db_api.register(f"tf_lookup_{column}")
        linker.table_management.register_term_frequency_lookup(lookup, column)
    return linker


def _train(con: Any, settings: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Estimate the model's parameters from the records themselves (no labels)."""
    from splink import block_on

    linker = _linker(con, _untrained(settings))
    training = linker.training
    training.estimate_probability_two_random_records_match(
        ["l.id_number = r.id_number", "l.name_key = r.name_key AND l.phone = r.phone"],
        recall=0.8,
    )
    training.estimate_u_using_random_sampling(max_pairs=_U_SAMPLE_PAIRS, seed=seed)
    for rule in (block_on("phone"), block_on("name_key", "birth_date")):
        training.estimate_parameters_using_expectation_maximisation(rule)
    trained: dict[str, Any] = linker.misc.save_model_to_json()
    trained.pop("linker_uid", None)
    return _fill_unseen(trained, 1.0 / _U_SAMPLE_PAIRS)


#: Pairs sampled at random to estimate the u probabilities (``train=True``).
_U_SAMPLE_PAIRS = 2_000_000


def _fill_unseen(settings: dict[str, Any], u_floor: float) -> dict[str, Any]:
    """A level no random pair fell into gets u = 1 / (pairs sampled), not Splink's default."""
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            if level.get("u_probability") is None:
                level["u_probability"] = u_floor
    return settings


def _score(con: Any, settings: Mapping[str, Any]) -> int:
    """Score every blocked pair into the DuckDB table ``scored``; returns how many."""
    linker = _linker(con, settings)
    predictions = linker.inference.predict(warning_mode="never")
    con.execute(f"CREATE OR REPLACE TABLE scored AS SELECT * FROM {predictions.physical_name}")
    n: int = con.execute("SELECT count(*) FROM scored").fetchone()[0]
    return n


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


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(left.size, np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# people


def _people_file(data: Path) -> Path | None:
    for name in ("people.csv", "people.jsonl"):
        if (data / name).is_file():
            return data / name
    return None


def _people_ids(path: Path | None) -> set[str]:
    if path is None:
        return set()
    if path.suffix == ".csv":
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8"),
            convert_options=pacsv.ConvertOptions(
                include_columns=["person_id"], column_types={"person_id": pa.string()}
            ),
        )
    else:
        table = pajson.read_json(path).select(["person_id"])
    return {str(v).strip() for v in table["person_id"].to_pylist() if v is not None}


def _append_people(path: Path, rows: list[dict[str, str]]) -> None:
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
        writer = csv.writer(handle, lineterminator="\n")
        for row in rows:
            writer.writerow([row.get(h, "") for h in header])


# ---------------------------------------------------------------------------------------------
# the whole step


def link(
    data: str | Path,
    out: str | Path,
    *,
    settings: str | Path | None = None,
    train: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    save_settings: str | Path | None = None,
) -> LinkSummary:
    """Resolve the records of ``data`` to people and write the linked folder ``out``.

    ``settings``: a Splink settings JSON (default: the model shipped with the
    package); ``train``: estimate its parameters from these records instead (u by
    random sampling seeded with ``seed``, m by EM), and with ``save_settings``
    write the trained model there. ``threshold``: the match probability at or
    above which a pair is the same person. ``out`` must not exist or be empty.
    The same input, settings and seed give the same folder.
    """
    import duckdb

    began = time.perf_counter()
    data, out = Path(data), Path(out)
    if not 0.0 < threshold <= 1.0 or math.isnan(threshold):
        raise OptionError("--threshold", f"must be in (0, 1], not {threshold}")
    if seed < 0:
        raise OptionError("--seed", "must be >= 0")
    if out.resolve().is_relative_to(data.resolve()):
        raise OptionError("--out", f"{out} is inside the data folder {data}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OptionError("--out", f"{out} exists and is not an empty folder")
    model = load_settings(Path(settings) if settings is not None else None)
    records = _read_records(data)
    people_path = _people_file(data)
    taken = _people_ids(people_path)
    known = records["person_id"]
    unknown_known = sorted(set(pc.unique(known).drop_null().to_pylist()) - taken)
    if unknown_known:
        raise DataError(
            [
                Problem(
                    str(data / "records.csv"),
                    0,
                    "person_id",
                    f"unknown person_id {unknown_known[0]!r}",
                )
            ]
        )
    prepared = _prepare(records)
    n = records.num_rows

    con = duckdb.connect()
    try:
        con.register("prepared_arrow", prepared)
        con.execute("CREATE TABLE prepared AS SELECT * FROM prepared_arrow ORDER BY record_id")
        con.unregister("prepared_arrow")
        _term_frequencies(con, model)
        with _quiet_splink():
            if train:
                model = _train(con, model, seed)
            scored = _score(con, model) if n > 1 else 0
        pairs = _pairs(con, model, scored, threshold)
    finally:
        con.close()

    ids = records["record_id"].to_numpy(zero_copy_only=False).astype(object)
    order = np.argsort(ids.astype(str), kind="stable")
    position = {rid: i for i, rid in enumerate(ids[order])}
    left = np.array([position[r] for r in pairs["l"]], np.int64)
    right = np.array([position[r] for r in pairs["r"]], np.int64)
    cluster = _components(n, left, right)
    result = _resolve(records, order, cluster, pairs, left, right, taken)

    if save_settings is not None:
        with atomic_file(save_settings) as handle:
            handle.write(json.dumps(model, indent=2, ensure_ascii=False) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.rmdir()
    with atomic_folder(out) as tmp:
        shutil.copytree(data, tmp, dirs_exist_ok=True)
        for stale in ("records.csv", "records.jsonl", "matches.csv", "matches.jsonl"):
            (tmp / stale).unlink(missing_ok=True)
        _write_records(tmp / "records.csv", records, result["person_of"])
        _write_matches(tmp / "matches.csv", result["matches"])
        target = tmp / people_path.name if people_path else tmp / "people.csv"
        if people_path is None:
            target.write_text("person_id,name,id_number,city\n", encoding="utf-8")
        _append_people(target, result["people"])
    return LinkSummary(
        out=out,
        records=n,
        known=int(n - known.null_count),
        people_new=len(result["people"]),
        matched=result["matched"],
        pairs_scored=scored,
        pairs_joined=int(left.size),
        pairs_refused_phone_only=pairs["refused"],
        threshold=threshold,
        settings=str(settings) if settings is not None else SETTINGS_VERSION,
        trained=train,
        seed=seed,
        elapsed=time.perf_counter() - began,
    )


def _pairs(con: Any, model: Mapping[str, Any], scored: int, threshold: float) -> dict[str, Any]:
    """The pairs that join: at or above ``threshold`` and agreeing on a name or an ID number."""
    empty: dict[str, Any] = {"l": [], "r": [], "p": [], "w": [], "waterfall": [], "key": []}
    if not scored:
        return {**empty, "refused": 0}
    select, structs = _pair_sql(model)
    con.execute(f"CREATE TABLE pairs AS {select} WHERE match_probability >= {threshold!r}")
    agreed_name = "coalesce(agreed_name, false)"
    agreed_id = "coalesce(agreed_id_number, false)"
    refused: int = con.execute(
        f"SELECT count(*) FROM pairs WHERE NOT ({agreed_name} OR {agreed_id})"
    ).fetchone()[0]
    flags = ", ".join(f"coalesce(agreed_{f}, false) AS a_{f}" for f in MATCH_FIELDS)
    rows = con.execute(
        f"SELECT record_id_l, record_id_r, p, w, to_json([{', '.join(structs)}])::VARCHAR, {flags} "
        f"FROM pairs WHERE {agreed_name} OR {agreed_id} ORDER BY record_id_l, record_id_r"
    ).fetchall()
    out: dict[str, Any] = {"l": [], "r": [], "p": [], "w": [], "waterfall": [], "key": []}
    for row in rows:
        out["l"].append(row[0])
        out["r"].append(row[1])
        out["p"].append(float(row[2]))
        out["w"].append(float(row[3]))
        out["waterfall"].append(row[4])
        out["key"].append(
            match_key(f for f, a in zip(MATCH_FIELDS, row[5:], strict=True) if a).value
        )
    out["refused"] = refused
    return out


def _resolve(
    records: pa.Table,
    order: np.ndarray,
    cluster: np.ndarray,
    pairs: Mapping[str, Any],
    left: np.ndarray,
    right: np.ndarray,
    taken: set[str],
) -> dict[str, Any]:
    """Every record's person and deciding pair, and the new people (positions: sorted ids)."""
    n = order.size
    rid = records["record_id"].to_numpy(zero_copy_only=False).astype(object)[order]
    known = np.array(records["person_id"].to_pylist(), dtype=object)[order]
    names = np.array(records["name"].to_pylist(), dtype=object)[order]
    cities = np.array(records["city"].to_pylist(), dtype=object)[order]

    # the deciding pair of a record: its heaviest joining pair (ties: the smaller other id)
    best = np.full(n, -1, np.int64)
    if left.size:
        weight = np.asarray(pairs["w"], float)
        ends = np.concatenate([left, right])
        other = np.concatenate([right, left])
        w2 = np.concatenate([weight, weight])
        edge = np.concatenate([np.arange(left.size), np.arange(left.size)])
        pick = np.lexsort((other, -w2, ends))
        first = np.ones(pick.size, bool)
        first[1:] = ends[pick][1:] != ends[pick][:-1]
        best[ends[pick][first]] = edge[pick][first]

    members: dict[int, list[int]] = {}
    for i, c in enumerate(cluster.tolist()):
        members.setdefault(c, []).append(i)
    person = np.empty(n, dtype=object)
    used = set(taken)
    new_people: list[dict[str, str]] = []
    for c in sorted(members, key=lambda k: rid[members[k][0]]):
        idx = members[c]
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

    matches: list[tuple[Any, ...]] = []
    matched = 0
    for i in range(n):
        if known[i] is not None:
            matches.append((rid[i], known[i], 1.0, MatchKey.KNOWN.value, "", "", "[]"))
        elif best[i] < 0:
            matches.append((rid[i], person[i], 1.0, MatchKey.NEW_IDENTITY.value, "", "", "[]"))
        else:
            e = int(best[i])
            partner = pairs["r"][e] if pairs["l"][e] == rid[i] else pairs["l"][e]
            matched += 1
            matches.append(
                (
                    rid[i],
                    person[i],
                    pairs["p"][e],
                    pairs["key"][e],
                    partner,
                    pairs["w"][e],
                    pairs["waterfall"][e],
                )
            )
    person_by_id = dict(zip(rid.tolist(), person.tolist(), strict=True))
    return {"matches": matches, "people": new_people, "person_of": person_by_id, "matched": matched}


def _most_common(values: list[Any]) -> str | None:
    counts: dict[str, int] = {}
    for v in values:
        if v:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], k))


def _write_records(path: Path, records: pa.Table, person_of: Mapping[str, str]) -> None:
    person = pa.array([person_of[r] for r in records["record_id"].to_pylist()], pa.string())
    table = records.set_column(records.column_names.index("person_id"), "person_id", person)
    _write_csv(path, table)


def _write_matches(path: Path, rows: list[tuple[Any, ...]]) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(_MATCH_COLUMNS)
    table = pa.table(
        {
            "record_id": pa.array(columns[0], pa.string()),
            "person_id": pa.array(columns[1], pa.string()),
            "match_probability": pa.array([f"{v:.6g}" for v in columns[2]], pa.string()),
            "matched_by": pa.array(columns[3], pa.string()),
            "matched_with": pa.array(columns[4], pa.string()),
            "match_weight": pa.array(
                [v if v == "" else f"{v:.4f}" for v in columns[5]], pa.string()
            ),
            "waterfall": pa.array(columns[6], pa.string()),
        }
    )
    _write_csv(path, table)


def _write_csv(path: Path, table: pa.Table) -> None:
    """A CSV of text columns in row order, quoted only where needed, empty for missing."""
    import duckdb

    columns = {}
    for name in table.column_names:
        col = table[name].cast(pa.string())
        columns[name] = pc.if_else(pc.equal(col, ""), None, col)
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
