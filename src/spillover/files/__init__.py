"""Writing and reading files: atomic outputs (no half-written file is ever left), CSV cell neutralizing, TOML."""

from .toml import parse_toml
from .write import atomic_file, atomic_folder, neutralize

__all__ = [
    "atomic_file",
    "atomic_folder",
    "neutralize",
    "parse_toml",
]
