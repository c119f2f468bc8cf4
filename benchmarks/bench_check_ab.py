"""The library's own ``check`` (or ``explain`` of recorded entries) of two source trees in
one process, alternated round by round, on the in-memory backend: the CPU per call of
each and the ratio of the second to the first per round.

Both trees are copied under other package names (``spill_a``, ``spill_b``: the package
imports itself relatively), each reads the folder into its own graph, and every round
runs the same proposals through both, so a machine whose speed drifts moves both alike.
The proposals are ``bench_service.py``'s (listings of the folder's blacklist, seed 7).

    python benchmarks/bench_check_ab.py --data /tmp/s100k --a /tmp/before/src --b src \\
        [--calls 2000] [--rounds 10] [--explain]
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_service import check_args, proposals


def runner(package: str, folder: Path, calls: int, explain: bool) -> Callable[[], None]:
    """One tree's calls over the folder, ready to run (the graph read and warmed once)."""
    memory = importlib.import_module(package + ".backends.memory")
    connect = importlib.import_module(package + ".connect")
    search = importlib.import_module(package + ".engines.search")
    policy = importlib.import_module(package + ".policy").default_policy()
    graph = memory.MemoryBackend(connect.read_dataset(folder))
    if explain:
        entries = graph.data.entries
        ids = sorted(entries)[:calls]

        def go() -> None:
            for i in ids:
                search.explain(graph, entries[i], policy)

    else:
        bodies = proposals(folder, calls, 7)

        def go() -> None:
            for b in bodies:
                search.check(graph, *check_args(b), policy)

    go()  # warm
    return go


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="a data folder (synth)")
    ap.add_argument("--a", type=Path, required=True, help="the first tree's src/ (baseline)")
    ap.add_argument("--b", type=Path, required=True, help="the second tree's src/")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--explain", action="store_true", help="explain recorded entries instead")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-check-ab-"))
    try:
        for package, src in (("spill_a", args.a), ("spill_b", args.b)):
            shutil.copytree(src / "spillover", root / package)
        sys.path.insert(0, str(root))
        runs: dict[str, tuple[Callable[[], None], list[float]]] = {
            p: (runner(p, args.data, args.calls, args.explain), []) for p in ("spill_a", "spill_b")
        }
        for _ in range(args.rounds):
            for go, took in runs.values():
                began = time.process_time()
                go()
                took.append((time.process_time() - began) / args.calls * 1e3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    a, b = runs["spill_a"][1], runs["spill_b"][1]
    ratios = sorted(y / x for x, y in zip(a, b, strict=True))
    what = "explain" if args.explain else "check"
    print(
        f"{what}: A min {min(a):.3f} median {sorted(a)[len(a) // 2]:.3f}, "
        f"B min {min(b):.3f} median {sorted(b)[len(b) // 2]:.3f} ms of CPU per call; "
        f"B/A per round median {ratios[len(ratios) // 2]:.3f} "
        f"(range {ratios[0]:.3f}-{ratios[-1]:.3f})"
    )


if __name__ == "__main__":
    main()
