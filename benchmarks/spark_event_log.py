"""Where a Spark audit's time went, from Spark's event log (docs/benchmarks.md, "Spark at 1M").

    python benchmarks/spark_event_log.py DIR/events_1_local-...zstd [--top 15]

Reads one event log (``bench_spark.py --event-log DIR``; zstd-compressed files through the
``zstd`` program) and prints: the totals (tasks' run and CPU seconds, GC, shuffle bytes,
spills), the stages with the most run time (tasks, wall, run, CPU, GC, median and slowest
task, input, shuffle read and written), every SQL execution (its call site, wall, jobs,
run and CPU seconds, shuffle written) and the time no stage ran (the driver between jobs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from collections import Counter, defaultdict
from typing import Any


def _events(path: str) -> list[dict[str, Any]]:
    if path.endswith(".zstd"):
        text = subprocess.run(["zstd", "-d", "-c", path], capture_output=True, check=True).stdout
        lines = text.decode().splitlines()
    else:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _site(text: str) -> str:
    return text.rsplit("/", 1)[-1][:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    stage_sql: dict[int, str | None] = {}
    stages: dict[int, dict[str, Any]] = {}
    tasks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    sqls: dict[int, dict[str, Any]] = {}
    jobs: Counter[str | None] = Counter()
    for e in _events(args.log):
        kind = e["Event"]
        if kind == "SparkListenerJobStart":
            sql = e.get("Properties", {}).get("spark.sql.execution.id")
            jobs[sql] += 1
            for s in e["Stage IDs"]:
                stage_sql[s] = sql
        elif kind == "SparkListenerStageCompleted":
            stages[e["Stage Info"]["Stage ID"]] = e["Stage Info"]
        elif kind == "SparkListenerTaskEnd" and e.get("Task Metrics"):
            tasks[e["Stage ID"]].append(e)
        elif kind.endswith("SQLExecutionStart"):
            sqls[e["executionId"]] = {"start": e["time"], "site": e["description"]}
        elif kind.endswith("SQLExecutionEnd"):
            sqls[e["executionId"]]["end"] = e["time"]
    rows = []
    for sid, ts in tasks.items():
        m = [t["Task Metrics"] for t in ts]
        took = [(t["Task Info"]["Finish Time"] - t["Task Info"]["Launch Time"]) / 1e3 for t in ts]
        info = stages.get(sid, {})
        rows.append(
            {
                "stage": sid,
                "sql": stage_sql.get(sid),
                "tasks": len(ts),
                "wall": (info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1e3,
                "start": info.get("Submission Time", 0),
                "end": info.get("Completion Time", 0),
                "run": sum(x["Executor Run Time"] for x in m) / 1e3,
                "cpu": sum(x["Executor CPU Time"] for x in m) / 1e9,
                "gc": sum(x["JVM GC Time"] for x in m) / 1e3,
                "median": statistics.median(took),
                "slowest": max(took),
                "in": sum(x["Input Metrics"]["Bytes Read"] for x in m) / 1e6,
                "read": sum(
                    x["Shuffle Read Metrics"]["Local Bytes Read"]
                    + x["Shuffle Read Metrics"]["Remote Bytes Read"]
                    for x in m
                )
                / 1e6,
                "written": sum(x["Shuffle Write Metrics"]["Shuffle Bytes Written"] for x in m)
                / 1e6,
                "spilled": sum(x["Disk Bytes Spilled"] + x["Memory Bytes Spilled"] for x in m)
                / 1e6,
            }
        )
    total = {k: sum(r[k] for r in rows) for k in ("run", "cpu", "gc", "written", "spilled")}
    print(
        f"{len(stages)} stages, {sum(r['tasks'] for r in rows)} tasks, {sum(jobs.values())} jobs, "
        f"{len(sqls)} SQL executions; tasks' run {total['run']:.1f} s, CPU {total['cpu']:.1f} s, "
        f"GC {total['gc']:.1f} s; shuffle written {total['written']:.0f} MB; "
        f"spilled {total['spilled']:.0f} MB"
    )
    print(f"\nthe {args.top} stages with the most run time")
    print("stage  sql tasks   wall    run    cpu    gc  median slowest   in MB  read MB  wrote MB")
    for r in sorted(rows, key=lambda r: -r["run"])[: args.top]:
        print(
            f"{r['stage']:>5} {r['sql'] or '-':>4} {r['tasks']:>5} {r['wall']:>6.1f} {r['run']:>6.1f} "
            f"{r['cpu']:>6.1f} {r['gc']:>5.1f} {r['median']:>7.1f} {r['slowest']:>7.1f} "
            f"{r['in']:>7.0f} {r['read']:>8.0f} {r['written']:>9.0f}"
        )
    print("\nSQL executions: wall, jobs, tasks' run and CPU, shuffle written, call site")
    by_sql: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        for k in ("run", "cpu", "written"):
            by_sql[str(r["sql"])][k] += r[k]
    for i, s in sorted(sqls.items()):
        c = by_sql[str(i)]
        print(
            f"{i:>4} {(s.get('end', s['start']) - s['start']) / 1e3:>7.1f} s {jobs[str(i)]:>3} jobs "
            f"run {c['run']:>6.1f} cpu {c['cpu']:>6.1f} wrote {c['written']:>6.0f} MB  {_site(s['site'])}"
        )
    spans = sorted((r["start"], r["end"]) for r in rows if r["start"])
    busy, cur = 0, list(spans[0])
    for a, b in spans[1:]:
        if a <= cur[1]:
            cur[1] = max(cur[1], b)
        else:
            busy, cur = busy + cur[1] - cur[0], [a, b]
    busy += cur[1] - cur[0]
    span = max(b for _, b in spans) - spans[0][0]
    print(
        f"\nfirst stage to last: {span / 1e3:.1f} s; some stage running {busy / 1e3:.1f} s; "
        f"none {(span - busy) / 1e3:.1f} s"
    )


if __name__ == "__main__":
    main()
