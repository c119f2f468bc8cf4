"""What an explanation is: its steps, paths, score and codes (docs/contract.md §3).

:class:`Step` is one edge of a path (subject -> origin -> listing), made from a rule's
step kind by :func:`rule_step`; :class:`ExplanationPath` one path to an origin loan and
on to the listing; :class:`Explanation` every path of one entry, best first, and its score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ..facts.model import (
    Entry,
    Loan,
    Match,
    SubjectKind,
    split_ref,
)
from ..policy import Policy
from ..rules import (
    MATCHED_TO,
    StepKind,
    Verdict,
    factor,
)

__all__ = ["Explanation", "ExplanationPath", "Step", "rule_step", "step_match"]


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of an explanation, in the direction subject -> origin -> listing."""

    source: str
    rel: str
    target: str
    factor: float
    at: date | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ExplanationPath:
    """One path from the subject to an origin loan and on to the listing.

    ``responsibility`` is the product of the step factors (rounded); ``depth`` the
    loans on the tie (1: the origin is tied to the subject directly), written out as
    ``hops``.
    """

    origin: Loan
    responsibility: float
    depth: int
    steps: tuple[Step, ...]

    @property
    def hops(self) -> int:
        """``depth`` under its name in the JSON and the audit rows."""
        return self.depth


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an entry lists its subject: the paths found, best first, and what they score.

    ``contamination`` and ``verdict`` come from the best path (:func:`spillover.rules.score`);
    ``reason_codes`` are the best path's codes, or why no path was found; ``names`` holds
    display names of the nodes the explanation mentions.
    """

    entry: Entry
    contamination: float
    verdict: Verdict
    paths: tuple[ExplanationPath, ...]
    reason_codes: tuple[str, ...]
    policy: Policy
    names: dict[str, str] = field(default_factory=dict)
    #: the match of every platform record on the paths (the waterfall of each match step)
    matches: dict[str, Match] = field(default_factory=dict)
    #: every time-respecting path from the subject to an origin (each tie walk counted,
    #: as the remedy counts the paths it must break); ``paths`` holds the best one to each
    #: origin loan, up to ``max_paths`` of them
    paths_total: int = 0
    #: the origin loans some path reaches (``paths`` shows up to ``max_paths`` of them)
    origins_total: int = 0

    @property
    def best(self) -> ExplanationPath | None:
        """The path with the highest responsibility (None: no path, ``unexplained``)."""
        return self.paths[0] if self.paths else None


def step_match(step: Step, e: Explanation) -> Match | None:
    """The match behind a ``MATCHED_TO`` step (None for any other step)."""
    if step.rel != MATCHED_TO:
        return None
    for node in (step.source, step.target):
        kind, ident = split_ref(node)
        if kind == SubjectKind.RECORD.value:
            return e.matches.get(ident)
    return None


def rule_step(
    kind: StepKind,
    source: str,
    target: str,
    at: date | None,
    policy: Policy | None = None,
    role: str | None = None,
) -> Step:
    """A step of ``kind``: its name, factor and code as the rules give them."""
    return Step(
        source,
        kind.rel_for(role),
        target,
        1.0 if policy is None else factor(policy, kind),
        at,
        kind.code,
    )
