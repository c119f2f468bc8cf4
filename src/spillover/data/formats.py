"""Writing a data folder's tables as CSV, JSONL or Parquet (docs/contract.md §1).

The writers (``spillover synth``) produce CSV; :func:`convert_folder` then rewrites
every table of the folder in another form, so that all forms hold the same values:

- ``jsonl``: one object per row, a missing cell left out, booleans as JSON
  ``true``/``false`` and amounts as JSON numbers, everything else as text;
- ``parquet``: one ``NAME.parquet`` file per table with native column types (dates
  ``date32``, booleans ``bool``, amounts ``float64``, the rest ``string``; a missing
  cell is a null). Columns the contract does not know stay text.

Only the tables of the data contract (:data:`spillover.data.contract.TABLES`) are converted;
other files (``ground_truth/``) are left as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import csv

from ..errors import SpilloverError
from .contract import CSV, FALSE, PARQUET, TABLES, TRUE, field_kinds

__all__ = ["FORMATS", "check_format", "convert_folder"]

#: the forms a data folder can be written in (the first is the default)
FORMATS = ("csv", "jsonl", "parquet")

_ARROW_TYPES = {
    "text": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "number": pa.float64(),
}


def check_format(name: str) -> str:
    """``name`` if it is one of :data:`FORMATS`, else a :class:`SpilloverError`.

    >>> check_format("parquet")
    'parquet'
    """
    if name not in FORMATS:
        raise SpilloverError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return name


def _typed(path: Path, kinds: dict[str, str]) -> pa.Table:
    """A CSV table read with the types of its fields (written by spillover: plain values)."""
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split(",")
    types = {name: _ARROW_TYPES[kinds.get(name, "text")] for name in header}
    return csv.read_csv(
        path,
        convert_options=csv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            null_values=[""],
            true_values=[TRUE],
            false_values=[FALSE],
        ),
        read_options=csv.ReadOptions(block_size=1 << 24),
    )


def _write_jsonl(table: pa.Table, out: Path) -> None:
    names = table.column_names
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        for batch in table.to_batches(max_chunksize=65536):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                row = {
                    k: (v.isoformat() if hasattr(v, "isoformat") else v)
                    for k, v in zip(names, values, strict=True)
                    if v is not None
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def convert_folder(
    folder: Path, format: str, progress: Callable[[str, int, int], None] | None = None
) -> None:
    """Rewrite every contract table ``NAME.csv`` of ``folder`` as ``NAME.jsonl`` or
    ``NAME.parquet`` (``format``; ``csv`` leaves the folder as it is).

    >>> import tempfile, pathlib
    >>> from spillover.data.exact import load_folder
    >>> from spillover.synth.generate import generate
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = generate(50, 1, pathlib.Path(tmp) / "csv")
    ...     _ = generate(50, 1, pathlib.Path(tmp) / "pq", format="parquet")
    ...     load_folder(pathlib.Path(tmp) / "csv") == load_folder(pathlib.Path(tmp) / "pq")
    True
    """
    check_format(format)
    if format == "csv":
        return
    present = [t for t in TABLES if (folder / f"{t}{CSV}").is_file()]
    for done, table in enumerate(present):
        if progress:
            progress(f"write {format}", done, len(present))
        source = folder / f"{table}{CSV}"
        data = _typed(source, field_kinds(TABLES[table]))
        if format == "parquet":
            pq.write_table(data, folder / f"{table}{PARQUET}")
        else:
            _write_jsonl(data, folder / f"{table}.jsonl")
        source.unlink()
    if progress:
        progress(f"write {format}", len(present), len(present))
