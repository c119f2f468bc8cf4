"""Safe outputs: formula-neutralized CSV reports and atomic writes (docs/contract.md §4)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from scenario import Scenario
from spillover.audit.batch import audit, write_audit, write_audit_columns
from spillover.audit.rows import AUDIT_COLUMNS
from spillover.cli import cli
from spillover.errors import SpilloverError
from spillover.files.write import (
    FORMULA_TRIGGERS,
    atomic_file,
    atomic_folder,
    neutralize,
    restore,
)

EVIL = [
    '=HYPERLINK("http://x","y")',
    "+cmd",
    "@cmd",
    "-2+3",
    "\tx",
    "\rx",
    "  =1+1",
    "\uff1dSUM(A1)",
    "\uff0bcmd",
    "\uff20cmd",
    "\uff0d2+3",
    "'quoted",
    "'=1+1",
]
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
HARMLESS = ["jiang", "E-QT-J", "-1", "+8613957112345", "2.5e-3", "", "x=1", "1-2", " x"]


@pytest.mark.parametrize("cell", EVIL)
def test_formula_cells_get_a_quote_and_restore(cell: str) -> None:
    safe = neutralize(cell)
    assert safe == "'" + cell
    assert restore(safe) == cell


@pytest.mark.parametrize("cell", HARMLESS)
def test_plain_cells_and_numbers_are_kept(cell: str) -> None:
    assert neutralize(cell) == cell
    assert restore(cell) == cell


@given(st.text())
def test_restore_undoes_neutralize_for_any_text(cell: str) -> None:
    safe = neutralize(cell)
    assert restore(safe) == cell
    head = safe.lstrip(" \u00a0\u3000")[:1]
    assert safe[:1] == "'" or head not in FORMULA_TRIGGERS or NUMBER.fullmatch(safe)


def test_non_text_values_are_kept() -> None:
    assert neutralize(-1.5) == -1.5
    assert neutralize(None) is None


def _evil_scenario() -> Scenario:
    """Ids, names and stated reasons that a spreadsheet would run as formulas."""
    s = Scenario()
    victim = s.person('=HYPERLINK("http://x","y")', name='=HYPERLINK("http://x","y")')
    debtor = s.person("@cmd", name="+cmd")
    lender = s.platform("+cmd")
    bank = s.platform("=1+1", kind="bank")
    s.share(lender, bank, "2020-01-01")
    phone = s.phone(victim)
    s.phone(debtor)
    s.loan("-2+3", lender, debtor, "2023-01-01", "defaulted", status_at="2023-03-01")
    s.link("-2+3", phone, "emergency_contact")
    s.entry("@cmd", bank, victim, "2023-06-01", stated_reason='=HYPERLINK("http://x","y")')
    s.entry("-1", lender, phone, "2023-06-01", kind="phone", stated_reason="-2+3")
    return s


def test_audit_csv_neutralizes_formulas(graph, tmp_path: Path) -> None:
    backend = graph(_evil_scenario())
    out = tmp_path / "audit.csv"
    audit(backend, out)
    text = out.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 2
    for row in rows:
        for column, cell in row.items():
            head = cell.lstrip(" ")[:1]
            # a cell may only start with a trigger when it is a plain number
            assert head not in "=+-@\t\r" or not head or NUMBER.fullmatch(cell), (column, cell)
    by_entry = {restore(r["entry_id"]): r for r in rows}
    spill = by_entry["@cmd"]
    assert spill["entry_id"] == "'@cmd"
    assert spill["subject"] == '\'=HYPERLINK("http://x","y")'
    assert spill["platform_id"] == "'=1+1"
    assert spill["origin_loan_id"] == "'-2+3"
    assert spill["origin_borrower_id"] == "'@cmd"
    assert spill["origin_platform_id"] == "'+cmd"
    assert spill["verdict"] == "spillover"
    phone_row = by_entry["-1"]
    assert phone_row["entry_id"] == "-1"
    assert phone_row["subject"].startswith("+86")  # E.164 is a plain number: kept exact
    # JSONL is exact: no quote is added
    jsonl = tmp_path / "audit.jsonl"
    audit(backend, jsonl)
    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert {r["entry_id"] for r in lines} == {"@cmd", "-1"}
    assert {r["subject"] for r in lines} >= {'=HYPERLINK("http://x","y")'}


def _row(entry_id: str) -> dict:
    return {
        "entry_id": entry_id,
        "platform_id": "p",
        "subject_kind": "person",
        "subject": "s",
        "listed_at": "2024-01-01",
        "contamination": 1.0,
        "verdict": "unexplained",
        "origin_loan_id": None,
        "origin_borrower_id": None,
        "origin_platform_id": None,
        "responsibility": None,
        "hops": None,
        "reason_codes": "NO_TIME_RESPECTING_PATH",
    }


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_audit_ignores_a_stale_part_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"audit{suffix}"
    # what a killed run of an older version (fixed name) or of this one (unique name) leaves
    stale = [tmp_path / f"audit{suffix}.part", tmp_path / f".audit{suffix}.k1ll3d.part"]
    for path in stale:
        path.write_text("half a row,", encoding="utf-8")
    stale[0].chmod(0o400)  # not even writable: a fixed temp name would fail on it
    summary = write_audit([_row("E1"), _row("E2")], out)
    assert summary.rows == 2
    assert "E2" in out.read_text(encoding="utf-8")
    assert _leftovers(tmp_path) == sorted(p.name for p in stale)  # untouched, not tripped on


def test_audit_error_mid_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"

    def rows():
        yield _row("E1")
        raise SpilloverError("the graph went away")

    with pytest.raises(SpilloverError):
        write_audit(rows(), out)
    assert list(tmp_path.iterdir()) == []


def test_audit_error_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    write_audit([_row("E1")], out)
    before = out.read_bytes()

    def rows():
        yield _row("E9")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_audit(rows(), out)
    assert out.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_audit_refuses_a_folder_as_output(tmp_path: Path) -> None:
    (tmp_path / "audit.csv").mkdir()
    with pytest.raises(SpilloverError, match="is a directory"):
        write_audit([_row("E1")], tmp_path / "audit.csv")


def test_atomic_file_gets_normal_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "x.csv") as handle:
            handle.write("a\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "x.csv").stat().st_mode & 0o777 == 0o644


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "export"
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "people.csv").write_text("person_id,name\n", encoding="utf-8")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".export.stale.part").mkdir()  # left by a killed run
    target.mkdir()  # an empty folder may be the target
    with atomic_folder(target) as tmp:
        (tmp / "people.csv").write_text("person_id,name\n", encoding="utf-8")
    assert [p.name for p in target.iterdir()] == ["people.csv"]
    assert _leftovers(tmp_path) == [".export.stale.part"]


def test_cli_audit_csv_is_neutralized(tmp_path: Path) -> None:
    data = _evil_scenario().write(tmp_path / "data")
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(cli, ["audit", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    subjects = {r["subject"] for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert '\'=HYPERLINK("http://x","y")' in subjects
    assert _leftovers(tmp_path) == []


def test_synth_killed_while_writing_leaves_no_folder(tmp_path: Path) -> None:
    from spillover.synth.generate import generate

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "write loans" and done > 0:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of the files

    (tmp_path / ".data.stale.part").mkdir()  # a killed run's leftover
    with pytest.raises(KeyboardInterrupt):
        generate(50, 1, tmp_path / "data", progress=progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.stale.part"]
    mask = os.umask(0o022)
    try:
        generate(50, 1, tmp_path / "data")
    finally:
        os.umask(mask)
    assert (tmp_path / "data" / "ground_truth" / "entries.csv").is_file()
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o755  # a normal folder


#: the child of :func:`_kill_when_writing`: ``spillover ARGS`` that stops itself (SIGSTOP)
#: once its temporary output in FOLDER exists (Python's audit events: ``tempfile`` names
#: the file or folder it is about to make; the next event after it is made stops)
_STOP_WHEN_WRITING = """
import os, signal, sys

