"""The ``spillover`` command line: each command parses, makes one library call, and prints.

Library errors (:class:`~spillover.errors.SpilloverError`) become a message on
stderr and exit code 1; so do option values that are wrong (:class:`InvalidValue`); a malformed command line (missing or unknown options) exits 2, click's convention.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..audit.run import DEFAULT_MASTER, ENGINES, AuditRequest, run_audit
from ..connect import open_backend
from ..data.formats import FORMATS
from ..data.rows import MAX_YEAR, MIN_YEAR
from ..demo import demo_text, run_demo
from ..engines.search import check as run_check
from ..engines.search import explain_entry
from ..errors import DataError, NotFoundError, OptionError, SpilloverError, UsageProblem
from ..facts.graph import GraphBackend
from ..facts.phones import DEFAULT_REGION, check_region, looks_like_phone, normalize_phone
from ..facts.resident_id import mask_ids_in
from ..link.settings import AUTO_TRAIN_RECORDS, require_extra
from ..link.settings import DEFAULT_THRESHOLD as DEFAULT_LINK_THRESHOLD
from ..link.settings import MAX_BLOCK_SIZE as DEFAULT_MAX_BLOCK_SIZE
from ..neo4j.driverlog import route_driver_logs
from ..neo4j.investigate import WriteBackSummary
from ..neo4j.settings import Neo4jSettings
from ..policy import load_policy
from ..render.json import explanation_dict, explanation_json
from ..render.text import explanation_text
from ..text.safe import printable
from ..version import __version__

__all__ = ["cli", "main"]


def _fail(message: str) -> None:
    click.echo(f"spillover: error: {mask_ids_in(message)}", err=True)
    sys.exit(1)


class InvalidValue(click.BadParameter):
    """An option whose value is wrong (an unknown region, an impossible day): exit code 1,
    like bad data; a malformed command line (a missing or unknown option) stays click's 2."""

    exit_code = 1


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one clean message (all problems for bad data) and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DataError as exc:
            click.echo(f"spillover: error: {exc.summary()}:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            if exc.truncated:
                click.echo(f"  {exc.more_line()}", err=True)
            sys.exit(1)
        except OptionError as exc:
            raise InvalidValue(mask_ids_in(exc.reason), param_hint=exc.option) from None
        except UsageProblem as exc:
            raise click.UsageError(str(exc)) from None
        except SpilloverError as exc:
            _fail(str(exc))

    return wrapper


def spark_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--master`` and ``--conf``: the Spark settings of a command with ``--engine spark``."""
    func = click.option(
        "--conf",
        "conf",
        multiple=True,
        metavar="KEY=VALUE",
        callback=lambda ctx, param, values: _param(ctx, param, values),
        help="With --engine spark: a Spark setting (repeatable), e.g. spark.executor.memory=8g.",
    )(func)
    return click.option(
        "--master",
        default=DEFAULT_MASTER,
        show_default=True,
        help="With --engine spark: the Spark master (local[N], spark://..., yarn, k8s://...).",
    )(func)


def _region_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_region(value)
    except ValueError as exc:
        raise InvalidValue(str(exc), ctx=ctx, param=param) from None


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def region_option(*, check: bool = True) -> Decorator:
    """``--region CC``: checked against the regions phonenumbers knows (and described in
    the help), or, with ``check=False``, taken as given (the commands that had it so)."""
    if not check:
        return click.option("--region", default=DEFAULT_REGION, show_default=True, metavar="CC")
    return click.option(
        "--region",
        default=DEFAULT_REGION,
        show_default=True,
        metavar="CC",
        callback=_region_option,
        help="Region for phone numbers written without +country code.",
    )


#: the help of ``--policy`` where the command describes it
POLICY_HELP = "Scoring policy TOML (default: the packaged one)."


def policy_option(help: str | None = POLICY_HELP) -> Decorator:
    """``--policy FILE`` (the command's ``policy_path``); ``help=None``: not described."""
    return click.option(
        "--policy",
        "policy_path",
        type=click.Path(path_type=Path),
        default=None,
        metavar="FILE",
        help=help,
    )


def format_option(
    choices: Sequence[str], *, dest: str = "fmt", help: str | None = None
) -> Decorator:
    """``--format`` among CHOICES, the first the default (the command's ``fmt``, or DEST)."""
    return click.option(
        "--format",
        dest,
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help,
    )


def subject_kind_option(*kinds: str) -> Decorator:
    """``--subject-kind`` among KINDS (``person`` the default)."""
    return click.option(
        "--subject-kind", type=click.Choice(list(kinds)), default="person", show_default=True
    )


#: ``--seed N``: the seed of a random generator (0 by default)
seed_option: Decorator = click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True
)


def max_paths_option(help: str) -> Decorator:
    """``--max-paths N`` (N >= 1; default: the policy's)."""
    return click.option("--max-paths", type=click.IntRange(min=1), default=None, help=help)


def data_option(help: str, *, required: bool = False, as_text: bool = False) -> Decorator:
    """``--data DIR``: a Path, or (``as_text``) the text as typed (a URI keeps its ``//``)."""
    kind = click.Path() if as_text else click.Path(path_type=Path)
    return click.option("--data", "data", type=kind, metavar="DIR", required=required, help=help)


class IsoDay(click.ParamType):  # type: ignore[type-arg]  # generic only in click's newest stubs
    """A day written ``YYYY-MM-DD``; an impossible day (2024-02-30) is named as such."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value).strip()
        parts = text.split("-")
        if (
            len(parts) != 3
            or [len(p) for p in parts] != [4, 2, 2]
            or not all(p.isascii() and p.isdigit() for p in parts)
        ):
            raise InvalidValue(f"{value!r} is not a date written YYYY-MM-DD", ctx, param)
        if not MIN_YEAR <= int(parts[0]) <= MAX_YEAR:
            raise InvalidValue(
                f"{text} is out of range: the year must lie in {MIN_YEAR}-{MAX_YEAR}", ctx, param
            )
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise InvalidValue(f"{text} is an impossible date ({exc})", ctx, param) from None


def _subject(subject: str, kind: str, region: str, hint: str) -> str:
    """A subject as the graph names it: a phone number in E.164 (refused with the option
    named in ``hint`` when it is no valid number), a person id as given."""
    if kind != "phone":
        return subject
    try:
        return normalize_phone(subject, region)
    except ValueError as exc:
        raise InvalidValue(str(exc), param_hint=hint) from None


class StageProgress:
    """``progress(stage, done, total)`` callbacks drawn as one click progress bar per stage.

    Draws only on a terminal; elsewhere (pipes, CI logs) it stays silent.
    """

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage not in self.bars:
            self.close()
            bar = click.progressbar(length=max(total, 1), label=f"{stage:<14}", file=sys.stderr)
            bar.__enter__()
            self.bars = {stage: bar}
        bar = self.bars[stage]
        if total and bar.length != total:
            bar.length = total
        bar.update(max(done - bar.pos, 0))

    def close(self) -> None:
        for bar in self.bars.values():
            bar.__exit__(None, None, None)
        self.bars = {}


@dataclass(frozen=True)
class Source:
    """Where the graph comes from, as the user gave it."""

    data: Path | None
    neo4j: Neo4jSettings | None
    region: str
    #: --data as typed (a URI such as hdfs://nn/data keeps its "//": the Spark engine)
    data_text: str | None = None

    @contextmanager
    def open(self) -> Iterator[GraphBackend]:
        backend = open_backend(self.data, self.neo4j, region=self.region)
        try:
            yield backend
        finally:
            backend.close()


def neo4j_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--neo4j-uri`` and friends; each falls back to its NEO4J_* environment variable."""
    for option in reversed(
        [
            click.option(
                "--neo4j-uri",
                metavar="URI",
                help="Neo4j Bolt URI (env NEO4J_URI), e.g. bolt://localhost:7687.",
            ),
            click.option(
                "--neo4j-user", metavar="USER", help="Neo4j user (env NEO4J_USER, default neo4j)."
            ),
            click.option(
                "--neo4j-password", metavar="PW", help="Neo4j password (env NEO4J_PASSWORD)."
            ),
            click.option(
                "--neo4j-database",
                metavar="DB",
                help="Neo4j database (env NEO4J_DATABASE, default neo4j).",
            ),
        ]
    ):
        func = option(func)
    return func


def _settings(kwargs: dict[str, Any], required: bool) -> Neo4jSettings | None:
    settings = Neo4jSettings.from_env(
        kwargs.pop("neo4j_uri"),
        kwargs.pop("neo4j_user"),
        kwargs.pop("neo4j_password"),
        kwargs.pop("neo4j_database"),
    )
    if settings is None and required:
        raise SpilloverError("no Neo4j URI: pass --neo4j-uri or set NEO4J_URI")
    return settings


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data DIR`` (embedded graph) or the Neo4j options; passes ``source`` to the command.

    An explicit ``--data`` wins over a NEO4J_URI in the environment.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        text = kwargs.pop("data")
        data = Path(text) if text is not None else None
        explicit_uri = kwargs["neo4j_uri"] is not None
        settings = _settings(kwargs, required=False)
        if data is not None and not explicit_uri:
            settings = None
        source = Source(data, settings, kwargs.pop("region"), text)
        return func(*args, source=source, **kwargs)

    command = region_option()(neo4j_options(wrapper))
    return data_option(
        "Data folder (docs/contract.md §1) for the embedded in-memory graph.", as_text=True
    )(command)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--format text|json``, ``--policy`` and ``--max-paths`` of the per-entry commands."""
    func = max_paths_option("Paths to list per explanation (default: the policy's).")(func)
    func = policy_option()(func)
    return format_option(["text", "json"])(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spillover")
def cli() -> None:
    """Trace how blacklist status spread from defaulters to unrelated people.

    Every blacklisting gets explanation paths and a contamination score: the share
    of it that rests on other people's debts rather than the subject's own conduct.
    """
    route_driver_logs(_note)


def _note(line: str) -> None:
    """One line on stderr; on a terminal it first clears a progress bar drawn on that line."""
    prefix = "\r\033[K" if sys.stderr.isatty() else ""
    click.echo(f"{prefix}spillover: note: {line}", err=True)


@cli.command()
@click.option("--person", default="jiang", show_default=True, help="Whose entries to explain.")
@neo4j_options
@output_options
@handle_errors
def demo(
    person: str, fmt: str, policy_path: Path | None, max_paths: int | None, **neo4j: Any
) -> None:
    """Explain every entry on Jiang in the packaged seed case (examples/jiang_case).

    With a Neo4j URI the case is first ingested into that database (dataset
    jiang_case; refused if the database holds another dataset), then explained from there.
    """
    result = run_demo(
        person,
        load_policy(policy_path),
        neo4j=_settings(neo4j, required=False),
        max_paths=max_paths,
    )
    if fmt == "json":
        click.echo(
            json.dumps(
                [explanation_dict(e) for e in result.explanations], indent=2, ensure_ascii=False
            )
        )
    else:
        click.echo(demo_text(result))


@cli.command()
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


@cli.command()
@click.argument("entry_id")
@backend_options
@format_option(["text", "json"])
@policy_option()
@handle_errors
def remedy(entry_id: str, source: Source, fmt: str, policy_path: Path | None) -> None:
    """The smallest set of records whose correction clears ENTRY_ID, and whom to ask."""
    from ..engines.remedy import remedy as run_remedy
    from ..engines.remedy import remedy_json, remedy_text

    policy = load_policy(policy_path)
    with source.open() as backend:
        r = run_remedy(backend, entry_id, policy)
    click.echo(remedy_json(r) if fmt == "json" else remedy_text(r))


@cli.command()
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
    from ..render.report import write_report

    policy = load_policy(policy_path)
    subject = _subject(subject, subject_kind, source.region, "SUBJECT")
    with source.open() as backend:
        written = write_report(backend, subject, out, subject_kind, lang=lang, policy=policy)
    click.echo(f"wrote {written}", err=True)


@cli.command()
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
    help="Day of the proposed listing (default: today).",
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
    subject = _subject(subject, subject_kind, source.region, "--subject")
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


@cli.command()
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
        master=master,
        conf=conf,
    )
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


def _param(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise InvalidValue(f"{value!r} is not NAME=VALUE", ctx=ctx, param=param)
        out[key.strip()] = text
    return out


@cli.command()
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the saved queries and exit.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_param,
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
    **neo4j: Any,
) -> None:
    """Run the saved investigation query NAME on Neo4j (docs/investigating.md)."""
    from ..neo4j.investigate import format_result, list_saved_queries, run_saved_query, write_result

    if list_only or name is None:
        for q in list_saved_queries():
            click.echo(f"{q.name:<26} {q.title}")
        return
    settings = _settings(neo4j, required=True)
    assert settings is not None
    from ..neo4j.store import connect

    driver = connect(settings)
    try:
        result = run_saved_query(driver, settings.database, name, params)
    finally:
        driver.close()
    if out is not None:
        write_result(result, fmt, out)
        click.echo(f"wrote {len(result.rows)} rows to {out}", err=True)
    else:
        click.echo(format_result(result, fmt), nl=False)


@cli.command()
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
    help="With --bulk: write the import files into this new folder and keep them.",
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
    **neo4j: Any,
) -> None:
    """Validate the data folder FOLDER and make the Neo4j database equal it.

    Rows that changed since the last ingest are updated and rows that are no longer
    in the folder are removed, so the database ends up holding exactly what a fresh
    ingest of the folder writes. Nothing is written when the folder has any problem;
    running it twice on the same folder changes nothing.

    With --bulk, a first load writes the files of Neo4j's offline importer instead,
    imports them into the empty database and applies the schema: the same graph.
    """
    from ..neo4j.ingest import check_options, ingest_folder
    from ..neo4j.store import connect

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
    settings = _settings(neo4j, required=True)
    assert settings is not None
    if wipe and not yes and not plan:
        click.confirm(
            f"Delete every node and relationship in database {settings.database!r} at {settings.uri}?",
            abort=True,
            err=True,
        )
    driver = connect(settings)
    progress = StageProgress()
    try:
        summary = ingest_folder(
            folder,
            driver,
            settings.database,
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
        driver.close()
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
    neo4j: dict[str, Any],
) -> None:
    """``ingest --bulk``: one call of :func:`spillover.neo4j.bulk.bulk_ingest`."""
    import shlex

    from ..neo4j.bulk import bulk_ingest, default_admin

    settings = _settings(neo4j, required=not files_only)
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


@cli.command()
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
    help="Also write per-platform customer records (records.csv) with their true people.",
)
@handle_errors
def synth(people: int, seed: int, out: Path, table_format: str, records: bool) -> None:
    """Write a synthetic, contract-valid data folder with its ground truth (docs/synthetic-data.md)."""
    from ..synth.generate import generate

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


@cli.command()
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
    from ..data.export import export_pseudonymized, generate_key

    if new_key_file is not None:
        if data is not None or out is not None or pseudonymize or key_file is not None:
            raise click.UsageError(
                "--generate-key only makes a key: export with --key-file in a second command"
            )
        generate_key(new_key_file)
        click.echo(f"wrote a new key to {new_key_file} (mode 0600); keep it apart from exports")
        return
    ctx = click.get_current_context()
    for param in ctx.command.params:
        if param.name in ("data", "out") and ctx.params[param.name] is None:
            raise click.MissingParameter(ctx=ctx, param=param)
    assert data is not None and out is not None
    if not pseudonymize:
        raise click.UsageError("export writes pseudonymized data only: pass --pseudonymize")
    if key_file is None:
        raise click.UsageError("--pseudonymize needs --key-file FILE")
    progress = StageProgress()
    try:
        summary = export_pseudonymized(
            data, out, key_file=key_file, region=region, progress=progress, format=table_format
        )
    finally:
        progress.close()
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts.items())
    click.echo(f"wrote {out} (pseudonymized): {counts}")


@cli.command()
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
) -> None:
    """Resolve the platform records of --data to people; write the linked folder --out."""
    require_extra()
    from ..link.resolve import link as link_records

    s = link_records(
        data,
        out,
        settings=settings_path,
        train=train,
        threshold=threshold,
        seed=seed,
        save_settings=save_settings,
        max_block_size=max_block_size,
    )
    click.echo(
        f"wrote {out} in {s.elapsed:.1f}s: {s.records} records, {s.known} known, "
        f"{s.matched} matched, {s.people_new} new people; {s.pairs_scored} pairs scored, "
        f"{s.pairs_joined} joined, {s.pairs_refused_phone_only} refused (no name or ID agreed)"
    )
    click.echo(f"model: {'trained on these records' if s.trained else s.settings}")
    for note in s.notes:
        click.echo(f"note: {note}")


@cli.command()
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
    from ..render.neighborhood import neighborhood as build_view
    from ..render.neighborhood import write_view

    policy = load_policy(policy_path)
    subject = _subject(subject, subject_kind, source.region, "SUBJECT")
    with source.open() as backend:
        view = build_view(
            backend, subject, subject_kind, hops=hops, max_nodes=max_nodes, policy=policy
        )
    path = write_view(view, out, fmt)
    click.echo(printable(f"wrote {path}: {view.note}"))


@cli.command()
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
    from ..audit.findings import find, findings_text

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


@cli.command()
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
    help="Append-only JSON-lines record of every check (rotated).",
)
@click.option("--check-log-max-bytes", type=click.IntRange(min=1024), default=50 * 1024 * 1024)
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
) -> None:
    """Serve the pre-blacklist check API over HTTP (docs/service.md; needs spillover[serve])."""
    try:
        from ..service.app import ServeSpec
        from ..service.app import serve as run_service
    except ImportError as exc:
        raise SpilloverError(
            f"spillover serve needs the serve extra ({exc.name} is missing): "
            "pip install 'spillover[serve]'"
        ) from None
    spec = ServeSpec(
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
        spec,
        host,
        port,
        workers=workers,
        graceful_seconds=graceful_seconds,
        neo4j_password=source.neo4j.password if source.neo4j is not None else None,
    )


@cli.command()
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
    from ..service.checklog import read_checks

    if subject is not None and looks_like_phone(subject, region):
        subject = normalize_phone(subject, region)
    for record in read_checks(log_path, subject):
        click.echo(json.dumps(record, ensure_ascii=False))


@cli.command()
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
    from ..simulate import run as sim

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


def main() -> None:
    """Run the ``spillover`` command line (the console script's entry point)."""
    cli(prog_name="spillover")


if __name__ == "__main__":
    main()
