"""The check log: every pre-blacklist check answered by the service, one JSON line each.

Append-only: lines are only ever added; when the file passes ``max_bytes`` it is
renamed ``FILE.1`` (``FILE.1`` to ``FILE.2`` ... up to ``backups``) and a new file is
started. Every file it creates (the log, its lock file, a rotated successor) is
created ``0600``: the check log is personal data. Writers in several processes (uvicorn workers) take an exclusive ``flock``
on ``FILE.lock`` around the size check, the rotation and the write, so no line is
split or lost; a line cut short at the file's end (a write a killed process did not
finish) is cut off before the next write, and a write that fails is taken back out.
:func:`read_checks` reads the rotated files oldest first, then the current one, and
passes over a last line cut short. The record's fields are documented in
docs/service.md.

:class:`GroupCommit` is how the service writes it: the records of the answers that
arrive while one write and its ``fsync`` run are written by the next one, together, so
that N concurrent answers cost far fewer than N ``fsync`` calls, and each answer is
still released only once its line is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import glob
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SpilloverError

__all__ = ["CheckLog", "GroupCommit", "check_log_files", "read_checks"]

#: bytes read at a time, backwards, to find where a line cut short begins
_TAIL_CHUNK = 64 * 1024


@dataclass
class CheckLog:
    """An append-only, rotated JSON-lines file of check records."""

    path: Path
    max_bytes: int = 50 * 1024 * 1024
    backups: int = 10

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._lock = threading.Lock()
        try:
            # the folders made here, and the file: their names made durable (in their
            # parent folders), as the lines will be
            made = [d for d in (self.path, *self.path.parents) if not d.exists()]
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(_create(self.path, os.O_WRONLY | os.O_APPEND))
            for d in made:
                _sync_dir(d.parent)
        except OSError as exc:
            raise SpilloverError(
                f"{self.path}: cannot write the check log: {exc.strerror}"
            ) from None

    def _rotate(self) -> None:
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line (flushed and fsynced before it returns)."""
        self.append_all([record])

    def append_all(self, records: list[dict[str, Any]]) -> None:
        """Write the records, one line each, in ONE write (flushed and fsynced before it
        returns). A process killed in the middle of the write may leave its first lines
        and a line cut short (:meth:`write_lines` cuts that off next time)."""
        if records:
            self.write_lines(encode_lines(records))

    def write_lines(self, data: bytes) -> None:
        """Write ``data`` (whole lines) in ONE write, flushed and fsynced before it
        returns, rotating the file first when ``data`` would take it past ``max_bytes``.
        When the file was renamed or created meanwhile, its directory is fsynced too
        (once, after the file): the rename and the new file's name are as durable as the
        lines. A line cut short at the file's end (a write that a killed process, or a
        full disk, did not finish: its answers were never sent) is cut off first, so
        that ``data`` starts a line of its own; a write that fails is taken back out
        (its answers fail)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock:
            lock = _create(lock_path, os.O_RDWR)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                new_name = not self.path.exists()  # removed by hand: created again
                fd = _create(self.path, os.O_RDWR | os.O_APPEND)
                try:
                    size = _whole_lines(fd)
                    if size > 0 and size + len(data) > self.max_bytes:
                        os.close(fd)
                        fd = -1
                        self._rotate()
                        new_name = True
                        fd = _create(self.path, os.O_RDWR | os.O_APPEND)
                        size = 0
                    _write_durably(fd, data, size)
                finally:
                    if fd >= 0:
                        os.close(fd)
                if new_name:
                    _sync_dir(self.path.parent)
            finally:
                os.close(lock)  # closing the descriptor releases the lock


def _whole_lines(fd: int) -> int:
    """The size of the file ``fd`` once a line cut short at its end (no newline) is
    cut off: the bytes up to its last newline."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    os.ftruncate(fd, end)
    return end


