#!/usr/bin/env python3
"""The re-audit of only what a correction changed (issue 23 item 4), against a full pass.

Loads two folders of one dataset (``--before``: e.g. ``spillover synth --people 1000000
--seed 1``; ``--after``: ``spillover remedy --subject S --apply`` of it), builds both
indexes, audits ``before`` once, then alternates, ``--rounds`` times in the same process:

- full:        the audit pass of ``after`` (what two full audits compared cost beyond load);
- incremental: the changed facts, the entries they can reach, and the pass restricted to
               them (:func:`spillover.engines.batch.incremental.reaudit`), and their rows.

It checks that the rows (the carried-over rows of ``before`` plus the re-scored ones) equal
the full audit's rows of ``after`` entry for entry, so the changes listed are the same as
those of two full audits compared, and prints ``uptime`` before and after (the machine's
load: compare the two figures of one run, not across runs).

Usage::

    python benchmarks/bench_changes.py --before /tmp/a --after /tmp/b [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from spillover.connect import read_columns
from spillover.engines.batch import Index, rows
from spillover.engines.batch.audit import audit_entries
from spillover.engines.batch.incremental import affected_entries, index_changes
from spillover.policy import default_policy


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    out = fn(*args)
    took = time.perf_counter() - began
    print(f"  {label:<38} {took:8.3f} s", flush=True)
    return out, took


def _row_map(result, policy):  # type: ignore[no-untyped-def]
    return {r["entry_id"]: r for r in rows(result, policy)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    policy = default_policy()
    print("uptime:", _uptime())
    print("load (not timed against the pass):")
    cols_a, _ = _timed("read_columns before", read_columns, args.before)
    cols_b, _ = _timed("read_columns after", read_columns, args.after)
    ix_a, _ = _timed("index before", Index, cols_a, policy)
    ix_b, _ = _timed("index after", Index, cols_b, policy)
    result_a, _ = _timed("full pass before (once)", ix_a.audit)
    rows_a = {r["entry_id"]: r for r in rows(result_a, policy)}
    full_t, inc_t = [], []
    for k in range(args.rounds):
        print(f"round {k + 1}:")
        result_b, t = _timed("full pass after", ix_b.audit)
        full_t.append(t)
        began = time.perf_counter()
        changes, _ = _timed("  changed facts", index_changes, ix_a, ix_b)
        hit, _ = _timed("  entries they reach", affected_entries, ix_b, changes)
        sub, _ = _timed("  pass of those entries", audit_entries, ix_b, hit)
        fresh, _ = _timed("  their rows", _row_map, sub, policy)
        inc_t.append(time.perf_counter() - began)
        print(f"  {'incremental re-audit, in all':<38} {inc_t[-1]:8.3f} s  ({len(hit)} entries)")
    rows_b = {r["entry_id"]: r for r in rows(result_b, policy)}
    carried = {e: fresh.get(e, rows_a.get(e)) for e in rows_b}
    same = carried == rows_b
    moved = sorted(e for e in rows_b if rows_a.get(e) != rows_b[e])
    moved_inc = sorted(e for e in carried if rows_a.get(e) != carried[e])
    print(
        f"entries {len(rows_b)}; re-scored {len(hit)}; changed {len(moved)} "
        f"(incremental: {len(moved_inc)}); rows identical to the full audit: {same}"
    )
    best_full, best_inc = min(full_t), min(inc_t)
    print(
        f"full pass {best_full:.3f} s, incremental {best_inc:.3f} s (best of {args.rounds}): "
        f"{best_full / best_inc:.1f}x"
    )
    print("uptime:", _uptime())
    if not same or moved != moved_inc:
        raise SystemExit("the incremental rows differ from the full audit")


if __name__ == "__main__":
    main()
