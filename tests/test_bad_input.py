"""The bad-input corpus: one defect each in a copy of the Jiang case, refused cleanly everywhere.

Every case names the problem it must produce (file, line, field, words). The one
suite runs each case on both backends through the CLI (click's CliRunner):

- memory: ``audit --data DIR --out F`` and ``explain ENTRY --data DIR`` exit 1 with the
  message and leave neither F nor F.part; the fast and the exact loader refuse the
  folder with the same problems;
- neo4j: ``ingest DIR`` exits 1 with the message and the database stays empty.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from spillover.cli import cli
from spillover.data import fast as fastload
from spillover.data.exact import load_folder
from spillover.errors import DataError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.resident_id import check_character
from spillover.neo4j.ingest import graph_counts

BACKENDS = ["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)]
JIANG_ID = "330106198203154015"
#: Jiang's ID number in full-width digits, and typed in groups: never echoed either
WIDE_ID = "３３０１０６１９８２０３１５４０１５"
SPACED_ID = "330106 19820315 4015"
HYPHENATED_ID = "330106-1982-0315-4015"
DATA = str(jiang_case_path())


# --- building a folder with one defect --------------------------------------------------


def read_rows(folder: Path, table: str) -> list[list[str]]:
    with (folder / f"{table}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_rows(folder: Path, table: str, rows: list[list[str]]) -> None:
    with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def cell(table: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    """Set one CSV cell (``line`` counts the header as line 1)."""

    def build(folder: Path) -> None:
        rows = read_rows(folder, table)
        rows[line - 1][rows[0].index(column)] = value
        write_rows(folder, table, rows)

    return build


def raw(table: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Change the bytes of ``TABLE.csv``."""

    def build(folder: Path) -> None:
        path = folder / f"{table}.csv"
        path.write_bytes(change(path.read_bytes()))

    return build


