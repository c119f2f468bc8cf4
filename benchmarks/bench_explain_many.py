"""Explanations of many entries on Neo4j (issue 22, session 44): each entry was explained
alone, each fetching its three-layer neighbourhood again; ``explain_entries`` fetches the
neighbourhood of all of them first and each fact once (docs/benchmarks.md).

Needs an empty scratch Neo4j in NEO4J_URI (it is wiped, and left holding the last world).

    python benchmarks/bench_explain_many.py --baseline-src /work/base/src --rounds 3

For each world (a number reassigned ``--periods`` times, ``tests/scaling.py``; synthetic
populations), ingested once: each measured call runs in a
child process, alternated with the same call under ``--baseline-src`` (``PYTHONPATH``
switched), and prints the medians, the ratio, and whether both wrote the same bytes:

- ``neighborhood`` (``--max-nodes 500``, JSON; every entry shown scored) of the hub
  phone (a number reassigned ``--periods`` times), and of the person listed most often
  in a synthetic population of ``--people``, with ``report`` of that person (Markdown);
- ``audit_rows(method="per-entry")``: every entry explained, a batch of 1,000 at a time
  (a synthetic population of ``--per-entry-people``: the base explains each alone).

Prints ``uptime`` first and last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: what a child runs: the measured call, its output written to argv[1]
_PER_ENTRY = """
import json, sys
from spillover.audit.batch import audit_rows
from spillover.neo4j.settings import Neo4jSettings
from spillover.neo4j.store import Neo4jBackend, connect
s = Neo4jSettings.from_env()
d = connect(s)
rows = list(audit_rows(Neo4jBackend(d, s.database), method="per-entry"))
open(sys.argv[1], "w").write(json.dumps(rows, sort_keys=True))
"""


#: the file each call writes
_OUTPUT = {"neighborhood": "view.json", "per-entry audit": "rows.json", "report": "report.md"}


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _child(src: Path, argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def _calls(out: Path, hub: str, person: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "spillover"]
    return {
        "neighborhood": [
            *cli, "neighborhood", hub or person, "--subject-kind", "phone" if hub else "person",
            "--format", "json", "--out", str(out / "view.json"),
        ],
        "per-entry audit": [sys.executable, "-c", _PER_ENTRY, str(out / "rows.json")],
        "report": [*cli, "report", person, "--out", str(out / "report.md")],
    }  # fmt: skip


def _measure(
    name: str, rounds: int, base: Path | None, hub: str, person: str, which: tuple[str, ...]
) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-explain-many-"))
    sides = {"this": ROOT / "src", **({"base": base} if base else {})}
    times: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds):
        for side, src in sides.items() if r % 2 == 0 else reversed(sides.items()):
            out = work / side
            out.mkdir(exist_ok=True)
            for call, argv in _calls(out, hub, person).items():
                if call not in which:
                    continue
                times.setdefault(call, {}).setdefault(side, []).append(_child(src, argv))
    for call, by_side in times.items():
        this = statistics.median(by_side["this"])
        line = f"  {name}: {call}: this {this:.2f} s"
        if base:
            was = statistics.median(by_side["base"])
            wrote = _OUTPUT[call]
            same = (work / "this" / wrote).read_bytes() == (work / "base" / wrote).read_bytes()
            line += f", base {was:.2f} s: {this / was:.2f}x; same output: {same}"
        print(line + f" ({rounds} runs each)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--periods", type=int, default=2000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--per-entry-people", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    if not os.environ.get("NEO4J_URI"):
        raise SystemExit("set NEO4J_URI (a scratch database: it is wiped)")
    sys.path.insert(0, str(ROOT / "tests"))
    from scaling import reassigned_case
    from spillover.neo4j.ingest import ingest_folder, wipe
    from spillover.neo4j.settings import Neo4jSettings
    from spillover.neo4j.store import connect
    from spillover.synth.generate import generate

    print("uptime:", _uptime(), flush=True)
    settings = Neo4jSettings.from_env()
    assert settings is not None
    driver = connect(settings)
    root = Path(tempfile.mkdtemp(prefix="bench-explain-many-data-"))
    # (the per-entry audit of every owner of a hub: thousands of searches of the hub each)
    worlds = {
        f"reassigned {args.periods:,}": (
            lambda f: reassigned_case(args.periods).write(f),
            ("neighborhood",),
        ),
        f"synth {args.people:,}": (
            lambda f: generate(args.people, 1, f),
            ("neighborhood", "report"),
        ),
        f"synth {args.per_entry_people:,}": (
            lambda f: generate(args.per_entry_people, 1, f),
            ("per-entry audit",),
        ),
    }
    for name, (make, which) in worlds.items():
        folder = root / name.replace(" ", "-").replace(",", "")
        make(folder)
        wipe(driver, settings.database)
        ingest_folder(folder, driver, settings.database)
        hub, person = _subjects(folder)
        if not name.startswith("reassigned"):
            hub = ""  # the view of the person listed most often
        print(f"{name}: hub phone {hub or '-'}, person {person}", flush=True)
        _measure(name, args.rounds, args.baseline_src, hub, person, which)
    driver.close()
    print("uptime:", _uptime(), flush=True)


def _subjects(folder: Path) -> tuple[str, str]:
    """The phone with the most owner periods, and the person listed most often."""
    import csv
    from collections import Counter

    with (folder / "phones.csv").open(encoding="utf-8") as f:
        phones = Counter(r["phone"] for r in csv.DictReader(f) if r["owner_id"])
    with (folder / "blacklist.csv").open(encoding="utf-8") as f:
        listed = Counter(r["subject"] for r in csv.DictReader(f) if r["subject_kind"] == "person")
    return min(phones, key=lambda p: (-phones[p], p)), min(listed, key=lambda p: (-listed[p], p))


if __name__ == "__main__":
    main()
