"""Notices: after a correction, one letter to every platform that must act.

When a record is corrected, the listings that rested on it should be lifted, and not only
by the platform that corrected it: a furnisher that corrects data must tell those it
reported to. :func:`notices` finds, from :class:`~spillover.disputes.changes.Changes`, every
platform that must act on the **lifted** entries, in the order the listings travelled
(:attr:`spillover.engines.remedy.Remedy.contacts`: first listers, then the platforms that
received them by sharing or copy):

- a platform that **lists** a lifted entry: lift it (the old and new answer, and the path
  that no longer exists);
- a platform that **holds a corrected record** on a lifted entry's paths: the correction
  of its own record (an applicant phone, a loan link, a copy, a sharing agreement, a match);
- a platform that **passed the listing on** or **received it** (sharing, copy): to whom it
  passed it or from whom it came, and on which day;
- a platform that **checked** a lifted entry's subject through the check service (the
  check log, ``--check-log``) and was answered on the old data: the checks answered.

Each notice names only what its platform holds or did: its own listings, records, sharing
and checks, and the subject. :func:`write_notices` writes them as Markdown and HTML in
English and Chinese, and ``notices.json`` for systems. Every value taken from the data
is escaped as in the report (HTML: autoescape; Markdown:
:func:`spillover.render.report.markdown_escape`), so a name is text, never markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..engines.remedy import APPLICANT_PHONE, LOAN_LINK, Record, remedy
from ..facts.graph import GraphBackend
from ..facts.model import ref
from ..render.i18n import MATCH_HOW_ZH, RECORD_TEXTS, ROLE_TEXTS_ZH
from ..render.remedy import record_text
from ..render.report import markdown_escape
from ..rules import APPLICANT
from ..service.checklog import read_checks
from ..text.safe import printable
from ..version import __version__
from .apply import record_dict
from .changes import LIFTED, Changes, EntryChange

__all__ = [
    "FORMATS",
    "LANGS",
    "NOTICES_FILE",
    "Checked",
    "Notice",
    "Passed",
    "notice_files",
    "notice_stem",
    "notices",
    "write_notices",
]

#: the languages a notice is written in
LANGS = ("en", "zh")
#: the formats a notice is written in (file name suffixes)
FORMATS = ("md", "html")
#: the file for systems, beside the notices
NOTICES_FILE = "notices.json"


@dataclass(frozen=True, slots=True)
class Passed:
    """A lifted listing's basis that went from one platform to another (``how``: sharing
    or copy) on ``day``: in a notice to the sender it names the receiver, and in a notice
    to the receiver the sender (never the other platform's entries)."""

    other_platform: str
    how: str
    day: date | None


@dataclass(frozen=True, slots=True)
class Checked:
    """A check the service answered on the old data (a check-log line)."""

    check_id: str
    time: str
    subject_kind: str
    subject: str
    recommendation: str | None


@dataclass(frozen=True, slots=True)
class Notice:
    """The letter to one platform: what it lists, holds, passed on, received and checked."""

    platform_id: str
    platform_name: str
    stage: int
    first_day: date | None
    listings: tuple[EntryChange, ...] = ()
    records: tuple[Record, ...] = ()
    passed_to: tuple[Passed, ...] = ()
    received_from: tuple[Passed, ...] = ()
    checks: tuple[Checked, ...] = ()
    subjects: tuple[str, ...] = ()


_UNSEEN = 10**9


@dataclass
class _Draft:
    stage: int = _UNSEEN
    first_day: date | None = None
    listings: list[EntryChange] = field(default_factory=list)
    records: set[Record] = field(default_factory=set)
    passed_to: set[Passed] = field(default_factory=set)
    received_from: set[Passed] = field(default_factory=set)
    checks: list[Checked] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)

    def seen(self, stage: int, day: date | None) -> None:
        if (stage, day or date.max) < (self.stage, self.first_day or date.max):
            self.stage, self.first_day = stage, day


def _checks(check_log: str | Path, lifted: list[EntryChange]) -> dict[str, list[Checked]]:
    """The check-log lines of the lifted entries' subjects, by the platform checked for."""
    wanted = {(c.subject_kind, c.subject) for c in lifted}
    people = {s for k, s in wanted if k == "person"}
    out: dict[str, list[Checked]] = {}
    for line in read_checks(check_log):
        subject = line.get("subject") or {}
        key = (subject.get("kind"), subject.get("id"))
        if key not in wanted and line.get("phone_owner_id") not in people:
            continue
        result = line.get("result") or {}
        out.setdefault(str(line.get("platform_id")), []).append(
            Checked(
                str(line.get("check_id")),
                str(line.get("time")),
                str(key[0]),
                str(key[1]),
                result.get("recommendation"),
            )
        )
    return out