def replace_line(line: int, text: bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[line - 1] = text
        return b"\n".join(lines)

    return change


def add_column(table: str, name: str, value: str = "x") -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        rows = read_rows(folder, table)
        write_rows(folder, table, [[*rows[0], name]] + [[*r, value] for r in rows[1:]])

    return build


def jsonl(
    table: str, line: int, text: str | None = None, **fields: object
) -> Callable[[Path], None]:
    """``TABLE.csv`` as ``TABLE.jsonl``; line ``line`` replaced by ``text`` or given ``fields``."""

    def build(folder: Path) -> None:
        rows = read_rows(folder, table)
        objects = [{k: v for k, v in zip(rows[0], r, strict=True) if v != ""} for r in rows[1:]]
        lines = [json.dumps(o, ensure_ascii=False) for o in objects]
        if text is not None:
            lines[line - 1] = text
        else:
            lines[line - 1] = json.dumps({**objects[line - 1], **fields}, ensure_ascii=False)
        (folder / f"{table}.csv").unlink()
        (folder / f"{table}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    return build


def replace_path(table: str, how: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        path = folder / f"{table}.csv"
        path.unlink()
        if how == "dir":
            path.mkdir()
            (path / "x.csv").write_text("a\n")
        else:
            path.symlink_to(folder / "nowhere.csv")

    return build


def remove_table(table: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        (folder / f"{table}.csv").unlink()

    return build


def both(*builds: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        for b in builds:
            b(folder)

    return build


def bad_phone_rows(n: int) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        rows = read_rows(folder, "phones")
        write_rows(folder, "phones", rows + [["12345", "", "", "", ""]] * n)

    return build


def id_with_birth(birth: str) -> str:
    first17 = f"330106{birth}401"
    return first17 + check_character(first17)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], None]
    file: str
    line: int
    field: str
    words: str
    #: the exact number of problems, when the case is about counting them
    total: int | None = None


def on_records(*builds: Callable[[Path], None]) -> Callable[[Path], None]:
    """The records version of the case (examples/jiang_records), then the defect."""

    def build(folder: Path) -> None:
        for table in ("records", "matches", "loans", "blacklist"):
            shutil.copyfile(jiang_records_path() / f"{table}.csv", folder / f"{table}.csv")
        for b in builds:
            b(folder)

    return build


def append_row(table: str, **values: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        rows = read_rows(folder, table)
        write_rows(folder, table, [*rows, [values.get(c, "") for c in rows[0]]])

    return build


WATERFALL_ITEM = '[{"field": "phone", "level": "exact", "agreed": true, "log2_bayes_factor": 8.3}]'

#: one case per kind of bad identity-linkage input (records, matches, loans and entries on records)
RECORD_CASES = [
    Case(
        "records-unknown-platform",
        on_records(cell("records", 2, "platform_id", "nowhere")),
        "records.csv",
        2,
        "platform_id",
        "unknown platform_id 'nowhere'",
    ),
    Case(
        "records-unknown-person",
        on_records(cell("records", 2, "person_id", "nobody")),
        "records.csv",
        2,
        "person_id",
        "unknown person_id 'nobody'",
    ),
    Case(
        "records-bad-id-number",
        on_records(cell("records", 4, "id_number", "123")),
        "records.csv",
        4,
        "id_number",
        "must have 18 characters",
    ),
    Case(
        "records-bad-phone",
        on_records(cell("records", 2, "phone", "12345")),
        "records.csv",
        2,
        "phone",
        "not a valid phone number",
    ),
    Case(
        "records-impossible-birth-date",
        on_records(cell("records", 4, "birth_date", "1982-02-30")),
        "records.csv",
        4,
        "birth_date",
        "impossible date",
    ),
    Case(
        "records-duplicate-id",
        on_records(cell("records", 3, "record_id", "QC-R-XU")),
        "records.csv",
        3,
        "record_id",
        "duplicate record_id 'QC-R-XU'",
    ),
    Case(
        "records-missing-platform",
        on_records(cell("records", 3, "platform_id", "")),
        "records.csv",
        3,
        "platform_id",
        "required value is missing",
    ),
    Case(
        "matches-unknown-record",
        on_records(cell("matches", 2, "record_id", "R-NONE")),
        "matches.csv",
        2,
        "record_id",
        "unknown record_id 'R-NONE'",
    ),
    Case(
        "matches-unknown-person",
        on_records(cell("matches", 2, "person_id", "nobody")),
        "matches.csv",
        2,
        "person_id",
        "unknown person_id 'nobody'",
    ),
    Case(
        "matches-probability-above-1",
        on_records(cell("matches", 2, "match_probability", "1.5")),
        "matches.csv",
        2,
        "match_probability",
        "lies in 0..1",
    ),
    Case(
        "matches-probability-negative",
        on_records(cell("matches", 2, "match_probability", "-0.1")),
        "matches.csv",
        2,
        "match_probability",
        "must not be negative",
    ),
    Case(
        "matches-unknown-key",
        on_records(cell("matches", 2, "matched_by", "guesswork")),
        "matches.csv",
        2,
        "matched_by",
        "Input should be 'known'",
    ),
    Case(
        "matches-weight-not-a-number",
        on_records(cell("matches", 2, "match_weight", "heavy")),
        "matches.csv",
        2,
        "match_weight",
        "expected a number",
    ),
    Case(
        "matches-unknown-matched-with",
        on_records(cell("matches", 2, "matched_with", "R-NONE")),
        "matches.csv",
        2,
        "matched_with",
        "unknown record_id 'R-NONE'",
    ),
    Case(
        "matches-itself",
        on_records(cell("matches", 2, "matched_with", "TY-R-XU")),
        "matches.csv",
        2,
        "matched_with",
        "cannot match itself",
    ),
    Case(
        "matches-record-twice",
        on_records(
            append_row(
                "matches",
                record_id="TY-R-XU",
                person_id="xu_yan",
                match_probability="0.9",
                matched_by="name_only",
            )
        ),
        "matches.csv",
        3,
        "record_id",
        "duplicate record_id 'TY-R-XU'",
    ),
    Case(
        "matches-another-person-than-the-record",
        on_records(
            append_row(
                "matches",
                record_id="QC-R-XU",
                person_id="jiang",
                match_probability="0.9",
                matched_by="phone_only",
            )
        ),
        "matches.csv",
        3,
        "person_id",
        "is person 'xu_yan' by records.person_id, not 'jiang'",
    ),
    Case(
        "matches-waterfall-not-json",
        on_records(cell("matches", 2, "waterfall", "[{")),
        "matches.csv",
        2,
        "waterfall",
        "not valid JSON",
    ),
    Case(
        "matches-waterfall-unknown-field",
        on_records(cell("matches", 2, "waterfall", WATERFALL_ITEM.replace('"phone"', '"email"'))),
        "matches.csv",
        2,
        "waterfall.0.field",
        "Input should be 'id_number'",
    ),
    Case(
        "matches-waterfall-weight-not-a-number",
        on_records(cell("matches", 2, "waterfall", WATERFALL_ITEM.replace("8.3", '"x"'))),
        "matches.csv",
        2,
        "waterfall.0.log2_bayes_factor",
        "expected a number",
    ),
    Case(
        "loans-no-borrower",
        on_records(cell("loans", 3, "borrower_record", "")),
        "loans.csv",
        3,
        "borrower_id",
        "required value is missing",
    ),
    Case(
        "loans-unknown-borrower-record",
        on_records(cell("loans", 3, "borrower_record", "R-NONE")),
        "loans.csv",
        3,
        "borrower_record",
        "unknown record_id 'R-NONE'",
    ),
    Case(
        "loans-record-of-another-platform",
        on_records(cell("loans", 4, "borrower_record", "QC-R-XU")),
        "loans.csv",
        4,
        "borrower_record",
        "held by 'quickcash', not by the loan's platform 'yidai'",
    ),
    Case(
        "loans-record-of-another-person",
        on_records(cell("loans", 3, "borrower_id", "jiang")),
        "loans.csv",
        3,
        "borrower_record",
        "resolves to person 'xu_yan', not to borrower_id 'jiang'",
    ),
    Case(
        "blacklist-unknown-record",
        on_records(cell("blacklist", 15, "subject", "R-NONE")),
        "blacklist.csv",
        15,
        "subject",
        "unknown record_id 'R-NONE'",
    ),
    Case(
        "blacklist-record-without-records",
        append_row(
            "blacklist",
            entry_id="E-R",
            platform_id="tianyan",
            subject_kind="record",
            subject="TY-R-XU",
            listed_at="2023-10-12",
        ),
        "blacklist.csv",
        18,
        "subject",
        "unknown record_id 'TY-R-XU'",
    ),
    Case(
        "matches-probability-not-a-number",
        on_records(cell("matches", 2, "match_probability", "high")),
        "matches.csv",
        2,
        "match_probability",
        "expected a number",
    ),
    Case(
        "matches-no-matched-by",
        on_records(cell("matches", 2, "matched_by", "")),
        "matches.csv",
        2,
        "matched_by",
        "Input should be 'known'",
    ),
    Case(
        "records-id-number-too-short",
        on_records(cell("records", 4, "id_number", "33010619820315401")),
        "records.csv",
        4,
        "id_number",
        "must have 18 characters, got 17",
    ),
]

# --- the corpus -------------------------------------------------------------------------


CASES = [
    # duplicate columns (were a pyarrow KeyError in audit, explain and ingest)
    Case(
        "dup-column-people", add_column("people", "name"), "people.csv", 1, "name", "appears twice"
    ),
    Case(
        "dup-column-loans",
        add_column("loans", "amount", "1"),
        "loans.csv",
        1,
        "amount",
        "appears twice",
    ),
    Case(
        "dup-column-padded",
        add_column("blacklist", " subject"),
        "blacklist.csv",
        1,
        "subject",
        "appears twice",
    ),
    Case(
        "dup-key-jsonl",
        jsonl("people", 2, '{"person_id": "xu_yan", "name": "a", "name": "b"}'),
        "people.jsonl",
        2,
        "name",
        "field appears twice",
    ),
    # dates: years 1900-2100, real days, ISO digits (year 0000 crashed explain and ingest)
    Case(
        "year-0000",
        cell("loans", 2, "applied_at", "0000-04-08"),
        "loans.csv",
        2,
        "applied_at",
        "year 0000 is out of range",
    ),
    Case(
        "year-9999",
        cell("blacklist", 3, "listed_at", "9999-01-01"),
        "blacklist.csv",
        3,
        "listed_at",
        "out of range",
    ),
    Case(
        "year-1899", cell("phones", 2, "since", "1899-12-31"), "phones.csv", 2, "since", "1900-2100"
    ),
    Case(
        "year-2101",
        cell("sharing", 2, "since", "2101-01-01"),
        "sharing.csv",
        2,
        "since",
        "out of range",
    ),
    Case(
        "impossible-day",
        cell("loans", 3, "status_at", "2023-02-30"),
        "loans.csv",
        3,
        "status_at",
        "impossible date",
    ),
    Case(
        "fullwidth-digits-date",
        cell("loans", 4, "applied_at", "２０２３-03-15"),
        "loans.csv",
        4,
        "applied_at",
        "expected an ISO date",
    ),
    Case(
        "year-0000-jsonl",
        jsonl("loans", 1, applied_at="0000-01-01"),
        "loans.jsonl",
        1,
        "applied_at",
        "out of range",
    ),
    Case(
        "id-birth-year-0000",
        cell("people", 2, "id_number", id_with_birth("00000315")),
        "people.csv",
        2,
        "id_number",
        "impossible birth date",
    ),
    # amounts: finite, non-negative (NaN/inf crashed explain on both backends)
    Case("amount-nan", cell("loans", 3, "amount", "NaN"), "loans.csv", 3, "amount", "finite"),
    Case("amount-inf", cell("loans", 3, "amount", "inf"), "loans.csv", 3, "amount", "finite"),
    Case(
        "amount-minus-inf",
        cell("loans", 3, "amount", "-Infinity"),
        "loans.csv",
        3,
        "amount",
        "finite",
    ),
    Case("amount-1e400", cell("loans", 3, "amount", "1e400"), "loans.csv", 3, "amount", "finite"),
    Case(
        "amount-400-digits",
        cell("loans", 5, "amount", "9" * 400),
        "loans.csv",
        5,
        "amount",
        "finite",
    ),
    Case(
        "amount-negative",
        cell("loans", 3, "amount", "-5"),
        "loans.csv",
        3,
        "amount",
        "must not be negative",
    ),
    Case(
        "amount-text",
        cell("loans", 3, "amount", "12abc"),
        "loans.csv",
        3,
        "amount",
        "expected a number",
    ),
    Case(
        "amount-nan-jsonl",
        jsonl(
            "loans",
            2,
            '{"loan_id": "XY-QC-1", "platform_id": "quickcash", "borrower_id": "xu_yan", "applied_at": "2023-03-02", "status": "defaulted", "amount": NaN}',
        ),
        "loans.jsonl",
        2,
        "(row)",
        "not valid JSON: NaN is not a JSON value",  # JSON has no NaN
    ),
    Case(
        "amount-infinity-jsonl",
        jsonl(
            "loans",
            2,
            '{"loan_id": "XY-QC-1", "platform_id": "quickcash", "borrower_id": "xu_yan", "applied_at": "2023-03-02", "status": "defaulted", "amount": Infinity}',
        ),
        "loans.jsonl",
        2,
        "(row)",
        "not valid JSON: Infinity is not a JSON value",  # JSON has no Infinity
    ),
    Case(
        "amount-1e400-jsonl",
        jsonl(
            "loans",
            2,
            '{"loan_id": "XY-QC-1", "platform_id": "quickcash", "borrower_id": "xu_yan", "applied_at": "2023-03-02", "status": "defaulted", "amount": 1e400}',
        ),
        "loans.jsonl",
        2,
        "amount",
        "finite",
    ),
    Case(
        "amount-negative-jsonl",
        jsonl("loans", 2, amount=-1),
        "loans.jsonl",
        2,
        "amount",
        "must not be negative",
    ),
    Case(
        "amount-bool-jsonl",
        jsonl("loans", 2, amount=True),
        "loans.jsonl",
        2,
        "amount",
        "expected a number",
    ),
    # phone numbers: no letters (keypad digits), valid numbers only
    Case(
        "phone-letters",
        cell("phones", 3, "phone", "1506800ABCD"),
        "phones.csv",
        3,
        "phone",
        "letters are not allowed",
    ),
    Case(
        "phone-12345",
        cell("phones", 3, "phone", "12345"),
        "phones.csv",
        3,
        "phone",
        "not a valid phone number in region CN",
    ),
    Case(
        "phone-unassigned-prefix",
        cell("loans", 2, "applicant_phone", "14012345678"),
        "loans.csv",
        2,
        "applicant_phone",
        "not a valid phone number",
    ),
    Case(
        "phone-letters-e164",
        cell("loan_links", 2, "phone", "+86 139 5711 234X"),
        "loan_links.csv",
        2,
        "phone",
        "letters are not allowed",
    ),
    Case(
        "phone-subject-invalid",
        cell("blacklist", 3, "subject", "12345"),
        "blacklist.csv",
        3,
        "subject",
        "not a valid phone number",
    ),
    Case(
        "phone-bad-country",
        cell("phones", 2, "phone", "+999 123"),
        "phones.csv",
        2,
        "phone",
        "not a phone number",
    ),
    Case(
        "phone-junk",
        cell("phones", 2, "phone", "13957112345!!"),
        "phones.csv",
        2,
        "phone",
        "'!' is not allowed",
    ),
    Case(
        "phone-letters-jsonl",
        jsonl("phones", 2, phone="1506800ABCD"),
        "phones.jsonl",
        2,
        "phone",
        "letters are not allowed",
    ),
    # encoding: the right line, the table's other problems kept, no follow-on errors
    Case(
        "bad-byte-line-3",
        both(
            cell("people", 4, "id_number", "330102199007083029"),
            raw("people", replace_line(3, b"xu_yan,Xu \xff Yan,,")),
        ),
        "people.csv",
        3,
        "(row)",
        "not UTF-8: byte 0xff",
        total=2,
    ),
    Case(
        "bad-byte-line-4",
        both(
            cell("people", 2, "id_number", "330106198203154016"),
            raw("people", replace_line(4, b"li_na,Li \xe9 Na,330102199007083028,Hangzhou")),
        ),
        "people.csv",
        4,
        "(row)",
        "not UTF-8",
        total=2,
    ),
    Case(
        "bad-byte-header",
        raw("platforms", lambda d: d.replace(b"platform_id", b"platform\xc3_id", 1)),
        "platforms.csv",
        1,
        "(header)",
        "not UTF-8",
    ),
    Case(
        "bad-byte-jsonl",
        jsonl("people", 2, '{"person_id": "xu_yan", "name": "Xu Yan"}'),
        "people.jsonl",
        2,
        "(row)",
        "not UTF-8",
    ),
    Case(
        "latin1-line",
        raw("platforms", replace_line(3, "yidai,Yidai Exprés,online_lender".encode("latin-1"))),
        "platforms.csv",
        3,
        "(row)",
        "byte 0xe9 at column 17",
    ),
    # problem counts: the true total, not the cap
    Case(
        "sixty-problems",
        bad_phone_rows(60),
        "phones.csv",
        5,
        "phone",
        "not a valid phone number",
        total=60,
    ),
    # JSONL lines that are no (good) JSON object
    Case(
        "jsonl-truncated",
        jsonl("people", 3, '{"person_id": "li_na", "na'),
        "people.jsonl",
        3,
        "(row)",
        "Unterminated string starting at column 24",
    ),
    Case(
        "jsonl-nested",
        jsonl("people", 3, "[" * 100_000),
        "people.jsonl",
        3,
        "(row)",
        "nested too deeply",
    ),
    Case(
        "jsonl-huge-int",
        jsonl("people", 2, '{"person_id": "xu_yan", "name": 1' + "0" * 5000 + "}"),
        "people.jsonl",
        2,
        "(row)",
        "too many digits",
    ),
    Case(
        "jsonl-lone-surrogate",
        jsonl("people", 2, '{"person_id": "xu_yan", "name": "Xu \\ud800"}'),
        "people.jsonl",
        2,
        "name",
        "lone surrogate",
    ),
    Case(
        "jsonl-nested-lone-surrogate",
        jsonl("people", 2, '{"person_id": "xu_yan", "name": "Xu", "by": {"a": ["\\udc00"]}}'),
        "people.jsonl",
        2,
        "by",
        "lone surrogate",
    ),
    Case(
        "jsonl-boolean-minus-zero",
        jsonl(
            "phones",
            1,
            '{"phone": "13957112345", "owner_id": "jiang", "verified": -0, "since": "2012-03-01"}',
        ),
        "phones.jsonl",
        1,
        "verified",
        "got '-0'",
    ),
    Case(
        "jsonl-not-object",
        jsonl("people", 2, "[1, 2]"),
        "people.jsonl",
        2,
        "(row)",
        "must be a JSON object",
    ),
    # table files that are no file
    Case(
        "people-is-a-dir",
        replace_path("people", "dir"),
        "people.csv",
        0,
        "(table)",
        "is a directory, not a file",
    ),
    Case(
        "links-is-a-dir",
        replace_path("loan_links", "dir"),
        "loan_links.csv",
        0,
        "(table)",
        "is a directory",
    ),
    Case(
        "phones-broken-link",
        replace_path("phones", "link"),
        "phones.csv",
        0,
        "(table)",
        "broken symbolic link",
    ),
    # rows and headers
    Case(
        "too-few-cells",
        raw("sharing", replace_line(3, b"yidai,tianyan")),
        "sharing.csv",
        3,
        "(row)",
        "expected 3 cells, found 2",
    ),
    Case(
        "unterminated-quote",
        raw("sharing", lambda d: d.rstrip(b"\n") + b'\n"tianyan,zhemin_bank\n'),
        "sharing.csv",
        13,
        "(row)",
        "expected 3 cells, found 1",
    ),
    Case(
        "empty-file",
        raw("platforms", lambda d: b""),
        "platforms.csv",
        1,
        "(header)",
        "file is empty",
    ),
    Case(
        "header-only-missing-column",
        raw("sharing", lambda d: b"from_platform,since\n"),
        "sharing.csv",
        1,
        "to_platform",
        "required column is missing",
    ),
    Case(
        "copy-loop",
        cell("blacklist", 3, "copied_from", "E-QT-J"),
        "blacklist.csv",
        3,
        "copied_from",
        "loops back to 'E-QC-PH'",
    ),
    # a table refused for its header: references to its rows are not reported as unknown
    Case(
        "header-twice-refs-not-unknown",
        add_column("people", "name"),
        "people.csv",
        1,
        "name",
        "column 'name' appears twice in the header (columns 2 and 5)",
        total=1,
    ),
    Case(
        "header-missing-refs-not-unknown",
        raw("platforms", lambda d: d.replace(b"platform_id,name,kind", b"platform_id,kind", 1)),
        "platforms.csv",
        1,
        "name",
        "required column is missing from the header",
        total=1,
    ),
    # a required table missing, or a table's file no file: references to its rows are not
    # reported as unknown either (the loan_links naming loans, the loans naming people)
    Case(
        "missing-table-refs-not-unknown",
        remove_table("loans"),
        "loans.csv",
        0,
        "(table)",
        "required table 'loans' is missing",
        total=1,
    ),
    Case(
        "dir-table-refs-not-unknown",
        replace_path("people", "dir"),
        "people.csv",
        0,
        "(table)",
        "is a directory, not a file",
        total=1,
    ),
    # an ID number in a wrong column is never echoed in full
    Case(
        "id-in-phone-column",
        cell("phones", 2, "phone", JIANG_ID),
        "phones.csv",
        2,
        "phone",
        "'330*************15'",
    ),
    # ... nor when it is written into a longer value: at its start, middle or end
    Case(
        "id-at-end-of-subject",
        cell("blacklist", 2, "subject", "x" + JIANG_ID),
        "blacklist.csv",
        2,
        "subject",
        "unknown person_id 'x330*************15'",
    ),
    Case(
        "id-at-start-of-amount",
        cell("loans", 3, "amount", JIANG_ID + "x"),
        "loans.csv",
        3,
        "amount",
        "got '330*************15x'",
    ),
    Case(
        "id-in-middle-of-borrower",
        cell("loans", 2, "borrower_id", "P" + JIANG_ID + "b"),
        "loans.csv",
        2,
        "borrower_id",
        "unknown person_id 'P330*************15b'",
    ),
    Case(
        "id-ending-in-x-in-owner",
        cell("phones", 2, "owner_id", "Q33010619820315401X7"),
        "phones.csv",
        2,
        "owner_id",
        "unknown person_id 'Q330*************1X7'",
    ),
    Case(
        "id-in-copied-from",
        cell("blacklist", 3, "copied_from", "E" + JIANG_ID + "-1"),
        "blacklist.csv",
        3,
        "copied_from",
        "'E330*************15-1'",
    ),
    Case(
        "id-in-jsonl-platform",
        jsonl("loans", 2, platform_id="pl" + JIANG_ID),
        "loans.jsonl",
        2,
        "platform_id",
        "unknown platform_id 'pl330*************15'",
    ),
    # ... nor when it is typed in full-width digits, or in groups
    Case(
        "wide-id-in-subject",
        cell("blacklist", 2, "subject", "x" + WIDE_ID),
        "blacklist.csv",
        2,
        "subject",
        "unknown person_id 'x３３０*************１５'",
    ),
    Case(
        "spaced-id-in-phone-column",
        cell("phones", 2, "phone", SPACED_ID),
        "phones.csv",
        2,
        "phone",
        "not a phone number: '330*** ******** **15'",
    ),
    Case(
        "hyphenated-id-in-borrower",
        cell("loans", 2, "borrower_id", HYPHENATED_ID),
        "loans.csv",
        2,
        "borrower_id",
        "unknown person_id '330***-****-****-**15'",
    ),
    *RECORD_CASES,
]


def _bad_byte_jsonl_fix(folder: Path) -> None:
    """bad-byte-jsonl: put the bad byte into the JSONL line after it was written."""
    path = folder / "people.jsonl"
    path.write_bytes(path.read_bytes().replace(b"Xu Yan", b"Xu \xff Yan", 1))


_AFTER = {"bad-byte-jsonl": _bad_byte_jsonl_fix}


def make_folder(case: Case, where: Path) -> Path:
    folder = where / "data"
    shutil.copytree(jiang_case_path(), folder)
    case.build(folder)
    if case.name in _AFTER:
        _AFTER[case.name](folder)
    return folder


def assert_refused(output: str, folder: Path, case: Case) -> None:
    assert "Traceback" not in output
    head = f"{folder / case.file}:{case.line}: {case.field}: "
    lines = [line for line in output.splitlines() if head in line]
    assert lines, f"no line starting {head!r} in:\n{output}"
    assert any(case.words in line for line in lines), f"{case.words!r} not in {lines}"
    for full in (JIANG_ID, WIDE_ID, SPACED_ID, HYPHENATED_ID):
        assert full not in output
    if case.total is not None:
        assert f"the data was refused ({case.total} problem(s)" in output, output


@pytest.mark.parametrize("backend_kind", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_cleanly(
    case: Case, backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    folder = make_folder(case, tmp_path)
    runner = CliRunner()
    if backend_kind == "memory":
        out = tmp_path / "audit.csv"
        result = runner.invoke(cli, ["audit", "--data", str(folder), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert_refused(result.output, folder, case)
        assert not out.exists() and not out.with_name("audit.csv.part").exists()
        result = runner.invoke(cli, ["explain", "E-QT-J", "--data", str(folder)])
        assert result.exit_code == 1, result.output
        assert_refused(result.output, folder, case)
        # the fast and the exact loader refuse it with the same problems
        with pytest.raises(DataError) as fast:
            fastload.read_dataset(folder)
        with pytest.raises(DataError) as exact:
            load_folder(folder)
        assert str(fast.value) == str(exact.value)
        assert fast.value.total == exact.value.total
    else:
        service = request.getfixturevalue("neo4j_env")
        result = runner.invoke(cli, ["ingest", str(folder)])
        assert result.exit_code == 1, result.output
        assert_refused(result.output, folder, case)
        assert not any(graph_counts(service.driver, service.settings.database).values())


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_every_case_starts_from_a_folder_that_loads(tmp_path: Path) -> None:
    """The defect, not the base folder, is what is refused."""
    assert load_folder(jiang_case_path()).counts()["people"] == 3


def test_past_the_cap_the_message_says_how_many_are_not_shown(tmp_path: Path) -> None:
    folder = make_folder(Case("", bad_phone_rows(60), "", 0, "", ""), tmp_path)
    result = CliRunner().invoke(
        cli, ["audit", "--data", str(folder), "--out", str(tmp_path / "a.csv")]
    )
    assert "refused (60 problem(s); only the first 50 are shown)" in result.output
    assert "10 more problem(s) not shown" in result.output
    assert result.output.count("phones.csv:") == 50


# --- options and messages of the CLI ------------------------------------------------------


def test_bad_region_is_an_option_error_not_the_datas(tmp_path: Path) -> None:
    data = str(jiang_case_path())
    runner = CliRunner()
    for args in (
        ["audit", "--data", data, "--out", str(tmp_path / "a.csv"), "--region", "XX"],
        ["explain", "E-QT-J", "--data", data, "--region", "XX"],
        ["ingest", data, "--region", "XX", "--neo4j-uri", "bolt://127.0.0.1:1"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output  # a wrong value, not a malformed command
        assert "--region" in result.output and "unknown region 'XX'" in result.output
        assert "refused" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a.csv").exists()
    result = runner.invoke(cli, ["explain", "E-QT-J", "--data", data, "--region", "cn"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("2024-02-30", "2024-02-30 is an impossible date"),
        ("2023-13-01", "2023-13-01 is an impossible date"),
        ("0000-01-01", "year must lie in 1900-2100"),
        ("24-02-01", "is not a date written YYYY-MM-DD"),
    ],
)
def test_check_at_names_the_problem_of_the_date(at: str, words: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["check", "--platform", "tianyan", "--subject", "jiang", "--at", at, "--data", DATA],
    )
    assert result.exit_code == 1, result.output
    assert "--at" in result.output and words in result.output
    assert "does not match the format" not in result.output


def test_check_hints_at_subject_kind_phone() -> None:
    data = str(jiang_case_path())
    result = CliRunner().invoke(
        cli, ["check", "--platform", "tianyan", "--subject", "13957112345", "--data", data]
    )
    assert result.exit_code == 1
    assert "looks like a phone number: did you mean --subject-kind phone?" in result.output
    result = CliRunner().invoke(
        cli, ["check", "--platform", "tianyan", "--subject", "nobody", "--data", data]
    )
    assert result.exit_code == 1 and "unknown person 'nobody'" in result.output
    assert "did you mean" not in result.output


@pytest.mark.parametrize(
    ("subject", "masked"),
    [
        (JIANG_ID, "'330*************15'"),
        (WIDE_ID, "'３３０*************１５'"),
        (SPACED_ID, "'330*** ******** **15'"),
        (HYPHENATED_ID, "'330***-****-****-**15'"),
        ("330106 - 198203 - 154015", "'330*** - ****** - ****15'"),
    ],
    ids=["plain", "wide", "spaced", "hyphenated", "spaced-hyphens"],
)
def test_messages_never_print_a_full_id_number(subject: str, masked: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["check", "--platform", "tianyan", "--subject", subject, "--data", DATA],
    )
    assert result.exit_code == 1
    assert subject not in result.output and f"unknown person {masked}" in result.output


def test_copy_chain_check_is_linear(tmp_path: Path) -> None:
    """A 20,000-entry copy chain ending in a loop: found in seconds (was 59 s)."""
    folder = tmp_path / "chain"
    shutil.copytree(jiang_case_path(), folder)
    n = 20_000
    rows = read_rows(folder, "blacklist")
    rows += [
        ["C0", "tianyan", "person", "jiang", "2024-01-01", "", f"C{n - 1}"],
        *[
            [f"C{i}", "tianyan", "person", "jiang", "2024-01-01", "", f"C{i - 1}"]
            for i in range(1, n)
        ],
    ]
    write_rows(folder, "blacklist", rows)
    started = time.perf_counter()
    with pytest.raises(DataError) as exact:
        load_folder(folder)
    with pytest.raises(DataError) as fast:
        fastload.read_columns(folder)
    assert time.perf_counter() - started < 30
    assert exact.value.total == n and str(fast.value) == str(exact.value)
    assert "copy chain of 'C0' loops back to 'C0'" in str(exact.value)
    rows[-n][-1] = ""  # no loop: a 20,000-long chain is fine, and quick for both loaders
    write_rows(folder, "blacklist", rows)
    started = time.perf_counter()
    assert len(fastload.read_dataset(folder).entries) == len(load_folder(folder).entries)
    assert time.perf_counter() - started < 30


def test_no_table_file_is_opened_as_missing_when_it_is_a_directory(tmp_path: Path) -> None:
    folder = make_folder(Case("", replace_path("people", "dir"), "", 0, "", ""), tmp_path)
    with pytest.raises(DataError) as info:
        load_folder(folder)
    assert "missing" not in str(info.value)
    assert os.path.isdir(folder / "people.csv")


@pytest.mark.parametrize("backend_kind", BACKENDS)
def test_edge_folders_that_load_also_audit_and_explain(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Found by fuzzing: a valid folder with no phone periods at all crashed the audit kernel."""
    folder = tmp_path / "data"
    shutil.copytree(jiang_case_path(), folder)
    (folder / "phones.csv").write_text("phone\n")
    runner = CliRunner()
    out = tmp_path / "audit.csv"
    where = ["--data", str(folder)]
    if backend_kind == "neo4j":
        request.getfixturevalue("neo4j_env")
        result = runner.invoke(cli, ["ingest", str(folder)])
        assert result.exit_code == 0, result.output
        where = []
    result = runner.invoke(cli, ["audit", *where, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 16 rows" in result.output
    result = runner.invoke(cli, ["explain", "E-QT-J", *where])
    assert result.exit_code == 0, result.output


def test_an_audit_file_that_is_a_directory_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    result = CliRunner().invoke(cli, ["audit", "--data", DATA, "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 1 and "is a directory" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv.part").exists()


@pytest.mark.parametrize("space", ["\u00a0", "\u3000"])
def test_an_id_number_grouped_by_a_space_the_message_escapes_is_masked(space: str) -> None:
    """The CLI quotes an unknown id with repr(), which escapes a no-break and an
    ideographic space (``\\xa0``, ``\\u3000``): the ID number is masked all the same."""
    grouped = space.join(("330106", "19820315", "4015"))
    result = CliRunner().invoke(cli, ["explain", grouped, "--data", DATA])
    assert result.exit_code == 1
    assert "19820315" not in result.output
    assert "330***" in result.output and "**15" in result.output


@pytest.mark.parametrize("control", ["\x07", "\x00", "\u2028"])
def test_an_id_number_after_a_character_the_message_escapes_is_masked(
    control: str, tmp_path: Path
) -> None:
    """A message quotes an unknown id with repr(), which writes a control character as
    ``\\x07``: its hex digits stand right before the ID number's, yet the number is masked
    (it was shown in full, read as a run of 20 digits), on the command line and in a
    problem of a data folder."""
    result = CliRunner().invoke(cli, ["explain", f"E{control}{JIANG_ID}", "--data", DATA])
    assert result.exit_code == 1
    assert "0106198203154" not in result.output and "330*************15" in result.output
    folder = tmp_path / "data"
    shutil.copytree(jiang_case_path(), folder)
    rows = read_rows(folder, "loans")
    rows[1][2] = f"p{control}{JIANG_ID}"
    write_rows(folder, "loans", rows)
    result = CliRunner().invoke(
        cli, ["audit", "--data", str(folder), "--out", str(tmp_path / "a.csv")]
    )
    assert result.exit_code == 1 and "borrower_id: unknown person_id" in result.output
    assert "0106198203154" not in result.output and "330*************15" in result.output


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["check", "--platform", "quickcash", "--subject", "x", "--at", JIANG_ID], 1),
        (["check", "--platform", "quickcash", "--subject", "x", "--at", HYPHENATED_ID], 1),
        (["check", "--platform", "quickcash", "--subject", "x", "--subject-kind", JIANG_ID], 2),
        (["audit", "--out", "x.csv", "--format", JIANG_ID], 2),
        ([f"--{JIANG_ID}"], 2),
        ([JIANG_ID], 2),
    ],
)
def test_click_command_line_errors_echo_no_id_number(args: list[str], exit_code: int) -> None:
    """click's own errors (a value its type refuses, an unknown option or command) quote
    the value given: an ID number in it is masked, the exit code is click's."""
    result = CliRunner().invoke(cli, [*args, "--data", DATA] if len(args) > 1 else args)
    assert result.exit_code == exit_code
    assert "19820315" not in result.output
    assert "330" in result.output and "15" in result.output


def test_a_problem_in_a_data_folder_named_by_an_id_number_masks_its_path(tmp_path: Path) -> None:
    """A problem's line names its file by the path given: the folder's name, an ID
    number here, is masked like the message (as an option's message masks it)."""
    folder = tmp_path / JIANG_ID
    shutil.copytree(DATA, folder)
    cell("phones", 2, "phone", "bad-phone")(folder)
    result = CliRunner().invoke(cli, ["explain", "E-QT-J", "--data", str(folder)])
    assert result.exit_code == 1
    assert "not a phone number" in result.output
    assert JIANG_ID not in result.output and "330*************15" in result.output
