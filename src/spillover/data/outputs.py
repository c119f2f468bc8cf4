"""Where an output may go: never where it would change a data folder that is read.

A command that reads a data folder and writes an output (``remedy --apply``, ``simulate``,
``changes``, ``export``, ``link``, ``audit``, ``neighborhood``, ``ingest --bulk --files``,
``serve --check-log``) must leave that folder as it was. :func:`check_outside` refuses,
before anything is read or written:

- an output **folder** that is the data folder, lies inside it or holds it (a folder
  written inside the data folder becomes part of it; one named after a table,
  ``DATA/loans.jsonl``, makes every later command refuse the folder);
- an output **file** that the loader would take for one of the folder's tables: a
  ``TABLE.csv``, ``TABLE.jsonl`` or ``TABLE.parquet`` directly in it (replacing a table,
  or adding a second form of it), or anything inside a Parquet table's folder. The
  name is compared ignoring case (``str.casefold``), on every system: a file system
  that ignores case (macOS, Windows) reads ``DATA/People.csv`` as ``people.csv``;
  where case counts (Linux) the loader would not read it, and it is refused all the
  same. Any other file in the data folder (``DATA/audit.csv``) is not read by the
  loader and is allowed.

Whether a path is the data folder or lies inside it is asked of the file system where the
folder exists (:func:`within`): ``DATA/x`` is inside ``data`` where the file system
ignores case (``Path.resolve`` keeps the case typed there), not where it does not.

:func:`check_not_inside` refuses more, for a file written before a folder is copied
(``link --save-settings``): any path in a folder, whatever its name, and the folder
itself. :func:`check_parent_folder` refuses an output file whose folder is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OptionError
from .contract import SUFFIXES, TABLES

__all__ = [
    "TABLE_FILE_NAMES",
    "check_not_inside",
    "check_outside",
    "check_parent_folder",
    "table_file_name",
    "within",
]

#: the names the loader reads in a data folder (``people.csv``, ``loans.parquet``, ...)
TABLE_FILE_NAMES = frozenset(f"{table}{suffix}" for table in TABLES for suffix in SUFFIXES)
#: each of :data:`TABLE_FILE_NAMES` by its name casefolded
_BY_FOLDED = {name.casefold(): name for name in TABLE_FILE_NAMES}


def table_file_name(name: str) -> str | None:
    """The table file (one of :data:`TABLE_FILE_NAMES`) that a file or folder named
    ``name`` in a data folder would be read as, its case ignored (a file system that
    ignores case reads one for the other); None when none.

    >>> table_file_name("loans.csv"), table_file_name("People.CSV"), table_file_name("audit.csv")
    ('loans.csv', 'people.csv', None)
    """
    return _BY_FOLDED.get(name.casefold())


def within(path: Path, folder: Path) -> tuple[str, ...] | None:
    """The parts of the resolved path ``path`` below the resolved folder ``folder``:
    ``()`` when it is the folder, None when it lies outside it. Where ``folder`` exists,
    the file system decides: a path through the same folder under another name (``DATA``
    for ``data`` where the file system ignores case, which ``Path.resolve`` does not
    canonicalise) is in it too; where case counts, ``DATA`` is another folder.

    >>> within(Path("/srv/data/loans.csv"), Path("/srv/data"))
    ('loans.csv',)
    >>> within(Path("/srv/data"), Path("/srv/data")), within(Path("/srv/runs"), Path("/srv/data"))
    ((), None)
    """
    if path.is_relative_to(folder):
        return path.relative_to(folder).parts
    try:
        key = _identity(folder)
    except OSError:  # no such folder: only the names can say
        return None
    for above in (path, *path.parents):
        try:
            same = _identity(above) == key
        except OSError:  # not there (yet)
            continue
        if same:
            return path.relative_to(above).parts
    return None


def _identity(path: Path) -> tuple[int, int]:
    """What the file system knows ``path`` by (as ``os.path.samefile`` compares)."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def check_outside(
    out: str | Path,
    data: str | Path,
    *,
    option: str = "--out",
    data_option: str = "--data",
    folder: bool = True,
) -> None:
    """Refuse the output ``out`` (the option ``option``) where writing it would change the
    data folder ``data`` (the option ``data_option``): with ``folder``, an output folder
    that is ``data``, lies inside it or holds it; else an output file the loader would
    read as one of its tables (:data:`TABLE_FILE_NAMES`, its name compared ignoring case
    on every system: :func:`table_file_name`; where case counts, the loader would not
    read ``DATA/People.csv``, but it is refused all the same). Raises
    :class:`~spillover.errors.OptionError`; symbolic links are followed, and a path
    through the data folder under another name is in it (:func:`within`).

    >>> check_outside("runs/r1", "data")
    >>> check_outside("data/audit.csv", "data", folder=False)
    >>> for out, folder in (("data/r1", True), ("data/loans.csv", False)):
    ...     try:
    ...         check_outside(out, "data", folder=folder)
    ...     except OptionError as refused:
    ...         print(refused.reason)
    data/r1 is inside the --data folder data: write to a new folder outside it
    data/loans.csv would be read as a table of the --data folder data: write it outside it
    >>> try:
    ...     check_outside("data/People.CSV", "data", folder=False)
    ... except OptionError as refused:
    ...     print(refused.reason)
    data/People.CSV would be read as a table of the --data folder data (people.csv, where file names ignore case): write it outside it
    """
    where, base = Path(out).resolve(), Path(data).resolve()
    if folder:
        problem = _inside(where, base, data, data_option)
        if problem is None and within(base, where) is not None:
            problem = f"holds the {data_option} folder {data}"
        if problem is not None:
            raise OptionError(option, f"{out} {problem}: write to a new folder outside it")
        return
    name = (within(where, base) or ("",))[0]  # what lies directly in the data folder
    table = table_file_name(name)
    if table is not None:
        typed = "" if name == table else f" ({table}, where file names ignore case)"
        raise OptionError(
            option,
            f"{out} would be read as a table of the {data_option} folder {data}{typed}: "
            "write it outside it",
        )


