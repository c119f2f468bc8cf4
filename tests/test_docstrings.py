"""Docstrings that ruff's D1xx rules cannot see (pyproject.toml exempts the backends from D102).

A backend's GraphBackend methods are documented once, on the protocol; every other
public method or property of a backend class needs a docstring of its own.
"""

from __future__ import annotations

import inspect
from functools import cached_property

import pytest

from spillover.backends.arrays import ArrayBackend
from spillover.backends.memory import MemoryBackend
from spillover.facts.graph import GraphBackend
from spillover.neo4j.store import Neo4jBackend

PROTOCOL = {
    name
    for name, value in vars(GraphBackend).items()
    if not name.startswith("_") and inspect.isfunction(value)
}


def _doc(value: object) -> str | None:
    if isinstance(value, classmethod | staticmethod):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    if isinstance(value, cached_property):
        value = value.func
    return inspect.getdoc(value)


def test_the_protocol_documents_every_method() -> None:
    assert {"entries", "expand", "columns", "close"} <= PROTOCOL
    assert {name for name in PROTOCOL if not _doc(getattr(GraphBackend, name))} == set()


@pytest.mark.parametrize("cls", [ArrayBackend, MemoryBackend, Neo4jBackend])
def test_backend_methods_beyond_the_protocol_have_docstrings(cls: type) -> None:
    assert set(vars(cls)) >= PROTOCOL, "a backend implements the whole protocol"
    undocumented = {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and name not in PROTOCOL
        and (callable(value) or isinstance(value, property | cached_property | classmethod))
        and not _doc(value)
    }
    assert undocumented == set()
