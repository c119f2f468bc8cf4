"""The one-pass audit: every entry explained and scored in a few vectorized passes.

:func:`spillover.engines.search.explain` searches from one subject at a time. For a whole
blacklist that is one search per entry; this module instead runs the *same*
layered search for all entries at once on integer arrays (numpy), one layer per
loan depth, and gives the same best path, score and reason codes as the core
(tests hold the two to each other). It is a compiled kernel behind the core,
not a second definition of what a path means: every step kind, factor, reason
code and the score come from :mod:`spillover.rules`, compiled into lookup tables
indexed by integer codes (``USE_KIND``, ``SUBJECT_PHONE_KIND``, ...).

* ties are precomputed once: person -> loan (own loans, and loans naming a
  phone the person owned on the application day), phone -> loan (for phone
  subjects), loan -> borrower;
* every layer gathers the next ties of all frontier labels with CSR offsets,
  keeps loans applied no later than each entry's listing, reduces to the best
  label per (entry, node) with the core's order (responsibility, then the
  fixed-shape key ``(phone, role, loan, borrower)`` per layer, as integer codes
  that sort like the core's strings), and drops labels an earlier layer beats;
* reach (origin platform -> listing) is computed per entry and platform with an
  origin loan: one search of the sharing graph of each listing day from those
  platforms, then along the copy chains, each entry once (:meth:`Index._reach`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..facts import csr
from ..facts.columns import FOREVER, NEVER, Codes, Columns, columns_from_dataset, columns_from_facts
from ..facts.model import SubjectKind
from ..facts.phonecodes import PhoneCodes, codes_in, string_array
from ..policy import Policy, default_policy
from ..rules import APPLICANT as APPLICANT_ROLE
from ..rules import (
    CHAIN_STEP,
    COPY_STEP,
    LISTING_STEP,
    NO_PATH,
    ORIGIN_STEP,
    ROLES,
    SHARING_STEP,
    TIE_KINDS,
    MatchKey,
    StepKind,
    factor,
    loan_kind,
    match_kind,
    owns_kind,
    reason_codes,
    score,
    subject_phone_kind,
    use_kind,
)

ROUND = 6
#: role codes sort like the role strings ("" = own loan sorts first)
ROLE_NAMES = ("", *sorted(ROLES))
ROLE_CODE = {name: i for i, name in enumerate(ROLE_NAMES)}
OWN = ROLE_CODE[""]
APPLICANT = ROLE_CODE[APPLICANT_ROLE]

#: tie kinds as integer codes: the index in spillover.rules.TIE_KINDS
KIND_CODE = {k.name: i for i, k in enumerate(TIE_KINDS)}
#: the bits of one layer's summary (kind code * 2 + owner unverified) in a path signature
_LAYER_BITS = (2 * len(TIE_KINDS) - 1).bit_length()


def _kind_table(choose: Callable[..., StepKind], *axes: Sequence[object]) -> np.ndarray:
    """The kind code ``choose`` gives for every combination of ``axes`` (the rules,
    compiled into a lookup table indexed by integer codes)."""
    shape = tuple(len(a) for a in axes)
    table = np.empty(shape, dtype=np.int64)
    for at in np.ndindex(*shape):
        table[at] = KIND_CODE[choose(*(a[i] for a, i in zip(axes, at, strict=True))).name]
    return table


_BOOLS = (False, True)
#: use kind by (role code, sms verified); row OWN unused
USE_KIND = _kind_table(
    lambda role, sms: use_kind(role, sms) if role else loan_kind(subject=True),
    ROLE_NAMES,
    _BOOLS,
)
#: phone-subject kind by (role code, sms verified, borrower owned, owner changed)
SUBJECT_PHONE_KIND = _kind_table(
    lambda role, sms, owned, changed: (
        subject_phone_kind(role, sms, borrower_owned=owned, owner_changed=changed)
        if role
        else loan_kind(subject=True)
    ),
    ROLE_NAMES,
    _BOOLS,
    _BOOLS,
    _BOOLS,
)
#: owns kind by verified
OWNS_KIND = _kind_table(owns_kind, _BOOLS)
#: own-loan kind by "the subject's own loan" (layer 1)
LOAN_KIND = _kind_table(lambda subject: loan_kind(subject=subject), _BOOLS)
#: the kind code of an unverified ownership
OWNS_UNVERIFIED = KIND_CODE[owns_kind(False).name]
#: the factor key of a step person -BORROWED-> loan (the tie of an own loan)
_OWN_LOAN_KEY = loan_kind(subject=True).factor_key
#: match keys as integer codes: the index in this tuple
MATCH_KEYS: tuple[MatchKey, ...] = tuple(MatchKey)

__all__ = [
    "FOREVER",
    "LOAN_KIND",
    "NEVER",
    "OWNS_KIND",
    "OWNS_UNVERIFIED",
    "SUBJECT_PHONE_KIND",
    "USE_KIND",
    "AuditResult",
    "Columns",
    "Index",
    "Progress",
    "codes_of",
    "columns_from_dataset",
    "columns_from_facts",
    "path_codes",
    "round6",
    "rows",
]

Progress = Callable[[str, int, int], None]


def _is(values: np.ndarray | pa.Array, text: str) -> np.ndarray:
    mask: np.ndarray = pc.equal(string_array(values), text).to_numpy(zero_copy_only=False)
    return mask


def _order(values: np.ndarray | pa.Array) -> np.ndarray:
    """The rows of an id column in the order of the ids."""
    return np.asarray(pc.sort_indices(string_array(values)).to_numpy(), dtype=np.int64)


def _rows(universe: np.ndarray | pa.Array, values: np.ndarray | pa.Array) -> np.ndarray:
    """The row of each value in ``universe`` (an id column), -1 where absent."""
    return codes_in(string_array(universe), values)


def codes_of(cols: Columns) -> Codes:
    """The :class:`~spillover.facts.columns.Codes` of columns whose source did not resolve them
    (hash lookups and sorts of the id strings)."""
    is_person = _is(cols.entry_kind, "person")
    is_phone = _is(cols.entry_kind, "phone")
    applicant = string_array(cols.loan_applicant_phone)
    has_applicant = ~_is(applicant, "")
    subjects = string_array(cols.entry_subject)
    phones, (period, app, link, subject) = PhoneCodes.build(
        [
            string_array(cols.period_phone),
            applicant.filter(pa.array(has_applicant)),
            string_array(cols.link_phone),
            subjects.filter(pa.array(is_phone)),
        ]
    )
    applicant_phone = np.full(len(applicant), -1, dtype=np.int64)
    applicant_phone[has_applicant] = app
    entry_phone = np.full(len(subjects), -1, dtype=np.int64)
    entry_phone[is_phone] = subject
    return Codes(
        person_order=_order(cols.person_ids),
        platform_order=_order(cols.platform_ids),
        loan_order=_order(cols.loan_ids),
        entry_order=_order(cols.entry_ids),
        period_owner=_rows(cols.person_ids, cols.period_owner),
        loan_platform=_rows(cols.platform_ids, cols.loan_platform),
        loan_borrower=_rows(cols.person_ids, cols.loan_borrower),
        link_loan=_rows(cols.loan_ids, cols.link_loan),
        entry_platform=_rows(cols.platform_ids, cols.entry_platform),
        entry_person=np.where(is_person, _rows(cols.person_ids, cols.entry_subject), -1),
        entry_copied_from=_rows(cols.entry_ids, cols.entry_copied_from),
        share_from=_rows(cols.platform_ids, cols.share_from),
        share_to=_rows(cols.platform_ids, cols.share_to),
        phones=phones,
        period_phone=period,
        loan_applicant_phone=applicant_phone,
        link_phone=link,
        entry_phone=entry_phone,
    )


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
    index: Index

    def __len__(self) -> int:
        return len(self.entry_ids)


# -- the state of one pass ----------------------------------------------------------------


@dataclass(frozen=True)
class _Reach:
    """Per entry (rows) and platform with an origin loan (columns; ``column``: the
    column of each platform code, the last one, never reached, for the others): the
    latest day a default known there still reaches the entry's copy chain in time
    (NEVER: not at all), the sharing hops of that route and the place in the copy chain
    it reaches."""

    deadline: np.ndarray
    sharing_hops: np.ndarray
    chain_index: np.ndarray
    column: np.ndarray


@dataclass(frozen=True)
class _Entries:
    """The entries of a pass, in entry_id order, with their subjects as codes."""

    ids: pa.Array
    platform: np.ndarray  # platform code
    kind: pa.Array  # "person" | "phone"
    subject: pa.Array
    listed: np.ndarray  # ordinal day
    copied: np.ndarray  # entry index of copied_from, -1 = none
    subject_person: np.ndarray  # person code, -1 for a phone subject
    subject_phone: np.ndarray  # phone code, -1 for a person subject
    phone_rows: np.ndarray  # the entries whose subject is a phone
    owner_now: np.ndarray  # person code owning the subject phone on the listing day, -1
    #: a record subject's match (index in MATCH_KEYS, -1: none) and its factor (1.0: none)
    match: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start_factor: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _Best:
    """Each entry's best origin so far (the arrays are updated in place)."""

    responsibility: np.ndarray  # -1 while none
    depth: np.ndarray  # loans on the path, 0 while none
    loan: np.ndarray  # loan code, -1 while none
    label: np.ndarray  # index of its label in layer ``depth`` (layers[depth - 1])

    @classmethod
    def empty(cls, n: int) -> _Best:
        return cls(
            np.full(n, -1.0),
            np.zeros(n, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
        )


@dataclass(frozen=True)
class _Frontier:
    """Person labels a layer starts from: entry, person, responsibility, rank of the key."""

    entry: np.ndarray
    person: np.ndarray
    responsibility: np.ndarray
    rank: np.ndarray  # dense rank of the label's key among the frontier's labels


@dataclass(frozen=True)
class _Candidates:
    """Ties to loans offered at one layer, before the best per (entry, loan) is chosen.

    ``key`` orders equal responsibilities like the core's string keys; ``parent``
    is the frontier label the tie extends (-1 from a phone subject); ``summary`` is
    ``tie kind code * 2 + owner unverified`` (for the reason codes).
    """

    entry: np.ndarray
    loan: np.ndarray
    responsibility: np.ndarray
    key: np.ndarray
    parent: np.ndarray
    summary: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Candidates]) -> _Candidates:
        if len(parts) == 1:
            return parts[0]
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("entry", "loan", "responsibility", "key", "parent", "summary")
            )
        )


