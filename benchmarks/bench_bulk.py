"""Benchmark of issue 13 part 3: a first load into Neo4j through ``ingest --bulk``.

Starts its own Neo4j with ``scripts/neo4j-local`` (state dir ``--state-dir``, removed
at the end), then in the same run:

1. baseline: the MERGE ingest of a small population (``--baseline-people``) into the
   empty database, elements per second;
2. the bulk load of that same small population (``--overwrite``): elements per second;
3. the bulk load of ``--people`` (default 1M; the folder is generated unless
   ``--folder`` names one): elements per second, split into reading and validating the
   folder, writing the import files, the import (stopping the server, the offline
   importer, starting the server again) and schema plus marker.

Prints a JSON line as each step ends, then one with everything and the ratios of the bulk rates to the MERGE baseline.

    python benchmarks/bench_bulk.py --people 1000000 --folder /tmp/p1m
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spillover.neo4j.bulk import bulk_ingest
from spillover.neo4j.ingest import ingest_folder, wipe
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import connect
from spillover.synth.generate import generate

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "neo4j-local"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--baseline-people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=None, help="reuse a synth folder")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--heap", default="1g", help="heap of the server")
    parser.add_argument("--pagecache", default="1g", help="page cache of the server")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    state = args.state_dir or work / "neo4j"
    command = [sys.executable, str(SCRIPT), "start", "--state-dir", str(state)]
    started = subprocess.run(
        [*command, "--heap", args.heap, "--pagecache", args.pagecache],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(started.stdout.strip().splitlines()[-1])
    settings = Neo4jSettings(info["uri"], info["user"], info["password"])
    admin = [sys.executable, str(SCRIPT), "admin", "--state-dir", str(state), "--"]
    out: dict[str, object] = {"people": args.people, "load_before": _load()}
    try:
        small = work / "small"
        generate(args.baseline_people, args.seed, small)
        driver = connect(settings)
        try:
            merge = ingest_folder(small, driver, settings.database)
            wipe(driver, settings.database)
        finally:
            driver.close()
        out["merge_baseline"] = {
            "people": args.baseline_people,
            "elements": merge.elements - 1,
            "seconds": round(merge.seconds, 1),
            "per_second": round((merge.elements - 1) / merge.seconds),
        }
        print(json.dumps({"merge_baseline": out["merge_baseline"]}), flush=True)
        small_bulk = bulk_ingest(small, settings, admin=admin)
        out["bulk_small"] = {
            "elements": small_bulk.elements,
            "seconds": round(small_bulk.seconds, 1),
            "per_second": round(small_bulk.elements / small_bulk.seconds),
        }
        print(json.dumps({"bulk_small": out["bulk_small"]}), flush=True)
        folder = args.folder
        if folder is None:
            folder = work / "big"
            t0 = time.perf_counter()
            generate(args.people, args.seed, folder)
            out["synth_seconds"] = round(time.perf_counter() - t0, 1)
        out["load_at_start"] = _load()
        big = bulk_ingest(folder, settings, admin=admin, overwrite=True)
        out["load_after"] = _load()
        rate = big.elements / big.seconds
        out["bulk"] = {
            "elements": big.elements,
            "counts": big.counts,
            "seconds": round(big.seconds, 1),
            "read_validate_seconds": round(big.read_seconds, 1),
            "write_files_seconds": round(big.files.seconds, 1),
            "import_seconds": round(big.import_seconds, 1),
            "schema_marker_seconds": round(big.schema_seconds, 1),
            "per_second": round(rate),
            "per_second_without_validation": round(big.elements / (big.seconds - big.read_seconds)),
            "import_phase_per_second": round(big.elements / big.import_seconds),
            "ratio_to_merge_baseline": round(rate / (merge.elements / merge.seconds), 1),
        }
    finally:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", "--state-dir", str(state)],
            capture_output=True,
            check=False,
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
