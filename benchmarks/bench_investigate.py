"""Benchmark of issue 9: ``audit --write-back`` and the saved queries' latency on Neo4j.

Needs an empty scratch Neo4j in NEO4J_URI (it is wiped first and left holding the data).

    python benchmarks/bench_investigate.py --people 100000 --seed 1 --samples 50

Prints one JSON line: ingest time, write-back time split into reading the graph,
explaining every entry (all paths) and writing, elements written per second (entries
updated plus TRACED_TO relationships created), and p50/p99 latency of ``trace_entry``
and ``spread_from`` over seeded samples of entries and defaulters (after one untimed
run of each, which compiles the plan).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from spillover.neo4j.ingest import ingest_folder, wipe
from spillover.neo4j.saved import run_saved_query
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import Neo4jBackend, connect
from spillover.neo4j.writeback import write_back
from spillover.synth.generate import generate


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--folder", type=Path, default=None, help="reuse a synth folder")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    settings = Neo4jSettings.from_env()
    if settings is None:
        raise SystemExit("set NEO4J_URI (a scratch database: it is wiped)")
    driver = connect(settings)
    db = settings.database
    out: dict[str, object] = {"people": args.people, "seed": args.seed}
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-investigate-")) / "data"
    if not folder.exists():
        generate(args.people, args.seed, folder)
    if not args.skip_ingest:
        wipe(driver, db)
        t = time.perf_counter()
        ingest = ingest_folder(folder, driver, db)
        out["ingest_s"] = round(time.perf_counter() - t, 1)
        out["graph_elements"] = ingest.elements

    summary = write_back(Neo4jBackend(driver, db))
    read_s = summary.read_seconds
    out.update(
        entries=summary.entries,
        traces=summary.traces,
        write_back_s=round(summary.seconds, 1),
        read_s=round(read_s, 1),
        explain_s=round(summary.explain_seconds, 1),
        write_s=round(summary.write_seconds, 1),
        elements_written=summary.elements,
        elements_per_s_writing=round(summary.elements / summary.write_seconds),
        elements_per_s_end_to_end=round(summary.elements / summary.seconds),
    )

    rng = random.Random(args.seed)
    records, _, _ = driver.execute_query(
        "MATCH (e:Entry) WHERE EXISTS { (e)-[:TRACED_TO]->() } RETURN e.id AS id ORDER BY id",
        database_=db,
    )
    entries = [r["id"] for r in records]
    records, _, _ = driver.execute_query(
        "MATCH (p:Person)-[:BORROWED]->(:Loan)<-[:TRACED_TO]-() "
        "RETURN DISTINCT p.id AS id ORDER BY id",
        database_=db,
    )
    defaulters = [r["id"] for r in records]
    for name, param, pool in (
        ("trace_entry", "entry_id", entries),
        ("spread_from", "from", defaulters),
    ):
        # one untimed run first: the server compiles the query's plan once
        t = time.perf_counter()
        run_saved_query(driver, db, name, {param: pool[0]})
        out[f"{name}_ms_first"] = round((time.perf_counter() - t) * 1000, 1)
        times, rows = [], []
        for value in rng.sample(pool, min(args.samples, len(pool))):
            t = time.perf_counter()
            result = run_saved_query(driver, db, name, {param: value})
            times.append((time.perf_counter() - t) * 1000)
            rows.append(len(result.rows))
        out[f"{name}_ms_p50"] = round(statistics.median(times), 1)
        out[f"{name}_ms_p99"] = round(_percentile(times, 0.99), 1)
        out[f"{name}_rows_mean"] = round(statistics.mean(rows), 1)
    driver.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
