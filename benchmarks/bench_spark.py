"""The audit on Spark next to the numpy kernel, in the same run (docs/benchmarks.md).

    python benchmarks/bench_spark.py                 # 100k and 1M people
    python benchmarks/bench_spark.py --people 100000 --masters 'local[1]' 'local[2]'

For every size: a synthetic folder (spillover synth, cached under /tmp), the numpy
audit (fast load + one kernel pass, written to CSV), then the Spark audit of the same
folder on each master (written to Parquet; the session's start is timed apart). The
rows are compared (Spark's Parquet against the numpy CSV's rows) and the ratios
printed against the numpy audit of the same run. Prints the machine load first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq

from spillover.audit.batch import audit_folder
from spillover.policy import default_policy
from spillover.synth.generate import generate


def _folder(people: int, seed: int) -> Path:
    folder = Path(f"/tmp/spillover-bench-spark-{people}-{seed}")
    if not (folder / "blacklist.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        began = time.perf_counter()
        generate(people, seed, folder)
        print(f"  synth {people:,}: {time.perf_counter() - began:.1f} s")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory", default="4g", help="spark.driver.memory")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}  cpus: {os.cpu_count()}")
    from spillover.audit.spark import audit_path, session

    policy = default_policy()
    for people in args.people:
        folder = _folder(people, args.seed)
        out = Path(f"/tmp/spillover-bench-spark-{people}.csv")
        began = time.perf_counter()
        summary = audit_folder(folder, out, policy)
        numpy_s = time.perf_counter() - began
        print(f"{people:>9,} people, {summary.rows:,} entries: numpy audit {numpy_s:.1f} s")
        for master in args.masters:
            began = time.perf_counter()
            spark = session(
                master,
                {
                    "spark.driver.memory": args.memory,
                    "spark.ui.enabled": "false",
                    "spark.sql.shuffle.partitions": str(4 * int(master[6:-1] or 1)),
                },
                app="spillover-bench",
            )
            start_s = time.perf_counter() - began
            target = f"/tmp/spillover-bench-spark-{people}-{master[6:-1]}.parquet"
            began = time.perf_counter()
            result = audit_path(spark, str(folder), target, policy)
            spark_s = time.perf_counter() - began
            spark.stop()
            rows = pq.read_table(target).num_rows
            same = rows == summary.rows and result.verdicts == summary.verdicts
            print(
                f"{'':>9}  spark {master:<9} {spark_s:7.1f} s "
                f"(x{spark_s / numpy_s:.1f} the numpy audit; session start {start_s:.1f} s); "
                f"same rows and verdicts: {same}"
            )
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
