"""Errors raised by spillover. The CLI turns every one of them into a one-line message.

Messages never carry a full resident ID number: :class:`Problem` and the CLI mask
anything shaped like one (first 3 and last 2 characters kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from .facts.resident_id import mask_ids_in

__all__ = [
    "BackendUnavailable",
    "DataError",
    "NotFoundError",
    "PolicyError",
    "Problem",
    "SpilloverError",
    "SpilloverWarning",
    "UnfinishedIngest",
    "UsageProblem",
]


class SpilloverError(Exception):
    """Base class of every error a user can cause (bad data, unknown ids, unreachable server).

    Its text is masked like a :class:`Problem`'s, wherever it is shown (the CLI, the
    check service's error bodies).
    """

    def __str__(self) -> str:
        return mask_ids_in(super().__str__())


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect in the input: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", mask_ids_in(self.message))

    def __str__(self) -> str:
        # the file's path is masked too (a data folder may be named by an ID number);
        # ``file`` itself stays the path, for the code that reads it
        return mask_ids_in(f"{self.file}:{self.line}: {self.field}: {self.message}")


class DataError(SpilloverError):
    """A data folder was refused. ``problems`` lists the defects shown (up to a cap per
    file); ``total`` counts every defect found, shown or not."""

    def __init__(
        self,
        problems: list[Problem],
        truncated: bool = False,
        total: int | None = None,
        cap: int | None = None,
    ) -> None:
        self.cap = cap
        self.problems = list(problems)
        self.total = max(total if total is not None else 0, len(self.problems))
        self.truncated = truncated or self.total > len(self.problems)
        lines = [str(p) for p in self.problems]
        if self.truncated:
            lines.append(self.more_line())
        super().__init__("\n".join(lines))

    def summary(self) -> str:
        """One line: ``the data was refused (N problem(s))``, and past the cap how many are shown."""
        shown = "" if not self.truncated else f"; only the first {len(self.problems)} are shown"
        return f"the data was refused ({self.total} problem(s){shown})"

    def more_line(self) -> str:
        """The last line of the message when problems were left out: how many, and the cap."""
        per_file = f": at most {self.cap} per file are listed" if self.cap else ""
        return f"... {self.total - len(self.problems)} more problem(s) not shown (cap reached{per_file})"


class OptionError(SpilloverError):
    """An option or argument given by the caller is invalid (not the data's fault)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.reason = message
        super().__init__(f"{option}: {message}")


class UsageProblem(SpilloverError):
    """Options that do not go together (``--write-back`` with ``--engine spark``, ...):
    the command line shows it as a usage error, with the text unchanged."""


class NotFoundError(SpilloverError):
    """An entry, platform or subject named by the user is not in the graph."""


class PolicyError(SpilloverError):
    """A scoring policy file is malformed or breaks a property every policy must keep."""


class BackendUnavailable(SpilloverError):
    """The graph store cannot be reached or refused the credentials."""


class SpilloverWarning(UserWarning):
    """Something a user should know about an answer that is still given (a Python warning
    to a library caller; the CLI prints it as a ``spillover: note:`` line)."""


class UnfinishedIngest(SpilloverWarning):
    """The graph store's last ingest has not finished (it is running, or it was cut
    short): the graph may mix the rows of two folders (docs/graph-model.md)."""
