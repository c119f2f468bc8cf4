"""The listing-rule simulator: the blacklist each rule would create, audited and measured.

From the loans of a data folder and their outcomes (the recorded blacklist is
ignored, :func:`spillover.simulate.world.prepare`),
:func:`spillover.simulate.blacklist.simulate_rule` builds the blacklist a listing rule
(:mod:`spillover.simulate.listing`) would have created by a cut-off day: dated entries on
the platform whose loan went bad, and the copies that travel through the sharing
network. :func:`spillover.simulate.engine.audit_engine` then scores it with the normal
one-pass kernel (:mod:`spillover.engines.batch`), and
:func:`spillover.simulate.metrics.rule_metrics` measures it: people listed,
innocents, spillover share, contamination, listings by hop depth and platform kind,
innocents banks see through sharing, and the risk the rule catches (people who
default after the cut-off). :func:`simulate` runs several rules side by side and
writes ``metrics.csv``, ``metrics.json``, one blacklist per rule and the plots
(:mod:`spillover.simulate.plots`). Every definition is in ``docs/research.md``.

Everything is vectorized over integer codes (the kernel's index of the data), so a
1M-person folder stays feasible; chance (the listing and copy delays) comes from a
hash of the seed and the listing, so a run is deterministic for a seed and every
rule draws the same delay for the same listing.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..audit.run import check_spark_options
from ..connect import read_columns
from ..data.exact import Problems, read_table, table_file
from ..data.outputs import check_outside
from ..data.rows import BlacklistRow, PlatformRow
from ..errors import SpilloverError, UsageProblem
from ..facts.columns import Columns
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_file, atomic_folder, neutralize
from ..policy import Policy, default_policy
from ..version import __version__
from .blacklist import SimulatedBlacklist, check_seed, simulate_rule
from .engine import ENGINES, Audited, audit_engine, blacklist_columns
from .listing import TIE_KINDS, ListingRule, load_rule, shipped_rule_names
from .metrics import METRIC_COLUMNS, rule_metrics
from .plots import draw
from .world import World, prepare

__all__ = [
    "RunSummary",
    "check_options",
    "compare_runs",
    "compare_text",
    "expand_rules",
    "metrics_text",
    "simulate",
]

# ---------------------------------------------------------------------------------------
# A run: several rules side by side, written to a folder
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """What :func:`simulate` did: the folder, the run's settings and each rule's metrics."""

    out: Path
    seed: int
    cutoff: date
    rules: list[str]
    metrics: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)


#: the blacklist file columns: docs/contract.md §1's blacklist, then what the simulation adds
BLACKLIST_COLUMNS = (
    *BlacklistRow.model_fields,
    "hop",
    "tie",
    "cause_loan_id",
    "owner_id",
    "contamination",
    "verdict",
)


def _platform_kinds(folder: Path) -> dict[str, str]:
    """``platforms.kind`` by platform id (the folder is already validated; the table in any
    of its forms, CSV, JSONL or Parquet, read by the exact loader's row reader)."""
    path = table_file(folder, "platforms")
    if path is None:
        return {}
    rows = read_table(path, PlatformRow, Problems(1), DEFAULT_REGION)
    return {item.row.platform_id: item.row.kind.value for item in rows}


def _ground_truth_risky(folder: Path) -> dict[str, bool] | None:
    """The latent type by person id from ``ground_truth/people.csv`` (spillover synth)."""
    path = folder / "ground_truth" / "people.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if "risky" not in (reader.fieldnames or []):
            return None
        return {r["person_id"]: r["risky"].strip().lower() == "true" for r in reader}


def _write_blacklist(
    path: Path, world: World, bl: SimulatedBlacklist, audited: Audited, cols: Columns
) -> None:
    ix = world.index
    n = len(bl)

    def safe(values: np.ndarray) -> list[Any]:
        if not len(values):
            return []
        distinct, inverse = np.unique(values.astype(str), return_inverse=True)
        cleaned = np.array([neutralize(v) for v in distinct.tolist()], dtype=object)
        out: list[Any] = cleaned[inverse.ravel()].tolist()
        return out

    owner = np.full(n, "", dtype=object)
    has = bl.owner >= 0
    if has.any():
        owner[has] = ix.persons.take(pa.array(bl.owner[has])).to_numpy(zero_copy_only=False)
    cause = (
        ix.loans.take(pa.array(bl.cause)).to_numpy(zero_copy_only=False)
        if n
        else np.zeros(0, dtype=object)
    )
    columns = [
        np.asarray(cols.entry_ids).tolist(),
        safe(np.asarray(cols.entry_platform)),
        np.asarray(cols.entry_kind).tolist(),
        safe(np.asarray(cols.entry_subject)),
        [date.fromordinal(d).isoformat() for d in bl.listed.tolist()],
        [f"simulated: {bl.rule.name}"] * n,
        np.asarray(cols.entry_copied_from).tolist(),
        bl.hop.tolist(),
        np.asarray(TIE_KINDS, dtype=object)[bl.tie].tolist() if n else [],
        safe(np.asarray(cause)),
        safe(owner),
        audited.contamination.tolist(),
        audited.verdict.tolist(),
    ]
    with atomic_file(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(BLACKLIST_COLUMNS)
        writer.writerows(zip(*columns, strict=True))


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def expand_rules(names: Iterable[str | Path]) -> list[str | Path]:
    """Rule names as given on the command line, with ``all`` standing for every shipped
    rule (in name order).

    >>> expand_rules(["all"])[:2]
    ['borrower_and_guarantor', 'borrower_only']
    """
    out: list[str | Path] = []
    for name in names:
        out.extend(shipped_rule_names() if str(name) == "all" else [name])
    return out


def simulate(
    data: str | Path,
    rules: Sequence[str | Path | ListingRule],
    out: str | Path,
    *,
    seed: int = 0,
    cutoff: date | None = None,
    policy: Policy | None = None,
    engine: str = "numpy",
    region: str = DEFAULT_REGION,
    plots: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    master: str = "local[*]",
    spark_conf: Mapping[str, str] | None = None,
) -> RunSummary:
    """Simulate ``rules`` on the data folder ``data`` and write the run to the new
    folder ``out``: ``run.json``, ``metrics.csv``, ``metrics.json``,
    ``blacklists/RULE.csv`` (each rule's simulated blacklist with its audit) and the
    plots (PNG and SVG, :func:`spillover.simulate.plots.draw`). ``engine="spark"``
    audits every rule's blacklist on Spark (one session on ``master`` with
    ``spark_conf`` for the run); the metrics are the same as with ``numpy``."""
    if engine not in ENGINES:
        raise SpilloverError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    check_seed(seed)
    loaded = [r if isinstance(r, ListingRule) else load_rule(r) for r in rules]
    if not loaded:
        raise SpilloverError("give at least one listing rule")
    names = [r.name for r in loaded]
    if len(set(names)) != len(names):
        raise SpilloverError(
            f"rule {sorted(n for n in names if names.count(n) > 1)[0]!r} given twice"
        )
    out = Path(out)
    check_outside(out, data)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpilloverError(f"{out}: exists and is not an empty folder")
    if not out.parent.is_dir():
        raise SpilloverError(f"{out}: folder {out.parent} does not exist")
    policy = policy or default_policy()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    folder = Path(data)
    cols = read_columns(folder, region=region)
    world = prepare(
        cols, _platform_kinds(folder), policy, cutoff=cutoff, risky=_ground_truth_risky(folder)
    )
    seconds["prepare"] = round(time.perf_counter() - t0, 3)
    metrics: list[dict[str, Any]] = []
    spark = None
    if engine == "spark":
        from ..audit.spark import session

        spark = session(master, spark_conf)
    with atomic_folder(out, private=True) as tmp:  # listed people and phone numbers
        (tmp / "blacklists").mkdir()
        for i, rule in enumerate(loaded):
            if progress:
                progress("rules", i, len(loaded))
            t = time.perf_counter()
            bl = simulate_rule(world, rule, seed=seed)
            sim_cols = blacklist_columns(world, bl)
            audited = audit_engine(sim_cols, policy, engine, spark=spark)
            metrics.append(rule_metrics(world, bl, audited))
            _write_blacklist(tmp / "blacklists" / f"{rule.name}.csv", world, bl, audited, sim_cols)
            seconds[rule.name] = round(time.perf_counter() - t, 3)
        if progress:
            progress("rules", len(loaded), len(loaded))
        run = {
            "spillover_version": __version__,
            "data": str(folder),
            "seed": seed,
            "cutoff": date.fromordinal(world.cutoff).isoformat(),
            "policy": policy.label,
            "engine": engine,
            "rules": [
                {"name": r.name, "description": r.description, "source": r.source} for r in loaded
            ],
        }
        with atomic_file(tmp / "run.json") as handle:
            json.dump(run, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        with atomic_file(tmp / "metrics.json") as handle:
            json.dump({"run": run, "metrics": metrics}, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        with atomic_file(tmp / "metrics.csv") as handle:
            writer = csv.writer(handle)
            writer.writerow(METRIC_COLUMNS)
            for m in metrics:
                writer.writerow([_csv_cell(neutralize(m[c])) for c in METRIC_COLUMNS])
        if plots:
            draw(metrics, tmp)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    return RunSummary(out, seed, date.fromordinal(world.cutoff), names, metrics, seconds)


# ---------------------------------------------------------------------------------------
# Text: the side-by-side table, and a before/after comparison of two runs
# ---------------------------------------------------------------------------------------

_TABLE = (
    ("people_listed", "listed"),
    ("innocents", "innocents"),
    ("innocent_share", "innocent%"),
    ("spillover_share", "spillover%"),
    ("contamination_mean", "contam."),
    ("innocents_seen_by_banks", "banks see"),
    ("defaulted_later", "risk caught"),
    ("risk_recall", "recall"),
)


def _fmt(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column.endswith(("_share", "_recall")):
        return f"{100 * float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def metrics_text(metrics: Sequence[Mapping[str, Any]]) -> str:
    """The rules side by side, one line each (the terminal table)."""
    header = ["rule", *(label for _, label in _TABLE)]
    rows = [[str(m["rule"]), *(_fmt(m.get(c), c) for c, _ in _TABLE)] for m in metrics]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _read_metrics(run: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(m["rule"]): m for m in raw["metrics"]}
    except OSError as exc:
        raise SpilloverError(f"{path}: cannot read the run's metrics: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SpilloverError(f"{path}: not a simulate run's metrics.json ({exc})") from None


def check_options(
    *,
    data: str | Path | None,
    rules: Sequence[str],
    out: str | Path | None,
    compare: Sequence[str | Path] | None = None,
    engine: str = "numpy",
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> None:
    """Refuse what ``spillover simulate`` was given when it does not go together
    (:class:`~spillover.errors.UsageProblem`): ``compare`` reads two finished runs (no
    ``data``, ``rules`` or ``out``); a run needs all three; ``master``/``conf`` go with the
    spark engine (``master=None``: not given)."""
    if compare is not None:
        if data is not None or rules or out is not None:
            raise UsageProblem("--compare reads two finished runs: drop --data, --rule, --out")
        return
    if data is None or not rules or out is None:
        raise UsageProblem("give --data DIR, at least one --rule and --out DIR (or --compare)")
    if master is not None:
        check_spark_options(engine, master, conf or {})


def compare_runs(run_a: str | Path, run_b: str | Path) -> list[dict[str, Any]]:
    """Before/after: for every rule of either run and every numeric metric, the value in
    ``run_a``, in ``run_b`` and the change (``b - a``).

    A rule in both runs gives a row per metric that is a number in both. A rule in one
    run only gives a row per numeric metric with the other side and the change ``None``
    (so two runs of different rule sets never read as equal). Rules come in ``run_a``'s
    order, then those of ``run_b`` only.
    """
    a, b = _read_metrics(run_a), _read_metrics(run_b)
    out: list[dict[str, Any]] = []
    for rule in [*a, *(r for r in b if r not in a)]:
        for col in METRIC_COLUMNS[1:]:
            va = a[rule].get(col) if rule in a else None
            vb = b[rule].get(col) if rule in b else None
            numbers = [isinstance(v, int | float) for v in (va, vb)]
            if (
                rule in a
                and rule in b
                and isinstance(va, int | float)
                and isinstance(vb, int | float)
            ):
                delta = vb - va
                change = round(delta, 6) if isinstance(delta, float) else delta
                out.append({"rule": rule, "metric": col, "a": va, "b": vb, "change": change})
            elif (rule not in b and numbers[0]) or (rule not in a and numbers[1]):
                out.append({"rule": rule, "metric": col, "a": va, "b": vb, "change": None})
    return out


def _one_run_only(rows: Sequence[Mapping[str, Any]], side: str) -> list[str]:
    """The rules whose every row has a value on ``side`` only (``a`` or ``b``)."""
    other = "b" if side == "a" else "a"
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_rule.setdefault(str(r["rule"]), []).append(r)
    return [
        rule
        for rule, group in by_rule.items()
        if all(r[other] is None and r[side] is not None for r in group)
    ]


def compare_text(rows: Sequence[Mapping[str, Any]], *, changed_only: bool = True) -> str:
    """The comparison as text: the rules found in one run only, then one line per rule in
    both runs and metric (only the changed ones unless ``changed_only`` is false; then the
    rules of one run only too, ``-`` for the other run)."""
    only_a, only_b = _one_run_only(rows, "a"), _one_run_only(rows, "b")
    one_sided = set(only_a) | set(only_b)
    notes = [
        f"rules only in run {side}: {', '.join(rules)}"
        for side, rules in (("A", only_a), ("B", only_b))
        if rules
    ]
    shared = [r for r in rows if r["rule"] not in one_sided]
    shown = [
        r for r in rows if not changed_only or (r["rule"] not in one_sided and r["change"] != 0)
    ]
    if not shown:
        if not one_sided:
            return "no metric differs between the two runs"
        n_shared = len({r["rule"] for r in shared})
        if n_shared:
            said = f"no metric of the {n_shared} rule(s) in both runs differs"
        else:
            said = "no rule is in both runs"
        return "\n".join([*notes, said])
    lines = [*notes, f"{'rule':<28} {'metric':<28} {'A':>12} {'B':>12} {'B - A':>12}"]
    for r in shown:
        vals = [r["a"], r["b"], r["change"]]
        cells = ["-" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in vals]
        lines.append(
            f"{r['rule']:<28} {r['metric']:<28} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}"
        )
    return "\n".join(lines)
