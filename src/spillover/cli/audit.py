"""The commands on the whole graph: ``audit``, ``findings`` and ``simulate``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from ..audit.findings import find, findings_text
from ..audit.run import ENGINES, AuditRequest, run_audit
from ..memory import no_pandas_probe
from ..neo4j.writeback import WriteBackSummary
from ..policy import load_policy
from ..simulate import run as sim
from .options import (
    IsoDay,
    Source,
    StageProgress,
    backend_options,
    data_option,
    format_option,
    handle_errors,
    max_paths_option,
    policy_option,
    region_option,
    seed_option,
    spark_options,
)

__all__ = ["audit", "findings", "simulate"]


@click.command()
@click.option(
    "--out",
    type=click.Path(),
    help="Output file, .csv or .jsonl (required unless --write-back); "
    "with --engine spark also .parquet (a Parquet dataset, any path Spark writes).",
)
@backend_options
@policy_option(help=None)
@click.option(
    "--write-back",
    is_flag=True,
    help="Neo4j: store every entry's score, verdict, reason codes and TRACED_TO paths "
    "in the graph (docs/investigating.md).",
)
@max_paths_option("With --write-back: paths stored per entry (default: the policy's).")
@click.option(
    "--check-traces",
    is_flag=True,
    help="With --write-back: read back and compare every entry's TRACED_TO, also those "
    "whose digest says they did not move (puts right a TRACED_TO edited by hand).",
)
@format_option(["text", "json"], help="Format of the summary printed at the end.")
@click.option(
    "--engine",
    type=click.Choice(list(ENGINES)),
    default=ENGINES[0],
    show_default=True,
    help="numpy: the one-pass audit in this process; spark: the same audit on Apache Spark "
    "(--data any path Spark reads; docs/scale-out.md).",
)
@spark_options
@handle_errors
def audit(
    out: str | None,
    source: Source,
    policy_path: Path | None,
    write_back: bool,
    max_paths: int | None,
    check_traces: bool,
    fmt: str,
    engine: str,
    master: str,
    conf: dict[str, str],
) -> None:
    """Explain and score every blacklist entry; write one row per entry to --out,
    or (--write-back, Neo4j) store the results in the graph."""
    request = AuditRequest(
        data=source.data_text,
        neo4j=source.neo4j,
        out=out,
        policy=load_policy(policy_path),
        region=source.region,
        engine=engine,
        write_back=write_back,
        max_paths=max_paths,
        check_traces=check_traces,
        master=master,
        conf=conf,
    )
    if engine == "numpy":  # (hands pyarrow no pandas objects: skip its import of pandas)
        no_pandas_probe()
    progress = StageProgress()
    try:
        result = run_audit(request, progress)
    finally:
        progress.close()
    if isinstance(result, WriteBackSummary):
        _write_back_summary(fmt, result)
    else:
        _audit_summary(fmt, result.path, result.rows, result.verdicts)


def _write_back_summary(fmt: str, result: WriteBackSummary) -> None:
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "entries": result.entries,
                    "traces": result.traces,
                    "traces_created": result.traces_created,
                    "traces_deleted": result.traces_deleted,
                    "entries_unchanged": result.entries_unchanged,
                    "graph_unchanged": result.graph_unchanged,
                    "graph_read": result.graph_read,
                    "verdicts": result.verdicts,
                    "audited_at": result.audited_at.isoformat(),
                    "seconds": round(result.seconds, 3),
                    "run": result.run,
                    "data_version": result.data_version,
                }
            )
        )
    else:
        counts = ", ".join(f"{v} {k}" for k, v in result.verdicts.items()) or "no entries"
        click.echo(
            f"wrote back {result.entries} entries and {result.traces} TRACED_TO paths "
            f"in {result.seconds:.1f}s ({counts})"
        )


def _audit_summary(fmt: str, path: object, rows: int, verdicts: dict[str, int]) -> None:
    if fmt == "json":
        click.echo(json.dumps({"out": str(path), "rows": rows, "verdicts": verdicts}))
    else:
        counts = ", ".join(f"{v} {k}" for k, v in verdicts.items()) or "no entries"
        click.echo(f"wrote {rows} rows to {path} ({counts})")


@click.command()
@click.option(
    "--min-borrowers",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="CONTACT_HUB: how many unrelated borrowers naming a phone make it a hub.",
)
@click.option(
    "--spillover-share",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.5,
    show_default=True,
    help="MOSTLY_SPILLOVER_PLATFORM: flag a platform when more than this share of its listings is spillover.",
)
@click.option(
    "--min-identities",
    type=click.IntRange(min=2),
    default=3,
    show_default=True,
    help="PHONE_FANOUT: on the platform records of how many identities (ID number, else name) a phone fans out.",
)
@policy_option(help=None)
@format_option(["text", "json"])
@backend_options
@handle_errors
def findings(
    min_borrowers: int,
    spillover_share: float,
    min_identities: int,
    policy_path: Path | None,
    fmt: str,
    source: Source,
) -> None:
    """Red flags in the whole graph, each with a stable code, counts and the records behind it."""
    policy = load_policy(policy_path)
    with source.open() as backend:
        found = find(
            backend,
            policy,
            min_borrowers=min_borrowers,
            spillover_share=spillover_share,
            min_identities=min_identities,
        )
    if fmt == "json":
        click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(findings_text(found))


@click.command()
@data_option("Data folder (loans, outcomes).")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="R",
    help="A shipped listing rule by name, a rule .toml file, or 'all' (repeatable).",
)
@click.option("--out", type=click.Path(path_type=Path), help="New (or empty) folder for the run.")
@seed_option
@click.option(
    "--cutoff",
    type=IsoDay(),
    default=None,
    help="Rules act until this day; later defaults are the risk caught "
    "(default: halfway through the loans).",
)
@policy_option(help=None)
@click.option(
    "--engine",
    default="numpy",
    show_default=True,
    help="The audit engine (spillover.simulate.ENGINES): numpy, or spark (extra spillover[spark]).",
)
@spark_options
@region_option(check=False)
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(path_type=Path),
    default=None,
    metavar="RUN_A RUN_B",
    help="Compare two runs' metrics (before/after) instead of simulating.",
)
@format_option(["text", "json"])
@handle_errors
def simulate(
    data: Path | None,
    rules: tuple[str, ...],
    out: Path | None,
    seed: int,
    cutoff: date | None,
    policy_path: Path | None,
    engine: str,
    master: str,
    conf: dict[str, str],
    region: str,
    compare: tuple[Path, Path] | None,
    fmt: str,
) -> None:
    """Simulate listing rules on --data and measure the harm side by side (docs/research.md);
    or --compare two runs."""
    sim.check_options(
        data=data, rules=rules, out=out, compare=compare, engine=engine, master=master, conf=conf
    )
    if compare is not None:
        rows = sim.compare_runs(*compare)
        click.echo(json.dumps(rows) if fmt == "json" else sim.compare_text(rows))
        return
    assert data is not None and out is not None  # checked
    summary = sim.simulate(
        data,
        sim.expand_rules(rules),
        out,
        seed=seed,
        cutoff=cutoff,
        policy=load_policy(policy_path),
        engine=engine,
        region=region,
        master=master,
        spark_conf=conf,
    )
    if fmt == "json":
        click.echo(json.dumps({"out": str(summary.out), "metrics": summary.metrics}))
    else:
        click.echo(sim.metrics_text(summary.metrics))
        click.echo(
            f"cut-off {summary.cutoff.isoformat()}, seed {summary.seed}; "
            f"wrote {summary.out} in {summary.seconds['total']:.1f}s"
        )
