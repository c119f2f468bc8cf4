"""What the commands share: the option decorators defined once, the parameter types,
the graph source, the progress bars and the error handling.

Library errors (:class:`~spillover.errors.SpilloverError`) become a message on
stderr and exit code 1; so do running out of memory (a ``MemoryError``), and option values that are wrong (:class:`InvalidValue`); a malformed command line (missing or unknown options) exits 2, click's convention.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..audit.run import DEFAULT_MASTER
from ..connect import Source
from ..data.rows import MAX_YEAR, MIN_YEAR
from ..errors import DataError, OptionError, SpilloverError, SpilloverWarning, UsageProblem
from ..facts.phones import DEFAULT_REGION, check_region, normalize_phone
from ..facts.resident_id import mask_ids_in
from ..neo4j.settings import Neo4jSettings

__all__ = [
    "POLICY_HELP",
    "Decorator",
    "InvalidValue",
    "IsoDay",
    "Source",
    "StageProgress",
    "backend_options",
    "data_option",
    "format_option",
    "handle_errors",
    "key_values",
    "max_paths_option",
    "neo4j_options",
    "note",
    "output_options",
    "policy_option",
    "region_option",
    "seed_option",
    "spark_options",
    "subject_kind_option",
    "subject_name",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _fail(message: str) -> None:
    click.echo(f"spillover: error: {mask_ids_in(message)}", err=True)
    sys.exit(1)


def note(line: str) -> None:
    """One line on stderr; on a terminal it first clears a progress bar drawn on that line."""
    prefix = "\r\033[K" if sys.stderr.isatty() else ""
    click.echo(f"{prefix}spillover: note: {line}", err=True)


class InvalidValue(click.BadParameter):
    """An option whose value is wrong (an unknown region, an impossible day): exit code 1,
    like bad data; a malformed command line (a missing or unknown option) stays click's 2."""

    exit_code = 1


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors and running out of memory into one clean message (all problems
    for bad data) and exit 1; the library's warnings become notes (:func:`_warnings_as_notes`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                _warnings_as_notes()
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
        except MemoryError as exc:  # (numpy's: "Unable to allocate 634. MiB for an array ...")
            _fail(
                f"out of memory: {exc or 'an allocation failed'}; the data needs more memory "
                "than this machine or the process's limit (ulimit -v) allows"
            )

    return wrapper


def _warnings_as_notes() -> None:
    """Within a command (inside ``warnings.catch_warnings``, which puts both back): the
    library's warnings (:class:`~spillover.errors.SpilloverWarning`) as notes, every time;
    other warnings as Python shows them."""
    show = warnings.showwarning

    def shown(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, SpilloverWarning):
            note(mask_ids_in(str(message)))
        else:
            show(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", SpilloverWarning)
    warnings.showwarning = shown


def key_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """The callback of a repeatable ``NAME=VALUE`` option: the pairs as a dict."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise InvalidValue(f"{value!r} is not NAME=VALUE", ctx=ctx, param=param)
        out[key.strip()] = text
    return out


def spark_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--master`` and ``--conf``: the Spark settings of a command with ``--engine spark``."""
    func = click.option(
        "--conf",
        "conf",
        multiple=True,
        metavar="KEY=VALUE",
        callback=key_values,
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
        """The day ``value`` names, or the option refused (:class:`InvalidValue`)."""
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


def subject_name(subject: str, kind: str, region: str, hint: str) -> str:
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
        """Draw ``done`` of ``total`` on the bar of ``stage`` (a new stage closes the last)."""
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
        """Close the bar drawn last (the line stays on the terminal)."""
        for bar in self.bars.values():
            bar.__exit__(None, None, None)
        self.bars = {}


#: the keyword arguments of the Neo4j options, in the order of Neo4jSettings.from_env's
_NEO4J_KWARGS = ("neo4j_uri", "neo4j_user", "neo4j_password", "neo4j_database")


def _add_neo4j_options(func: Callable[..., Any]) -> Callable[..., Any]:
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


def _pop_neo4j(kwargs: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """The values of the Neo4j options (uri, user, password, database), taken out of ``kwargs``."""
    uri, user, password, database = (kwargs.pop(name) for name in _NEO4J_KWARGS)
    return uri, user, password, database


def neo4j_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The Neo4j options, handed to the command as one ``neo4j: Neo4jSettings | None``
    (None: no URI given, nor NEO4J_URI in the environment)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = Neo4jSettings.from_env(*_pop_neo4j(kwargs))
        return func(*args, neo4j=settings, **kwargs)

    return _add_neo4j_options(wrapper)


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data DIR`` (embedded graph) or the Neo4j options; passes ``source`` to the command.

    An explicit ``--data`` wins over a NEO4J_URI in the environment.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        text = kwargs.pop("data")
        source = Source.choose(text, *_pop_neo4j(kwargs), region=kwargs.pop("region"))
        return func(*args, source=source, **kwargs)

    command = region_option()(_add_neo4j_options(wrapper))
    return data_option(
        "Data folder (docs/contract.md §1) for the embedded in-memory graph.", as_text=True
    )(command)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--format text|json``, ``--policy`` and ``--max-paths`` of the per-entry commands."""
    func = max_paths_option("Paths to list per explanation (default: the policy's).")(func)
    func = policy_option()(func)
    return format_option(["text", "json"])(func)
