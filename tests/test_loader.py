"""Loading data folders (docs/contract.md §1): good input in both formats, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario import Scenario
from spillover.data.exact import load_folder
from spillover.errors import DataError
from spillover.examples import jiang_case_path


def base() -> Scenario:
    s = Scenario()
    s.person("jiang", id_number="330106198203154015")
    s.person("xu")
    s.platform("lender")
    s.platform("bank", "bank")
    s.phone("jiang", "+8613957112345")
    s.loan(
        "L1", "lender", "xu", "2023-01-10", applicant_phone="+8613957112345", phone_verified=False
    )
    s.link("L1", "+8613957112345", "emergency_contact")
    s.entry("E1", "lender", "jiang", "2023-04-01")
    s.share("lender", "bank", "2022-01-01")
    return s


def refused(tmp_path: Path, s: Scenario, fmt: str = "csv") -> DataError:
    folder = s.write(tmp_path / "data", fmt)
    with pytest.raises(DataError) as info:
        load_folder(folder)
    return info.value


def assert_problem(err: DataError, file: str, line: int, field: str, words: str) -> None:
    text = str(err)
    for p in err.problems:
        if p.file.endswith(file) and p.line == line and p.field == field and words in p.message:
            assert f"{file}:{line}: {field}: " in text
            return
    raise AssertionError(f"no problem {file}:{line}: {field}: ...{words}... in:\n{text}")


def test_jiang_case_loads():
    data = load_folder(jiang_case_path())
    assert data.people["jiang"].city == "Hangzhou"
    assert data.phone_periods["+8613957112345"][0].owner_id == "jiang"
    assert data.loans["XY-QC-1"].applicant_phone == "+8613957112345"
    assert data.entries["E-QT-J"].copied_from == "E-TY-J"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_both_formats_give_the_same_dataset(tmp_path, fmt):
    data = load_folder(base().write(tmp_path / fmt, fmt))
    assert data.counts() == {
        "people": 2,
        "platforms": 2,
        "phones": 1,
        "loans": 1,
        "loan_links": 1,
        "blacklist": 1,
        "sharing": 1,
    }
    assert data.loans["L1"].phone_verified is False


def test_national_numbers_are_normalized_in_the_region(tmp_path):
    s = base()
    s.tables["phones"][0]["phone"] = "139 5711 2345"
    s.tables["loan_links"][0]["phone"] = "+86-139-5711-2345"
    data = load_folder(s.write(tmp_path / "d"))
    assert "+8613957112345" in data.phone_periods
    assert data.links[0].phone == "+8613957112345"
    with pytest.raises(DataError) as info:  # no valid US number
        load_folder(s.write(tmp_path / "d"), region="US")
    assert_problem(info.value, "phones.csv", 2, "phone", "not a valid phone number in region US")
    s.tables["phones"][0]["phone"] = "(650) 253-0000"
    other = load_folder(s.write(tmp_path / "d"), region="US")
    assert "+16502530000" in other.phone_periods


@pytest.mark.parametrize("value", ["true", "1", "yes", "false", "0", "no", "TRUE", ""])
def test_boolean_spellings(tmp_path, value):
    s = base()
    s.tables["phones"][0]["verified"] = value
    data = load_folder(s.write(tmp_path / "d"))
    assert data.phone_periods["+8613957112345"][0].verified is (
        value.lower() in ("true", "1", "yes")
    )


def test_extra_columns_are_ignored(tmp_path):
    folder = base().write(tmp_path / "d")
    lines = (folder / "people.csv").read_text().splitlines()
    (folder / "people.csv").write_text("\n".join(line + ",extra" for line in lines) + "\n")
    assert load_folder(folder).people["jiang"].name == "Jiang"


# --- one test per kind of defect -----------------------------------------------------


def test_missing_required_table(tmp_path):
    folder = base().write(tmp_path / "d")
    (folder / "loans.csv").unlink()
    err = refused_folder(folder)
    assert_problem(err, "loans.csv", 0, "(table)", "required table 'loans' is missing")


def refused_folder(folder: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load_folder(folder)
    return info.value


def test_both_csv_and_jsonl(tmp_path):
    folder = base().write(tmp_path / "d")
    (folder / "people.jsonl").write_text('{"person_id": "a", "name": "A"}\n')
    assert_problem(refused_folder(folder), "people.jsonl", 0, "(table)", "keep one")


def test_missing_required_column(tmp_path):
    folder = base().write(tmp_path / "d")
    lines = (folder / "loans.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "status"]
    (folder / "loans.csv").write_text(
        "\n".join(",".join(row.split(",")[i] for i in keep) for row in lines) + "\n"
    )
    assert_problem(refused_folder(folder), "loans.csv", 1, "status", "required column is missing")


#: one bad cell in the base folder: (table, row, field, value) and the problem expected
#: (line, words in the message)
BAD_CELLS = {
    "missing required value": ("people", 1, "name", "", 3, "required value is missing"),
    "bad boolean": ("phones", 0, "verified", "maybe", 2, "expected true/false"),
    **{
        f"bad date {value}": ("loans", 0, "applied_at", value, 2, "date")
        for value in ("2023/01/10", "10-01-2023", "2023-02-30")
    },
    **{
        f"bad enum {table}.{field}": (table, 0, field, "bogus", 2, "Input should be")
        for table, field in (
            ("platforms", "kind"),
            ("loans", "status"),
            ("loan_links", "role"),
            ("blacklist", "subject_kind"),
        )
    },
    **{
        f"bad resident id {value}": ("people", 0, "id_number", value, 2, words)
        for value, words in (
            ("330106198203154016", "check digit is 6, expected 5"),
            ("33010619820315401", "18 characters"),
            ("3301061982031540AB", "17 digits"),
            ("330106198213324015", "impossible birth date"),
        )
    },
    **{
        f"bad phone {value}": ("loan_links", 0, "phone", value, 2, "phone number")
        for value in ("not-a-phone", "12", "+86 1")
    },
    "period ending before it starts": ("phones", 0, "until", "2009-01-01", 2, "before since"),
    "status before application": ("loans", 0, "status_at", "2022-01-01", 2, "before applied_at"),
    "negative amount": ("loans", 0, "amount", "-5", 2, "negative"),
    **{
        f"unknown {table}.{field}": (table, 0, field, "ghost", 2, f"unknown {kind}_id 'ghost'")
        for table, field, kind in (
            ("loans", "platform_id", "platform"),
            ("loans", "borrower_id", "person"),
            ("phones", "owner_id", "person"),
            ("loan_links", "loan_id", "loan"),
            ("blacklist", "platform_id", "platform"),
            ("blacklist", "copied_from", "entry"),
            ("blacklist", "subject", "person"),
            ("sharing", "from_platform", "platform"),
            ("sharing", "to_platform", "platform"),
        )
    },
}


@pytest.mark.parametrize(
    ("table", "row", "field", "value", "line", "words"),
    list(BAD_CELLS.values()),
    ids=list(BAD_CELLS),
)
def test_a_bad_cell_is_refused_with_its_place(tmp_path, table, row, field, value, line, words):
    s = base()
    s.tables[table][row][field] = value
    assert_problem(refused(tmp_path, s), f"{table}.csv", line, field, words)


def test_overlapping_phone_periods(tmp_path):
    s = base()
    s.tables["phones"][0]["until"] = "2020-12-31"
    s.phone("xu", "+8613957112345", since="2020-06-01")
    assert_problem(refused(tmp_path, s), "phones.csv", 3, "since", "overlaps the one on line 2")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("people", "person_id"),
        ("loans", "loan_id"),
        ("blacklist", "entry_id"),
        ("platforms", "platform_id"),
    ],
)
def test_duplicate_key(tmp_path, table, key):
    s = base()
    s.tables[table].append(dict(s.tables[table][0]))
    line = len(s.tables[table]) + 1
    assert_problem(refused(tmp_path, s), f"{table}.csv", line, key, "duplicate")


def test_copy_chain_loop(tmp_path):
    s = base()
    s.entry("E2", "bank", "jiang", "2023-05-01", copied_from="E3")
    s.entry("E3", "bank", "jiang", "2023-05-01", copied_from="E2")
    assert_problem(refused(tmp_path, s), "blacklist.csv", 3, "copied_from", "loops back")


def test_sharing_with_itself(tmp_path):
    s = base()
    s.share("bank", "bank")
    assert_problem(refused(tmp_path, s), "sharing.csv", 3, "to_platform", "itself")


def test_wrong_number_of_cells(tmp_path):
    folder = base().write(tmp_path / "d")
    with (folder / "people.csv").open("a") as handle:
        handle.write("a,b,c,d,e\n")
    assert_problem(refused_folder(folder), "people.csv", 4, "(row)", "expected 4 cells, found 5")


def test_bad_jsonl_line(tmp_path):
    folder = base().write(tmp_path / "d", "jsonl")
    with (folder / "people.jsonl").open("a") as handle:
        handle.write("{not json\n[1, 2]\n")
    err = refused_folder(folder)
    assert_problem(err, "people.jsonl", 3, "(row)", "not valid JSON")
    assert_problem(err, "people.jsonl", 4, "(row)", "JSON object")


def test_jsonl_nan_and_infinity_are_not_json(tmp_path):
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such literal
    (a name NaN would be read as the text "nan")."""
    folder = base().write(tmp_path / "d", "jsonl")
    with (folder / "people.jsonl").open("a") as handle:
        handle.write('{"person_id": "x", "name": NaN}\n{"person_id": "y", "name": -Infinity}\n')
    err = refused_folder(folder)
    assert_problem(err, "people.jsonl", 3, "(row)", "not valid JSON: NaN is not a JSON value")
    assert_problem(err, "people.jsonl", 4, "(row)", "not valid JSON: -Infinity is not a JSON value")


