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
  or adding a second form of it), or anything inside a Parquet table's folder. Any
  other file in the data folder (``DATA/audit.csv``) is not read by the loader and is
  allowed.

:func:`check_not_inside` refuses more, for a file written before a folder is copied
(``link --save-settings``): any path in a folder, whatever its name, and the folder
itself. :func:`check_parent_folder` refuses an output file whose folder is missing.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from .contract import SUFFIXES, TABLES

__all__ = ["TABLE_FILE_NAMES", "check_not_inside", "check_outside", "check_parent_folder"]

#: the names the loader reads in a data folder (``people.csv``, ``loans.parquet``, ...)
TABLE_FILE_NAMES = frozenset(f"{table}{suffix}" for table in TABLES for suffix in SUFFIXES)


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
    read as one of its tables (:data:`TABLE_FILE_NAMES`). Raises
    :class:`~spillover.errors.OptionError`; symbolic links are followed.

    >>> check_outside("runs/r1", "data")
    >>> check_outside("data/audit.csv", "data", folder=False)
    >>> for out, folder in (("data/r1", True), ("data/loans.csv", False)):
    ...     try:
    ...         check_outside(out, "data", folder=folder)
    ...     except OptionError as refused:
    ...         print(refused.reason)
    data/r1 is inside the --data folder data: write to a new folder outside it
    data/loans.csv would be read as a table of the --data folder data: write it outside it
    """
    where, base = Path(out).resolve(), Path(data).resolve()
    if folder:
        problem = _inside(where, base, data, data_option)
        if problem is None and base.is_relative_to(where):
            problem = f"holds the {data_option} folder {data}"
        if problem is not None:
            raise OptionError(option, f"{out} {problem}: write to a new folder outside it")
        return
    if where != base and where.is_relative_to(base):
        table = where.relative_to(base).parts[0]
        if table in TABLE_FILE_NAMES:
            raise OptionError(
                option,
                f"{out} would be read as a table of the {data_option} folder {data}: "
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
    (``folder`` as given): it is the folder, or lies inside it; None when neither."""
    if where == base:
        return f"is the {folder_option} folder"
    if where.is_relative_to(base):
        return f"is inside the {folder_option} folder {folder}"
    return None
