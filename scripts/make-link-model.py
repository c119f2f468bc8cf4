"""Make the Splink model shipped with spillover (src/spillover/link/splink-v5.json).

    python scripts/make-link-model.py [--people 20000] [--seed 11]

The comparisons are built from Splink's own comparison-level library (exact, Jaro-Winkler,
Damerau-Levenshtein, array intersection), relabelled with spillover's level labels
(docs/contract.md, ``waterfall``); the parameters are estimated, without labels, from a
synthetic records folder (``spillover synth --records``) by ``spillover link --train``.
The shipped model is the fallback for folders too small to estimate their own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import splink.comparison_level_library as cll

from spillover.link.resolve import WIDE_RULE_KEY, link
from spillover.synth.generate import generate

OUT = Path(__file__).resolve().parents[1] / "src" / "spillover" / "link" / "splink-v5.json"


def _level(level: Any, label: str, tf: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = level.get_comparison_level("duckdb").as_dict()
    out["label_for_charts"] = label
    if tf is not None:
        out["tf_adjustment_column"] = tf
        out["tf_adjustment_weight"] = 1.0
    return out


def _comparison(field: str, levels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"output_column_name": field, "comparison_levels": levels}


def comparisons() -> list[dict[str, Any]]:
    """The five comparisons of spillover.rules.MATCH_FIELDS, most specific level first."""
    null, else_ = cll.NullLevel, cll.ElseLevel
    dl, jw = cll.DamerauLevenshteinLevel, cll.JaroWinklerLevel
    return [
        _comparison(
            "id_number",
            [
                _level(null("id_number"), "missing"),
                _level(cll.ExactMatchLevel("id_number"), "exact"),
                _level(dl("id_number", 1), "close"),
                _level(dl("id_number", 2), "alike"),
                _level(else_(), "different"),
            ],
        ),
        _comparison(
            "name",
            [
                _level(null("name_key"), "missing"),
                # the term frequencies of the name as pinyin (how a platform writes a name
                # says nothing of whom it is) and, with its order undone, of the swapped
                # one; spillover.link.resolve._scale_term_frequencies measures them against
                # all the agreement on their column (Splink: against the u of the column's
                # exact level, here only what the levels before it left)
                _level(cll.ExactMatchLevel("name_norm"), "exact", "name_key"),
                _level(cll.ExactMatchLevel("name_key"), "pinyin", "name_key"),
                _level(cll.ExactMatchLevel("name_canon"), "swapped", "name_canon"),
                _level(dl("name_key", 1), "close"),
                _level(
                    cll.Or(
                        jw("name_key", 0.92),
                        jw("name_canon", 0.92),
                        dl("name_key", 2),
                        dl("name_turned", 1),
                    ),
                    "similar",
                ),
                _level(cll.ArrayIntersectLevel("name_parts", 1), "partial"),
                _level(jw("name_canon", 0.8), "alike"),
                _level(else_(), "different"),
            ],
        ),
        _comparison(
            "phone",
            [
                _level(null("phone"), "missing"),
                _level(cll.ExactMatchLevel("phone"), "exact", "phone"),
                _level(else_(), "different"),
            ],
        ),
        _comparison(
            "birth_date",
            [
                _level(null("birth_date"), "missing"),
                _level(cll.ExactMatchLevel("birth_date"), "exact"),
                _level(dl("birth_date", 1), "close"),
                _level(else_(), "different"),
            ],
        ),
        _comparison(
            "city",
            [
                _level(null("city"), "missing"),
                _level(cll.ExactMatchLevel("city"), "exact"),
                _level(jw("city", 0.9), "similar"),
                _level(else_(), "different"),
            ],
        ),
    ]


BLOCKING = [
    "l.id_number = r.id_number",
    "l.phone = r.phone",
    "l.name_canon = r.name_canon AND l.city = r.city",
    "l.name_canon = r.name_canon AND l.birth_date = r.birth_date",
    # the name as pinyin in its written order: the forms name_canon cannot tell apart
    # (a joined name, "wangweifang"; given names split, "Wang Wei Fang") against the others
    "l.name_key = r.name_key AND l.city = r.city",
    "l.name_key = r.name_key AND l.birth_date = r.birth_date",
]

#: Wide rules (a birth date alone, a name alone, a name part and a city): used only on
#: records where they bring at most this many pairs per record together
#: (``spillover.link.resolve.WIDE_RULE_KEY``); they reach the pairs whose ID number (and
#: birth date) carry a typo. A birth date alone grows with the records (about 22,000 days:
#: 4.5 pairs per record at 200,000 records, 22 at a million), so it is wide too.
WIDE = {
    "l.birth_date = r.birth_date AND l.city = r.city": 5,
    "l.birth_date = r.birth_date": 5,
    "l.name_canon = r.name_canon": 5,
    "l.name_lo = r.name_lo AND l.city = r.city": 5,
    "l.name_hi = r.name_hi AND l.city = r.city": 5,
}


#: The m and u a level starts from (kept where training on synthetic records cannot reach).
BELIEF = {
    ("id_number", "exact"): (0.95, 1e-4),
    ("id_number", "close"): (0.02, 2e-6),
    ("id_number", "alike"): (0.005, 1e-5),
    ("id_number", "different"): (0.025, 0.9998),
    ("name", "exact"): (0.5, 1e-4),
    ("name", "pinyin"): (0.3, 1e-4),
    ("name", "swapped"): (0.05, 1e-5),
    ("name", "close"): (0.06, 6e-4),
    ("name", "similar"): (0.04, 5e-3),
    ("name", "partial"): (0.02, 0.06),
    ("name", "alike"): (0.01, 0.01),
    ("name", "different"): (0.02, 0.92),
    ("phone", "exact"): (0.8, 1e-4),
    ("phone", "different"): (0.2, 0.9999),
    ("birth_date", "exact"): (0.95, 1.5e-4),
    ("birth_date", "close"): (0.03, 2e-3),
    ("birth_date", "different"): (0.02, 0.998),
    ("city", "exact"): (0.85, 0.04),
    ("city", "similar"): (0.05, 0.01),
    ("city", "different"): (0.1, 0.95),
}

#: The least m of a level after training (a disagreement costs at most log2(u / floor)).
FLOOR = {
    ("id_number", "different"): 0.01,
    ("name", "different"): 0.02,
    ("name", "partial"): 0.02,
    ("name", "alike"): 0.01,
    ("birth_date", "different"): 0.01,
}


def untrained(prior: float = 1e-4) -> dict[str, Any]:
    return {
        "link_type": "dedupe_only",
        "probability_two_random_records_match": prior,
        "unique_id_column_name": "record_id",
        "sql_dialect": "duckdb",
        "em_convergence": 0.0001,
        "max_iterations": 25,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING
        ]
        + [
            {"blocking_rule": r, "sql_dialect": "duckdb", WIDE_RULE_KEY: k} for r, k in WIDE.items()
        ],
        "comparisons": comparisons(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = Path(tmp) / "untrained.json"
        model = untrained()
        # levels synthetic records never reach (no order swaps, no two typos) keep these
        for comparison in model["comparisons"]:
            for lv in comparison["comparison_levels"]:
                if not lv.get("is_null_level"):
                    m, u = BELIEF[(comparison["output_column_name"], lv["label_for_charts"])]
                    lv["m_probability"], lv["u_probability"] = m, u
        start.write_text(json.dumps(model, indent=2), encoding="utf-8")
        data = generate(args.people, args.seed, Path(tmp) / "synth", records=True).out
        summary = link(
            data, Path(tmp) / "out", settings=start, train=True, seed=args.seed,
            save_settings=OUT,
        )  # fmt: skip
    trained = json.loads(OUT.read_text(encoding="utf-8"))
    for comparison in trained["comparisons"]:
        for lv in comparison["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            # synthetic people never disagree with themselves as much as real ones do:
            # no level may rule a match out by more than its floor
            floor = FLOOR.get((comparison["output_column_name"], lv["label_for_charts"]), 0.001)
            lv["m_probability"] = max(lv["m_probability"], floor)
    OUT.write_text(json.dumps(trained, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({summary.records} records, notes: {summary.notes})")


if __name__ == "__main__":
    main()
