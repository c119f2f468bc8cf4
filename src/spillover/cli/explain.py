"""The commands on single entries and subjects: ``demo``, ``explain``, ``check``,
``remedy``, ``report`` and ``neighborhood``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from ..demo import demo_text, run_demo
from ..disputes import applied_dict, applied_text, apply_remedy
from ..disputes import check_options as check_apply_options
from ..engines.remedy import remedy as run_remedy
from ..engines.search import check as run_check
from ..engines.search import explain_entry
from ..errors import NotFoundError
from ..facts.phones import looks_like_phone
from ..neo4j.settings import Neo4jSettings
from ..policy import load_policy
from ..render.json import explanation_dict, explanation_json
from ..render.neighborhood import check_view_out, write_view
from ..render.neighborhood import neighborhood as build_view
from ..render.remedy import remedy_json, remedy_text
from ..render.report import check_report_out, write_report
from ..render.text import explanation_text
from ..text.safe import printable
from .options import (
    IsoDay,
    Source,
    backend_options,
    format_option,
    handle_errors,
    neo4j_options,
    output_options,
    policy_option,
    subject_kind_option,
    subject_name,
)

__all__ = ["check", "demo", "explain", "neighborhood", "remedy", "report"]


@click.command()
@click.option("--person", default="jiang", show_default=True, help="Whose entries to explain.")
@neo4j_options
@output_options
@handle_errors
def demo(
    person: str,
    fmt: str,
    policy_path: Path | None,
    max_paths: int | None,
    neo4j: Neo4jSettings | None,
) -> None:
    """Explain every entry on Jiang in the packaged seed case (examples/jiang_case).

    With a Neo4j URI the case is first ingested into that database (dataset
    jiang_case; refused if the database holds another dataset), then explained from there.
    """
    result = run_demo(person, load_policy(policy_path), neo4j=neo4j, max_paths=max_paths)
    if fmt == "json":
        click.echo(
            json.dumps(
                [explanation_dict(e) for e in result.explanations], indent=2, ensure_ascii=False
            )
        )
    else:
        click.echo(demo_text(result))


@click.command()
@click.argument("entry_id")
@backend_options
@output_options
@handle_errors
def explain(
    entry_id: str, source: Source, fmt: str, policy_path: Path | None, max_paths: int | None
) -> None:
    """Explain the recorded blacklist entry ENTRY_ID."""
    policy = load_policy(policy_path)
    with source.open() as backend:
        e = explain_entry(backend, entry_id, policy, max_paths=max_paths)
    click.echo(explanation_json(e) if fmt == "json" else explanation_text(e))


@click.command()
@click.option("--platform", required=True, help="The platform that would list the subject.")
@click.option(
    "--subject", required=True, help="A person_id, a phone number, or a platform record_id."
)
@subject_kind_option("person", "phone", "record")
@click.option(
    "--at",
    "at",
    type=IsoDay(),
    default=None,
    help="Day of the proposed listing (default: today, UTC).",
)
@backend_options
@output_options
@handle_errors
def check(
    platform: str,
    subject: str,
    subject_kind: str,
    at: date | None,
    source: Source,
    fmt: str,
    policy_path: Path | None,
    max_paths: int | None,
) -> None:
    """Pre-blacklist check: explain a listing that is only proposed."""
    policy = load_policy(policy_path)
    subject = subject_name(subject, subject_kind, source.region, "--subject")
    day: date | None = at
    with source.open() as backend:
        try:
            e = run_check(
                backend, platform, subject_kind, subject, day, policy, max_paths=max_paths
            )
        except NotFoundError as exc:
            if subject_kind == "person" and looks_like_phone(subject, source.region):
                raise NotFoundError(
                    f"{exc}; {subject!r} looks like a phone number: "
                    "did you mean --subject-kind phone?"
                ) from None
            raise
    click.echo(explanation_json(e) if fmt == "json" else explanation_text(e))


@click.command()
@click.argument("entry_id", required=False)
@click.option(
    "--subject",
    metavar="ID",
    help="With --apply: the remedy of every entry on this person (or phone).",
)
@subject_kind_option("person", "phone")
@click.option(
    "--apply",
    "apply",
    is_flag=True,
    help="Write a copy of the data folder (--data) with the remedy's records corrected.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="The new folder --apply writes (the original folder is not changed).",
)
@backend_options
@format_option(["text", "json"])
@policy_option()
@handle_errors
def remedy(
    entry_id: str | None,
    subject: str | None,
    subject_kind: str,
    apply: bool,
    out: Path | None,
    source: Source,
    fmt: str,
    policy_path: Path | None,
) -> None:
    """The smallest set of records whose correction clears ENTRY_ID, and whom to ask.

    With --apply --out DIR, a copy of the data folder with those records corrected (for
    ENTRY_ID, or every entry on --subject), to compare with `spillover changes`.
    """
    check_apply_options(entry_id=entry_id, subject=subject, apply=apply, out=out, data=source.data)
    if subject is not None:
        subject = subject_name(subject, subject_kind, source.region, "--subject")
    policy = load_policy(policy_path)
    if apply:
        assert source.data is not None and out is not None
        done = apply_remedy(
            source.data,
            out,
            entry_id=entry_id,
            subject=subject,
            subject_kind=subject_kind,
            policy=policy,
            region=source.region,
        )
        text = json.dumps(applied_dict(done), indent=2, ensure_ascii=False)
        click.echo(text if fmt == "json" else applied_text(done), nl=fmt == "json")
        return
    assert entry_id is not None
    with source.open() as backend:
        r = run_remedy(backend, entry_id, policy)
    click.echo(remedy_json(r) if fmt == "json" else remedy_text(r))


@click.command()
@click.argument("subject")
@subject_kind_option("person", "phone")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE.html|FILE.md",
    help="Where to write the report; the suffix chooses HTML or Markdown.",
)
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@policy_option()
@backend_options
@handle_errors
def report(
    subject: str,
    subject_kind: str,
    out: Path,
    lang: str,
    policy_path: Path | None,
    source: Source,
) -> None:
    """A dispute report on SUBJECT (a person_id or a phone): every listing, why, and the remedy."""
    check_report_out(out)
    policy = load_policy(policy_path)
    subject = subject_name(subject, subject_kind, source.region, "SUBJECT")
    with source.open() as backend:
        written = write_report(backend, subject, out, subject_kind, lang=lang, policy=policy)
    click.echo(f"wrote {written}", err=True)


@click.command()
@click.argument("subject")
@subject_kind_option("person", "phone")
@click.option("--hops", type=click.IntRange(min=0), default=3, show_default=True)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Cap on the nodes shown; what is left out is said in the output.",
)
@format_option(
    ["html", "graphml", "json"],
    help="html: one offline interactive file (needs spillover[view]); graphml: Gephi, yEd.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output file.")
@policy_option(help=None)
@backend_options
@handle_errors
def neighborhood(
    subject: str,
    subject_kind: str,
    hops: int,
    max_nodes: int,
    fmt: str,
    out: Path,
    policy_path: Path | None,
    source: Source,
) -> None:
    """The ego network of a person or a phone: an interactive HTML view, GraphML or JSON."""
    check_view_out(out, fmt, data=source.data)
    policy = load_policy(policy_path)
    subject = subject_name(subject, subject_kind, source.region, "SUBJECT")
    with source.open() as backend:
        view = build_view(
            backend, subject, subject_kind, hops=hops, max_nodes=max_nodes, policy=policy
        )
    path = write_view(view, out, fmt, data=source.data)
    click.echo(printable(f"wrote {path}: {view.note}"))
