"""Parquet tables of a data folder (docs/contract.md §1): where their rows are and which
column types they may have.

A table is ``NAME.parquet``: one Parquet file, or a folder of part files as Apache
Spark (``df.write.parquet("DIR/NAME.parquet")``) and pyarrow's dataset writer make
it. The parts are the folder's ``*.parquet`` files, read in the order of their names;
names starting with ``_`` or ``.`` (Spark's ``_SUCCESS``, checksum files) are skipped,
other files are ignored, and a sub-folder (a partitioned dataset) is refused.

Columns are text (``string``), or of the native type of their field: ``date32`` /
``date64`` for dates, ``bool`` for booleans, integers, floating point or decimals for
amounts; a column of nulls only is a column of missing values. Any other type is
refused for the whole column. Both loaders use these rules: the exact one
(:mod:`spillover.data.exact`) reads the values as Python objects, the fast one
(:mod:`spillover.data.fast`) turns each column into the text cells of the CSV form
(:func:`as_text`) and checks them as it checks a CSV table.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "SUFFIX",
    "PartsError",
    "as_text",
    "column_problem",
    "decoded",
    "is_table_path",
    "parts",
    "type_refused",
]

#: the file name suffix of a Parquet table (a file or a folder of parts)
SUFFIX = ".parquet"

_EXPECTED = {
    "text": "text (string)",
    "bool": "bool or text",
    "date": "a date (date32) or ISO text",
    "number": "a number (integer, floating point or decimal) or text",
}


class PartsError(Exception):
    """A Parquet table whose parts cannot be listed; ``path`` is the file to name."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def is_table_path(path: Path) -> bool:
    """``NAME.parquet`` is a Parquet table: a regular file or a folder (of parts)."""
    return path.is_file() or path.is_dir()


def parts(path: Path) -> list[Path]:
    """The Parquet files of the table ``path``: itself, or the parts of the folder in name order.

    Raises :class:`PartsError` for a folder that holds a sub-folder or no part at all.
    """
    if not path.is_dir():
        return [path]
    found = []
    for child in sorted(path.iterdir(), key=lambda p: p.name):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_dir():
            raise PartsError(
                child,
                f"{path.name} holds the sub-folder {child.name}: partitioned Parquet "
                "folders are not read (write the table without partitionBy)",
            )
        if child.name.endswith(SUFFIX) and child.is_file():
            found.append(child)
    if not found:
        raise PartsError(path, f"the folder {path.name} holds no Parquet part (*{SUFFIX})")
    return found


def decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column (a pandas categorical) as its plain values."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def column_problem(kind: str, dtype: pa.DataType) -> str | None:
    """``None`` when a column of the Arrow type ``dtype`` may hold a field of ``kind``
    (``text``, ``bool``, ``date``, ``number``: :func:`spillover.data.rows.field_kinds`),
    else what is wrong.

    >>> column_problem("date", pa.date32()) is None, column_problem("text", pa.string()) is None
    (True, True)
    >>> column_problem("date", pa.int64())
    'column type int64 is not accepted; expected a date (date32) or ISO text'
    """
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if _is_text(dtype) or pa.types.is_null(dtype):
        return None
    if kind == "bool" and pa.types.is_boolean(dtype):
        return None
    if kind == "date" and (pa.types.is_date32(dtype) or pa.types.is_date64(dtype)):
        return None
    if kind == "number" and (
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    ):
        return None
    return type_refused(kind, str(dtype))


def type_refused(kind: str, type_name: str) -> str:
    """What is wrong with a column of the type ``type_name`` that may not hold a field of
    ``kind`` (the one wording, the Spark audit's too).

    >>> type_refused("bool", "bigint")
    'column type bigint is not accepted; expected bool or text'
    """
    return f"column type {type_name} is not accepted; expected {_EXPECTED[kind]}"


def as_text(column: pa.ChunkedArray) -> pa.Array:
    """An accepted column as the cells of its CSV form: text, ``""`` for a missing value.

    Dates become ISO text, booleans ``true``/``false``, numbers their shortest text that
    reads back as the same value (``3000``, ``1250.5``; odd ones, ``1e+20``, are left to
    the exact loader by the fast path's checks).

    >>> as_text(pa.chunked_array([pa.array([True, None])])).to_pylist()
    ['true', '']
    >>> import datetime
    >>> as_text(pa.chunked_array([pa.array([datetime.date(2023, 3, 2)])])).to_pylist()
    ['2023-03-02']
    """
    column = decoded(column)
    if pa.types.is_null(column.type):
        return pa.array([""] * len(column), pa.string())
    if pa.types.is_floating(column.type):  # float32 1.1 is 1.100000023841858, as in Python
        column = pc.cast(column, pa.float64())
    return pc.cast(column, pa.string()).combine_chunks().fill_null("")