def test_jsonl_errors_name_the_line(tmp_path):
    s = base()
    s.tables["loans"][0]["status"] = "bogus"
    assert_problem(refused(tmp_path, s, "jsonl"), "loans.jsonl", 1, "status", "Input should be")


def test_jsonl_numbers_in_text_fields_are_read_as_written(tmp_path):
    """A JSON number where text is expected is its literal (``1.50``, ``-0``, ``1E2``), as
    Spark reads it, never the float's text (``1.5``, ``0``, ``100.0``); amounts and
    booleans written as JSON numbers are still numbers."""
    folder = base().write(tmp_path / "d", "jsonl")
    with (folder / "people.jsonl").open("a") as handle:
        handle.write('{"person_id": 1.50, "name": 7}\n{"person_id": -0, "name": 1E2}\n')
    with (folder / "loans.jsonl").open("a") as handle:
        handle.write(
            '{"loan_id": 10.0, "platform_id": "lender", "borrower_id": "1.50", '
            '"applied_at": "2023-01-10", "status": "repaid", "amount": 1.50, '
            '"phone_verified": 1}\n'
        )
    data = load_folder(folder)
    assert (data.people["1.50"].name, data.people["-0"].name) == ("7", "1E2")
    loan = data.loans["10.0"]
    assert (loan.borrower_id, loan.amount, loan.phone_verified) == ("1.50", 1.5, True)
    assert type(loan.amount) is float
    with (folder / "loans.jsonl").open("a") as handle:
        handle.write(
            '{"loan_id": "L9", "platform_id": "lender", "borrower_id": 1.5, '
            '"applied_at": "2023-01-10", "status": "repaid"}\n'
        )
    assert_problem(refused_folder(folder), "loans.jsonl", 3, "borrower_id", "unknown person")


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a directory"):
        load_folder(tmp_path / "file")


