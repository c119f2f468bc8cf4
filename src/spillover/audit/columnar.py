"""The audit file written column by column: the same bytes as :func:`spillover.audit.batch.write_audit`
writes row by row (``csv.writer`` with :func:`~spillover.files.write.neutralize`, or one
``json.dumps(row, ensure_ascii=False)`` a line), made with whole-column Arrow operations.

Every cell is formatted by a rule that gives the row writer's text: text cells that need
no quoting, escaping or neutralizing (nearly all) are used as they are, the few that do go
through the row writer's own functions; numbers are formatted once per distinct value
with Python's ``repr``. Rows are joined a slice at a time, so the text of the whole file
is never held at once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..facts import fixedtext
from ..files.write import FORMULA_TRIGGERS, LEADING_BLANKS, atomic_file, neutralize
from .rows import AUDIT_COLUMNS

__all__ = ["SLICE_ROWS", "csv_cells", "json_cells", "write_columns"]

#: rows formatted and written at a time
SLICE_ROWS = 1 << 16

#: a text cell :func:`neutralize` may change: a leading quote, or a formula trigger after
#: the blanks a spreadsheet skips (the others are returned as they are)
_MAY_NEUTRALIZE = (
    "^(?:'|["
    + "".join(f"\\x{{{ord(c):x}}}" for c in LEADING_BLANKS)
    + "]*["
    + "".join(sorted(f"\\x{{{ord(c):x}}}" for c in FORMULA_TRIGGERS))
    + "])"
)
#: a text cell :func:`neutralize` keeps as it is although it starts with a trigger: a
#: plain number (its ``_PLAIN_NUMBER``, ASCII digits: a cell with other digits is left
#: to :func:`neutralize` itself), such as a phone number in E.164 form
_PLAIN_ASCII_NUMBER = "^[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
#: a CSV cell ``csv.writer`` quotes (excel dialect, minimal quoting)
_CSV_QUOTED = '[,"\r\n]'


def _byte_table(chars: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[[c.encode("utf-8")[0] for c in chars]] = True
    return table


#: the first bytes (UTF-8) of the cells :data:`_MAY_NEUTRALIZE` may match: the regular
#: expression is run only over cells starting with one of them
_MAY_NEUTRALIZE_FIRST = _byte_table("'" + LEADING_BLANKS + "".join(FORMULA_TRIGGERS))
#: the bytes of :data:`_CSV_QUOTED` (ASCII: a byte of a cell's UTF-8 is one of them only
#: where the character is)
_CSV_QUOTED_BYTES = b',"\r\n'
#: a JSON string ``json.dumps(ensure_ascii=False)`` escapes
_JSON_ESCAPED = '["\\\\\\x00-\\x1f]'


def _patched(
    cells: pa.Array,
    where: str,
    fix: Callable[[str], str],
    unless: str | None = None,
    among: np.ndarray | None = None,
) -> pa.Array:
    """``cells`` with the values matching the regex ``where`` (and not ``unless``, whose
    values ``fix`` returns as they are) replaced by ``fix(value)``; ``among`` (bools): the
    only cells that may match (the others are not searched), None: all."""
    rows = np.arange(len(cells)) if among is None else np.flatnonzero(among)
    if not len(rows):
        return cells
    some = cells if among is None else cells.take(pa.array(rows))
    hit = pc.fill_null(pc.match_substring_regex(some, where), False)
    if unless is not None and pc.any(hit).as_py():
        kept = pc.fill_null(pc.match_substring_regex(some, unless), False)
        hit = pc.and_(hit, pc.invert(kept))
    if not pc.any(hit).as_py():
        return cells
    rows = rows[hit.to_numpy(zero_copy_only=False)]
    fixed = pa.array([fix(v) for v in cells.take(pa.array(rows)).to_pylist()], pa.string())
    mask = np.zeros(len(cells), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(cells, pa.array(mask), fixed)


def _first_byte_in(cells: pa.Array, table: np.ndarray) -> np.ndarray | None:
    """Which cells start with a byte of ``table``; None: not a plain string column."""
    found = fixedtext.edges(cells)
    if found is None:
        return None
    first, _, empty = found
    out = np.zeros(len(cells), dtype=bool)
    out[~empty] = table[first]
    return out


def _numbers(values: pa.Array, missing: str) -> pa.Array:
    """Number cells as the row writers write them (``repr`` of the Python value, per
    distinct value); ``missing`` for null."""
    coded = pc.dictionary_encode(values)
    texts = [repr(v) for v in coded.dictionary.to_pylist()]
    where = pc.fill_null(coded.indices.cast(pa.int32()), len(texts))  # null: the last text
    return pa.array([*texts, missing], pa.string()).take(where)


def _is_text(values: pa.Array) -> bool:
    return bool(pa.types.is_string(values.type) or pa.types.is_null(values.type))


def csv_cells(values: pa.Array) -> pa.Array:
    """One column's CSV cells, as ``csv.writer`` writes ``neutralize(value)`` ("" for null)."""
    if not _is_text(values):
        return _numbers(values, "")
    cells = pc.fill_null(values.cast(pa.string()), "")
    may = _first_byte_in(cells, _MAY_NEUTRALIZE_FIRST)
    cells = _patched(cells, _MAY_NEUTRALIZE, neutralize, unless=_PLAIN_ASCII_NUMBER, among=may)
    quoted = fixedtext.rows_with_bytes(cells, _CSV_QUOTED_BYTES)
    return _patched(cells, _CSV_QUOTED, lambda v: '"' + v.replace('"', '""') + '"', among=quoted)


