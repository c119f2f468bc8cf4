"""The ``spillover`` command line: each command parses, makes one library call, and prints.

Library errors (:class:`~spillover.errors.SpilloverError`) become a message on
stderr and exit code 1; usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from . import __version__
from .audit import audit as run_audit
from .connect import open_backend
from .core import check as run_check
from .core import explain_about_person, explain_entry
from .errors import DataError, SpilloverError
from .examples import jiang_case_path
from .output import explanation_dict, explanation_json
from .phones import DEFAULT_REGION, normalize_phone
from .policy import load_policy
from .render import explanation_text


def _fail(message: str) -> None:
    click.echo(f"spillover: error: {message}", err=True)
    sys.exit(1)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one clean message (all problems for bad data) and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DataError as exc:
            click.echo(
                f"spillover: error: the data was refused ({len(exc.problems)} problem(s)):",
                err=True,
            )
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            if exc.truncated:
                click.echo("  ... more problems not shown (cap reached)", err=True)
            sys.exit(1)
        except SpilloverError as exc:
            _fail(str(exc))

    return wrapper


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` and ``--region``: where the graph comes from."""
    func = click.option(
        "--region",
        default=DEFAULT_REGION,
        show_default=True,
        metavar="CC",
        help="Region for phone numbers written without +country code.",
    )(func)
    func = click.option(
        "--data",
        "data",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="Data folder (CONTRACT §1) for the embedded in-memory graph.",
    )(func)
    return func


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--max-paths",
        type=click.IntRange(min=1),
        default=None,
        help="Paths to list per explanation (default: the policy's).",
    )(func)
    func = click.option(
        "--policy",
        "policy_path",
        type=click.Path(path_type=Path),
        default=None,
        metavar="FILE",
        help="Scoring policy TOML (default: the packaged one).",
    )(func)
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
    )(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spillover")
def cli() -> None:
    """Trace how blacklist status spread from defaulters to unrelated people.

    Every blacklisting gets explanation paths and a contamination score: the share
    of it that rests on other people's debts rather than the subject's own conduct.
    """


@cli.command()
@click.option("--person", default="jiang", show_default=True, help="Whose entries to explain.")
@output_options
@handle_errors
def demo(person: str, fmt: str, policy_path: Path | None, max_paths: int | None) -> None:
    """Explain every entry on Jiang in the packaged seed case (examples/jiang_case)."""
    backend = open_backend(jiang_case_path())
    explanations = explain_about_person(backend, person, load_policy(policy_path))
    explanations.sort(key=lambda e: (e.entry.listed_at, e.entry.entry_id or ""))
    if fmt == "json":
        import json

        click.echo(
            json.dumps([explanation_dict(e) for e in explanations], indent=2, ensure_ascii=False)
        )
        return
    click.echo(
        f"The Jiang case: {len(explanations)} blacklist entries name {person} or a phone he owned.\n"
    )
    for e in explanations:
        click.echo(explanation_text(e))
        click.echo("")


@cli.command()
@click.argument("entry_id")
@backend_options
@output_options
@handle_errors
def explain(
    entry_id: str,
    data: Path | None,
    region: str,
    fmt: str,
    policy_path: Path | None,
    max_paths: int | None,
) -> None:
    """Explain the recorded blacklist entry ENTRY_ID."""
    policy = load_policy(policy_path)
    e = explain_entry(open_backend(data, region=region), entry_id, policy, max_paths=max_paths)
    click.echo(explanation_json(e) if fmt == "json" else explanation_text(e))


@cli.command()
@click.option("--platform", required=True, help="The platform that would list the subject.")
@click.option("--subject", required=True, help="A person_id, or a phone number.")
@click.option(
    "--subject-kind", type=click.Choice(["person", "phone"]), default="person", show_default=True
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Day of the proposed listing (default: today).",
)
@backend_options
@output_options
@handle_errors
def check(
    platform: str,
    subject: str,
    subject_kind: str,
    at: Any,
    data: Path | None,
    region: str,
    fmt: str,
    policy_path: Path | None,
    max_paths: int | None,
) -> None:
    """Pre-blacklist check: explain a listing that is only proposed."""
    policy = load_policy(policy_path)
    if subject_kind == "phone":
        try:
            subject = normalize_phone(subject, region)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--subject") from None
    day: date | None = at.date() if at is not None else None
    e = run_check(
        open_backend(data, region=region),
        platform,
        subject_kind,
        subject,
        day,
        policy,
        max_paths=max_paths,
    )
    click.echo(explanation_json(e) if fmt == "json" else explanation_text(e))


@cli.command()
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Output file, .csv or .jsonl."
)
@backend_options
@click.option(
    "--policy", "policy_path", type=click.Path(path_type=Path), default=None, metavar="FILE"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of the summary printed at the end.",
)
@handle_errors
def audit(out: Path, data: Path | None, region: str, policy_path: Path | None, fmt: str) -> None:
    """Explain and score every blacklist entry; write one row per entry to --out."""
    policy = load_policy(policy_path)
    backend = open_backend(data, region=region)
    total = backend.entry_count()
    with click.progressbar(length=total, label="auditing", file=sys.stderr) as bar:
        summary = run_audit(backend, out, policy, on_row=lambda _row: bar.update(1))
    if fmt == "json":
        import json

        click.echo(
            json.dumps(
                {"out": str(summary.path), "rows": summary.rows, "verdicts": summary.verdicts}
            )
        )
    else:
        counts = ", ".join(f"{v} {k}" for k, v in summary.verdicts.items()) or "no entries"
        click.echo(f"wrote {summary.rows} rows to {summary.path} ({counts})")


def main() -> None:
    cli(prog_name="spillover")


if __name__ == "__main__":
    main()
