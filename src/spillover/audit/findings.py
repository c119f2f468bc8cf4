"""Red flags: ``spillover findings``, the same findings on every backend.

Each kind of finding is defined once, in :data:`spillover.rules.FINDINGS` (a stable
code, a title, what it means, and the saved query that finds it on Neo4j). All
but one are patterns in the graph; on Neo4j they run as the saved Cypher queries in
``cypher/investigate/`` (usable as they are in Neo4j Browser), on the embedded
backends as the same patterns in Python over the graph's columns. Both give rows
of the same shape, grouped here into :class:`Finding`\\ s. One
(``MOSTLY_SPILLOVER_PLATFORM``) needs the verdicts, which only the rules engine
computes: it comes from the batch audit on every backend.

- ``APPLICANT_PHONE_OF_ANOTHER``: a loan applied for with a phone that another
  person owned on the application day (an owner period covers it, the borrower's
  does not), without an SMS check; one finding per phone and owner;
- ``CONTACT_HUB``: a phone named by a link (any link role) on the loans of at least
  ``min_borrowers`` distinct borrowers who never owned it;
- ``LISTED_ONLY_UNVERIFIED``: a person listed (an entry on them, or on a phone they
  owned on the listing day; not an entry on a platform record) with no loan of their
  own in an origin status, and at least one tie to another person's loan in an origin
  status, every such tie one they did not verify (:func:`spillover.rules.unverified_tie`;
  a tie: the person owned, on the loan's application day, a phone the loan names);
- ``MOSTLY_SPILLOVER_PLATFORM``: a platform with more than ``spillover_share`` of
  its listings spillover;
- ``COPY_AFTER_REPAID``: a copied entry (``copied_from``) whose first listing's
  subject is tied to that listing's platform only by loans that were all repaid
  (status ``repaid``, reached no later than the copy's listing day; a first listing
  on a platform record is tied to none);
- ``PHONE_ONLY_RECORD_LINK``: platform records on different platforms that share a
  phone number but neither a name nor an ID number (the Xu Yan pattern); one finding
  per phone;
- ``CLUSTER_WITHOUT_ID_NUMBER``: a person with two or more resolved records
  (``records.person_id`` or ``matches``) of which no two share an ID number;
- ``PHONE_FANOUT``: a phone number on the records of at least ``min_identities``
  identities (a record's ID number, else its name).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..facts.columns import Columns
from ..facts.graph import GraphBackend
from ..facts.model import APPLICANT, LoanStatus, Record, ref
from ..neo4j.saved import DEFAULT_MIN_BORROWERS, DEFAULT_MIN_IDENTITIES, query_params
from ..policy import Policy, default_policy
from ..rules import FINDINGS, Verdict, unverified_tie, use_kind
from ..text.safe import printable_lines
from .batch import audit_rows

__all__ = [
    "DEFAULT_SPILLOVER_SHARE",
    "Finding",
    "Findings",
    "QueryRunner",
    "find",
    "findings_text",
]

#: a platform is flagged when more than this share of its listings is spillover
DEFAULT_SPILLOVER_SHARE = 0.5

Row = dict[str, Any]


@runtime_checkable
class QueryRunner(Protocol):
    """A backend that runs a saved Cypher query (the Neo4j backend)."""

    def query(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows of the saved query ``cypher/investigate/NAME.cypher``."""
        ...