folder = os.path.realpath(sys.argv[1])
pending = []

def hook(event, args):
    if event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        if os.path.dirname(os.path.realpath(args[0])) == folder:
            pending.append(args[0])
    elif pending and os.path.lexists(pending[-1]):
        pending.clear()
        os.kill(os.getpid(), signal.SIGSTOP)

sys.addaudithook(hook)
from spillover.cli import cli
cli(sys.argv[2:], prog_name="spillover")
"""


def _kill_when_writing(args: list[str], folder: Path) -> None:
    """Run ``spillover ARGS`` and SIGKILL it once its temporary output exists: the child
    stops itself there (:data:`_STOP_WHEN_WRITING`), so no output is finished first, however
    fast it writes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    before = _leftovers(folder)
    proc = subprocess.Popen([sys.executable, "-c", _STOP_WHEN_WRITING, str(folder), *args])
    stopped = False
    try:
        deadline = time.monotonic() + 120
        while not stopped:
            pid, status = os.waitpid(proc.pid, os.WNOHANG | os.WUNTRACED)
            if pid:
                assert os.WIFSTOPPED(status), "finished before it could be killed"
                stopped = True
            else:
                assert time.monotonic() < deadline
                time.sleep(0.005)
        assert _leftovers(folder) != before
    finally:
        if stopped:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_killed_audit_and_synth_leave_nothing_a_rerun_trips_on(tmp_path: Path) -> None:
    from spillover.synth.generate import generate

    data = tmp_path / "data"
    generate(10_000, 5, data)
    runs = tmp_path / "runs"
    runs.mkdir()
    out = runs / "audit.csv"
    _kill_when_writing(["audit", "--data", str(data), "--out", str(out)], runs)
    assert not out.exists()
    [stale] = _leftovers(runs)
    assert stale.startswith(".audit.csv.")
    result = CliRunner().invoke(cli, ["audit", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) > 1000
    assert _leftovers(runs) == [stale]

    again = runs / "synth"
    _kill_when_writing(["synth", "--people", "30000", "--seed", "1", "--out", str(again)], runs)
    assert not again.exists()
    assert len(_leftovers(runs)) == 2
    result = CliRunner().invoke(cli, ["synth", "--people", "50", "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert (again / "people.csv").is_file()

    key = tmp_path / "key"
    key.write_bytes(
        bytes.fromhex("ef0d53317924fcc695cfda4c63947e358931ac1fbe897f98a925075c1bb40995")
    )  # random: weak keys are refused
    export = ["export", "--data", str(data), "--pseudonymize", "--key-file", str(key)]
    _kill_when_writing([*export, "--out", str(runs / "pseudo")], runs)
    assert not (runs / "pseudo").exists()
    assert len(_leftovers(runs)) == 3
    result = CliRunner().invoke(cli, [*export, "--out", str(runs / "pseudo")])
    assert result.exit_code == 0, result.output
    assert len((runs / "pseudo" / "people.csv").read_text(encoding="utf-8").splitlines()) == 10_001


_TEXT = st.one_of(
    st.sampled_from(
        [
            *EVIL,
            *HARMLESS,
            *("a,b", 'say "x"', "a\nb", "a\r\nb", "\u2028", "\x00", "\\"),
            # plain numbers a trigger starts (kept), with other digits, blanks or a line end
            *("+8613957112345", "-1", "-.5e-3", "+1.", "+\u0661\u0662", " +1", "+1\n", "+1 "),
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)
_AUDIT_ROW = st.fixed_dictionaries(
    {
        **{c: _TEXT for c in ("entry_id", "platform_id", "subject_kind", "subject", "listed_at")},
        "contamination": st.floats(0, 1),
        "verdict": _TEXT,
        **{
            c: st.none() | _TEXT
            for c in ("origin_loan_id", "origin_borrower_id", "origin_platform_id")
        },
        "responsibility": st.none() | st.floats(0, 1),
        "hops": st.none() | st.integers(0, 9),
        "reason_codes": _TEXT,
    }
)
_TYPES = {"contamination": pa.float64(), "responsibility": pa.float64(), "hops": pa.int64()}


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(_AUDIT_ROW, max_size=6))
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_column_writer_gives_the_row_writers_bytes(
    rows: list[dict], suffix: str, tmp_path_factory
) -> None:
    """The column-wise writer (the batch audit's) writes the bytes of the row writer, for any text."""
    folder = tmp_path_factory.mktemp("cols")
    rows = [{c: r[c] for c in AUDIT_COLUMNS} for r in rows]  # the pass's rows: in column order
    by_row = write_audit(rows, folder / f"rows{suffix}")
    columns = {c: pa.array([r[c] for r in rows], _TYPES.get(c, pa.string())) for c in AUDIT_COLUMNS}
    by_column = write_audit_columns(columns, folder / f"columns{suffix}")
    assert (folder / f"columns{suffix}").read_bytes() == (folder / f"rows{suffix}").read_bytes()
    assert (by_column.rows, by_column.verdicts) == (by_row.rows, by_row.verdicts)


# --- outputs inside the data folder they read (probe s38, case 12) ----------------------------


def _jiang_copy(where: Path) -> Path:
    import shutil

    from spillover import examples

    shutil.copytree(examples.jiang_case_path(), where)
    return where


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "args",
    [
        ["remedy", "--subject", "jiang", "--apply", "--out", "{d}/loans.jsonl"],
        ["remedy", "--subject", "jiang", "--apply", "--out", "{d}/fixed"],
        ["simulate", "--rule", "contacts", "--out", "{d}/sharing.jsonl"],
        ["changes", "--before", "{d}", "--after", "{fx}", "--out", "{d}/blacklist.jsonl"],
        ["changes", "--before", "{fx}", "--after", "{d}", "--out", "{d}/notices"],
        ["export", "--pseudonymize", "--key-file", "{key}", "--out", "{d}/people.jsonl"],
        ["audit", "--out", "{d}/loans.csv"],
        ["audit", "--out", "{d}/people.jsonl"],
        ["neighborhood", "jiang", "--format", "json", "--out", "{d}/phones.jsonl"],
        # a table's name in another case: the same file where the file system ignores case
        ["audit", "--out", "{d}/People.csv"],
        ["audit", "--out", "{d}/LOANS.JSONL"],
        ["neighborhood", "jiang", "--format", "json", "--out", "{d}/Blacklist.Parquet"],
        ["neighborhood", "jiang", "--format", "json", "--out", "{d}/Loans.CSV"],
    ],
    ids=lambda a: " ".join(a[:1] + a[-2:]).replace("{d}/", ""),
)
def test_an_output_inside_the_data_folder_that_would_change_it_is_refused(tmp_path, args):
    """A folder or a table file written inside the data folder read would change it: every
    command refuses it before anything is written, and the folder stays as it was."""
    from spillover.disputes import apply_remedy

    data = _jiang_copy(tmp_path / "d")
    fixed = tmp_path / "fx"
    apply_remedy(data, fixed, subject="jiang")
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    before = _tree(data)
    given = [a.format(d=data, fx=fixed, key=key) for a in args]
    if args[0] != "changes":
        given += ["--data", str(data)]
    done = CliRunner().invoke(cli, given)
    assert done.exit_code != 0, done.output
    assert "Traceback" not in done.output and "outside it" in done.output, done.output
    assert _tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == sorted(before)  # no folder left either


@pytest.mark.parametrize("out", ["{d}/../audit.csv", "{d}/audit.csv", "{d}/loans-audit.csv"])
def test_an_audit_file_beside_the_tables_is_still_written(tmp_path, out):
    data = _jiang_copy(tmp_path / "d")
    path = out.format(d=data)
    done = CliRunner().invoke(cli, ["audit", "--data", str(data), "--out", path])
    assert done.exit_code == 0, done.output
    again = CliRunner().invoke(
        cli, ["audit", "--data", str(data), "--out", str(tmp_path / "b.csv")]
    )
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("People.csv", "people.csv"),
        ("LOANS.JSONL", "loans.jsonl"),
        ("Sharing.Parquet", "sharing.parquet"),
    ],
)
def test_a_table_name_in_another_case_is_refused_naming_the_table(tmp_path, name, table):
    """``audit --out DATA/People.csv`` passed the check, then overwrote ``people.csv``
    where the file system ignores case (macOS, Windows): refused on every system now,
    naming the table's file, and nothing is written."""
    data = _jiang_copy(tmp_path / "d")
    before = _tree(data)
    out = data / name
    done = CliRunner().invoke(cli, ["audit", "--data", str(data), "--out", str(out)])
    assert done.exit_code == 1, done.output
    words = f"would be read as a table of the --data folder {data} ("
    words += f"{table}, where file names ignore case): write it outside it"
    assert "--out" in done.output and words in done.output, done.output
    assert "Traceback" not in done.output
    assert _tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == sorted(before)


def test_the_data_folder_in_another_case_is_the_data_folder_where_case_is_ignored(tmp_path):
    """``Path.resolve`` keeps the case typed: ``DATA/people.csv`` for the data folder
    ``data`` is its table where the file system ignores case, and the file system is
    asked. Where case counts, ``DATA`` is another folder and an output there is written."""
    from spillover.data.outputs import check_not_inside, check_outside
    from spillover.errors import OptionError

    data = _jiang_copy(tmp_path / "data")
    other = tmp_path / "DATA"
    ignores_case = other.exists()
    if not ignores_case:
        other.mkdir()  # where case counts: a folder of its own
    refusals = [
        (lambda: check_outside(other / "people.csv", data, folder=False), "as a table"),
        (lambda: check_outside(other / "Loans.jsonl", data, folder=False), "as a table"),
        (lambda: check_outside(other / "fixed", data), "is inside the --data folder"),
        (lambda: check_outside(other, data), "is the --data folder"),
        (lambda: check_not_inside(other / "m.json", data, option="-s"), "is inside the"),
    ]
    for check, words in refusals:
        if ignores_case:
            with pytest.raises(OptionError, match=words):
                check()
        else:
            check()
    args = ["audit", "--data", str(data), "--out", str(other / "people.csv")]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == (1 if ignores_case else 0), done.output


#: ``spillover ARGS`` with the folder ``$1`` bind-mounted on ``$2`` (a mount namespace of its own)
_BIND_THEN_RUN = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["audit", "--out", "{a}/people.csv"], "would be read as a table of the --data folder"),
        (["remedy", "--subject", "jiang", "--apply", "--out", "{a}/fixed"], "is inside the"),
        (["remedy", "--subject", "jiang", "--apply", "--out", "{a}"], "is the --data folder"),
    ],
    ids=["audit table", "remedy inside", "remedy folder"],
)
def test_the_data_folder_under_another_path_is_found_by_the_file_system(tmp_path, args, words):
    """``DATA`` for the data folder ``data`` on a file system that ignores case is another
    path to the same folder, which ``Path.resolve`` leaves as typed: the file system is
    asked. A bind mount is such a path on any system: tried where a user namespace can
    make one (``unshare -rm``)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("no user namespace to bind-mount the data folder in")
    data = _jiang_copy(tmp_path / "d")
    alias = tmp_path / "alias"
    alias.mkdir()
    before = _tree(data)
    run = "import sys\nfrom spillover.cli import cli\ncli(sys.argv[1:], prog_name='spillover')"
    given = [a.format(a=alias) for a in args] + ["--data", str(data)]
    bind = ["unshare", "-rm", "sh", "-c", _BIND_THEN_RUN, "sh", str(data), str(alias)]
    done = subprocess.run(
        [*bind, sys.executable, "-c", run, *given], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert words in done.stderr and "outside it" in done.stderr, done.stderr
    assert _tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == sorted(before)


def test_a_file_anywhere_inside_a_folder_is_refused_whatever_its_name(tmp_path):
    """``check_not_inside`` (``link --save-settings`` and its ``--report``): not only a
    table's name, any file in the folder, or the folder itself; beside it or above is fine."""
    from spillover.data.outputs import check_not_inside
    from spillover.errors import OptionError

    data = tmp_path / "d"
    (data / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    for path, words in [
        (data / "model.json", f"is inside the --out folder {data}"),
        (data / "sub" / "x", f"is inside the --out folder {data}"),
        (tmp_path / "link" / "model.json", f"is inside the --out folder {data}"),
        (data, "is the --out folder"),
    ]:
        with pytest.raises(OptionError) as refused:
            check_not_inside(path, data, option="--save-settings", folder_option="--out")
        assert refused.value.option == "--save-settings"
        assert refused.value.reason == f"{path} {words}: write it outside it"
    for fine in (tmp_path / "model.json", tmp_path / "d2" / "x", tmp_path):
        check_not_inside(fine, data, option="--save-settings")


@pytest.mark.parametrize(
    ("log", "words"),
    [
        ("{d}/loans.jsonl", "would be read as a table of the --data folder"),
        ("{d}/people.csv", "would be read as a table of the --data folder"),
        ("{d}", "is the --data folder"),
        ("{t}/d", None),  # the data folder named as a rotated log (FILE.2) beside it
        ("{d}/Loans.JSONL", "would be read as a table of the --data folder"),
        ("{t}/D", None),  # ... in another case (Checks.JSONL.2)
    ],
)
def test_serve_refuses_a_check_log_in_the_data_folder_before_anything_starts(
    tmp_path, monkeypatch, log, words
):
    """A check log the loader would read as a table of the data folder served, the data
    folder itself, or a log whose rotated file beside it is the data folder: refused in
    one line (exit 1) before the graph is read, the tokens are looked for or the server
    starts; nothing is written."""
    pytest.importorskip("fastapi")
    monkeypatch.delenv("SPILLOVER_TOKENS", raising=False)
    data = _jiang_copy(tmp_path / "d")
    if log in ("{t}/d", "{t}/D"):
        name = "checks.jsonl.2" if log == "{t}/d" else "Checks.JSONL.2"
        data = _jiang_copy(tmp_path / name)
        log, words = "{t}/checks.jsonl", f"{name} beside it is the --data folder"
    before = _tree(data)
    path = log.format(d=data, t=tmp_path)
    done = CliRunner().invoke(cli, ["serve", "--data", str(data), "--check-log", path])
    assert done.exit_code == 1, done.output
    assert "--check-log" in done.output and words in done.output, done.output
    assert "Traceback" not in done.output and "bearer tokens" not in done.output
    assert _tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == sorted(before)
    assert not (tmp_path / "checks.jsonl").exists()


def test_the_library_refuses_a_check_log_in_the_data_folder(tmp_path, monkeypatch):
    """serve() and create_app() refuse it too, before the log's file is made."""
    pytest.importorskip("fastapi")
    from spillover.errors import OptionError
    from spillover.service import ServeConfig, create_app, serve

    monkeypatch.delenv("SPILLOVER_TOKENS", raising=False)  # refused before the tokens
    data = _jiang_copy(tmp_path / "d")
    config = ServeConfig(check_log=str(data / "loans.csv"), data=str(data))
    before = _tree(data)
    with pytest.raises(OptionError, match="would be read as a table of the --data folder"):
        serve(config)
    monkeypatch.setenv("SPILLOVER_TOKENS", "ops:" + "t" * 32)
    with pytest.raises(OptionError, match="would be read as a table of the --data folder"):
        create_app(config.open_graph, config)
    assert _tree(data) == before
    # a log beside the tables is no table (its lock and rotated files neither): written,
    # and the folder still reads as it did (serve --data . keeps its default log there)
    for log in (data / "spillover-checks.jsonl", tmp_path / "checks.jsonl"):
        fine = ServeConfig(check_log=str(log), data=str(data))
        create_app(fine.open_graph, fine)
        assert log.exists()
    done = CliRunner().invoke(cli, ["audit", "--data", str(data), "--out", str(tmp_path / "a.csv")])
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("files", ["{d}/import", "{d}", "{t}", "{d}/../d/loans.parquet"])
@pytest.mark.parametrize("only", [True, False])
def test_bulk_ingest_refuses_import_files_in_the_data_folder_before_connecting(
    tmp_path, files, only
):
    """``ingest --bulk --files DIR`` wrote the importer's files into the data folder (a
    folder inside it, or the folder itself). Refused in one line (exit 1) before the
    folder is read or Neo4j reached (port 9 answers nothing), and nothing is written."""
    data = _jiang_copy(tmp_path / "d")
    before = _tree(data)
    where = files.format(d=data, t=tmp_path)
    args = ["ingest", str(data), "--bulk", "--files", where]
    args += ["--files-only"] if only else ["--neo4j-uri", "bolt://127.0.0.1:9"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 1, done.output
    assert "--files" in done.output and "outside it" in done.output, done.output
    assert "Neo4j" not in done.output and "Traceback" not in done.output
    assert _tree(data) == before
    assert sorted(p.name for p in data.iterdir()) == sorted(before)


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("{d}/phones.jsonl", "would be read as a table of the --data folder"),
        ("{d}/loans.parquet/part-0.json", "would be read as a table of the --data folder"),
        ("{t}/dir", "is a folder, not a file"),
        ("{t}/missing/view.json", "does not exist"),
    ],
)
def test_neighborhood_refuses_a_bad_out_before_reading_the_data(tmp_path, out, words):
    """``neighborhood --out`` was checked only once the view was drawn, after the whole
    data folder was read (a folder or a missing folder for it ended in a traceback). A
    data folder the loader refuses shows the order: the --out refusal comes first."""
    data = _jiang_copy(tmp_path / "d")
    (tmp_path / "dir").mkdir()
    (data / "loans.jsonl").write_text("", encoding="utf-8")  # beside loans.csv: refused
    before = _tree(data)
    path = out.format(d=data, t=tmp_path)
    args = ["neighborhood", "jiang", "--format", "json", "--data", str(data), "--out", path]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 1, done.output
    assert "--out" in done.output and words in done.output, done.output
    assert "loans.jsonl" not in done.output.replace(str(data), "")  # the data was not read
    assert isinstance(done.exception, SystemExit)  # a clean refusal, not a traceback
    assert _tree(data) == before
    good = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "view.json")])
    assert good.exit_code == 1 and "both loans.csv and loans.jsonl" in good.output


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("{t}/jiang.txt", "the report is written as .html or .md"),
        ("{t}/dir.html", "is a directory"),
        ("{t}/missing/jiang.html", "does not exist"),
        ("{t}/file.md/jiang.md", "is not a folder"),
    ],
)
def test_report_refuses_a_bad_out_before_reading_the_data(tmp_path, out, words):
    """``report --out`` was checked only once the whole data folder was read (a file in
    place of its folder ended in a traceback). A data folder the loader refuses shows
    the order: the --out refusal comes first; a good --out then meets the data's error."""
    data = _jiang_copy(tmp_path / "d")
    (tmp_path / "dir.html").mkdir()
    (tmp_path / "file.md").write_text("", encoding="utf-8")
    (data / "loans.jsonl").write_text("", encoding="utf-8")  # beside loans.csv: refused
    path = out.format(t=tmp_path)
    args = ["report", "jiang", "--data", str(data), "--out", path]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 1, done.output
    assert "--out" in done.output and words in done.output, done.output
    assert "loans.jsonl" not in done.output.replace(str(data), "")  # the data was not read
    assert isinstance(done.exception, SystemExit)  # a clean refusal, not a traceback
    good = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "jiang.html")])
    assert good.exit_code == 1 and "both loans.csv and loans.jsonl" in good.output
    assert not (tmp_path / "jiang.html").exists()


