"""Open a data folder or a database, one public function per purpose, named for what it returns:

- :func:`open_folder`: a :class:`~spillover.backends.GraphBackend` (the embedded
  backend over the folder's columns) to explain and check entries;
- :func:`read_dataset`: the validated facts (:class:`~spillover.facts.model.Dataset`), e.g.
  to ingest them;
- :func:`read_columns`: the graph as flat :class:`~spillover.facts.columns.Columns`, for the
  batch audit;
- :func:`open_backend`: the embedded backend over a folder, or Neo4j;
- :func:`neo4j_beside_data`: which Neo4j settings, if any, a command given a folder uses;
- :func:`require_neo4j`: the settings of a command that needs Neo4j, or a clear refusal;
- :func:`query_database`, :func:`ingest_into_database`: one saved query, one ingest, on
  a database named by its settings (connected for the call, then closed).

All of them validate the whole folder first and refuse bad input with every problem
listed (:class:`~spillover.errors.DataError`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpilloverError
from .facts.graph import GraphBackend
from .facts.phones import DEFAULT_REGION
from .neo4j.settings import Neo4jSettings

if TYPE_CHECKING:
    from .backends.arrays import ArrayBackend
    from .facts.columns import Columns
    from .facts.model import Dataset
    from .neo4j.ingest import IngestSummary
    from .neo4j.investigate import QueryResult

__all__ = [
    "ingest_into_database",
    "neo4j_beside_data",
    "open_backend",
    "open_folder",
    "query_database",
    "read_columns",
    "read_dataset",
    "require_neo4j",
]


def read_dataset(folder: str | Path, *, region: str = DEFAULT_REGION) -> Dataset:
    """The validated facts of a data folder (fast columnar checks, the exact loader
    for anything unusual; the same Dataset either way). (The imports are deferred:
    ``import spillover`` stays light for the command line.)

    >>> from spillover import examples
    >>> read_dataset(examples.jiang_case_path()).counts()["blacklist"]
    16
    """
    from .data.fast import read_dataset as fast_read_dataset

    return fast_read_dataset(folder, region=region)


def read_columns(
    folder: str | Path,
    *,
    region: str = DEFAULT_REGION,
    progress: Callable[[str, int, int], None] | None = None,
) -> Columns:
    """A data folder as flat columns for the batch audit, without building a graph."""
    from .data.fast import read_columns as fast_read_columns

    return fast_read_columns(folder, region=region, progress=progress)


def open_folder(folder: str | Path, *, region: str = DEFAULT_REGION) -> ArrayBackend:
    """Load and validate a data folder into the embedded backend: the folder's columns
    indexed as for the batch audit (no graph is built; ``MemoryBackend(read_dataset(...))``
    gives the networkx graph for graph views).

    >>> from spillover import examples
    >>> backend = open_folder(examples.jiang_case_path())
    >>> backend.names(["person:jiang", "phone:+8613957112345"])
    {'person:jiang': 'Jiang (bakery owner)', 'phone:+8613957112345': '+86 139 5711 2345'}
    """
    from .backends.arrays import ArrayBackend

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


def neo4j_beside_data(
    data: str | Path | None,
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> Neo4jSettings | None:
    """The Neo4j settings of a command that may also be given a data folder: those given
    (the rest from NEO4J_*, :meth:`Neo4jSettings.from_env`), but none when ``data`` is
    given and ``uri`` is not: an explicit folder wins over a NEO4J_URI in the environment
    (an explicit URI beside it stays, and :func:`open_backend` refuses the pair).

    >>> neo4j_beside_data("folder") is None
    True
    >>> neo4j_beside_data(None, "bolt://x").uri
    'bolt://x'
    """
    settings = Neo4jSettings.from_env(uri, user, password, database)
    return None if data is not None and uri is None else settings


def require_neo4j(settings: Neo4jSettings | None) -> Neo4jSettings:
    """``settings``, refused (:class:`~spillover.errors.SpilloverError`) when there are none."""
    if settings is None:
        raise SpilloverError("no Neo4j URI: pass --neo4j-uri or set NEO4J_URI")
    return settings


def query_database(
    settings: Neo4jSettings | None, name: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run the saved query ``name`` on the database of ``settings`` (see
    :func:`spillover.neo4j.investigate.run_saved_query`)."""
    settings = require_neo4j(settings)
    from .neo4j.investigate import run_saved_query
    from .neo4j.store import connect

    driver = connect(settings)
    try:
        return run_saved_query(driver, settings.database, name, params)
    finally:
        driver.close()


def ingest_into_database(
    settings: Neo4jSettings, folder: str | Path, **options: Any
) -> IngestSummary:
    """Make the database of ``settings`` equal the data folder ``folder`` (the keyword
    options of :func:`spillover.neo4j.ingest.ingest_folder`)."""
    from .neo4j.ingest import ingest_folder
    from .neo4j.store import connect

    driver = connect(settings)
    try:
        return ingest_folder(folder, driver, settings.database, **options)
    finally:
        driver.close()
