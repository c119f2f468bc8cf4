"""Open a data folder or a database, one public function per purpose, named for what it returns:

- :func:`open_folder`: a :class:`~spillover.backends.GraphBackend` (the embedded
  backend over the folder's columns) to explain and check entries;
- :func:`read_dataset`: the validated facts (:class:`~spillover.facts.model.Dataset`), e.g.
  to ingest them;
- :func:`read_columns`: the graph as flat :class:`~spillover.facts.columns.Columns`, for the
  batch audit;
- :func:`open_backend`: the embedded backend over a folder, or Neo4j;
- :class:`Source`: where the graph comes from as the user gave it (:meth:`Source.choose`:
  an explicit data folder wins over a ``NEO4J_URI`` in the environment), opened with
  :meth:`Source.open`;
- :func:`require_neo4j`: the settings of a command that needs Neo4j, or a clear refusal;
- :func:`query_database`, :func:`ingest_into_database`: one saved query, one ingest, on
  a database named by its settings (connected for the call, then closed).

All of them validate the whole folder first and refuse bad input with every problem
listed (:class:`~spillover.errors.DataError`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends.arrays import ArrayBackend
from .data import fast
from .errors import SpilloverError, UnfinishedIngest
from .facts.columns import Columns
from .facts.graph import GraphBackend
from .facts.model import Dataset
from .facts.phones import DEFAULT_REGION
from .memory import small_pages
from .neo4j.settings import Neo4jSettings

if TYPE_CHECKING:
    from .neo4j.ingest import IngestSummary, Marker
    from .neo4j.saved import QueryResult

__all__ = [
    "UNFINISHED_INGEST",
    "Source",
    "ingest_into_database",
    "open_backend",
    "open_folder",
    "query_database",
    "read_columns",
    "read_dataset",
    "require_neo4j",
]


#: the warning (:class:`~spillover.errors.UnfinishedIngest`) of a command that reads a
#: Neo4j graph whose last ingest has not finished
UNFINISHED_INGEST = (
    "an ingest into this Neo4j database has not finished (it is running, or it was cut "
    "short): the graph may mix the rows of two folders, and the answers may hold for "
    "neither; run spillover ingest again to finish it"
)


def _warn_if_ingest_unfinished(marker: Marker) -> None:
    if marker.unfinished:
        warnings.warn(UNFINISHED_INGEST, UnfinishedIngest, stacklevel=3)


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

    The folder is read and indexed in small pages (:func:`~spillover.memory.small_pages`):
    at 1M people that cut ``explain``'s kernel time from 8-12 s to 2.5 s on a 2-core VM.
    """
    with small_pages():
        return ArrayBackend(read_columns(folder, region=region))


def open_backend(
    data: str | Path | None = None,
    neo4j: Neo4jSettings | None = None,
    *,
    region: str = DEFAULT_REGION,
    check_ingest: bool = True,
) -> GraphBackend:
    """The embedded backend over ``data``, or the Neo4j backend for ``neo4j``.

    Exactly one of the two must be given. With ``check_ingest``, a Neo4j database whose
    last ingest has not finished (running, or cut short) is warned about
    (:class:`~spillover.errors.UnfinishedIngest`, :data:`UNFINISHED_INGEST`): the graph
    may mix two folders' rows; the backend is still returned.
    """
    if data is not None and neo4j is not None:
        raise SpilloverError("give either --data DIR or a Neo4j URI, not both")
    if neo4j is not None:
        from .neo4j.ingest import read_marker
        from .neo4j.store import open_neo4j

        backend = open_neo4j(neo4j)
        try:
            if check_ingest:
                _warn_if_ingest_unfinished(read_marker(backend.driver, backend.database))
        except BaseException:
            backend.close()
            raise
        return backend
    if data is None:
        raise SpilloverError("no graph given: pass --data DIR, or --neo4j-uri (or set NEO4J_URI)")
    return open_folder(data, region=region)


@dataclass(frozen=True)
class Source:
    """Where the graph comes from, as the user gave it: a data folder (``data``) or a Neo4j
    database (``neo4j``); both given is refused when opened (:func:`open_backend`).

    ``data_text`` is the folder as typed: a URI such as ``hdfs://nn/data`` keeps its
    ``//`` there (the Spark engine reads it).
    """

    data: Path | None
    neo4j: Neo4jSettings | None
    region: str = DEFAULT_REGION
    data_text: str | None = None

    @classmethod
    def choose(
        cls,
        data: str | Path | None,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        region: str = DEFAULT_REGION,
        env: Mapping[str, str] | None = None,
    ) -> Source:
        """The source of a command's ``--data`` and ``--neo4j-*`` options (None: not given),
        the Neo4j settings not given taken from ``env`` (default: the process environment,
        :meth:`~spillover.neo4j.settings.Neo4jSettings.from_env`).

        A data folder given wins over a ``NEO4J_URI`` in the environment; a URI given
        together with a data folder is kept, and :meth:`open` refuses the two.

        >>> env = {"NEO4J_URI": "bolt://db:7687"}
        >>> Source.choose("examples/jiang_case", env=env).neo4j is None
        True
        >>> Source.choose(None, env=env).neo4j.uri
        'bolt://db:7687'
        >>> both = Source.choose("examples/jiang_case", "bolt://x:7687", env=env)
        >>> both.data.name, both.neo4j.uri
        ('jiang_case', 'bolt://x:7687')
        """
        settings = Neo4jSettings.from_env(uri, user, password, database, env)
        if data is not None and uri is None:
            settings = None
        path = Path(data) if data is not None else None
        return cls(path, settings, region, str(data) if data is not None else None)

    @contextmanager
    def open(self) -> Iterator[GraphBackend]:
        """The backend of this source (:func:`open_backend`), closed when done."""
        backend = open_backend(self.data, self.neo4j, region=self.region)
        try:
            yield backend
        finally:
            backend.close()


def require_neo4j(settings: Neo4jSettings | None) -> Neo4jSettings:
    """``settings``, refused (:class:`~spillover.errors.SpilloverError`) when there are none."""
    if settings is None:
        raise SpilloverError("no Neo4j URI: pass --neo4j-uri or set NEO4J_URI")
    return settings


def query_database(
    settings: Neo4jSettings | None, name: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run the saved query ``name`` on the database of ``settings`` (see
    :func:`spillover.neo4j.saved.run_saved_query`). The name and ``params`` are checked
    before the server is reached: a wrong one is refused even when Neo4j is down."""
    settings = require_neo4j(settings)
    from .neo4j.ingest import read_marker
    from .neo4j.saved import run_saved_query, saved_query
    from .neo4j.store import connect

    saved_query(name).bind(params or {})
    driver = connect(settings)
    try:
        _warn_if_ingest_unfinished(read_marker(driver, settings.database))
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