@dataclass(frozen=True, slots=True)
class Finding:
    """One red flag: its ``code`` (:data:`spillover.rules.FINDINGS`), the node it is
    about, counts, and the records behind it (ids by kind)."""

    code: str
    subject: str
    counts: Mapping[str, int]
    records: Mapping[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """The finding as the JSON object ``spillover findings --format json`` prints."""
        return {
            "code": self.code,
            "subject": self.subject,
            "counts": dict(self.counts),
            "records": {k: list(v) for k, v in self.records.items()},
        }


@dataclass(frozen=True, slots=True)
class Findings:
    """Every finding, in the order of :data:`spillover.rules.FINDINGS`, then by subject."""

    findings: tuple[Finding, ...]
    params: Mapping[str, Any] = field(default_factory=dict)

    def by_code(self) -> dict[str, list[Finding]]:
        """The findings grouped by finding code, every code present (empty when none)."""
        out: dict[str, list[Finding]] = {code: [] for code in FINDINGS}
        for f in self.findings:
            out[f.code].append(f)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON object ``spillover findings --format json`` prints."""
        return {
            "params": dict(self.params),
            "summary": {code: len(fs) for code, fs in self.by_code().items()},
            "findings": [{"title": FINDINGS[f.code].title, **f.to_dict()} for f in self.findings],
        }


def find(
    backend: GraphBackend,
    policy: Policy | None = None,
    *,
    min_borrowers: int = DEFAULT_MIN_BORROWERS,
    spillover_share: float = DEFAULT_SPILLOVER_SHARE,
    min_identities: int = DEFAULT_MIN_IDENTITIES,
) -> Findings:
    """Every red flag in the graph of ``backend`` (see the module text for each kind).

    >>> from spillover import open_folder, examples
    >>> found = find(open_folder(examples.jiang_case_path()))
    >>> [(f.subject, f.records["owners"]) for f in found.by_code()["APPLICANT_PHONE_OF_ANOTHER"]]
    [('phone:+8613957112345', ('jiang',))]
    """
    policy = policy or default_policy()
    params = query_params(policy, min_borrowers, min_identities)
    if isinstance(backend, QueryRunner):
        rows = {name: backend.query(name, p) for name, p in params.items()}
    else:
        rows = _python_rows(backend.columns(), policy, min_borrowers, min_identities)
    out: list[Finding] = []
    for code, kind in FINDINGS.items():
        if kind.query is None:
            out.extend(_spillover_platforms(code, backend, policy, spillover_share))
        else:
            out.extend(_GROUP[kind.query](code, rows[kind.query]))
    return Findings(
        tuple(out),
        {
            "min_borrowers": min_borrowers,
            "spillover_share": spillover_share,
            "min_identities": min_identities,
        },
    )


# ---------------------------------------------------------------------------
# Rows to findings (the same for Cypher and Python rows)
# ---------------------------------------------------------------------------


def _ids(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in values}))


def _applicant_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["phone"], r["owner_id"]), []).append(r)
    for (phone, owner), rs in sorted(groups.items()):
        yield Finding(
            code,
            ref("phone", phone),
            {
                "loans": len({r["loan_id"] for r in rs}),
                "borrowers": len({r["borrower_id"] for r in rs}),
            },
            {
                "owners": (owner,),
                "loans": _ids([r["loan_id"] for r in rs]),
                "borrowers": _ids([r["borrower_id"] for r in rs]),
                "platforms": _ids([r["platform_id"] for r in rs]),
            },
        )


def _hub_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    for r in sorted(rows, key=lambda r: r["phone"]):
        yield Finding(
            code,
            ref("phone", r["phone"]),
            {"borrowers": len(r["borrower_ids"]), "loans": len(r["loan_ids"])},
            {
                "borrowers": _ids(r["borrower_ids"]),
                "loans": _ids(r["loan_ids"]),
                "owners": _ids(r["owner_ids"]),
            },
        )


def _unverified_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    for r in sorted(rows, key=lambda r: r["person_id"]):
        yield Finding(
            code,
            ref("person", r["person_id"]),
            {"entries": len(r["entry_ids"]), "loans": len(r["loan_ids"])},
            {"entries": _ids(r["entry_ids"]), "loans": _ids(r["loan_ids"])},
        )


def _copy_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    for r in sorted(rows, key=lambda r: r["entry_id"]):
        yield Finding(
            code,
            ref("entry", r["entry_id"]),
            {"loans": len(r["loan_ids"])},
            {
                "first_listing": (r["root_id"],),
                "platforms": (r["platform_id"],),
                "loans": _ids(r["loan_ids"]),
            },
        )


def _phone_only_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r["phone"], []).append(r)
    for phone, rs in sorted(groups.items()):
        records = _ids([r[k] for r in rs for k in ("record_a", "record_b")])
        yield Finding(
            code,
            ref("phone", phone),
            {"pairs": len(rs), "records": len(records)},
            {
                "records": records,
                "platforms": _ids([r[k] for r in rs for k in ("platform_a", "platform_b")]),
            },
        )


def _cluster_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    for r in sorted(rows, key=lambda r: r["person_id"]):
        yield Finding(
            code,
            ref("person", r["person_id"]),
            {"records": len(r["record_ids"])},
            {"records": _ids(r["record_ids"]), "matched_by": _ids(r["matched_by"])},
        )


def _fanout_findings(code: str, rows: list[Row]) -> Iterator[Finding]:
    for r in sorted(rows, key=lambda r: r["phone"]):
        yield Finding(
            code,
            ref("phone", r["phone"]),
            {"records": len(r["record_ids"]), "identities": len(r["identities"])},
            {"records": _ids(r["record_ids"]), "identities": _ids(r["identities"])},
        )


#: rows of each saved query (or its Python twin) to findings
_GROUP = {
    "unverified_applicant_phone": _applicant_findings,
    "shared_phone_hubs": _hub_findings,
    "listed_only_unverified": _unverified_findings,
    "copies_after_repaid": _copy_findings,
    "phone_only_record_links": _phone_only_findings,
    "clusters_without_id_number": _cluster_findings,
    "record_phone_fanout": _fanout_findings,
}


def _spillover_platforms(
    code: str, backend: GraphBackend, policy: Policy, share: float
) -> Iterator[Finding]:
    listings: dict[str, list[str]] = {}
    spill: dict[str, list[str]] = {}
    for row in audit_rows(backend, policy):
        listings.setdefault(row["platform_id"], []).append(row["entry_id"])
        if row["verdict"] == Verdict.SPILLOVER.value:
            spill.setdefault(row["platform_id"], []).append(row["entry_id"])
    for platform in sorted(listings):
        n, s = len(listings[platform]), len(spill.get(platform, ()))
        if s / n > share:  # (not s > share * n: 0.58 * 50 is 28.999999999999996)
            yield Finding(
                code,
                ref("platform", platform),
                {"listings": n, "spillover_listings": s},
                {"spillover_entries": _ids(spill.get(platform, []))},
            )


# ---------------------------------------------------------------------------
# The patterns in Python, over the graph's columns (the embedded backends)
# ---------------------------------------------------------------------------


def _strs(values: Any) -> list[str]:
    return [str(v) for v in (values.to_pylist() if hasattr(values, "to_pylist") else values)]


@dataclass(frozen=True, slots=True)
class _Period:
    owner: str
    verified: bool
    since: int
    until: int

    def covers(self, day: int) -> bool:
        return self.since <= day <= self.until


@dataclass(frozen=True, slots=True)
class _Owners:
    """The owner periods of every phone, each phone's in the order of their first day, so
    the one covering a day is found by bisection (a phone's periods never overlap): a
    number reassigned n times and named on n loans costs n log n, not n squared."""

    periods: Mapping[str, list[_Period]]
    starts: Mapping[str, list[int]]

    @classmethod
    def of(cls, periods: Mapping[str, list[_Period]]) -> _Owners:
        ordered = {phone: sorted(ps, key=lambda p: p.since) for phone, ps in periods.items()}
        return cls(ordered, {phone: [p.since for p in ps] for phone, ps in ordered.items()})

    def on(self, phone: str, day: int) -> list[_Period]:
        """The period of ``phone`` covering ``day``, as a list of none or one."""
        ps = self.periods.get(phone)
        if not ps:
            return []
        at = bisect_right(self.starts[phone], day) - 1
        return [ps[at]] if at >= 0 and ps[at].covers(day) else []


@dataclass(frozen=True, slots=True)
class _Loan:
    loan_id: str
    platform: str
    borrower: str
    applied: int
    known: int
    status: str
    sms: bool


def _python_rows(
    cols: Columns, policy: Policy, min_borrowers: int, min_identities: int = DEFAULT_MIN_IDENTITIES
) -> dict[str, list[Row]]:
    periods: dict[str, list[_Period]] = {}
    for phone, owner, verified, since, until in zip(
        _strs(cols.period_phone),
        _strs(cols.period_owner),
        cols.period_verified.tolist(),
        cols.period_since.tolist(),
        cols.period_until.tolist(),
        strict=True,
    ):
        if owner:  # Neo4j stores known owners only: an unknown subscriber is no tie
            periods.setdefault(phone, []).append(_Period(owner, bool(verified), since, until))
    loans: dict[str, _Loan] = {}
    uses: list[tuple[str, str, _Loan]] = []  # phone, role, loan
    for lid, pl, b, applied, known, status, phone, sms in zip(
        _strs(cols.loan_ids),
        _strs(cols.loan_platform),
        _strs(cols.loan_borrower),
        cols.loan_applied.tolist(),
        cols.loan_known.tolist(),
        _strs(cols.loan_status),
        _strs(cols.loan_applicant_phone),
        cols.loan_phone_verified.tolist(),
        strict=True,
    ):
        loan = loans[lid] = _Loan(lid, pl, b, applied, known, status, bool(sms))
        if phone:
            uses.append((phone, APPLICANT, loan))
    for lid, phone, role in zip(
        _strs(cols.link_loan), _strs(cols.link_phone), _strs(cols.link_role), strict=True
    ):
        uses.append((phone, role, loans[lid]))
    return {
        "unverified_applicant_phone": _py_applicant(uses, _Owners.of(periods)),
        "shared_phone_hubs": _py_hubs(uses, periods, min_borrowers),
        "listed_only_unverified": _py_unverified(cols, uses, _Owners.of(periods), loans, policy),
        "copies_after_repaid": _py_copies(cols, uses, periods, loans),
        **_py_records(cols, min_identities),
    }


def _py_records(cols: Columns, min_identities: int) -> dict[str, list[Row]]:
    """The identity-linkage patterns over the platform records and their matches (the
    Python twins of the saved queries ``phone_only_record_links``,
    ``clusters_without_id_number`` and ``record_phone_fanout``)."""
    records = sorted(cols.records.values(), key=lambda r: r.record_id)
    by_phone: dict[str, list[Record]] = {}
    for r in records:
        if r.phone is not None:
            by_phone.setdefault(r.phone, []).append(r)
    pairs: list[Row] = []
    fanout: list[Row] = []
    for phone, rs in sorted(by_phone.items()):
        for i, a in enumerate(rs):
            for b in rs[i + 1 :]:
                if a.platform_id == b.platform_id:
                    continue
                if a.name is not None and a.name == b.name:
                    continue
                if a.id_number is not None and a.id_number == b.id_number:
                    continue
                pairs.append(
                    {
                        "phone": phone,
                        "record_a": a.record_id,
                        "record_b": b.record_id,
                        "platform_a": a.platform_id,
                        "platform_b": b.platform_id,
                    }
                )
        identities = list(
            dict.fromkeys(
                r.id_number if r.id_number is not None else r.name
                for r in rs
                if r.id_number is not None or r.name is not None
            )
        )
        if len(identities) >= min_identities:
            fanout.append(
                {
                    "phone": phone,
                    "record_ids": [r.record_id for r in rs],
                    "identities": identities,
                }
            )
    clusters: dict[str, list[Record]] = {}
    for r in records:
        match = cols.matches.get(r.record_id)
        if match is not None:
            clusters.setdefault(match.person_id, []).append(r)
    without_id: list[Row] = []
    for person, rs in sorted(clusters.items()):
        numbers = [r.id_number for r in rs if r.id_number is not None]
        if len(rs) >= 2 and len(numbers) == len(set(numbers)):
            without_id.append(
                {
                    "person_id": person,
                    "record_ids": [r.record_id for r in rs],
                    "matched_by": sorted({cols.matches[r.record_id].matched_by.value for r in rs}),
                }
            )
    return {
        "phone_only_record_links": pairs,
        "clusters_without_id_number": without_id,
        "record_phone_fanout": fanout,
    }


def _py_applicant(uses: list[tuple[str, str, _Loan]], periods: _Owners) -> list[Row]:
    rows = []
    for phone, role, loan in uses:
        if role != APPLICANT or use_kind(APPLICANT, loan.sms) != use_kind(APPLICANT, False):
            continue
        owners = {p.owner for p in periods.on(phone, loan.applied)}
        if loan.borrower in owners:
            continue
        rows += [
            {
                "phone": phone,
                "owner_id": owner,
                "loan_id": loan.loan_id,
                "borrower_id": loan.borrower,
                "platform_id": loan.platform,
            }
            for owner in sorted(owners)
        ]
    return rows


def _py_hubs(
    uses: list[tuple[str, str, _Loan]], periods: dict[str, list[_Period]], min_borrowers: int
) -> list[Row]:
    named: dict[str, list[_Loan]] = {}
    for phone, role, loan in uses:
        if role != APPLICANT:
            named.setdefault(phone, []).append(loan)
    rows = []
    for phone, ls in named.items():
        owners = {p.owner for p in periods.get(phone, ())}
        unrelated = [x for x in ls if x.borrower not in owners]
        borrowers = {x.borrower for x in unrelated}
        if len(borrowers) >= min_borrowers:
            rows.append(
                {
                    "phone": phone,
                    "borrower_ids": sorted(borrowers),
                    "loan_ids": sorted({x.loan_id for x in unrelated}),
                    "owner_ids": sorted(owners),
                }
            )
    return rows


#: an entry as :func:`_entries` gives it: id, platform, subject kind, subject, listed day,
#: the entry it copies
_Entry = tuple[str, str, str, str, int, str]


def _entries(cols: Columns) -> list[_Entry]:
    return list(
        zip(
            _strs(cols.entry_ids),
            _strs(cols.entry_platform),
            _strs(cols.entry_kind),
            _strs(cols.entry_subject),
            cols.entry_listed.tolist(),
            _strs(cols.entry_copied_from),
            strict=True,
        )
    )


def _py_unverified(
    cols: Columns,
    uses: list[tuple[str, str, _Loan]],
    periods: _Owners,
    loans: dict[str, _Loan],
    policy: Policy,
) -> list[Row]:
    statuses = {s.value for s in policy.origin_statuses}
    listed: dict[str, set[str]] = {}
    for eid, _pl, kind, subject, day, _copied in _entries(cols):
        if kind == "person":
            listed.setdefault(subject, set()).add(eid)
        elif kind == "phone":  # an entry on a platform record lists no person here
            for p in periods.on(subject, day):
                listed.setdefault(p.owner, set()).add(eid)
    own_default = {x.borrower for x in loans.values() if x.status in statuses}
    ties: dict[str, list[tuple[bool, str]]] = {}  # person -> (unverified, loan id)
    for phone, role, loan in uses:
        if loan.status not in statuses:
            continue
        for p in periods.on(phone, loan.applied):
            if p.owner != loan.borrower:
                unverified = unverified_tie(p.verified, role, loan.sms)
                ties.setdefault(p.owner, []).append((unverified, loan.loan_id))
    rows = []
    for person, entries in listed.items():
        tied = ties.get(person, [])
        if person in own_default or not tied or not all(u for u, _ in tied):
            continue
        rows.append(
            {
                "person_id": person,
                "entry_ids": sorted(entries),
                "loan_ids": sorted({lid for _, lid in tied}),
            }
        )
    return rows


def _py_copies(
    cols: Columns,
    uses: list[tuple[str, str, _Loan]],
    periods: dict[str, list[_Period]],
    loans: dict[str, _Loan],
) -> list[Row]:
    entries = {e[0]: e for e in _entries(cols)}
    subject_loans = _SubjectLoans.of(uses, periods, loans)
    # the first listing of each entry, found once per entry, and per first listing its
    # loans: following every chain from every copy cost the square of a chain's length
    root_of: dict[str, str | None] = {}
    at_roots: dict[str, tuple[list[_Loan], bool, int]] = {}
    rows = []
    for eid, _pl, _kind, _subject, day, copied in entries.values():
        if not copied or copied not in entries:
            continue
        rid = _first_listing(entries, root_of, copied)
        if rid is None:
            continue
        if rid not in at_roots:
            at_roots[rid] = subject_loans.at_root(entries[rid])
        at_root, all_repaid, last_known = at_roots[rid]
        if at_root and all_repaid and last_known <= day:
            rows.append(
                {
                    "entry_id": eid,
                    "root_id": rid,
                    "platform_id": entries[rid][1],
                    "loan_ids": sorted(x.loan_id for x in at_root),
                }
            )
    return rows


def _first_listing(
    entries: Mapping[str, _Entry], root_of: dict[str, str | None], eid: str
) -> str | None:
    """The first listing of the copy chain of entry ``eid`` (None: its chain loops),
    remembered in ``root_of`` for every entry on the way."""
    path: list[str] = []
    on_path: set[str] = set()
    here = eid
    while here not in root_of:
        if here in on_path:  # a loop: no first listing
            found = None
            break
        on_path.add(here)
        path.append(here)
        source = entries[here][5]
        if source not in entries:
            found = here
            break
        here = source
    else:
        found = root_of[here]
    for x in path:
        root_of[x] = found
    return found


@dataclass(frozen=True, slots=True)
class _SubjectLoans:
    """The loans of a listing's subject: phones per owner, loans per phone named, loans
    per borrower."""

    owned: dict[str, set[str]]
    by_phone: dict[str, set[str]]
    borrowed: dict[str, set[str]]
    loans: Mapping[str, _Loan]

    @classmethod
    def of(
        cls,
        uses: list[tuple[str, str, _Loan]],
        periods: Mapping[str, list[_Period]],
        loans: Mapping[str, _Loan],
    ) -> _SubjectLoans:
        owned: dict[str, set[str]] = {}
        for phone, ps in periods.items():
            for p in ps:
                owned.setdefault(p.owner, set()).add(phone)
        by_phone: dict[str, set[str]] = {}
        for phone, _role, loan in uses:
            by_phone.setdefault(phone, set()).add(loan.loan_id)
        borrowed: dict[str, set[str]] = {}
        for x in loans.values():
            borrowed.setdefault(x.borrower, set()).add(x.loan_id)
        return cls(owned, by_phone, borrowed, loans)

    def at_root(self, root: _Entry) -> tuple[list[_Loan], bool, int]:
        """The loans tying the first listing's subject to its platform, whether all
        were repaid, and the last day one was known."""
        _, rpl, rkind, rsubject, _, _ = root
        if rkind == "person":
            phones = self.owned.get(rsubject, set())
            tied = set(self.borrowed.get(rsubject, ()))
        elif rkind == "phone":
            phones, tied = {rsubject}, set()
        else:  # a platform record: tied to no loan (its id is no phone, whatever its spelling)
            phones, tied = set(), set()
        for phone in phones:
            tied |= self.by_phone.get(phone, set())
        at_root = [self.loans[lid] for lid in tied if self.loans[lid].platform == rpl]
        return (
            at_root,
            all(x.status == LoanStatus.REPAID.value for x in at_root),
            max((x.known for x in at_root), default=0),
        )


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def findings_text(found: Findings) -> str:
    """The findings as text: one block per kind (code, title, count), one line per finding."""
    lines = []
    for code, fs in found.by_code().items():
        kind = FINDINGS[code]
        lines.append(f"{code}: {kind.title} ({len(fs)})")
        for f in fs:
            counts = ", ".join(f"{n} {k}" for k, n in f.counts.items())
            records = "; ".join(f"{k}: {' '.join(v)}" for k, v in f.records.items())
            lines.append(f"  {f.subject}  {counts}  [{records}]")
    return printable_lines(lines)  # ids from the data: never a line of their own
