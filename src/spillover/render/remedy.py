"""A remedy for people and programs: ``spillover remedy``'s text and its JSON
(docs/contract.md, "Remedy JSON"), and one corrected record as an English sentence.

The remedy itself (the records, the platforms to contact) is found by
:mod:`spillover.engines.remedy`; this module only writes it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from ..engines.remedy import (
    APPLICANT_PHONE,
    COPY,
    HOLDER,
    LOAN_LINK,
    MATCH,
    OWNER_PERIOD,
    Record,
    Remedy,
)
from ..facts.model import ref
from ..rules import APPLICANT, MATCH_TEXTS, ROLES, MatchKey, Verdict
from ..text.safe import printable_lines
from ..text.wording import count, score_text

__all__ = ["record_text", "remedy_dict", "remedy_json", "remedy_text"]


def _name(names: dict[str, str], kind: str, ident: str | None) -> str:
    if ident is None:
        return "?"
    return names.get(ref(kind, ident), ident)


def _loan_text(names: dict[str, str], r: Record) -> str:
    loan = names.get(ref("loan", r.loan_id or ""))
    return f"{loan} ({r.loan_id})" if loan else f"loan {r.loan_id}"


def record_text(r: Record, names: dict[str, str]) -> str:
    """One record as an English sentence (the report translates with :mod:`spillover.render.i18n`)."""
    phone = _name(names, "phone", r.phone)
    if r.kind == APPLICANT_PHONE:
        return f"{phone} {ROLES[APPLICANT].text} {_loan_text(names, r)}"
    if r.kind == LOAN_LINK:
        return f"{phone} {ROLES[r.role or ''].text} {_loan_text(names, r)}"
    if r.kind == OWNER_PERIOD:
        since = r.since.isoformat() if r.since else "?"
        return f"{_name(names, 'person', r.owner_id)} owns phone {phone} (since {since})"
    if r.kind == COPY:
        return f"entry {r.entry_id} was copied from entry {r.copied_from}"
    if r.kind == MATCH:
        record = _name(names, "record", r.record_id)
        return (
            f"{record} is matched to {_name(names, 'person', r.person_id)} by "
            f"{MATCH_TEXTS[MatchKey(r.matched_by or MatchKey.OTHER)]}"
        )
    return (
        f"{_name(names, 'platform', r.from_platform)} passes its blacklist to "
        f"{_name(names, 'platform', r.to_platform)}"
    )


def _record_out(r: Record, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": r.kind}
    for key in (
        "platform_id",
        "loan_id",
        "phone",
        "role",
        "owner_id",
        "since",
        "entry_id",
        "copied_from",
        "from_platform",
        "to_platform",
        "record_id",
        "person_id",
        "matched_by",
    ):
        value = getattr(r, key)
        if value is not None:
            out[key] = value.isoformat() if isinstance(value, date) else value
    out["text"] = record_text(r, names)
    return out


def remedy_dict(r: Remedy) -> dict[str, Any]:
    """The remedy as the JSON ``spillover remedy --format json`` prints (docs/contract.md)."""
    return {
        "entry_id": r.entry.entry_id,
        "platform_id": r.entry.platform_id,
        "subject": {"kind": r.entry.subject_kind.value, "id": r.entry.subject},
        "listed_at": r.entry.listed_at.isoformat(),
        "verdict": r.verdict.value,
        "contamination": r.contamination,
        "needed": r.needed,
        "clearable": r.clearable,
        "paths": r.paths,
        "records": [_record_out(x, r.names) for x in r.records],
        "contacts": [
            {
                "platform_id": c.platform_id,
                "name": _name(r.names, "platform", c.platform_id),
                "stage": c.stage,
                "first_day": c.first_day.isoformat() if c.first_day else None,
                "how": c.how,
                "received_from": c.received_from,
                "lists_subject": c.lists_subject,
                "records": [_record_out(x, r.names) for x in c.records],
            }
            for c in r.contacts
        ],
        "policy": r.policy.label,
    }


def remedy_json(r: Remedy) -> str:
    """The remedy as indented JSON (:func:`remedy_dict`)."""
    return json.dumps(remedy_dict(r), indent=2, ensure_ascii=False)


def _contact_lines(r: Remedy) -> Iterator[str]:
    for n, c in enumerate(r.contacts, 1):
        name = _name(r.names, "platform", c.platform_id)
        if c.how == HOLDER:
            where = "holds a record on a tie to the listing"
        elif c.stage == 0:
            where = "first lister (origin of the listing"
            where += f", known there {c.first_day})" if c.first_day else ")"
        else:
            frm = _name(r.names, "platform", c.received_from)
            verb = "copied it from" if c.how == COPY else "received it from"
            where = f"{verb} {frm}" + (f" on {c.first_day}" if c.first_day else "")
        if c.lists_subject:
            where += "; lists the subject in this entry"
        ask = (
            f": correct {count(len(c.records), 'record')}"
            if c.records
            else ": ask to withdraw or update the listing"
        )
        yield f"    {n:>2}. {name} [{c.platform_id}], {where}{ask}"


def remedy_text(r: Remedy) -> str:
    """The remedy as ``spillover remedy`` prints it."""
    subject = _name(r.names, r.entry.subject_kind.value, r.entry.subject)
    platform = _name(r.names, "platform", r.entry.platform_id)
    lines = [
        f"{r.entry.entry_id}: {platform} listed {subject} on {r.entry.listed_at}",
        f"  verdict: {r.verdict.upper()}  contamination {score_text(r.contamination)}",
    ]
    if not r.needed:
        lines.append(
            "  no remedy: nothing here rests on other people's debts"
            if r.verdict == Verdict.OWN_CONDUCT
            else "  no remedy: nothing in the data explains this listing"
        )
    elif not r.clearable:
        lines.append("  no set of correctable records clears this listing")
    else:
        lines.append(
            f"  correct {'this' if len(r.records) == 1 else 'these'} "
            f"{count(len(r.records), 'record')} and no path is left (all "
            f"{count(r.paths, 'path')} through other people's records, not only the best "
            "that explain shows):"
        )
        for x in r.records:
            lines.append(f"    - {record_text(x, r.names)}")
        lines.append("  platforms to contact, in the order the listing travelled:")
        lines.extend(_contact_lines(r))
    lines.append(f"  policy: {r.policy.label}")
    return printable_lines(lines)  # names and ids from the data: never a line of their own
