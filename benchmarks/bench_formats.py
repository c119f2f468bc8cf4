#!/usr/bin/env python3
"""The columnar load of one synthetic population in CSV and in Parquet form, side by side.

For each size (default 1M people) it writes the folder twice with the same seed
(``spillover synth --format csv`` and ``--format parquet``), then loads each form with
the fast path (``spillover.connect.read_columns``: read, check every rule, build the
columns) in a fresh process, alternating the forms ``--rounds`` times, and prints the
wall time, CPU time and peak memory of each, the Parquet/CSV ratio (the CSV load is the
baseline, measured in the same run) and the size of each folder on disk. A Parquet load
that fell back to the exact loader would show as minutes, and is reported as such.

Usage::

    python benchmarks/bench_formats.py                    # 1M people, 3 rounds
    python benchmarks/bench_formats.py --sizes 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

LOAD = """
import json, resource, sys, time
from spillover.data import fast as fastload
stages = []
began = time.perf_counter()
cpu = time.process_time()
columns = fastload.read_columns(sys.argv[1], progress=lambda s, d, t: stages.append(s))
print(json.dumps({
    "wall": time.perf_counter() - began,
    "cpu": time.process_time() - cpu,
    "entries": len(columns.entry_ids),
    "exact": "exact loader" in stages,
}))
"""


def child(code: str, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; its last line of output (JSON) and its peak RSS in MB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spillover-formats-"))
    spill = shutil.which("spillover") or "spillover"
    print(
        f"# spillover load: CSV and Parquet  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}"
    )
    print(f"# {platform.platform()}  python {platform.python_version()}  cpus {os.cpu_count()}")
    print(f"# load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for n in (int(s) for s in args.sizes.split(",") if s):
        folders = {}
        for fmt in ("csv", "parquet"):
            folders[fmt] = workdir / f"{fmt}-{n}"
            if folders[fmt].exists():
                shutil.rmtree(folders[fmt])
            began = time.perf_counter()
            subprocess.run(
                [spill, "synth", "--people", str(n), "--seed", str(args.seed), "--out",
                 str(folders[fmt]), "--format", fmt],
                check=True,
                capture_output=True,
            )  # fmt: skip
            print(
                f"synth --format {fmt:<8} {time.perf_counter() - began:7.1f} s   "
                f"{size_mb(folders[fmt]):7.0f} MB on disk (ground truth included)"
            )
        runs: dict[str, list[tuple[dict, float]]] = {"csv": [], "parquet": []}
        for _ in range(args.rounds):
            for fmt in ("csv", "parquet"):
                runs[fmt].append(child(LOAD, str(folders[fmt])))
        print(
            f"\n## {n:,} people, fast load (read_columns), {args.rounds} rounds, fresh process each"
        )
        med = {}
        for fmt, got in runs.items():
            walls = [r["wall"] for r, _ in got]
            cpus = [r["cpu"] for r, _ in got]
            med[fmt] = statistics.median(walls), statistics.median(cpus)
            exact = " (FELL BACK TO THE EXACT LOADER)" if any(r["exact"] for r, _ in got) else ""
            print(
                f"{fmt:<8} wall median {med[fmt][0]:6.2f} s ({min(walls):.2f} to {max(walls):.2f})   "
                f"cpu median {med[fmt][1]:6.2f} s   peak {max(m for _, m in got):6.0f} MB   "
                f"{got[0][0]['entries']:,} entries{exact}"
            )
        print(
            f"parquet / csv: wall x{med['parquet'][0] / med['csv'][0]:.2f}, "
            f"cpu x{med['parquet'][1] / med['csv'][1]:.2f}"
        )
    print(f"# load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"# this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