def notices(
    found: Changes, before: GraphBackend, *, check_log: str | Path | None = None
) -> tuple[Notice, ...]:
    """The notices of the lifted entries of ``found``, in travel order (stage, first day,
    platform id). ``before`` is the graph the entries were explained on before the
    correction (their routes: the remedies ``found`` carries, else found again on it)."""
    lifted = [c for c in found.entries if c.status == LIFTED]
    drafts: dict[str, _Draft] = {}

    def draft(platform: str) -> _Draft:
        return drafts.setdefault(platform, _Draft())

    for change in lifted:
        r = found.remedies.get(change.entry_id) or remedy(before, change.entry_id, found.policy)
        subject = ref(change.subject_kind, change.subject)
        stage_of = {c.platform_id: (c.stage, c.first_day) for c in r.contacts}
        lister = draft(change.platform_id)
        lister.listings.append(change)
        lister.subjects.add(subject)
        lister.seen(*stage_of.get(change.platform_id, (0, None)))
        for record in change.removed_records:
            if record.platform_id is not None:
                holder = draft(record.platform_id)
                holder.records.add(record)
                holder.subjects.add(subject)
                holder.seen(*stage_of.get(record.platform_id, (0, None)))
        for c in r.contacts:
            if c.how in ("sharing", "copy") and c.received_from is not None:
                receiver, sender = draft(c.platform_id), draft(c.received_from)
                receiver.received_from.add(Passed(c.received_from, c.how, c.first_day))
                sender.passed_to.add(Passed(c.platform_id, c.how, c.first_day))
                for p, d in ((c.platform_id, receiver), (c.received_from, sender)):
                    d.subjects.add(subject)
                    d.seen(*stage_of.get(p, (c.stage, c.first_day)))
    if check_log is not None:
        for platform, checks in _checks(check_log, lifted).items():
            d = draft(platform)
            d.checks.extend(checks)
            d.subjects.update(ref(c.subject_kind, c.subject) for c in checks)
    names = before.names([ref("platform", p) for p in drafts])
    # a platform known only from its checks comes after every platform the listings reached
    last = 1 + max((d.stage for d in drafts.values() if d.stage < _UNSEEN), default=-1)
    out = [
        Notice(
            platform_id=p,
            platform_name=names.get(ref("platform", p), p),
            stage=d.stage if d.stage < _UNSEEN else last,
            first_day=d.first_day,
            listings=tuple(sorted(d.listings, key=lambda c: c.entry_id)),
            records=tuple(sorted(d.records, key=Record.sort_key)),
            passed_to=tuple(sorted(d.passed_to, key=_passed_key)),
            received_from=tuple(sorted(d.received_from, key=_passed_key)),
            checks=tuple(sorted(d.checks, key=lambda c: (c.time, c.check_id))),
            subjects=tuple(sorted(d.subjects)),
        )
        for p, d in drafts.items()
    ]
    return tuple(sorted(out, key=lambda n: (n.stage, n.first_day or date.max, n.platform_id)))


def _passed_key(p: Passed) -> tuple[Any, ...]:
    return (p.day or date.max, p.other_platform, p.how)


# ---------------------------------------------------------------------------
# Writing them
# ---------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Notice of corrected records",
        "to": "To",
        "intro": (
            "Records on which blacklist listings rested have been corrected. After the "
            "correction, the listings below no longer rest on anyone's debts. This notice "
            "names only what your platform holds or did."
        ),
        "subjects": "Subject",
        "listings": "Your listings to lift",
        "entry": "Entry",
        "listed_at": "Listed on",
        "before": "Before",
        "after": "After",
        "path": "The path that no longer exists",
        "records": "Your records that were corrected",
        "passed_to": "You passed it on",
        "received_from": "You received it",
        "via": "by",
        "on": "on",
        "checks": "Checks you were answered on the old data",
        "policy": "Scoring policy",
        "made_by": "Made by spillover",
        "none": "none",
        "contamination": "contamination",
    },
    "zh": {
        "title": "记录更正通知",
        "to": "致",
        "intro": (
            "黑名单条目所依据的记录已被更正。更正后，以下条目不再依据任何他人的债务。"
            "本通知只列出贵平台持有或经手的内容。"
        ),
        "subjects": "当事人",
        "listings": "请撤销的贵平台条目",
        "entry": "条目",
        "listed_at": "列入日期",
        "before": "更正前",
        "after": "更正后",
        "path": "已不存在的路径",
        "records": "贵平台已更正的记录",
        "passed_to": "贵平台转出",
        "received_from": "贵平台收到",
        "via": "方式",
        "on": "日期",
        "checks": "贵平台依据旧数据得到的查询答复",
        "policy": "评分策略",
        "made_by": "由 spillover 生成",
        "none": "无",
        "contamination": "污染度",
    },
}


