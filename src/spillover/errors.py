"""Errors raised by spillover. The CLI turns every one of them into a one-line message."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BackendUnavailable",
    "DataError",
    "NotFoundError",
    "PolicyError",
    "Problem",
    "SpilloverError",
]


class SpilloverError(Exception):
    """Base class of every error a user can cause (bad data, unknown ids, unreachable server)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect in the input: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class DataError(SpilloverError):
    """A data folder was refused. ``problems`` lists every defect found (up to a cap)."""

    def __init__(self, problems: list[Problem], truncated: bool = False) -> None:
        self.problems = list(problems)
        self.truncated = truncated
        lines = [str(p) for p in self.problems]
        if truncated:
            lines.append("... more problems not shown (cap reached)")
        super().__init__("\n".join(lines))


class NotFoundError(SpilloverError):
    """An entry, platform or subject named by the user is not in the graph."""


class PolicyError(SpilloverError):
    """A scoring policy file is malformed or breaks a property every policy must keep."""


class BackendUnavailable(SpilloverError):
    """The graph store cannot be reached or refused the credentials."""
