"""What a batch pass gives: :class:`AuditResult` (one row per entry), its audit rows
(:func:`rows`), and the reason codes of a path from its layer summaries (:func:`path_codes`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from ...policy import Policy
from ...rules import (
    CHAIN_STEP,
    COPY_STEP,
    LISTING_STEP,
    NO_PATH,
    ORIGIN_STEP,
    SHARING_STEP,
    TIE_KINDS,
    match_kind,
    owns_kind,
    reason_codes,
    score,
)
from .index import CodedGraph
from .tables import MATCH_KEYS, OWN_LOAN_KEY

__all__ = ["ROUND", "AuditResult", "path_codes", "round6", "row_columns", "rows"]

ROUND = 6


@dataclass(frozen=True)
class AuditResult:
    """One row per entry (arrays in entry_id order) of the batch pass."""

    entry_ids: pa.Array
    platform_ids: pa.Array
    subject_kinds: pa.Array
    subjects: pa.Array
    listed: np.ndarray  # ordinal days
    responsibility: np.ndarray  # of the best path (unrounded), nan when unexplained
    depth: np.ndarray  # loans on the best path ("hops" in the rows), 0 when unexplained
    origin_loan: np.ndarray  # loan code, -1 when unexplained
    origin_borrower: np.ndarray  # person code, -1
    origin_platform: np.ndarray  # platform code, -1
    reason_codes: np.ndarray  # space-separated codes (str objects)
    index: CodedGraph

    def __len__(self) -> int:
        return len(self.entry_ids)


def path_codes(
    layers: list[int],
    shared: bool,
    copied: bool,
    *,
    entry_match: int = -1,
    loan_matches: list[int] | None = None,
) -> tuple[str, ...]:
    """The reason codes of a path from its layer summaries, listed as the core lists
    them: the codes of its steps in step order (:func:`spillover.rules.reason_codes`).

    ``entry_match``: the match of a record subject (index in ``MATCH_KEYS``, -1: none);
    ``loan_matches``: the same for the record naming each layer's loan's borrower."""
    if not layers:
        return (NO_PATH,)
    matches = loan_matches or [-1] * len(layers)
    steps: list[str | None] = []
    if entry_match >= 0:
        steps.append(match_kind(MATCH_KEYS[entry_match]).code)
    for k, summary in enumerate(layers):
        if k > 0:
            steps.append(CHAIN_STEP.code)
            if matches[k - 1] >= 0:
                steps.append(match_kind(MATCH_KEYS[matches[k - 1]]).code)
        if summary % 2:
            steps.append(owns_kind(False).code)
        kind = TIE_KINDS[summary // 2]
        if kind.factor_key == OWN_LOAN_KEY and matches[k] >= 0:
            steps.append(match_kind(MATCH_KEYS[matches[k]]).code)
        steps.append(kind.code)
    steps.append(ORIGIN_STEP.code)
    if shared:
        steps.append(SHARING_STEP.code)
    steps.append(LISTING_STEP.code)
    if copied:
        steps.append(COPY_STEP.code)
    return reason_codes(steps)


def round6(values: np.ndarray) -> np.ndarray:
    """``round(x, 6)`` of every element, exactly as Python rounds.

    numpy's rint of ``x * 1e6`` agrees with Python's correctly rounded decimal
    rounding except near a half; those few go through Python's ``round``.
    """
    scaled = values * 1e6
    out = np.rint(scaled) / 1e6
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    if near_half.any():
        out[near_half] = [round(v, ROUND) for v in values[near_half].tolist()]
    return out


def row_columns(result: AuditResult, policy: Policy) -> dict[str, pa.Array]:
    """The audit rows (docs/contract.md §4 fields) as Arrow columns, in column order, scored
    like the core: what :func:`rows` yields one row at a time (null = ``None``; dates as
    ISO text). Values repeated across rows (scores, days) are computed once per distinct value."""
    index = result.index
    n = len(result)
    found = result.origin_loan >= 0
    missing = ~found
    # score each distinct best responsibility once, with the rules' one score function
    # (a sort of the values and a search in the few distinct ones: np.unique's inverse,
    # without its argsort of every row)
    best = np.where(found, result.responsibility, -1.0)
    distinct = np.unique(best)
    inverse = np.searchsorted(distinct, best)
    scores = [score(p if p >= 0 else None, policy) for p in distinct.tolist()]
    at = pa.array(inverse.ravel())
    days, day_at = np.unique(result.listed, return_inverse=True)

    def names(universe: pa.Array, codes: np.ndarray) -> pa.Array:
        if not len(universe):
            return pa.nulls(n, pa.string())
        return universe.take(pa.array(np.maximum(codes, 0), mask=missing))

    return {
        "entry_id": result.entry_ids,
        "platform_id": result.platform_ids,
        "subject_kind": result.subject_kinds,
        "subject": result.subjects,
        "listed_at": pa.array(
            [date.fromordinal(d).isoformat() for d in days.tolist()], pa.string()
        ).take(pa.array(day_at.ravel())),
        "contamination": pa.array([s.contamination for s in scores], pa.float64()).take(at),
        "verdict": pa.array([s.verdict.value for s in scores], pa.string()).take(at),
        "origin_loan_id": names(index.loans, result.origin_loan),
        "origin_borrower_id": names(index.persons, result.origin_borrower),
        "origin_platform_id": names(index.platforms, result.origin_platform),
        "responsibility": pa.array(
            np.array([s.responsibility or 0.0 for s in scores])[inverse.ravel()], mask=missing
        ),
        "hops": pa.array(np.asarray(result.depth, dtype=np.int64), mask=missing),
        "reason_codes": pa.array(result.reason_codes, pa.string()),
    }


def rows(result: AuditResult, policy: Policy) -> Iterator[dict[str, object]]:
    """Audit rows (docs/contract.md §4 fields) from a batch result, scored like the core
    (:func:`row_columns`, one row at a time)."""
    columns = {name: values.to_pylist() for name, values in row_columns(result, policy).items()}
    keys = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(keys, values, strict=True))