def _state(change: EntryChange, which: str) -> str:
    state = change.before if which == "before" else change.after
    if state is None:
        return "-"
    return f"{state.verdict} ({state.contamination:.2f}, {state.recommendation})"


def _path(change: EntryChange) -> str:
    s = change.before
    if s is None or s.origin_loan_id is None:
        return "-"
    return (
        f"{s.origin_borrower_id} -> {s.origin_loan_id} @ {s.origin_platform_id}, "
        f"{s.hops} loan(s), {s.reason_codes}"
    )


def _record_line(r: Record, names: dict[str, str], lang: str) -> str:
    """One corrected record as a sentence, in the report's words (render.i18n)."""
    if lang == "en":
        return record_text(r, names)

    def name(kind: str, key: str | None) -> str:
        return names.get(ref(kind, key or ""), key or "?")

    role = ""
    if r.kind == APPLICANT_PHONE:
        role = ROLE_TEXTS_ZH[APPLICANT][0]
    elif r.kind == LOAN_LINK and r.role:
        role = ROLE_TEXTS_ZH[r.role][0]
    return RECORD_TEXTS[r.kind][lang].format(
        phone=name("phone", r.phone),
        role=role,
        loan=f"{r.loan_id}（{name('platform', r.platform_id)}）" if r.loan_id else "",
        owner=name("person", r.owner_id),
        since=r.since.isoformat() if r.since else "?",
        entry=r.entry_id,
        copied_from=r.copied_from,
        from_platform=name("platform", r.from_platform),
        to_platform=name("platform", r.to_platform),
        record=name("record", r.record_id),
        person=name("person", r.person_id),
        how=MATCH_HOW_ZH.get(r.matched_by or "other", r.matched_by or ""),
    )


def _context(
    notice: Notice, found: Changes, lang: str, names: dict[str, str], fmt: str
) -> dict[str, Any]:
    # HTML: controls and bidi characters written as escapes here (autoescape does the
    # markup); Markdown: markdown_escape does both, line breaks as spaces, as in the report
    text: Callable[[str], str] = printable if fmt == "html" else str

    def name(r: str) -> str:
        return text(names.get(r, r.split(":", 1)[-1]))

    return {
        "t": TEXTS[lang],
        "lang": lang,
        "platform": text(notice.platform_name),
        "platform_id": text(notice.platform_id),
        "subjects": [name(s) for s in notice.subjects],
        "listings": [
            {
                "entry_id": text(c.entry_id),
                "subject": name(ref(c.subject_kind, c.subject)),
                "before": _state(c, "before"),
                "after": _state(c, "after"),
                "path": text(_path(c)),
            }
            for c in notice.listings
        ],
        "records": [text(_record_line(r, names, lang)) for r in notice.records],
        "passed_to": [
            {
                "other": name(ref("platform", p.other_platform)),
                "how": p.how,
                "day": p.day.isoformat() if p.day else "-",
            }
            for p in notice.passed_to
        ],
        "received_from": [
            {
                "other": name(ref("platform", p.other_platform)),
                "how": p.how,
                "day": p.day.isoformat() if p.day else "-",
            }
            for p in notice.received_from
        ],
        "checks": [
            {
                "id": text(c.check_id),
                "time": text(c.time),
                "subject": name(ref(c.subject_kind, c.subject)),
                "recommendation": c.recommendation or "-",
            }
            for c in notice.checks
        ],
        "policy": found.policy.label,
        "version": __version__,
    }