# --- all problems, capped, nothing kept -------------------------------------------------


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    s = base()
    s.tables["people"][0]["id_number"] = "330106198203154016"
    s.tables["loans"][0]["status"] = "bogus"
    s.tables["loans"][0]["applied_at"] = "yesterday"
    s.tables["phones"][0]["verified"] = "maybe"
    err = refused(tmp_path, s)
    fields = {(Path(p.file).name, p.field) for p in err.problems}
    assert {
        ("people.csv", "id_number"),
        ("loans.csv", "status"),
        ("loans.csv", "applied_at"),
        ("phones.csv", "verified"),
    } <= fields


def test_problems_are_capped_per_file(tmp_path):
    s = base()
    for i in range(80):
        s.person(f"p{i}", id_number="123")
    folder = s.write(tmp_path / "d")
    with pytest.raises(DataError) as info:
        load_folder(folder, max_errors=10)
    assert len(info.value.problems) == 10
    assert info.value.truncated
    assert "cap reached" in str(info.value)


def test_utf8_names_round_trip(tmp_path):
    s = base()
    s.tables["people"][0]["name"] = "蒋先生"
    assert load_folder(s.write(tmp_path / "d")).people["jiang"].name == "蒋先生"


def test_a_very_long_cell_is_read_by_both_loaders(tmp_path):
    from spillover.data import fast as fastload

    s = base()
    s.tables["people"][1]["name"] = "X" * 200_000
    folder = s.write(tmp_path / "d")
    assert load_folder(folder).people["xu"].name == "X" * 200_000
    assert fastload.read_dataset(folder) == load_folder(folder)


def test_an_empty_platform_kind_means_other(tmp_path):
    from spillover.data import fast as fastload
    from spillover.facts.model import PlatformKind

    s = base()
    s.tables["platforms"][0]["kind"] = ""
    s.tables["platforms"][1]["kind"] = " "
    folder = s.write(tmp_path / "d")
    data = load_folder(folder)
    assert data.platforms["lender"].kind == data.platforms["bank"].kind == PlatformKind.OTHER
    assert fastload.read_dataset(folder) == data


def test_an_unknown_region_is_the_callers_error_not_the_datas(tmp_path):
    from spillover.data import fast as fastload
    from spillover.errors import OptionError

    folder = base().write(tmp_path / "d")
    for load in (load_folder, fastload.read_dataset, fastload.read_columns):
        with pytest.raises(OptionError, match="unknown region 'XX'") as info:
            load(folder, region="XX")
        assert info.value.option == "--region"
    assert load_folder(folder, region="cn").counts()["people"] == 2
