"""The command line: parse, one library call, print (the script ``spillover`` is ``main``).

One module per command family, over the shared option decorators of
:mod:`spillover.cli.options`: :mod:`~spillover.cli.explain` (demo, explain, check,
remedy, report, neighborhood), :mod:`~spillover.cli.audit` (audit, findings, simulate),
:mod:`~spillover.cli.neo4j` (ingest, query), :mod:`~spillover.cli.data` (synth, export,
link), :mod:`~spillover.cli.service` (serve, checks) and :mod:`~spillover.cli.disputes`
(changes).
"""

from __future__ import annotations

from typing import Any

import click

from ..facts.resident_id import mask_ids_in
from ..neo4j.driverlog import route_driver_logs
from ..version import __version__
from . import audit, data, disputes, explain, neo4j, service
from .options import note

__all__ = ["cli", "main"]


def _mask(exc: click.ClickException) -> None:
    """Mask the ID numbers in ``exc``'s message (click's stubs type it as final; it is a
    plain attribute, read when the error is shown)."""
    exc.message = mask_ids_in(exc.message)  # type: ignore[misc]


class _MaskedGroup(click.Group):
    """The command group, whose command-line errors (click's own: a bad ``--at`` or
    ``--format``, an unknown option or command) echo no resident ID number: their message
    is masked (:func:`~spillover.facts.resident_id.mask_ids_in`), as every other message."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            _mask(exc)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            _mask(exc)
            raise


@click.group(cls=_MaskedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spillover")
def cli() -> None:
    """Trace how blacklist status spread from defaulters to unrelated people.

    Every blacklisting gets explanation paths and a contamination score: the share
    of it that rests on other people's debts rather than the subject's own conduct.
    """
    route_driver_logs(note)


for _command in (
    explain.demo,
    explain.explain,
    explain.remedy,
    explain.report,
    explain.check,
    audit.audit,
    neo4j.query,
    neo4j.ingest,
    data.synth,
    data.export,
    data.link,
    explain.neighborhood,
    audit.findings,
    service.serve,
    service.checks,
    audit.simulate,
    disputes.changes,
):
    cli.add_command(_command)


def main() -> None:
    """Run the ``spillover`` command line (the console script's entry point)."""
    cli(prog_name="spillover")
