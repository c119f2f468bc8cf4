"""The commands that write data folders: ``synth`` (a synthetic one), ``export`` (a
pseudonymized copy) and ``link`` (platform records resolved to people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..data.export import check_options, export_pseudonymized, generate_key
from ..data.formats import FORMATS
from ..link.settings import AUTO_TRAIN_RECORDS, require_extra
from ..link.settings import DEFAULT_THRESHOLD as DEFAULT_LINK_THRESHOLD
from ..link.settings import MAX_BLOCK_SIZE as DEFAULT_MAX_BLOCK_SIZE
from ..synth.generate import generate
from .options import (
    StageProgress,
    data_option,
    format_option,
    handle_errors,
    region_option,
    seed_option,
)

__all__ = ["export", "link", "synth"]


@click.command()
@click.option("--people", type=click.IntRange(min=10), required=True, help="How many people.")
@seed_option
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="New (or empty) folder."
)
@format_option(
    FORMATS, dest="table_format", help="Form of the data tables (the ground truth stays CSV)."
)
@click.option(
    "--records",
    is_flag=True,
    help="Also write per-platform customer records (the records table, in the form of "
    "--format) with their true people (ground_truth/records.csv).",
)
@handle_errors
def synth(people: int, seed: int, out: Path, table_format: str, records: bool) -> None:
    """Write a synthetic, contract-valid data folder with its ground truth (docs/synthetic-data.md)."""
    progress = StageProgress()
    try:
        summary = generate(
            people, seed, out, progress=progress, format=table_format, records=records
        )
    finally:
        progress.close()
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts.items())
    click.echo(
        f"wrote {out} in {summary.elapsed:.1f}s: {counts}; ground truth in {out}/ground_truth"
    )


@click.command()
@data_option("Data folder (required to export).")
@click.option(
    "--out", type=click.Path(path_type=Path), help="New (or empty) folder (required to export)."
)
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace names, phone numbers, ID numbers and ids by keyed pseudonyms (required).",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, allow_dash=True),
    metavar="FILE",
    help="Secret key: 32 random bytes or more (see --generate-key); - reads it from stdin.",
)
@click.option(
    "--generate-key",
    "new_key_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Only write a new random key to the new FILE (mode 0600); no export.",
)
@region_option(check=False)
@format_option(FORMATS, dest="table_format", help="Form of the tables written.")
@handle_errors
def export(
    data: Path | None,
    out: Path | None,
    pseudonymize: bool,
    key_file: Path | None,
    new_key_file: Path | None,
    region: str,
    table_format: str,
) -> None:
    """Write a pseudonymized copy of the data folder --data to --out (docs/privacy.md);
    or make a key (--generate-key FILE)."""
    if new_key_file is None:
        _require("data", "out")  # the options an export needs, as click names them
    check_options(
        data=data, out=out, pseudonymize=pseudonymize, key_file=key_file, new_key_file=new_key_file
    )
    if new_key_file is not None:
        generate_key(new_key_file)
        click.echo(f"wrote a new key to {new_key_file} (mode 0600); keep it apart from exports")
        return
    assert data is not None and out is not None  # required above
    progress = StageProgress()
    try:
        summary = export_pseudonymized(
            data, out, key_file=key_file, region=region, progress=progress, format=table_format
        )
    finally:
        progress.close()
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts.items())
    click.echo(f"wrote {out} (pseudonymized): {counts}")


def _require(*names: str) -> None:
    """Refuse the command (click's usage error, exit 2) when an option of NAMES is missing."""
    ctx = click.get_current_context()
    for param in ctx.command.params:
        if param.name in names and ctx.params[param.name] is None:
            raise click.MissingParameter(ctx=ctx, param=param)


@click.command()
@data_option("Data folder.", required=True)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="New (or empty) folder."
)
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="A Splink model (settings JSON); default: the one shipped (docs/linkage.md).",
)
@click.option(
    "--train/--no-train",
    default=None,
    help="Estimate the model from these records (EM, no labels); default: trained when "
    f"there is no --settings and at least {AUTO_TRAIN_RECORDS} records, else the shipped model.",
)
@click.option(
    "--save-settings",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Write the model used (trained with --train) to FILE.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=DEFAULT_LINK_THRESHOLD,
    show_default=True,
    help="Match probability at or above which two records are one person.",
)
@seed_option
@click.option(
    "--max-block-size",
    type=click.IntRange(min=2),
    default=DEFAULT_MAX_BLOCK_SIZE,
    show_default=True,
    help="A blocking key (a phone, an ID number, a name in a city) on more records than this "
    "is not used alone to pair records; the summary says how many were left out.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write a report on the linkage to the new folder DIR: comparisons per blocking "
    "rule, blocking recall (estimated), the m/u table, match-weight charts (PNG, SVG, HTML).",
)
@click.option(
    "--truth",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="With --report: a CSV of record_id,person_id (each record's true person, as "
    "synth's ground_truth/records.csv) for the exact blocking recall and pairwise quality.",
)
@region_option()
@handle_errors
def link(
    data: Path,
    out: Path,
    settings_path: Path | None,
    train: bool | None,
    save_settings: Path | None,
    threshold: float,
    seed: int,
    max_block_size: int,
    report_dir: Path | None,
    truth: Path | None,
    region: str,
) -> None:
    """Resolve the platform records of --data to people; write the linked folder --out."""
    if truth is not None and report_dir is None:
        raise click.UsageError("--truth needs --report DIR")
    require_extra()
    from ..link.resolve import link as link_records

    options: dict[str, Any] = {
        "settings": settings_path,
        "train": train,
        "threshold": threshold,
        "seed": seed,
        "save_settings": save_settings,
        "max_block_size": max_block_size,
        "region": region,
    }
    report = None
    if report_dir is None:
        s = link_records(data, out, **options)
    else:
        from ..link.report import link_report

        s, report = link_report(data, out, report_dir, truth=truth, **options)
    click.echo(
        f"wrote {out} in {s.elapsed:.1f}s: {s.records} records, {s.known} known, "
        + (f"{s.held} kept as given (named by a loan with its borrower), " if s.held else "")
        + f"{s.matched} matched, {s.people_new} new people; {s.pairs_scored} pairs scored, "
        f"{s.pairs_joined} joined, {s.pairs_refused_phone_only} refused (no name or ID agreed)"
        + (
            f", {s.pairs_refused_misused_phone} refused (names only similar on a misused phone)"
            if s.pairs_refused_misused_phone
            else ""
        )
        + (
            f", {s.pairs_refused_id_conflict} left out (two resident ID numbers)"
            if s.pairs_refused_id_conflict
            else ""
        )
        + (
            f", {s.pairs_refused_birth_conflict} left out (two birth dates, no ID agreeing)"
            if s.pairs_refused_birth_conflict
            else ""
        )
    )
    click.echo(f"model: {'trained on these records' if s.trained else s.settings}")
    for note in s.notes:
        click.echo(f"note: {note}")
    if report is not None:
        recall = report.recall.recall_estimate
        exact = f", exact {report.truth.blocking_recall:g}" if report.truth is not None else ""
        click.echo(
            f"wrote the report to {report_dir}: {report.pairs_scored} pairs compared, "
            f"blocking recall estimated {'n/a' if recall is None else f'{recall:g}'}{exact}"
        )
