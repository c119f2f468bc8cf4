"""Open a backend from what the user gave: a data folder (embedded) or a Neo4j URI."""

from __future__ import annotations

from pathlib import Path

from .backends.base import GraphBackend
from .errors import SpilloverError
from .phones import DEFAULT_REGION


def open_backend(
    data: str | Path | None = None,
    *,
    region: str = DEFAULT_REGION,
) -> GraphBackend:
    """The embedded backend over ``data``."""
    if data is None:
        raise SpilloverError("no graph given: pass --data DIR")
    from .backends.memory import MemoryBackend
    from .loader import load_folder

    return MemoryBackend(load_folder(data, region=region))
