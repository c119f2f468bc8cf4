#!/usr/bin/env python3
"""spillover benchmarks: prints figures, every ratio measured against a baseline in the same run.

For each population size (default 10k, 100k, 1M people) it measures, each step in
its own child process so that peak memory belongs to that step:

- synth:   ``spillover synth`` wall time and peak RSS;
- audit:   ``spillover audit --data`` end to end (load + one pass + write): time,
           entries/s, peak RSS (issue 22: < 12 s and < 2 GB at 1M), alternated with
           its floor, a bare ``pyarrow.csv`` read of the folder's CSV files (time and
           peak RSS, in a child of its own), ``--audit-repeat`` times: the medians and
           the ratio audit / bare read;
- explain: ``spillover explain ENTRY --data`` on the same folder, end to end (it must
           cost no more than the audit of the whole folder);
- pass:    the breakdown in one process: columnar load, index build, the audit pass,
           and a bare ``scipy.sparse.csgraph.dijkstra`` multi-source pass over the same
           link graph (the baseline of the 5x target);
- naive:   explaining entries one by one (``core.explain`` on the networkx backend) on a
           seeded sample, as entries/s and as a ratio to the one-pass entries/s;
- check:   single ``check`` latency p50/p99 on the embedded backend (and on Neo4j);
- neo4j:   ``ingest`` in graph elements (nodes + relationships) per second, and check
           latency, against NEO4J_URI or a local Neo4j from scripts/neo4j-local.

Usage::

    python benchmarks/bench.py                       # 10k, 100k, 1M; Neo4j at 10k and 100k
    python benchmarks/bench.py --sizes 10000 --neo4j-sizes 10000
    python benchmarks/bench.py --json results.json   # also write the figures as JSON

Results and the machine they were measured on go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_child(code: str, *args: str) -> tuple[float, float, dict]:
    """Run a Python snippet in a fresh interpreter; it prints one JSON object last."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    began = time.perf_counter()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed:\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, json.loads(out.strip().splitlines()[-1])


def spawn(args: list[str]) -> tuple[float, float]:
    """Run a command, return (wall seconds, peak RSS MB) of that child alone."""
    began = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
    return wall, usage.ru_maxrss / 1024


LATENCY = """
def latencies(backend, entries, ids, rng, n, policy, warm=0):
    for i in rng.sample(ids, min(warm, len(ids))):  # warm up: query plans, caches, the JIT
        e = entries[i]
        check(backend, e.platform_id, e.subject_kind, e.subject, e.listed_at, policy)
    lat = []
    for i in rng.sample(ids, min(n, len(ids))):
        e = entries[i]
        t = time.perf_counter()
        check(backend, e.platform_id, e.subject_kind, e.subject, e.listed_at, policy)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
"""

ARROW_READ = """
import json, sys
from pathlib import Path
import pyarrow as pa
from pyarrow import csv

rows = 0
for path in sorted(Path(sys.argv[1]).glob("*.csv")):  # every table as text, as the loader reads it
    header = path.open(encoding="utf-8").readline().rstrip("\\r\\n").split(",")
    table = csv.read_csv(
        path,
        convert_options=csv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=False
        ),
        read_options=csv.ReadOptions(block_size=1 << 24),
    )
    rows += table.num_rows
    del table
print(json.dumps({"rows": rows}))
"""

