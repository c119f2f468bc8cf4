#!/usr/bin/env python3
"""The columnar load alone (``spillover.connect.read_columns``) against its floor, a bare
``pyarrow.csv`` read of the same folder, and (optionally) against another source tree.

Each measurement runs in a child process of its own (peak RSS belongs to it); the
children are alternated ``--repeat`` times so that a shared machine's load falls on
all of them alike. Printed per child: wall, CPU (user + system) and peak RSS; then the
medians and the ratios to the bare read (and to ``--before``), with ``uptime``.

Usage::

    python benchmarks/bench_load.py /work/data-1m-mem --repeat 3
    python benchmarks/bench_load.py /work/data-1m-mem --before /work/main/src --repeat 2

The source tree measured is the ``spillover`` importable here (``PYTHONPATH``);
``--before SRC`` adds children with ``PYTHONPATH=SRC`` (an A/B of two commits).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

LOAD = """
import json, sys
from spillover.connect import read_columns
columns = read_columns(sys.argv[1])
import resource
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BARE = """
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
import resource
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def child(code: str, folder: Path, pythonpath: str | None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one child."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, "-c", code, str(folder)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, float(json.loads(out.splitlines()[-1])["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", help="another source tree (PYTHONPATH) to alternate with")
    args = parser.parse_args()
    kinds: dict[str, tuple[str, str | None]] = {"bare read": (BARE, None), "load": (LOAD, None)}
    if args.before:
        kinds["load before"] = (LOAD, args.before)
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    print(f"# {uptime()}", flush=True)
    for i in range(max(args.repeat, 1)):
        names = list(kinds) if i % 2 == 0 else list(reversed(kinds))
        for name in names:
            code, path = kinds[name]
            wall, cpu, peak = child(code, args.folder, path)
            results[name].append((wall, cpu, peak))
            print(f"{name:12} run {i}: wall {wall:7.2f} s  cpu {cpu:7.2f} s  peak {peak:6.0f} MB")
    print(f"# {uptime()}")
    med = {
        k: tuple(statistics.median(x[j] for x in v) for j in range(3)) for k, v in results.items()
    }
    for name, (wall, cpu, peak) in med.items():
        print(f"{name:12} median: wall {wall:7.2f} s  cpu {cpu:7.2f} s  peak {peak:6.0f} MB")
    floor = med["bare read"]
    print(
        f"load = {med['load'][0] / floor[0]:.1f}x the bare read (wall), {med['load'][1] / floor[1]:.1f}x (cpu)"
    )
    if args.before:
        b = med["load before"]
        print(
            f"load / load before: wall {med['load'][0] / b[0]:.2f}, cpu {med['load'][1] / b[1]:.2f}, "
            f"peak {med['load'][2] / b[2]:.2f}"
        )


if __name__ == "__main__":
    main()
