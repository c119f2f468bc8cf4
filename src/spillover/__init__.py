"""spillover: trace how blacklist status spreads from defaulters to unrelated people.

Library first::

    from spillover import open_folder, explain_entry
    backend = open_folder("examples/jiang_case")
    explanation = explain_entry(backend, "E-QT-J")
    explanation.contamination, explanation.verdict
"""

from __future__ import annotations

from . import examples
from .backends import GraphBackend, MemoryBackend
from .connect import open_backend, open_folder, read_columns, read_dataset
from .data.exact import load_folder
from .engines.search import (
    Explanation,
    ExplanationPath,
    Step,
    check,
    explain,
    explain_all,
    explain_entries,
    explain_entry,
)
from .errors import (
    BackendUnavailable,
    DataError,
    NotFoundError,
    PolicyError,
    Problem,
    SpilloverError,
)
from .neo4j.settings import Neo4jSettings
from .policy import Policy, default_policy, load_policy
from .rules import Verdict
from .version import __version__

__all__ = [
    "BackendUnavailable",
    "DataError",
    "Explanation",
    "ExplanationPath",
    "GraphBackend",
    "MemoryBackend",
    "Neo4jSettings",
    "NotFoundError",
    "Policy",
    "PolicyError",
    "Problem",
    "SpilloverError",
    "Step",
    "Verdict",
    "__version__",
    "check",
    "default_policy",
    "examples",
    "explain",
    "explain_all",
    "explain_entries",
    "explain_entry",
    "load_folder",
    "load_policy",
    "open_backend",
    "open_folder",
    "read_columns",
    "read_dataset",
]
