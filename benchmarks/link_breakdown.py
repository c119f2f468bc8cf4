"""Why linkage misses and why it wrongly joins, on synthetic records (issue 21).

    python benchmarks/link_breakdown.py --people 50000 [--model default|shipped|trained]
    python benchmarks/link_breakdown.py --records 1000000 --folder /tmp/synth-1m

Links a ``synth --records`` folder (kept in ``--folder`` to be reused) keeping every scored
pair (``link(..., on_model=...)``), then breaks the pairwise errors against
``ground_truth/records.csv`` down by cause:

- wrong joins (false positive pairs): the joined pairs that put two true people in one
  person (the "bad edges"), by the blocking rule that brought them (Splink's
  ``match_key``), their comparison levels, the names' shapes (``name_form``, typos), the
  phones' sources (own, second, shared: a misuse, hub, none);
- misses (false negative pairs): the true pairs left in two people, by whether they were
  compared at all (a blocking rule), scored below the threshold, or above it and refused
  by a rule; their levels (computed for the pairs no rule compared), name shapes, phones
  and missing fields.

Prints counts; no assertion (a measuring tool, not a test).
"""

from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from spillover.facts.model import MATCH_FIELDS
from spillover.link.resolve import ModelRun, link, pairwise_quality
from spillover.synth.generate import generate


def _arrow(con: Any, sql: str) -> pa.Table:
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _truth(data: Path) -> dict[str, dict[str, str]]:
    with (data / "ground_truth" / "records.csv").open(encoding="utf-8") as handle:
        return {r["record_id"]: r for r in csv.DictReader(handle)}


def _keep(store: Path) -> Any:
    def on_model(run: ModelRun) -> None:
        run.con.execute(f"COPY prepared TO '{store / 'prepared.parquet'}' (FORMAT parquet)")
        gammas = ", ".join(f"gamma_{f}" for f in MATCH_FIELDS)
        run.con.execute(
            "COPY (SELECT record_id_l, record_id_r, match_weight, match_probability, "
            f"match_key, {gammas} FROM scored) TO '{store / 'scored.parquet'}' "
            "(FORMAT parquet)"
        )
        rules = [
            r["blocking_rule"] if isinstance(r, dict) else r
            for r in run.scoring["blocking_rules_to_generate_predictions"]
        ]
        (store / "model.json").write_text(
            json.dumps({"model": run.model, "rules": rules}), encoding="utf-8"
        )

    return on_model


def _labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for c in model["comparisons"]:
        plain = [lv for lv in c["comparison_levels"] if not lv.get("is_null_level")]
        labels = {len(plain) - 1 - i: lv["label_for_charts"] for i, lv in enumerate(plain)}
        labels[-1] = "missing"
        out[c["output_column_name"]] = labels
    return out


def _level_sql(model: dict[str, Any]) -> str:
    """SELECT each field's level label over a view of pairs with ``<column>_l/_r``."""
    parts = []
    for c in model["comparisons"]:
        cases = " ".join(
            f"WHEN {lv['sql_condition']} THEN '{lv['label_for_charts']}'"
            for lv in c["comparison_levels"]
            if lv["sql_condition"].strip().upper() != "ELSE"
        )
        parts.append(f"CASE {cases} ELSE 'different' END AS {c['output_column_name']}")
    return ", ".join(parts)


