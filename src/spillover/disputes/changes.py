"""What a correction changed: every entry's answer before and after, and the records behind it.

:func:`changes` audits two versions of one dataset, ``before`` (the data as it was) and
``after`` (a corrected copy: :func:`spillover.disputes.apply_remedy`, or the folder a lender
sent back), each a data folder or what Neo4j holds (:class:`Version`: one side left out is
read from the store), and compares every entry's contamination, verdict, recommendation
and best path. An entry is

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

from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..audit.batch import build_index
from ..audit.incremental import reaudit_rows
from ..audit.meta import read_audit_file
from ..backends.memory import MemoryBackend
from ..connect import read_dataset
from ..engines.batch import rows as kernel_rows
from ..engines.remedy import Record, Remedy, path_records, records_and_remedy
from ..errors import SpilloverError, UsageProblem
from ..facts.columns import Columns, columns_from_dataset
from ..facts.graph import GraphBackend
from ..facts.model import Dataset
from ..facts.phones import DEFAULT_REGION
from ..neo4j.settings import Neo4jSettings
from ..policy import Policy, default_policy
from ..rules import Verdict, recommendation
from .apply import columns_records

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
    "Version",
    "changes",
    "check_sides",
    "compare_audit",
    "compare_datasets",
    "compare_versions",
    "dataset_version",
    "folder_version",
    "open_versions",
    "store_label",
    "store_version",
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
    #: the remedy of each lifted entry on the data before (its routes: the notices' order),
    #: found with its records (:func:`spillover.engines.remedy.records_and_remedy`)
    remedies: Mapping[str, Remedy] = field(default_factory=dict, compare=False, repr=False)

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


@dataclass(frozen=True)
class Version:
    """One version of a dataset as :func:`changes` reads it: a data folder's facts, or what
    Neo4j holds now. ``label`` names it in the output (the folder as given, or the store),
    ``columns`` are its facts for the audit and ``backend`` answers its paths and names
    (closed by :meth:`close`); ``dataset``: the store's dataset name (its marker)."""

    label: str
    columns: Columns
    backend: GraphBackend
    dataset: str | None = None

    def close(self) -> None:
        """Close the backend (a store's connection)."""
        self.backend.close()


def dataset_version(data: Dataset, label: str) -> Version:
    """The version of a dataset in memory (its networkx backend)."""
    return Version(label, columns_from_dataset(data), MemoryBackend(data))


def folder_version(folder: str | Path, *, region: str = DEFAULT_REGION) -> Version:
    """The version of the data folder ``folder`` (validated whole)."""
    return dataset_version(read_dataset(folder, region=region), str(folder))


def store_label(settings: Neo4jSettings) -> str:
    """How the output names the data Neo4j holds."""
    return f"Neo4j {settings.uri} (database {settings.database})"


def store_version(settings: Neo4jSettings, policy: Policy | None = None) -> Version:
    """The version of the data the Neo4j database of ``settings`` holds now (read whole as
    columns, as ``audit`` reads it). Refused: a database that holds no data, one whose last
    ingest has not finished, and one whose audit results (``audit --write-back``) were
    scored under another policy than ``policy`` (compare under the policy the store's
    results use, so that ``changes`` and the next write-back agree)."""
    from ..neo4j.ingest import read_marker
    from ..neo4j.store import open_neo4j

    policy = policy or default_policy()
    label = store_label(settings)
    backend = open_neo4j(settings)
    try:
        marker = read_marker(backend.driver, backend.database)
        props = marker.props or {}
        if not props and not marker.has_data:
            raise SpilloverError(f"{label} holds no data: spillover ingest the folder first")
        if marker.unfinished:
            raise SpilloverError(
                f"{label}: the last ingest (of {props.get('folder')}) has not finished: "
                "run spillover ingest again before comparing"
            )
        digest = props.get("results_policy_digest")
        if digest is not None and digest != policy.digest:
            raise SpilloverError(
                f"{label} holds audit results scored under the policy "
                f"{props.get('results_policy_name')} {props.get('results_policy_version')} "
                f"sha256:{str(digest)[:8]}…, not {policy.label}: compare under the same "
                "policy (--policy)"
            )
        columns = backend.columns()
    except BaseException:
        backend.close()
        raise
    return Version(label, columns, backend, marker.name)


