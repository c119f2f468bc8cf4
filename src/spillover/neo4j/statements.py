"""The Cypher statements in ``spillover/neo4j/cypher/*.cypher``, loaded once through importlib.resources.

Every statement takes ``$parameters``; no Cypher is ever built from strings.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["cypher", "cypher_folder", "statements"]


@cache
def cypher(name: str) -> str:
    """The text of ``cypher/NAME.cypher`` (comments kept; Neo4j ignores them)."""
    return (
        resources.files("spillover.neo4j")
        .joinpath(f"cypher/{name}.cypher")
        .read_text(encoding="utf-8")
    )


def cypher_folder(folder: str) -> dict[str, str]:
    """The text of every ``cypher/FOLDER/NAME.cypher`` by NAME, in name order (e.g. the
    saved investigation queries in ``cypher/investigate``); ``cypher("FOLDER/NAME")``
    reads one of them."""
    files = resources.files("spillover.neo4j").joinpath(f"cypher/{folder}")
    return {
        f.name.removesuffix(".cypher"): f.read_text(encoding="utf-8")
        for f in sorted(files.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".cypher")
    }


def statements(name: str) -> list[str]:
    """The ``;``-separated statements of a multi-statement file (the schema), without comments."""
    lines = [line for line in cypher(name).splitlines() if not line.lstrip().startswith("//")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
