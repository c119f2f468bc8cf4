"""What a linkage did, for the person who must trust it (``spillover link --report DIR``,
docs/linkage.md "The report").

:func:`link_report` runs :func:`spillover.link.resolve.link` and, while its DuckDB
connection is open (``link(..., on_model=...)``), reads what the run decided: the pairs
each blocking rule brought together, the model's m and u per comparison level (estimated
from the records or kept from the starting model), the match weights of the scored
pairs, and an estimate of the blocking's recall (the share of true matches the blocking
rules compare at all), made by scoring a seeded sample of the pairs that a wider
blocking (any one field in common) brings together and the rules do not. Given the true
person of each record (``truth``: ``ground_truth/records.csv`` of ``synth --records``),
the recall is also counted exactly. It writes into the new folder ``DIR``:

- ``report.md``: the figures and tables, and how each was obtained;
- ``report.json``: the same for programs (:class:`LinkReport`);
- ``match-weights.png``/``.svg``: each comparison level's match weight (the model);
- ``weight-distribution.png``/``.svg``: the match weights of the scored pairs;
- ``waterfall.png``/``.svg``: the closest joined pair, field by field;
- Splink's own charts as offline HTML (``splink-*.html``): match weights, m and u, the
  weight histogram, comparisons per blocking rule, waterfalls, the comparison viewer.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from ..data.outputs import check_not_inside, check_outside
from ..errors import OptionError
from ..facts.model import MATCH_FIELDS
from ..files.write import atomic_folder
from .resolve import LEVEL_AGREES, LinkSummary, ModelRun, link, pairwise_quality

__all__ = [
    "LEVEL_SOURCES",
    "WIDER_KEYS",
    "BlockingRule",
    "LevelRow",
    "LinkReport",
    "RecallEstimate",
    "link_report",
    "read_truth",
]

#: The keys of the wider comparison that estimates the blocking's recall: a pair of
#: records that agrees on one of these (a value present on both) is probed; SQL over the
#: prepared columns of one record.
WIDER_KEYS: Mapping[str, str] = {
    "id_number": "id_number",
    "phone": "phone",
    "name": "name_key",
    "name (order swaps undone)": "name_canon",
    "first name part": "name_parts[1]",
    "last name part": "name_parts[-1]",
    "birth_date": "birth_date",
    "city": "city",
}

#: A wider key with at most this many pairs is probed whole; a larger one by a seeded
#: sample of this many pairs (drawn with replacement, uniformly over its pairs).
PROBE_PAIRS = 20_000

#: The match-weight chart's axis runs from -this to +this many bits; a level beyond it is
#: drawn to the edge with its value written beside it.
WEIGHT_AXIS = 30.0

#: Where a level's m or u came from: estimated from these records, kept as it was in the
#: starting model (the shipped one or ``--settings``), or the starting model (no training).
LEVEL_SOURCES = ("estimated", "kept", "model")

_HTML_CHARTS = (
    "splink-match-weights.html",
    "splink-m-u-parameters.html",
    "splink-match-weights-histogram.html",
    "splink-comparisons-by-blocking-rule.html",
    "splink-waterfall.html",
    "splink-comparison-viewer.html",
)


class _Edge(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BlockingRule(_Edge):
    """One prediction blocking rule as it ran (capped, ``--max-block-size``): the pairs it
    brought to be scored that no earlier rule had (Splink's ``match_key``), the running
    total, and how many of them scored at or above the threshold."""

    rule: str
    pairs: int
    cumulative_pairs: int
    pairs_over_threshold: int


class LevelRow(_Edge):
    """One comparison level of the final model: m, u, the Bayes factor m/u and the match
    weight log2(m/u) (before any term-frequency adjustment), and where m and u came from."""

    field: str
    level: str
    agrees: bool | None
    m_probability: float | None
    u_probability: float | None
    bayes_factor: float | None
    match_weight: float | None
    m_source: str
    u_source: str
    tf_adjusted: bool


class RecallEstimate(_Edge):
    """The blocking's recall estimated without labels (see ``method`` and ``limits``)."""

    method: str
    limits: str
    wider_keys: list[str]
    wider_pairs: int
    probed_pairs: int
    probed_pairs_not_blocked: int
    probed_matches_not_blocked: int
    matches_compared: int
    matches_missed_estimate: float
    matches_missed_stderr: float
    recall_estimate: float | None
    expected_matches_compared: float
    expected_matches_prior: float
    recall_from_prior: float | None


class TruthCheck(_Edge):
    """With the true person of each record: the exact blocking recall and the clustering's
    pairwise quality (records named in both the data and the truth)."""

    file: str
    records: int
    true_pairs: int
    true_pairs_compared: int
    blocking_recall: float
    true_pairs_in_wider_keys: int
    precision: float
    recall: float
    f1: float


class LinkReport(_Edge):
    """``report.json``: what ``link --report`` found (docs/linkage.md "The report")."""

    version: Literal[1] = 1
    records: int
    pairs_possible: int
    pairs_scored: int
    pairs_over_threshold: int
    pairs_joined: int
    pairs_refused_phone_only: int
    #: over the threshold, names agreeing only at ``similar`` (or below) on a misused phone
    pairs_refused_misused_phone: int = 0
    #: joining pairs left out: they would make one person of two valid resident IDs
    pairs_refused_id_conflict: int = 0
    #: joining pairs left out: they would make one person of two birth dates farther apart
    #: than a typo
    pairs_refused_birth_conflict: int = 0
    threshold: float
    model: str
    trained: bool
    seed: int
    prior: float
    prior_source: str
    blocking: list[BlockingRule]
    recall: RecallEstimate
    truth: TruthCheck | None
    levels: list[LevelRow]
    files: list[str]
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# the entry point


def link_report(
    data: str | Path,
    out: str | Path,
    report: str | Path,
    *,
    truth: str | Path | None = None,
    **options: Any,
) -> tuple[LinkSummary, LinkReport]:
    """Link ``data`` into ``out`` (:func:`~spillover.link.resolve.link` with ``options``)
    and write the report folder ``report`` (a new or empty folder); ``truth``: a CSV of
    ``record_id,person_id`` (the true person of each record) for the exact recall.

    ``report`` and ``truth`` are checked before anything is read or written
    (:class:`~spillover.errors.OptionError`: nothing written)."""
    report = Path(report)
    _check_report_folder(report, Path(out), Path(data))
    saved = options.get("save_settings")
    if saved is not None:
        check_not_inside(saved, report, option="--save-settings", folder_option="--report")
    truth_path = Path(truth) if truth is not None else None
    truth_map = read_truth(truth_path) if truth_path is not None else None
    seen = _Seen(truth=truth_map)
    summary = link(data, out, on_model=seen.read, **options)
    assert seen.run is not None  # link calls on_model once the pairs are scored
    checked = None
    if truth_path is not None and truth_map is not None:
        checked = _truth_check(seen, Path(out), truth_path, truth_map)
    result = _build(summary, seen, checked)
    report.parent.mkdir(parents=True, exist_ok=True)
    if report.exists():
        report.rmdir()
    with atomic_folder(report, private=True) as tmp:  # the viewers show records' values
        files = _draw(tmp, seen, summary)
        files += [name for name, html in seen.html.items() if _write_text(tmp / name, html)]
        result = result.model_copy(update={"files": sorted([*files, "report.json", "report.md"])})
        _write_text(tmp / "report.json", result.model_dump_json(indent=2) + "\n")
        _write_text(tmp / "report.md", report_markdown(result))
    return summary, result


def _check_report_folder(report: Path, out: Path, data: Path) -> None:
    """The report goes to a new or empty folder of its own: not a file, not inside the
    data folder or the linked folder (it would become part of them), nor holding them."""
    if report.exists() and (not report.is_dir() or any(report.iterdir())):
        raise OptionError("--report", f"{report} exists and is not an empty folder")
    for folder, option in ((out, "--out"), (data, "--data")):
        check_outside(report, folder, option="--report", data_option=option)


def read_truth(path: Path) -> dict[str, str]:
    """The true person of each record: a CSV with the columns ``record_id`` and
    ``person_id`` (others ignored), as ``synth --records`` writes
    ``ground_truth/records.csv``; refused with one ``--truth`` message otherwise."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in ("record_id", "person_id") if c not in header]
            if missing:
                raise OptionError(
                    "--truth", f"{path}: no column {', '.join(missing)} (found: {header})"
                )
            reader.fieldnames = header
            truth: dict[str, str] = {}
            for line, row in enumerate(reader, start=2):
                rid, pid = (
                    (row.get("record_id") or "").strip(),
                    (row.get("person_id") or "").strip(),
                )
                if not rid or not pid:
                    raise OptionError("--truth", f"{path}:{line}: record_id and person_id needed")
                truth[rid] = pid
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise OptionError("--truth", f"cannot read {path}: {exc}") from None
    return truth


def _write_text(path: Path, text: str) -> bool:
    path.write_text(text, encoding="utf-8")
    return True


# ---------------------------------------------------------------------------------------------
# what the run holds, read while its connection is open


@dataclass
class _Seen:
    """What :func:`link_report` reads from the model run (``on_model``); with ``truth``
    (record -> true person) also the true pairs counted against the scored ones."""

    truth: Mapping[str, str] | None = None
    run: ModelRun | None = None
    blocking: list[BlockingRule] = field(default_factory=list)
    over_threshold: int = 0
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    closest: dict[str, Any] | None = None
    recall: RecallEstimate | None = None
    html: dict[str, str] = field(default_factory=dict)
    true_pairs: tuple[int, int, int, int] = (0, 0, 0, 0)
    notes: list[str] = field(default_factory=list)

    def read(self, run: ModelRun) -> None:
        self.run = run
        con = run.con
        self.blocking = _blocking_counts(run)
        self.over_threshold = sum(r.pairs_over_threshold for r in self.blocking)
        if run.scored:
            weights = con.execute("SELECT match_weight FROM scored").fetchnumpy()
            self.weights = np.asarray(weights["match_weight"], float)
            self.closest = _closest_joined(run)
        self.recall = _estimate_recall(run, self.over_threshold)
        if self.truth is not None:
            self.true_pairs = _true_pairs(run, self.truth)
        self.html = _splink_charts_or_note(run, self.blocking, self.notes)


def _blocking_counts(run: ModelRun) -> list[BlockingRule]:
    rules = [
        r["blocking_rule"] if isinstance(r, dict) else str(r)
        for r in run.scoring["blocking_rules_to_generate_predictions"]
    ]
    counts: dict[str, tuple[int, int]] = {}
    if run.scored:
        rows = run.con.execute(
            "SELECT match_key, count(*), count(*) FILTER (WHERE match_probability >= ?) "
            "FROM scored GROUP BY match_key",
            [run.threshold],
        ).fetchall()
        counts = {str(k): (int(n), int(j)) for k, n, j in rows}
    out: list[BlockingRule] = []
    total = 0
    for i, rule in enumerate(rules):
        n, j = counts.get(str(i), (0, 0))
        total += n
        out.append(BlockingRule(rule=rule, pairs=n, cumulative_pairs=total, pairs_over_threshold=j))
    return out


def _closest_joined(run: ModelRun) -> dict[str, Any] | None:
    """The scored pair at or above the threshold with the lowest weight (the closest call),
    with its fields' partial weights; else the heaviest pair scored."""
    columns = [f"mw_{f}" for f in MATCH_FIELDS]
    tf = {
        c["output_column_name"]
        for c in run.model["comparisons"]
        if any(lv.get("tf_adjustment_column") for lv in c["comparison_levels"])
    }
    parts = ", ".join(
        f"mw_{f}" + (f" + coalesce(mw_tf_adj_{f}, 0)" if f in tf else "") for f in MATCH_FIELDS
    )
    rows = run.con.execute(
        f"SELECT record_id_l, record_id_r, match_weight, match_probability, {parts} FROM scored "
        "ORDER BY match_probability >= ? DESC, "
        "CASE WHEN match_probability >= ? THEN match_weight ELSE -match_weight END, "
        "record_id_l, record_id_r LIMIT 1",
        [run.threshold, run.threshold],
    ).fetchall()
    if not rows:
        return None
    row = rows[0]
    return {
        "left": row[0],
        "right": row[1],
        "weight": float(row[2]),
        "probability": float(row[3]),
        "fields": dict(zip(MATCH_FIELDS, map(float, row[4 : 4 + len(columns)]), strict=True)),
    }


# ---------------------------------------------------------------------------------------------
# the blocking's recall, estimated


def _wider_pairs(con: Any, key: str) -> int:
    n: int = con.execute(
        f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM prepared "
        f"WHERE {key} IS NOT NULL GROUP BY {key})"
    ).fetchall()[0][0]
    return int(n)


def _probe_key(con: Any, key: str, total: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """The pairs of records agreeing on ``key``: all of them when at most
    :data:`PROBE_PAIRS`, else that many drawn uniformly (with replacement)."""
    if total <= PROBE_PAIRS:
        rows = con.execute(
            f"SELECT l.record_id, r.record_id FROM prepared l JOIN prepared r "
            f"ON {_side(key, 'l')} = {_side(key, 'r')} AND l.record_id < r.record_id "
            "ORDER BY 1, 2"
        ).fetchall()
        return [(a, b) for a, b in rows]
    groups = con.execute(
        f"SELECT list(record_id ORDER BY record_id) FROM prepared WHERE {key} IS NOT NULL "
        f"GROUP BY {key} HAVING count(*) > 1 ORDER BY min(record_id)"
    ).fetchall()
    members = [g for (g,) in groups]
    sizes = np.array([len(g) for g in members], float)
    weights = sizes * (sizes - 1) / 2
    picks = rng.choice(len(members), size=PROBE_PAIRS, p=weights / weights.sum())
    out: list[tuple[str, str]] = []
    for b in picks.tolist():
        group = members[b]
        i, j = rng.choice(len(group), size=2, replace=False).tolist()
        a, c = group[i], group[j]
        out.append((a, c) if a < c else (c, a))
    return out


def _side(key: str, side: str) -> str:
    """``key`` (SQL over one record's columns) for the record ``side`` of a pair."""
    return f"{side}.{key}"


def _estimate_recall(run: ModelRun, over_threshold: int) -> RecallEstimate:
    """The blocking's recall without labels: the pairs a wider blocking (one of
    :data:`WIDER_KEYS` in common) brings together, probed (whole, or a seeded sample per
    key), scored by the model; those no rule compares and that score at or above the
    threshold are the matches the blocking misses, weighted up to the key's pairs and
    down by the number of keys the pair agrees on (each pair counted once)."""
    con = run.con
    n: int = con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]
    rng = np.random.default_rng(run.seed)
    probes: list[tuple[str, str, str, float]] = []
    wider_total = 0
    for name, key in WIDER_KEYS.items():
        total = _wider_pairs(con, key)
        wider_total += total
        if not total:
            continue
        pairs = _probe_key(con, key, total, rng)
        weight = total / len(pairs)
        probes.extend((name, a, b, weight) for a, b in pairs)
    scored = _score_probes(run, probes)
    missed, var_parts, probed_not_blocked, probed_matches = _missed_matches(probes, scored, run)
    expected_compared = (
        float(
            con.execute("SELECT coalesce(sum(match_probability), 0) FROM scored").fetchall()[0][0]
        )
        if run.scored
        else 0.0
    )
    prior = float(run.model.get("probability_two_random_records_match") or 0.0)
    expected_prior = prior * n * (n - 1) / 2
    found = over_threshold
    return RecallEstimate(
        method=(
            "pairs that agree on at least one of the wider keys are probed (every pair of a "
            f"key with at most {PROBE_PAIRS} pairs, else a seeded sample of {PROBE_PAIRS} "
            "drawn uniformly from its pairs) and scored by the final model; those no "
            "blocking rule compares and that score at or above the threshold are the "
            "matches the blocking misses, weighted up to the key's pairs and divided by the "
            "number of wider keys the pair agrees on; recall = pairs over the threshold "
            "compared / (those + the missed estimate)"
        ),
        limits=(
            "a true match that agrees on none of the wider keys (every field different or "
            "missing) is not probed, so the estimate is an upper bound on the recall; what "
            "counts as a match is the model's own probability (a model that underrates a "
            "kind of pair underrates its misses too); a sampled key adds sampling noise "
            "(the standard error is given); the recall from the prior divides the expected "
            "matches among the compared pairs by the prior's expected matches among all "
            "pairs and is only as good as the prior (estimated with an assumed recall of "
            "0.8, or the shipped model's)"
        ),
        wider_keys=list(WIDER_KEYS),
        wider_pairs=wider_total,
        probed_pairs=len(probes),
        probed_pairs_not_blocked=probed_not_blocked,
        probed_matches_not_blocked=probed_matches,
        matches_compared=found,
        matches_missed_estimate=round(missed, 3),
        matches_missed_stderr=round(math.sqrt(var_parts), 3),
        recall_estimate=round(found / (found + missed), 6) if found + missed > 0 else None,
        expected_matches_compared=round(expected_compared, 3),
        expected_matches_prior=round(expected_prior, 3),
        recall_from_prior=(
            round(min(1.0, expected_compared / expected_prior), 6) if expected_prior else None
        ),
    )


def _missed_matches(
    probes: Sequence[tuple[str, str, str, float]],
    scored: Mapping[tuple[str, str], tuple[bool, int, float]],
    run: ModelRun,
) -> tuple[float, float, int, int]:
    """The estimated number of matches no rule compares, its variance, and the probed
    pairs not blocked and those of them over the threshold."""
    missed = 0.0
    variance = 0.0
    not_blocked = 0
    matches = 0
    by_key: dict[str, list[float]] = {}
    weight_of: dict[str, float] = {}
    for name, a, b, weight in probes:
        blocked, agreeing, p = scored[(a, b)]
        value = 0.0
        if not blocked:
            not_blocked += 1
            if p >= run.threshold:
                matches += 1
                value = 1.0 / max(agreeing, 1)
        by_key.setdefault(name, []).append(value)
        weight_of[name] = weight
    for name, values in by_key.items():
        arr = np.asarray(values)
        total = weight_of[name] * arr.size
        missed += total * float(arr.mean())
        if weight_of[name] > 1 and arr.size > 1:
            variance += total**2 * float(arr.var(ddof=1)) / arr.size
    return missed, variance, not_blocked, matches


def _score_probes(
    run: ModelRun, probes: Sequence[tuple[str, str, str, float]]
) -> dict[tuple[str, str], tuple[bool, int, float]]:
    """Each probed pair: whether a blocking rule compares it, on how many wider keys it
    agrees, and its match probability under the final model."""
    con = run.con
    pairs = sorted({(a, b) for _, a, b, _ in probes})
    if not pairs:
        return {}
    con.register(
        "probe_arrow",
        pa.table(
            {"pair": pa.array(range(len(pairs)), pa.int32()),
             "l": pa.array([a for a, _ in pairs], pa.string()),
             "r": pa.array([b for _, b in pairs], pa.string())}
        ),
    )  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE probe_pairs AS SELECT * FROM probe_arrow")
    con.unregister("probe_arrow")
    rules = [
        r["blocking_rule"] if isinstance(r, dict) else str(r)
        for r in run.scoring["blocking_rules_to_generate_predictions"]
    ]
    blocked = " OR ".join(f"coalesce(({rule}), false)" for rule in rules)
    agree = " + ".join(
        f"coalesce({_side(k, 'l')} = {_side(k, 'r')}, false)::INTEGER" for k in WIDER_KEYS.values()
    )
    flags = con.execute(
        f"SELECT q.pair, {blocked}, {agree} FROM probe_pairs q "
        "JOIN prepared l ON l.record_id = q.l JOIN prepared r ON r.record_id = q.r"
    ).fetchall()
    # each probed pair scored by the model: two rows per pair, blocked on the pair's number
    con.execute(
        "CREATE OR REPLACE TABLE probe AS "
        "SELECT p.* REPLACE (q.pair::VARCHAR || '~l' AS record_id), q.pair AS probe_pair "
        "FROM probe_pairs q JOIN prepared p ON p.record_id = q.l UNION ALL "
        "SELECT p.* REPLACE (q.pair::VARCHAR || '~r' AS record_id), q.pair AS probe_pair "
        "FROM probe_pairs q JOIN prepared p ON p.record_id = q.r"
    )
    settings = dict(run.model)
    settings["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": "l.probe_pair = r.probe_pair", "sql_dialect": "duckdb"}
    ]
    linker = splink_linker(con, "probe", settings)
    predicted = linker.inference.predict(warning_mode="never")
    probability = dict(
        con.execute(
            f"SELECT probe_pair_l, match_probability FROM {predicted.physical_name}"
        ).fetchall()
        if _has_column(con, predicted.physical_name, "probe_pair_l")
        else con.execute(
            "SELECT split_part(record_id_l, '~', 1)::INTEGER, match_probability "
            f"FROM {predicted.physical_name}"
        ).fetchall()
    )
    return {pairs[i]: (bool(b), int(k), float(probability.get(i, 0.0))) for i, b, k in flags}