def _write_durably(fd: int, data: bytes, size: int) -> None:
    """Append ``data`` to the file ``fd`` of ``size`` bytes and fsync it; if that fails,
    cut the file back to ``size`` (as far as it can) and raise."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def encode_lines(records: list[dict[str, Any]]) -> bytes:
    """The records as check-log lines: compact JSON, UTF-8, one a line."""
    return b"".join(
        (json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n").encode() for r in records
    )


@dataclass
class GroupCommit:
    """Group commit of a :class:`CheckLog` for the answers of one event loop: each
    caller of :meth:`append_all` waits until its records are durable; the records that
    arrive while a write (and its ``fsync``) runs are written by the next write, in
    their order of arrival, with one ``fsync`` for all of them. ``window``: seconds to
    wait for more records before a write starts (0: none; under load the batch is what
    arrived during the previous write anyway). One writer task at a time; the write
    itself runs in a thread of its own (not asyncio's default threads, where a probe of
    ``/readyz``, which needs no token, can wait on a hung Neo4j), so the loop keeps
    answering meanwhile.

    ``batches`` and ``lines`` count the writes and the lines written (observability)."""

    log: CheckLog
    window: float = 0.0
    batches: int = 0
    lines: int = 0
    _pending: list[tuple[bytes, int, asyncio.Future[None]]] = field(
        default_factory=list, init=False, repr=False
    )
    _writer: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _thread: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    async def append_all(self, records: list[dict[str, Any]]) -> None:
        """Return once ``records`` are written, in one write with those of the others
        waiting meanwhile, and fsynced (the write's error, if it failed)."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((encode_lines(records), len(records), done))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        """Write what is pending, batch after batch, until nothing is."""
        while self._pending:
            if self.window > 0:
                await asyncio.sleep(self.window)
            batch, self._pending = self._pending, []
            data = b"".join(lines for lines, _, _ in batch)
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="spillover-check-log")
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self.log.write_lines, data
                )
            except BaseException as exc:
                # every waiter of the batch learns that its records may not be durable
                failed = exc if isinstance(exc, Exception) else OSError("check log not written")
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(failed)
                if not isinstance(exc, Exception):
                    raise
                continue
            self.batches += 1
            self.lines += sum(n for _, n, _ in batch)
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)


def _create(path: Path, flags: int) -> int:
    """Open ``path``, creating it readable and writable by its owner only (0600) when
    it does not exist; an existing file keeps its mode."""
    return os.open(path, flags | os.O_CREAT, 0o600)


def _sync_dir(directory: Path) -> None:
    """fsync ``directory``: the names created, renamed or removed in it are durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_log_files(path: str | Path) -> list[Path]:
    """The check log's files, oldest first: ``FILE.N`` ... ``FILE.1``, then ``FILE``."""
    path = Path(path)
    rotated = []
    for p in path.parent.glob(glob.escape(path.name) + ".*"):  # `[` in a name is no pattern
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    files = [p for _, p in sorted(rotated, reverse=True)]
    if path.exists():
        files.append(path)
    if not files:
        raise SpilloverError(f"{path}: no check log there")
    return files


def read_checks(
    path: str | Path,
    subject: str | None = None,
    *,
    on_cut: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The records of the check log at ``path`` (rotated files included), oldest first;
    when ``subject`` is given, only the checks of that subject: those whose subject id is
    ``subject``, and the checks of a phone whose owner on the listing day was the person
    ``subject`` (``phone_owner_id``; records written before that field existed lack it).

    A file's last line without its newline is a line cut short (a write that a killed
    server did not finish: its answers were never sent): it is not read, and
    ``on_cut`` (if given) is told where it was. Any other line that is not JSON is an
    error.

    The files are opened together, under a shared lock of the log's ``FILE.lock`` (when
    there is one): no write or rotation runs meanwhile, so a rotation while they are
    read neither hides lines nor reads them twice, and each file is read up to the size
    it had then."""
    with contextlib.ExitStack() as files:
        for file, f, size in _open_files(Path(path), files):
            yield from _records(file, f, size, subject, on_cut)


def _open_files(path: Path, files: contextlib.ExitStack) -> list[tuple[Path, BinaryIO, int]]:
    """The check log's files (:func:`check_log_files`), opened (closed by ``files``),
    with their sizes, all under a shared lock of ``FILE.lock``: a rotation renames the
    files, but what is opened stays opened."""
    lock: int | None = None
    with contextlib.suppress(OSError):  # no lock file: no write has run
        lock = os.open(path.with_name(path.name + ".lock"), os.O_RDONLY)
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_SH)
        opened: list[tuple[Path, BinaryIO, int]] = []
        for file in check_log_files(path):
            f = files.enter_context(file.open("rb"))
            opened.append((file, f, os.fstat(f.fileno()).st_size))
        return opened
    except OSError as exc:
        raise SpilloverError(f"{exc.filename}: cannot read the check log: {exc.strerror}") from None
    finally:
        if lock is not None:
            os.close(lock)


def _records(
    file: Path,
    f: BinaryIO,
    size: int,
    subject: str | None,
    on_cut: Callable[[str], None] | None,
) -> Iterator[dict[str, Any]]:
    """The records of the first ``size`` bytes of the open file ``f`` (see
    :func:`read_checks`)."""
    n = 0
    while size > 0:
        line = f.readline(size)
        if not line:
            break
        size -= len(line)
        n += 1
        if not line.strip():
            continue
        if not line.endswith(b"\n"):
            if on_cut is not None:
                on_cut(f"{file}:{n}: a line cut short (a write not finished), not read")
            break
        try:
            record = json.loads(line)
        except ValueError:
            raise SpilloverError(f"{file}:{n}: not a JSON line") from None
        if not isinstance(record, dict):
            raise SpilloverError(f"{file}:{n}: not a check record (a JSON object)")
        checked = record.get("subject")
        if subject is None or subject in (
            checked.get("id") if isinstance(checked, dict) else None,
            record.get("phone_owner_id"),
        ):
            yield record
