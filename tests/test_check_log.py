"""The check log's file (docs/service.md, The check log): what a crash or a failed write
leaves in it, and how it is read back. The library's :class:`CheckLog` and
``spillover checks`` on real files; the failed write in a child process whose file-size
limit makes the write fail half way (as a full disk does)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from spillover.cli import cli
from spillover.errors import SpilloverError
from spillover.service.checklog import CheckLog, read_checks


def _record(check_id: str, pad: int = 0) -> dict[str, object]:
    return {"check_id": check_id, "subject": {"kind": "person", "id": "p"}, "pad": "x" * pad}


def _cut_short(log: Path, check_id: str) -> None:
    """Append what a server killed in the middle of its write leaves: the first bytes of
    a line, without its end."""
    line = json.dumps(_record(check_id), separators=(",", ":")).encode()
    with open(log, "ab") as f:
        f.write(line[: len(line) // 2])


def test_a_line_cut_short_by_a_crash_is_cut_off_before_the_next_write(tmp_path: Path) -> None:
    """A server killed while it wrote left half a line (its check was never answered);
    the restarted server's first line must not be glued to it: that check was answered,
    and its line must be readable."""
    log = CheckLog(tmp_path / "checks.jsonl")
    log.append(_record("a"))
    _cut_short(log.path, "torn")
    restarted = CheckLog(tmp_path / "checks.jsonl")
    restarted.append(_record("b"))
    assert [r["check_id"] for r in read_checks(log.path)] == ["a", "b"]
    assert log.path.read_bytes().count(b"torn") == 0


def test_a_log_of_one_line_cut_short_starts_again_empty(tmp_path: Path) -> None:
    log = CheckLog(tmp_path / "checks.jsonl")
    _cut_short(log.path, "torn")
    log.append(_record("a"))
    assert [r["check_id"] for r in read_checks(log.path)] == ["a"]


def test_a_rotated_file_keeps_no_line_cut_short(tmp_path: Path) -> None:
    """The line cut short is cut off before the size is weighed for a rotation: the
    rotated file ends with a whole line."""
    log = CheckLog(tmp_path / "checks.jsonl", max_bytes=1024, backups=3)
    log.append(_record("a", pad=400))
    _cut_short(log.path, "torn")
    log.append(_record("b", pad=700))
    rotated = tmp_path / "checks.jsonl.1"
    assert rotated.read_bytes().endswith(b"\n")
    assert [r["check_id"] for r in read_checks(log.path)] == ["a", "b"]


def test_checks_reads_a_log_whose_last_line_was_cut_short(tmp_path: Path) -> None:
    """``spillover checks`` right after the crash (nothing written since): every whole
    line, and a note where the line cut short was, not an error."""
    log = CheckLog(tmp_path / "checks.jsonl")
    log.append(_record("a"))
    log.append(_record("b"))
    _cut_short(log.path, "torn")
    cut: list[str] = []
    assert [r["check_id"] for r in read_checks(log.path, on_cut=cut.append)] == ["a", "b"]
    assert cut == [f"{log.path}:3: a line cut short (a write not finished), not read"]
    result = CliRunner().invoke(cli, ["checks", "--log", str(log.path)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["check_id"] for line in result.stdout.splitlines()] == ["a", "b"]
    assert result.stderr == (
        f"spillover: note: {log.path}:3: a line cut short (a write not finished), not read\n"
    )


#: a child whose writes past 1500 bytes fail (EFBIG, as ENOSPC on a full disk): its
#: second record is written in part, then the write fails; the third goes in once the
#: limit is lifted
_FAILING_WRITER = """
import json, resource, signal, sys
from spillover.service.checklog import CheckLog

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
log = CheckLog(sys.argv[1])
log.append({"check_id": "a", "pad": "x" * 1000})
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1500, hard))
try:
    log.append({"check_id": "failed", "pad": "x" * 1000})
except OSError as exc:
    print("failed:", exc.strerror)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
log.append({"check_id": "b", "pad": "x" * 10})
"""


def test_a_write_that_fails_half_way_is_taken_back_out(tmp_path: Path) -> None:
    """A write that fails after part of it reached the file (a full disk): its answers
    fail (500), so its part of a line is taken back out, and the next line is whole."""
    log = tmp_path / "checks.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITER, str(log)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("failed:"), done.stdout
    assert [r["check_id"] for r in read_checks(log)] == ["a", "b"]


def test_reading_while_the_log_rotates_misses_nothing(tmp_path: Path) -> None:
    """``read_checks`` while a writer appends and rotates (every dozen lines): each read
    is whole, a run of consecutive records up to the last one written (the oldest file
    dropped past the backups), never a gap, a record twice, or a file gone missing
    between the listing of the files and their reading."""
    log = CheckLog(tmp_path / "checks.jsonl", max_bytes=4000, backups=5)
    log.append(_record("0", pad=300))
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            log.append(_record(str(written[0] + 1), pad=300))
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    bad: list[str] = []
    reads = 0
    deadline = time.monotonic() + 60
    try:
        # through a dozen rotations at least, and a few hundred reads
        while (written[0] < 150 or reads < 300) and time.monotonic() < deadline:
            reads += 1
            try:
                ids = [int(r["check_id"]) for r in read_checks(log.path)]
            except (OSError, SpilloverError) as exc:
                bad.append(repr(exc))
                continue
            if ids != list(range(ids[0], ids[0] + len(ids))):
                bad.append(f"not consecutive: {ids}")
    finally:
        stop.set()
        writer.join()
    assert written[0] >= 150 and reads >= 300
    assert bad == []


def test_a_check_log_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "checks.jsonl").mkdir()  # not a file
    result = CliRunner().invoke(cli, ["checks", "--log", str(tmp_path / "checks.jsonl")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"spillover: error: {tmp_path / 'checks.jsonl'}: cannot read the check log: "
        "Is a directory\n"
    )


def test_rotated_files_of_a_name_with_brackets_are_read(tmp_path: Path) -> None:
    """A log named ``checks[1].jsonl``: its rotated files were looked for with the name as
    a pattern (``[1]`` matching ``1``), so only the current file was read."""
    log = CheckLog(tmp_path / "checks[1].jsonl", max_bytes=200, backups=5)
    for i in range(6):
        log.append(_record(str(i), pad=100))
    assert (tmp_path / "checks[1].jsonl.5").exists()
    (tmp_path / "checks1.jsonl.1").write_text('{"check_id": "another log"}\n')
    assert [r["check_id"] for r in read_checks(log.path)] == [str(i) for i in range(6)]


def test_a_line_that_is_no_check_record_is_one_line_of_error(tmp_path: Path) -> None:
    """A line of JSON that is not an object (a hand-edited log), or a record whose
    subject is null: an error naming the line, or no match, never a traceback."""
    log = CheckLog(tmp_path / "checks.jsonl")
    log.append({"check_id": "a", "subject": None})
    assert [r["check_id"] for r in read_checks(log.path, "jiang")] == []
    with open(log.path, "a", encoding="utf-8") as f:
        f.write("[1, 2]\n")
    result = CliRunner().invoke(cli, ["checks", "--log", str(log.path), "--subject", "jiang"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"spillover: error: {log.path}:2: not a check record (a JSON object)\n"
    )