def check_not_inside(
    path: str | Path,
    folder: str | Path,
    *,
    option: str,
    folder_option: str = "--data",
) -> None:
    """Refuse the output file ``path`` (the option ``option``) when it is the folder
    ``folder`` (the option ``folder_option``) or lies anywhere inside it, whatever its
    name (:func:`check_outside` refuses only a table's name there). Raises
    :class:`~spillover.errors.OptionError`; symbolic links are followed.

    >>> check_not_inside("runs/model.json", "data", option="--save-settings")
    >>> try:
    ...     check_not_inside("data/model.json", "data", option="--save-settings")
    ... except OptionError as refused:
    ...     print(refused.reason)
    data/model.json is inside the --data folder data: write it outside it
    """
    problem = _inside(Path(path).resolve(), Path(folder).resolve(), folder, folder_option)
    if problem is not None:
        raise OptionError(option, f"{path} {problem}: write it outside it")


def check_parent_folder(path: str | Path, *, option: str = "--out") -> None:
    """Refuse the output file ``path`` (the option ``option``) when its folder does not
    exist or is a file (:class:`~spillover.errors.OptionError`), before anything is read.

    >>> try:
    ...     check_parent_folder("missing/view.html")
    ... except OptionError as refused:
    ...     print(refused.reason)
    missing does not exist
    """
    parent = Path(path).parent
    if not parent.is_dir():
        missing = "is not a folder" if parent.exists() else "does not exist"
        raise OptionError(option, f"{parent} {missing}")


def _inside(where: Path, base: Path, folder: str | Path, folder_option: str) -> str | None:
    """What is wrong with the resolved path ``where`` in the resolved folder ``base``
    (``folder`` as given, :func:`within`): it is the folder, or lies inside it; None when
    neither."""
    parts = within(where, base)
    if parts == ():
        return f"is the {folder_option} folder"
    if parts is not None:
        return f"is inside the {folder_option} folder {folder}"
    return None
