"""The check log's group commit (docs/service.md, The check log): an answer is sent only
once its line is durable (written and fsynced), and concurrent answers share fsyncs.

The service runs in this process (its ASGI application over the Jiang case), so that the
``fsync`` calls of the check log can be watched: a spy records, for every ``fsync`` of
the log, the file's size it made durable, and calls the real one."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spillover import examples
from spillover.connect import open_folder
from spillover.policy import default_policy
from spillover.service.checklog import CheckLog, GroupCommit, read_checks

pytest.importorskip("fastapi")

TOKEN = "qc-token-0123456789abcdef"
AUTH = (b"authorization", f"Bearer {TOKEN}".encode())
CHECK = {
    "platform_id": "quickcash",
    "subject": {"kind": "person", "id": "jiang"},
    "listed_at": "2024-03-01",
}


class FsyncSpy:
    """``os.fsync`` that records the size of the check log each call made durable
    (after the real call returned); ``delay``: seconds added after it (a slow disk)."""

    def __init__(self, log: Path, delay: float = 0.0) -> None:
        self.log = log
        self.delay = delay
        self.durable: list[int] = []  # sizes of the log, one per fsync of it
        self._real = os.fsync
        self._lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        self._real(fd)
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(self.log.resolve()):
            size = os.fstat(fd).st_size
            time.sleep(self.delay)
            with self._lock:
                self.durable.append(size)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[float], FsyncSpy]:
    def make(delay: float = 0.0) -> FsyncSpy:
        s = FsyncSpy(tmp_path / "checks.jsonl", delay)
        monkeypatch.setattr(os, "fsync", s)
        return s

    return make


def _app(tmp_path: Path) -> Any:
    from spillover.service import ServeConfig, create_app
    from spillover.service.auth import read_tokens

    backend = open_folder(examples.jiang_case_path())
    config = ServeConfig(tmp_path / "checks.jsonl")
    grants = read_tokens(f"quickcash:{TOKEN}")
    return create_app(lambda: backend, config, grants=grants, policy=default_policy())


async def _post(
    app: Any, body: dict[str, Any], on_start: Callable[[], None] = lambda: None
) -> tuple[int, dict[str, Any]]:
    """POST /v1/checks straight to the ASGI application; ``on_start`` runs when the
    answer's first message (its status and headers) is sent."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/checks",
        "raw_path": b"/v1/checks",
        "query_string": b"",
        "root_path": "",
        "headers": [
            AUTH,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            on_start()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return status, json.loads(b"".join(chunks))


def _line_ends(log: Path) -> dict[str, int]:
    """The offset just past each check's line in the log, by check id."""
    ends, offset = {}, 0
    for line in log.read_bytes().splitlines(keepends=True):
        offset += len(line)
        ends[json.loads(line)["check_id"]] = offset
    return ends


@pytest.mark.parametrize("concurrent", [1, 12])
def test_an_answer_is_sent_only_once_its_line_is_durable(
    tmp_path: Path, spy: Callable[[float], FsyncSpy], concurrent: int
) -> None:
    """When the answer's status line is sent, an fsync of the check log has returned
    that covered the check's line (the file's size it made durable reaches past it)."""
    fsyncs = spy(0.01)
    app = _app(tmp_path)
    log = tmp_path / "checks.jsonl"

    async def one() -> tuple[int, dict[str, Any], int]:
        durable_at_start: list[int] = []
        status, answer = await _post(
            app, CHECK, lambda: durable_at_start.append(max(fsyncs.durable, default=0))
        )
        return status, answer, durable_at_start[0]

    async def run() -> list[tuple[int, dict[str, Any], int]]:
        async with app.router.lifespan_context(app):
            return await asyncio.gather(*(one() for _ in range(concurrent)))

    answers = asyncio.run(run())
    ends = _line_ends(log)
    assert len(ends) == concurrent
    for status, answer, durable in answers:
        assert status == 200
        assert durable >= ends[answer["check_id"]] > 0


def test_concurrent_answers_share_fsyncs(tmp_path: Path, spy: Callable[[float], FsyncSpy]) -> None:
    """N checks answered at once cost fewer than N fsyncs (on a disk whose fsync takes
    50 ms, the answers that wait meanwhile go in the next write), and every one is in
    the log, whole."""
    fsyncs = spy(0.05)
    app = _app(tmp_path)
    n = 24

    async def run() -> list[tuple[int, dict[str, Any]]]:
        async with app.router.lifespan_context(app):
            return await asyncio.gather(*(_post(app, CHECK) for _ in range(n)))

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200] * n
    records = list(read_checks(tmp_path / "checks.jsonl"))
    assert {r["check_id"] for r in records} == {a["check_id"] for _, a in answers}
    assert 1 <= len(fsyncs.durable) <= n // 2, fsyncs.durable
    assert app.state.check_log_commit.lines == n
    assert app.state.check_log_commit.batches == len(fsyncs.durable)


