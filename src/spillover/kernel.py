"""The one-pass audit: every entry explained and scored in a few vectorized passes.

:func:`spillover.core.explain` searches from one subject at a time. For a whole
blacklist that is one search per entry; this module instead runs the *same*
layered search for all entries at once on integer arrays (numpy), one layer per
loan depth, and gives the same best path, score and reason codes as the core
(tests hold the two to each other). It is a compiled kernel behind the core,
not a second definition of what a path means:

* ties are precomputed once: person -> loan (own loans, and loans naming a
  phone the person owned on the application day), phone -> loan (for phone
  subjects), loan -> borrower;
* every layer gathers the next ties of all frontier labels with CSR offsets,
  keeps loans applied no later than each entry's listing, reduces to the best
  label per (entry, node) with the core's order (responsibility, then the
  fixed-shape key ``(phone, role, loan, borrower)`` per layer, as integer codes
  that sort like the core's strings), and drops labels an earlier layer beats;
* reach (origin platform -> listing) is computed per entry from reachability
  matrices of the sharing graph, one per period between two sharing start dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from .columns import FOREVER, NEVER, Columns, columns_from_dataset, columns_from_facts
from .policy import Policy, default_policy
from .rules import APPLICANT as APPLICANT_ROLE
from .rules import (
    CHAIN_STEP,
    COPY_STEP,
    LISTING_STEP,
    NO_PATH,
    ORIGIN_STEP,
    ROLES,
    SHARING_STEP,
    TIE_KINDS,
    StepKind,
    factor,
    loan_kind,
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
_USE_KIND = _kind_table(
    lambda role, sms: use_kind(role, sms) if role else loan_kind(subject=True),
    ROLE_NAMES,
    _BOOLS,
)
#: phone-subject kind by (role code, sms verified, borrower owned, owner changed)
_SUBJECT_PHONE_KIND = _kind_table(
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
_OWNS_KIND = _kind_table(owns_kind, _BOOLS)
#: own-loan kind by "the subject's own loan" (layer 1)
_LOAN_KIND = _kind_table(lambda subject: loan_kind(subject=subject), _BOOLS)
_OWNS_UNVERIFIED = KIND_CODE[owns_kind(False).name]

__all__ = [
    "FOREVER",
    "NEVER",
    "AuditResult",
    "Columns",
    "Index",
    "Progress",
    "columns_from_dataset",
    "columns_from_facts",
    "round6",
    "rows",
]

Progress = Callable[[str, int, int], None]


def _arrow(values: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A string column as one Arrow array (numpy object/str arrays are converted)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(np.asarray(values, dtype=object), pa.string())


def _sorted_unique(*columns: np.ndarray | pa.Array) -> pa.Array:
    """The distinct strings of ``columns``, sorted (so codes sort like the strings)."""
    arrays = [_arrow(c) for c in columns]
    distinct = pc.unique(pa.concat_arrays(arrays)) if arrays else pa.array([], pa.string())
    return distinct.take(pc.sort_indices(distinct))


def _codes(universe: pa.Array, values: np.ndarray | pa.Array) -> np.ndarray:
    """Index of each value in ``universe`` (a hash lookup), -1 where absent."""
    found = pc.index_in(_arrow(values), value_set=universe)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _is(values: np.ndarray | pa.Array, text: str) -> np.ndarray:
    return pc.equal(_arrow(values), text).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class AuditResult:
    """One row per entry (arrays in entry_id order) of the batch pass."""

    entry_ids: pa.Array
    platform_ids: pa.Array
    subject_kinds: pa.Array
    subjects: pa.Array
    listed: np.ndarray  # ordinal days
    prob: np.ndarray  # best responsibility (unrounded), nan when unexplained
    hops: np.ndarray  # loans on the best path, 0 when unexplained
    origin_loan: np.ndarray  # loan code, -1 when unexplained
    origin_borrower: np.ndarray  # person code, -1
    origin_platform: np.ndarray  # platform code, -1
    reason_codes: np.ndarray  # space-separated codes (str objects)
    index: Index

    def __len__(self) -> int:
        return len(self.entry_ids)


class Index:
    """Integer-coded ties of a graph, ready for :meth:`audit` passes."""

    def __init__(self, cols: Columns, policy: Policy | None = None) -> None:
        self.policy = policy = policy or default_policy()
        #: factor of every tie kind under the policy, by kind code
        self.kind_factor = np.array([factor(policy, k) for k in TIE_KINDS])
        self.chain_factor = factor(policy, CHAIN_STEP)
        self.cols = cols
        # --- codes: loans, persons, phones sort like their KIND:ID strings -------
        loan_ids = _arrow(cols.loan_ids)
        order = pc.sort_indices(loan_ids).to_numpy()
        self.loans = loan_ids.take(pa.array(order))
        self.persons = _sorted_unique(cols.person_ids)
        self.platforms = _sorted_unique(cols.platform_ids)
        applicant = _arrow(cols.loan_applicant_phone).take(pa.array(order))
        has_app = ~_is(applicant, "")
        subjects = _arrow(cols.entry_subject)
        phones = _sorted_unique(
            cols.period_phone,
            cols.link_phone,
            applicant.filter(pa.array(has_app)),
            subjects.filter(pa.array(_is(cols.entry_kind, "phone"))),
        )
        self.phones = phones
        nl, npers = len(self.loans), len(self.persons)
        self.person_base = nl  # global code of person i = nl + i
        self.phone_base = nl + npers
        self.loan_platform = _codes(
            self.platforms, _arrow(cols.loan_platform).take(pa.array(order))
        )
        self.loan_borrower = _codes(self.persons, _arrow(cols.loan_borrower).take(pa.array(order)))
        self.loan_applied = np.asarray(cols.loan_applied)[order]
        self.loan_known = np.asarray(cols.loan_known)[order]
        statuses = pa.array(sorted(s.value for s in policy.origin_statuses), pa.string())
        self.loan_origin = pc.is_in(_arrow(cols.loan_status), value_set=statuses).to_numpy(
            zero_copy_only=False
        )[order]
        self.loan_verified = np.asarray(cols.loan_phone_verified)[order]
        # --- owner periods, sorted by (phone, since) for searchsorted lookups ------
        p_phone = _codes(phones, cols.period_phone)
        p_owner = _codes(self.persons, cols.period_owner)  # "" (unknown) is absent: -1
        p_since = np.asarray(cols.period_since)
        porder = np.argsort(p_phone * (1 << 23) + np.clip(p_since, 0, (1 << 23) - 1), kind="stable")
        self.p_phone = p_phone[porder]
        self.p_since = p_since[porder]
        self.p_until = np.asarray(cols.period_until)[porder]
        self.p_owner = p_owner[porder]
        self.p_verified = np.asarray(cols.period_verified)[porder]
        self.p_ptr = np.searchsorted(self.p_phone, np.arange(len(phones) + 1))
        # --- uses: (phone, role, loan) from applicant phones and links -----------
        app_loans = np.nonzero(has_app)[0]
        u_phone = np.concatenate(
            [_codes(phones, applicant.filter(pa.array(has_app))), _codes(phones, cols.link_phone)]
        )
        u_loan = np.concatenate([app_loans, _codes(self.loans, cols.link_loan)])
        u_role = np.concatenate(
            [
                np.full(len(app_loans), APPLICANT, dtype=np.int64),
                _codes(pa.array(ROLE_NAMES, pa.string()), cols.link_role),
            ]
        )
        period = self._period_at(u_phone, self.loan_applied[u_loan])
        u_owner = np.where(period >= 0, self.p_owner[np.maximum(period, 0)], -1)
        u_owner_verified = np.where(period >= 0, self.p_verified[np.maximum(period, 0)], False)
        u_sms = self.loan_verified[u_loan].astype(np.int64)
        u_kind = _USE_KIND[u_role, u_sms]
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
            [np.full(own_n, -1), _OWNS_KIND[u_owner_verified[person_tie].astype(np.int64)]]
        )
        self.t_kind = np.concatenate([np.full(own_n, -1), u_kind[person_tie]])
        self.t_f1 = np.where(self.t_owns >= 0, self.kind_factor[np.maximum(self.t_owns, 0)], 1.0)
        torder = np.argsort(src * nl + self.t_loan)
        for name in ("t_loan", "t_phone", "t_role", "t_owns", "t_kind", "t_f1"):
            setattr(self, name, getattr(self, name)[torder])
        self.t_ptr = np.searchsorted(src[torder], np.arange(npers + 1))
        # --- phone -> loan uses (CSR by phone), for phone subjects ----------------
        uorder = np.argsort(u_phone * max(nl, 1) + u_loan)
        self.u_loan = u_loan[uorder]
        self.u_role = u_role[uorder]
        self.u_owner = u_owner[uorder]
        self.u_sms = u_sms[uorder]
        self.u_ptr = np.searchsorted(u_phone[uorder], np.arange(len(phones) + 1))
        # --- sharing epochs ----------------------------------------------------------
        self._build_epochs()

    # -- helpers ---------------------------------------------------------------------

    def _period_at(self, phone: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Index of the owner period of ``phone`` covering ``day``, or -1.

        Periods are sorted by (phone, since) and do not overlap, so the covering
        one is the last of the phone's periods starting on or before ``day``.
        """
        out = np.full(len(phone), -1, dtype=np.int64)
        if len(self.p_phone) == 0 or len(phone) == 0:
            return out
        lo = self.p_ptr[phone]
        count = self.p_ptr[phone + 1] - lo
        for j in range(int(count.max())):  # most numbers have one period, a few have several
            cand = lo + j
            starts = (j < count) & (self.p_since[np.minimum(cand, len(self.p_since) - 1)] <= day)
            out = np.where(starts, cand, out)
        ok = out >= 0
        ok[ok] = self.p_until[out[ok]] >= day[ok]
        return np.where(ok, out, -1)

    def _build_epochs(self) -> None:
        cols = self.cols
        n = len(self.platforms)
        s_from = _codes(self.platforms, cols.share_from)
        s_to = _codes(self.platforms, cols.share_to)
        since = np.asarray(cols.share_since, dtype=np.int64)
        self.epoch_days = np.unique(since[since != NEVER])
        dists = []
        for k in range(len(self.epoch_days) + 1):
            limit = self.epoch_days[k - 1] if k > 0 else NEVER
            on = since <= limit
            graph = csr_matrix((np.ones(int(on.sum())), (s_from[on], s_to[on])), shape=(n, n))
            dists.append(shortest_path(graph, method="D", directed=True, unweighted=True))
        self.epoch_dist = np.stack(dists) if dists else np.zeros((1, n, n))

    def _gather(self, ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each label row, the CSR positions of its node's edges: (label index, edge index)."""
        start = ptr[rows]
        counts = ptr[rows + 1] - start
        total = int(counts.sum())
        label = np.repeat(np.arange(len(rows)), counts)
        offsets = np.cumsum(counts) - counts
        edge = start[label] + (np.arange(total) - offsets[label])
        return label, edge

    # -- reach --------------------------------------------------------------------------

    def _reach(
        self, platform: np.ndarray, listed: np.ndarray, copied: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per entry and platform: latest departure day, hops and copy-chain index.

        The same labels as :func:`spillover.core.compute_reach`: for each platform
        Q, the best over the entry's copy chain targets (P_i, t_i) of
        (latest t_i, fewest sharing hops from Q to P_i using agreements started by
        t_i, earliest i).
        """
        n_entries, n_plat = len(platform), len(self.platforms)
        best_d = np.full((n_entries, n_plat), NEVER, dtype=np.int64)
        best_h = np.full((n_entries, n_plat), np.inf)
        best_i = np.zeros((n_entries, n_plat), dtype=np.int64)
        cur = np.arange(n_entries)
        alive = np.ones(n_entries, dtype=bool)
        for i in range(n_entries + 1):  # a chain never loops (the loader refuses loops)
            rows = np.nonzero(alive)[0]
            if len(rows) == 0:
                break
            at = cur[rows]
            t = listed[at]
            ep = np.searchsorted(self.epoch_days, t, side="right")
            hops = self.epoch_dist[ep, :, platform[at]]  # (rows, n_plat): hops from each Q
            better = np.isfinite(hops) & (
                (t[:, None] > best_d[rows]) | ((t[:, None] == best_d[rows]) & (hops < best_h[rows]))
            )
            r, q = np.nonzero(better)
            best_d[rows[r], q] = t[r]
            best_h[rows[r], q] = hops[r, q]
            best_i[rows[r], q] = i
            parent = copied[at]
            ok = parent >= 0
            ok[ok] = listed[parent[ok]] <= t[ok]
            alive[rows] = ok
            cur[rows[ok]] = parent[ok]
        return best_d, best_h, best_i

    # -- the pass ------------------------------------------------------------------------

    def audit(self, progress: Progress | None = None) -> AuditResult:
        """Best path of every entry, as the core would explain it (without diagnostics)."""
        policy = self.policy
        cols = self.cols
        entry_ids = _arrow(cols.entry_ids)
        eorder = pc.sort_indices(entry_ids)
        e_ids = entry_ids.take(eorder)
        eo = eorder.to_numpy()
        e_platform = _codes(self.platforms, _arrow(cols.entry_platform).take(eorder))
        e_kind = _arrow(cols.entry_kind).take(eorder)
        e_subject = _arrow(cols.entry_subject).take(eorder)
        e_listed = np.asarray(cols.entry_listed, dtype=np.int64)[eo]
        e_copied = _codes(e_ids, _arrow(cols.entry_copied_from).take(eorder))
        n_entries = len(e_ids)
        if progress:
            progress("reach", 0, n_entries)
        reach_d, reach_h, reach_i = self._reach(e_platform, e_listed, e_copied)
        if progress:
            progress("reach", n_entries, n_entries)

        is_person = _is(e_kind, "person")
        subj_person = np.where(is_person, _codes(self.persons, e_subject), -1)
        subj_phone = np.where(is_person, -1, _codes(self.phones, e_subject))
        owner_now = np.full(n_entries, -1, dtype=np.int64)
        ph_rows = np.nonzero(subj_phone >= 0)[0]
        if len(ph_rows):
            per = self._period_at(subj_phone[ph_rows], e_listed[ph_rows])
            owner_now[ph_rows] = np.where(per >= 0, self.p_owner[np.maximum(per, 0)], -1)

        # seen[(entry, node)] -> best responsibility reached at an earlier layer
        n_nodes = self.phone_base + len(self.phones) + 1
        seen: list[tuple[np.ndarray, np.ndarray]] = []

        def key_of(e: np.ndarray, node: np.ndarray) -> np.ndarray:
            return e.astype(np.int64) * n_nodes + node

        def seen_prob(keys: np.ndarray) -> np.ndarray:
            out = np.full(len(keys), -1.0)
            for ks, ps in seen:
                if len(ks):
                    pos = np.minimum(np.searchsorted(ks, keys), len(ks) - 1)
                    out = np.where(ks[pos] == keys, np.maximum(out, ps[pos]), out)
            return out

        def remember(keys: np.ndarray, probs: np.ndarray) -> None:
            o = np.argsort(keys, kind="stable")
            seen.append((keys[o], probs[o]))

        subj_rows = np.nonzero(subj_person >= 0)[0]
        remember(
            key_of(subj_rows, self.person_base + subj_person[subj_rows]), np.ones(len(subj_rows))
        )
        # frontier person labels: entry, person, responsibility, rank of their key
        fr_e, fr_person = subj_rows, subj_person[subj_rows]
        fr_prob = np.ones(len(subj_rows))
        fr_rank = np.zeros(len(subj_rows), dtype=np.int64)
        n_phone_keys = len(self.phones) + 1  # phone key: local phone index + 1 (0 = own loan)

        best_prob = np.full(n_entries, -1.0)
        best_hops = np.zeros(n_entries, dtype=np.int64)
        best_loan = np.full(n_entries, -1, dtype=np.int64)
        best_layer = np.full(n_entries, -1, dtype=np.int64)
        best_idx = np.full(n_entries, -1, dtype=np.int64)
        layers: list[dict[str, np.ndarray]] = []

        for layer in range(1, policy.max_loans + 1):
            parts = []
            if len(fr_e):
                lab, edge = self._gather(self.t_ptr, fr_person)
                e = fr_e[lab]
                loan = self.t_loan[edge]
                own_kind = _LOAN_KIND[int(layer == 1)]
                kind = np.where(self.t_kind[edge] >= 0, self.t_kind[edge], own_kind)
                prob = fr_prob[lab] * self.t_f1[edge] * self.kind_factor[kind]
                # in time, and able to beat the entry's best origin so far (every
                # later factor is <= 1 and a tie with more loans loses)
                keep = (self.loan_applied[loan] <= e_listed[e]) & (prob > best_prob[e])
                lab, edge, e, loan, prob = lab[keep], edge[keep], e[keep], loan[keep], prob[keep]
                kind = kind[keep]
                parts.append(
                    (
                        e,
                        loan,
                        prob,
                        (fr_rank[lab] * n_phone_keys + self.t_phone[edge] + 1) * 8
                        + self.t_role[edge],
                        lab,
                        kind * 2 + (self.t_owns[edge] == _OWNS_UNVERIFIED),
                    )
                )
            if layer == 1 and len(ph_rows):
                lab, edge = self._gather(self.u_ptr, subj_phone[ph_rows])
                e = ph_rows[lab]
                loan = self.u_loan[edge]
                keep = self.loan_applied[loan] <= e_listed[e]
                edge, e, loan = edge[keep], e[keep], loan[keep]
                owner = self.u_owner[edge]
                own = (owner >= 0) & (owner == self.loan_borrower[loan])
                moved = (owner_now[e] >= 0) & (owner_now[e] != owner)
                kind = _SUBJECT_PHONE_KIND[
                    self.u_role[edge],
                    self.u_sms[edge],
                    own.astype(np.int64),
                    moved.astype(np.int64),
                ]
                parts.append(
                    (
                        e,
                        loan,
                        1.0 * self.kind_factor[kind],
                        (subj_phone[e] + 1) * 8 + self.u_role[edge],
                        np.full(len(e), -1),
                        kind * 2,
                    )
                )
            if not parts:
                break
            e, loan, prob, tkey, parent, code = (
                np.concatenate(x) for x in zip(*parts, strict=True)
            )
            # best label per (entry, loan): responsibility, then the key
            group = key_of(e, loan)
            o = np.lexsort((tkey, -prob, group))
            first = np.ones(len(o), dtype=bool)
            first[1:] = group[o][1:] != group[o][:-1]
            o = o[first]
            # drop what an earlier layer beats (same or better responsibility, fewer loans)
            o = o[seen_prob(group[o]) < prob[o]]
            c = {
                "e": e[o],
                "loan": loan[o],
                "prob": prob[o],
                "tkey": tkey[o],
                "parent": parent[o],
                "code": code[o],
            }
            remember(group[o], c["prob"])
            layers.append(c)
            # origins of this layer
            plat = self.loan_platform[c["loan"]]
            ok = self.loan_origin[c["loan"]] & (self.loan_known[c["loan"]] <= reach_d[c["e"], plat])
            oi = np.nonzero(ok)[0]
            if len(oi):
                o2 = np.lexsort((c["loan"][oi], -c["prob"][oi], c["e"][oi]))
                oi = oi[o2]
                oe, op, ol = c["e"][oi], c["prob"][oi], c["loan"][oi]
                firsts = np.ones(len(oe), dtype=bool)
                firsts[1:] = oe[1:] != oe[:-1]
                oi, oe, op, ol = oi[firsts], oe[firsts], op[firsts], ol[firsts]
                better = (op > best_prob[oe]) | (
                    (op == best_prob[oe])
                    & ((best_hops[oe] > layer) | ((best_hops[oe] == layer) & (ol < best_loan[oe])))
                )
                oi, oe = oi[better], oe[better]
                best_prob[oe] = c["prob"][oi]
                best_hops[oe] = layer
                best_loan[oe] = c["loan"][oi]
                best_layer[oe] = layer - 1
                best_idx[oe] = oi
            if progress:
                progress("layers", layer, policy.max_loans)
            if layer == policy.max_loans:
                break
            # on to the borrowers of these loans
            person = self.loan_borrower[c["loan"]]
            prob = c["prob"] * self.chain_factor
            group = key_of(c["e"], self.person_base + person)
            idx = np.nonzero(prob > best_prob[c["e"]])[0]  # else nothing further can win
            idx = idx[seen_prob(group[idx]) < prob[idx]]
            o = idx[np.lexsort((c["loan"][idx], c["tkey"][idx], -prob[idx], group[idx]))]
            first = np.ones(len(o), dtype=bool)
            first[1:] = group[o][1:] != group[o][:-1]
            idx = o[first]
            remember(group[idx], prob[idx])
            # dense rank of the new labels' keys (key of the loan label, then the borrower)
            ko = np.lexsort((person[idx], c["loan"][idx], c["tkey"][idx]))
            change = np.ones(len(ko), dtype=bool)
            change[1:] = (
                (c["tkey"][idx][ko][1:] != c["tkey"][idx][ko][:-1])
                | (c["loan"][idx][ko][1:] != c["loan"][idx][ko][:-1])
                | (person[idx][ko][1:] != person[idx][ko][:-1])
            )
            rank = np.empty(len(ko), dtype=np.int64)
            rank[ko] = np.cumsum(change)
            c["to_person"] = idx
            fr_e, fr_person, fr_prob, fr_rank = c["e"][idx], person[idx], prob[idx], rank

        found = best_loan >= 0
        safe = np.maximum(best_loan, 0)
        return AuditResult(
            entry_ids=e_ids,
            platform_ids=self.platforms.take(pa.array(e_platform)),
            subject_kinds=e_kind,
            subjects=e_subject,
            listed=e_listed,
            prob=np.where(found, best_prob, np.nan),
            hops=np.where(found, best_hops, 0),
            origin_loan=np.where(found, safe, -1),
            origin_borrower=np.where(found, self.loan_borrower[safe], -1),
            origin_platform=np.where(found, self.loan_platform[safe], -1),
            reason_codes=self._reason_codes(
                best_layer, best_idx, best_loan, layers, reach_h, reach_i
            ),
            index=self,
        )

    def _reason_codes(
        self,
        best_layer: np.ndarray,
        best_idx: np.ndarray,
        best_loan: np.ndarray,
        layers: list[dict[str, np.ndarray]],
        reach_h: np.ndarray,
        reach_i: np.ndarray,
    ) -> np.ndarray:
        """Reason codes of every entry's best path, in step order (as the core lists them).

        Each best path is summarised by a small integer signature (its tie codes per
        layer, and whether it was shared or copied); the text is built once per
        distinct signature.
        """
        n = len(best_layer)
        found = best_layer >= 0
        depth = np.where(found, best_layer + 1, 0)
        per_layer = np.zeros((n, len(layers)), dtype=np.int64)  # code*2+unverified, layer 1 first
        layer = best_layer.copy()
        idx = best_idx.copy()
        for k in range(len(layers) - 1, -1, -1):
            at = np.nonzero(found & (layer == k))[0]
            if not len(at):
                continue
            per_layer[at, k] = layers[k]["code"][idx[at]]
            if k > 0:
                parent = layers[k]["parent"][idx[at]]
                idx[at] = layers[k - 1]["to_person"][parent]
                layer[at] = k - 1
        plat = self.loan_platform[np.maximum(best_loan, 0)]
        rows = np.arange(n)
        shared = found & (reach_h[rows, plat] > 0)
        copied = found & (reach_i[rows, plat] > 0)
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
            summaries = []
            for _ in range(len(layers)):
                summaries.insert(0, sig & ((1 << bits) - 1))
                sig >>= bits
            texts[j] = " ".join(_path_codes(summaries[: sig // 4], bool(sig & 2), bool(sig & 1)))
        return texts[inverse.ravel()]


def _path_codes(layers: list[int], shared: bool, copied: bool) -> tuple[str, ...]:
    """The reason codes of a path from its layer summaries, listed as the core lists
    them: the codes of its steps in step order (:func:`spillover.rules.reason_codes`)."""
    if not layers:
        return (NO_PATH,)
    steps: list[str | None] = []
    for k, summary in enumerate(layers):
        if k > 0:
            steps.append(CHAIN_STEP.code)
        if summary % 2:
            steps.append(owns_kind(False).code)
        steps.append(TIE_KINDS[summary // 2].code)
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
    """Audit rows (CONTRACT §4 fields) from a batch result, scored like the core."""
    index = result.index
    found = result.origin_loan >= 0
    # score each distinct best responsibility once, with the rules' one score function
    distinct, inverse = np.unique(np.where(found, result.prob, -1.0), return_inverse=True)
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
        "hops": maybe(result.hops.tolist()),
        "reason_codes": result.reason_codes.tolist(),
    }
    keys = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(keys, values, strict=True))
