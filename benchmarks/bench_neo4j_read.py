#!/usr/bin/env python3
"""Issue 22 item 2: the audit from Neo4j, against the embedded audit and a plain Cypher read.

For each population size (``spillover synth --seed 1``), the folder is ingested into the
Neo4j of ``NEO4J_URI`` (a sync: a database that already holds it changes nothing), then
these run alternated, ``--rounds`` times, each in a fresh interpreter:

- embedded:  the audit of the folder (``audit_folder``: columnar load, index, pass, rows,
             the CSV written);
- neo4j:     the audit from Neo4j as ``spillover audit`` runs it over Neo4j (no ``--data``)
             (``spillover.audit.batch.audit``: ``Neo4jBackend.columns()``, then the same
             index, pass, rows and column-wise CSV), the read timed apart (until the index
             step starts);
- floor:     a plain Cypher ``MATCH ... RETURN`` of the same rows and properties (one
             record per node or relationship, the way a first reader writes it) with the
             same driver, read to the end;
- baseline:  with ``--baseline-src DIR`` (e.g. the ``src`` of the commit before), the
             neo4j audit again with that source tree.

It prints each median, the Neo4j audit as a ratio to the embedded audit (the goal: <= 3x)
and its read as a ratio to the floor, and checks that the audit files from Neo4j and from
the folder are byte-identical. With ``--checks N`` it also measures ``check`` latency
(p50 / p99 over N proposed listings, after 30 to warm up, and the round trips per check)
on Neo4j and on the embedded backend; ``--checks-only`` measures only that, ``--rounds``
times alternated (Neo4j, Neo4j with ``--baseline-src``, embedded). ``uptime`` is printed
at the start and at the end: the figures are only comparable within one run.

Usage::

    NEO4J_URI=bolt://... NEO4J_PASSWORD=... python benchmarks/bench_neo4j_read.py \\
        --sizes 20000,100000 --rounds 3 --checks 300 [--baseline-src /tmp/before/src]

The Neo4j database is left holding the last size (run it on a database of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMBEDDED = """
import json, sys, time
from spillover.audit.batch import audit_folder
t = time.perf_counter()
audit_folder(sys.argv[1], sys.argv[2])
print(json.dumps({"total": time.perf_counter() - t}))
"""

NEO4J = """
import json, sys, time
from spillover.audit.batch import audit
from spillover.neo4j.store import Neo4jSettings, open_neo4j
backend = open_neo4j(Neo4jSettings.from_env())
steps = {}

def progress(step, done, total):  # the index step starts when the read has ended
    steps.setdefault(step, time.perf_counter())

t = time.perf_counter()
audit(backend, sys.argv[1], progress=progress)  # what `spillover audit` runs over Neo4j
total = time.perf_counter() - t
read = steps["index"] - t
backend.close()
print(json.dumps({"read": read, "total": total}))
"""

#: the same rows and properties as the column reads, one record per row
FLOOR = """
import json, time
from spillover.neo4j.store import Neo4jSettings, connect
PLAIN = [
    "MATCH (p:Person) RETURN p.id AS id",
    "MATCH (p:Platform) RETURN p.id AS id",
    "MATCH (o:Person)-[r:OWNS]->(ph:Phone) WITH ph, o, properties(r) AS p "
    "RETURN ph.number AS phone, o.id AS owner, p.verified AS verified, p.since AS since, "
    "p.until AS until",
    "MATCH (l:Loan) WITH l, properties(l) AS p RETURN p.id AS id, p.platform_id AS platform, "
    "p.borrower_id AS borrower, p.applied_at AS applied, p.status_at AS status_at, "
    "p.status AS status, p.applicant_phone AS applicant_phone, "
    "p.phone_verified AS phone_verified, p.borrower_record AS borrower_record",
    "MATCH (l:Loan)-[r:LINKS]->(ph:Phone) RETURN l.id AS loan, ph.number AS phone, "
    "properties(r).role AS role",
    "MATCH (e:Entry) WITH e, properties(e) AS p RETURN p.id AS id, p.platform_id AS platform, "
    "p.subject_kind AS subject_kind, p.subject AS subject, p.listed_at AS listed, "
    "p.copied_from AS copied_from",
    "MATCH (a:Platform)-[s:SHARES_WITH]->(b:Platform) "
    "RETURN a.id AS from_platform, b.id AS to_platform, properties(s).since AS since",
]
settings = Neo4jSettings.from_env()
driver = connect(settings)
t = time.perf_counter()
rows = 0
for query in PLAIN:
    records, _, _ = driver.execute_query(query, database_=settings.database)
    rows += len(records)