@dataclass
class _Layer:
    """The labels kept at one layer (one per entry and loan), and which of them went
    on to their loan's borrower (``to_person``: label index of each next frontier label)."""

    entry: np.ndarray
    loan: np.ndarray
    responsibility: np.ndarray
    key: np.ndarray
    parent: np.ndarray
    summary: np.ndarray
    to_person: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class _PassState:
    """What one pass carries from layer to layer."""

    entries: _Entries
    n_nodes: int  # node codes: loans, then people, then phones
    best: _Best
    frontier: _Frontier | None = None
    layers: list[_Layer] = field(default_factory=list)
    #: (entry, node) keys reached at earlier layers with their best responsibility,
    #: one sorted chunk per layer
    seen: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def node_key(self, entry: np.ndarray, node: np.ndarray) -> np.ndarray:
        key: np.ndarray = entry.astype(np.int64) * self.n_nodes + node
        return key

    def seen_responsibility(self, keys: np.ndarray) -> np.ndarray:
        """The best responsibility each key was reached with before, -1 when never."""
        out = np.full(len(keys), -1.0)
        for ks, rs in self.seen:
            if len(ks):
                pos = np.minimum(np.searchsorted(ks, keys), len(ks) - 1)
                out = np.where(ks[pos] == keys, np.maximum(out, rs[pos]), out)
        return out

    def remember(self, keys: np.ndarray, responsibility: np.ndarray) -> None:
        o = np.argsort(keys, kind="stable")
        self.seen.append((keys[o], responsibility[o]))


