"""Synthetic data folders with known ground truth, from a few people to millions.

:func:`generate` writes a contract-valid data folder (docs/contract.md §1: ``people``,
``platforms``, ``phones``, ``loans``, ``loan_links``, ``blacklist``, ``sharing``)
and, next to it, the ground truth the analyzer cannot see (``ground_truth/``):
for every blacklist entry the loan whose default caused it, how the platform's
policy reached the subject and whether the subject is someone else than the
defaulter (a spillover).

The generative model (documented in ``docs/synthetic-data.md``) in short:
people live in communities inside cities and have a small circle of
acquaintances; they own one or two mobile numbers (a few numbers are reassigned
to a new subscriber); a risky minority borrows much more and defaults much more;
loan applications name emergency contacts, references, guarantors and upload
address books, mostly from the circle; a few applications use a phone that is
not the applicant's. Platforms blacklist their delinquent borrowers, some also
list the phones (or their real-name owners) tied to the loan; data brokers copy
the lists they receive, banks and lenders list their customers found on the
lists shared with them.

Everything is drawn from one ``numpy.random.default_rng(seed)`` stream with
vectorised array operations, and the CSV files are assembled as byte matrices,
so that a million people take well under a minute. The same ``(people, seed,
params)`` always gives byte-identical files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.formats import check_format, convert_folder
from ..files.write import atomic_folder
from .params import SynthParams, check_target, read_params
from .population import (
    MECHANISMS,
    Entries,
    Links,
    Loans,
    People,
    Phones,
    Platforms,
    make_entries,
    make_links,
    make_loans,
    make_people,
    make_phones,
    make_platforms,
)
from .records import (
    Journey,
    Records,
    make_journey,
    make_records,
    swap_name_orders,
    write_journey,
    write_records,
)
from .writers import (
    Listing,
    Out,
    Progress,
    Writer,
    first_bad_days,
    write_blacklist,
    write_links,
    write_loans,
    write_people,
    write_phones,
    write_platforms,
    write_sharing,
    write_truth_entries,
    write_truth_loans,
    write_truth_people,
    write_truth_platforms,
)

__all__ = ["MECHANISMS", "SynthParams", "SynthSummary", "generate"]


# ---------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote."""

    out: Path  #: the data folder
    people: int
    seed: int
    counts: dict[str, int] = field(hash=False)  #: rows per data table
    truth_counts: dict[str, int] = field(hash=False)  #: rows per ground-truth table
    elapsed: float = field(compare=False)  #: seconds
    params: SynthParams = field(default_factory=SynthParams)


def _write_all(
    out: Path,
    people: People,
    phones: Phones,
    plat: Platforms,
    loans: Loans,
    links: Links,
    entries: Entries,
    p: SynthParams,
    writer: Writer,
    records: Records | None = None,
    journey: Journey | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Every table of the folder and of its ground truth, in this order (the progress
    stages follow it); returns the rows written per table."""
    o = Out.of(out, people, phones, plat, loans, links, entries, p, writer)
    counts = {
        "people": write_people(o),
        "platforms": write_platforms(o),
        "phones": write_phones(o),
        "loans": write_loans(o),
        "loan_links": write_links(o),
    }
    listing = Listing.of(o)
    counts["blacklist"] = write_blacklist(o, listing)
    counts["sharing"] = write_sharing(o)
    gt = out / "ground_truth"
    gt.mkdir()
    first_bad = first_bad_days(o)
    truth = {
        "entries": write_truth_entries(o, listing, gt, first_bad),
        "people": write_truth_people(o, gt, first_bad),
        "loans": write_truth_loans(o, gt),
        "platforms": write_truth_platforms(o, gt),
    }
    if records is not None:
        counts["records"], truth["records"] = write_records(o, records, gt)
    if records is not None and journey is not None:
        added_loans, added_entries, truth["record_journey"] = write_journey(o, records, journey, gt)
        counts["loans"] += added_loans
        counts["blacklist"] += added_entries
    return counts, truth


# ---------------------------------------------------------------------------------------------
# entry point


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def generate(
    people: int,
    seed: int,
    out: str | Path,
    *,
    progress: Progress | None = None,
    format: str = "csv",
    records: bool = False,
    **params: Any,
) -> SynthSummary:
    """Write a synthetic data folder of ``people`` people to ``out`` and return what was written.

    ``out`` must not exist or be an empty directory. ``params`` override fields of
    :class:`SynthParams` by name. ``progress(stage, done, total)`` is called as every
    stage starts and ends (and after every chunk written). The same ``(people, seed,
    params)`` gives byte-identical files. ``format``: the data tables as ``csv`` (the
    default), ``jsonl`` or ``parquet`` (:func:`spillover.data.formats.convert_folder`; the
    ground truth stays CSV). Raises :class:`~spillover.errors.SpilloverError` for bad
    arguments.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     generate(200, 1, pathlib.Path(tmp) / "data").counts["people"]
    200
    """
    began = time.perf_counter()
    out = Path(out)
    p = read_params(params)
    check_format(format)
    check_target(people, seed, out)
    people, seed = int(people), int(seed)
    report = progress or _no_progress
    rng = np.random.default_rng(seed)

    def stage(name: str, make: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        report(name, 0, 1)
        result = make()
        count = size(result)
        report(name, count, count)
        return result

    plat = stage("platforms", lambda: make_platforms(people, p, rng), lambda r: r.n)
    folk = stage("people", lambda: make_people(people, p, rng), lambda r: r.n)
    phones = stage("phones", lambda: make_phones(folk, p, rng), lambda r: r.number.size)
    loans = stage("loans", lambda: make_loans(folk, phones, plat, p, rng), lambda r: r.n)
    links = stage(
        "loan_links", lambda: make_links(folk, phones, plat, loans, p, rng), lambda r: r.loan.size
    )
    entries = stage(
        "blacklist",
        lambda: make_entries(folk, phones, plat, loans, links, p, rng),
        lambda r: r.n,
    )
    recs, journey = None, None
    if records:  # from a stream of its own: the other tables stay as they are without records
        record_rng = np.random.default_rng([seed, 14])
        recs = stage(
            "records",
            lambda: make_records(folk, phones, plat, p, record_rng),
            lambda r: r.n,
        )
        recs = swap_name_orders(recs, p, np.random.default_rng([seed, 16]))
        recs, journey = make_journey(recs, plat, p, np.random.default_rng([seed, 15]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out) as tmp:
        counts, truth = _write_all(
            tmp, folk, phones, plat, loans, links, entries, p, Writer(report), recs, journey
        )
        convert_folder(tmp, format, report)
    return SynthSummary(
        out=out,
        people=people,
        seed=seed,
        counts=counts,
        truth_counts=truth,
        elapsed=time.perf_counter() - began,
        params=p,
    )