@pytest.mark.parametrize(
    ("name", "backups", "refused"),
    [
        ("checks.jsonl.1", 10, True),
        ("checks.jsonl.10", 10, True),
        ("checks.jsonl.lock", 10, True),
        ("checks.jsonl.3", 2, False),  # past the backups: never renamed
        ("checks.jsonl.11", 10, False),
        ("checks.jsonl.20261206", 10, False),  # a dated snapshot beside the log
        ("checks.jsonl.0", 10, False),
        ("checks.jsonl.01", 10, False),
        ("checks.jsonl.\uff11", 10, False),  # a full-width 1 is no rotated name
        # in another case: the same name where the file system ignores case
        ("Checks.JSONL.1", 10, True),
        ("checks.jsonl.LOCK", 10, True),
        ("CHECKS.jsonl.Lock", 10, True),
        ("Checks.JSONL.11", 10, False),
        ("CHECKS.JSONL.20261206", 10, False),
    ],
)
def test_a_data_folder_beside_the_check_log_is_refused_only_under_a_name_it_takes(
    tmp_path, name, backups, refused
):
    """The check log renames FILE.1 ... FILE.<backups> and locks FILE.lock: a data folder
    of one of those names is refused, any other folder beside the log is left alone."""
    pytest.importorskip("fastapi")
    from spillover.errors import OptionError
    from spillover.service import ServeConfig

    data = tmp_path / name
    data.mkdir()
    config = ServeConfig(tmp_path / "checks.jsonl", data=data, log_backups=backups)
    if refused:
        with pytest.raises(OptionError, match="--check-log"):
            config.check_log_outside()
    else:
        config.check_log_outside()


