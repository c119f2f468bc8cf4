"""The one configuration of the service: every setting of ``spillover serve``, with its
default, as plain values.

``spillover serve`` hands it to its uvicorn workers as JSON in the environment
(:data:`CONFIG_ENV`); each builds its application from it. The Neo4j password and the
bearer tokens are not in it: the workers read them from the environment
(NEO4J_PASSWORD, SPILLOVER_TOKENS) or the token file.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.memory import MemoryBackend
from ..connect import open_backend, read_dataset
from ..data.outputs import check_outside, within
from ..errors import OptionError, SpilloverError
from ..facts.graph import GraphBackend
from ..facts.phones import DEFAULT_REGION
from ..neo4j.settings import Neo4jSettings
from ..policy import Policy, load_policy
from .auth import TOKENS_ENV, TokenGrant, read_tokens

__all__ = ["CONFIG_ENV", "ServeConfig"]

#: the environment variable ``spillover serve`` hands its configuration to the workers in
CONFIG_ENV = "SPILLOVER_SERVE_SPEC"


@dataclass(frozen=True)
class ServeConfig:
    """Every setting of the service (docs/service.md), as plain values.

    ``check_log``: the check log's file; ``data`` or ``neo4j_*``: the graph
    (:meth:`open_graph`); ``token_file``: tokens besides those of SPILLOVER_TOKENS
    (:meth:`grants`); ``policy``: the scoring policy's file (None: the default policy).

    >>> ServeConfig("checks.jsonl").max_batch, ServeConfig("c", neo4j_uri="bolt://x").backend_name
    (100, 'neo4j')
    """

    check_log: str | Path
    data: str | None = None
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_database: str | None = None
    region: str = DEFAULT_REGION
    token_file: str | None = None
    policy: str | None = None
    max_batch: int = 100
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    #: the check log: rotated past this many bytes, keeping this many old files
    log_max_bytes: int = 50 * 1024 * 1024
    log_backups: int = 10
    max_paths: int | None = None
    #: the embedded backend over ``data``: ``memory`` (a networkx graph: one check in
    #: about a millisecond, more memory) or ``arrays`` (the audit's columns: less memory,
    #: a check in a few hundred milliseconds at 100k people)
    embedded: str = "memory"
    #: seconds: every Neo4j call (a check past it is 503), a request's body, a
    #: request's headers, an idle kept-alive connection; and open connections at most
    store_timeout: float = 10.0
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive_timeout: int = 5
    max_connections: int = 1000
    #: seconds ``/readyz`` waits for Neo4j
    ready_timeout: float = 1.5

    @property
    def backend_name(self) -> str:
        """The backend ``/readyz`` names: ``neo4j``, the embedded one over ``data``, or
        ``embedded`` for a graph the caller of ``create_app`` opens itself."""
        if self.neo4j_uri:
            return "neo4j"
        return self.embedded if self.data is not None else "embedded"

    def grants(self) -> dict[str, TokenGrant]:
        """The bearer tokens of SPILLOVER_TOKENS and the token file (refused: none)."""
        grants = read_tokens(os.environ.get(TOKENS_ENV), self.token_file)
        if not grants:
            raise SpilloverError(
                f"no bearer tokens: set {TOKENS_ENV}=name:token[,name:token] or pass --token-file"
            )
        return grants

    def check_log_outside(self) -> None:
        """Refuse a check log that would change the data folder ``data``
        (:class:`~spillover.errors.OptionError`, naming ``--check-log``), as any output
        file (docs/contract.md §4): the log where the loader would read it as a table
        (:func:`~spillover.data.outputs.check_outside`; its lock and rotated files beside
        it, ``FILE.lock``, ``FILE.1`` ..., never have a table's name), the data folder
        itself, or a log whose lock or rotated file beside it (``FILE.1`` to
        ``FILE.<log_backups>``) would be the data folder or hold it (a rotation would move
        it); a folder of another name beside it (``FILE.20261206``) is never touched. Names
        are compared ignoring case on every system (``FILE.LOCK``, ``File.2``: the same
        file where the file system ignores case), and a path through the data folder
        under another name is the data folder (:func:`~spillover.data.outputs.within`).
        Any other file in the data folder is not read by the loader: ``serve --data .``
        keeps its default log there."""
        if self.data is None:
            return
        log = Path(self.check_log)
        base = Path(self.data).resolve()
        if within(log.resolve(), base) == ():
            raise OptionError(
                "--check-log", f"{log} is the --data folder: write the check log elsewhere"
            )
        check_outside(log, self.data, option="--check-log", folder=False)
        parts = within(base, log.absolute().parent.resolve())
        if parts:
            name = parts[0]
            # compared ignoring case, as check_outside compares a table's name
            folded, stem = name.casefold(), log.name.casefold() + "."
            suffix = folded[len(stem) :] if folded.startswith(stem) else ""
            # the names the log takes beside it: FILE.lock, FILE.1 ... FILE.<log_backups>
            # (never FILE.0, FILE.01 or a number past the backups: those are left alone)
            rotated = {str(n) for n in range(1, self.log_backups + 1)}
            if suffix == "lock" or suffix in rotated:
                raise OptionError(
                    "--check-log",
                    f"{log}: its file {name} beside it is the --data folder {self.data} "
                    "or holds it: write the check log elsewhere",
                )

    def load_policy(self) -> Policy:
        """The scoring policy of the file ``policy`` (the default policy without one)."""
        return load_policy(self.policy)

    def open_graph(self) -> GraphBackend:
        """Open the graph the configuration names (the embedded backend over ``data``,
        or Neo4j, every call of which has the deadline ``store_timeout``)."""
        if self.neo4j_uri:
            from ..neo4j.store import open_neo4j

            settings = Neo4jSettings.from_env(
                self.neo4j_uri, self.neo4j_user, None, self.neo4j_database
            )
            assert settings is not None  # a URI is given
            return open_neo4j(settings, timeout=self.store_timeout)
        if self.data is not None and self.embedded == "memory":
            return MemoryBackend(read_dataset(self.data, region=self.region))
        return open_backend(self.data, None, region=self.region)

    def to_env(self) -> str:
        """The configuration as the value of :data:`CONFIG_ENV` (JSON)."""
        return json.dumps({**asdict(self), "check_log": str(self.check_log)})

    @classmethod
    def from_env(cls, value: str) -> "ServeConfig":
        """The configuration :meth:`to_env` wrote."""
        raw: dict[str, Any] = json.loads(value)
        return cls(**{**raw, "cors_origins": tuple(raw.get("cors_origins", ()))})