PASS = """
import json, sys, time, numpy as np
from pathlib import Path
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from spillover.data.fast import read_columns
from spillover.engines.batch import Index, rows
from spillover.policy import default_policy

folder = Path(sys.argv[1])
try:  # freed memory kept for reuse, as the audit CLI does (audit_folder)
    try:
        from spillover.memory import kept_heap
    except ImportError:  # (a version that had it in audit.heap)
        from spillover.audit.heap import kept_heap
    KEPT = kept_heap()  # (held: a discarded one leaves at once)
    KEPT.__enter__()
except ImportError:  # (a version without it)
    pass
try:  # in small pages (no transparent huge pages), as the audit CLI does (audit_folder)
    try:
        from spillover.memory import small_pages
    except ImportError:  # (a version that had it in audit.heap)
        from spillover.audit.heap import small_pages
    SMALL = small_pages()
    SMALL.__enter__()
except ImportError:  # (a version without it)
    pass
t = time.perf_counter(); cols = read_columns(folder); load = time.perf_counter() - t
t = time.perf_counter(); index = Index(cols); build = time.perf_counter() - t
t = time.perf_counter(); result = index.audit(); audit = time.perf_counter() - t
t = time.perf_counter(); n_rows = sum(1 for _ in rows(result, default_policy())); out_rows = time.perf_counter() - t

# the same link graph for the baseline: person -> loan ties and loan -> borrower,
# weights -log(factor); one multi-source pass from every origin loan (reversed edges)
n_loans, n_people = len(index.loans), len(index.persons)
n = n_loans + n_people
src = np.repeat(np.arange(n_people), np.diff(index.t_ptr)) + n_loans
dst = index.t_loan
tie_factor = np.where(index.t_kind >= 0, index.kind_factor[np.maximum(index.t_kind, 0)], 1.0)
w = -np.log(np.maximum(index.t_f1 * tie_factor, 1e-12)) + 1e-9
chain = -np.log(index.chain_factor)
# reversed edges: loan -> the person tied to it, and person -> the loans they borrowed
rows_ = np.concatenate([dst, index.loan_borrower + n_loans])
cols_ = np.concatenate([src, np.arange(n_loans)])
weights = np.concatenate([w, np.full(n_loans, chain)])
graph = csr_matrix((weights, (rows_, cols_)), shape=(n, n))
sources = np.nonzero(index.loan_origin)[0]
t = time.perf_counter(); dist = dijkstra(graph, directed=True, indices=sources, min_only=True); bare = time.perf_counter() - t
reached = int(np.isfinite(dist).sum())
print(json.dumps({"load": load, "index": build, "audit": audit, "rows": out_rows, "entries": n_rows,
                  "dijkstra": bare, "links": int(graph.nnz), "nodes": int(n), "sources": int(len(sources)),
                  "reached": reached}))
"""

NAIVE = """
import json, sys, time, random
from pathlib import Path
from spillover.backends.memory import MemoryBackend
from spillover.engines.search import check, explain
from spillover.data.fast import read_dataset
from spillover.audit.rows import audit_row
from spillover.policy import default_policy

folder, sample, checks = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter(); data = read_dataset(folder); load = time.perf_counter() - t
t = time.perf_counter(); backend = MemoryBackend(data); graph = time.perf_counter() - t
policy = default_policy()
rng = random.Random(7)
ids = sorted(data.entries)
picked = rng.sample(ids, min(sample, len(ids)))
t = time.perf_counter()
for i in picked:  # what the per-entry audit does for each row
    audit_row(explain(backend, data.entries[i], policy, max_paths=1, diagnose=False))
naive = time.perf_counter() - t
p50, p99 = latencies(backend, data.entries, ids, rng, checks, policy)
print(json.dumps({"load": load, "graph": graph, "sample": len(picked), "naive": naive,
                  "check_p50": p50, "check_p99": p99}))
"""

NEO4J = """
import json, os, sys, time, random
from pathlib import Path
from spillover.neo4j.store import Neo4jBackend, Neo4jSettings, connect
from spillover.engines.search import check
from spillover.data.fast import read_dataset
from spillover.neo4j.ingest import ingest_dataset, wipe, graph_counts
from spillover.policy import default_policy

folder, checks = Path(sys.argv[1]), int(sys.argv[2])
settings = Neo4jSettings.from_env()
driver = connect(settings)
wipe(driver, settings.database)
data = read_dataset(folder)
t = time.perf_counter(); ingest_dataset(data, driver, settings.database); ingest = time.perf_counter() - t
elements = sum(graph_counts(driver, settings.database).values())
backend = Neo4jBackend(driver, settings.database)
policy = default_policy()
rng = random.Random(7)
ids = sorted(data.entries)
p50, p99 = latencies(backend, data.entries, ids, rng, checks, policy, warm=30)
t = time.perf_counter(); cols = backend.columns(); export = time.perf_counter() - t
wipe(driver, settings.database)
driver.close()
print(json.dumps({"ingest": ingest, "elements": elements, "export": export,
                  "check_p50": p50, "check_p99": p99}))
"""


