"""The commands on a Neo4j database: ``ingest`` (a data folder into it) and ``query``
(the saved investigation queries). The driver-importing modules load inside the
commands: ``spillover --help`` never imports the driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..connect import ingest_into_database, query_database, require_neo4j
from ..neo4j.settings import Neo4jSettings
from .options import (
    StageProgress,
    format_option,
    handle_errors,
    key_values,
    neo4j_options,
    region_option,
)

__all__ = ["ingest", "ingest_text", "query"]


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the saved queries and exit.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=key_values,
    help="A query parameter (repeat for more).",
)
@format_option(["text", "json", "csv"])
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write to FILE (default stdout)."
)
@neo4j_options
@handle_errors
def query(
    name: str | None,
    list_only: bool,
    params: dict[str, str],
    fmt: str,
    out: Path | None,
    neo4j: Neo4jSettings | None,
) -> None:
    """Run the saved investigation query NAME on Neo4j (docs/investigating.md)."""
    from ..neo4j.saved import format_result, list_saved_queries, write_result

    if list_only or name is None:
        for q in list_saved_queries():
            click.echo(f"{q.name:<26} {q.title}")
        return
    result = query_database(neo4j, name, params)
    if out is not None:
        write_result(result, fmt, out)
        click.echo(f"wrote {len(result.rows)} rows to {out}", err=True)
    else:
        click.echo(format_result(result, fmt), nl=False)


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@neo4j_options
@region_option()
@click.option(
    "--dataset",
    metavar="NAME",
    help="Name of the dataset the folder holds (default: the folder's name). The database "
    "records it at the first ingest and refuses a folder of another name.",
)
@click.option("--plan", is_flag=True, help="Only print what would be added, changed and removed.")
@click.option(
    "--replace", is_flag=True, help="Accept a database that holds another dataset (replace it)."
)
@click.option("--wipe", is_flag=True, help="Delete everything in the database first.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --wipe.")
@click.option("--batch-size", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option(
    "--bulk",
    is_flag=True,
    help="First load through `neo4j-admin database import full` into an empty database "
    "(docs/graph-model.md#bulk-first-loads).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="With --bulk: replace a database that holds data (asks first unless --yes).",
)
@click.option(
    "--neo4j-admin",
    "neo4j_admin",
    metavar="CMD",
    envvar="SPILLOVER_NEO4J_ADMIN",
    help="With --bulk: the command that runs neo4j-admin with the server stopped around it "
    "(env SPILLOVER_NEO4J_ADMIN; e.g. 'scripts/neo4j-local admin --state-dir DIR --').",
)
@click.option(
    "--files",
    "files",
    type=click.Path(path_type=Path),
    default=None,
    help="With --bulk: write the import files into this new folder (outside FOLDER) and keep them.",
)
@click.option(
    "--files-only",
    is_flag=True,
    help="With --bulk and --files: only write the files and print the neo4j-admin "
    "arguments that import them; Neo4j is not touched.",
)
@click.option(
    "--import-threads",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --bulk: the importer's worker threads (default: 3 per processor).",
)
@handle_errors
def ingest(
    folder: Path,
    region: str,
    dataset: str | None,
    plan: bool,
    replace: bool,
    wipe: bool,
    yes: bool,
    batch_size: int,
    bulk: bool,
    overwrite: bool,
    neo4j_admin: str | None,
    files: Path | None,
    files_only: bool,
    import_threads: int | None,
    neo4j: Neo4jSettings | None,
) -> None:
    """Validate the data folder FOLDER and make the Neo4j database equal it.

    Rows that changed since the last ingest are updated and rows that are no longer
    in the folder are removed, so the database ends up holding exactly what a fresh
    ingest of the folder writes. Nothing is written when the folder has any problem;
    running it twice on the same folder changes nothing.

    With --bulk, a first load writes the files of Neo4j's offline importer instead,
    imports them into the empty database and applies the schema: the same graph.
    """
    from ..neo4j.ingest import check_options

    check_options(
        bulk=bulk,
        plan=plan,
        replace=replace,
        wipe=wipe,
        overwrite=overwrite,
        neo4j_admin=neo4j_admin,
        files=files,
        files_only=files_only,
        import_threads=import_threads,
        folder=folder,
    )
    if bulk:
        _bulk(
            folder,
            region,
            dataset,
            overwrite,
            yes,
            neo4j_admin,
            files,
            files_only,
            import_threads,
            neo4j,
        )
        return
    settings = require_neo4j(neo4j)
    if wipe and not yes and not plan:
        click.confirm(
            f"Delete every node and relationship in database {settings.database!r} at {settings.uri}?",
            abort=True,
            err=True,
        )
    progress = StageProgress()
    try:
        summary = ingest_into_database(
            settings,
            folder,
            dataset=dataset,
            region=region,
            replace=replace,
            wipe_first=wipe,
            plan=plan,
            batch_size=batch_size,
            progress=progress,
        )
    finally:
        progress.close()
    click.echo(ingest_text(summary, settings.uri))


def _bulk(
    folder: Path,
    region: str,
    dataset: str | None,
    overwrite: bool,
    yes: bool,
    neo4j_admin: str | None,
    files: Path | None,
    files_only: bool,
    threads: int | None,
    neo4j: Neo4jSettings | None,
) -> None:
    """``ingest --bulk``: one call of :func:`spillover.neo4j.bulk.bulk_ingest`."""
    import shlex

    from ..neo4j.bulk import bulk_ingest, default_admin

    settings = neo4j if files_only else require_neo4j(neo4j)
    database = settings.database if settings is not None else "neo4j"
    if overwrite and not yes and settings is not None and not files_only:
        click.confirm(
            f"Replace everything in database {database!r} at {settings.uri} "
            "with this folder (bulk import)?",
            abort=True,
            err=True,
        )
    admin = shlex.split(neo4j_admin) if neo4j_admin else default_admin()
    progress = StageProgress()
    try:
        summary = bulk_ingest(
            folder,
            None if files_only else settings,
            admin=admin,
            dataset=dataset,
            region=region,
            overwrite=overwrite,
            files=files,
            files_only=files_only,
            progress=progress,
            threads=threads,
        )
    finally:
        progress.close()
    f = summary.files
    if not summary.imported:
        click.echo(
            f"wrote {f.elements} nodes and relationships of dataset {summary.dataset!r} "
            f"to {f.folder} in {f.seconds:.1f}s; import them, in that folder, with the "
            "server stopped:"
        )
        click.echo("  neo4j-admin " + shlex.join(summary.arguments))
        click.echo(
            "then start the server and run "
            f"`spillover ingest {shlex.quote(str(folder))} --dataset {shlex.quote(summary.dataset)}`: "
            "it applies the schema and checks that the graph equals the folder (writing nothing)"
        )
        return
    assert settings is not None
    click.echo(
        f"bulk-loaded {summary.elements} nodes and relationships of dataset "
        f"{summary.dataset!r} into {settings.uri} in {summary.seconds:.1f}s "
        f"({summary.elements / max(summary.seconds, 1e-9):,.0f} /s)"
    )
    if summary.replaced:
        click.echo(f"  replaced {summary.replaced} nodes and relationships")
    click.echo(
        f"  read and validate {summary.read_seconds:.1f}s, write files {f.seconds:.1f}s, "
        f"import {summary.import_seconds:.1f}s, schema and marker {summary.schema_seconds:.1f}s"
    )
    for name, n in summary.counts.items():
        click.echo(f"  {name:<14}{n:>12}")


def ingest_text(summary: Any, uri: str) -> str:
    """The report of ``ingest``: one line, then added / changed / removed per table."""
    if summary.applied:
        rows = sum(summary.rows.values())
        head = f"ingested {rows} rows of dataset {summary.dataset!r} into {uri}"
        head += f" in {summary.seconds:.1f}s"
    else:
        head = f"plan for dataset {summary.dataset!r} in {uri} (nothing written)"
    lines = [head]
    if summary.previous is not None and summary.previous != summary.dataset:
        lines.append(f"  replaces dataset {summary.previous!r}")
    if summary.wiped:
        verb = "wiped" if summary.applied else "would wipe"
        lines.append(f"  {verb} {summary.wiped} nodes and relationships first")
    lines.append(f"  {'table':<14}{'added':>10}{'changed':>10}{'removed':>10}")
    for table, c in summary.changes.items():
        lines.append(f"  {table:<14}{c.added:>10}{c.changed:>10}{c.removed:>10}")
    if summary.applied:
        lines.append(f"the database holds {summary.elements} nodes and relationships")
        if getattr(summary, "stale_results", False):
            lines.append(
                "the audit results written back into the graph are now stale (the data "
                "changed): the saved queries that read them refuse them until you run "
                "spillover audit --write-back again"
            )
    elif summary.unchanged:
        lines.append("the database already equals the folder")
    return "\n".join(lines)
