"""What a correction changed: every entry's answer before and after, and the records behind it.

:func:`changes` audits two data folders of one dataset, ``before`` (the data as it was) and
``after`` (a corrected copy: :func:`spillover.disputes.apply_remedy`, or the folder a lender
sent back), and compares every entry's contamination, verdict, recommendation and best
path. An entry is

- **lifted** when it rested on other people's debts before (``spillover``) and no longer
  does (its verdict is now ``own_conduct`` or ``unexplained``, or it is gone);
- **new** when it rests on other people's debts only after (a correction can add ties);
- **changed** when any of its answers moved otherwise;
- **added** / **removed** when it is in only one of the folders and is not spillover there.

Unchanged entries are counted, not listed. Each change carries the records that caused
it: the correctable records (:class:`spillover.engines.remedy.Record`) on the entry's
explanation paths that the correction removed (paths before) or added (paths after).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit.meta import read_audit_file
from ..backends.memory import MemoryBackend
from ..connect import read_dataset
from ..engines.batch import Index
from ..engines.batch import rows as kernel_rows
from ..engines.batch.incremental import reaudit
from ..engines.remedy import Record, path_records
from ..errors import SpilloverError
from ..facts.columns import columns_from_dataset
from ..facts.model import Dataset
from ..facts.phones import DEFAULT_REGION
from ..policy import Policy, default_policy
from ..rules import Verdict, recommendation
from .apply import dataset_records

__all__ = [
    "ADDED",
    "CHANGED",
    "LIFTED",
    "NEW",
    "REMOVED",
    "STATUSES",
    "Changes",
    "EntryChange",
    "EntryState",
    "changes",
    "compare_audit",
    "compare_datasets",
]

LIFTED, NEW, CHANGED, ADDED, REMOVED = "lifted", "new", "changed", "added", "removed"
#: the kinds of change, in the order they are listed
STATUSES = (LIFTED, NEW, CHANGED, ADDED, REMOVED)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class EntryState:
    """One entry's answer in one folder: the audit row's fields and the recommendation."""

    contamination: float
    verdict: str
    recommendation: str
    origin_loan_id: str | None
    origin_borrower_id: str | None
    origin_platform_id: str | None
    hops: int | None
    reason_codes: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any], policy: Policy) -> EntryState:
        """The state of an audit row (:class:`spillover.audit.rows.AuditRowOut` fields)."""
        return cls(
            contamination=float(row["contamination"]),
            verdict=str(row["verdict"]),
            recommendation=recommendation(float(row["contamination"]), policy).value,
            origin_loan_id=row["origin_loan_id"],
            origin_borrower_id=row["origin_borrower_id"],
            origin_platform_id=row["origin_platform_id"],
            hops=row["hops"],
            reason_codes=str(row["reason_codes"]),
        )


@dataclass(frozen=True, slots=True)
class EntryChange:
    """One entry whose answer moved: its place, its state before and after (None where the
    entry is in one folder only), and the corrected records that caused the move."""

    status: str
    entry_id: str
    platform_id: str
    subject_kind: str
    subject: str
    before: EntryState | None
    after: EntryState | None
    removed_records: tuple[Record, ...]
    added_records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Changes:
    """Every change between two folders, by status then entry id, with the records the
    correction removed and added and the number of entries left as they were."""

    before: str
    after: str
    policy: Policy
    entries: tuple[EntryChange, ...]
    removed_records: tuple[Record, ...]
    added_records: tuple[Record, ...]
    unchanged: int

    def count(self, status: str) -> int:
        """How many entries have ``status``."""
        return sum(1 for c in self.entries if c.status == status)


def _status(before: EntryState | None, after: EntryState | None) -> str | None:
    spill = Verdict.SPILLOVER.value
    if before is not None and before.verdict == spill and (after is None or after.verdict != spill):
        return LIFTED
    if after is not None and after.verdict == spill and (before is None or before.verdict != spill):
        return NEW
    if before is None:
        return ADDED
    if after is None:
        return REMOVED
    return CHANGED if before != after else None


def _index(data: Dataset, policy: Policy, progress: Progress | None) -> Index:
    if progress:
        progress("index", 0, 1)
    index = Index(columns_from_dataset(data), policy)
    if progress:
        progress("index", 1, 1)
    return index


def _rows_after(
    ix_a: Index, ix_b: Index, rows_a: dict[str, dict[str, Any]], policy: Policy
) -> dict[str, dict[str, Any]]:
    """The audit rows of ``ix_b`` from those of ``ix_a``: only the entries the correction can
    reach are re-scored (:func:`spillover.engines.batch.incremental.reaudit`), the rest
    carried over; the same rows as a full audit of ``ix_b`` (tests/test_incremental.py)."""
    _done, result = reaudit(ix_a, ix_b)
    fresh = {str(row["entry_id"]): row for row in kernel_rows(result, policy)}
    ids = sorted(str(e) for e in ix_b.cols.entry_ids)
    return {e: fresh[e] if e in fresh else rows_a[e] for e in ids}


def _check_same_dataset(a: Dataset, b: Dataset, before: str, after: str) -> None:
    if set(a.platforms) != set(b.platforms) or not set(a.entries) & set(b.entries):
        raise SpilloverError(
            f"{before} and {after} are not two versions of one dataset: a correction keeps "
            "the platforms and the blacklist entries (here "
            + (
                "the platforms differ"
                if set(a.platforms) != set(b.platforms)
                else "no entry is in both"
            )
            + ")"
        )


def _sorted(records: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(sorted(records, key=Record.sort_key))


def compare_datasets(
    a: Dataset,
    b: Dataset,
    *,
    before: str = "before",
    after: str = "after",
    policy: Policy | None = None,
    progress: Progress | None = None,
) -> Changes:
    """The changes from dataset ``a`` to dataset ``b`` (see :func:`changes`)."""
    policy = policy or default_policy()
    _check_same_dataset(a, b, before, after)
    ix_a, ix_b = _index(a, policy, progress), _index(b, policy, progress)
    rows_a = {str(r["entry_id"]): r for r in kernel_rows(ix_a.audit(progress), policy)}
    rows_b = _rows_after(ix_a, ix_b, rows_a, policy)
    records_a, records_b = dataset_records(a), dataset_records(b)
    removed, added = records_a - records_b, records_b - records_a
    backend_a, backend_b = MemoryBackend(a), MemoryBackend(b)

    def records(
        entry_id: str, in_a: bool, in_b: bool
    ) -> tuple[AbstractSet[Record], AbstractSet[Record]]:
        was = path_records(backend_a, entry_id, policy) & removed if in_a and removed else set()
        now = path_records(backend_b, entry_id, policy) & added if in_b and added else set()
        return was, now

    out, unchanged = _compare(rows_a, rows_b, policy, records)
    return Changes(before, after, policy, out, _sorted(removed), _sorted(added), unchanged)


def compare_audit(
    audit_file: str | Path,
    b: Dataset,
    *,
    after: str = "after",
    policy: Policy | None = None,
    progress: Progress | None = None,
) -> Changes:
    """The changes from an earlier audit file (CSV or JSONL of ``spillover audit``, with its
    sidecar naming the policy: :mod:`spillover.audit.meta`) to dataset ``b``, audited
    under ``policy``. An audit of another policy, or of another dataset (no entry in
    common, or entries on platforms ``b`` does not have), is refused. The file holds no
    records, so the changes carry none (compare two folders for the records)."""
    policy = policy or default_policy()
    meta, rows_a = read_audit_file(audit_file)
    if meta["policy_detail"]["digest"] != policy.digest:
        raise SpilloverError(
            f"{audit_file} was audited under the policy {meta['policy']}, not "
            f"{policy.label}: compare under the same policy (--policy)"
        )
    platforms = {str(r["platform_id"]) for r in rows_a.values()}
    if not set(rows_a) & set(b.entries) or not platforms <= set(b.platforms):
        raise SpilloverError(
            f"{audit_file} is not an audit of the dataset of {after}: "
            + (
                "no entry is in both"
                if not set(rows_a) & set(b.entries)
                else "its entries are on platforms the folder does not have"
            )
        )
    ix_b = _index(b, policy, progress)
    rows_b = {str(r["entry_id"]): r for r in kernel_rows(ix_b.audit(progress), policy)}

    def no_records(_e: str, _a: bool, _b: bool) -> tuple[AbstractSet[Record], AbstractSet[Record]]:
        return set(), set()

    out, unchanged = _compare(rows_a, rows_b, policy, no_records)
    return Changes(str(audit_file), after, policy, out, (), (), unchanged)


def _compare(
    rows_a: Mapping[str, Mapping[str, Any]],
    rows_b: Mapping[str, Mapping[str, Any]],
    policy: Policy,
    records: Callable[[str, bool, bool], tuple[AbstractSet[Record], AbstractSet[Record]]],
) -> tuple[tuple[EntryChange, ...], int]:
    """Every entry whose state moved from ``rows_a`` to ``rows_b``, with the records
    ``records(entry_id, in_a, in_b)`` gives, by status then id; and how many did not."""
    out: list[EntryChange] = []
    unchanged = 0
    for entry_id in sorted(set(rows_a) | set(rows_b)):
        row_a, row_b = rows_a.get(entry_id), rows_b.get(entry_id)
        state_a = EntryState.from_row(row_a, policy) if row_a else None
        state_b = EntryState.from_row(row_b, policy) if row_b else None
        status = _status(state_a, state_b)
        if status is None:
            unchanged += 1
            continue
        was, now = records(entry_id, row_a is not None, row_b is not None)
        row = row_a or row_b
        assert row is not None
        out.append(
            EntryChange(
                status,
                entry_id,
                str(row["platform_id"]),
                str(row["subject_kind"]),
                str(row["subject"]),
                state_a,
                state_b,
                _sorted(was),
                _sorted(now),
            )
        )
    out.sort(key=lambda c: (STATUSES.index(c.status), c.entry_id))
    return tuple(out), unchanged


def changes(
    before: str | Path,
    after: str | Path,
    *,
    policy: Policy | None = None,
    region: str = DEFAULT_REGION,
    progress: Progress | None = None,
) -> Changes:
    """Compare the data folders ``before`` and ``after`` of one dataset, entry by entry.

    ``before`` is audited under ``policy`` (the default policy if None), and of ``after``
    only the entries the correction can reach are re-scored (the others' rows are the
    same: :mod:`spillover.engines.batch.incremental`). Folders of different datasets
    (other platforms, or no blacklist entry in common) are refused. ``before`` may also be
    an earlier audit file of ``spillover audit`` (:func:`compare_audit`).

    >>> from spillover import examples
    >>> same = changes(examples.jiang_case_path(), examples.jiang_case_path())
    >>> same.entries, same.unchanged
    ((), 16)
    """
    b = read_dataset(after, region=region)
    if Path(before).is_file():
        return compare_audit(before, b, after=str(after), policy=policy, progress=progress)
    a = read_dataset(before, region=region)
    return compare_datasets(
        a, b, before=str(before), after=str(after), policy=policy, progress=progress
    )