#: the commands that write a folder about real people: each with the folder it writes
_PERSONAL_FOLDERS = {
    "link --out": (["link", "--data", "{records}", "--out", "{out}", "--no-train"], "out"),
    "link --report": (
        ["link", "--data", "{records}", "--out", "{other}", "--no-train", "--report", "{out}"],
        "out",
    ),
    "remedy --apply": (
        ["remedy", "E-QC-PH", "--data", "{case}", "--apply", "--out", "{out}"],
        "out",
    ),
    "simulate": (
        ["simulate", "--data", "{case}", "--rule", "contacts", "--out", "{out}"],
        "out",
    ),
}


@pytest.mark.parametrize("command", sorted(_PERSONAL_FOLDERS))
def test_folders_about_people_are_readable_by_their_owner_only(tmp_path, command):
    """A linked folder, its report (Splink's viewers show the records' values), a
    corrected copy and a simulation's blacklists hold people's names, ID numbers or phone
    numbers: made 0700, as `export` and the notices are (they got the umask, 0755, and a
    linked folder the mode of --data)."""
    from spillover.examples import jiang_case_path, jiang_records_path

    args, _ = _PERSONAL_FOLDERS[command]
    case = tmp_path / "case"
    records = tmp_path / "records"
    shutil.copytree(jiang_case_path(), case)
    shutil.copytree(jiang_records_path(), records)
    records.chmod(0o755)
    names = {"case": case, "records": records, "out": tmp_path / "out", "other": tmp_path / "o"}
    mask = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, [a.format(**names) for a in args])
    finally:
        os.umask(mask)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
