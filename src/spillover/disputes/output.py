"""What a correction changed, as text for people, JSON for programs and CSV for sheets.

The JSON (``changes_dict``) holds, per changed entry, its status (``lifted``, ``new``,
``changed``, ``added``, ``removed``), its state before and after (contamination, verdict,
recommendation, the best path's origin, hops and reason codes) and the corrected records
that caused the change; the CSV has one row per changed entry (``CHANGE_COLUMNS``), its
records counted.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..files.write import neutralize
from ..text.safe import printable
from ..text.wording import count
from .apply import AppliedRemedy, describe_record, record_dict
from .changes import STATUSES, Changes, EntryChange, EntryState

__all__ = [
    "CHANGE_COLUMNS",
    "applied_dict",
    "applied_text",
    "changes_csv",
    "changes_dict",
    "changes_json",
    "changes_text",
    "write_changes",
]

#: the columns of the CSV, one row per changed entry
CHANGE_COLUMNS = [
    "status",
    "entry_id",
    "platform_id",
    "subject_kind",
    "subject",
    "contamination_before",
    "verdict_before",
    "recommendation_before",
    "contamination_after",
    "verdict_after",
    "recommendation_after",
    "origin_loan_id_before",
    "origin_loan_id_after",
    "reason_codes_before",
    "reason_codes_after",
    "records_removed",
    "records_added",
]


def _state(s: EntryState | None) -> dict[str, Any] | None:
    return None if s is None else asdict(s)


def _change(c: EntryChange) -> dict[str, Any]:
    return {
        "status": c.status,
        "entry_id": c.entry_id,
        "platform_id": c.platform_id,
        "subject": {"kind": c.subject_kind, "id": c.subject},
        "before": _state(c.before),
        "after": _state(c.after),
        "records_removed": [record_dict(r) for r in c.removed_records],
        "records_added": [record_dict(r) for r in c.added_records],
    }


def changes_dict(found: Changes) -> dict[str, Any]:
    """The changes as JSON-ready values."""
    return {
        "before": found.before,
        "after": found.after,
        "policy": {
            "name": found.policy.name,
            "version": found.policy.version,
            "digest": found.policy.digest,
        },
        "counts": {status: found.count(status) for status in STATUSES}
        | {"unchanged": found.unchanged},
        "records_removed": [record_dict(r) for r in found.removed_records],
        "records_added": [record_dict(r) for r in found.added_records],
        "entries": [_change(c) for c in found.entries],
    }


def changes_json(found: Changes) -> str:
    """The changes as one JSON document."""
    return json.dumps(changes_dict(found), ensure_ascii=False, indent=2) + "\n"


def _row(c: EntryChange) -> list[Any]:
    b, a = c.before, c.after
    return [
        c.status,
        c.entry_id,
        c.platform_id,
        c.subject_kind,
        c.subject,
        b.contamination if b else None,
        b.verdict if b else None,
        b.recommendation if b else None,
        a.contamination if a else None,
        a.verdict if a else None,
        a.recommendation if a else None,
        b.origin_loan_id if b else None,
        a.origin_loan_id if a else None,
        b.reason_codes if b else None,
        a.reason_codes if a else None,
        len(c.removed_records),
        len(c.added_records),
    ]


def changes_csv(found: Changes) -> str:
    """The changes as CSV, one row per changed entry (cells a spreadsheet would run as a
    formula neutralized)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CHANGE_COLUMNS)
    for c in found.entries:
        writer.writerow(["" if v is None else neutralize(v) for v in _row(c)])
    return buffer.getvalue()


def _verdict(s: EntryState | None) -> str:
    return "-" if s is None else f"{s.verdict} {s.contamination:.3f}"


def changes_text(found: Changes) -> str:
    """The changes for a person: the counts, then one line per changed entry with the
    records that caused it."""
    lines = [
        f"{printable(found.before)} -> {printable(found.after)} ({found.policy.label})",
        "; ".join(
            f"{count(found.count(status), 'entry', 'entries')} {status}"
            for status in STATUSES
            if found.count(status)
        )
        or "no entry changed",
        f"{count(found.unchanged, 'entry', 'entries')} unchanged; "
        f"{count(len(found.removed_records), 'record')} removed or corrected, "
        f"{count(len(found.added_records), 'record')} added",
    ]
    for c in found.entries:
        lines.append("")
        lines.append(
            f"{c.status.upper()} {printable(c.entry_id)} at {printable(c.platform_id)} "
            f"({c.subject_kind} {printable(c.subject)}): "
            f"{_verdict(c.before)} -> {_verdict(c.after)}"
        )
        for r in c.removed_records:
            lines.append(f"  corrected: {printable(describe_record(r))}")
        for r in c.added_records:
            lines.append(f"  added:     {printable(describe_record(r))}")
    return "\n".join(lines) + "\n"


def write_changes(found: Changes, folder: str | Path) -> list[Path]:
    """Write ``changes.json`` and ``changes.csv`` into the existing folder ``folder``; the
    paths written."""
    written = []
    for name, text in (("changes.json", changes_json(found)), ("changes.csv", changes_csv(found))):
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written


def applied_dict(done: AppliedRemedy) -> dict[str, Any]:
    """What ``remedy --apply`` wrote, as JSON-ready values."""
    return {
        "out": str(done.out),
        "entries": list(done.entries),
        "records": [record_dict(r) for r in done.records],
        "counts": done.counts,
    }


def applied_text(done: AppliedRemedy) -> str:
    """What ``remedy --apply`` wrote, for a person."""
    if not done.records:
        head = f"{printable(str(done.out))}: an unchanged copy (no entry needed a remedy)"
    else:
        head = (
            f"{printable(str(done.out))}: {count(len(done.records), 'record')} corrected, "
            f"the remedy of {count(len(done.entries), 'entry', 'entries')} "
            f"({printable(', '.join(done.entries))})"
        )
    lines = [head, *(f"  corrected: {printable(describe_record(r))}" for r in done.records)]
    lines.append(
        "compare with: spillover changes --before DATA --after " + printable(str(done.out))
    )
    return "\n".join(lines) + "\n"