def _check_same_dataset(a: Version, b: Version) -> None:
    platforms_a, platforms_b = set(a.columns.platform_ids), set(b.columns.platform_ids)
    common = set(a.columns.entry_ids) & set(b.columns.entry_ids)
    if platforms_a != platforms_b or not common:
        held = [f"{v.label} holds dataset {v.dataset!r}" for v in (a, b) if v.dataset]
        raise SpilloverError(
            f"{a.label} and {b.label} are not two versions of one dataset: a correction "
            "keeps the platforms and the blacklist entries (here "
            + ("the platforms differ" if platforms_a != platforms_b else "no entry is in both")
            + "".join(f"; {h}" for h in held)
            + ")"
        )


def _sorted(records: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(sorted(records, key=Record.sort_key))


def compare_versions(
    a: Version,
    b: Version,
    *,
    policy: Policy | None = None,
    progress: Progress | None = None,
    remedies: bool = False,
) -> Changes:
    """The changes from version ``a`` to version ``b`` (see :func:`changes`): ``a`` audited
    whole, of ``b`` only what the difference reaches re-scored, and the records on each
    changed entry's paths. With ``remedies`` (for the notices), each lifted entry's remedy
    on ``a`` too (its route), found from the same walk of its paths as its records."""
    policy = policy or default_policy()
    _check_same_dataset(a, b)
    ix_a, ix_b = build_index(a.columns, policy, progress), build_index(b.columns, policy, progress)
    rows_a = {str(r["entry_id"]): r for r in kernel_rows(ix_a.audit(progress), policy)}
    rows_b = reaudit_rows(ix_a, rows_a, ix_b, policy)
    records_a, records_b = columns_records(a.columns), columns_records(b.columns)
    removed, added = records_a - records_b, records_b - records_a
    found: dict[str, Remedy] = {}

    def records(
        change: EntryChange, in_a: bool, in_b: bool
    ) -> tuple[AbstractSet[Record], AbstractSet[Record]]:
        was: AbstractSet[Record] = set()
        if remedies and in_a and change.status == LIFTED:  # its notices need its route
            on_paths, found[change.entry_id] = records_and_remedy(
                a.backend, change.entry_id, policy
            )
            was = on_paths & removed
        elif in_a and removed:
            was = path_records(a.backend, change.entry_id, policy) & removed
        now = path_records(b.backend, change.entry_id, policy) & added if in_b and added else set()
        return was, now

    out, unchanged = _compare(rows_a, rows_b, policy, records)
    return Changes(
        a.label, b.label, policy, out, _sorted(removed), _sorted(added), unchanged, found
    )


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
    return compare_versions(
        dataset_version(a, before), dataset_version(b, after), policy=policy, progress=progress
    )


def compare_audit(
    audit_file: str | Path,
    b: Dataset | Version,
    *,
    after: str = "after",
    policy: Policy | None = None,
    progress: Progress | None = None,
) -> Changes:
    """The changes from an earlier audit file (CSV or JSONL of ``spillover audit``, with its
    sidecar naming the policy: :mod:`spillover.audit.meta`) to dataset ``b`` (or a
    :class:`Version`: what a store holds), audited under ``policy``. An audit of another
    policy, or of another dataset (no entry in common, or entries on platforms ``b`` does
    not have), is refused. The file holds no records, so the changes carry none (compare
    two folders for the records)."""
    policy = policy or default_policy()
    version = b if isinstance(b, Version) else dataset_version(b, after)
    meta, rows_a = read_audit_file(audit_file)
    if meta["policy_detail"]["digest"] != policy.digest:
        raise SpilloverError(
            f"{audit_file} was audited under the policy {meta['policy']}, not "
            f"{policy.label}: compare under the same policy (--policy)"
        )
    platforms = {str(r["platform_id"]) for r in rows_a.values()}
    entries = {str(e) for e in version.columns.entry_ids}
    if not set(rows_a) & entries or not platforms <= set(version.columns.platform_ids):
        raise SpilloverError(
            f"{audit_file} is not an audit of the dataset of {version.label}: "
            + (
                "no entry is in both"
                if not set(rows_a) & entries
                else "its entries are on platforms the folder does not have"
            )
        )
    ix_b = build_index(version.columns, policy, progress)
    rows_b = {str(r["entry_id"]): r for r in kernel_rows(ix_b.audit(progress), policy)}

    def no_records(
        _c: EntryChange, _a: bool, _b: bool
    ) -> tuple[AbstractSet[Record], AbstractSet[Record]]:
        return set(), set()

    out, unchanged = _compare(rows_a, rows_b, policy, no_records)
    return Changes(str(audit_file), version.label, policy, out, (), (), unchanged)


def _compare(
    rows_a: Mapping[str, Mapping[str, Any]],
    rows_b: Mapping[str, Mapping[str, Any]],
    policy: Policy,
    records: Callable[[EntryChange, bool, bool], tuple[AbstractSet[Record], AbstractSet[Record]]],
) -> tuple[tuple[EntryChange, ...], int]:
    """Every entry whose state moved from ``rows_a`` to ``rows_b``, with the records
    ``records(change, in_a, in_b)`` gives, by status then id; and how many did not."""
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
        row = row_a or row_b
        assert row is not None
        change = EntryChange(
            status,
            entry_id,
            str(row["platform_id"]),
            str(row["subject_kind"]),
            str(row["subject"]),
            state_a,
            state_b,
            (),
            (),
        )
        was, now = records(change, row_a is not None, row_b is not None)
        out.append(replace(change, removed_records=_sorted(was), added_records=_sorted(now)))
    out.sort(key=lambda c: (STATUSES.index(c.status), c.entry_id))
    return tuple(out), unchanged


def check_sides(
    before: str | Path | None, after: str | Path | None, neo4j: Neo4jSettings | None
) -> None:
    """Refuse sides that cannot be compared (:class:`~spillover.errors.UsageProblem`): none
    given, or one left out (read from Neo4j) without a Neo4j to read it from."""
    if before is None and after is None:
        raise UsageProblem(
            "give --before or --after (or both): Neo4j holds one version of the data, and "
            "the side left out is read from it"
        )
    if (before is None or after is None) and neo4j is None:
        side = "--before" if before is None else "--after"
        raise UsageProblem(
            f"{side} left out: that side is the data Neo4j holds, and no Neo4j is given "
            "(--neo4j-uri or NEO4J_URI)"
        )


@contextmanager
def open_versions(
    before: str | Path | None,
    after: str | Path | None,
    *,
    neo4j: Neo4jSettings | None = None,
    policy: Policy | None = None,
    region: str = DEFAULT_REGION,
) -> Iterator[tuple[Version | str | Path, Version]]:
    """The two sides of a comparison, open (and closed after): ``before`` as a
    :class:`Version`, or as given when it is an audit file; ``after`` as a Version. A side
    given as None is the data the Neo4j database of ``neo4j`` holds (:func:`store_version`);
    :func:`check_sides` first."""
    check_sides(before, after, neo4j)
    with ExitStack() as stack:

        def opened(side: str | Path | None) -> Version:
            if side is None:
                assert neo4j is not None  # checked
                version = store_version(neo4j, policy)
            else:
                version = folder_version(side, region=region)
            stack.callback(version.close)
            return version

        b = opened(after)
        a = before if before is not None and Path(before).is_file() else opened(before)
        yield a, b


def changes(
    before: str | Path | None = None,
    after: str | Path | None = None,
    *,
    neo4j: Neo4jSettings | None = None,
    policy: Policy | None = None,
    region: str = DEFAULT_REGION,
    progress: Progress | None = None,
) -> Changes:
    """Compare the data folders ``before`` and ``after`` of one dataset, entry by entry.

    ``before`` is audited under ``policy`` (the default policy if None), and of ``after``
    only the entries the correction can reach are re-scored (the others' rows are the
    same: :mod:`spillover.engines.batch.incremental`). Folders of different datasets
    (other platforms, or no blacklist entry in common) are refused. ``before`` may also be
    an earlier audit file of ``spillover audit`` (:func:`compare_audit`). One side may be
    left out (None) and read from the Neo4j database of ``neo4j`` instead: ``after`` once
    the corrected folder is ingested, ``before`` while the store still holds the data as
    it was (:func:`store_version`, with its refusals).

    >>> from spillover import examples
    >>> same = changes(examples.jiang_case_path(), examples.jiang_case_path())
    >>> same.entries, same.unchanged
    ((), 16)
    """
    with open_versions(before, after, neo4j=neo4j, policy=policy, region=region) as (a, b):
        if not isinstance(a, Version):
            return compare_audit(a, b, policy=policy, progress=progress)
        return compare_versions(a, b, policy=policy, progress=progress)
