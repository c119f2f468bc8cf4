"""Graph stores: the in-memory networkx graph (default) and Neo4j."""

from ..facts.graph import GraphBackend
from .memory import MemoryBackend

__all__ = ["GraphBackend", "MemoryBackend"]
