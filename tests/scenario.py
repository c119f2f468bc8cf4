"""Build small data folders in tests, one row at a time, with sensible defaults."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spillover.data.contract import TABLES


@dataclass
class Scenario:
    """Rows per table; ``write(folder)`` makes a contract data folder (CSV or JSONL)."""

    tables: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in TABLES}
    )
    _phone_seq: int = 0

    def person(self, person_id: str, name: str | None = None, **extra: Any) -> str:
        self.tables["people"].append(
            {"person_id": person_id, "name": name or person_id.title(), **extra}
        )
        return person_id

    def platform(self, platform_id: str, kind: str = "online_lender", **extra: Any) -> str:
        self.tables["platforms"].append(
            {"platform_id": platform_id, "name": platform_id.title(), "kind": kind, **extra}
        )
        return platform_id

    def new_phone(self) -> str:
        self._phone_seq += 1
        return f"+86138{self._phone_seq:08d}"

    def phone(
        self,
        owner_id: str | None,
        phone: str | None = None,
        *,
        verified: bool = True,
        since: str | None = "2010-01-01",
        until: str | None = None,
    ) -> str:
        phone = phone or self.new_phone()
        self.tables["phones"].append(
            {
                "phone": phone,
                "owner_id": owner_id,
                "verified": verified,
                "since": since,
                "until": until,
            }
        )
        return phone

    def loan(
        self,
        loan_id: str,
        platform_id: str,
        borrower_id: str | None,
        applied_at: str,
        status: str = "defaulted",
        *,
        applicant_phone: str | None = None,
        phone_verified: bool | None = None,
        status_at: str | None = None,
        amount: float | None = 1000,
        borrower_record: str | None = None,
    ) -> str:
        self.tables["loans"].append(
            {
                "loan_id": loan_id,
                "platform_id": platform_id,
                "borrower_id": borrower_id,
                "borrower_record": borrower_record,
                "applied_at": applied_at,
                "status": status,
                "applicant_phone": applicant_phone,
                "phone_verified": phone_verified,
                "amount": amount,
                "status_at": status_at,
            }
        )
        return loan_id

    def link(self, loan_id: str, phone: str, role: str) -> None:
        self.tables["loan_links"].append({"loan_id": loan_id, "phone": phone, "role": role})

    def entry(
        self,
        entry_id: str,
        platform_id: str,
        subject: str,
        listed_at: str,
        *,
        kind: str = "person",
        copied_from: str | None = None,
        stated_reason: str | None = None,
    ) -> str:
        self.tables["blacklist"].append(
            {
                "entry_id": entry_id,
                "platform_id": platform_id,
                "subject_kind": kind,
                "subject": subject,
                "listed_at": listed_at,
                "stated_reason": stated_reason,
                "copied_from": copied_from,
            }
        )
        return entry_id

    def record(self, record_id: str, platform_id: str, **fields: Any) -> str:
        """A platform record (name, id_number, phone, birth_date, city, person_id)."""
        self.tables["records"].append(
            {"record_id": record_id, "platform_id": platform_id, **fields}
        )
        return record_id

    def match(
        self,
        record_id: str,
        person_id: str,
        matched_by: str,
        probability: float = 0.9,
        *,
        matched_with: str | None = None,
        match_weight: float | None = None,
        waterfall: list[dict[str, Any]] | None = None,
    ) -> None:
        self.tables["matches"].append(
            {
                "record_id": record_id,
                "person_id": person_id,
                "match_probability": probability,
                "matched_by": matched_by,
                "matched_with": matched_with,
                "match_weight": match_weight,
                "waterfall": json.dumps(waterfall) if waterfall is not None else None,
            }
        )

    def share(self, from_platform: str, to_platform: str, since: str | None = None) -> None:
        self.tables["sharing"].append(
            {"from_platform": from_platform, "to_platform": to_platform, "since": since}
        )

    def write(self, folder: Path, fmt: str = "csv") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, model in TABLES.items():
            rows = self.tables[name]
            columns = list(model.model_fields)
            if fmt == "jsonl":
                with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
                    for row in rows:
                        handle.write(
                            json.dumps({k: v for k, v in row.items() if v is not None}) + "\n"
                        )
                continue
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, columns)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: _cell(v) for k, v in row.items()})
        return folder


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ROLES = ("emergency_contact", "reference", "address_book", "guarantor")
STATUSES = ("current", "repaid", "overdue", "defaulted")


def random_scenario(
    seed: int, people: int = 10, loans: int = 25, entries: int = 15, records: int = 0
) -> Scenario:
    """A seeded random graph with every kind of record (reassigned numbers, copies, sharing).

    ``records``: that many platform records besides, each named by the data (``known``),
    matched by linkage (a ``matches`` row, any evidence) or unresolved, with entries listing
    some of them (drawn after everything else, so the rest of the world is the same)."""
    import random
    from datetime import date, timedelta

    rng = random.Random(seed)
    day0 = date(2022, 1, 1)

    def day(offset: int) -> str:
        return (day0 + timedelta(days=offset)).isoformat()

    s = Scenario()
    ids = [s.person(f"p{i}") for i in range(people)]
    platforms = [s.platform(f"lender{i}") for i in range(4)] + [
        s.platform("broker", "data_broker"),
        s.platform("bank", "bank"),
    ]
    phones = []
    for i, person in enumerate(ids):
        if i % 4 == 3:  # a reassigned number: p(i-1) held it before p(i)
            number = s.phone(
                ids[i - 1], verified=rng.random() < 0.7, since="2015-01-01", until=day(180)
            )
            s.phone(person, number, verified=True, since=day(181))
        else:
            number = s.phone(person, verified=rng.random() < 0.8)
        phones.append(number)
    phones.append(s.phone(None))  # a number whose subscriber is unknown
    for i in range(loans):
        applied = rng.randint(0, 400)
        s.loan(
            f"L{i}",
            rng.choice(platforms[:4]),
            rng.choice(ids),
            day(applied),
            rng.choice(STATUSES),
            applicant_phone=rng.choice(phones),
            phone_verified=rng.random() < 0.5,
            status_at=day(applied + rng.randint(0, 90)) if rng.random() < 0.8 else None,
        )
        for phone in rng.sample(phones, rng.randint(0, 3)):
            s.link(f"L{i}", phone, rng.choice(ROLES))
    for lender in platforms[:4]:
        s.share(lender, "broker", day(rng.randint(-100, 300)))
    s.share("broker", "bank", day(rng.randint(0, 300)))
    if rng.random() < 0.5:
        s.share("lender0", "lender1")
    made: list[tuple[str, str]] = []
    for i in range(entries):
        listed = day(rng.randint(100, 700))
        kind = "phone" if rng.random() < 0.3 else "person"
        subject = rng.choice(phones) if kind == "phone" else rng.choice(ids)
        copied = None
        if made and rng.random() < 0.3:
            copied = rng.choice(made)[0]
        s.entry(f"E{i:02d}", rng.choice(platforms), subject, listed, kind=kind, copied_from=copied)
        made.append((f"E{i:02d}", listed))
    evidence = ("phone_only", "name_and_phone", "name_only", "id_number", "other")
    for i in range(records):
        record = s.record(f"R{i}", rng.choice(platforms), name=f"r{i}", phone=rng.choice(phones))
        how = rng.random()
        if how < 0.25:
            s.tables["records"][-1]["person_id"] = rng.choice(ids)
        elif how < 0.85:
            s.match(record, rng.choice(ids), rng.choice(evidence), round(rng.random(), 2))
        listed = day(rng.randint(100, 700))
        copied = rng.choice(made)[0] if made and rng.random() < 0.3 else None
        for n in range(rng.randint(0, 2)):
            entry_id = f"ER{i}{'abc'[n]}"
            s.entry(
                entry_id, rng.choice(platforms), record, listed, kind="record", copied_from=copied
            )
            made.append((entry_id, listed))
    return s


def chain_case(depth: int, role: str = "emergency_contact") -> Scenario:
    """p0's phone is linked (role) on p1's loan, p1's phone on p2's loan, ...; p_depth defaults."""
    s = Scenario()
    s.platform("lender")
    people = [s.person(f"p{i}") for i in range(depth + 1)]
    phones = [s.phone(p) for p in people]
    for i in range(1, depth + 1):
        status = "defaulted" if i == depth else "current"
        s.loan(f"L{i}", "lender", people[i], "2023-01-10", status, status_at="2023-02-01")
        s.link(f"L{i}", phones[i - 1], role)
    s.entry("E", "lender", "p0", "2023-04-01")
    return s


@dataclass
class SynthPopulation:
    """A population from ``spillover synth`` (spillover.synth.generate.generate), usable wherever a
    :class:`Scenario` is (the ``graph`` fixture only calls ``write``)."""

    people: int
    seed: int = 0

    def write(self, folder: Path, fmt: str = "csv") -> Path:
        from spillover.synth.generate import generate

        generate(self.people, self.seed, folder)
        return folder
