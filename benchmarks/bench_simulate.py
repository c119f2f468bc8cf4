"""Benchmark of issue 12: ``spillover simulate`` with every shipped rule, side by side.

    python benchmarks/bench_simulate.py --people 100000 --seed 1
    python benchmarks/bench_simulate.py --data /tmp/synth1m --out /tmp/run1m   # an existing folder

Generates a synthetic folder (unless ``--data`` is given), then times, in one process:
the baseline, one ``spillover audit`` pass over the recorded blacklist (read the
folder, one kernel pass); and the comparison of all shipped rules (read, prepare,
simulate + audit each rule, write blacklists, metrics and plots). Prints one JSON line:
seconds per stage and per rule, the comparison's ratio to the baseline, the entries per
rule, and the process's peak resident memory (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from spillover.audit.batch import audit_folder
from spillover.simulate.listing import shipped_rule_names
from spillover.simulate.run import simulate
from spillover.synth.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="Use this folder instead.")
    parser.add_argument("--out", type=Path, default=None, help="Keep the run here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = args.data
        if data is None:
            data = work / "data"
            generate(args.people, args.seed, data)
        t = time.perf_counter()
        summary = audit_folder(data, work / "audit.csv")
        baseline = time.perf_counter() - t
        t = time.perf_counter()
        run = simulate(data, shipped_rule_names(), args.out or work / "run", seed=args.seed)
        total = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "data": str(args.data or f"synth {args.people} people, seed {args.seed}"),
                "baseline_audit_s": round(baseline, 2),
                "baseline_entries": summary.rows,
                "simulate_s": round(total, 2),
                "ratio_to_baseline": round(total / baseline, 2),
                "rules": len(run.rules),
                "seconds": run.seconds,
                "entries": {m["rule"]: m["entries"] for m in run.metrics},
                "peak_rss_mb": round(peak_kb / 1024),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
