"""The commands of the check service: ``serve`` (the HTTP API; the service app, and
with it FastAPI, loads inside the command) and ``checks`` (its check log read back)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import SpilloverError
from ..facts.phones import looks_like_phone, normalize_phone
from ..service.checklog import read_checks
from .options import (
    Source,
    backend_options,
    handle_errors,
    note,
    policy_option,
    region_option,
)

__all__ = ["checks", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@backend_options
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Bearer tokens, one name:token a line (also: env SPILLOVER_TOKENS=name:token,...).",
)
@click.option(
    "--check-log",
    type=click.Path(path_type=Path),
    default=Path("spillover-checks.jsonl"),
    show_default=True,
    help="Append-only JSON-lines record of every check (rotated; never a table of --data).",
)
@click.option(
    "--check-log-max-bytes",
    type=click.IntRange(min=1024),
    default=50 * 1024 * 1024,
    show_default=True,
    help="Rotate the check log when it would pass this size (50 MiB).",
)
@click.option("--check-log-backups", type=click.IntRange(min=1), default=10, show_default=True)
@policy_option(help=None)
@click.option("--max-batch", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--max-body-bytes", type=click.IntRange(min=1024), default=1024 * 1024, show_default=True
)
@click.option(
    "--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN", help="Allow CORS (off)."
)
@click.option(
    "--embedded",
    type=click.Choice(["memory", "arrays"]),
    default="memory",
    show_default=True,
    help="With --data: a networkx graph (fast checks) or the audit's columns (less memory).",
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--graceful-seconds",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="On SIGTERM: how long requests in flight may take to finish.",
)
@click.option(
    "--store-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds every Neo4j call may take; a check past it is answered 503.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send a request's headers.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a request has to send its body (408 past it).",
)
@click.option(
    "--keep-alive-timeout",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Open connections at most (and at most half the open-files limit); 503 past it.",
)
@click.option(
    "--http",
    type=click.Choice(["auto", "httptools", "h11"]),
    default="auto",
    show_default=True,
    help="HTTP stack: httptools on uvloop (faster; auto: when installed) or h11 on asyncio.",
)
@handle_errors
def serve(
    host: str,
    port: int,
    source: Source,
    token_file: Path | None,
    check_log: Path,
    check_log_max_bytes: int,
    check_log_backups: int,
    policy_path: Path | None,
    max_batch: int,
    max_body_bytes: int,
    cors_origins: tuple[str, ...],
    embedded: str,
    workers: int,
    graceful_seconds: int,
    store_timeout: float,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: int,
    max_connections: int,
    http: str,
) -> None:
    """Serve the pre-blacklist check API over HTTP (docs/service.md; needs spillover[serve])."""
    try:
        from ..service.run import ServeConfig
        from ..service.run import serve as run_service
    except ImportError as exc:
        raise SpilloverError(
            f"spillover serve needs the serve extra ({exc.name} is missing): "
            "pip install 'spillover[serve]'"
        ) from None
    config = ServeConfig(
        check_log=str(check_log),
        data=str(source.data) if source.data is not None else None,
        neo4j_uri=source.neo4j.uri if source.neo4j else None,
        neo4j_user=source.neo4j.user if source.neo4j else None,
        neo4j_database=source.neo4j.database if source.neo4j else None,
        region=source.region,
        token_file=str(token_file) if token_file is not None else None,
        policy=str(policy_path) if policy_path is not None else None,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        cors_origins=cors_origins,
        log_max_bytes=check_log_max_bytes,
        log_backups=check_log_backups,
        embedded=embedded,
        store_timeout=store_timeout,
        body_timeout=body_timeout,
        header_timeout=header_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=max_connections,
    )
    run_service(
        config,
        host,
        port,
        workers=workers,
        graceful_seconds=graceful_seconds,
        neo4j_password=source.neo4j.password if source.neo4j is not None else None,
        http=http,
    )


@click.command()
@click.option(
    "--log", "log_path", required=True, type=click.Path(path_type=Path), help="The check log."
)
@click.option(
    "--subject",
    default=None,
    help="Only checks of this person_id (also those of a phone they owned on its listing "
    "day) or of this phone.",
)
@region_option(check=False)
@handle_errors
def checks(log_path: Path, subject: str | None, region: str) -> None:
    """Read the service's check log back (rotated files included), one JSON line a check."""
    if subject is not None and looks_like_phone(subject, region):
        subject = normalize_phone(subject, region)
    for record in read_checks(log_path, subject, on_cut=note):
        click.echo(json.dumps(record, ensure_ascii=False))
