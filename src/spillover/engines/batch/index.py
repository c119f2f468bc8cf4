"""The graph as integer codes and CSR tables, built once for the batch pass in named steps.

:class:`CodedGraph` is what :class:`~spillover.engines.batch.Index` audits: ids become
integer codes that sort like the ids (loans, then people, then phones share one node
numbering), and the ties the search follows are precomputed once:

* :meth:`~CodedGraph._build_codes`: the codes of loans, people, platforms and phones;
* :meth:`~CodedGraph._build_loans`: each loan's platform, borrower, days, status and the
  match step of the record it names its borrower by;
* :meth:`~CodedGraph._build_owner_periods`: owner periods sorted by (phone, since), for
  :meth:`~CodedGraph.period_at`;
* :meth:`~CodedGraph._phone_uses`: every (phone, role, loan) with the phone's owner on the day;
* :meth:`~CodedGraph._build_person_ties`: person -> loan (own loans, and loans naming a
  phone the person owned on the application day), CSR by person;
* :meth:`~CodedGraph._build_phone_uses`: phone -> loan, CSR by phone, for phone subjects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...facts import csr
from ...facts.columns import Codes, Columns
from ...facts.phonecodes import codes_in, string_array
from ...policy import Policy, default_policy
from ...rules import CHAIN_STEP, TIE_KINDS, factor, match_kind
from .codes import codes_of
from .tables import APPLICANT, MATCH_KEYS, OWN, OWNS_KIND, ROLE_NAMES, USE_KIND

__all__ = ["BUILD_ONLY_CODES", "BUILD_ONLY_COLUMNS", "CodedGraph"]

#: the columns only the build of an index reads (what a pass reads once the index is
#: built: the entries, the sharing agreements, the records and matches)
BUILD_ONLY_COLUMNS = (
    "person_ids",
    "platform_ids",
    "period_phone",
    "period_owner",
    "period_verified",
    "period_since",
    "period_until",
    "loan_ids",
    "loan_platform",
    "loan_borrower",
    "loan_applied",
    "loan_known",
    "loan_status",
    "loan_applicant_phone",
    "loan_phone_verified",
    "link_loan",
    "link_phone",
    "link_role",
)
#: the codes only the build reads (a pass reads the entries', the sharing's and the phones)
BUILD_ONLY_CODES = (
    "person_order",
    "platform_order",
    "loan_order",
    "period_owner",
    "loan_platform",
    "loan_borrower",
    "link_loan",
    "period_phone",
    "loan_applicant_phone",
    "link_phone",
)


def _emptied(values: np.ndarray | pa.Array) -> np.ndarray | pa.Array:
    """An empty column of the same type (a new one: a slice would keep the data alive)."""
    if isinstance(values, np.ndarray):
        return np.empty(0, dtype=values.dtype)
    return pa.array([], values.type)


@dataclass(frozen=True)
class _Uses:
    """Every (phone, role, loan) of applicant phones and loan links, with the phone's
    owner (-1: none known) on the loan's application day; codes as int32 (checked in
    :meth:`CodedGraph._phone_uses`)."""

    phone: np.ndarray  # phone code (int32)
    loan: np.ndarray  # loan code (int32)
    role: np.ndarray  # role code (int8)
    owner: np.ndarray  # person code, -1 (int32)
    owner_verified: np.ndarray
    sms: np.ndarray  # the loan's phone verified, 0/1 (int8)
    kind: np.ndarray  # use kind code (int8)


class CodedGraph:
    """Integer-coded ties of a graph (the build of an :class:`~spillover.engines.batch.Index`)."""

    def __init__(self, cols: Columns, policy: Policy | None = None) -> None:
        """Build the index of ``cols`` under ``policy`` (default: the default policy)."""
        self.policy = policy = policy or default_policy()
        #: factor of every tie kind under the policy, by kind code
        self.kind_factor = np.array([factor(policy, k) for k in TIE_KINDS])
        self.chain_factor = factor(policy, CHAIN_STEP)
        self.cols = cols
        # (the rows and orders the loader resolved while checking, when it did)
        self.codes = cols.codes or codes_of(cols)
        self._build_codes(cols, self.codes)
        self._build_loans(cols, self.codes, policy)
        self._build_owner_periods(cols, self.codes)
        uses = self._phone_uses(cols, self.codes)
        self._build_person_ties(uses)
        self._build_phone_uses(uses)

    def release_build_columns(self) -> None:
        """Forget what only the build read (:data:`BUILD_ONLY_COLUMNS`,
        :data:`BUILD_ONLY_CODES`): those columns and codes become empty, so that a caller
        that keeps nothing else of the columns (the audit of a data folder) frees them
        before its pass; :meth:`~spillover.engines.batch.Index.audit` reads only the rest.
        The index's own arrays stay whole; what else reads :attr:`cols` (a path search,
        the re-audit of changes, the simulator) needs an index that kept them."""
        cols = self.cols
        no_codes: dict[str, Any] = {n: _emptied(getattr(self.codes, n)) for n in BUILD_ONLY_CODES}
        self.codes = codes = replace(self.codes, **no_codes)
        no_columns: dict[str, Any] = {n: _emptied(getattr(cols, n)) for n in BUILD_ONLY_COLUMNS}
        self.cols = replace(cols, codes=codes, **no_columns)

    def entry_ids_by_code(self) -> pa.Array:
        """The entry ids by entry code, that is in id order (the pass's entry ``i`` is
        ``entry_ids_by_code()[i]``; an audit lists its rows so)."""
        return string_array(self.cols.entry_ids).take(pa.array(self.codes.entry_order))

    # -- the build, step by step ----------------------------------------------------------

    def _build_codes(self, cols: Columns, codes: Codes) -> None:
        """Codes: loans, persons, platforms and phones sort like their ids; node codes are
        loans, then people (``person_base + i``), then phones (``phone_base + i``)."""
        order = codes.loan_order
        self.loan_order = order  # column row of each loan code
        self.loans = string_array(cols.loan_ids).take(pa.array(order))
        self.persons = string_array(cols.person_ids).take(pa.array(codes.person_order))
        self.platforms = string_array(cols.platform_ids).take(pa.array(codes.platform_order))
        self.person_rank = csr.rank(codes.person_order)  # person code of each person row
        self.platform_rank = csr.rank(codes.platform_order)
        self.loan_rank = csr.rank(order)
        self.phones = codes.phones
        self.person_base = len(self.loans)  # global code of person i = nl + i
        self.phone_base = len(self.loans) + len(self.persons)

    def _build_loans(self, cols: Columns, codes: Codes, policy: Policy) -> None:
        """Per loan code: platform, borrower, days, origin status, phone verified, and the
        match step (factor and key) of the platform record it names its borrower by."""
        order = self.loan_order
        self.loan_platform = csr.recode(self.platform_rank, codes.loan_platform[order])
        self.loan_borrower = csr.recode(self.person_rank, codes.loan_borrower[order])
        self.loan_applied = np.asarray(cols.loan_applied)[order]
        self.loan_known = np.asarray(cols.loan_known)[order]
        statuses = pa.array(sorted(s.value for s in policy.origin_statuses), pa.string())
        self.loan_origin = pc.is_in(string_array(cols.loan_status), value_set=statuses).to_numpy(
            zero_copy_only=False
        )[order]
        self.loan_verified = np.asarray(cols.loan_phone_verified)[order]
        # identity linkage: a loan naming its borrower by a platform record carries
        # the record's match step (factor and reason code), per loan code
        self.match_factor = np.array([factor(policy, match_kind(k)) for k in MATCH_KEYS])
        self.loan_match = np.full(len(self.loans), -1, dtype=np.int64)  # in MATCH_KEYS, -1
        if cols.loan_record is not None:
            records = np.asarray(string_array(cols.loan_record).to_pylist(), dtype=object)[order]
            for code in np.nonzero(records != "")[0].tolist():
                match = cols.matches[records[code]]
                self.loan_match[code] = MATCH_KEYS.index(match.matched_by)
        self.loan_match_f = np.where(
            self.loan_match >= 0, self.match_factor[np.maximum(self.loan_match, 0)], 1.0
        )

    def _build_owner_periods(self, cols: Columns, codes: Codes) -> None:
        """Owner periods, sorted by (phone, since) for searchsorted lookups, CSR by phone."""
        p_phone = np.asarray(codes.period_phone, dtype=np.int64)
        p_owner = csr.recode(self.person_rank, codes.period_owner)  # -1: unknown
        p_since = np.asarray(cols.period_since)
        p_key = _period_key(p_phone, p_since)
        porder = np.argsort(p_key, kind="stable")
        #: (phone, since) as one sorted number, for :meth:`period_at`'s bisection
        self.p_key = p_key[porder]
        self.p_phone = p_phone[porder]
        self.p_since = p_since[porder]
        self.p_until = np.asarray(cols.period_until)[porder]
        self.p_owner = p_owner[porder]
        self.p_verified = np.asarray(cols.period_verified)[porder]
        self.p_ptr = csr.ptr(self.p_phone, len(self.phones))

    def _phone_uses(self, cols: Columns, codes: Codes) -> _Uses:
        """(phone, role, loan) from applicant phones and links, with the owner on the day."""
        applicant = np.asarray(codes.loan_applicant_phone, dtype=np.int64)[self.loan_order]
        has_app = applicant >= 0
        app_loans = np.nonzero(has_app)[0]
        phone = np.concatenate([applicant[has_app], codes.link_phone])
        loan = np.concatenate([app_loans, csr.recode(self.loan_rank, codes.link_loan)])
        # (small codes: roles, kinds and flags, are int8 here and in the ties)
        role = np.concatenate(
            [
                np.full(len(app_loans), APPLICANT, dtype=np.int8),
                codes_in(pa.array(ROLE_NAMES, pa.string()), cols.link_role).astype(np.int8),
            ]
        )
        period = self.period_at(phone, self.loan_applied[loan])
        # period -1 (no owner period) picks the appended sentinel; works with no periods at all
        sms = self.loan_verified[loan].astype(np.int8)
        if max(len(self.loans), len(self.phones), len(self.persons)) > np.iinfo(np.int32).max:
            raise ValueError("too many loans, phones or people for int32 codes")
        # (held while the ties are built: int32 codes, half the memory of int64)
        return _Uses(
            phone=phone.astype(np.int32),
            loan=loan.astype(np.int32),
            role=role,
            owner=np.append(self.p_owner, -1)[period].astype(np.int32),
            owner_verified=np.append(self.p_verified, False)[period],
            sms=sms,
            kind=USE_KIND[role, sms].astype(np.int8),
        )

    def _build_person_ties(self, uses: _Uses) -> None:
        """person -> loan ties (CSR by person): each person's own loans, and the loans
        naming a phone the person owned on the application day (not their own); loan
        and phone codes as int32."""
        own_n = len(self.loans)
        person_tie = (uses.owner >= 0) & (uses.owner != self.loan_borrower[uses.loan])
        src = np.concatenate([self.loan_borrower, uses.owner[person_tie]])
        # (loan and phone codes fit int32: the pass widens them where it makes keys)
        t_loan = np.concatenate([np.arange(own_n, dtype=np.int32), uses.loan[person_tie]])
        # by (person, loan): a stable sort by loan (a merge: the own loans, the applicant
        # phones and the links, as written, each come in loan order), then by person
        # (:func:`csr.stable_order`); one person's ties to one loan by several phones or
        # roles stay as :meth:`_phone_uses` lists them (the pass never reads their order:
        # they differ in its tie-break key)
        by_loan = np.argsort(t_loan, kind="stable")
        torder = by_loan[csr.stable_order(src[by_loan], len(self.persons))]
        self.t_loan = t_loan[torder]

        def in_order(own: int, used: np.ndarray) -> np.ndarray:  # own ties, then used ones
            ties: np.ndarray = np.concatenate([np.full(own_n, own, dtype=used.dtype), used])
            out: np.ndarray = ties[torder]
            return out

        self.t_phone = in_order(-1, uses.phone[person_tie])
        self.t_role = in_order(OWN, uses.role[person_tie])
        # the owns step (-1: none, an own loan) and the loan step (-1: an own loan, whose
        # kind depends on the layer) of each tie
        owns = OWNS_KIND[uses.owner_verified[person_tie].astype(np.int64)].astype(np.int8)
        self.t_owns = in_order(-1, owns)
        self.t_kind = in_order(-1, uses.kind[person_tie])
        # the first factor: the owns step's, or for an own loan its record's match (1.0: none)
        self.t_f1 = np.where(
            self.t_owns >= 0,
            self.kind_factor[np.maximum(self.t_owns, 0)],
            self.loan_match_f[self.t_loan],
        )
        self.t_ptr = csr.ptr(src, len(self.persons))

    def _build_phone_uses(self, uses: _Uses) -> None:
        """phone -> loan uses (CSR by phone), for phone subjects; loan and owner codes as
        int32. By (phone, loan), and one loan's uses of a phone in a fixed order: the
        applicant phone first, then the links in the order the data lists them (a stable
        sort by loan, a merge as for the person ties, then by phone with
        :func:`csr.stable_order`), so no sort's order of equal keys decides it."""
        by_loan = np.argsort(uses.loan, kind="stable")
        uorder = by_loan[csr.stable_order(uses.phone[by_loan], len(self.phones))]
        self.u_loan = uses.loan[uorder]
        self.u_role = uses.role[uorder]
        self.u_owner = uses.owner[uorder]
        self.u_sms = uses.sms[uorder]
        self.u_ptr = csr.ptr(uses.phone, len(self.phones))

    # -- lookups ------------------------------------------------------------------------

    def period_at(self, phone: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Index of the owner period of ``phone`` covering ``day``, or -1.

        Periods are sorted by (phone, since) and do not overlap, so the covering
        one is the last of the phone's periods starting on or before ``day``.
        """
        out = np.full(len(phone), -1, dtype=np.int64)
        if len(self.p_phone) == 0 or len(phone) == 0:
            return out
        lo = self.p_ptr[phone]
        count = self.p_ptr[phone + 1] - lo
        last = len(self.p_since) - 1
        out = np.where((count > 0) & (self.p_since[np.minimum(lo, last)] <= day), lo, -1)
        # most numbers have one period; for the few with several, one bisection over
        # every period: the last starting on or before ``day`` (a loop over the most
        # periods of one number was periods x lookups on a number reassigned 16,000
        # times: 1 s a call; a bisection for every use, 1 s more at 1M people)
        more = np.flatnonzero(count > 1)
        if len(more):
            at = np.searchsorted(self.p_key, _period_key(phone[more], day[more]), side="right")
            out[more] = np.where(at - 1 >= lo[more], at - 1, -1)
        return np.where((out >= 0) & (self.p_until[np.maximum(out, 0)] >= day), out, -1)


def _period_key(phone: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A phone code and a day (ordinal; a missing since: the first, 0) as one number that
    sorts by phone, then day."""
    key: np.ndarray = np.asarray(phone, dtype=np.int64) * (1 << 23) + np.clip(day, 0, (1 << 23) - 1)
    return key
