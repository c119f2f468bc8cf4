"""Shared fixtures: one behaviour suite, every backend.

``graph`` turns a :class:`~scenario.Scenario` into a backend of the kind the
test is parametrized with (``backend_kind``: ``memory`` or ``neo4j``).

Neo4j comes from, in this order (``neo4j_service``, once per test session):

1. ``NEO4J_URI`` (+ ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) if set;
   the database must be empty, and is emptied again after every test;
2. a testcontainers ``Neo4jContainer("neo4j:5.26-community")`` if a Docker engine answers;
3. a local Neo4j 5.26 started from Maven Central jars by ``scripts/neo4j-local``
   (needs Java 17; the jars are cached in ~/.cache/spillover);
4. otherwise the Neo4j tests fail with a message saying what was tried. They
   never skip. Deselect them explicitly with ``-m "not neo4j"`` if you must.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import pytest

from scenario import Scenario
from spillover.backends.arrays import ArrayBackend
from spillover.backends.memory import MemoryBackend
from spillover.connect import read_columns
from spillover.data.exact import load_folder
from spillover.facts.graph import GraphBackend
from spillover.facts.model import Dataset
from spillover.neo4j.ingest import graph_counts, ingest_dataset, wipe
from spillover.neo4j.store import Neo4jBackend, Neo4jSettings, connect

ROOT = Path(__file__).resolve().parents[1]
NEO4J_IMAGE = "neo4j:5.26-community"
BACKENDS = ["memory", "arrays", pytest.param("neo4j", marks=pytest.mark.neo4j)]

_counter = itertools.count()


@dataclass
class Neo4jService:
    settings: Neo4jSettings
    driver: neo4j.Driver
    how: str

    def clear(self) -> None:
        wipe(self.driver, self.settings.database)


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def neo4j_service(request: pytest.FixtureRequest) -> Iterator[Neo4jService]:
    tried = []
    env = Neo4jSettings.from_env()
    if env is not None:
        driver = connect(env)
        if any(graph_counts(driver, env.database).values()):
            driver.close()
            pytest.fail(
                f"NEO4J_URI={env.uri} (database {env.database!r}) is not empty; the tests need an "
                "empty database and wipe it after every test. Point NEO4J_URI at a scratch server."
            )
        service = Neo4jService(env, driver, f"NEO4J_URI {env.uri}")
        _neo4j_how.append(service.how)
        yield service
        service.clear()
        driver.close()
        return
    tried.append("NEO4J_URI is not set")

    if _docker_answers():
        from testcontainers.neo4j import Neo4jContainer

        with Neo4jContainer(NEO4J_IMAGE) as container:
            settings = Neo4jSettings(container.get_connection_url(), "neo4j", container.password)
            driver = connect(settings)
            _neo4j_how.append(f"testcontainers {NEO4J_IMAGE}")
            yield Neo4jService(settings, driver, _neo4j_how[-1])
            driver.close()
        return
    tried.append("no Docker engine answers")

    script = ROOT / "scripts" / "neo4j-local"
    if shutil.which("java") and script.exists():
        state = Path(tempfile.mkdtemp(prefix="spillover-neo4j-"))
        done = subprocess.run(
            [sys.executable, str(script), "start", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/neo4j-local could not start Neo4j:\n{done.stderr[-3000:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        settings = Neo4jSettings(info["uri"], info["user"], info["password"])
        driver = connect(settings)
        _neo4j_how.append(f"a local Neo4j from scripts/neo4j-local at {info['uri']}")
        try:
            yield Neo4jService(settings, driver, _neo4j_how[-1])
        finally:
            driver.close()
            subprocess.run(
                [sys.executable, str(script), "stop", "--state-dir", str(state)],
                capture_output=True,
                timeout=120,
            )
        return
    tried.append("no Java on PATH" if not shutil.which("java") else f"{script} is missing")
    pytest.fail("no Neo4j for the tests: " + "; ".join(tried) + ". See docs/neo4j-local.md.")


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def graph(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[Scenario], GraphBackend]]:
    """``graph(scenario)`` -> a backend holding the scenario's data (and only it)."""
    service: Neo4jService | None = None
    if backend_kind == "neo4j":
        service = request.getfixturevalue("neo4j_service")

    def make(scenario: Scenario) -> GraphBackend:
        folder = scenario.write(tmp_path / f"data{next(_counter)}")
        if backend_kind == "arrays":  # what open_folder gives: the index over the columns
            return ArrayBackend(read_columns(folder))
        data = load_folder(folder)
        return MemoryBackend(data) if service is None else _ingested(service, data)

    yield make
    if service is not None:
        service.clear()


def _ingested(service: Neo4jService, data: Dataset) -> GraphBackend:
    """A Neo4j backend holding ``data`` and only it (the database emptied first)."""
    service.clear()
    ingest_dataset(data, service.driver, service.settings.database)
    return Neo4jBackend(service.driver, service.settings.database)


@pytest.fixture
def dataset_graph(
    backend_kind: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[Dataset], GraphBackend]]:
    """``dataset_graph(data)`` -> a backend of the kind ``backend_kind`` holding the facts
    ``data`` (and only them): for data made in memory, such as a corrected dataset."""
    service: Neo4jService | None = None
    if backend_kind == "neo4j":
        service = request.getfixturevalue("neo4j_service")

    def make(data: Dataset) -> GraphBackend:
        if backend_kind == "arrays":
            return ArrayBackend.from_dataset(data)
        return MemoryBackend(data) if service is None else _ingested(service, data)

    yield make
    if service is not None:
        service.clear()


@pytest.fixture
def neo4j_db(neo4j_service: Neo4jService) -> Iterator[Neo4jService]:
    """The Neo4j service, empty before and after the test."""
    neo4j_service.clear()
    yield neo4j_service
    neo4j_service.clear()


@pytest.fixture
def neo4j_env(neo4j_db: Neo4jService, monkeypatch: pytest.MonkeyPatch) -> Neo4jService:
    """NEO4J_* variables pointing at the test database (for CLI tests)."""
    s = neo4j_db.settings
    monkeypatch.setenv("NEO4J_URI", s.uri)
    monkeypatch.setenv("NEO4J_USER", s.user)
    monkeypatch.setenv("NEO4J_PASSWORD", s.password)
    monkeypatch.setenv("NEO4J_DATABASE", s.database)
    return neo4j_db


_neo4j_outcomes: dict[str, int] = {}
_neo4j_how: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "neo4j" in report.keywords and (report.when == "call" or report.outcome != "passed"):
        _neo4j_outcomes[report.outcome] = _neo4j_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(_neo4j_outcomes.items())) or "none ran"
    where = f" against {_neo4j_how[0]}" if _neo4j_how else ""
    terminalreporter.write_line(f"Neo4j tests: {counts}{where}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and not _neo4j_outcomes.get(
        "passed"
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nCI=true but no Neo4j test passed: the Neo4j tests must run in CI.")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (2 cores) for the whole test session, its log quiet;
    the Spark tests are skipped where pyspark is not installed."""
    pytest.importorskip("pyspark")
    from spillover.audit.spark import session

    s = session(
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "2g",
            # the session runs thousands of queries: Spark's status store keeps the last
            # 1,000 executions with their plans (large for the layered search) even
            # without a UI, and the 1 GB driver once ran out of heap building a broadcast
            # late in the suite; keep fewer
            "spark.sql.ui.retainedExecutions": "50",
            "spark.ui.retainedJobs": "200",
            "spark.ui.retainedStages": "200",
        },
        app="spillover-tests",
    )
    yield s
    s.stop()