def _has_column(con: Any, table: str, column: str) -> bool:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return column in names


def splink_linker(con: Any, table: str, settings: Mapping[str, Any]) -> Any:
    """A Splink linker over the DuckDB table ``table`` with ``settings``, the
    term-frequency lookups of :func:`spillover.link.resolve.link` (tables
    ``tf_lookup_<column>``) registered."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), json.loads(json.dumps(dict(settings))), log_level=None)
    columns = sorted(
        {
            lv["tf_adjustment_column"]
            for c in settings["comparisons"]
            for lv in c["comparison_levels"]
            if lv.get("tf_adjustment_column")
        }
    )
    for column in columns:
        linker.table_management.register_term_frequency_lookup(
            db_api.register(f"tf_lookup_{column}"), column
        )
    return linker


# ---------------------------------------------------------------------------------------------
# the truth


def _true_pairs(run: ModelRun, truth: Mapping[str, str]) -> tuple[int, int, int, int]:
    """Against ``truth`` (record -> true person), in DuckDB: the records of the data it
    names, their true pairs, how many of those the blocking rules compared (were scored)
    and how many agree on one of :data:`WIDER_KEYS`."""
    con = run.con
    con.register(
        "truth_arrow",
        pa.table(
            {"record_id": pa.array(list(truth), pa.string()),
             "person_id": pa.array(list(truth.values()), pa.string())}
        ),
    )  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TABLE truth_pairs AS SELECT a.record_id AS l, b.record_id AS r "
        "FROM truth_arrow a JOIN truth_arrow b ON a.person_id = b.person_id "
        "AND a.record_id < b.record_id "
        "WHERE a.record_id IN (SELECT record_id FROM prepared) "
        "AND b.record_id IN (SELECT record_id FROM prepared)"
    )
    records = con.execute(
        "SELECT count(*) FROM truth_arrow WHERE record_id IN (SELECT record_id FROM prepared)"
    ).fetchall()[0][0]
    con.unregister("truth_arrow")
    total = con.execute("SELECT count(*) FROM truth_pairs").fetchall()[0][0]
    compared = 0
    if run.scored:
        compared = con.execute(
            "SELECT count(*) FROM truth_pairs t JOIN scored s ON "
            "least(s.record_id_l, s.record_id_r) = t.l AND greatest(s.record_id_l, "
            "s.record_id_r) = t.r"
        ).fetchall()[0][0]
    agree = " OR ".join(
        f"coalesce({_side(k, 'l')} = {_side(k, 'r')}, false)" for k in WIDER_KEYS.values()
    )
    wider = con.execute(
        "SELECT count(*) FROM truth_pairs t JOIN prepared l ON l.record_id = t.l "
        f"JOIN prepared r ON r.record_id = t.r WHERE {agree}"
    ).fetchall()[0][0]
    return int(records), int(total), int(compared), int(wider)


def _truth_check(seen: _Seen, out: Path, path: Path, truth: Mapping[str, str]) -> TruthCheck:
    """The exact blocking recall (true pairs scored / true pairs) and the clustering's
    pairwise quality against ``truth`` (read from the linked folder's ``matches``)."""
    records, true_pairs, compared, wider = seen.true_pairs
    with (out / "matches.csv").open(encoding="utf-8", newline="") as handle:
        predicted = {r["record_id"]: r["person_id"] for r in csv.DictReader(handle)}
    quality = pairwise_quality(predicted, truth)
    return TruthCheck(
        file=str(path),
        records=records,
        true_pairs=true_pairs,
        true_pairs_compared=compared,
        blocking_recall=round(compared / true_pairs, 6) if true_pairs else 1.0,
        true_pairs_in_wider_keys=wider,
        precision=round(quality["precision"], 6),
        recall=round(quality["recall"], 6),
        f1=round(quality["f1"], 6),
    )


# ---------------------------------------------------------------------------------------------
# the model's levels


def _levels_table(run: ModelRun) -> list[LevelRow]:
    start = {
        (c["output_column_name"], lv.get("label_for_charts")): lv
        for c in run.start["comparisons"]
        for lv in c["comparison_levels"]
    }
    rows: list[LevelRow] = []
    for comparison in run.model["comparisons"]:
        name = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            label = str(level.get("label_for_charts"))
            if level.get("is_null_level"):
                rows.append(
                    LevelRow(field=name, level=label, agrees=None, m_probability=None,
                             u_probability=None, bayes_factor=None, match_weight=None,
                             m_source="model", u_source="model", tf_adjusted=False)
                )  # fmt: skip
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            before = start.get((name, label), {})
            bf = m / u if m and u else None
            rows.append(
                LevelRow(
                    field=name,
                    level=label,
                    agrees=LEVEL_AGREES.get(label),
                    m_probability=m,
                    u_probability=u,
                    bayes_factor=bf,
                    match_weight=round(math.log2(bf), 4) if bf else None,
                    m_source=_source(run, m, before.get("m_probability")),
                    u_source=_source(run, u, before.get("u_probability")),
                    tf_adjusted=bool(level.get("tf_adjustment_column")),
                )
            )
    return rows


def _source(run: ModelRun, value: Any, before: Any) -> str:
    if not run.trained:
        return "model"
    return "kept" if value == before else "estimated"


def _build(summary: LinkSummary, seen: _Seen, truth: TruthCheck | None) -> LinkReport:
    run = seen.run
    assert run is not None and seen.recall is not None
    n = summary.records
    prior = float(run.model.get("probability_two_random_records_match") or 0.0)
    return LinkReport(
        records=n,
        pairs_possible=n * (n - 1) // 2,
        pairs_scored=summary.pairs_scored,
        pairs_over_threshold=seen.over_threshold,
        pairs_joined=summary.pairs_joined,
        pairs_refused_phone_only=summary.pairs_refused_phone_only,
        pairs_refused_misused_phone=summary.pairs_refused_misused_phone,
        pairs_refused_id_conflict=summary.pairs_refused_id_conflict,
        pairs_refused_birth_conflict=summary.pairs_refused_birth_conflict,
        threshold=summary.threshold,
        model="trained on these records" if summary.trained else summary.settings,
        trained=summary.trained,
        seed=summary.seed,
        prior=prior,
        prior_source=_source(run, prior, run.start.get("probability_two_random_records_match")),
        blocking=seen.blocking,
        recall=seen.recall,
        truth=truth,
        levels=_levels_table(run),
        files=[],
        notes=[*summary.notes, *seen.notes],
    )


# ---------------------------------------------------------------------------------------------
# Splink's own charts


def _splink_charts_or_note(
    run: ModelRun, blocking: Sequence[BlockingRule], notes: list[str]
) -> dict[str, str]:
    """Splink's charts; if Splink cannot draw them for this model (a ``--settings`` model
    it does not chart), a note says so and the report goes on without them."""
    import duckdb
    from splink.internals.exceptions import SplinkException

    try:
        return _splink_charts(run, blocking)
    except (SplinkException, duckdb.Error, KeyError, TypeError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        notes.append(f"Splink's charts not written: {text[0] if text else type(exc).__name__}")
        return {}


def _splink_charts(run: ModelRun, blocking: Sequence[BlockingRule]) -> dict[str, str]:
    """Splink's charts of this run as offline HTML files (name -> text)."""
    from splink.internals.charts import CumulativeBlockingRuleComparisonsGeneratedChart
    from splink.internals.duckdb.dataframe import DuckDBDataFrame

    linker = splink_linker(run.con, "prepared", run.scoring)
    charts = {
        "splink-match-weights.html": linker.visualisations.match_weights_chart(),
        "splink-m-u-parameters.html": linker.visualisations.m_u_parameters_chart(),
    }
    n: int = run.con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]
    charts["splink-comparisons-by-blocking-rule.html"] = (
        CumulativeBlockingRuleComparisonsGeneratedChart(
            [
                {
                    "blocking_rule": b.rule,
                    "marginal_comparison_count": b.pairs,
                    "cumulative_comparison_count": b.cumulative_pairs,
                    "total_possible_comparison_count": n * (n - 1) // 2,
                    "match_key": str(i),
                    "record_sample_proportion": 1.0,
                    "is_estimate": False,
                }
                for i, b in enumerate(blocking)
            ]
        )
    )
    out = {name: chart.to_html(inline=True) for name, chart in charts.items()}
    if not run.scored:
        return out
    predicted = DuckDBDataFrame("__splink__df_predict", "scored", linker._db_api)
    out["splink-match-weights-histogram.html"] = linker.visualisations.match_weights_histogram(
        predicted
    ).to_html(inline=True)
    examples = run.con.execute(
        "SELECT * FROM scored ORDER BY abs(match_probability - ?), record_id_l, record_id_r "
        "LIMIT 10",
        [run.threshold],
    ).fetchdf()
    out["splink-waterfall.html"] = linker.visualisations.waterfall_chart(
        json.loads(examples.to_json(orient="records"))
    ).to_html(inline=True)
    with tempfile.TemporaryDirectory() as tmp:  # Splink writes the dashboard to a file
        viewer = Path(tmp) / "viewer.html"
        linker.visualisations.comparison_viewer_dashboard(
            predicted, str(viewer), overwrite=True, num_example_rows=2
        )
        out["splink-comparison-viewer.html"] = viewer.read_text(encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# the drawings (matplotlib)


def _draw(folder: Path, seen: _Seen, summary: LinkSummary) -> list[str]:
    """The PNG and SVG charts in ``folder``; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    run = seen.run
    assert run is not None
    figures: dict[str, Any] = {}
    fig = Figure(figsize=(9, 7), layout="constrained")
    _draw_levels(fig.add_subplot(1, 1, 1), _levels_table(run), run)
    figures["match-weights"] = fig
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    _draw_distribution(fig.add_subplot(1, 1, 1), seen.weights, summary.threshold)
    figures["weight-distribution"] = fig
    if seen.closest is not None:
        fig = Figure(figsize=(9, 4.5), layout="constrained")
        _draw_waterfall(fig.add_subplot(1, 1, 1), seen.closest, run)
        figures["waterfall"] = fig
    written: list[str] = []
    for name, figure in figures.items():
        for ext in ("png", "svg"):
            metadata = {"Software": None} if ext == "png" else {"Date": None, "Creator": None}
            figure.savefig(folder / f"{name}.{ext}", format=ext, dpi=110, metadata=metadata)
            written.append(f"{name}.{ext}")
    return written


def _draw_levels(ax: Any, levels: Sequence[LevelRow], run: ModelRun) -> None:
    rows = [lv for lv in levels if lv.match_weight is not None]
    labels = [f"{lv.field}: {lv.level}" for lv in rows]
    weights = [lv.match_weight or 0.0 for lv in rows]
    colors = ["#2b8a3e" if w > 0 else "#c92a2a" for w in weights]
    y = np.arange(len(rows))[::-1]
    shown = [max(-WEIGHT_AXIS, min(WEIGHT_AXIS, w)) for w in weights]
    bars = ax.barh(y, shown, color=colors)
    ax.bar_label(bars, labels=[f"{w:+.1f}" for w in weights], fontsize=7, padding=2)
    ax.set_xlim(-WEIGHT_AXIS - 6, WEIGHT_AXIS + 6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0, color="#444", linewidth=0.8)
    prior = float(run.model.get("probability_two_random_records_match") or 0.0)
    prior_weight = math.log2(prior / (1 - prior)) if 0 < prior < 1 else 0.0
    ax.set_xlabel(
        "match weight, log2(m/u), bits (before term-frequency adjustment; "
        f"bars cut at ±{WEIGHT_AXIS:g}, the label gives the value)"
    )
    ax.set_title(
        f"Match weight of each comparison level (prior {prior_weight:+.1f} bits; "
        f"{'estimated from these records' if run.trained else 'the model as given'})"
    )


def _draw_distribution(ax: Any, weights: np.ndarray, threshold: float) -> None:
    cut = math.log2(threshold / (1 - threshold)) if threshold < 1 else float("inf")
    if weights.size:
        bins = np.linspace(float(weights.min()), float(weights.max()) + 1e-9, 41)
        ax.hist(weights[weights < cut], bins=bins, color="#adb5bd", label="below the threshold")
        ax.hist(weights[weights >= cut], bins=bins, color="#1c7ed6", label="at or above")
        ax.legend()
    if math.isfinite(cut):
        ax.axvline(cut, color="#e8590c", linestyle="--", linewidth=1)
        ax.annotate(f"threshold {threshold:g} = {cut:+.1f} bits", (cut, 0.95),
                    xycoords=("data", "axes fraction"), ha="left", fontsize=8)  # fmt: skip
    ax.set_xlabel("match weight of the pair (bits)")
    ax.set_ylabel("pairs scored")
    ax.set_title(f"Match weights of the {weights.size} pairs the blocking rules compared")


def _draw_waterfall(ax: Any, closest: Mapping[str, Any], run: ModelRun) -> None:
    prior = float(run.model.get("probability_two_random_records_match") or 0.0)
    start = math.log2(prior / (1 - prior)) if 0 < prior < 1 else 0.0
    names = ["prior", *closest["fields"], "total"]
    steps = [start, *closest["fields"].values()]
    bottoms: list[float] = []
    level = 0.0
    for step in steps:
        bottoms.append(level if step >= 0 else level + step)
        level += step
    heights = [abs(s) for s in steps] + [abs(level)]
    bottoms.append(min(0.0, level))
    colors = ["#868e96"] + ["#2b8a3e" if s >= 0 else "#c92a2a" for s in steps[1:]] + ["#1c7ed6"]
    bars = ax.bar(range(len(names)), heights, bottom=bottoms, color=colors)
    ax.bar_label(bars, labels=[f"{v:+.1f}" for v in [*steps, level]], fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_ylabel("match weight (bits)")
    ax.set_title(
        f"Waterfall of the closest call: {closest['left']} / {closest['right']}, "
        f"weight {closest['weight']:+.2f}, probability {closest['probability']:.4f}"
    )


# ---------------------------------------------------------------------------------------------
# report.md


def _num(value: float | None, digits: int = 4) -> str:
    """A number for the tables: fixed with ``digits`` decimals (trailing zeros dropped), or
    in scientific notation when very small or large.

    >>> _num(0.123456), _num(2.0), _num(1.5e-7), _num(None)
    ('0.1235', '2', '1.500e-07', '')
    """
    if value is None:
        return ""
    if value == 0 or 1e-3 <= abs(value) < 1e9:
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return f"{value:.{digits - 1}e}"


def _misused_refusals(report: LinkReport) -> str:
    """The refusals of a merely similar name on a misused phone and of pairs joining two
    resident IDs, each said only when there are."""
    n, c = report.pairs_refused_misused_phone, report.pairs_refused_id_conflict
    b = report.pairs_refused_birth_conflict
    return (
        (f"; {n} refused: names only similar on a misused phone" if n else "")
        + (f"; {c} left out: they would join two resident ID numbers" if c else "")
        + (f"; {b} left out: they would join two birth dates" if b else "")
    )


def report_markdown(report: LinkReport) -> str:
    """``report.md``: the report as Markdown (tables, how each figure is obtained)."""
    lines = [
        "# Linkage report",
        "",
        f"- records: {report.records}; possible pairs: {report.pairs_possible}",
        f"- pairs scored (compared by the blocking rules): {report.pairs_scored}",
        f"- pairs at or above the threshold {report.threshold:g}: {report.pairs_over_threshold}"
        f" ({report.pairs_joined} joined, {report.pairs_refused_phone_only} refused: no name or"
        f" ID agreed{_misused_refusals(report)})",
        f"- model: {report.model}; prior (probability two random records match): "
        f"{_num(report.prior, 6)} ({report.prior_source}); seed {report.seed}",
        "",
        *_blocking_section(report),
        *_recall_section(report),
        *_levels_section(report),
        "## Files",
        "",
        *[f"- [{name}]({name})" for name in report.files],
        "",
    ]
    if report.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(lines)


def _blocking_section(report: LinkReport) -> list[str]:
    lines = [
        "## Comparisons per blocking rule",
        "",
        "Each pair is counted under the first rule that brings it together (Splink's "
        "`match_key`), the rules as they ran (capped by `--max-block-size`).",
        "",
        "| # | blocking rule | pairs | cumulative | at or above the threshold |",
        "|---|---|---|---|---|",
    ]
    for i, rule in enumerate(report.blocking):
        text = rule.rule.replace("|", "\\|")
        lines.append(
            f"| {i} | `{text}` | {rule.pairs} | {rule.cumulative_pairs} | "
            f"{rule.pairs_over_threshold} |"
        )
    lines += ["", "![match weights of the scored pairs](weight-distribution.png)", ""]
    return lines


def _recall_section(report: LinkReport) -> list[str]:
    r = report.recall
    lines = [
        "## Blocking recall (the share of true matches the rules compare)",
        "",
        f"- estimated: **{_num(r.recall_estimate)}** ({r.matches_compared} pairs over the "
        f"threshold compared; about {_num(r.matches_missed_estimate, 1)} missed, standard "
        f"error {_num(r.matches_missed_stderr, 1)})",
        f"- probed: {r.probed_pairs} pairs of the {r.wider_pairs} that agree on one of the "
        f"wider keys ({', '.join(r.wider_keys)}); {r.probed_pairs_not_blocked} of them not "
        f"compared by the rules, {r.probed_matches_not_blocked} of those over the threshold",
        f"- from the prior: {_num(r.recall_from_prior)} (expected matches among the compared "
        f"pairs {_num(r.expected_matches_compared, 1)} / expected among all pairs "
        f"{_num(r.expected_matches_prior, 1)})",
        "",
        f"How: {r.method}.",
        "",
        f"Limits: {r.limits}.",
        "",
    ]
    t = report.truth
    if t is not None:
        lines += [
            f"With the truth ({t.file}, {t.records} records): **exact blocking recall "
            f"{_num(t.blocking_recall)}** ({t.true_pairs_compared} of {t.true_pairs} true pairs "
            f"compared; {t.true_pairs_in_wider_keys} agree on a wider key); the clustering's "
            f"pairwise precision {_num(t.precision)}, recall {_num(t.recall)}, F1 {_num(t.f1)}.",
            "",
        ]
    return lines


def _levels_section(report: LinkReport) -> list[str]:
    lines = [
        "## The model: m and u per comparison level",
        "",
        "m: how often true matches are at the level; u: how often non-matches are; the "
        "Bayes factor m/u and the match weight log2(m/u) in bits (term-frequency adjusted "
        "levels vary around it with the value's frequency). Source: `estimated` from these "
        "records, `kept` from the starting model (training could not reach it, or it is "
        "equal), `model` (no training).",
        "",
        "| field | level | m | u | Bayes factor | weight (bits) | m from | u from | tf |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in report.levels:
        lines.append(
            f"| {lv.field} | {lv.level} | {_num(lv.m_probability, 6)} | "
            f"{_num(lv.u_probability, 6)} | {_num(lv.bayes_factor, 4)} | "
            f"{_num(lv.match_weight, 2)} | {lv.m_source if lv.m_probability is not None else ''} | "
            f"{lv.u_source if lv.u_probability is not None else ''} | "
            f"{'yes' if lv.tf_adjusted else ''} |"
        )
    lines += ["", "![match weight of each level](match-weights.png)", ""]
    lines += ["![the closest joined pair, field by field](waterfall.png)", ""]
    return lines
