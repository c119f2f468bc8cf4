"""Graph stores: the in-memory networkx graph (default) and Neo4j."""

from .base import GraphBackend
from .memory import MemoryBackend

__all__ = ["GraphBackend", "MemoryBackend"]
