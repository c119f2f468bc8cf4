"""Output files: written atomically, and CSV reports safe to open in a spreadsheet.

Two rules for everything spillover writes (docs/contract.md §4, docs/privacy.md):

- **Atomic.** A file (or a folder) is written under a unique temporary name in
  the same directory and renamed into place when complete. An error removes the
  temporary; a killed run can leave a hidden ``.NAME.*.part`` behind, but never
  a half-written ``NAME``, and a later run never reuses or trips over it (every
  run picks a fresh temporary name).
- **Formula-safe CSV reports.** A cell that a spreadsheet would run as a formula
  is neutralized by the OWASP rule: :func:`neutralize` prefixes it with a single
  quote. This applies to CSV written *for people to open* (the audit report).
  Data folders (``spillover synth``, ``spillover export``) are machine input read
  back by the loader and are written exactly, never neutralized
  (:func:`write_data_rows`: every cell reads back as written).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FORMULA_TRIGGERS",
    "LEADING_BLANKS",
    "atomic_file",
    "atomic_folder",
    "neutralize",
    "restore",
    "write_data_rows",
]

#: First characters that make a spreadsheet read a cell as a formula (OWASP: = + - @,
#: tab, carriage return; ASVS adds NUL), plus line feed and the full-width forms of
#: = + - @ that spreadsheets in East Asian locales may convert to their ASCII forms.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")

#: A plain number (``-1``, ``+8613957112345``, ``2.5e-3``): a spreadsheet reads it as
#: a number, never as a formula, so it is left as it is (see :func:`neutralize`).
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

#: Leading characters a spreadsheet may skip before it looks for a formula.
LEADING_BLANKS = " \u00a0\u3000"


def neutralize(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (the OWASP rule).

    A text cell whose first character (after any spaces) is one of
    :data:`FORMULA_TRIGGERS` gets a single quote in front: ``=HYPERLINK("http://x")``
    becomes ``'=HYPERLINK("http://x")``, ``-2+3`` becomes ``'-2+3``. Exceptions:

    - a text cell that is a plain number (``-1``, ``+8613957112345``, ``1e-3``) is
      kept: a spreadsheet reads it as that number, there is no formula to run,
      and phone numbers in E.164 form stay exact for scripts reading the report;
    - non-text values (numbers, ``None``) are returned unchanged.

    A cell that itself begins with a quote gets one more, so that the spreadsheet
    shows the quote and :func:`restore` gives back every cell exactly.

    >>> neutralize('=HYPERLINK("http://x","y")')
    '\\'=HYPERLINK("http://x","y")'
    >>> neutralize("-2+3"), neutralize("-1"), neutralize("+8613957112345"), neutralize("jiang")
    ("'-2+3", '-1', '+8613957112345', 'jiang')
    """
    if not isinstance(value, str) or not value:
        return value
    if value[0] == "'":  # a spreadsheet would eat this quote: keep it, and restore() exact
        return "'" + value
    head = value.lstrip(LEADING_BLANKS)
    if not head or head[0] not in FORMULA_TRIGGERS:
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def restore(cell: str) -> str:
    """Undo :func:`neutralize` for a script that reads a neutralized CSV back.

    >>> restore("'=1+2"), restore("''quoted"), restore("-1")
    ('=1+2', "'quoted", '-1')
    """
    if cell.startswith("'") and neutralize(cell[1:]) == cell:
        return cell[1:]
    return cell


#: rows per block written by :func:`write_data_rows`
_DATA_ROWS_BLOCK = 4096


def write_data_rows(handle: IO[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write ``rows`` to ``handle`` as data-folder CSV (docs/contract.md §1): the excel
    dialect of :func:`csv.writer` with ``\\n`` line ends, and every cell that holds a
    line break, a quote or a comma quoted, so that the loader reads each cell back exactly.

    ``csv.writer`` quotes a line break only when it is in its line terminator: with
    ``\\n`` line ends a cell holding a bare carriage return (``"Lender\\rA"``) would be
    written unquoted and split its row. Such rows are written with ``\\r\\n`` as the
    quoting terminator and then ended by ``\\n``; every other row is written by the plain
    writer, byte for byte as before.

    >>> out = io.StringIO()
    >>> write_data_rows(out, [["id", "name"], ["A", "Lender\\rA"], ["B", "x,y"]])
    >>> out.getvalue()
    'id,name\\nA,"Lender\\rA"\\nB,"x,y"\\n'
    """
    block = io.StringIO()
    plain = csv.writer(block, lineterminator="\n")
    it = iter(rows)
    while batch := list(itertools.islice(it, _DATA_ROWS_BLOCK)):
        block.seek(0)
        block.truncate()
        plain.writerows(batch)
        text = block.getvalue()
        if "\r" in text:  # a cell holds a carriage return: only those rows differ
            text = "".join(_data_row_quoting_cr(row) for row in batch)
        handle.write(text)


def _data_row_quoting_cr(row: Sequence[Any]) -> str:
    """One row as :func:`write_data_rows` writes it, a cell holding ``\\r`` quoted."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue()[:-2] + "\n"


def _temp_name(target: Path) -> str:
    return f".{target.name}."


@contextmanager
def atomic_file(target: str | Path, *, newline: str | None = "") -> Iterator[IO[str]]:
    """Open a UTF-8 text file that appears at ``target`` only when the block succeeds.

    Writes go to a unique hidden temporary file in the same directory
    (``.NAME.XXXXXXXX.part``), which is renamed to ``target`` at the end (replacing
    an older ``target``) or removed if the block raises. The file gets the usual
    permissions of a new file (the umask), not the private mode of a temporary.
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=_temp_name(target), suffix=".part", text=True
    )
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with open(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: str | Path, *, private: bool = False) -> Iterator[Path]:
    """A new folder that appears at ``target`` only when the block succeeds.

    The block fills a unique hidden temporary folder next to ``target``
    (``.NAME.XXXXXXXX.part``); at the end it is renamed to ``target``, which must
    not exist or be an empty folder. If the block raises, the temporary folder is
    removed. The folder gets the usual permissions of a new folder (the umask), or
    with ``private`` those of its owner only (0700), for data about people.
    """
    target = Path(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_name(target), suffix=".part"))
    try:
        if not private:
            tmp.chmod(0o777 & ~_umask())
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    # The only portable way to read the umask is to set it; put it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
