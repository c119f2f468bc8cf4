"""A data folder in and out: the contract's tables (docs/contract.md), the exact and the fast loader, Parquet, formats, pseudonymized export."""

from .contract import REQUIRED_TABLES, TABLES
from .exact import load_folder, read_table, table_paths
from .export import export_pseudonymized, generate_key
from .fast import read_columns, read_dataset
from .formats import convert_folder

__all__ = [
    "REQUIRED_TABLES",
    "TABLES",
    "convert_folder",
    "export_pseudonymized",
    "generate_key",
    "load_folder",
    "read_columns",
    "read_dataset",
    "read_table",
    "table_paths",
]
