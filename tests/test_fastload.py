"""The columnar fast loader accepts exactly what the exact loader accepts, and gives the same audit."""

from __future__ import annotations

import csv as pycsv
import random
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from parquet_forms import write_parquet
from scenario import random_scenario
from spillover.data import fast as fastload
from spillover.data.exact import load_folder
from spillover.engines.batch import Index, coded_only, codes_of, columns_from_dataset, rows
from spillover.engines.batch.index import BUILD_ONLY_CODES, BUILD_ONLY_COLUMNS
from spillover.errors import DataError
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.facts.phonecodes import PhoneCodes, phone_keys, phone_text
from spillover.policy import default_policy
from spillover.synth.generate import generate


def audit_of(columns):
    return list(rows(Index(columns).audit(), default_policy()))


@pytest.fixture
def exact_calls(monkeypatch):
    """How often read_columns handed the folder to the exact loader."""
    calls = []
    original = fastload.load_folder

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(fastload, "load_folder", spy)
    return calls


def test_jiang_case_takes_the_fast_path(exact_calls):
    fast = fastload.read_columns(jiang_case_path())
    assert exact_calls == []
    assert audit_of(fast) == audit_of(columns_from_dataset(load_folder(jiang_case_path())))


@pytest.mark.parametrize("seed", range(5))
def test_random_folders_same_audit(tmp_path, exact_calls, seed):
    folder = random_scenario(seed).write(tmp_path / "d")
    assert audit_of(fastload.read_columns(folder)) == audit_of(
        columns_from_dataset(load_folder(folder))
    )
    assert exact_calls == []


def test_synthetic_folder_same_audit(tmp_path, exact_calls):
    folder = tmp_path / "synth"
    generate(1500, 3, folder)
    assert audit_of(fastload.read_columns(folder)) == audit_of(
        columns_from_dataset(load_folder(folder))
    )
    assert exact_calls == []


def test_national_numbers_are_normalized_like_the_exact_loader(tmp_path, exact_calls):
    s = random_scenario(1)
    for row in s.tables["phones"]:
        row["phone"] = row["phone"].removeprefix("+86")
    folder = s.write(tmp_path / "d")
    assert audit_of(fastload.read_columns(folder)) == audit_of(
        columns_from_dataset(load_folder(folder))
    )
    assert exact_calls == []


@pytest.mark.parametrize(
    ("table", "field", "value"),
    [
        ("people", "id_number", "330106198203154016"),
        ("people", "id_number", "330106198202304012"),
        ("loans", "applied_at", "2023-02-30"),
        ("loans", "status", "bogus"),
        ("loans", "platform_id", "ghost"),
        ("phones", "verified", "maybe"),
        ("blacklist", "copied_from", "ghost"),
        ("loan_links", "phone", "12"),
    ],
)
def test_bad_folders_are_refused_with_the_exact_messages(
    tmp_path, exact_calls, table, field, value
):
    s = random_scenario(2)
    s.tables[table][0][field] = value
    folder = s.write(tmp_path / "d")
    with pytest.raises(DataError) as fast:
        fastload.read_columns(folder)
    with pytest.raises(DataError) as exact:
        load_folder(folder)
    assert str(fast.value) == str(exact.value)
    assert f"{table}.csv:2: {field}:" in str(fast.value)
    assert len(exact_calls) == 1


def test_odd_but_valid_input_falls_back_and_is_accepted(tmp_path, exact_calls):
    s = random_scenario(3)
    s.tables["people"][0]["name"] = "  Padded Name  "  # the exact loader trims it
    s.tables["phones"][0]["verified"] = "YES"
    folder = s.write(tmp_path / "d")
    fast = fastload.read_columns(folder)
    assert len(exact_calls) == 1
    assert audit_of(fast) == audit_of(columns_from_dataset(load_folder(folder)))


