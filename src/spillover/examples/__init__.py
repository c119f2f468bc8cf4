"""Example data folders shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["jiang_case_path", "jiang_records_path"]


def jiang_case_path() -> Path:
    """The data folder of the seed case: Jiang, Xu Yan, eight lenders, a data broker, three banks."""
    return Path(str(resources.files("spillover").joinpath("examples/jiang_case")))


def jiang_records_path() -> Path:
    """The seed case with platform records: the banks' entries on Jiang come through a
    phone-only match of the data broker's record for Xu Yan (``matches.csv``)."""
    return Path(str(resources.files("spillover").joinpath("examples/jiang_records")))
