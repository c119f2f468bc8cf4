"""A remedy applied: a copy of a data folder with the remedy's records corrected.

A dispute handler wants to see what a correction would change before anyone acts on it.
:func:`corrected` takes a :class:`~spillover.facts.model.Dataset` and the records a remedy
names (:class:`spillover.engines.remedy.Record`) and returns the same facts with each of
those records corrected, as docs/disputes.md describes:

- ``applicant_phone``: the loan no longer names that number as its applicant's
  (``loans.applicant_phone`` and ``phone_verified`` emptied);
- ``loan_link``: the ``loan_links`` row is removed;
- ``owner_period``: the period keeps its number and days, but no longer names its owner
  (``phones.owner_id`` emptied, ``verified`` false: the subscriber is unknown);
- ``copy``: the entry no longer says it was copied (``blacklist.copied_from`` emptied);
- ``sharing``: the ``sharing`` row is removed;
- ``match``: the ``matches`` row is removed (the record stands unresolved); a loan that
  names its borrower by that record names no one (``loans.borrower_id`` emptied: it stays
  out of the graph, docs/contract.md §1).

:func:`apply_remedy` reads a folder, computes the remedy of one entry or of every entry on
a subject, and writes the corrected copy to a new folder (atomically: complete or not at
all) with a ``corrections.json`` beside the tables (the records corrected and why; the
loaders ignore the file). Nothing in the original folder changes.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..backends.memory import MemoryBackend
from ..data import fast
from ..data.contract import CSV, JSONL, PARQUET, TABLES
from ..data.exact import table_file
from ..data.export import check_new_folder, without_unnamed_loans, write_dataset
from ..data.formats import check_format, convert_folder
from ..data.outputs import check_outside
from ..engines.remedy import (
    APPLICANT_PHONE,
    COPY,
    LOAN_LINK,
    MATCH,
    OWNER_PERIOD,
    SHARING,
    Record,
    remedy,
    subject_remedy,
)
from ..errors import SpilloverError, UsageProblem
from ..facts.columns import NEVER, Columns, columns_from_dataset
from ..facts.model import Dataset, MatchKey, SubjectKind
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_folder
from ..policy import Policy, default_policy
from ..version import __version__

__all__ = [
    "CORRECTIONS_FILE",
    "AppliedRemedy",
    "apply_remedy",
    "check_options",
    "columns_records",
    "corrected",
    "dataset_records",
    "describe_record",
    "folder_format",
    "record_dict",
    "record_fields",
]

#: the file beside the corrected tables that says what was corrected
CORRECTIONS_FILE = "corrections.json"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class AppliedRemedy:
    """What :func:`apply_remedy` wrote: the folder, the records corrected, the entries whose
    remedy they are, and the rows per table of the corrected copy."""

    out: Path
    records: tuple[Record, ...]
    entries: tuple[str, ...]
    counts: dict[str, int]


def _missing(record: Record) -> SpilloverError:
    return SpilloverError(
        f"the remedy's record is not in the data: {describe_record(record)} (a remedy applies to "
        "the folder it was computed on)"
    )


def describe_record(record: Record) -> str:
    """A record on one line: its kind, then its fields (``loan_link loan_id=..., ...``)."""
    fields = {k: v for k, v in record_dict(record).items() if k != "kind"}
    return record.kind + " " + ", ".join(f"{k}={v}" for k, v in fields.items())


def record_fields(record: Record) -> dict[str, Any]:
    """Every field of a record, JSON-ready (the day as ISO text; a missing field None)."""
    out = dataclasses.asdict(record)
    if record.since is not None:
        out["since"] = record.since.isoformat()
    return out


def record_dict(record: Record) -> dict[str, Any]:
    """The fields a record has, JSON-ready (:func:`record_fields` without the missing ones)."""
    return {k: v for k, v in record_fields(record).items() if v is not None}


def check_options(
    *,
    entry_id: str | None,
    subject: str | None,
    apply: bool,
    out: str | Path | None,
    data: str | Path | None,
) -> None:
    """Refuse the ``remedy`` options that do not go together
    (:class:`~spillover.errors.UsageProblem`): one entry or one subject; ``--subject``,
    ``--out`` only with ``--apply``; ``--apply`` with ``--out`` and a data folder."""
    if (entry_id is None) == (subject is None):
        raise UsageProblem("give an ENTRY_ID or --subject (not both)")
    if not apply:
        if subject is not None:
            raise UsageProblem("--subject applies every entry's remedy: add --apply --out DIR")
        if out is not None:
            raise UsageProblem("--out is the folder --apply writes: add --apply")
        return
    if out is None:
        raise UsageProblem("--apply writes a corrected copy of the data: give --out DIR")
    if data is None:
        raise UsageProblem("--apply corrects a copy of a data folder: give --data DIR")


def corrected(data: Dataset, records: Iterable[Record]) -> Dataset:
    """``data`` with every one of ``records`` corrected (see the module's docstring).

    A record that is not in ``data`` is an error (:class:`~spillover.errors.SpilloverError`):
    a remedy applies to the folder it was computed on.

    >>> from spillover import examples, read_dataset
    >>> from spillover.engines.remedy import Record
    >>> data = read_dataset(examples.jiang_case_path())
    >>> fixed = corrected(data, [Record("sharing", "quickcash",
    ...                                 from_platform="quickcash", to_platform="tianyan")])
    >>> len(data.sharing) - len(fixed.sharing)
    1
    """
    todo = {
        k: [r for r in records if r.kind == k]
        for k in (APPLICANT_PHONE, LOAN_LINK, OWNER_PERIOD, COPY, SHARING, MATCH)
    }
    loans = dict(data.loans)
    for r in todo[APPLICANT_PHONE]:
        loan = loans.get(r.loan_id or "")
        if loan is None or loan.applicant_phone != r.phone:
            raise _missing(r)
        loans[loan.loan_id] = dataclasses.replace(loan, applicant_phone=None, phone_verified=None)
    drop_links = {(r.loan_id, r.phone, r.role) for r in todo[LOAN_LINK]}
    links = tuple(x for x in data.links if (x.loan_id, x.phone, x.role.value) not in drop_links)
    if len(data.links) - len(links) != len(drop_links):
        kept = {(x.loan_id, x.phone, x.role.value) for x in data.links}
        raise _missing(next(r for r in todo[LOAN_LINK] if (r.loan_id, r.phone, r.role) not in kept))
    periods = {phone: list(ps) for phone, ps in data.phone_periods.items()}
    for r in todo[OWNER_PERIOD]:
        found = [
            i
            for i, p in enumerate(periods.get(r.phone or "", []))
            if p.owner_id == r.owner_id and p.since == r.since
        ]
        if not found:
            raise _missing(r)
        for i in found:
            periods[r.phone or ""][i] = dataclasses.replace(
                periods[r.phone or ""][i], owner_id=None, verified=False
            )
    entries = dict(data.entries)
    for r in todo[COPY]:
        entry = entries.get(r.entry_id or "")
        if entry is None or entry.copied_from != r.copied_from:
            raise _missing(r)
        entries[r.entry_id or ""] = dataclasses.replace(entry, copied_from=None)
    drop_sharing = {(r.from_platform, r.to_platform) for r in todo[SHARING]}
    sharing = tuple(s for s in data.sharing if (s.from_platform, s.to_platform) not in drop_sharing)
    if len(data.sharing) - len(sharing) != len(drop_sharing):
        kept_pairs = {(s.from_platform, s.to_platform) for s in data.sharing}
        raise _missing(
            next(r for r in todo[SHARING] if (r.from_platform, r.to_platform) not in kept_pairs)
        )
    matches = dict(data.matches)
    for r in todo[MATCH]:
        match = matches.get(r.record_id or "")
        if match is None or match.person_id != r.person_id:
            raise _missing(r)
        del matches[r.record_id or ""]
    unmatched = {r.record_id for r in todo[MATCH]}
    for loan in loans.values():
        if loan.borrower_record in unmatched:
            loans[loan.loan_id] = dataclasses.replace(loan, borrower_id="", matched_by=None)
    return dataclasses.replace(
        data,
        loans=loans,
        links=links,
        phone_periods={phone: tuple(ps) for phone, ps in periods.items()},
        entries=entries,
        sharing=sharing,
        matches=matches,
    )


def dataset_records(data: Dataset) -> frozenset[Record]:
    """Every correctable record ``data`` holds, as a remedy names them: each applicant
    phone, loan link, owner period with a known owner, copy, sharing agreement, and match
    made by linkage (not a record's own person).

    >>> from spillover import examples, read_dataset
    >>> records = dataset_records(read_dataset(examples.jiang_case_path()))
    >>> sorted({r.kind for r in records})
    ['applicant_phone', 'copy', 'loan_link', 'owner_period', 'sharing']
    """
    return columns_records(columns_from_dataset(data))


def _day(ordinal: Any) -> date | None:
    return None if ordinal == NEVER else date.fromordinal(int(ordinal))


def columns_records(c: Columns) -> frozenset[Record]:
    """:func:`dataset_records` of a graph given as columns (a folder's, or what a graph
    store holds: :meth:`~spillover.facts.graph.GraphBackend.columns`)."""
    out: set[Record] = set()
    lender = {str(k): str(v) for k, v in zip(c.loan_ids, c.loan_platform, strict=True)}
    for loan, platform, phone in zip(
        c.loan_ids, c.loan_platform, c.loan_applicant_phone, strict=True
    ):
        if phone:
            out.add(Record(APPLICANT_PHONE, str(platform), loan_id=str(loan), phone=str(phone)))
    for loan, phone, role in zip(c.link_loan, c.link_phone, c.link_role, strict=True):
        out.add(
            Record(
                LOAN_LINK,
                lender.get(str(loan)),
                loan_id=str(loan),
                phone=str(phone),
                role=str(role),
            )
        )
    for phone, owner, since in zip(c.period_phone, c.period_owner, c.period_since, strict=True):
        if owner:
            out.add(
                Record(OWNER_PERIOD, None, phone=str(phone), owner_id=str(owner), since=_day(since))
            )
    for entry, platform, source in zip(
        c.entry_ids, c.entry_platform, c.entry_copied_from, strict=True
    ):
        if source:
            out.add(Record(COPY, str(platform), entry_id=str(entry), copied_from=str(source)))
    for frm, to in zip(c.share_from, c.share_to, strict=True):
        out.add(Record(SHARING, str(frm), from_platform=str(frm), to_platform=str(to)))
    for match in c.matches.values():
        if match.matched_by not in (MatchKey.KNOWN, MatchKey.NEW_IDENTITY):
            held = c.records[match.record_id].platform_id if match.record_id in c.records else None
            out.add(
                Record(
                    MATCH,
                    held,
                    record_id=match.record_id,
                    person_id=match.person_id,
                    matched_by=match.matched_by.value,
                )
            )
    return frozenset(out)


def folder_format(folder: str | Path) -> str:
    """The format a data folder's tables are in (``csv``, ``jsonl`` or ``parquet``): the
    form most of its tables take (CSV when they are mixed evenly).

    >>> from spillover import examples
    >>> folder_format(examples.jiang_case_path())
    'csv'
    """
    forms: Counter[str] = Counter()
    for table in TABLES:
        path = table_file(Path(folder), table)
        if path is not None:
            forms[{CSV: "csv", JSONL: "jsonl", PARQUET: "parquet"}[path.suffix]] += 1
    if not forms:
        return "csv"
    best = max(forms.values())
    return next(f for f in ("csv", "jsonl", "parquet") if forms[f] == best)


def apply_remedy(
    data: str | Path,
    out: str | Path,
    *,
    entry_id: str | None = None,
    subject: str | None = None,
    subject_kind: SubjectKind | str = SubjectKind.PERSON,
    policy: Policy | None = None,
    region: str = DEFAULT_REGION,
    format: str | None = None,
    progress: Progress | None = None,
) -> AppliedRemedy:
    """Write to the new folder ``out`` a copy of the data folder ``data`` with the remedy
    of ``entry_id`` (or of every entry on ``subject``) corrected.

    ``format``: the tables as ``csv``, ``jsonl`` or ``parquet``; by default the input's
    (:func:`folder_format`). The copy holds the contract's tables (columns outside the
    contract are not kept) and ``corrections.json``. An entry that needs no remedy (it
    does not rest on other people's debts) is not an error: nothing is corrected for it.
    """
    if (entry_id is None) == (subject is None):
        raise SpilloverError("give exactly one of an entry id or a subject")
    source, target = Path(data), Path(out)
    check_outside(target, source)
    check_new_folder(target)
    chosen = check_format(format) if format is not None else folder_format(source)
    policy = policy or default_policy()
    if progress:
        progress("read", 0, 1)
    # every loan of the folder, from one read: those the graph leaves out (named only by
    # an unresolved record) are rows of the folder too, and the copy keeps every row but
    # those corrected
    full = fast.read_dataset(source, region=region, unnamed_loans=True)
    backend = MemoryBackend(without_unnamed_loans(full))
    if progress:
        progress("read", 1, 1)
        progress("remedy", 0, 1)
    entries: tuple[str, ...]
    if entry_id is not None:
        found = remedy(backend, entry_id, policy)
        records, entries = found.records, (entry_id,) if found.records else ()
    else:
        assert subject is not None
        whole = subject_remedy(backend, subject, subject_kind, policy)
        records = tuple(x.record for x in whole.records)
        entries = tuple(r.entry.entry_id or "" for r in whole.remedies if r.needed and r.records)
    if progress:
        progress("remedy", 1, 1)
    fixed = corrected(full, records)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target, private=True) as tmp:  # every personal value, as --data
        counts = write_dataset(fixed, tmp, progress)
        convert_folder(tmp, chosen, progress)
        (tmp / CORRECTIONS_FILE).write_text(
            json.dumps(
                {
                    "source": str(source),
                    "entries": list(entries),
                    "records": [record_fields(r) for r in records],
                    "policy": {
                        "name": policy.name,
                        "version": policy.version,
                        "digest": policy.digest,
                    },
                    "spillover_version": __version__,
                },
                ensure_ascii=False,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return AppliedRemedy(target, tuple(records), entries, counts)
