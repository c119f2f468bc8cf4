"""The command after a correction: ``changes`` (what it changed, and the notices)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..disputes import changes_csv, changes_dict, changes_text, review
from ..policy import load_policy
from .options import format_option, handle_errors, note, policy_option, region_option

__all__ = ["changes"]


@click.command()
@click.option(
    "--before",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR|FILE",
    help="The data folder before the correction, or an earlier audit file of it "
    "(CSV or JSONL of spillover audit, with its .meta.json: the changes only, no --out).",
)
@click.option(
    "--after",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="The same data after it (e.g. written by remedy --apply).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write changes.json, changes.csv and notices/ (one per platform that must "
    "act, Markdown and HTML, English and Chinese) into this new folder.",
)
@click.option(
    "--check-log",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="The check service's log: its checks of a lifted entry's subject go in the notices.",
)
@format_option(["text", "json", "csv"])
@policy_option()
@region_option()
@handle_errors
def changes(
    before: Path,
    after: Path,
    out: Path | None,
    check_log: Path | None,
    fmt: str,
    policy_path: Path | None,
    region: str,
) -> None:
    """What a correction changed: every entry lifted, new or changed, with its records."""
    found = review(
        before,
        after,
        out=out,
        check_log=check_log,
        policy=load_policy(policy_path),
        region=region,
    )
    if fmt == "json":
        click.echo(json.dumps(changes_dict(found.changes), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(changes_csv(found.changes), nl=False)
    else:
        click.echo(changes_text(found.changes), nl=False)
    if out is not None:
        note(f"wrote {out}: changes.json, changes.csv and {len(found.notices)} notices")