def _written(s: Any, folder: Path, suffix: str) -> Path:
    """The scenario's tables written as ``suffix`` (Parquet: every table as text columns)."""
    if suffix != "parquet":
        return s.write(folder, suffix)
    s.write(folder)
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            write_parquet(path.with_suffix(".parquet"), list(pycsv.reader(f)))
        path.unlink()
    return folder


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_enum_cells_padded_with_spaces_read_as_their_values(tmp_path, exact_calls, suffix):
    """A status, role, subject kind or platform kind padded at both ends (a tab, U+3000,
    U+00A0, a space) is the value it holds, as every other cell is trimmed (docs/contract.md
    §1): the same dataset and audit as the folder written without the padding. Such cells
    used to be refused by the embedded loaders while the Spark audit, which trims every
    cell, accepted them."""
    s = random_scenario(7)
    pads = ["\t", "\u3000", "\xa0", " "]
    plain = _written(s, tmp_path / "plain", suffix)
    for i, (table, field) in enumerate(
        [
            ("loans", "status"),
            ("loan_links", "role"),
            ("blacklist", "subject_kind"),
            ("platforms", "kind"),
        ]
    ):
        for j, row in enumerate(s.tables[table]):
            if row.get(field):
                row[field] = f"{pads[(i + j) % 4]}{row[field]}{pads[(i + j + 1) % 4]}"
    assert any(r["status"].startswith("\t") for r in s.tables["loans"])
    padded = _written(s, tmp_path / "padded", suffix)
    assert load_folder(padded) == load_folder(plain)
    assert fastload.read_dataset(padded) == load_folder(plain)
    assert audit_of(fastload.read_columns(padded)) == audit_of(fastload.read_columns(plain))


def test_an_enum_cell_in_another_case_is_still_refused(tmp_path):
    """Trimming is all: ``Defaulted`` is not a status (the Spark audit refuses it too)."""
    s = random_scenario(7)
    s.tables["loans"][0]["status"] = " Defaulted "
    folder = s.write(tmp_path / "d")
    with pytest.raises(DataError, match=r"loans\.csv:2: status: Input should be 'current'"):
        load_folder(folder)


@pytest.mark.parametrize("padded", ["Name\u3000", "\u00a0Name", "Name\x1f", "\u2028Name"])
def test_text_padded_with_any_space_strip_removes_falls_back(tmp_path, exact_calls, padded):
    """The loader reads the first and last bytes of a column for spaces; a space that is
    not ASCII, or an ASCII control, at either end still goes to the exact loader."""
    s = random_scenario(3)
    s.tables["people"][0]["name"] = padded
    folder = s.write(tmp_path / "d")
    fast = fastload.read_columns(folder)
    assert len(exact_calls) == 1
    assert audit_of(fast) == audit_of(columns_from_dataset(load_folder(folder)))


def test_jsonl_falls_back(tmp_path, exact_calls):
    folder = random_scenario(4).write(tmp_path / "d", "jsonl")
    fastload.read_columns(folder)
    assert len(exact_calls) == 1


def test_read_dataset_equals_the_exact_loader(tmp_path, exact_calls):
    folders = [jiang_case_path(), random_scenario(5).write(tmp_path / "r")]
    generate(800, 2, tmp_path / "s")
    folders.append(tmp_path / "s")
    for folder in folders:
        assert fastload.read_dataset(folder) == load_folder(folder)
    assert exact_calls == []
    s = random_scenario(6)
    s.tables["loans"][0]["status_at"] = s.tables["loans"][0]["applied_at"]
    s.tables["loans"][1]["phone_verified"] = None
    folder = s.write(tmp_path / "edge")
    assert fastload.read_dataset(folder) == load_folder(folder)


def test_a_table_of_many_arrow_blocks_with_newlines_in_values(tmp_path, exact_calls):
    """A table larger than Arrow's CSV block (1 MiB), its rows in several blocks read on
    several threads, a third of its names quoted and holding a newline and a comma (a
    block ends inside one): the same dataset as the exact loader."""
    folder = tmp_path / "big"
    generate(300, 2, folder)
    with (folder / "people.csv").open(newline="", encoding="utf-8") as handle:
        header, *people = list(pycsv.reader(handle))
    name = header.index("name")
    for i in range(30_000):
        row = list(people[i % len(people)])
        row[header.index("person_id")] = f"X{i:07d}"
        row[name] = f"Name {i}\nsecond line, {i}" if i % 3 == 1 else f"Name {i} {'x' * 50}"
        row[header.index("id_number")] = ""
        people.append(row)
    with (folder / "people.csv").open("w", newline="", encoding="utf-8") as handle:
        pycsv.writer(handle).writerows([header, *people])
    assert (folder / "people.csv").stat().st_size > 2 * 1024 * 1024
    data = fastload.read_dataset(folder)
    assert exact_calls == []  # read by Arrow, block by block
    assert data == load_folder(folder)
    assert data.people["X0000097"].name == "Name 97\nsecond line, 97"


def test_no_reading_thread_is_left_behind(tmp_path):
    """The tables read ahead on a thread of their own: none is left running, whether the
    folder loads or is handed to the exact loader (a table the fast path refuses)."""
    import threading

    folder = random_scenario(2).write(tmp_path / "d")
    fastload.read_columns(folder)
    (folder / "sharing.csv").write_bytes(b"\xef\xbb\xbf" + (folder / "sharing.csv").read_bytes())
    fastload.read_columns(folder)
    assert not [t for t in threading.enumerate() if t.name.startswith("spillover-read-ahead")]


