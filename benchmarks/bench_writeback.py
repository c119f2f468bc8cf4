"""Benchmark of issue 22 item 1: ``audit --write-back`` against the Neo4j audit, in one run.

Needs an empty scratch Neo4j in NEO4J_URI (it is wiped first and left holding the data).

    python benchmarks/bench_writeback.py --people 20000 --seed 1 --rounds 3
    python benchmarks/bench_writeback.py --people 100000 --seed 1 --rounds 1 --per-entry 0

Ingests a synthetic population once, then alternates, ``--rounds`` times: the Neo4j audit
(read the graph + the batch pass + the audit file: ``spillover audit`` over Neo4j, the
floor) and the write-back (read + every entry's paths from one batch pass + the writes);
``--per-entry N`` adds N write-backs with one search per entry (the method before). Prints
``uptime`` before and after and one JSON line per run, then the median ratio of the
write-back to the Neo4j audit, and checks that both methods stored the same graph.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from spillover.audit.batch import audit
from spillover.neo4j.ingest import ingest_folder, wipe
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import Neo4jBackend, connect
from spillover.neo4j.writeback import write_back
from spillover.synth.generate import generate


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _state(driver: Any, db: str) -> int:
    """A digest of every entry's stored results and TRACED_TO (ranks, routes)."""
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry) OPTIONAL MATCH (e)-[t:TRACED_TO]->(l:Loan) "
        "WITH e, t, l ORDER BY e.id, t.rank "
        "RETURN e.id AS id, e {.*, audited_at: null, audit_run: null} AS props, "
        "collect([l.id, t {.*}]) AS traces ORDER BY id",
        database_=db,
    )
    return hash(json.dumps([r.data() for r in records], sort_keys=True, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-entry", type=int, default=1, help="write-backs per entry")
    parser.add_argument("--folder", type=Path, default=None, help="reuse a synth folder")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
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
    backend = Neo4jBackend(driver, db)
    out = Path(tempfile.mkdtemp(prefix="bench-writeback-out-")) / "audit.csv"
    audits, passes, states = [], [], {}
    for round_ in range(args.rounds):
        t = time.perf_counter()
        cpu = time.process_time()
        audit(backend, out)
        audits.append(time.perf_counter() - t)
        print(
            json.dumps(
                {
                    "round": round_,
                    "run": "neo4j audit",
                    "s": round(audits[-1], 2),
                    "cpu_s": round(time.process_time() - cpu, 2),
                }
            ),
            flush=True,
        )
        runs = ["pass"] + (["per-entry"] if round_ < args.per_entry else [])
        for method in runs:
            cpu = time.process_time()
            summary = write_back(backend, method=method)
            row = {
                "round": round_,
                "run": f"write-back {method}",
                "s": round(summary.seconds, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
                "read_s": round(summary.read_seconds, 2),
                # these two overlap (a batch is written while the next is made)
                "paths_s": round(summary.explain_seconds, 2),
                "write_s": round(summary.write_seconds, 2),
                "after_read_s": round(summary.seconds - summary.read_seconds, 2),
                "entries": summary.entries,
                "traces": summary.traces,
            }
            if method == "pass":
                passes.append(summary.seconds)
                row["ratio_to_neo4j_audit"] = round(summary.seconds / audits[-1], 2)
            states.setdefault(method, _state(driver, db))
            print(json.dumps(row), flush=True)
    ratio = statistics.median(p / a for p, a in zip(passes, audits, strict=True))
    print(
        json.dumps(
            {
                "people": args.people,
                "neo4j_audit_s_median": round(statistics.median(audits), 2),
                "write_back_s_median": round(statistics.median(passes), 2),
                "write_back_over_neo4j_audit_median": round(ratio, 2),
                "same_graph_both_methods": len(set(states.values())) == 1,
                "cores": os.cpu_count(),
            }
        )
    )
    print(_uptime())
    driver.close()


if __name__ == "__main__":
    main()
