"""The command after a correction: ``changes`` (what it changed, and the notices)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from ..disputes import changes_csv, changes_dict, changes_text, review
from ..errors import UsageProblem
from ..neo4j.settings import Neo4jSettings
from ..policy import load_policy
from .options import (
    format_option,
    handle_errors,
    neo4j_options,
    note,
    policy_option,
    region_option,
)

__all__ = ["changes"]


@click.command()
@click.option(
    "--before",
    type=click.Path(path_type=Path),
    metavar="DIR|FILE",
    help="The data folder before the correction, or an earlier audit file of it "
    "(CSV or JSONL of spillover audit, with its .meta.json: the changes only, no --out). "
    "Left out: the data Neo4j holds now (before the corrected folder is ingested).",
)
@click.option(
    "--after",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="The same data after it (e.g. written by remedy --apply). Left out: the data "
    "Neo4j holds now (after spillover ingest of the corrected folder).",
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
@neo4j_options
@handle_errors
def changes(
    before: Path | None,
    after: Path | None,
    out: Path | None,
    check_log: Path | None,
    fmt: str,
    policy_path: Path | None,
    region: str,
    neo4j: Neo4jSettings | None,
) -> None:
    """What a correction changed: every entry lifted, new or changed, with its records.

    Give both folders, or leave one out to read that side from Neo4j (--neo4j-uri or
    NEO4J_URI): --before DIR after spillover ingest of the corrected folder, or --after DIR
    while the store still holds the data as it was."""
    if before is not None and after is not None:
        source = click.get_current_context().get_parameter_source("neo4j_uri")
        if source is ParameterSource.COMMANDLINE:
            raise UsageProblem(
                "--neo4j-uri reads one side from Neo4j: leave out --before or --after (the "
                "side the store holds)"
            )
        neo4j = None  # two folders: a NEO4J_URI in the environment is not used
    found = review(
        before,
        after,
        neo4j=neo4j,
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
