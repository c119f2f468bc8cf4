"""Build small data folders in tests, one row at a time, with sensible defaults."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spillover.rows import TABLES


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
        borrower_id: str,
        applied_at: str,
        status: str = "defaulted",
        *,
        applicant_phone: str | None = None,
        phone_verified: bool | None = None,
        status_at: str | None = None,
        amount: float | None = 1000,
    ) -> str:
        self.tables["loans"].append(
            {
                "loan_id": loan_id,
                "platform_id": platform_id,
                "borrower_id": borrower_id,
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
