"""spillover: trace how blacklist status spreads from defaulters to unrelated people.

Library first::

    from spillover import open_folder, explain_entry
    backend = open_folder("examples/jiang_case")
    explanation = explain_entry(backend, "E-QT-J")
    explanation.contamination, explanation.verdict
"""

from __future__ import annotations

from pathlib import Path

from . import examples
from .backends import GraphBackend, MemoryBackend
from .core import Explanation, ExplanationPath, Step, check, explain, explain_all, explain_entry
from .errors import (
    BackendUnavailable,
    DataError,
    NotFoundError,
    PolicyError,
    Problem,
    SpilloverError,
)
from .loader import load_folder
from .phones import DEFAULT_REGION
from .policy import Policy, default_policy, load_policy

__version__ = "0.1.0"


def open_folder(folder: str | Path, *, region: str = DEFAULT_REGION) -> MemoryBackend:
    """Load and validate a data folder into the embedded (networkx) backend."""
    from .fastload import read_dataset

    return MemoryBackend(read_dataset(folder, region=region))


__all__ = [
    "BackendUnavailable",
    "DataError",
    "Explanation",
    "ExplanationPath",
    "GraphBackend",
    "MemoryBackend",
    "NotFoundError",
    "Policy",
    "PolicyError",
    "Problem",
    "SpilloverError",
    "Step",
    "__version__",
    "check",
    "default_policy",
    "examples",
    "explain",
    "explain_all",
    "explain_entry",
    "load_folder",
    "load_policy",
    "open_folder",
]