def _pairs_in_groups(ids: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of positions with the same group (groups small)."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    bounds = np.r_[starts, g.size]
    ls, rs = [], []
    for a, b in itertools.pairwise(bounds):
        if b - a < 2:
            continue
        members = order[a:b]
        i, j = np.triu_indices(members.size, 1)
        ls.append(members[i])
        rs.append(members[j])
    if not ls:
        return np.array([], np.int64), np.array([], np.int64)
    return np.concatenate(ls), np.concatenate(rs)


def _shape(t: dict[str, str]) -> str:
    return t["name_form"] + ("+typo" if t["name_typo"] == "true" else "")


def _count(title: str, counter: collections.Counter[Any], total: int, top: int = 12) -> None:
    print(f"  {title}:")
    for key, n in counter.most_common(top):
        print(f"    {n:7d} {100 * n / max(total, 1):5.1f}%  {key}")


def analyse(data: Path, out: Path, store: Path, threshold: float = 0.9) -> None:
    truth = _truth(data)
    with (out / "matches.csv").open(encoding="utf-8") as handle:
        predicted = {r["record_id"]: r["person_id"] for r in csv.DictReader(handle)}
    q = pairwise_quality(predicted, {k: v["person_id"] for k, v in truth.items()})
    print(
        f"precision={q['precision']:.4f} recall={q['recall']:.4f} f1={q['f1']:.4f} "
        f"true={q['true_pairs']:.0f} predicted={q['predicted_pairs']:.0f} "
        f"wrong={q['predicted_pairs'] - q['correct_pairs']:.0f} "
        f"missed={q['true_pairs'] - q['correct_pairs']:.0f}"
    )
    meta = json.loads((store / "model.json").read_text(encoding="utf-8"))
    model, rules = meta["model"], meta["rules"]
    labels = _labels(model)
    ids = np.array(sorted(truth), dtype=object)
    pos = {r: i for i, r in enumerate(ids)}
    true_p = np.array([truth[r]["person_id"] for r in ids], dtype=object)
    pred_p = np.array([predicted[r] for r in ids], dtype=object)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE prepared AS SELECT * FROM '{store / 'prepared.parquet'}'")
    con.execute(f"CREATE TABLE scored AS SELECT * FROM '{store / 'scored.parquet'}'")

    # ---- wrong joins: joined edges (p >= threshold, same predicted person) across true people
    joined = _arrow(con, f"SELECT * FROM scored WHERE match_probability >= {threshold}")
    jl = np.array([pos[r] for r in joined["record_id_l"].to_pylist()])
    jr = np.array([pos[r] for r in joined["record_id_r"].to_pylist()])
    same_pred = pred_p[jl] == pred_p[jr]
    bad = same_pred & (true_p[jl] != true_p[jr])
    print(f"\nWRONG JOINS: {int(bad.sum())} joined pairs across two true people")
    # wrong pairs per bad edge's cluster
    rows = joined.filter(pa.array(bad)).to_pylist()
    by_rule: collections.Counter[Any] = collections.Counter()
    by_levels: collections.Counter[Any] = collections.Counter()
    by_shape: collections.Counter[Any] = collections.Counter()
    by_phone: collections.Counter[Any] = collections.Counter()
    for row in rows:
        a, b = truth[row["record_id_l"]], truth[row["record_id_r"]]
        by_rule[rules[int(row["match_key"])]] += 1
        by_levels[" ".join(f"{f}={labels[f][row[f'gamma_{f}']]}" for f in MATCH_FIELDS)] += 1
        by_shape[" / ".join(sorted((_shape(a), _shape(b))))] += 1
        by_phone[" / ".join(sorted((a["phone_source"], b["phone_source"])))] += 1
    total = len(rows)
    _count("by blocking rule", by_rule, total)
    _count("by levels", by_levels, total, 25)
    _count("by name shapes", by_shape, total)
    _count("by phone sources", by_phone, total)
    examples = rows[:40]
    if examples:
        wanted = {r for row in examples for r in (row["record_id_l"], row["record_id_r"])}
        written = con.execute(
            "SELECT record_id, name_norm, name_canon, id_number, phone, birth_date, city "
            f"FROM prepared WHERE record_id IN ({', '.join(repr(w) for w in wanted)})"
        ).fetchall()
        text = {w[0]: w[1:] for w in written}
        print("  examples:")
        for row in examples:
            levels = " ".join(f"{f[:5]}={labels[f][row[f'gamma_{f}']]}" for f in MATCH_FIELDS)
            print(
                f"    w={row['match_weight']:.1f} rule={int(row['match_key'])} {levels}\n"
                f"      {text[row['record_id_l']]}\n      {text[row['record_id_r']]}"
            )

    # ---- misses: true pairs in two predicted people
    tl, tr = _pairs_in_groups(ids, true_p)
    miss = pred_p[tl] != pred_p[tr]
    ml, mr = tl[miss], tr[miss]
    print(f"\nMISSES: {ml.size} true pairs in two people")
    con.register(
        "missed_arrow",
        pa.table({"l": pa.array(ids[ml].tolist()), "r": pa.array(ids[mr].tolist())}),
    )
    con.execute(
        "CREATE TABLE missed AS SELECT least(l, r) AS l, greatest(l, r) AS r FROM missed_arrow"
    )
    cols = _arrow(con, "SELECT * FROM prepared LIMIT 0").schema.names
    view = ", ".join(
        f"a.{c} AS {c}_l, b.{c} AS {c}_r" for c in cols if not c.startswith("blocking_over")
    )
    got = _arrow(
        con,
        f"SELECT m.l, m.r, s.match_weight, s.match_probability, s.match_key, "
        f"{_level_sql(model)} FROM (SELECT m.l, m.r, {view} FROM missed AS m "
        "JOIN prepared AS a ON a.record_id = m.l JOIN prepared AS b ON b.record_id = m.r) AS m "
        "LEFT JOIN scored AS s ON s.record_id_l = m.l AND s.record_id_r = m.r",
    ).to_pylist()
    stage: collections.Counter[Any] = collections.Counter()
    by_levels = collections.Counter()
    by_shape = collections.Counter()
    by_phone = collections.Counter()
    by_missing: collections.Counter[Any] = collections.Counter()
    by_levels_unblocked: collections.Counter[Any] = collections.Counter()
    by_levels_below: collections.Counter[Any] = collections.Counter()
    for row in got:
        a, b = truth[row["l"]], truth[row["r"]]
        if row["match_weight"] is None:
            s = "never compared"
        elif row["match_probability"] < threshold:
            s = "scored below the threshold"
        else:
            s = "above the threshold, refused by a rule / joined elsewhere"
        stage[s] += 1
        lv = " ".join(f"{f}={row[f]}" for f in MATCH_FIELDS)
        by_levels[lv] += 1
        if s == "never compared":
            by_levels_unblocked[lv] += 1
        elif s == "scored below the threshold":
            by_levels_below[lv] += 1
        by_shape[" / ".join(sorted((_shape(a), _shape(b))))] += 1
        by_phone[" / ".join(sorted((a["phone_source"], b["phone_source"])))] += 1
        by_missing[
            " ".join(f for f in MATCH_FIELDS if row[f] == "missing") or "(none missing)"
        ] += 1
    total = len(got)
    _count("by stage", stage, total)
    _count("never compared, by levels", by_levels_unblocked, total, 20)
    _count("scored below the threshold, by levels", by_levels_below, total, 20)
    _count("by name shapes", by_shape, total, 20)
    _count("by phone sources", by_phone, total)
    _count("by missing fields", by_missing, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=None, help="synthetic folder (reused)")
    parser.add_argument("--store", type=Path, default=None, help="keep the run here; reuse it")
    parser.add_argument("--model", choices=["default", "shipped", "trained"], default="default")
    args = parser.parse_args()
    people = args.people or max(10, (args.records or 200_000) // 2)
    print("load:", os.getloadavg(), flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.folder or tmp / "synth"
        if not (data / "records.csv").exists():
            generate(people, args.seed, data, records=True)
        store = args.store or tmp / "store"
        out = store / "out"
        if (out / "matches.csv").exists():
            analyse(data, out, store)
            return
        store.mkdir(parents=True, exist_ok=True)
        train = {"default": None, "shipped": False, "trained": True}[args.model]
        began = time.perf_counter()
        summary = link(data, out, train=train, seed=args.seed, on_model=_keep(store))
        print(
            f"linked {summary.records} records in {time.perf_counter() - began:.1f}s "
            f"(scored {summary.pairs_scored}, joined {summary.pairs_joined}, refused: "
            f"no name/id {summary.pairs_refused_phone_only}, misused phone "
            f"{summary.pairs_refused_misused_phone}, two ids {summary.pairs_refused_id_conflict}, "
            f"two births {summary.pairs_refused_birth_conflict})",
            flush=True,
        )
        for note in summary.notes:
            print("  note:", note)
        analyse(data, out, store)
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