def start_neo4j(workdir: Path) -> tuple[dict, Path | None]:
    if os.environ.get("NEO4J_URI"):
        return {}, None
    state = workdir / "neo4j-state"
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "neo4j-local"),
            "start",
            "--state-dir",
            str(state),
            "--heap",
            "2g",
            "--pagecache",
            "1g",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    os.environ.update(
        NEO4J_URI=info["uri"], NEO4J_USER=info["user"], NEO4J_PASSWORD=info["password"]
    )
    return info, state


def uptime() -> str:
    """The load, as ``uptime`` prints it (the machine may be shared: say how busy it was)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def audit_and_floor(r: dict, spill: str, folder: Path, out: Path, repeat: int) -> None:
    """``spillover audit --data`` and its floor (a bare Arrow read of the CSV files),
    alternated ``repeat`` times, each in a child of its own: medians into ``r``."""
    audits, reads = [], []
    for _ in range(max(repeat, 1)):
        audits.append(spawn([spill, "audit", "--data", str(folder), "--out", str(out)]))
        wall, mb, _ = python_child(ARROW_READ, str(folder))
        reads.append((wall, mb))
    r["audit_cli_s"], r["audit_cli_mb"] = (statistics.median(x) for x in zip(*audits, strict=True))
    r["arrow_read_s"], r["arrow_read_mb"] = (statistics.median(x) for x in zip(*reads, strict=True))
    r["audit_over_read"] = r["audit_cli_s"] / r["arrow_read_s"]
    r["audit_mb_over_read"] = r["audit_cli_mb"] / r["arrow_read_mb"]
    r["uptime"] = uptime()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--neo4j-sizes", default="10000,100000", help="'' to skip Neo4j")
    parser.add_argument(
        "--naive-sizes", default="10000,100000", help="the networkx graph of 1M people needs >10 GB"
    )
    parser.add_argument("--naive-sample", type=int, default=400)
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--audit-repeat", type=int, default=1, help="audit CLI and bare read, alternated N times"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep a people-N folder already in --workdir"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    neo_sizes = {int(s) for s in args.neo4j_sizes.split(",") if s}
    naive_sizes = {int(s) for s in args.naive_sizes.split(",") if s}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spillover-bench-"))
    spill = shutil.which("spillover") or "spillover"
    print(f"# spillover benchmarks  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"# {platform.platform()}  python {platform.python_version()}  cpus {os.cpu_count()}")
    print(f"# uptime: {uptime()}")
    results: dict[str, dict] = {}
    neo_state = None
    try:
        if neo_sizes & set(sizes):
            _, neo_state = start_neo4j(workdir)
        for n in sizes:
            r: dict[str, float] = {}
            folder = workdir / f"people-{n}"
            if folder.exists() and not args.reuse:
                shutil.rmtree(folder)
            r["synth_s"], r["synth_mb"] = (
                spawn(
                    [
                        spill,
                        "synth",
                        "--people",
                        str(n),
                        "--seed",
                        str(args.seed),
                        "--out",
                        str(folder),
                    ]
                )
                if not folder.exists()
                else (float("nan"), float("nan"))
            )
            out = workdir / f"audit-{n}.csv"
            audit_and_floor(r, spill, folder, out, args.audit_repeat)
            first = out.read_text(encoding="utf-8").splitlines()[1].split(",")[0]
            r["explain_cli_s"], r["explain_cli_mb"] = spawn(
                [spill, "explain", first, "--data", str(folder)]
            )
            _, r["pass_mb"], p = python_child(PASS, str(folder))
            r.update({f"pass_{k}": v for k, v in p.items()})
            r["entries"] = p["entries"]
            r["audit_entries_per_s"] = p["entries"] / r["audit_cli_s"]
            one_pass = p["index"] + p["audit"]
            r["pass_over_dijkstra"] = one_pass / p["dijkstra"]
            r["audit_over_dijkstra"] = p["audit"] / p["dijkstra"]
            print(
                f"\n## {n:,} people: {p['entries']:,} entries, {p['nodes']:,} nodes, {p['links']:,} links"
            )
            print(f"synth                 {r['synth_s']:8.2f} s   peak {r['synth_mb']:7.0f} MB")
            print(
                f"audit (CLI, all in)   {r['audit_cli_s']:8.2f} s   peak {r['audit_cli_mb']:7.0f} MB   {r['audit_entries_per_s']:,.0f} entries/s"
            )
            print(
                f"  bare arrow read     {r['arrow_read_s']:8.2f} s   peak {r['arrow_read_mb']:7.0f} MB   "
                f"audit = {r['audit_over_read']:.1f}x the read, peak {r['audit_mb_over_read']:.1f}x "
                f"(medians of {args.audit_repeat}, alternated)"
            )
            print(
                f"explain (CLI, 1 entry){r['explain_cli_s']:8.2f} s   peak {r['explain_cli_mb']:7.0f} MB"
            )
            print(f"  load (columnar)     {p['load']:8.2f} s")
            print(f"  index build         {p['index']:8.2f} s")
            print(f"  audit pass          {p['audit']:8.2f} s")
            print(f"  rows                {p['rows']:8.2f} s")
            print(
                f"  audit CLI = {r['audit_cli_s'] / p['dijkstra']:.1f}x the bare dijkstra below, "
                f"{r['audit_cli_s'] / (r['arrow_read_s'] + p['dijkstra']):.1f}x read + dijkstra"
            )
            print(
                f"  bare dijkstra       {p['dijkstra']:8.2f} s   ({p['sources']:,} sources, "
                f"{p['reached']:,} nodes reached); pass = {r['audit_over_dijkstra']:.1f}x dijkstra, "
                f"index + pass = {r['pass_over_dijkstra']:.1f}x"
            )
            if n in naive_sizes:
                _, r["naive_mb"], q = python_child(
                    LATENCY + NAIVE, str(folder), str(args.naive_sample), str(args.checks)
                )
                naive_rate = q["sample"] / q["naive"]
                pass_rate = p["entries"] / (p["index"] + p["audit"] + p["rows"])
                r.update({f"naive_{k}": v for k, v in q.items()})
                r["naive_entries_per_s"] = naive_rate
                r["pass_entries_per_s"] = pass_rate
                r["pass_over_naive"] = pass_rate / naive_rate
                print(
                    f"naive (one search per entry, {q['sample']} sampled) {naive_rate:,.0f} entries/s; one pass {pass_rate:,.0f} entries/s: {r['pass_over_naive']:.0f}x"
                )
                print(
                    f"check embedded        p50 {q['check_p50'] * 1e3:6.2f} ms   p99 {q['check_p99'] * 1e3:6.2f} ms   (backend index {q['graph']:.1f} s, load {q['load']:.1f} s)"
                )
            if n in neo_sizes:
                _, _, g = python_child(LATENCY + NEO4J, str(folder), str(args.checks))
                r.update({f"neo4j_{k}": v for k, v in g.items()})
                r["neo4j_elements_per_s"] = g["elements"] / g["ingest"]
                print(
                    f"neo4j ingest          {g['ingest']:8.2f} s   {g['elements']:,} elements   {r['neo4j_elements_per_s']:,.0f} elements/s"
                )
                print(
                    f"check neo4j           p50 {g['check_p50'] * 1e3:6.2f} ms   p99 {g['check_p99'] * 1e3:6.2f} ms   (export for audit {g['export']:.1f} s)"
                )
            print(f"# uptime: {r['uptime']}")
            results[str(n)] = r
        if len(sizes) > 1:
            print("\n## growth")
            base = results[str(sizes[0])]
            for n in sizes[1:]:
                r = results[str(n)]
                links = r["pass_links"] / base["pass_links"]
                print(
                    f"{sizes[0]:,} -> {n:,}: links x{links:.1f}, audit CLI x{r['audit_cli_s'] / base['audit_cli_s']:.1f}, "
                    f"index+pass x{(r['pass_index'] + r['pass_audit']) / (base['pass_index'] + base['pass_audit']):.1f}, "
                    f"dijkstra x{r['pass_dijkstra'] / base['pass_dijkstra']:.1f}"
                )
    finally:
        if neo_state is not None:
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "neo4j-local"),
                    "stop",
                    "--state-dir",
                    str(neo_state),
                ],
                check=False,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
