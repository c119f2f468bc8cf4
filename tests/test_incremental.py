"""Re-audit only what changed (issue 23 item 4): the entries a correction can reach are
re-scored, the rest carried over, and the result equals a full audit of the new version,
over random worlds and random corrections (both ways: a correction removes ties, its
undoing adds them)."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario import random_scenario
from spillover import read_dataset
from spillover.audit.batch import pass_rows
from spillover.disputes import corrected, dataset_records
from spillover.engines.batch import Index, columns_from_dataset, rows
from spillover.engines.batch.incremental import (
    affected_entries,
    fact_changes,
    index_changes,
    reaudit,
)
from spillover.facts.model import Dataset, LoanStatus
from spillover.policy import default_policy


def _mutate(data: Dataset, rng: random.Random) -> Dataset:
    """A random correction: some of the records a remedy could name corrected, and maybe a
    loan's status, an entry's listing day or a sharing agreement's start moved."""
    records = sorted(dataset_records(data), key=lambda r: r.sort_key())
    picked = rng.sample(records, rng.randint(0, min(3, len(records))))
    out = corrected(data, picked)
    what = rng.randrange(4)
    if what == 0 and out.loans:
        loan = out.loans[rng.choice(sorted(out.loans))]
        status = rng.choice([LoanStatus.REPAID, LoanStatus.DEFAULTED, LoanStatus.OVERDUE])
        loans = {**out.loans, loan.loan_id: dataclasses.replace(loan, status=status)}
        out = dataclasses.replace(out, loans=loans)
    elif what == 1 and out.entries:
        entry = out.entries[rng.choice(sorted(out.entries))]
        moved = dataclasses.replace(
            entry, listed_at=entry.listed_at + timedelta(rng.randint(-90, 90))
        )
        if moved.copied_from is None:
            out = dataclasses.replace(out, entries={**out.entries, entry.entry_id: moved})
    elif what == 2 and out.sharing:
        i = rng.randrange(len(out.sharing))
        share = dataclasses.replace(out.sharing[i], since=None)
        out = dataclasses.replace(out, sharing=(*out.sharing[:i], share, *out.sharing[i + 1 :]))
    return out


def _full(data: Dataset) -> dict[str, dict[str, object]]:
    return {str(r["entry_id"]): r for r in pass_rows(columns_from_dataset(data))}


def _incremental(a: Dataset, b: Dataset, by_index: bool) -> dict[str, dict[str, object]]:
    """B's rows: A's carried over, the entries the correction reaches re-scored (the changed
    facts found from the columns' text, or from the two indexes' codes)."""
    before = _full(a)
    ix = Index(columns_from_dataset(b), default_policy())
    cols_a = columns_from_dataset(a)
    _done, result = reaudit(Index(cols_a, default_policy()) if by_index else cols_a, ix)
    fresh = {str(r["entry_id"]): r for r in rows(result, default_policy())}
    ids = [str(x) for x in ix.cols.entry_ids]
    return {e: fresh[e] if e in fresh else before[e] for e in sorted(ids)}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 100_000), records=st.sampled_from([0, 0, 6]))
def test_reaudit_equals_a_full_audit_on_random_worlds_and_corrections(
    tmp_path_factory, seed, records
):
    s = random_scenario(seed, people=10, loans=24, entries=12, records=records)
    a = read_dataset(s.write(tmp_path_factory.mktemp("world")))
    b = _mutate(a, random.Random(seed))
    for by_index in (False, True):
        assert _incremental(a, b, by_index) == _full(b)
        assert _incremental(b, a, by_index) == _full(a)  # the undoing adds ties


def test_a_small_correction_reaudits_few_entries(tmp_path):
    s = random_scenario(7, people=40, loans=90, entries=40)
    a = read_dataset(s.write(tmp_path / "w"))
    link = sorted(a.links, key=lambda x: (x.loan_id, x.phone))[0]
    b = dataclasses.replace(a, links=tuple(x for x in a.links if x != link))
    ix = Index(columns_from_dataset(b), default_policy())
    hit = affected_entries(ix, fact_changes(columns_from_dataset(a), ix.cols))
    assert 0 < len(hit) < len(b.entries)
    assert len(affected_entries(ix, fact_changes(ix.cols, ix.cols))) == 0
    ia = Index(columns_from_dataset(a), default_policy())
    assert set(affected_entries(ix, index_changes(ia, ix))) <= set(hit)
    assert len(affected_entries(ix, index_changes(ix, ix))) == 0