def _environment(fmt: str) -> Environment:
    """HTML: Jinja's autoescape; Markdown: every value written through the report's
    :func:`~spillover.render.report.markdown_escape` (markup as entities, line breaks
    as spaces, controls and bidi characters escaped, Markdown punctuation escaped)."""
    finalize: Callable[[Any], Any] | None = markdown_escape if fmt == "md" else None
    return Environment(
        loader=PackageLoader(__name__.rpartition(".")[0], "templates"),
        autoescape=fmt == "html",
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def notice_text(
    notice: Notice, found: Changes, names: dict[str, str], *, lang: str = "en", fmt: str = "md"
) -> str:
    """One notice as Markdown (``fmt="md"``) or HTML, in English or Chinese."""
    template = _environment(fmt).get_template(f"notice.{fmt}.j2")
    return template.render(**_context(notice, found, lang, names, fmt))


def _json(notice: Notice, files: dict[str, dict[str, str]]) -> dict[str, Any]:
    def passed(ps: Iterable[Passed]) -> list[dict[str, Any]]:
        return [
            {
                "platform_id": p.other_platform,
                "how": p.how,
                "day": p.day.isoformat() if p.day else None,
            }
            for p in ps
        ]

    return {
        "platform_id": notice.platform_id,
        "platform_name": notice.platform_name,
        "stage": notice.stage,
        "first_day": notice.first_day.isoformat() if notice.first_day else None,
        "subjects": list(notice.subjects),
        "lift": [
            {
                "entry_id": c.entry_id,
                "subject_kind": c.subject_kind,
                "subject": c.subject,
                "before": _state(c, "before"),
                "after": _state(c, "after"),
            }
            for c in notice.listings
        ],
        "corrected_records": [record_dict(r) for r in notice.records],
        "passed_to": passed(notice.passed_to),
        "received_from": passed(notice.received_from),
        "checks": [
            {
                "check_id": c.check_id,
                "time": c.time,
                "subject_kind": c.subject_kind,
                "subject": c.subject,
                "recommendation": c.recommendation,
            }
            for c in notice.checks
        ],
        "files": files,
    }


#: a platform id kept as it is in a notice's file name: letters, digits, ``_``, ``-``, ``.``
_PLAIN_ID = re.compile(r"[\w.-]+")
#: the longest platform id (UTF-8 bytes) kept as it is in a file name
MAX_ID_BYTES = 100
#: the characters of the readable part of a safe name (the rest is the id's hash)
_SLUG_CHARS = 40


def notice_stem(index: int, platform_id: str) -> str:
    """The file name of a notice without its ``.LANG.FMT``: ``NN-PLATFORM`` (``NN``: the
    notice's place in travel order, from 1). A platform id of letters, digits, ``_``,
    ``-`` and ``.`` only, and at most :data:`MAX_ID_BYTES` bytes, is written as it is;
    any other (a ``/``, a space, a very long id) as a slug (each run of other characters
    one ``-``, at most 40 characters) and the first 8 hex digits of the SHA-256 of the id,
    so that two ids never share a name.

    >>> notice_stem(1, "quickcash"), notice_stem(12, "qiantang_bank")
    ('01-quickcash', '12-qiantang_bank')
    >>> notice_stem(1, "hz/quickcash")
    '01-hz-quickcash-943aa981'
    """
    if _PLAIN_ID.fullmatch(platform_id) and len(platform_id.encode()) <= MAX_ID_BYTES:
        return f"{index:02d}-{platform_id}"
    slug = re.sub(r"[^\w.-]+", "-", platform_id)[:_SLUG_CHARS].strip("-.")
    digest = hashlib.sha256(platform_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{index:02d}-{slug}-{digest}" if slug else f"{index:02d}-{digest}"


def notice_files(index: int, platform_id: str) -> dict[str, dict[str, str]]:
    """The file names of a notice (``NN-PLATFORM.LANG.FMT``, :func:`notice_stem`), by
    language (:data:`LANGS`) and format (:data:`FORMATS`), as ``notices.json`` lists them.

    >>> notice_files(1, "hz/quickcash")["en"]
    {'md': '01-hz-quickcash-943aa981.en.md', 'html': '01-hz-quickcash-943aa981.en.html'}
    """
    stem = notice_stem(index, platform_id)
    return {lang: {fmt: f"{stem}.{lang}.{fmt}" for fmt in FORMATS} for lang in LANGS}


def write_notices(
    found: Changes, items: tuple[Notice, ...], before: GraphBackend, folder: str | Path
) -> list[Path]:
    """Write every notice as ``NN-PLATFORM.LANG.md`` and ``.html`` (``NN``: travel order;
    ``NN-PLATFORM``: :func:`notice_stem`) and ``notices.json`` (each notice with its
    ``files``: :func:`notice_files`) into the existing folder ``folder``; the paths
    written, in order."""
    refs = {s for n in items for s in n.subjects}
    refs |= {ref("platform", n.platform_id) for n in items}
    refs |= {
        ref("platform", p.other_platform) for n in items for p in (*n.passed_to, *n.received_from)
    }
    names = before.names(sorted(refs))
    target = Path(folder)
    written: list[Path] = []
    listed: list[dict[str, Any]] = []
    for i, notice in enumerate(items, 1):
        files = notice_files(i, notice.platform_id)
        for lang in LANGS:
            for fmt in FORMATS:
                path = target / files[lang][fmt]
                path.write_text(
                    notice_text(notice, found, names, lang=lang, fmt=fmt), encoding="utf-8"
                )
                written.append(path)
        listed.append(_json(notice, files))
    path = target / NOTICES_FILE
    path.write_text(
        json.dumps(
            {
                "before": found.before,
                "after": found.after,
                "policy": {
                    "name": found.policy.name,
                    "version": found.policy.version,
                    "digest": found.policy.digest,
                },
                "spillover_version": __version__,
                "notices": listed,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    written.append(path)
    return written
