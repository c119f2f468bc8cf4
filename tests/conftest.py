"""Shared fixtures: one behaviour suite, every backend.

``graph`` turns a :class:`~scenario.Scenario` into a backend of the kind the
test is parametrized with (``backend_kind``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scenario import Scenario
from spillover.backends.base import GraphBackend
from spillover.backends.memory import MemoryBackend
from spillover.loader import load_folder

BACKENDS = ["memory"]

_counter = itertools.count()


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def graph(backend_kind: str, tmp_path: Path) -> Iterator[Callable[[Scenario], GraphBackend]]:
    """``graph(scenario)`` -> a backend holding the scenario's data."""
    opened: list[GraphBackend] = []

    def make(scenario: Scenario) -> GraphBackend:
        folder = scenario.write(tmp_path / f"data{next(_counter)}")
        data = load_folder(folder)
        backend: GraphBackend = MemoryBackend(data)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()
