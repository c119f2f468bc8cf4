"""Open a data folder or a database, one public function per purpose, named for what it returns:

- :func:`open_folder`: a :class:`~spillover.backends.GraphBackend` (the embedded
  backend over the folder's columns) to explain and check entries;
- :func:`read_dataset`: the validated facts (:class:`~spillover.facts.model.Dataset`), e.g.
  to ingest them;
- :func:`read_columns`: the graph as flat :class:`~spillover.facts.columns.Columns`, for the
  batch audit;
- :func:`open_backend`: the embedded backend over a folder, or Neo4j.

All of them validate the whole folder first and refuse bad input with every problem
listed (:class:`~spillover.errors.DataError`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .backends.arrays import ArrayBackend
from .data import fast
from .errors import SpilloverError
from .facts.columns import Columns
from .facts.graph import GraphBackend
from .facts.model import Dataset
from .facts.phones import DEFAULT_REGION
from .neo4j.settings import Neo4jSettings

__all__ = ["open_backend", "open_folder", "read_columns", "read_dataset"]


def read_dataset(folder: str | Path, *, region: str = DEFAULT_REGION) -> Dataset:
    """The validated facts of a data folder (fast columnar checks, the exact loader
    for anything unusual; the same Dataset either way).

    >>> from spillover import examples
    >>> read_dataset(examples.jiang_case_path()).counts()["blacklist"]
    16
    """
    return fast.read_dataset(folder, region=region)


def read_columns(
    folder: str | Path,
    *,
    region: str = DEFAULT_REGION,
    progress: Callable[[str, int, int], None] | None = None,
) -> Columns:
    """A data folder as flat columns for the batch audit, without building a graph."""
    return fast.read_columns(folder, region=region, progress=progress)


def open_folder(folder: str | Path, *, region: str = DEFAULT_REGION) -> ArrayBackend:
    """Load and validate a data folder into the embedded backend: the folder's columns
    indexed as for the batch audit (no graph is built; ``MemoryBackend(read_dataset(...))``
    gives the networkx graph for graph views).

    >>> from spillover import examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> backend.names(["person:jiang", "phone:+8613957112345"])
    {'person:jiang': 'Jiang (bakery owner)', 'phone:+8613957112345': '+86 139 5711 2345'}
    """
    return ArrayBackend(read_columns(folder, region=region))


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
        from .neo4j.store import open_neo4j

        return open_neo4j(neo4j)
    if data is None:
        raise SpilloverError("no graph given: pass --data DIR, or --neo4j-uri (or set NEO4J_URI)")
    return open_folder(data, region=region)