class Index:
    """Integer-coded ties of a graph, ready for :meth:`audit` passes."""

    def __init__(self, cols: Columns, policy: Policy | None = None) -> None:
        self.policy = policy = policy or default_policy()
        #: factor of every tie kind under the policy, by kind code
        self.kind_factor = np.array([factor(policy, k) for k in TIE_KINDS])
        self.chain_factor = factor(policy, CHAIN_STEP)
        self.cols = cols
        # --- codes: loans, persons, phones sort like their ids ---------------------
        # (the rows and orders the loader resolved while checking, when it did)
        self.codes = codes = cols.codes or codes_of(cols)
        order = codes.loan_order
        self.loan_order = order  # column row of each loan code
        self.loans = string_array(cols.loan_ids).take(pa.array(order))
        self.persons = string_array(cols.person_ids).take(pa.array(codes.person_order))
        self.platforms = string_array(cols.platform_ids).take(pa.array(codes.platform_order))
        self.person_rank = csr.rank(codes.person_order)  # person code of each person row
        self.platform_rank = csr.rank(codes.platform_order)
        self.loan_rank = csr.rank(order)
        self.phones = phones = codes.phones
        p_phone = np.asarray(codes.period_phone, dtype=np.int64)
        applicant = np.asarray(codes.loan_applicant_phone, dtype=np.int64)[order]
        has_app = applicant >= 0
        nl, npers = len(self.loans), len(self.persons)
        self.person_base = nl  # global code of person i = nl + i
        self.phone_base = nl + npers
        self.loan_platform = csr.recode(self.platform_rank, codes.loan_platform[order])
        self.loan_borrower = csr.recode(self.person_rank, codes.loan_borrower[order])
        self.loan_applied = np.asarray(cols.loan_applied)[order]
        self.loan_known = np.asarray(cols.loan_known)[order]
        statuses = pa.array(sorted(s.value for s in policy.origin_statuses), pa.string())
        self.loan_origin = pc.is_in(string_array(cols.loan_status), value_set=statuses).to_numpy(
            zero_copy_only=False
        )[order]
        self.loan_verified = np.asarray(cols.loan_phone_verified)[order]
        # --- identity linkage: a loan naming its borrower by a platform record carries
        # the record's match step (factor and reason code), per loan code
        self.match_factor = np.array([factor(policy, match_kind(k)) for k in MATCH_KEYS])
        self.loan_match = np.full(nl, -1, dtype=np.int64)  # index in MATCH_KEYS, -1: none
        if cols.loan_record is not None:
            records = np.asarray(string_array(cols.loan_record).to_pylist(), dtype=object)[order]
            for code in np.nonzero(records != "")[0].tolist():
                match = cols.matches[records[code]]
                self.loan_match[code] = MATCH_KEYS.index(match.matched_by)
        self.loan_match_f = np.where(
            self.loan_match >= 0, self.match_factor[np.maximum(self.loan_match, 0)], 1.0
        )
        # --- owner periods, sorted by (phone, since) for searchsorted lookups ------
        p_owner = csr.recode(self.person_rank, codes.period_owner)  # -1: unknown
        p_since = np.asarray(cols.period_since)
        porder = np.argsort(p_phone * (1 << 23) + np.clip(p_since, 0, (1 << 23) - 1), kind="stable")
        self.p_phone = p_phone[porder]
        self.p_since = p_since[porder]
        self.p_until = np.asarray(cols.period_until)[porder]
        self.p_owner = p_owner[porder]
        self.p_verified = np.asarray(cols.period_verified)[porder]
        self.p_ptr = csr.ptr(self.p_phone, len(phones))
        # --- uses: (phone, role, loan) from applicant phones and links -----------
        app_loans = np.nonzero(has_app)[0]
        u_phone = np.concatenate([applicant[has_app], codes.link_phone])
        u_loan = np.concatenate([app_loans, csr.recode(self.loan_rank, codes.link_loan)])
        u_role = np.concatenate(
            [
                np.full(len(app_loans), APPLICANT, dtype=np.int64),
                codes_in(pa.array(ROLE_NAMES, pa.string()), cols.link_role),
            ]
        )
        period = self.period_at(u_phone, self.loan_applied[u_loan])
        # period -1 (no owner period) picks the appended sentinel; works with no periods at all
        u_owner = np.append(self.p_owner, -1)[period]
        u_owner_verified = np.append(self.p_verified, False)[period]
        u_sms = self.loan_verified[u_loan].astype(np.int64)
        u_kind = USE_KIND[u_role, u_sms]
        # --- person -> loan ties (CSR by person) ------------------------------------
        own_n = nl
        person_tie = (u_owner >= 0) & (u_owner != self.loan_borrower[u_loan])
        src = np.concatenate([self.loan_borrower, u_owner[person_tie]])
        self.t_loan = np.concatenate([np.arange(own_n), u_loan[person_tie]])
        self.t_phone = np.concatenate([np.full(own_n, -1), u_phone[person_tie]])
        self.t_role = np.concatenate([np.full(own_n, OWN), u_role[person_tie]])
        # the owns step (-1: none, an own loan) and the loan step (-1: an own loan, whose
        # kind depends on the layer) of each tie
        self.t_owns = np.concatenate(
            [np.full(own_n, -1), OWNS_KIND[u_owner_verified[person_tie].astype(np.int64)]]
        )
        self.t_kind = np.concatenate([np.full(own_n, -1), u_kind[person_tie]])
        # the first factor: the owns step's, or for an own loan its record's match (1.0: none)
        self.t_f1 = np.where(
            self.t_owns >= 0,
            self.kind_factor[np.maximum(self.t_owns, 0)],
            self.loan_match_f[self.t_loan],
        )
        torder = np.argsort(src * nl + self.t_loan)
        for name in ("t_loan", "t_phone", "t_role", "t_owns", "t_kind", "t_f1"):
            setattr(self, name, getattr(self, name)[torder])
        self.t_ptr = csr.ptr(src, npers)
        # --- phone -> loan uses (CSR by phone), for phone subjects ----------------
        uorder = np.argsort(u_phone * max(nl, 1) + u_loan)
        self.u_loan = u_loan[uorder]
        self.u_role = u_role[uorder]
        self.u_owner = u_owner[uorder]
        self.u_sms = u_sms[uorder]
        self.u_ptr = csr.ptr(u_phone, len(phones))

    # -- helpers ---------------------------------------------------------------------

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
        # most numbers have one period; the few with several are looked at further
        more = np.nonzero(count > 1)[0]
        for j in range(1, int(count.max())):
            more = more[j < count[more]]
            cand = lo[more] + j
            starts = self.p_since[cand] <= day[more]
            out[more[starts]] = cand[starts]
        ok = out >= 0
        ok[ok] = self.p_until[out[ok]] >= day[ok]
        return np.where(ok, out, -1)

    # -- reach --------------------------------------------------------------------------

    def _reach(self, platform: np.ndarray, listed: np.ndarray, copied: np.ndarray) -> _Reach:
        """Per entry and origin platform: latest departure day, sharing hops and copy-chain
        index.

        The same labels as :func:`spillover.engines.search.compute_reach`: for each platform
        Q, the best over the entry's copy chain targets (P_i, t_i) of
        (latest t_i, fewest sharing hops from Q to P_i using agreements started by
        t_i, earliest i).

        Only platforms with a loan in an origin status are asked about (columns), and
        only the sharing graphs of the days entries are listed on are searched, from
        those platforms. A chain's days never grow from an entry to the entry it was
        copied from, so an entry's label is its own target's, unless that is not
        reached or its source (listed the same day) is reached in fewer hops: the
        labels of the entry it was copied from, one place further down the chain.
        Entries are labelled in chain order (first listings first), each once: the
        work is entries times columns, where following every chain from every entry
        cost the square of a chain's length times all the platforms.
        """
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import shortest_path

        n_entries, n_plat = len(platform), len(self.platforms)
        origin_platforms = np.unique(self.loan_platform[self.loan_origin])
        origin_platforms = origin_platforms[origin_platforms >= 0]
        n_cols = len(origin_platforms)
        column = np.full(n_plat, n_cols, dtype=np.int64)  # n_cols: no origin loan there
        column[origin_platforms] = np.arange(n_cols)
        # the sharing graph of each listing day: agreements started by then
        s_from = csr.recode(self.platform_rank, self.codes.share_from)
        s_to = csr.recode(self.platform_rank, self.codes.share_to)
        since = np.asarray(self.cols.share_since, dtype=np.int64)
        starts = np.unique(since[since != NEVER])
        epochs, epoch_of = np.unique(
            np.searchsorted(starts, listed, side="right"), return_inverse=True
        )
        epoch_of = epoch_of.ravel()
        own_hops = np.full((n_entries, n_cols), np.inf)  # from each column to the entry's own
        by_epoch = np.argsort(epoch_of, kind="stable")
        bounds = np.searchsorted(epoch_of[by_epoch], np.arange(len(epochs) + 1))
        for k, epoch in enumerate(epochs.tolist() if n_cols else []):
            limit = starts[epoch - 1] if epoch > 0 else NEVER
            on = since <= limit
            graph = csr_matrix(
                (np.ones(int(on.sum())), (s_from[on], s_to[on])), shape=(n_plat, n_plat)
            )
            hops = shortest_path(
                graph, method="D", directed=True, unweighted=True, indices=origin_platforms
            )
            rows = by_epoch[bounds[k] : bounds[k + 1]]
            own_hops[rows] = hops[:, platform[rows]].T
        # chain order: first listings, then the entries copied from them, ...
        has_source = copied >= 0
        has_source[has_source] = listed[copied[has_source]] <= listed[has_source]
        source = np.where(has_source, copied, -1)
        children = np.nonzero(has_source)[0]
        children = children[np.argsort(source[children], kind="stable")]
        child_ptr = csr.ptr(source[children], n_entries)
        best_d = np.full((n_entries, n_cols + 1), NEVER, dtype=np.int64)
        best_h = np.full((n_entries, n_cols + 1), np.inf)
        best_i = np.zeros((n_entries, n_cols + 1), dtype=np.int64)
        cols = slice(0, n_cols)
        rows = np.nonzero(~has_source)[0]  # first listings: their own target
        t = listed[rows][:, None]
        reached = np.isfinite(own_hops[rows])
        best_d[rows, cols] = np.where(reached, t, NEVER)
        best_h[rows, cols] = own_hops[rows]
        done = len(rows)
        while True:
            rows = children[csr.gather(child_ptr, rows)[1]]
            if not len(rows):
                break
            done += len(rows)
            # copies: their own target, or their source's labels one place further down
            t = listed[rows][:, None]
            own = own_hops[rows]
            src = source[rows]
            sd, sh, si = best_d[src, cols], best_h[src, cols], best_i[src, cols]
            mine = np.isfinite(own) & ((sd < t) | (own <= sh))
            best_d[rows, cols] = np.where(mine, t, sd)
            best_h[rows, cols] = np.where(mine, own, sh)
            best_i[rows, cols] = np.where(mine, 0, np.where(np.isfinite(sh), si + 1, 0))
        if done < n_entries:  # a copy loop (the loaders refuse them)
            raise ValueError("a copy chain loops back; the data folder's loaders refuse that")
        return _Reach(best_d, best_h, best_i, column)

    # -- the pass ------------------------------------------------------------------------

    def audit(self, progress: Progress | None = None) -> AuditResult:
        """Best path of every entry, as the core would explain it (without diagnostics).

        The same layered search as :func:`spillover.engines.search.find_ties`, for all entries
        at once: :meth:`_start` (the subjects), then per layer :meth:`_person_ties`
        and :meth:`_phone_ties` (candidate labels), :meth:`_best_per_loan` (one label
        per entry and loan), :meth:`_record_origins` and :meth:`_to_borrowers` (the
        next frontier); :meth:`_result` reads the best paths back.
        """
        entries = self._entries()
        n = len(entries.ids)
        if progress:
            progress("reach", 0, n)
        reach = self._reach(entries.platform, entries.listed, entries.copied)
        if progress:
            progress("reach", n, n)
        state = self._start(entries)
        max_loans = self.policy.max_loans
        for depth in range(1, max_loans + 1):
            candidates = self._person_ties(state, depth)
            if depth == 1:
                candidates += self._phone_ties(state)
            if not candidates:
                break
            labels = self._best_per_loan(state, candidates)
            state.layers.append(labels)
            self._record_origins(state, labels, depth, reach)
            if progress:
                progress("layers", depth, max_loans)
            if depth == max_loans:
                break
            self._to_borrowers(state, labels)
        return self._result(state, reach)

    # -- the pass, step by step ----------------------------------------------------------

    def _entries(self) -> _Entries:
        """The entries in entry_id order, their subjects coded, the phone subjects' owners."""
        cols, codes = self.cols, self.codes
        order = codes.entry_order
        eorder = pa.array(order)
        ids = string_array(cols.entry_ids).take(eorder)
        kind = string_array(cols.entry_kind).take(eorder)
        subject = string_array(cols.entry_subject).take(eorder)
        listed = np.asarray(cols.entry_listed, dtype=np.int64)[order]
        person = csr.recode(self.person_rank, codes.entry_person[order])
        phone = np.asarray(codes.entry_phone, dtype=np.int64)[order]
        owner_now = np.full(len(ids), -1, dtype=np.int64)
        phone_rows = np.nonzero(phone >= 0)[0]
        if len(phone_rows):
            period = self.period_at(phone[phone_rows], listed[phone_rows])
            owner_now[phone_rows] = np.append(self.p_owner, -1)[period]
        # a record subject starts from its person, through the match step
        match = np.full(len(ids), -1, dtype=np.int64)
        start_factor = np.ones(len(ids))
        if cols.matches:
            kinds, subjects = kind.to_pylist(), subject.to_pylist()
            rows = [i for i, k in enumerate(kinds) if k == SubjectKind.RECORD.value]
            found = [(i, cols.matches[subjects[i]]) for i in rows if subjects[i] in cols.matches]
            if found:
                at = np.array([i for i, _ in found], dtype=np.int64)
                person[at] = codes_in(self.persons, pa.array([m.person_id for _, m in found]))
                match[at] = [MATCH_KEYS.index(m.matched_by) for _, m in found]
                start_factor[at] = self.match_factor[match[at]]
        return _Entries(
            ids=ids,
            platform=csr.recode(self.platform_rank, codes.entry_platform[order]),
            kind=kind,
            subject=subject,
            listed=listed,
            copied=csr.recode(csr.rank(order), codes.entry_copied_from[order]),
            subject_person=person,
            subject_phone=phone,
            phone_rows=phone_rows,
            owner_now=owner_now,
            match=match,
            start_factor=start_factor,
        )

    def _start(self, entries: _Entries) -> _PassState:
        """The search before its first layer: person subjects on the frontier, seen."""
        n = len(entries.ids)
        state = _PassState(
            entries=entries,
            n_nodes=self.phone_base + len(self.phones) + 1,
            best=_Best.empty(n),
        )
        rows = np.nonzero(entries.subject_person >= 0)[0]
        person = entries.subject_person[rows]
        start = entries.start_factor[rows]
        state.remember(state.node_key(rows, self.person_base + person), start)
        state.frontier = _Frontier(
            entry=rows,
            person=person,
            responsibility=start,
            rank=np.zeros(len(rows), dtype=np.int64),
        )
        return state

    def _person_ties(self, state: _PassState, depth: int) -> list[_Candidates]:
        """Ties from the frontier people to loans: their own loans, and loans naming a
        phone they owned on the application day."""
        fr = state.frontier
        if fr is None or not len(fr.entry):
            return []
        label, tie = csr.gather(self.t_ptr, fr.person)
        entry = fr.entry[label]
        loan = self.t_loan[tie]
        own_kind = LOAN_KIND[int(depth == 1)]  # only the subject's own loan is OWN_DEFAULT
        kind = np.where(self.t_kind[tie] >= 0, self.t_kind[tie], own_kind)
        responsibility = fr.responsibility[label] * self.t_f1[tie] * self.kind_factor[kind]
        # in time, and able to beat the entry's best origin so far (every later factor
        # is <= 1 and a tie with more loans loses)
        keep = (self.loan_applied[loan] <= state.entries.listed[entry]) & (
            responsibility > state.best.responsibility[entry]
        )
        label, tie, entry, loan = label[keep], tie[keep], entry[keep], loan[keep]
        kind = kind[keep]
        n_phone_keys = len(self.phones) + 1  # phone key: phone code + 1 (0 = own loan)
        return [
            _Candidates(
                entry=entry,
                loan=loan,
                responsibility=responsibility[keep],
                key=(fr.rank[label] * n_phone_keys + self.t_phone[tie] + 1) * 8 + self.t_role[tie],
                parent=label,
                summary=kind * 2 + (self.t_owns[tie] == OWNS_UNVERIFIED),
            )
        ]

    def _phone_ties(self, state: _PassState) -> list[_Candidates]:
        """Ties from phone subjects to the loans naming them (first layer only)."""
        entries = state.entries
        rows = entries.phone_rows
        if not len(rows):
            return []
        label, use = csr.gather(self.u_ptr, entries.subject_phone[rows])
        entry = rows[label]
        loan = self.u_loan[use]
        keep = self.loan_applied[loan] <= entries.listed[entry]
        use, entry, loan = use[keep], entry[keep], loan[keep]
        owner = self.u_owner[use]
        borrower_owned = (owner >= 0) & (owner == self.loan_borrower[loan])
        now = entries.owner_now[entry]
        owner_changed = (now >= 0) & (now != owner)
        kind = SUBJECT_PHONE_KIND[
            self.u_role[use],
            self.u_sms[use],
            borrower_owned.astype(np.int64),
            owner_changed.astype(np.int64),
        ]
        return [
            _Candidates(
                entry=entry,
                loan=loan,
                responsibility=1.0 * self.kind_factor[kind],
                key=(entries.subject_phone[entry] + 1) * 8 + self.u_role[use],
                parent=np.full(len(entry), -1),
                summary=kind * 2,
            )
        ]

    def _best_per_loan(self, state: _PassState, parts: list[_Candidates]) -> _Layer:
        """The best candidate per (entry, loan) by responsibility then key, less what an
        earlier layer beats (same or better responsibility with fewer loans)."""
        c = _Candidates.concat(parts)
        group = state.node_key(c.entry, c.loan)
        o = np.lexsort((c.key, -c.responsibility, group))
        first = np.ones(len(o), dtype=bool)
        first[1:] = group[o][1:] != group[o][:-1]
        o = o[first]
        o = o[state.seen_responsibility(group[o]) < c.responsibility[o]]
        state.remember(group[o], c.responsibility[o])
        return _Layer(
            entry=c.entry[o],
            loan=c.loan[o],
            responsibility=c.responsibility[o],
            key=c.key[o],
            parent=c.parent[o],
            summary=c.summary[o],
        )

    def _record_origins(self, state: _PassState, labels: _Layer, depth: int, reach: _Reach) -> None:
        """Keep each entry's best origin: an origin loan of this layer that reaches the
        listing in time and beats the best so far (responsibility, loans, loan id)."""
        plat = self.loan_platform[labels.loan]
        ok = self.loan_origin[labels.loan] & (
            self.loan_known[labels.loan] <= reach.deadline[labels.entry, reach.column[plat]]
        )
        oi = np.nonzero(ok)[0]
        if not len(oi):
            return
        oi = oi[np.lexsort((labels.loan[oi], -labels.responsibility[oi], labels.entry[oi]))]
        oe, op, ol = labels.entry[oi], labels.responsibility[oi], labels.loan[oi]
        firsts = np.ones(len(oe), dtype=bool)
        firsts[1:] = oe[1:] != oe[:-1]
        oi, oe, op, ol = oi[firsts], oe[firsts], op[firsts], ol[firsts]
        best = state.best
        better = (op > best.responsibility[oe]) | (
            (op == best.responsibility[oe])
            & ((best.depth[oe] > depth) | ((best.depth[oe] == depth) & (ol < best.loan[oe])))
        )
        oi, oe = oi[better], oe[better]
        best.responsibility[oe] = labels.responsibility[oi]
        best.depth[oe] = depth
        best.loan[oe] = labels.loan[oi]
        best.label[oe] = oi

    def _to_borrowers(self, state: _PassState, labels: _Layer) -> None:
        """The next frontier: from each loan label to the loan's borrower, best per
        (entry, person), with the rank of its key among the new labels."""
        person = self.loan_borrower[labels.loan]
        # loan -BORROWED_BY-> borrower, through the loan's record's match step if any
        responsibility = labels.responsibility * self.chain_factor * self.loan_match_f[labels.loan]
        group = state.node_key(labels.entry, self.person_base + person)
        # else nothing further can win
        idx = np.nonzero(responsibility > state.best.responsibility[labels.entry])[0]
        idx = idx[state.seen_responsibility(group[idx]) < responsibility[idx]]
        o = idx[np.lexsort((labels.loan[idx], labels.key[idx], -responsibility[idx], group[idx]))]
        first = np.ones(len(o), dtype=bool)
        first[1:] = group[o][1:] != group[o][:-1]
        idx = o[first]
        state.remember(group[idx], responsibility[idx])
        # dense rank of the new labels' keys (key of the loan label, then the borrower)
        key, loan, who = labels.key[idx], labels.loan[idx], person[idx]
        ko = np.lexsort((who, loan, key))
        change = np.ones(len(ko), dtype=bool)
        change[1:] = (
            (key[ko][1:] != key[ko][:-1])
            | (loan[ko][1:] != loan[ko][:-1])
            | (who[ko][1:] != who[ko][:-1])
        )
        rank = np.empty(len(ko), dtype=np.int64)
        rank[ko] = np.cumsum(change)
        labels.to_person = idx
        state.frontier = _Frontier(
            entry=labels.entry[idx], person=who, responsibility=responsibility[idx], rank=rank
        )

    def _result(self, state: _PassState, reach: _Reach) -> AuditResult:
        entries, best = state.entries, state.best
        found = best.loan >= 0
        safe = np.maximum(best.loan, 0)
        return AuditResult(
            entry_ids=entries.ids,
            platform_ids=self.platforms.take(pa.array(entries.platform)),
            subject_kinds=entries.kind,
            subjects=entries.subject,
            listed=entries.listed,
            responsibility=np.where(found, best.responsibility, np.nan),
            depth=np.where(found, best.depth, 0),
            origin_loan=np.where(found, safe, -1),
            origin_borrower=np.where(found, self.loan_borrower[safe], -1),
            origin_platform=np.where(found, self.loan_platform[safe], -1),
            reason_codes=self._reason_codes(state, reach),
            index=self,
        )

    def _reason_codes(self, state: _PassState, reach: _Reach) -> np.ndarray:
        """Reason codes of every entry's best path, in step order (as the core lists them).

        Each best path is summarised by a small integer signature (its tie kinds per
        layer, and whether it was shared or copied); the text is built once per
        distinct signature.
        """
        best, layers = state.best, state.layers
        n = len(best.loan)
        found = best.loan >= 0
        depth = best.depth.copy()
        per_layer = np.zeros((n, len(layers)), dtype=np.int64)  # summaries, layer 1 first
        # the record match of each layer's loan (index in MATCH_KEYS, -1: none)
        layer_match = np.full((n, len(layers)), -1, dtype=np.int64)
        layer = np.where(found, best.depth - 1, -1)
        idx = best.label.copy()
        for k in range(len(layers) - 1, -1, -1):
            at = np.nonzero(found & (layer == k))[0]
            if not len(at):
                continue
            per_layer[at, k] = layers[k].summary[idx[at]]
            layer_match[at, k] = self.loan_match[layers[k].loan[idx[at]]]
            if k > 0:
                parent = layers[k].parent[idx[at]]
                idx[at] = layers[k - 1].to_person[parent]
                layer[at] = k - 1
        plat = self.loan_platform[np.maximum(best.loan, 0)]
        rows = np.arange(n)
        col = reach.column[plat]
        shared = found & (reach.sharing_hops[rows, col] > 0)
        copied = found & (reach.chain_index[rows, col] > 0)
        # one integer per path: depth, shared, copied, then each layer's summary
        bits = _LAYER_BITS
        if 2 + (max(len(layers), 1)).bit_length() + bits * len(layers) > 62:
            raise ValueError("too many layers to summarise paths in 64 bits")
        signature = depth * 4 + shared * 2 + copied
        for k in range(len(layers)):
            signature = (signature << bits) + per_layer[:, k]
        distinct, inverse = np.unique(signature, return_inverse=True)
        texts = np.empty(len(distinct), dtype=object)
        for j, sig in enumerate(distinct.tolist()):
            summaries: list[int] = []
            for _ in range(len(layers)):
                summaries.insert(0, sig & ((1 << bits) - 1))
                sig >>= bits
            texts[j] = " ".join(path_codes(summaries[: sig // 4], bool(sig & 2), bool(sig & 1)))
        out = texts[inverse.ravel()]
        # paths through a platform record's match step (a record subject, or a loan named
        # by a record): their codes are built per distinct signature with the matches
        touched = found & ((state.entries.match >= 0) | (layer_match >= 0).any(axis=1))
        if touched.any():
            at = np.nonzero(touched)[0]
            keys: dict[tuple[int, ...], str] = {}
            for i, d, sh, co, m in zip(
                at.tolist(),
                depth[at].tolist(),
                shared[at].tolist(),
                copied[at].tolist(),
                state.entries.match[at].tolist(),
                strict=True,
            ):
                key = (d, sh, co, m, *per_layer[i, :d].tolist(), *layer_match[i, :d].tolist())
                if key not in keys:
                    keys[key] = " ".join(
                        path_codes(
                            per_layer[i, :d].tolist(),
                            bool(sh),
                            bool(co),
                            entry_match=m,
                            loan_matches=layer_match[i, :d].tolist(),
                        )
                    )
                out[i] = keys[key]
        return out


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
        if kind.factor_key == _OWN_LOAN_KEY and matches[k] >= 0:
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


def rows(result: AuditResult, policy: Policy) -> Iterator[dict[str, object]]:
    """Audit rows (docs/contract.md §4 fields) from a batch result, scored like the core."""
    index = result.index
    found = result.origin_loan >= 0
    # score each distinct best responsibility once, with the rules' one score function
    distinct, inverse = np.unique(np.where(found, result.responsibility, -1.0), return_inverse=True)
    scores = [score(p if p >= 0 else None, policy) for p in distinct.tolist()]
    inverse = inverse.ravel()
    responsibility = np.array([s.responsibility or 0.0 for s in scores])[inverse]
    contamination = np.array([s.contamination for s in scores])[inverse]
    verdict = np.array([s.verdict.value for s in scores], dtype=object)[inverse]
    found_list = found.tolist()

    def maybe(values: list[object]) -> list[object]:
        return [v if ok else None for v, ok in zip(values, found_list, strict=True)]

    def names(universe: pa.Array, codes: np.ndarray) -> list[object]:
        if not len(universe):
            return [None] * len(codes)
        return maybe(universe.take(pa.array(np.maximum(codes, 0))).to_pylist())

    columns = {
        "entry_id": result.entry_ids.to_pylist(),
        "platform_id": result.platform_ids.to_pylist(),
        "subject_kind": result.subject_kinds.to_pylist(),
        "subject": result.subjects.to_pylist(),
        "listed_at": [date.fromordinal(d).isoformat() for d in result.listed.tolist()],
        "contamination": contamination.tolist(),
        "verdict": verdict.tolist(),
        "origin_loan_id": names(index.loans, result.origin_loan),
        "origin_borrower_id": names(index.persons, result.origin_borrower),
        "origin_platform_id": names(index.platforms, result.origin_platform),
        "responsibility": maybe(responsibility.tolist()),
        "hops": maybe(result.depth.tolist()),
        "reason_codes": result.reason_codes.tolist(),
    }
    keys = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(keys, values, strict=True))
