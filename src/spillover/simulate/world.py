"""The data a simulation runs on, prepared once for every rule (:class:`World`,
:func:`prepare`): the kernel's index of a data folder as integer codes, the loans that
go bad and when, the phones' uses and owners, the platforms' kinds and the sharing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from ..engines.batch import Index
from ..facts import csr
from ..facts.columns import Columns
from ..facts.model import LoanStatus, PlatformKind
from ..policy import Policy, default_policy
from ..rules import ROLES

__all__ = [
    "KINDS",
    "ROLE_ORDER",
    "STATUSES",
    "World",
    "prepare",
]

#: what the world's integer codes index: platform kinds, loan statuses, phone roles
KINDS = tuple(k.value for k in PlatformKind)
STATUSES = tuple(s.value for s in LoanStatus)
ROLE_ORDER = tuple(ROLES)


# ---------------------------------------------------------------------------------------
# The data, prepared once for every rule
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """A data folder prepared for simulations (integer codes of the kernel's index).

    Loans are loan codes, people person codes, platforms platform codes, phones phone
    codes of :class:`~spillover.engines.batch.Index`; ``cutoff`` is the ordinal day rules act
    until. ``delinquent_by`` is, per person, the first day one of their own loans with
    an origin status of the policy is known (FOREVER: never); ``later_default`` whether
    one is known only after the cut-off; ``risky`` the ground truth's latent type, when
    the folder has one (``ground_truth/people.csv``).
    """

    cols: Columns
    index: Index
    cutoff: int
    platform_ids: list[str]
    platform_kind: np.ndarray  # kind index (KINDS) per platform code
    loan_status: np.ndarray  # status index (STATUSES) per loan code
    # uses of phones on loans, CSR by loan code
    use_ptr: np.ndarray
    use_phone: np.ndarray
    use_role: np.ndarray  # index in ROLE_ORDER
    use_owner: np.ndarray  # person code owning the phone on the application day, -1
    use_owner_verified: np.ndarray
    use_sms: np.ndarray
    # loans of each borrower, CSR by person code
    own_ptr: np.ndarray
    own_loan: np.ndarray
    delinquent_by: np.ndarray
    later_default: np.ndarray
    risky: np.ndarray | None = None

    @property
    def n_people(self) -> int:
        """How many people the data has."""
        return len(self.index.persons)


def _default_cutoff(index: Index) -> int:
    """Halfway between the first application and the last day a loan's status is known."""
    if not len(index.loan_applied):
        return date(2000, 1, 1).toordinal()
    first, last = int(index.loan_applied.min()), int(index.loan_known.max())
    return first + (last - first) // 2


def prepare(
    cols: Columns,
    platform_kinds: Mapping[str, str],
    policy: Policy | None = None,
    *,
    cutoff: date | None = None,
    risky: Mapping[str, bool] | None = None,
) -> World:
    """Prepare a graph's columns for simulations.

    ``platform_kinds``: each platform's kind (``platforms.kind``; missing: ``other``);
    ``cutoff``: the day rules act until (default: halfway between the first
    application and the last known loan status); ``risky``: the ground truth's latent
    type by person id, when known.
    """
    policy = policy or default_policy()
    index = Index(cols, policy)
    nl, npers = len(index.loans), len(index.persons)
    day = cutoff.toordinal() if cutoff is not None else _default_cutoff(index)
    platform_ids = [str(p) for p in index.platforms.to_pylist()]
    kind = np.array(
        [KINDS.index(platform_kinds.get(p, PlatformKind.OTHER.value)) for p in platform_ids],
        dtype=np.int64,
    )
    status_text = np.asarray(cols.loan_status, dtype=object)[index.loan_order]
    loan_status = np.zeros(nl, dtype=np.int64)
    for i, s in enumerate(STATUSES):
        loan_status[status_text == s] = i
    # uses: the kernel's phone -> loan uses, re-sorted by loan (within a loan by phone,
    # then as the data lists them; simulate_rule's choice never reads that order)
    u_phone = np.repeat(np.arange(len(index.phones)), np.diff(index.u_ptr)[: len(index.phones)])
    u_phone = u_phone[: len(index.u_loan)]
    period = index.period_at(u_phone, index.loan_applied[index.u_loan])
    owner_verified = np.append(index.p_verified, False)[period]
    order = np.argsort(index.u_loan, kind="stable")
    role_names = ("", *sorted(ROLES))  # the kernel's role codes
    role_map = np.array([-1, *(ROLE_ORDER.index(r) for r in role_names[1:])], dtype=np.int64)
    # loans by borrower, in application order
    by_borrower = np.lexsort((index.loan_applied, index.loan_borrower))
    origin = np.isin(loan_status, [STATUSES.index(s.value) for s in policy.origin_statuses])
    known = np.where(origin, index.loan_known, np.iinfo(np.int64).max)
    first_known = np.full(npers, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_known, index.loan_borrower, known)
    later = np.zeros(npers, dtype=bool)
    later[index.loan_borrower[origin & (index.loan_known > day)]] = True
    risky_codes = None
    if risky is not None:
        people = index.persons.to_pylist()
        risky_codes = np.array([bool(risky.get(p, False)) for p in people], dtype=bool)
    return World(
        cols=cols,
        index=index,
        cutoff=day,
        platform_ids=platform_ids,
        platform_kind=kind,
        loan_status=loan_status,
        use_ptr=csr.ptr(index.u_loan, nl),
        use_phone=u_phone[order],
        use_role=role_map[index.u_role[order]],
        use_owner=index.u_owner[order],
        use_owner_verified=owner_verified[order],
        use_sms=index.u_sms[order].astype(bool),
        own_ptr=csr.ptr(index.loan_borrower, npers),
        own_loan=by_borrower,
        delinquent_by=first_known,
        later_default=later,
        risky=risky_codes,
    )
