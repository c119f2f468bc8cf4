#!/usr/bin/env python3
"""The re-audit of only what a correction changed on Spark (issue 23 item 4), against a full
Spark audit of the corrected folder, in the same session (docs/benchmarks.md).

Reads two folders of one dataset with Spark (``--before``: e.g. ``spillover synth --people
100000 --seed 1``; ``--after``: ``spillover remedy ... --apply`` of it), audits ``before``
once (its rows kept as a DataFrame, as an earlier ``audit --engine spark`` would give
them), then alternates, ``--rounds`` times:

- full:        ``audit_frames`` of ``after`` (checked), every row computed (a ``noop`` write);
- incremental: ``reaudit_frames`` (the difference by anti joins, the entries it reaches by
               joins, the pass restricted to them, the rest carried over by join; its rows
               come back computed), every row read the same way.

Each side releases what it cached or checkpointed before the next (``Kept``; the re-audit
does it itself), so that no round runs in a session fuller than the one before: the
figures printed after each round are the RDDs the session still holds (one: the kept
audit of ``before``).

Checks once that both give the same rows (two anti joins, null-safe, empty) and prints how
many entries were re-scored, the Spark jobs of each (``statusTracker``) and ``uptime``
before and after (compare the two figures of one run, not across runs).

Usage::

    python benchmarks/bench_spark_changes.py --before /tmp/a --after /tmp/b [--rounds 2]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from spillover.policy import default_policy


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--memory", default="4g", help="spark.driver.memory")
    args = ap.parse_args()
    from spillover.audit.spark import audit_frames, read_tables, session
    from spillover.audit.spark.incremental import reaudit_frames
    from spillover.audit.spark.kept import Kept, checkpoint, held_rdds
    from spillover.audit.spark.write import size_shuffles

    policy = default_policy()
    print("uptime:", _uptime(), flush=True)
    spark = session(
        args.master,
        {
            "spark.driver.memory": args.memory,
            "spark.ui.enabled": "false",
            "spark.ui.retainedJobs": "100000",
        },
        app="spillover-bench-changes",
    )
    size_shuffles(spark, args.after)
    tracker = spark.sparkContext.statusTracker()

    def timed(label, fn):  # type: ignore[no-untyped-def]
        first = max(tracker.getJobIdsForGroup(None), default=-1) + 1
        began = time.perf_counter()
        out = fn()
        took = time.perf_counter() - began
        jobs = len([j for j in tracker.getJobIdsForGroup(None) if j >= first])
        print(f"  {label:<40} {took:8.1f} s  {jobs:5d} jobs", flush=True)
        return out, took

    def compute(df):  # type: ignore[no-untyped-def]
        df.write.format("noop").mode("overwrite").save()
        return df

    keep_a, for_check = Kept(), Kept()
    with Kept():  # its tables and layers released; its rows kept (keep_a)
        rows_a, _ = timed(
            "full audit of before (once, kept)",
            lambda: audit_frames(spark, read_tables(spark, args.before), policy),
        )
        with keep_a.active():
            rows_a = checkpoint(rows_a)
    best: dict[str, float] = {}
    for r in range(1, args.rounds + 1):
        print(f"round {r}:  [{_uptime()}]", flush=True)
        with Kept():  # the full audit's tables and layers, released after the round
            full, t_full = timed(
                "full Spark audit of after",
                lambda: compute(audit_frames(spark, read_tables(spark, args.after), policy)),
            )
            if r == 1:
                with for_check.active():  # kept for the check, released after it
                    full = checkpoint(full)
        inc, t_inc = timed(
            "incremental re-audit of after",
            lambda: reaudit_frames(
                spark,
                read_tables(spark, args.before),
                rows_a,
                read_tables(spark, args.after),
                policy,
            ),
        )
        _, t_rows = timed("  its rows read", lambda inc=inc: compute(inc.rows))
        best["full"] = min(best.get("full", t_full), t_full)
        best["incremental"] = min(best.get("incremental", t_inc + t_rows), t_inc + t_rows)
        if r == 1:
            n = inc.rescored.count()
            counts = inc.changes.counts()
            a, b = full, inc.rows
            on = [a[c].eqNullSafe(b[c]) for c in a.columns]
            same = (
                a.count() == b.count()
                and a.join(b, on, "left_anti").isEmpty()
                and b.join(a, on, "left_anti").isEmpty()
            )
            changed = {k: v for k, v in counts.items() if v}
            print(
                f"  re-scored {n:,} of {a.count():,} entries; changed rows {changed}; "
                f"rows identical to the full audit: {same}",
                flush=True,
            )
            for_check.release()
        inc.release()
        print(f"  RDDs the session holds after the round: {len(held_rdds(spark))}", flush=True)
    print(
        f"best: full {best['full']:.1f} s, incremental {best['incremental']:.1f} s "
        f"(x{best['full'] / best['incremental']:.2f})"
    )
    spark.stop()
    print("uptime:", _uptime())


if __name__ == "__main__":
    main()