total = time.perf_counter() - t
driver.close()
print(json.dumps({"total": total, "rows": rows}))
"""

CHECKS = """
import json, random, sys, time
from spillover.data.fast import read_dataset
from spillover.engines.search import check
from spillover.policy import default_policy
where, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
trips = [0]
if where == "neo4j":
    from spillover.neo4j.store import Neo4jSettings, open_neo4j
    backend = open_neo4j(Neo4jSettings.from_env())
    read = backend._read  # count the round trips of the checks measured
    def counted(*a, **k):
        trips[0] += 1
        return read(*a, **k)
    backend._read = counted
else:
    from spillover.connect import open_folder
    backend = open_folder(folder)
entries = read_dataset(folder).entries
ids = sorted(entries)
rng = random.Random(7)
policy = default_policy()
def one(i):
    e = entries[i]
    check(backend, e.platform_id, e.subject_kind, e.subject, e.listed_at, policy)
for i in rng.sample(ids, min(30, len(ids))):
    one(i)
lat = []
trips[0] = 0
for i in rng.sample(ids, min(n, len(ids))):
    t = time.perf_counter()
    one(i)
    lat.append(time.perf_counter() - t)
lat.sort()
backend.close()
print(json.dumps({
    "p50": lat[len(lat) // 2],
    "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    "trips": trips[0] / len(lat),
}))
"""


def child(code: str, *args: str, src: Path | None = None) -> dict:
    """Run a snippet in a fresh interpreter (PYTHONPATH ``src`` if given); its last line is JSON."""
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
    return json.loads(done.stdout.strip().splitlines()[-1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def ingest(folder: Path) -> float:
    """Make the database hold ``folder``: a sync when it holds it already, else wiped first."""
    from spillover.errors import SpilloverError
    from spillover.neo4j.ingest import ingest_folder
    from spillover.neo4j.store import Neo4jSettings, connect

    settings = Neo4jSettings.from_env()
    driver = connect(settings)
    try:
        began = time.perf_counter()
        try:
            ingest_folder(folder, driver, settings.database)
        except SpilloverError:  # another dataset: replaced by this one
            ingest_folder(folder, driver, settings.database, wipe_first=True, replace=True)
        return time.perf_counter() - began
    finally:
        driver.close()


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(n: int, workdir: Path, args: argparse.Namespace) -> dict:
    folder = workdir / f"p{n // 1000}k"  # the dataset's name in Neo4j
    if not folder.exists():
        spill = shutil.which("spillover") or "spillover"
        subprocess.run(
            [spill, "synth", "--people", str(n), "--seed", "1", "--out", str(folder)],
            check=True,
            capture_output=True,
        )
    took = ingest(folder)
    print(f"\n## {n:,} people (ingest or sync {took:.0f} s)", flush=True)
    runs: dict[str, list[dict]] = {"embedded": [], "neo4j": [], "floor": [], "baseline": []}
    embedded_csv, neo4j_csv = workdir / f"embedded-{n}.csv", workdir / f"neo4j-{n}.csv"
    for _ in range(args.rounds):
        runs["embedded"].append(child(EMBEDDED, str(folder), str(embedded_csv)))
        runs["neo4j"].append(child(NEO4J, str(neo4j_csv)))
        runs["floor"].append(child(FLOOR))
        if args.baseline_src is not None:
            base_csv = workdir / f"baseline-{n}.csv"
            runs["baseline"].append(child(NEO4J, str(base_csv), src=args.baseline_src))
    same = embedded_csv.read_bytes() == neo4j_csv.read_bytes()
    r = {k: median(v, "total") for k, v in runs.items() if v}
    r["read"] = median(runs["neo4j"], "read")
    r["rows"] = runs["floor"][0]["rows"]
    print(f"embedded audit        {r['embedded']:7.2f} s   (load + index + pass + rows + CSV)")
    print(
        f"neo4j audit           {r['neo4j']:7.2f} s   = {r['neo4j'] / r['embedded']:.2f}x the "
        f"embedded audit (goal <= 3x); read {r['read']:.2f} s"
    )
    print(
        f"plain Cypher read     {r['floor']:7.2f} s   ({r['rows']:,} records, one per row): "
        f"our read = {r['read'] / r['floor']:.2f}x the floor"
    )
    if runs["baseline"]:
        b_read = median(runs["baseline"], "read")
        r["baseline_read"] = b_read
        print(
            f"baseline neo4j audit  {r['baseline']:7.2f} s   = "
            f"{r['baseline'] / r['embedded']:.2f}x the embedded audit; read {b_read:.2f} s "
            f"(now {b_read / r['read']:.1f}x faster)"
        )
    for kind in ("embedded", "neo4j", "baseline"):
        if runs[kind]:
            each = ", ".join(f"{x['total']:.2f}" for x in runs[kind])
            print(f"  each run, {kind + ':':10s} {each} s")
    ratios = [a["total"] / b["total"] for a, b in zip(runs["neo4j"], runs["embedded"], strict=True)]
    print(f"  neo4j / embedded by round: {', '.join(f'{x:.2f}x' for x in ratios)}")
    if runs["baseline"]:
        vs = [a["total"] / b["total"] for a, b in zip(runs["neo4j"], runs["baseline"], strict=True)]
        print(f"  neo4j / baseline by round: {', '.join(f'{x:.2f}x' for x in vs)}")
    print(f"audit rows from Neo4j byte-identical to the embedded audit: {same}")
    r["identical"] = same
    if args.checks:
        for where in ("neo4j", "embedded"):
            c = child(CHECKS, where, str(folder), str(args.checks))
            r[f"check_{where}_p50"], r[f"check_{where}_p99"] = c["p50"], c["p99"]
            print(
                f"check {where:9s}       p50 {c['p50'] * 1e3:6.2f} ms   p99 {c['p99'] * 1e3:6.2f} ms"
            )
    return r


def measure_checks(n: int, workdir: Path, args: argparse.Namespace) -> dict:
    """``--checks-only``: ``check`` latency alone, ``--rounds`` times, alternated: on Neo4j
    with this source, on Neo4j with ``--baseline-src`` (if given), embedded."""
    folder = workdir / f"p{n // 1000}k"
    if not folder.exists():
        raise SystemExit(f"{folder} is missing: run once without --checks-only")
    took = ingest(folder)
    print(f"\n## {n:,} people, check only (ingest or sync {took:.0f} s)", flush=True)
    kinds = [("neo4j", None), ("embedded", None)]
    if args.baseline_src is not None:
        kinds.insert(1, ("baseline", args.baseline_src))
    runs: dict[str, list[dict]] = {k: [] for k, _ in kinds}
    for i in range(args.rounds):
        for kind, src in kinds:
            where = "embedded" if kind == "embedded" else "neo4j"
            c = child(CHECKS, where, str(folder), str(args.checks), src=src)
            runs[kind].append(c)
            print(
                f"round {i + 1} {kind:9s} p50 {c['p50'] * 1e3:6.2f} ms   p99 "
                f"{c['p99'] * 1e3:6.2f} ms   round trips/check {c['trips']:.2f}   "
                f"({uptime().split('load')[-1].strip()})",
                flush=True,
            )
    r: dict[str, float] = {}
    for kind in runs:
        r[f"{kind}_p50"], r[f"{kind}_p99"] = median(runs[kind], "p50"), median(runs[kind], "p99")
    for kind in runs:
        if kind != "embedded":
            print(
                f"median {kind:9s} p50 {r[kind + '_p50'] * 1e3:6.2f} ms ("
                f"{r[kind + '_p50'] / r['embedded_p50']:.2f}x embedded)   p99 "
                f"{r[kind + '_p99'] * 1e3:6.2f} ms ({r[kind + '_p99'] / r['embedded_p99']:.2f}x)"
            )
    print(
        f"median embedded  p50 {r['embedded_p50'] * 1e3:6.2f} ms   "
        f"p99 {r['embedded_p99'] * 1e3:6.2f} ms"
    )
    return r


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", type=int, default=0, help="check latency over N listings")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument(
        "--checks-only",
        action="store_true",
        help="only the --checks latency, --rounds times (with --baseline-src too), alternated",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not os.environ.get("NEO4J_URI"):
        raise SystemExit("set NEO4J_URI (and NEO4J_PASSWORD) to a Neo4j of its own")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spillover-neo4j-read-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# bench_neo4j_read  {time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}")
    print(f"# uptime at start: {uptime()}", flush=True)
    run = measure_checks if args.checks_only else measure
    results = {str(n): run(int(n), workdir, args) for n in args.sizes.split(",") if n}
    print(f"\n# uptime at end: {uptime()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
