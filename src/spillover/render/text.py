"""Plain-text explanations that read well to a person (the CLI's ``--format text``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..engines.search import Explanation, ExplanationPath, Step, step_match
from ..facts.model import Match, split_ref
from ..rules import REASONS, ROLES, Verdict, kind_of, role_of
from ..text.safe import printable_lines
from ..text.wording import count, percent, score_text

__all__ = [
    "PLAIN",
    "StepWording",
    "amount_text",
    "explanation_text",
    "match_lines",
    "paths_shown",
    "step_text",
]


def amount_text(value: float | None) -> str:
    """A loan's amount as a step sentence ends it (``", 5,000"``; ``""`` when unknown)."""
    if value is None:
        return ""
    return f", {value:,.0f}" if value == int(value) else f", {value:,.2f}"


class StepWording(Protocol):
    """How a step sentence words its parts in one language (the dispute report's
    :class:`spillover.render.report.ReportText` is one, :data:`PLAIN` the CLI's)."""

    def step_template(self, kind_name: str, english: str) -> str:
        """The sentence of a step kind, with the placeholders of the English one."""
        ...

    def role(self, role: str, own: bool = False) -> str:
        """How a phone's role on a loan reads (``own``: the borrower's own number)."""
        ...

    def status(self, status: str) -> str:
        """How a loan status reads."""
        ...


class _Plain:
    """The CLI's English: each kind's own text, statuses as the data writes them."""

    def step_template(self, kind_name: str, english: str) -> str:
        return english

    def role(self, role: str, own: bool = False) -> str:
        r = ROLES[role]
        return r.own_text if own else r.text

    def status(self, status: str) -> str:
        return status


#: the wording of ``explain --format text``
PLAIN: StepWording = _Plain()


class _Namer:
    def __init__(self, e: Explanation) -> None:
        self.names = e.names

    def __call__(self, node: str) -> str:
        kind, ident = split_ref(node)
        name = self.names.get(node)
        if kind == "loan":
            return f"{name} ({ident})" if name else f"loan {ident}"
        if kind == "entry":
            return f"entry {ident}"
        return name or ident


def step_text(
    step: Step, path: ExplanationPath, name: Callable[[str], str], wording: StepWording = PLAIN
) -> str:
    """One step as a sentence: the text of its kind (:data:`spillover.rules.STEP_KINDS`),
    its nodes named by ``name``, worded by ``wording``."""
    src, dst = name(step.source), name(step.target)
    at = step.at.isoformat() if step.at else "?"
    try:
        kind = kind_of(step.rel, step.code)
    except KeyError:
        return f"{src} -{step.rel}-> {dst} ({at})"
    role = role_of(step.rel)
    o = path.origin
    return wording.step_template(kind.name, kind.text).format(
        src=src,
        dst=dst,
        at=at,
        role=wording.role(role.name) if role else "",
        own_role=wording.role(role.name, own=True) if role else "",
        amount=amount_text(o.amount),
        status=wording.status(o.status.value),
    )


def match_lines(match: Match, indent: str = "") -> list[str]:
    """A match and its waterfall as text: what decided it, then each field's level and weight."""
    head = f"{indent}match: {match.matched_by.value}, probability {match.match_probability:g}"
    if match.match_weight is not None:
        head += f", weight {match.match_weight:+g} bits"
    if match.matched_with is not None:
        head += f", matched with record {match.matched_with}"
    lines = [head]
    for w in match.waterfall:
        agreed = {True: "agreed", False: "disagreed", None: "no value"}[w.agreed]
        lines.append(
            f"{indent}  {w.field:<11} {w.level:<10} {agreed:<10} {w.log2_bayes_factor:+.1f} bits"
        )
    return lines


def paths_shown(e: Explanation, other_paths: int = 5) -> str:
    """How many paths there are and how many the text shows: ``best of 18 paths to 1
    origin loan (1 shown)``. Every time-respecting path is counted (as the remedy counts
    the paths it must break); the text shows the best one to each origin loan, the best
    of all in full and up to ``other_paths`` more in one line each."""
    total = max(e.paths_total, len(e.paths))
    origins = max(e.origins_total, len(e.paths))
    shown = min(len(e.paths), 1 + other_paths)
    return f"best of {count(total, 'path')} to {count(origins, 'origin loan')} ({shown} shown)"


def explanation_text(e: Explanation, *, other_paths: int = 5) -> str:
    """The explanation as a person reads it: the verdict, the best path step by step, the
    reasons, and up to ``other_paths`` other paths in one line each."""
    name = _Namer(e)
    entry = e.entry
    subject = name(entry.subject_ref)
    platform = name(f"platform:{entry.platform_id}")
    if entry.entry_id is None:
        head = f"Proposed: {platform} lists {subject} [{entry.subject_ref}] on {entry.listed_at}"
    else:
        head = f"{entry.entry_id}: {platform} listed {subject} [{entry.subject_ref}] on {entry.listed_at}"
        if entry.stated_reason:
            head += f' ("{entry.stated_reason}")'
    lines = [head]
    pct = percent(e.contamination)  # 0.998 reads 99%, never 100%
    if e.verdict == Verdict.SPILLOVER:
        meaning = f"{pct}% of this listing rests on other people's debts"
    elif e.verdict == Verdict.OWN_CONDUCT:
        meaning = f"the subject's own conduct explains {100 - pct}% of it"
    else:
        meaning = "nothing in the data explains it"
    lines.append(
        f"  verdict: {e.verdict.upper()}  contamination {score_text(e.contamination)}  ({meaning})"
    )
    best = e.best
    if best is not None:
        factors = " x ".join(f"{s.factor:g}" for s in best.steps if s.factor != 1.0) or "1"
        lines.append(
            f"  {paths_shown(e, other_paths)}: responsibility {best.responsibility:g}"
            f" = {factors}, {count(best.depth, 'loan')} deep"
        )
        width = 0
        texts = [step_text(s, best, name) for s in best.steps]
        width = min(max(len(t) for t in texts), 96)
        for i, (step, text) in enumerate(zip(best.steps, texts, strict=True)):
            arrow = "   " if i == 0 else "-> "
            lines.append(f"    {arrow}{text:<{width}}  x{step.factor:g}")
            match = step_match(step, e)
            if match is not None:
                lines += match_lines(match, "         ")
    if e.reason_codes:
        lines.append("  reasons:")
        for code in e.reason_codes:
            lines.append(f"    {code:<24} {REASONS[code]}")
    rest = e.paths[1 : 1 + other_paths]
    if rest:
        lines.append("  other paths:")
        for p in rest:
            o = p.origin
            lines.append(
                f"    {o.loan_id:<12} {name(f'person:{o.borrower_id}')}, {o.status.value} at "
                f"{name(f'platform:{o.platform_id}')}: responsibility {p.responsibility:g}, {count(p.depth, 'loan')} deep"
            )
        if len(e.paths) > 1 + other_paths:
            lines.append(f"    ... and {len(e.paths) - 1 - other_paths} more (see --format json)")
    if e.origins_total > len(e.paths):
        left = e.origins_total - len(e.paths)
        lines.append(
            f"    ... and {count(left, 'more origin loan')} not listed (raise --max-paths)"
        )
    lines.append(f"  policy: {e.policy.label}")
    # names, reasons and ids come from the data: none may start a line of its own
    return printable_lines(lines)
