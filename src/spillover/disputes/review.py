"""One call for ``spillover changes``: compare two versions of the data (folders, or one
folder and what Neo4j holds) and, with ``out``, write the changes (JSON, CSV) and the
notices to every platform that must act."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.outputs import check_outside
from ..errors import SpilloverError, UsageProblem
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_folder
from ..neo4j.settings import Neo4jSettings
from ..policy import Policy
from .changes import Changes, Version, check_sides, compare_audit, compare_versions, open_versions
from .notices import Notice, notices, write_notices
from .output import write_changes

__all__ = ["Review", "review"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Review:
    """What :func:`review` found and wrote: the changes, the notices, the files."""

    changes: Changes
    notices: tuple[Notice, ...]
    written: tuple[Path, ...]


def review(
    before: str | Path | None = None,
    after: str | Path | None = None,
    *,
    neo4j: Neo4jSettings | None = None,
    out: str | Path | None = None,
    check_log: str | Path | None = None,
    policy: Policy | None = None,
    region: str = DEFAULT_REGION,
    progress: Progress | None = None,
) -> Review:
    """Compare the data folders ``before`` and ``after`` (:func:`~spillover.disputes.changes`;
    a side left out is the data the Neo4j database of ``neo4j`` holds) and find the notices
    of the lifted entries; with ``out``, write into that new folder ``changes.json``,
    ``changes.csv`` and ``notices/`` (each notice in Markdown and HTML, in English and
    Chinese, and ``notices.json``), atomically. ``check_log``: the check service's log,
    whose checks of a lifted entry's subject are named in the notices. Every refusal comes
    before anything is written."""
    if check_log is not None and out is None:
        raise UsageProblem("--check-log names the checks in the notices: give --out DIR")
    check_sides(before, after, neo4j)
    target = Path(out) if out is not None else None
    for side, option in ((before, "--before"), (after, "--after")):
        if target is not None and side is not None:
            check_outside(target, side, data_option=option)
    if target is not None and (
        (target.exists() and not target.is_dir()) or (target.is_dir() and any(target.iterdir()))
    ):
        raise SpilloverError(f"{target}: the output folder must be new or empty")
    if before is not None and Path(before).is_file() and target is not None:
        raise UsageProblem(
            "the notices need the data before the correction: give --before the folder "
            "(an audit file gives the changes only, without --out)"
        )
    with open_versions(before, after, neo4j=neo4j, policy=policy, region=region) as (a, b):
        if not isinstance(a, Version):  # an earlier audit: the changes, no notices (no records)
            return Review(compare_audit(a, b, policy=policy, progress=progress), (), ())
        found = compare_versions(a, b, policy=policy, progress=progress, remedies=True)
        items = notices(found, a.backend, check_log=check_log)
        written: list[Path] = []
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_folder(target, private=True) as tmp:
                (tmp / "notices").mkdir()
                done = write_changes(found, tmp) + write_notices(
                    found, items, a.backend, tmp / "notices"
                )
            written = [target / p.relative_to(tmp) for p in done]
    return Review(found, items, tuple(written))
