"""The audit step of a simulation: a simulated blacklist as the kernel's columns
(:func:`blacklist_columns`), scored by one engine per name (:func:`audit_engine`:
numpy, or Spark)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from ..engines.batch import Index
from ..errors import SpilloverError
from ..facts.columns import Columns
from ..policy import Policy
from ..rules import score
from .blacklist import SimulatedBlacklist
from .world import World

__all__ = [
    "ENGINES",
    "Audited",
    "audit_engine",
    "blacklist_columns",
    "entry_ids",
]

#: the audit engines :func:`audit_engine` knows
ENGINES = ("numpy", "spark")
# ---------------------------------------------------------------------------------------
# The audit step: one function, one engine per name
# ---------------------------------------------------------------------------------------


def entry_ids(n: int) -> np.ndarray:
    """The ids of ``n`` simulated entries (``S0000001``, ...: they sort in entry order)."""
    width = max(7, len(str(n)))
    return np.array([f"S{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def blacklist_columns(world: World, bl: SimulatedBlacklist) -> Columns:
    """The world's columns with the simulated blacklist in place of the recorded one
    (ids from :func:`entry_ids`; the references already resolved, as a loader does)."""
    ix, cols = world.index, world.cols
    n = len(bl)
    ids = entry_ids(n)
    is_person = bl.person >= 0
    plat_ids = ix.platforms.take(pa.array(bl.platform)).to_numpy(zero_copy_only=False)
    subjects = np.empty(n, dtype=object)
    if is_person.any():
        subjects[is_person] = ix.persons.take(pa.array(bl.person[is_person])).to_numpy(
            zero_copy_only=False
        )
    phone_rows = np.nonzero(~is_person)[0]
    if len(phone_rows):
        distinct, inverse = np.unique(bl.phone[phone_rows], return_inverse=True)
        texts = np.array([ix.phones.text(int(c)) for c in distinct], dtype=object)
        subjects[phone_rows] = texts[inverse.ravel()]
    copied = np.where(bl.copied_from >= 0, ids[np.maximum(bl.copied_from, 0)] if n else "", "")
    codes = ix.codes
    new_codes = replace(
        codes,
        entry_order=np.arange(n, dtype=np.int64),
        entry_platform=codes.platform_order[bl.platform],
        entry_person=np.where(is_person, codes.person_order[np.maximum(bl.person, 0)], -1),
        entry_copied_from=bl.copied_from.astype(np.int64),
        entry_phone=bl.phone.astype(np.int64),
    )
    details = cols.details
    if details is not None:
        details = replace(details, entry_stated_reason=np.full(n, "", dtype=object))
    return replace(
        cols,
        entry_ids=ids,
        entry_platform=plat_ids.astype(object),
        entry_kind=np.where(is_person, "person", "phone").astype(object),
        entry_subject=subjects,
        entry_listed=bl.listed.astype(np.int64),
        entry_copied_from=np.asarray(copied, dtype=object),
        details=details,
        codes=new_codes,
    )


@dataclass(frozen=True)
class Audited:
    """An audit engine's answer, per entry in entry order: the contamination, the
    verdict (the values of :class:`~spillover.rules.Verdict`) and the loans on the best
    path (``hops``, 0 when unexplained)."""

    contamination: np.ndarray
    verdict: np.ndarray
    hops: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], ids: Sequence[str]) -> Audited:
        """From audit rows (docs/contract.md §4 fields, any order) of the entries ``ids``:
        how an engine that writes rows (another backend) plugs in."""
        by_id = {str(r["entry_id"]): r for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise SpilloverError(f"the audit engine gave no row for entry {missing[0]}")
        picked = [by_id[i] for i in ids]
        return cls(
            contamination=np.array([float(r["contamination"]) for r in picked], dtype=float),
            verdict=np.array([str(r["verdict"]) for r in picked], dtype=object),
            hops=np.array([int(r["hops"] or 0) for r in picked], dtype=np.int64),
        )


def audit_engine(
    cols: Columns, policy: Policy, engine: str = "numpy", *, spark: Any = None
) -> Audited:
    """Audit a simulated blacklist (its columns) with an engine: the one seam where
    another engine plugs in. ``numpy``: the one-pass kernel
    (:meth:`spillover.engines.batch.Index.audit`), scored with :func:`spillover.rules.score`;
    ``spark``: the same audit as Spark DataFrame operations
    (:func:`spillover.audit.spark.audit_frames`) in the session ``spark``, which gives the
    same rows (docs/scale-out.md)."""
    if engine not in ENGINES:
        raise SpilloverError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "spark":
        from ..audit.spark import Kept, audit_frames, frames_from_columns, session

        spark = spark or session()
        with Kept():  # the audit's tables and layers released once its rows are read
            rows = audit_frames(spark, frames_from_columns(spark, cols), policy, check=False)
            answered = [r.asDict() for r in rows.toLocalIterator()]
        return Audited.from_rows(answered, cols.entry_ids.tolist())
    result = Index(cols, policy).audit()
    found = result.origin_loan >= 0
    distinct, inverse = np.unique(np.where(found, result.responsibility, -1.0), return_inverse=True)
    scores = [score(p if p >= 0 else None, policy) for p in distinct.tolist()]
    inverse = inverse.ravel()
    # the kernel's rows are in entry_id order, which is the simulated entries' order
    return Audited(
        contamination=np.array([s.contamination for s in scores], dtype=float)[inverse],
        verdict=np.array([s.verdict.value for s in scores], dtype=object)[inverse],
        hops=np.asarray(result.depth, dtype=np.int64),
    )
