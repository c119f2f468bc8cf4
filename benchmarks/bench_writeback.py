"""Benchmark of issue 22: ``audit --write-back`` against the Neo4j audit, in one run.

Needs an empty scratch Neo4j in NEO4J_URI (it is wiped first and left holding the data).

    python benchmarks/bench_writeback.py --people 20000 --seed 1 --rounds 3
    python benchmarks/bench_writeback.py --people 100000 --seed 1 --rounds 1 --per-entry 0
    python benchmarks/bench_writeback.py --people 20000 --rounds 3 --per-entry 0 \\
        --baseline-src /work/main/src [--fresh]
    python benchmarks/bench_writeback.py --people 20000 --rounds 3 --per-entry 0 \\
        --baseline-src /work/main/src --reruns 1 --floor

Ingests a synthetic population once, then alternates, ``--rounds`` times: the Neo4j audit
(read the graph + the batch pass + the audit file: ``spillover audit`` over Neo4j, the
floor) and the write-back (read + every entry's paths from one batch pass + the writes);
``--per-entry N`` adds N write-backs with one search per entry (the method before), and
``--baseline-src DIR`` a write-back with the code of ``DIR`` (e.g. ``main``'s ``src``) right
after each one of this tree (A/B on the same Neo4j). Each run is a fresh interpreter (its
figures from inside it; the import is not counted). The first write-back after the ingest
writes every result; the later ones find the results of the one before: with ``--fresh``
every ``TRACED_TO`` is deleted before each write-back (not timed), so that each one
creates them all, as on a fresh graph. ``--reruns N`` runs this tree's write-back N more
times right after its first in each round (with ``--baseline-src`` the baseline then runs
first, so this tree's first finds the baseline's results, as after an upgrade, and the
reruns find its own digests); ``--floor`` times what a rerun must at least write: every
entry's ``audited_at`` alone, in the same batches. A write-back that finds the graph the
last one read (its seal holds) makes no path (``graph_unchanged`` in its line); with
``--touch`` a person nobody's path meets is added or taken away before each one, so that
every write-back makes every path (the reruns as after a change elsewhere in the graph).

Prints ``uptime`` before and after and one JSON line per run, then the median ratio of the
write-back to the Neo4j audit (and of this tree's write-back to the baseline's), and
checks that every write-back stored the same graph
(:func:`spillover.neo4j.writeback.stored_results`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from spillover.neo4j.ingest import ingest_folder, wipe
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import connect
from spillover.neo4j.writeback import stored_results
from spillover.synth.generate import generate

AUDIT = """
import json, sys, time
from spillover.audit.batch import audit
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import Neo4jBackend, connect
settings = Neo4jSettings.from_env()
driver = connect(settings)
t, cpu = time.perf_counter(), time.process_time()
audit(Neo4jBackend(driver, settings.database), sys.argv[1])
print(json.dumps({"s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu}))
driver.close()
"""

WRITE_BACK = """
import json, sys, time
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import Neo4jBackend, connect
from spillover.neo4j.writeback import DEFAULT_BATCH, write_back
settings = Neo4jSettings.from_env()
driver = connect(settings)
batch = int(sys.argv[2]) or DEFAULT_BATCH
cpu = time.process_time()
s = write_back(Neo4jBackend(driver, settings.database), method=sys.argv[1], batch_size=batch)
print(json.dumps({
    "s": s.seconds,
    "cpu_s": time.process_time() - cpu,
    "read_s": s.read_seconds,
    # these two overlap (a batch is written while the next is made)
    "paths_s": s.explain_seconds,
    "write_s": s.write_seconds,
    "after_read_s": s.seconds - s.read_seconds,
    "entries": s.entries,
    "traces": s.traces,
    "unchanged": getattr(s, "entries_unchanged", None),
    "graph_unchanged": getattr(s, "graph_unchanged", None),
    "graph_read": getattr(s, "graph_read", None),
}))
driver.close()
"""

#: --floor: what a rerun must at least write, alone: every entry's audited_at (and its
#: audit_run set to itself, so that the digests stay bound to their run), in batches of 1,000,
#: each in its managed transaction
FLOOR = """
import json, time
from datetime import UTC, datetime
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import connect
settings = Neo4jSettings.from_env()
driver = connect(settings)
records, _, _ = driver.execute_query("MATCH (e:Entry) RETURN e.id AS id ORDER BY id",
                                     database_=settings.database)
ids = [r["id"] for r in records]
SET = ("UNWIND $ids AS id MATCH (e:Entry {id: id}) "
       "SET e.audited_at = $at, e.audit_run = e.audit_run RETURN count(*)")
t = time.perf_counter()
for lo in range(0, len(ids), 1000):
    with driver.session(database=settings.database) as session:
        session.execute_write(
            lambda tx: tx.run(SET, ids=ids[lo:lo + 1000], at=datetime.now(UTC)).consume())
print(json.dumps({"s": time.perf_counter() - t, "entries": len(ids)}))
driver.close()
"""

#: --touch: a person nobody's path meets, added when absent and removed when present
TOUCH = """
OPTIONAL MATCH (p:Person {id: 'bench-touch'})
FOREACH (_ IN CASE WHEN p IS NULL THEN [1] ELSE [] END | CREATE (:Person {id: 'bench-touch'}))
FOREACH (_ IN CASE WHEN p IS NULL THEN [] ELSE [1] END | DELETE p)
"""

#: --fresh: every TRACED_TO deleted (in transactions of 10,000), as before a first write-back
DELETE_TRACES = "MATCH ()-[t:TRACED_TO]->() CALL (t) { DELETE t } IN TRANSACTIONS OF 10000 ROWS"


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _child(code: str, *args: str, src: Path | None = None) -> dict[str, Any]:
    """Run a snippet in a fresh interpreter (``PYTHONPATH`` ``src`` if given); its JSON line."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def _state(driver: Any, db: str) -> int:
    """A digest of the stored results (every entry's, and its TRACED_TO: ranks, routes)."""
    return hash(json.dumps(stored_results(driver, db), sort_keys=True, default=str))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-entry", type=int, default=1, help="write-backs per entry")
    parser.add_argument("--folder", type=Path, default=None, help="reuse a synth folder")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="A/B: also the write-back of this src"
    )
    parser.add_argument("--fresh", action="store_true", help="no TRACED_TO before each one")
    parser.add_argument("--batch", type=int, default=0, help="entries per write transaction")
    parser.add_argument(
        "--reruns",
        type=int,
        default=0,
        help="this tree's write-back again N times right after its first in each round "
        "(with --baseline-src the baseline runs first in the round, so this tree's first "
        "finds the baseline's results: as after an upgrade; the reruns find its own)",
    )
    parser.add_argument("--floor", action="store_true", help="time the rerun's floor too")
    parser.add_argument(
        "--touch",
        action="store_true",
        help="before each write-back (not timed) add a person nobody's path meets, or take "
        "it away: the graph is not the one the last run read, so each one makes every path "
        "(the same results)",
    )
    return parser.parse_args()


def main() -> None:
    args = _parse()
    settings = Neo4jSettings.from_env()
    if settings is None:
        raise SystemExit("set NEO4J_URI (a scratch database: it is wiped)")
    print(_uptime(), flush=True)
    driver = connect(settings)
    db = settings.database
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-writeback-")) / "data"
    if not folder.exists():
        generate(args.people, args.seed, folder)
    if not args.skip_ingest:
        wipe(driver, db)
        t = time.perf_counter()
        ingest_folder(folder, driver, db)
        print(json.dumps({"ingest_s": round(time.perf_counter() - t, 1)}), flush=True)
    out = Path(tempfile.mkdtemp(prefix="bench-writeback-out-")) / "audit.csv"
    audits: list[float] = []
    times: dict[str, list[float]] = {}
    states: dict[str, int] = {}
    for round_ in range(args.rounds):
        audit = _child(AUDIT, str(out))
        audits.append(audit["s"])
        print(json.dumps({"round": round_, "run": "neo4j audit", **audit}), flush=True)
        runs: list[tuple[str, Path | None]] = [("pass", None)] + [("rerun", None)] * args.reruns
        if args.baseline_src is not None:
            baseline = ("pass", args.baseline_src)
            runs = [baseline, *runs] if args.reruns else [*runs, baseline]
        if round_ < args.per_entry:
            runs.append(("per-entry", None))
        for method, src in runs:
            if args.fresh:
                with driver.session(database=db) as session:  # CALL IN TRANSACTIONS: auto-commit
                    session.run(DELETE_TRACES).consume()
            if args.touch:
                driver.execute_query(TOUCH, database_=db)
            label = f"write-back {method}" + (" baseline" if src is not None else "")
            row = _child(WRITE_BACK, method.replace("rerun", "pass"), str(args.batch), src=src)
            times.setdefault(label, []).append(row["s"])
            row["ratio_to_neo4j_audit"] = round(row["s"] / audit["s"], 2)
            states[f"{label} round {round_}"] = _state(driver, db)
            print(json.dumps({"round": round_, "run": label, **row}), flush=True)
        if args.floor:
            floor = _child(FLOOR)
            times.setdefault("floor", []).append(floor["s"])
            print(json.dumps({"round": round_, "run": "floor (SET audited_at)", **floor}))
    summary: dict[str, Any] = {
        "people": args.people,
        "fresh": args.fresh,
        "neo4j_audit_s_median": round(statistics.median(audits), 2),
    }
    # the keys of the runs before the A/B (the write-back of this tree)
    summary["write_back_s_median"] = round(statistics.median(times["write-back pass"]), 2)
    for label, runs_s in times.items():
        key = label.replace(" ", "_").replace("-", "_")
        summary[f"{key}_s_median"] = round(statistics.median(runs_s), 2)
        if len(runs_s) == len(audits):
            ratios = [w / a for w, a in zip(runs_s, audits, strict=True)]
            summary[f"{key}_over_neo4j_audit_median"] = round(statistics.median(ratios), 2)
    summary["write_back_over_neo4j_audit_median"] = summary.pop(
        "write_back_pass_over_neo4j_audit_median"
    )
    if args.baseline_src is not None:
        ours, base = times["write-back pass"], times["write-back pass baseline"]
        ab = [o / b for o, b in zip(ours, base, strict=True)]
        summary["write_back_over_baseline_median"] = round(statistics.median(ab), 2)
        if args.reruns:
            again = times["write-back rerun"][:: args.reruns]
            ab = [o / b for o, b in zip(again, base, strict=True)]
            summary["write_back_rerun_over_baseline_median"] = round(statistics.median(ab), 2)
    summary["same_graph_every_run"] = len(set(states.values())) == 1
    summary["cores"] = os.cpu_count()
    print(json.dumps(summary))
    print(_uptime())
    driver.close()


if __name__ == "__main__":
    main()