def json_cells(values: pa.Array) -> pa.Array:
    """One column's JSON values, as ``json.dumps(value, ensure_ascii=False)`` writes them."""
    if not _is_text(values):
        return _numbers(values, "null")
    text = values.cast(pa.string())
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    quoted = pc.if_else(
        pc.fill_null(pc.match_substring_regex(text, _JSON_ESCAPED), False),
        _patched(text, _JSON_ESCAPED, lambda v: json.dumps(v, ensure_ascii=False)),
        quoted,
    )
    return pc.fill_null(quoted, "null")


def _utf8(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of string cells put end to end (a view of the column's data)."""
    if not len(lines):
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :]
    data = lines.buffers()[2]
    return memoryview(data)[offsets[0] : offsets[len(lines)]]


def _csv_lines(part: Mapping[str, pa.Array]) -> pa.Array:
    cells = [csv_cells(part[c]) for c in AUDIT_COLUMNS]
    return pc.binary_join_element_wise(
        *cells[:-1], pc.binary_join_element_wise(cells[-1], "\r\n", ""), ","
    )


def _json_lines(part: Mapping[str, pa.Array]) -> pa.Array:
    pieces: list[pa.Array | str] = []
    for i, c in enumerate(AUDIT_COLUMNS):
        pieces += ["{" if i == 0 else ", ", json.dumps(c) + ": ", json_cells(part[c])]
    return pc.binary_join_element_wise(*pieces, "}\n", "")


def write_columns(columns: Mapping[str, pa.Array], out: Path) -> dict[str, int]:
    """Write the audit columns to ``out`` (``.csv`` or ``.jsonl``), atomically; returns
    the rows per verdict. The caller checks ``out`` (:func:`spillover.audit.batch.write_audit`)."""
    n = len(columns[AUDIT_COLUMNS[0]])
    lines = _csv_lines if out.suffix == ".csv" else _json_lines
    with atomic_file(out) as handle:
        if out.suffix == ".csv":
            handle.write(",".join(AUDIT_COLUMNS) + "\r\n")
        handle.flush()  # (then the lines' UTF-8 bytes go to the file as they are)
        raw = cast(BinaryIO, cast(io.TextIOWrapper, handle).buffer)
        for start in range(0, n, SLICE_ROWS):
            part = {c: columns[c].slice(start, SLICE_ROWS) for c in AUDIT_COLUMNS}
            raw.write(_utf8(lines(part)))
    counts = pc.value_counts(columns["verdict"]).to_pylist() if n else []
    return {str(c["values"]): int(c["counts"]) for c in sorted(counts, key=lambda c: c["values"])}
