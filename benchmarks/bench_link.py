"""Linkage quality and speed: pairwise precision, recall and F1 against the synthetic truth.

    python benchmarks/bench_link.py --records 100000 [--records 1000000] [--model both]

For each size: a synthetic folder with customer records (spillover synth --records,
about two records per person), then spillover link with the shipped model and/or (--model) a model estimated from the
records (spillover link --train), timed; then the quality of the
clustering against ground_truth/records.csv, and how many joined pairs rest on a
phone alone between records of different people (must be 0).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from spillover.link.resolve import link, pairwise_quality
from spillover.synth.generate import generate


def _column(path: Path, key: str, value: str) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row[key]: row[value] for row in csv.DictReader(handle)}


def run(records: int, seed: int, models: list[bool], tmp: Path) -> None:
    people = max(10, records // 2)
    data = tmp / f"synth-{records}"
    began = time.perf_counter()
    made = generate(people, seed, data, records=True)
    synth_s = time.perf_counter() - began
    truth = _column(data / "ground_truth" / "records.csv", "record_id", "person_id")
    print(f"records={made.counts['records']} people={people} synth={synth_s:.1f}s")
    for trained in models:
        out = tmp / f"linked-{records}-{int(trained)}"
        summary = link(data, out, train=trained, seed=seed)
        predicted = _column(out / "matches.csv", "record_id", "person_id")  # every record
        q = pairwise_quality(predicted, truth)
        with (out / "matches.csv").open(encoding="utf-8", newline="") as handle:
            phone_only = sum(
                1 for row in csv.DictReader(handle) if row["matched_by"] == "phone_only"
            )
        print(
            f"  model={'trained' if trained else 'shipped'} link={summary.elapsed:.1f}s "
            f"precision={q['precision']:.4f} recall={q['recall']:.4f} f1={q['f1']:.4f} "
            f"true_pairs={q['true_pairs']:.0f} predicted_pairs={q['predicted_pairs']:.0f} "
            f"scored={summary.pairs_scored} joined={summary.pairs_joined} "
            f"refused_no_name_or_id={summary.pairs_refused_phone_only} phone_only_matches={phone_only}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, action="append", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", choices=["shipped", "trained", "both"], default="shipped")
    args = parser.parse_args()
    print("load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        for records in args.records or [100_000]:
            models = {"shipped": [False], "trained": [True], "both": [False, True]}[args.model]
            run(records, args.seed, models, Path(tmp))
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