def _shuffled_rows(folder: Path, seed: int) -> None:
    """Every table of ``folder`` with its rows in a random order (the ids unsorted)."""
    rng = random.Random(seed)
    for path in folder.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            header, *rows = list(pycsv.reader(handle))
        rng.shuffle(rows)
        with path.open("w", newline="", encoding="utf-8") as handle:
            pycsv.writer(handle).writerows([header, *rows])


@pytest.mark.parametrize(("seed", "shuffled"), [(3, False), (8, False), (5, True)])
def test_the_loaders_codes_give_the_same_index_as_fresh_ones(tmp_path, exact_calls, seed, shuffled):
    """The rows and orders the fast loader resolved while checking (Columns.codes) are
    the ones the index would compute itself from the strings (ids in order as written,
    or not)."""
    generate(400, seed, tmp_path)
    if shuffled:
        _shuffled_rows(tmp_path, seed)
    fast = fastload.read_columns(tmp_path)
    assert exact_calls == [] and fast.codes is not None
    fresh = codes_of(replace(fast, codes=None))
    for name in (f.name for f in fields(fresh)):
        if name == "phones":
            assert fast.codes.phones.keys.tolist() == fresh.phones.keys.tolist()
        else:
            assert getattr(fast.codes, name).tolist() == getattr(fresh, name).tolist(), name
    assert audit_of(fast) == audit_of(replace(fast, codes=None))


def test_an_index_that_forgot_its_build_columns_audits_alike(tmp_path, exact_calls):
    """audit_folder frees what only the index's build read before the pass."""
    generate(600, 4, tmp_path)
    columns = coded_only(fastload.read_columns(tmp_path))
    slim = Index(columns)
    slim.release_build_columns()
    for name in BUILD_ONLY_COLUMNS:
        assert len(getattr(slim.cols, name)) == 0, name
    for name in BUILD_ONLY_CODES:
        assert len(getattr(slim.codes, name)) == 0, name
    assert list(rows(slim.audit(), default_policy())) == audit_of(columns)
    assert exact_calls == []


def test_phone_keys_sort_like_the_numbers_and_read_back():
    rng = random.Random(5)
    numbers = [
        "+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15)))
        for _ in range(3000)
    ]
    keys = phone_keys(pa.array(numbers))
    assert [phone_text(int(k)) for k in keys] == numbers
    assert [numbers[i] for i in np.argsort(keys, kind="stable")] == sorted(numbers)
    phones, (codes,) = PhoneCodes.build([pa.array(numbers)])
    assert [phones.text(i) for i in range(len(phones))] == sorted(set(numbers))
    assert [phones.text(int(c)) for c in codes] == numbers
    assert phones.codes(pa.array([numbers[0], "+", "8613800000001", "+1234567890123456"])).tolist()[
        1:
    ] == [-1, -1, -1]


def test_phone_keys_of_numbers_of_one_length_equal_the_general_ones():
    """Numbers all of one length are read digit by digit from their bytes: the same keys."""
    rng = random.Random(9)
    for length in (1, 11, 13, 15):
        numbers = [
            "+" + "".join(rng.choice("0123456789") for _ in range(length)) for _ in range(500)
        ]
        other = "+" + "0" * (16 - length)  # another length: the general path
        general = phone_keys(pa.array([*numbers, other]))[:-1]
        assert phone_keys(pa.array(numbers)).tolist() == general.tolist()
    assert phone_keys(pa.array(["+86138x", "+861389"])).tolist() == [-1, 861389 * 10**9 * 16 + 6]
    assert phone_keys(pa.array(["8613800", "+861380"]))[0] == -1


def test_phone_codes_keep_text_that_is_not_e164():
    """A source that hands over other text still gets codes in text order."""
    values = ["+8613800000002", "p-1", "+8613800000001", "p-1"]
    phones, (codes,) = PhoneCodes.build([pa.array(values)])
    assert [phones.text(i) for i in range(len(phones))] == sorted(set(values))
    assert [phones.text(int(c)) for c in codes] == values
    assert phones.codes(pa.array(["p-1", "x"])).tolist() == [sorted(set(values)).index("p-1"), -1]


