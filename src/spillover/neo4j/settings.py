"""Where the Neo4j database is: settings parsed without importing the driver.

:class:`Neo4jSettings` is re-exported by :mod:`spillover.neo4j.store`, which
opens the connection (and is the only module that imports the ``neo4j`` driver
for reads).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_DATABASE", "DEFAULT_USER", "Neo4jSettings"]

DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"


@dataclass(frozen=True, slots=True)
class Neo4jSettings:
    """Where the database is. ``from_env`` reads NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE."""

    uri: str
    user: str = DEFAULT_USER
    password: str = ""
    database: str = DEFAULT_DATABASE

    @classmethod
    def from_env(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Neo4jSettings | None:
        """Settings from the arguments given, the rest from ``env`` (default: the process
        environment); None when no URI is given either way."""
        env = os.environ if env is None else env
        uri = uri or env.get("NEO4J_URI")
        if not uri:
            return None
        return cls(
            uri=uri,
            user=user or env.get("NEO4J_USER", DEFAULT_USER),
            password=password if password is not None else env.get("NEO4J_PASSWORD", ""),
            database=database or env.get("NEO4J_DATABASE", DEFAULT_DATABASE),
        )
