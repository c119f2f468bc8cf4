"""Pseudonymized export (docs/privacy.md): nothing personal leaks, every answer stays the same."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from click.testing import CliRunner

from spillover import open_folder
from spillover.audit.batch import audit, audit_folder
from spillover.backends import GraphBackend, MemoryBackend
from spillover.cli import cli
from spillover.data.exact import load_folder, read_valid_table
from spillover.data.export import (
    LEVEL_LABELS,
    MIN_KEY_BITS,
    MIN_KEY_BYTES,
    Pseudonymizer,
    _injective,
    check_options,
    export_pseudonymized,
    generate_key,
    key_entropy_bits,
    read_key,
    with_unnamed_loans,
    without_unnamed_loans,
)
from spillover.data.fast import read_dataset
from spillover.errors import DataError, SpilloverError, UsageProblem
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.model import Dataset
from spillover.facts.resident_id import validate_resident_id
from spillover.neo4j.ingest import ingest_dataset
from spillover.neo4j.store import Neo4jBackend
from spillover.synth.generate import generate

#: fixed random keys (a counting sequence such as bytes(range(32)) is refused as too weak)
KEY = bytes.fromhex("b2c08485eb1ea0f899a596494b894718a962729c7b31ab374bae72157b5c9592")
OTHER_KEY = bytes.fromhex("fdfbacb4d2b2847e7ca802d1e98495c0f4747182b3230112881aba1ca19cd7c6")
JIANG = jiang_case_path()


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    generate(2000, 11, out)
    return out


@pytest.fixture(params=["jiang", "synth"])
def source(request: pytest.FixtureRequest, synth_folder: Path) -> Path:
    return JIANG if request.param == "jiang" else synth_folder


def _export(source: Path, out: Path, key: bytes = KEY) -> Path:
    export_pseudonymized(source, out, key=key)
    return out


def _all_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _phone_forms(e164: str) -> set[str]:
    """How a number may be written. Its national digits are a substring of the E.164
    and all-digit forms; the spaced and dashed forms are checked on their own."""
    number = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {str(number.national_number), national, national.replace(" ", "-")}


def _leaks(values: set[str], blob: bytes) -> list[str]:
    """The values that occur anywhere in ``blob`` (as bytes, inside cells too)."""
    by_length: dict[int, set[bytes]] = {}
    for value in values:
        encoded = value.encode("utf-8")
        by_length.setdefault(len(encoded), set()).add(encoded)
    found: list[str] = []
    for length, group in by_length.items():
        if len(group) < 500:
            hits = {v for v in group if v in blob}
        else:  # many values of one length: compare with every window of the blob
            windows = {blob[i : i + length] for i in range(len(blob) - length + 1)}
            hits = group & windows
        found.extend(v.decode("utf-8") for v in hits)
    return sorted(found)


def _personal_values(data: Dataset) -> dict[str, set[str]]:
    phones = set(data.phone_periods) | {x.phone for x in data.links}
    phones |= {x.applicant_phone for x in data.loans.values() if x.applicant_phone}
    return {
        "name": {p.name for p in data.people.values()},
        "id_number": {p.id_number for p in data.people.values() if p.id_number},
        "phone": {form for e164 in phones for form in _phone_forms(e164)},
        "stated_reason": {e.stated_reason for e in data.entries.values() if e.stated_reason},
    }


def test_no_raw_name_phone_or_id_number_anywhere(source: Path, tmp_path: Path) -> None:
    original = load_folder(source)
    exported = _all_bytes(_export(source, tmp_path / "out"))
    values = _personal_values(original)
    assert values["name"] and values["phone"]
    if source == JIANG:
        assert len(values["id_number"]) == 2
        assert {"13957112345", "139 5711 2345", "139-5711-2345"} <= values["phone"]
    else:
        assert len(values["id_number"]) > 100
    for kind, raw in values.items():
        assert _leaks(raw, exported) == [], kind
    # the ids that may embed names are gone too, cell by cell
    cells = set(re.split(rb"[,\n]", exported))
    for ident in [*original.people, *original.loans, *original.entries]:
        assert ident.encode() not in cells
    # and the key is nowhere
    assert KEY not in exported and KEY.hex().encode() not in exported


def test_export_is_valid_for_both_loaders_and_well_formed(source: Path, tmp_path: Path) -> None:
    out = _export(source, tmp_path / "out")
    exact, fast = load_folder(out), read_dataset(out)
    assert exact.counts() == fast.counts() == load_folder(source).counts()
    for number in exact.phone_periods:
        assert phonenumbers.is_valid_number(phonenumbers.parse(number, None)), number
    for person in exact.people.values():
        assert re.fullmatch(r"pid-[0-9a-f]{16}", person.person_id)
        assert re.fullmatch(r"P-[0-9a-f]{12}", person.name)
        assert person.city is None
        if person.id_number:
            assert validate_resident_id(person.id_number) == person.id_number
            assert person.id_number.startswith("99")
    assert all(e.stated_reason is None for e in exact.entries.values())
    assert out.stat().st_mode & 0o777 == 0o700  # readable by its owner only


def _audit(
    backend_kind: str, folder: Path, out: Path, request: pytest.FixtureRequest
) -> list[dict]:
    data = load_folder(folder)
    backend: GraphBackend
    if backend_kind == "memory":
        backend = MemoryBackend(data)
    elif backend_kind == "arrays":
        backend = open_folder(folder)
    else:
        assert backend_kind == "neo4j"
        service = request.getfixturevalue("neo4j_db")
        service.clear()
        ingest_dataset(data, service.driver, service.settings.database)
        backend = Neo4jBackend(service.driver, service.settings.database)
    audit(backend, out)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_audit_of_export_equals_audit_of_original(
    source: Path, backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = _export(source, tmp_path / "out")
    before = _audit(backend_kind, source, tmp_path / "before.jsonl", request)
    after = _audit(backend_kind, out, tmp_path / "after.jsonl", request)
    original = load_folder(source)
    p = Pseudonymizer(KEY)
    entry = p.entry_ids(original.entries)
    assert len(before) == len(after) == len(original.entries)
    by_id = {row["entry_id"]: row for row in after}
    for row in before:
        twin = by_id[entry[row["entry_id"]]]
        for field in ("contamination", "verdict", "responsibility", "listed_at", "platform_id"):
            assert twin[field] == row[field], (row["entry_id"], field)
    scores = Counter((r["contamination"], r["verdict"]) for r in before)
    assert scores == Counter((r["contamination"], r["verdict"]) for r in after)
    assert {r["verdict"] for r in before} >= {"own_conduct", "spillover"}


def test_audit_folder_of_export_equals_original_jiang(tmp_path: Path) -> None:
    out = _export(JIANG, tmp_path / "out")
    rows = []
    for folder in (JIANG, out):
        summary = audit_folder(folder, tmp_path / f"{folder.name}.jsonl")
        rows.append(summary.verdicts)
    assert rows[0] == rows[1]


def test_same_key_same_bytes_other_key_other_pseudonyms(source: Path, tmp_path: Path) -> None:
    first = _export(source, tmp_path / "a")
    second = _export(source, tmp_path / "b")
    other = _export(source, tmp_path / "c", OTHER_KEY)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    a, c = load_folder(first), load_folder(other)
    assert not set(a.people) & set(c.people)
    assert not set(a.phone_periods) & set(c.phone_periods)
    assert not {p.name for p in a.people.values()} & {p.name for p in c.people.values()}
    assert not set(a.entries) & set(c.entries)


def test_phone_pseudonyms_are_injective_and_valid_over_many_numbers() -> None:
    numbers = [f"+86{prefix}{i:08d}" for prefix in (139, 150, 186) for i in range(0, 10**8, 2999)]
    numbers += [f"+8657{i:08d}" for i in range(0, 10**8, 9973)]  # landlines too
    numbers += ["+14155550100", "+442071838750"]
    mapping = Pseudonymizer(KEY).phones(numbers)
    assert len(mapping) == len(set(numbers)) > 100_000
    assert len(set(mapping.values())) == len(mapping)
    assert not set(mapping.values()) & set(numbers)
    assert all(re.fullmatch(r"\+861[3589]\d{9}", v) for v in mapping.values())
    for value in list(mapping.values())[::500]:
        assert phonenumbers.is_valid_number(phonenumbers.parse(value, None)), value
    # deterministic, and independent of the order the numbers come in
    assert Pseudonymizer(KEY).phones(reversed(numbers)) == mapping


def test_clashing_candidates_are_resolved_deterministically() -> None:
    p = Pseudonymizer(KEY)
    values = [f"v{i}" for i in range(40)]

    def tiny(digest: bytes) -> str:  # 50 slots for 40 values: clashes are certain
        return f"s{digest[0] % 50}"

    first = _injective(p, "test", values, tiny)
    assert len(set(first.values())) == 40
    assert _injective(p, "test", reversed(values), tiny) == first
    # a candidate equal to a raw value of the same kind is never handed out
    raw = [f"s{i}" for i in range(25)]
    mapping = _injective(p, "test", raw, tiny)
    assert not set(mapping.values()) & set(raw)
    assert len(set(mapping.values())) == 25


def test_id_number_pseudonyms_are_valid_and_injective() -> None:
    ids = [validate_resident_id(x) for x in ("330106198203154015", "330102199007083028")]
    mapping = Pseudonymizer(KEY).id_numbers(ids)
    assert len(set(mapping.values())) == 2
    for raw, pseudo in mapping.items():
        assert validate_resident_id(pseudo) == pseudo != raw
        assert pseudo[:2] == "99" and raw[6:14] != pseudo[6:14]


@pytest.mark.parametrize("content", [b"", b"s3cr3t!", b"k" * (MIN_KEY_BYTES - 1)])
def test_short_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "k"
    key.write_bytes(content)
    with pytest.raises(SpilloverError, match="at least 32") as info:
        read_key(key)
    assert "head -c 32 /dev/urandom" in str(info.value)
    if content:
        assert content.decode() not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpilloverError, match="does not exist"):
        export_pseudonymized(JIANG, tmp_path / "out", key_file=tmp_path / "nope")
    assert list(tmp_path.iterdir()) == []


def test_bad_data_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for table in ("people", "platforms", "phones", "loans"):
        (bad / f"{table}.csv").write_bytes((JIANG / f"{table}.csv").read_bytes())
    with (bad / "loans.csv").open("a", encoding="utf-8") as handle:
        handle.write("L-X,nowhere,jiang,2024-01-01,defaulted,,,,\n")
    with pytest.raises(DataError):
        export_pseudonymized(bad, tmp_path / "out", key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_output_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(SpilloverError, match="new or empty"):
        export_pseudonymized(JIANG, out, key=KEY)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    (tmp_path / ".empty.stale.part").mkdir()  # a killed run's leftover does not matter
    export_pseudonymized(JIANG, tmp_path / "empty", key=KEY)
    assert (tmp_path / "empty" / "people.csv").is_file()


def test_cli_export_then_every_command_runs_on_it(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(OTHER_KEY)
    out = tmp_path / "out"
    run = CliRunner().invoke
    result = run(
        cli,
        [
            "export",
            "--data",
            str(JIANG),
            "--out",
            str(out),
            "--pseudonymize",
            "--key-file",
            str(key),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "16 blacklist" in result.output
    assert OTHER_KEY.hex() not in result.output
    data = load_folder(out)
    entry = Pseudonymizer(OTHER_KEY).entry_ids(load_folder(JIANG).entries)["E-WL-J"]
    result = run(cli, ["explain", entry, "--data", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    assert e["verdict"] == "spillover" and e["contamination"] == 0.95
    phone = (
        e["subject"]["id"] if e["subject"]["kind"] == "phone" else next(iter(data.phone_periods))
    )
    result = run(
        cli,
        ["check", "--platform", "quickcash", "--subject", phone, "--subject-kind", "phone",
         "--at", "2024-01-01", "--data", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"new_key_file": "k", "data": "d"}, "--generate-key only makes a key"),
        ({"new_key_file": "k", "pseudonymize": True}, "--generate-key only makes a key"),
        ({"data": "d", "out": "o"}, "pass --pseudonymize"),
        ({"data": "d", "out": "o", "pseudonymize": True}, "needs --key-file"),
    ],
)
def test_the_library_refuses_export_options_that_do_not_go_together(
    given: dict[str, object], message: str
) -> None:
    options: dict[str, object] = {
        "data": None, "out": None, "pseudonymize": False, "key_file": None, "new_key_file": None
    }  # fmt: skip
    with pytest.raises(UsageProblem, match=message):
        check_options(**{**options, **given})  # type: ignore[arg-type]
    ok = {**options, "data": "d", "out": "o", "pseudonymize": True, "key_file": "k"}
    check_options(**ok)  # type: ignore[arg-type]
    check_options(**{**options, "new_key_file": "k"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass --pseudonymize"),
        (["--pseudonymize"], "needs --key-file"),
    ],
)
def test_cli_export_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli, ["export", "--data", str(JIANG), "--out", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o").exists()


def test_cli_export_refuses_empty_key_file(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"")
    result = CliRunner().invoke(
        cli,
        ["export", "--data", str(JIANG), "--out", str(tmp_path / "o"), "--pseudonymize",
         "--key-file", str(key)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "is empty" in result.output and "head -c 32 /dev/urandom" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["audit", "export", "explain"])
def test_refused_id_numbers_are_never_printed_in_full(tmp_path: Path, command: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for table in JIANG.glob("*.csv"):
        (data / table.name).write_bytes(table.read_bytes())
    people = data / "people.csv"
    wrong_check, impossible_day = "330106198203154016", "330102199002303028"
    text = people.read_text(encoding="utf-8")
    text = text.replace("330106198203154015", wrong_check)
    people.write_text(text.replace("330102199007083028", impossible_day), encoding="utf-8")
    key = tmp_path / "k"
    key.write_bytes(KEY)
    args = {
        "audit": ["audit", "--data", str(data), "--out", str(tmp_path / "a.csv")],
        "export": ["export", "--data", str(data), "--out", str(tmp_path / "o"),
                   "--pseudonymize", "--key-file", str(key)],
        "explain": ["explain", "E-QT-J", "--data", str(data)],
    }[command]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "people.csv:2: id_number" in result.output
    assert "people.csv:4: id_number" in result.output
    assert wrong_check not in result.output and impossible_day not in result.output
    assert wrong_check[:17] not in result.output and impossible_day[:17] not in result.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_data_folders_are_written_exactly_not_neutralized(tmp_path: Path, fmt: str) -> None:
    """A data folder is machine input: a platform id like ``=1+1`` must come back as it was."""
    from test_outfiles import _evil_scenario

    source = _evil_scenario().write(tmp_path / "data", fmt)
    out = _export(source, tmp_path / "out")
    exported = load_folder(out)
    assert set(exported.platforms) == {"+cmd", "=1+1"}
    assert {s.to_platform for s in exported.sharing} == {"=1+1"}
    before = audit_folder(source, tmp_path / "a.jsonl")
    after = audit_folder(out, tmp_path / "b.jsonl")
    assert before.verdicts == after.verdicts == {"spillover": 2}
    assert b"HYPERLINK" not in _all_bytes(out)  # the person id and name are pseudonymized


# --- free text of the matches (issue 19, item 10) ------------------------------------------


def _records_with_levels(folder: Path, levels: dict[str, str]) -> Path:
    """The Jiang records case with some waterfall levels rewritten (a hand-made matches table)."""
    shutil.copytree(jiang_records_path(), folder)
    path = folder / "matches.csv"
    text = path.read_text(encoding="utf-8")
    for old, new in levels.items():
        text = text.replace(f'""level"": ""{old}""', f'""level"": ""{new}""', 1)
    path.write_text(text, encoding="utf-8")
    return folder


def test_free_text_in_waterfall_levels_does_not_survive(tmp_path: Path) -> None:
    name, phone = "Xu Yan 徐燕", "13957112345 call"
    source = _records_with_levels(tmp_path / "src", {"different": name, "exact": phone})
    original = load_folder(source)
    written = [w.level for m in original.matches.values() for w in m.waterfall]
    assert name in written and phone in written  # the loader keeps them: free text
    out = _export(source, tmp_path / "out")
    blob = _all_bytes(out)
    for text in (name, phone, "Xu Yan", "徐燕", "13957112345"):
        assert text.encode() not in blob, text
    exported = load_folder(out)
    levels = [w.level for m in exported.matches.values() for w in m.waterfall]
    # the labels spillover link writes are kept; free text becomes a keyed pseudonym
    assert "missing" in levels
    assert [x for x in levels if x not in LEVEL_LABELS] == [
        Pseudonymizer(KEY).level(name),
        Pseudonymizer(KEY).level(phone),
    ]
    assert all(re.fullmatch(r"L-[0-9a-f]{12}", x) for x in levels if x not in LEVEL_LABELS)
    # the weights and what agreed are kept, and every answer stays the same
    before = [
        (w.field, w.agreed, w.log2_bayes_factor)
        for m in original.matches.values()
        for w in m.waterfall
    ]
    after = [
        (w.field, w.agreed, w.log2_bayes_factor)
        for m in exported.matches.values()
        for w in m.waterfall
    ]
    assert after == before
    verdicts = [audit_folder(f, tmp_path / f"{f.name}.jsonl").verdicts for f in (source, out)]
    assert verdicts[0] == verdicts[1]


def test_kept_level_labels_are_those_link_writes() -> None:
    from spillover.link.resolve import LEVEL_AGREES

    assert set(LEVEL_LABELS) == set(LEVEL_AGREES)


def test_no_free_text_column_survives_raw(tmp_path: Path) -> None:
    """Every free-text column of the tables (docs/contract.md §1: stated reasons, cities,
    waterfall levels) is dropped or pseudonymized; names are pseudonyms."""
    source = _records_with_levels(tmp_path / "src", {"different": "note: Xu Yan"})
    columns = {"blacklist": "stated_reason", "people": "city", "records": "city"}
    for table, column in columns.items():
        path = source / f"{table}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
        if column not in fields:
            fields.append(column)
        for n, row in enumerate(rows):
            row[column] = f"SECRET-NOTE-{table}-{n}"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fields)
            writer.writeheader()
            writer.writerows(rows)
    original = load_folder(source)
    assert {e.stated_reason for e in original.entries.values()} != {None}
    out = _export(source, tmp_path / "out")
    blob = _all_bytes(out)
    assert b"SECRET-NOTE" not in blob and b"Xu Yan" not in blob
    for person in original.people.values():
        assert person.name.encode() not in blob
    for record in original.records.values():
        assert not record.name or record.name.encode() not in blob


# --- keys (issue 19, item 10) ------------------------------------------------------------


WEAK_KEYS = {
    "zero bytes": bytes(32),
    "one character": b"k" * 64,
    "spaces": b" " * 48,
    "counting": bytes(range(32)),
    "hex digits in order": b"0123456789abcdef" * 4,
    "a block twice": bytes.fromhex("9f1c2a7be4d05613a8c33e7f1b6d4a02") * 2,
    "two characters": b"ab" * 32,
}


@pytest.mark.parametrize("name", sorted(WEAK_KEYS))
def test_weak_keys_are_refused(tmp_path: Path, name: str) -> None:
    weak = WEAK_KEYS[name]
    assert key_entropy_bits(weak) < MIN_KEY_BITS
    path = tmp_path / "k"
    path.write_bytes(weak)
    with pytest.raises(SpilloverError, match="at least 128 bits") as info:
        read_key(path)
    assert "--generate-key" in str(info.value)
    with pytest.raises(SpilloverError, match="entropy"):
        export_pseudonymized(JIANG, tmp_path / "out", key=weak)
    with pytest.raises(SpilloverError, match="entropy"):
        Pseudonymizer(weak)
    result = CliRunner().invoke(
        cli,
        ["export", "--data", str(JIANG), "--out", str(tmp_path / "o"), "--pseudonymize",
         "--key-file", str(path)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.startswith("spillover: error: key file") and "entropy" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "out").exists()


def test_random_keys_pass_the_entropy_check() -> None:
    # 32 random bytes (and their hex or base64 text) show far more than the bound
    import base64

    for _ in range(2000):
        key = os.urandom(MIN_KEY_BYTES)
        assert key_entropy_bits(key) >= MIN_KEY_BITS
    assert key_entropy_bits(os.urandom(32).hex().encode() + b"\n") >= MIN_KEY_BITS
    assert key_entropy_bits(base64.b64encode(os.urandom(32))) >= MIN_KEY_BITS
    Pseudonymizer(KEY)
    Pseudonymizer(OTHER_KEY)


def test_generate_key_writes_a_private_random_key_and_never_overwrites(tmp_path: Path) -> None:
    old = os.umask(0)  # the mode does not depend on the umask
    try:
        path = generate_key(tmp_path / "k")
    finally:
        os.umask(old)
    key = path.read_bytes()
    assert len(key) == MIN_KEY_BYTES and key_entropy_bits(key) >= MIN_KEY_BITS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key(path) == key
    assert generate_key(tmp_path / "k2").read_bytes() != key
    with pytest.raises(SpilloverError, match="already exists"):
        generate_key(path)
    assert path.read_bytes() == key
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")  # not even a dangling link
    with pytest.raises(SpilloverError, match="already exists"):
        generate_key(tmp_path / "link")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(SpilloverError, match="cannot create"):
        generate_key(tmp_path / "no" / "such" / "folder")


def test_cli_generate_key_then_export_with_it(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "export.key"
    result = runner.invoke(cli, ["export", "--generate-key", str(key)])
    assert result.exit_code == 0, result.output
    assert "wrote a new key" in result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    result = runner.invoke(cli, ["export", "--generate-key", str(key)])
    assert result.exit_code == 1
    assert result.output == (
        f"spillover: error: {key} already exists: a key file is never overwritten "
        "(choose a new name)\n"
    )
    assert key.read_bytes() == first
    # it only makes a key: an export asked for in the same command is a usage error
    result = runner.invoke(
        cli,
        ["export", "--generate-key", str(tmp_path / "k2"), "--data", str(JIANG), "--out",
         str(tmp_path / "o2"), "--pseudonymize", "--key-file", str(key)],
    )  # fmt: skip
    assert result.exit_code == 2 and "--generate-key only makes a key" in result.output
    assert not (tmp_path / "k2").exists() and not (tmp_path / "o2").exists()
    result = runner.invoke(cli, ["export", "--out", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "Missing option '--data'" in result.output
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        ["export", "--data", str(JIANG), "--out", str(out), "--pseudonymize",
         "--key-file", str(key)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_key_from_standard_input(tmp_path: Path) -> None:
    assert read_key("-", stdin=io.BytesIO(KEY)) == KEY
    with pytest.raises(SpilloverError, match="standard input is refused: it is empty"):
        read_key("-", stdin=io.BytesIO(b""))
    with pytest.raises(SpilloverError, match="more than 4096 bytes"):
        read_key("-", stdin=io.BytesIO(os.urandom(5000)))
    with pytest.raises(SpilloverError, match="more than 4096 bytes"):
        read_key("/dev/zero")  # a device that never ends is refused, not read forever
    runner = CliRunner()
    args = ["export", "--data", str(JIANG), "--pseudonymize", "--key-file"]
    result = runner.invoke(cli, [*args, "-", "--out", str(tmp_path / "dash")], input=KEY)
    assert result.exit_code == 0, result.output
    _export(JIANG, tmp_path / "file")
    for table in ("people", "loans", "blacklist"):
        assert (tmp_path / "dash" / f"{table}.csv").read_bytes() == (
            tmp_path / "file" / f"{table}.csv"
        ).read_bytes()
    result = runner.invoke(cli, [*args, "-", "--out", str(tmp_path / "weak")], input=bytes(32))
    assert result.exit_code == 1
    assert "spillover: error: the key on standard input is refused" in result.output
    # /dev/stdin as a pipe, as a shell gives it: a real process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for name in ("/dev/stdin", "-"):
        out = tmp_path / f"pipe{name.replace('/', '_')}"
        done = subprocess.run(
            [sys.executable, "-m", "spillover", *args, name, "--out", str(out)],
            input=KEY,
            capture_output=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert (out / "people.csv").read_bytes() == (tmp_path / "file" / "people.csv").read_bytes()


# --- line breaks inside quoted cells (probe s37, item 1) --------------------------------------

#: cells holding a bare carriage return, a line feed and both: valid quoted CSV
LINE_BREAKS = {"quickcash": "Quick\rCash", "yidai": "Yidai\nExpress", "xiaoyu": "Xiaoyu\r\nCredit"}


def _rewrite_table(path: Path, change: dict[str, dict[str, str]]) -> None:
    """Rewrite cells of the CSV table ``path`` (``{first cell: {column: value}}``), quoting
    every cell that needs it (line ends ``\\r\\n``: ``csv.writer`` then quotes a bare ``\\r``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    key = next(iter(rows[0]))
    for row in rows:
        row.update(change.get(row[key], {}))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def line_break_folder(folder: Path) -> Path:
    """The Jiang case with line breaks (``\\r``, ``\\n``, ``\\r\\n``) inside quoted cells:
    platform names, a person's name and city, a stated reason."""
    shutil.copytree(JIANG, folder)
    names = {k: {"name": v} for k, v in LINE_BREAKS.items()}
    _rewrite_table(folder / "platforms.csv", names)
    _rewrite_table(folder / "people.csv", {"xu_yan": {"name": "Xu\rYan", "city": "Hang\r\nzhou"}})
    _rewrite_table(folder / "blacklist.csv", {"E-QC-XU": {"stated_reason": "loan\rXY-QC-1\n"}})
    data = load_folder(folder)
    assert {k: data.platforms[k].name for k in LINE_BREAKS} == LINE_BREAKS
    assert data.people["xu_yan"].name == "Xu\rYan"
    return folder


def test_line_breaks_in_cells_survive_the_export(tmp_path: Path) -> None:
    """A bare carriage return in a cell is quoted: the export loads again, with the same
    values (a platform name is kept exactly), and every command runs on it."""
    source = line_break_folder(tmp_path / "data")
    out = _export(source, tmp_path / "out")
    assert b'"Quick\rCash"' in (out / "platforms.csv").read_bytes()
    original, exported = load_folder(source), load_folder(out)
    assert exported.platforms == original.platforms
    assert read_dataset(out) == exported
    assert exported.counts() == original.counts()
    before = audit_folder(source, tmp_path / "a.jsonl")
    after = audit_folder(out, tmp_path / "b.jsonl")
    assert before.verdicts == after.verdicts


# --- a loan named only by an unresolved record (probe s37, item 9) ----------------------------


def test_a_loan_on_an_unresolved_record_is_exported_with_its_links(tmp_path: Path) -> None:
    """The loader leaves such a loan out of the graph (it names no one), but it is a row of
    the folder: the export keeps it and its links, pseudonymized like the rest, so that a
    later ``spillover link`` of the export can resolve its record."""
    source = tmp_path / "data"
    shutil.copytree(jiang_records_path(), source)
    with (source / "records.csv").open("a", encoding="utf-8") as handle:
        handle.write("QC-R-NOBODY,quickcash,Nobody Known,,,,,\n")
    with (source / "loans.csv").open("a", encoding="utf-8") as handle:
        handle.write("NB-QC-1,quickcash,,QC-R-NOBODY,2023-01-05,defaulted,,,500,2023-03-01\n")
    with (source / "loan_links.csv").open("a", encoding="utf-8") as handle:
        handle.write("NB-QC-1,13957112345,guarantor\n")
    assert "NB-QC-1" not in load_folder(source).loans  # out of the graph
    out = _export(source, tmp_path / "out")
    loans = {r.loan_id: r for r in read_valid_table(out, "loans")}
    links = read_valid_table(out, "loan_links")
    assert len(loans) == len(read_valid_table(source, "loans"))
    assert len(links) == len(read_valid_table(source, "loan_links"))
    exported = load_folder(out)
    (kept,) = (r for k, r in loans.items() if k not in exported.loans)
    assert kept.borrower_id is None and kept.amount == 500 and kept.loan_id.startswith("loan-")
    assert kept.borrower_record in exported.records
    assert kept.borrower_record not in exported.matches  # still unresolved
    assert exported.records[kept.borrower_record].name.startswith("P-")
    assert [(x.phone[:4], x.role.value) for x in links if x.loan_id == kept.loan_id] == [
        ("+861", "guarantor")
    ]
    assert b"NB-QC-1" not in _all_bytes(out) and b"Nobody" not in _all_bytes(out)
    before = audit_folder(source, tmp_path / "a.jsonl")
    after = audit_folder(out, tmp_path / "b.jsonl")
    assert before.verdicts == after.verdicts


@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_the_loans_on_unresolved_records_are_read_with_the_others(
    tmp_path: Path, form: str
) -> None:
    """``unnamed_loans=True`` keeps the loans named only by an unresolved record, and
    their links, from the one read of the folder: the same dataset as
    :func:`with_unnamed_loans`, which reads the loans again (what the export and
    ``remedy --apply`` did), on the fast loader (CSV) and the exact one (JSON lines);
    :func:`without_unnamed_loans` of it is the graph's dataset."""
    source = tmp_path / "data"
    generate(600, 5, source, records=True, format=form)
    graph = read_dataset(source)
    # the synthetic loans on unresolved records have no links: give one a guarantor
    loan = next(x for x in read_valid_table(source, "loans") if x.loan_id not in graph.loans)
    phone = graph.links[0].phone
    with (source / f"loan_links.{form}").open("a", encoding="utf-8") as handle:
        handle.write(
            f"{loan.loan_id},{phone},guarantor\n"
            if form == "csv"
            else json.dumps({"loan_id": loan.loan_id, "phone": phone, "role": "guarantor"}) + "\n"
        )
    graph = read_dataset(source)
    assert graph == load_folder(source)
    full = read_dataset(source, unnamed_loans=True)
    unnamed = full.loans.keys() - graph.loans.keys()
    assert unnamed and all(full.loans[k].borrower_id == "" for k in unnamed)
    assert any(x.loan_id in unnamed for x in full.links)
    assert full == with_unnamed_loans(source, graph, "CN")
    assert load_folder(source, unnamed_loans=True) == full
    assert without_unnamed_loans(full) == graph
    assert list(without_unnamed_loans(full).loans) == list(graph.loans)  # in the same order
    # a folder whose records all resolve: nothing is added
    assert read_dataset(JIANG, unnamed_loans=True) == read_dataset(JIANG)
    assert without_unnamed_loans(graph) is graph