def test_a_check_is_answered_while_asyncio_s_default_threads_are_busy(tmp_path: Path) -> None:
    """``/readyz`` probes Neo4j in asyncio's default threads, and needs no token: on a
    hung Neo4j each probe holds one for 1.5 s. The check log's writes do not queue
    behind them (here every default thread, and more, busy until the check is done)."""
    app = _app(tmp_path)
    done = threading.Event()

    async def run() -> tuple[int, dict[str, Any]]:
        async with app.router.lifespan_context(app):
            loop = asyncio.get_running_loop()
            busy = [loop.run_in_executor(None, done.wait, 30) for _ in range(64)]
            try:
                return await asyncio.wait_for(_post(app, CHECK), 10)
            finally:
                done.set()
                await asyncio.gather(*busy)

    status, answer = asyncio.run(run())
    assert status == 200
    assert [r["check_id"] for r in read_checks(tmp_path / "checks.jsonl")] == [answer["check_id"]]


def test_group_commit_keeps_the_order_of_arrival(tmp_path: Path) -> None:
    """Records are written in the order their writers arrived, a writer's records
    together, and each writer returns only once its records are in the file."""
    commit = GroupCommit(CheckLog(tmp_path / "checks.jsonl"))
    seen_after: dict[int, int] = {}

    async def writer(i: int) -> None:
        await asyncio.sleep(0.001 * (i % 3))
        await commit.append_all([{"check_id": f"{i}-{k}", "n": i} for k in range(i % 3 + 1)])
        seen_after[i] = len((tmp_path / "checks.jsonl").read_bytes().splitlines())

    async def run() -> None:
        await asyncio.gather(*(writer(i) for i in range(30)))

    asyncio.run(run())
    records = list(read_checks(tmp_path / "checks.jsonl"))
    ids = [r["check_id"] for r in records]
    assert sorted(ids) == sorted(f"{i}-{k}" for i in range(30) for k in range(i % 3 + 1))
    # a writer's records are adjacent and in its order
    for i in range(30):
        at = ids.index(f"{i}-0")
        assert ids[at : at + i % 3 + 1] == [f"{i}-{k}" for k in range(i % 3 + 1)]
    assert all(seen_after[i] >= ids.index(f"{i}-0") + i % 3 + 1 for i in range(30))
    assert commit.batches < 30 and commit.lines == len(ids)


def test_a_failed_write_fails_every_writer_of_its_batch(tmp_path: Path) -> None:
    """When the write fails (here: the log's path turned into a folder), every writer
    waiting on it gets the error; none is told its record is durable."""
    path = tmp_path / "checks.jsonl"
    commit = GroupCommit(CheckLog(path))
    path.unlink()
    path.mkdir()

    async def run() -> list[BaseException | None]:
        return await asyncio.gather(
            *(commit.append_all([{"check_id": str(i)}]) for i in range(5)),
            return_exceptions=True,
        )

    results = asyncio.run(run())
    assert all(isinstance(r, OSError) for r in results), results
    assert commit.lines == 0
