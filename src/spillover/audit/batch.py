"""Batch audit (docs/contract.md §4): one row per blacklist entry, written as CSV or JSONL."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..data.fast import read_columns
from ..engines.batch import Index, coded_only, row_columns
from ..engines.batch import rows as kernel_rows
from ..engines.search import explain_entries
from ..errors import SpilloverError
from ..facts.graph import GraphBackend
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_file, neutralize
from ..memory import kept_heap, small_pages
from ..policy import Policy, default_policy
from .columnar import write_columns
from .rows import AUDIT_COLUMNS, audit_row

if TYPE_CHECKING:
    from ..engines.batch import AuditResult
    from ..facts.columns import Columns

__all__ = [
    "FORMATS",
    "METHODS",
    "AuditRow",
    "AuditSummary",
    "audit",
    "audit_folder",
    "audit_rows",
    "build_index",
    "pass_columns",
    "pass_rows",
    "write_audit",
    "write_audit_columns",
]


FORMATS = (".csv", ".jsonl")

#: an audit row: the fields of spillover.audit.rows.AuditRowOut, JSON-ready
AuditRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What :func:`write_audit` wrote: the file, its number of rows, the rows per verdict."""

    path: Path
    rows: int
    verdicts: dict[str, int]


METHODS = ("pass", "per-entry")


def audit_rows(
    backend: GraphBackend,
    policy: Policy | None = None,
    *,
    method: str = "pass",
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[AuditRow]:
    """One row per entry, in ``entry_id`` order: the fields of
    :class:`~spillover.audit.rows.AuditRowOut`, JSON-ready (dates as ISO text).

    ``method="pass"`` (default) scores every entry in one vectorized pass over the
    whole graph (:mod:`spillover.engines.batch`); ``"per-entry"`` explains entries one by
    one with :func:`spillover.engines.search.explain`. Both give the same rows. Audit rows
    carry no diagnosis of unexplained entries (``spillover explain`` gives it).
    """
    policy = policy or default_policy()
    if method == "per-entry":
        for batch in backend.iter_entries():
            for x in explain_entries(backend, batch, policy, max_paths=1, diagnose=False):
                yield audit_row(x).model_dump(mode="json")
        return
    if method != "pass":
        raise SpilloverError(f"unknown audit method {method!r}; choose one of {', '.join(METHODS)}")
    yield from pass_rows(backend.columns(), policy, progress=progress)


def pass_rows(
    columns: Columns,
    policy: Policy | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[AuditRow]:
    """Audit rows of a whole graph given as columns, from one pass of the kernel."""
    policy = policy or default_policy()
    yield from kernel_rows(_pass(columns, policy, progress), policy)


def pass_columns(
    columns: Columns,
    policy: Policy | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, pa.Array]:
    """The audit rows of :func:`pass_rows` as Arrow columns (null = None), in column order."""
    policy = policy or default_policy()
    return row_columns(_pass(columns, policy, progress), policy)


def build_index(
    columns: Columns, policy: Policy, progress: Callable[[str, int, int], None] | None
) -> Index:
    """The batch kernel's index of ``columns``, its build reported as the step ``index``."""
    if progress:
        progress("index", 0, 1)
    index = Index(columns, policy)
    if progress:
        progress("index", 1, 1)
    return index


def _pass(
    columns: Columns, policy: Policy, progress: Callable[[str, int, int], None] | None
) -> AuditResult:
    return build_index(columns, policy, progress).audit(progress=progress)


def _checked_out(out: str | Path) -> Path:
    out = Path(out)
    if out.name in FORMATS:  # ".csv" alone: a hidden file without a name, no suffix
        raise SpilloverError(f"{out}: give the audit file a name before {out.name}")
    if out.suffix not in FORMATS:
        raise SpilloverError(f"{out}: the audit file must end in .csv or .jsonl")
    if not out.parent.is_dir():
        raise SpilloverError(f"{out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise SpilloverError(f"{out}: is a directory; give a file name for --out")
    return out


def write_audit_columns(columns: Mapping[str, pa.Array], out: str | Path) -> AuditSummary:
    """Write audit rows given as columns (:func:`pass_columns`) to ``out``: the same file,
    byte for byte, as :func:`write_audit` writes from the same rows, made column by column
    (:mod:`spillover.audit.columnar`)."""
    out = _checked_out(out)
    verdicts = write_columns(columns, out)
    return AuditSummary(out, sum(verdicts.values()), verdicts)


def write_audit(
    rows: Iterable[AuditRow],
    out: str | Path,
    *,
    on_row: Callable[[AuditRow], None] | None = None,
) -> AuditSummary:
    """Write ``rows`` to ``out``; the format follows the extension (``.csv`` or ``.jsonl``).

    The file is written under a unique temporary name and moved into place at the
    end (:func:`spillover.files.write.atomic_file`), so a failed or killed audit never
    leaves a half-written file behind. CSV cells a spreadsheet would run as a
    formula are neutralized (:func:`spillover.files.write.neutralize`); JSONL is exact.
    """
    out = _checked_out(out)
    verdicts: Counter[str] = Counter()
    count = 0
    with atomic_file(out) as handle:
        writer = csv.writer(handle) if out.suffix == ".csv" else None
        if writer is not None:
            writer.writerow(AUDIT_COLUMNS)
        for row in rows:
            if writer is not None:
                writer.writerow(
                    ["" if row[c] is None else neutralize(row[c]) for c in AUDIT_COLUMNS]
                )
            else:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            verdicts[row["verdict"]] += 1
            count += 1
            if on_row is not None:
                on_row(row)
    return AuditSummary(out, count, dict(sorted(verdicts.items())))


def audit_folder(
    folder: str | Path,
    out: str | Path,
    policy: Policy | None = None,
    *,
    region: str = DEFAULT_REGION,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditSummary:
    """Audit a data folder without building a graph: fast columnar load, then one kernel pass.

    Freed memory is kept for reuse until the file is written (:func:`~spillover.memory.kept_heap`),
    in small pages (:func:`~spillover.memory.small_pages`)."""
    with small_pages(), kept_heap():
        return _audit_folder(folder, out, policy or default_policy(), region, progress)


def _audit_folder(
    folder: str | Path,
    out: str | Path,
    policy: Policy,
    region: str,
    progress: Callable[[str, int, int], None] | None,
) -> AuditSummary:
    # (only what the index reads is kept: the rest of the text is freed before it is
    # built, and what only its build read before the pass)
    columns = coded_only(read_columns(folder, region=region, progress=progress))
    pa.default_memory_pool().release_unused()
    _checked_out(out)
    index = build_index(columns, policy, progress)
    del columns
    index.release_build_columns()
    pa.default_memory_pool().release_unused()
    out_columns = row_columns(index.audit(progress=progress), policy)
    del index  # (the rows hold their own text: the index is freed before the file is written)
    return write_audit_columns(out_columns, out)


def audit(
    backend: GraphBackend,
    out: str | Path,
    policy: Policy | None = None,
    *,
    method: str = "pass",
    on_row: Callable[[AuditRow], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditSummary:
    """Explain and score every entry and write the audit file."""
    if method == "pass" and on_row is None:
        _checked_out(out)
        with small_pages(), kept_heap():  # as audit_folder (spillover.memory)
            return write_audit_columns(
                pass_columns(backend.columns(), policy, progress=progress), out
            )
    return write_audit(
        audit_rows(backend, policy, method=method, progress=progress), out, on_row=on_row
    )