@pytest.mark.parametrize(
    ("widths", "rows", "hashed"),
    [
        ((13,), 1000, False),  # one width, a span that packs: one sort of (steps, row)
        ((1,), 1000, False),
        ((15,), 1000, False),  # the widest span (50 bits) and 10 bits of rows: packs
        ((15,), 9000, True),  # ... and 14 bits of rows: too wide, the hash
        ((11, 13), 1000, True),  # two widths: the hash
    ],
)
def test_phone_codes_are_the_numbers_text_order_whichever_way_found(
    monkeypatch, widths, rows, hashed
):
    """The packed sort and the dictionary encoding give the same codes: each number's
    place among the distinct numbers in text order."""
    encoded = []
    original = pa.compute.dictionary_encode
    monkeypatch.setattr(
        pa.compute, "dictionary_encode", lambda *a, **k: encoded.append(1) or original(*a, **k)
    )
    rng = random.Random(rows + sum(widths))
    pool = [
        "+" + "".join(rng.choice("0123456789") for _ in range(rng.choice(widths)))
        for _ in range(400)
    ]
    if widths == (15,):
        pool += ["+" + "0" * 15, "+" + "9" * 15]  # the widest span
    columns = [pool[-2:], *([rng.choice(pool) for _ in range(n)] for n in (rows * 7 // 10, 0))]
    columns.append([rng.choice(pool) for _ in range(rows - sum(map(len, columns)))])
    phones, codes = PhoneCodes.build([pa.array(c, pa.string()) for c in columns])
    distinct = sorted({n for c in columns for n in c})
    assert [phones.text(i) for i in range(len(phones))] == distinct
    assert [c.tolist() for c in codes] == [[distinct.index(n) for n in c] for c in columns]
    assert bool(encoded) == hashed


def _rows_shuffled(columns: Any, seed: int) -> Any:
    """``columns`` with the rows of every table (the arrays of one prefix, with the
    details of those rows) in another order, and the records in another order."""
    rng = np.random.default_rng(seed)
    orders: dict[str, np.ndarray] = {}

    def shuffled(source: Any) -> dict[str, Any]:
        changes = {}
        for f in fields(source):
            values = getattr(source, f.name)
            if isinstance(values, np.ndarray | pa.Array):
                table = f.name.split("_", 1)[0]
                order = orders.setdefault(table, rng.permutation(len(values)))
                changes[f.name] = (
                    values.take(order) if isinstance(values, pa.Array) else values[order]
                )
        return changes

    details = replace(columns.details, **shuffled(columns.details))
    records = dict(reversed(list(columns.records.items())))
    return replace(columns, **shuffled(columns), details=details, records=records)


def test_columns_digest_follows_every_value_of_a_folder_and_nothing_else():
    """columns_digest (the write-back's seal reads it over Neo4j's columns) over a folder's
    columns with everything a loader gives (details, codes, phone codes, records): two
    reads of one folder digest the same, and so do its rows in any other order (a store
    may read them so); a day moved by one, an id changed, a value moved to another row,
    a row dropped, a value it cannot digest (a set) do not."""
    from spillover.facts.columns import columns_digest

    once = fastload.read_columns(jiang_case_path())
    assert once.codes is not None and once.details is not None
    assert columns_digest(fastload.read_columns(jiang_case_path())) == columns_digest(once)
    records = fastload.read_columns(jiang_records_path())
    assert records.records and records.matches
    assert columns_digest(fastload.read_columns(jiang_records_path())) == columns_digest(records)
    assert columns_digest(records) != columns_digest(once)
    for seed in range(3):
        for columns in (once, records):
            moved = _rows_shuffled(columns, seed)
            assert moved.entry_ids.to_pylist() != columns.entry_ids.to_pylist()
            assert columns_digest(moved) == columns_digest(columns)
    listed = once.entry_listed.copy()
    listed[-1] += 1
    assert columns_digest(replace(once, entry_listed=listed)) != columns_digest(once)
    swapped = once.entry_listed.copy()
    (i, j) = np.flatnonzero(swapped != swapped[0])[0], 0
    swapped[[i, j]] = swapped[[j, i]]
    assert columns_digest(replace(once, entry_listed=swapped)) != columns_digest(once)
    fewer = replace(
        once,
        link_loan=once.link_loan[1:],
        link_phone=once.link_phone[1:],
        link_role=once.link_role[1:],
    )
    assert columns_digest(fewer) != columns_digest(once)
    ids = once.person_ids.to_pylist()  # the fast loader keeps id columns in Arrow
    renamed = pa.array([ids[0] + " ", *ids[1:]])
    assert columns_digest(replace(once, person_ids=renamed)) != columns_digest(once)
    with pytest.raises(ValueError, match="the link columns differ in length"):
        columns_digest(replace(once, link_role=once.link_role[1:]))
    with pytest.raises(TypeError, match="cannot digest a set"):
        columns_digest(replace(once, records={"r": {1}}))
