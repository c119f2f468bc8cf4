"""Open a backend from what the user gave: a data folder (embedded) or Neo4j settings."""

from __future__ import annotations

from pathlib import Path

from .backends.base import GraphBackend
from .backends.neo4j import Neo4jSettings
from .errors import SpilloverError
from .phones import DEFAULT_REGION


def open_backend(
    data: str | Path | None = None,
    neo4j: Neo4jSettings | None = None,
    *,
    region: str = DEFAULT_REGION,
) -> GraphBackend:
    """The embedded backend over ``data``, or the Neo4j backend for ``neo4j``.

    Exactly one of the two must be given.
    """
    if data is not None and neo4j is not None:
        raise SpilloverError("give either --data DIR or a Neo4j URI, not both")
    if neo4j is not None:
        from .backends.neo4j import open_neo4j

        return open_neo4j(neo4j)
    if data is None:
        raise SpilloverError("no graph given: pass --data DIR, or --neo4j-uri (or set NEO4J_URI)")
    from .backends.memory import MemoryBackend
    from .fastload import read_dataset

    return MemoryBackend(read_dataset(data, region=region))
