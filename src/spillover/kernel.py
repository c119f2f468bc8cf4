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
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from .model import Dataset
from .policy import Policy, default_policy

ROUND = 6
NEVER = np.int64(-(2**40))  # a day before every day (missing `since`)
FOREVER = np.int64(2**40)  # a day after every day (missing `until`)

#: role codes sort like the role strings ("" = own loan sorts first)
ROLE_NAMES = ("", "address_book", "applicant", "emergency_contact", "guarantor", "reference")
ROLE_CODE = {name: i for i, name in enumerate(ROLE_NAMES)}
OWN = ROLE_CODE[""]
APPLICANT = ROLE_CODE["applicant"]

# tie reason codes (index into TIE_CODES)
TIE_CODES = (
    None,
    "OWN_DEFAULT",
    "OWN_PHONE",
    "PHONE_REASSIGNED",
    "PHONE_USED_SMS_VERIFIED",
    "PHONE_USED_UNVERIFIED",
    "ADDRESS_BOOK",
    "EMERGENCY_CONTACT",
    "GUARANTOR",
    "REFERENCE",
)
_TC = {c: i for i, c in enumerate(TIE_CODES)}
_ROLE_TIE_CODE = {
    ROLE_CODE["address_book"]: _TC["ADDRESS_BOOK"],
    ROLE_CODE["emergency_contact"]: _TC["EMERGENCY_CONTACT"],
    ROLE_CODE["guarantor"]: _TC["GUARANTOR"],
    ROLE_CODE["reference"]: _TC["REFERENCE"],
}

Progress = Callable[[str, int, int], None]


def _day(d: date | None, missing: np.int64) -> np.int64:
    return missing if d is None else np.int64(d.toordinal())


@dataclass(frozen=True)
class Columns:
    """The graph as flat columns (one array per field); see :func:`columns_from_dataset`."""

    person_ids: np.ndarray  # str, any order
    platform_ids: np.ndarray
    # phone owner periods
    period_phone: np.ndarray  # str (E.164)
    period_owner: np.ndarray  # str, "" = unknown
    period_verified: np.ndarray  # bool
    period_since: np.ndarray  # int64 ordinal, NEVER when missing
    period_until: np.ndarray  # int64 ordinal, FOREVER when missing
    # loans
    loan_ids: np.ndarray
    loan_platform: np.ndarray
    loan_borrower: np.ndarray
    loan_applied: np.ndarray  # int64 ordinal
    loan_known: np.ndarray  # int64 ordinal: status_at, else applied_at
    loan_status: np.ndarray  # str
    loan_applicant_phone: np.ndarray  # str, "" = none
    loan_phone_verified: np.ndarray  # bool (missing = False)
    # loan links
    link_loan: np.ndarray
    link_phone: np.ndarray
    link_role: np.ndarray
    # entries
    entry_ids: np.ndarray
    entry_platform: np.ndarray
    entry_kind: np.ndarray  # "person" | "phone"
    entry_subject: np.ndarray
    entry_listed: np.ndarray  # int64 ordinal
    entry_copied_from: np.ndarray  # str, "" = none
    # sharing
    share_from: np.ndarray
    share_to: np.ndarray
    share_since: np.ndarray  # int64 ordinal, NEVER when missing


def _strs(values: Sequence[str]) -> np.ndarray:
    return np.asarray(values, dtype=object)


def columns_from_dataset(data: Dataset) -> Columns:
    """Flatten a validated :class:`Dataset` into :class:`Columns`."""
    periods = [p for ps in data.phone_periods.values() for p in ps]
    loans = list(data.loans.values())
    entries = list(data.entries.values())
    return Columns(
        person_ids=_strs(list(data.people)),
        platform_ids=_strs(list(data.platforms)),
        period_phone=_strs([p.phone for p in periods]),
        period_owner=_strs([p.owner_id or "" for p in periods]),
        period_verified=np.array([p.verified for p in periods], dtype=bool),
        period_since=np.array([_day(p.since, NEVER) for p in periods], dtype=np.int64),
        period_until=np.array([_day(p.until, FOREVER) for p in periods], dtype=np.int64),
        loan_ids=_strs([x.loan_id for x in loans]),
        loan_platform=_strs([x.platform_id for x in loans]),
        loan_borrower=_strs([x.borrower_id for x in loans]),
        loan_applied=np.array([x.applied_at.toordinal() for x in loans], dtype=np.int64),
        loan_known=np.array([x.known_at.toordinal() for x in loans], dtype=np.int64),
        loan_status=_strs([x.status.value for x in loans]),
        loan_applicant_phone=_strs([x.applicant_phone or "" for x in loans]),
        loan_phone_verified=np.array([bool(x.phone_verified) for x in loans], dtype=bool),
        link_loan=_strs([x.loan_id for x in data.links]),
        link_phone=_strs([x.phone for x in data.links]),
        link_role=_strs([x.role.value for x in data.links]),
        entry_ids=_strs([e.entry_id or "" for e in entries]),
        entry_platform=_strs([e.platform_id for e in entries]),
        entry_kind=_strs([e.subject_kind.value for e in entries]),
        entry_subject=_strs([e.subject for e in entries]),
        entry_listed=np.array([e.listed_at.toordinal() for e in entries], dtype=np.int64),
        entry_copied_from=_strs([e.copied_from or "" for e in entries]),
        share_from=_strs([s.from_platform for s in data.sharing]),
        share_to=_strs([s.to_platform for s in data.sharing]),
        share_since=np.array([_day(s.since, NEVER) for s in data.sharing], dtype=np.int64),
    )


def _codes(universe: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in the sorted ``universe`` (values must all be present)."""
    return np.searchsorted(universe, values).astype(np.int64)


@dataclass(frozen=True)
class AuditResult:
    """One row per entry (arrays in entry_id order) of the batch pass."""

    entry_ids: np.ndarray
    platform_ids: np.ndarray
    subject_kinds: np.ndarray
    subjects: np.ndarray
    listed: np.ndarray
    prob: np.ndarray  # best responsibility (unrounded), nan when unexplained
    hops: np.ndarray  # loans on the best path, 0 when unexplained
    origin_loan: np.ndarray  # str, "" when unexplained
    origin_borrower: np.ndarray
    origin_platform: np.ndarray
    reason_codes: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.entry_ids)


class Index:
    """Integer-coded ties of a graph, ready for :meth:`audit` passes."""

    def __init__(self, cols: Columns, policy: Policy | None = None) -> None:
        self.policy = policy = policy or default_policy()
        f = policy.factors
        self.cols = cols
        # --- codes: loans, persons, phones sort like their KIND:ID strings -------
        self.loans = np.sort(cols.loan_ids.astype(str))
        self.persons = np.sort(cols.person_ids.astype(str))
        self.platforms = np.sort(cols.platform_ids.astype(str))
        phones = np.unique(
            np.concatenate(
                [
                    cols.period_phone.astype(str),
                    cols.link_phone.astype(str),
                    cols.loan_applicant_phone[cols.loan_applicant_phone != ""].astype(str),
                    cols.entry_subject[cols.entry_kind == "phone"].astype(str),
                ]
            )
        )
        self.phones = phones
        nl, npers = len(self.loans), len(self.persons)
        self.person_base = nl  # global code of person i = nl + i
        self.phone_base = nl + npers
        order = np.argsort(cols.loan_ids.astype(str), kind="stable")
        self.loan_platform = _codes(self.platforms, cols.loan_platform[order].astype(str))
        self.loan_borrower = _codes(self.persons, cols.loan_borrower[order].astype(str))
        self.loan_applied = cols.loan_applied[order]
        self.loan_known = cols.loan_known[order]
        statuses = {s.value for s in policy.origin_statuses}
        self.loan_origin = np.isin(cols.loan_status[order].astype(str), list(statuses))
        self.loan_verified = cols.loan_phone_verified[order]
        # --- owner periods, sorted by (phone, since) for searchsorted lookups ------
        p_phone = _codes(phones, cols.period_phone.astype(str))
        p_owner = np.full(len(p_phone), -1, dtype=np.int64)
        known = cols.period_owner != ""
        p_owner[known] = _codes(self.persons, cols.period_owner[known].astype(str))
        porder = np.lexsort((cols.period_since, p_phone))
        self.p_phone = p_phone[porder]
        self.p_since = cols.period_since[porder]
        self.p_until = cols.period_until[porder]
        self.p_owner = p_owner[porder]
        self.p_verified = cols.period_verified[porder]
        # --- uses: (phone, role, loan) from applicant phones and links -----------
        has_app = cols.loan_applicant_phone[order] != ""
        app_loans = np.nonzero(has_app)[0]
        u_phone = np.concatenate(
            [
                _codes(phones, cols.loan_applicant_phone[order][has_app].astype(str)),
                _codes(phones, cols.link_phone.astype(str)),
            ]
        )
        u_loan = np.concatenate([app_loans, _codes(self.loans, cols.link_loan.astype(str))])
        u_role = np.concatenate(
            [
                np.full(len(app_loans), APPLICANT, dtype=np.int64),
                np.array([ROLE_CODE[r] for r in cols.link_role.astype(str)], dtype=np.int64),
            ]
        )
        period = self._period_at(u_phone, self.loan_applied[u_loan])
        u_owner = np.where(period >= 0, self.p_owner[np.maximum(period, 0)], -1)
        u_owner_verified = np.where(period >= 0, self.p_verified[np.maximum(period, 0)], False)
        u_role_factor = self._role_factors(u_role, u_loan)
        u_tie_code = self._role_tie_codes(u_role, u_loan)
        # --- person -> loan ties (CSR by person) ------------------------------------
        own_n = nl
        person_tie = (u_owner >= 0) & (u_owner != self.loan_borrower[u_loan])
        src = np.concatenate([self.loan_borrower, u_owner[person_tie]])
        self.t_loan = np.concatenate([np.arange(own_n), u_loan[person_tie]])
        self.t_phone = np.concatenate([np.full(own_n, -1), u_phone[person_tie]])
        self.t_role = np.concatenate([np.full(own_n, OWN), u_role[person_tie]])
        self.t_f1 = np.concatenate(
            [
                np.full(own_n, f["own_loan"]),
                np.where(u_owner_verified[person_tie], f["owns_verified"], f["owns_unverified"]),
            ]
        )
        self.t_f2 = np.concatenate([np.ones(own_n), u_role_factor[person_tie]])
        self.t_unverified = np.concatenate([np.zeros(own_n, bool), ~u_owner_verified[person_tie]])
        self.t_code = np.concatenate([np.full(own_n, -1), u_tie_code[person_tie]])  # -1: own
        torder = np.lexsort((self.t_loan, src))
        for name in ("t_loan", "t_phone", "t_role", "t_f1", "t_f2", "t_unverified", "t_code"):
            setattr(self, name, getattr(self, name)[torder])
        self.t_ptr = np.searchsorted(src[torder], np.arange(npers + 1))
        # --- phone -> loan uses (CSR by phone), for phone subjects ----------------
        uorder = np.lexsort((u_loan, u_phone))
        self.u_loan = u_loan[uorder]
        self.u_role = u_role[uorder]
        self.u_owner = u_owner[uorder]
        self.u_role_factor = u_role_factor[uorder]
        self.u_tie_code = u_tie_code[uorder]
        self.u_ptr = np.searchsorted(u_phone[uorder], np.arange(len(phones) + 1))
        # --- sharing epochs ----------------------------------------------------------
        self._build_epochs()

    # -- helpers ---------------------------------------------------------------------

    def _period_at(self, phone: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Index of the owner period of ``phone`` covering ``day``, or -1."""
        if len(self.p_phone) == 0:
            return np.full(len(phone), -1, dtype=np.int64)
        # periods are sorted by (phone, since); find the last with (phone, since) <= (phone, day)
        key_p = self.p_phone * (1 << 42) + (self.p_since - NEVER)
        key_q = phone * (1 << 42) + (day - NEVER)
        idx = np.searchsorted(key_p, key_q, side="right") - 1
        ok = idx >= 0
        safe = np.maximum(idx, 0)
        ok &= (self.p_phone[safe] == phone) & (self.p_until[safe] >= day)
        return np.where(ok, idx, -1)

    def _role_factors(self, role: np.ndarray, loan: np.ndarray) -> np.ndarray:
        f = self.policy.factors
        table = np.array(
            [
                f["own_loan"],
                f["address_book"],
                0.0,
                f["emergency_contact"],
                f["guarantor"],
                f["reference"],
            ]
        )
        out = table[role]
        app = role == APPLICANT
        out[app] = np.where(
            self.loan_verified[loan[app]], f["applicant_sms_verified"], f["applicant_unverified"]
        )
        return out

    def _role_tie_codes(self, role: np.ndarray, loan: np.ndarray) -> np.ndarray:
        out = np.zeros(len(role), dtype=np.int64)
        for code, tie in _ROLE_TIE_CODE.items():
            out[role == code] = tie
        app = role == APPLICANT
        out[app] = np.where(
            self.loan_verified[loan[app]],
            _TC["PHONE_USED_SMS_VERIFIED"],
            _TC["PHONE_USED_UNVERIFIED"],
        )
        return out

    def _build_epochs(self) -> None:
        cols = self.cols
        n = len(self.platforms)
        s_from = _codes(self.platforms, cols.share_from.astype(str))
        s_to = _codes(self.platforms, cols.share_to.astype(str))
        since = cols.share_since
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
        f = policy.factors
        cols = self.cols
        eorder = np.argsort(cols.entry_ids.astype(str), kind="stable")
        e_ids = cols.entry_ids[eorder].astype(str)
        e_platform = _codes(self.platforms, cols.entry_platform[eorder].astype(str))
        e_kind = cols.entry_kind[eorder].astype(str)
        e_subject = cols.entry_subject[eorder].astype(str)
        e_listed = cols.entry_listed[eorder]
        e_copied_raw = cols.entry_copied_from[eorder].astype(str)
        n_entries = len(e_ids)
        has_copy = e_copied_raw != ""
        e_copied = np.full(n_entries, -1, dtype=np.int64)
        e_copied[has_copy] = np.searchsorted(e_ids, e_copied_raw[has_copy])
        if progress:
            progress("reach", 0, n_entries)
        reach_d, reach_h, reach_i = self._reach(e_platform, e_listed, e_copied)
        if progress:
            progress("reach", n_entries, n_entries)

        is_person = e_kind == "person"
        is_phone = ~is_person
        subj_person = np.full(n_entries, -1, dtype=np.int64)
        subj_person[is_person] = _codes(self.persons, e_subject[is_person])
        subj_phone = np.full(n_entries, -1, dtype=np.int64)
        phone_rows = np.nonzero(is_phone)[0]
        if len(phone_rows) and len(self.phones):
            pos = np.searchsorted(self.phones, e_subject[phone_rows])
            pos = np.minimum(pos, len(self.phones) - 1)
            hit = self.phones[pos] == e_subject[phone_rows]
            subj_phone[phone_rows[hit]] = pos[hit]
        owner_now = np.full(n_entries, -1, dtype=np.int64)
        ph_rows = np.nonzero(subj_phone >= 0)[0]
        if len(ph_rows):
            per = self._period_at(subj_phone[ph_rows], e_listed[ph_rows])
            owner_now[ph_rows] = np.where(per >= 0, self.p_owner[np.maximum(per, 0)], -1)

        # seen[(entry, node)] -> best prob of an earlier layer
        seen_keys: list[np.ndarray] = []
        seen_probs: list[np.ndarray] = []
        n_nodes = self.phone_base + len(self.phones) + 1

        def key_of(e: np.ndarray, node: np.ndarray) -> np.ndarray:
            return e.astype(np.int64) * n_nodes + node

        def seen_prob(keys: np.ndarray) -> np.ndarray:
            out = np.full(len(keys), -1.0)
            for ks, ps in zip(seen_keys, seen_probs, strict=True):
                if len(ks) == 0:
                    continue
                pos = np.searchsorted(ks, keys)
                pos = np.minimum(pos, len(ks) - 1)
                hit = ks[pos] == keys
                out = np.where(hit, np.maximum(out, ps[pos]), out)
            return out

        def remember(keys: np.ndarray, probs: np.ndarray) -> None:
            o = np.argsort(keys, kind="stable")
            seen_keys.append(keys[o])
            seen_probs.append(probs[o])

        subj_rows = np.nonzero(subj_person >= 0)[0]
        remember(
            key_of(subj_rows, self.person_base + subj_person[subj_rows]), np.ones(len(subj_rows))
        )

        # frontier persons: entry, person, prob, rank of key, parent index (into previous loans)
        fr_e = subj_rows
        fr_person = subj_person[subj_rows]
        fr_prob = np.ones(len(subj_rows))
        fr_rank = np.zeros(len(subj_rows), dtype=np.int64)

        # best origin per entry
        best_prob = np.full(n_entries, -1.0)
        best_hops = np.zeros(n_entries, dtype=np.int64)
        best_loan = np.full(n_entries, -1, dtype=np.int64)
        best_layer = np.full(n_entries, -1, dtype=np.int64)
        best_idx = np.full(n_entries, -1, dtype=np.int64)
        layers: list[dict[str, np.ndarray]] = []

        for layer in range(1, policy.max_loans + 1):
            # --- candidate ties ----------------------------------------------------------
            parts = []
            if len(fr_e):
                lab, edge = self._gather(self.t_ptr, fr_person)
                loan = self.t_loan[edge]
                e = fr_e[lab]
                prob = fr_prob[lab] * self.t_f1[edge] * self.t_f2[edge]
                code = np.where(
                    self.t_code[edge] >= 0,
                    self.t_code[edge],
                    _TC["OWN_DEFAULT"] if layer == 1 else 0,
                )
                parts.append(
                    dict(
                        e=e,
                        loan=loan,
                        prob=prob,
                        prank=fr_rank[lab],
                        phone=np.where(
                            self.t_phone[edge] >= 0, self.phone_base + self.t_phone[edge], -1
                        ),
                        role=self.t_role[edge],
                        parent=lab,
                        code=code,
                        unverified=self.t_unverified[edge],
                    )
                )
            if layer == 1 and len(ph_rows):
                rows = ph_rows
                lab, edge = self._gather(self.u_ptr, subj_phone[rows])
                loan = self.u_loan[edge]
                e = rows[lab]
                owner = self.u_owner[edge]
                own = (owner >= 0) & (owner == self.loan_borrower[loan])
                reassigned = own & (owner_now[e] >= 0) & (owner_now[e] != owner)
                factor = np.where(
                    own,
                    np.where(reassigned, f["reassigned_phone"], f["own_phone"]),
                    self.u_role_factor[edge],
                )
                code = np.where(
                    own,
                    np.where(reassigned, _TC["PHONE_REASSIGNED"], _TC["OWN_PHONE"]),
                    self.u_tie_code[edge],
                )
                parts.append(
                    dict(
                        e=e,
                        loan=loan,
                        prob=1.0 * factor,
                        prank=np.zeros(len(e), dtype=np.int64),
                        phone=self.phone_base + subj_phone[e],
                        role=self.u_role[edge],
                        parent=np.full(len(e), -1),
                        code=code,
                        unverified=np.zeros(len(e), bool),
                    )
                )
            if not parts:
                break
            c = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            keep = self.loan_applied[c["loan"]] <= e_listed[c["e"]]
            c = {k: v[keep] for k, v in c.items()}
            # best per (entry, loan): responsibility, then key (prank, phone, role)
            o = np.lexsort((c["role"], c["phone"], c["prank"], -c["prob"], c["loan"], c["e"]))
            c = {k: v[o] for k, v in c.items()}
            first = np.ones(len(o), dtype=bool)
            first[1:] = (c["e"][1:] != c["e"][:-1]) | (c["loan"][1:] != c["loan"][:-1])
            c = {k: v[first] for k, v in c.items()}
            # drop what an earlier layer beats (same or better responsibility, fewer loans)
            lkeys = key_of(c["e"], c["loan"])
            keep = seen_prob(lkeys) < c["prob"]
            c = {k: v[keep] for k, v in c.items()}
            remember(key_of(c["e"], c["loan"]), c["prob"])
            layers.append(c)
            # origins
            plat = self.loan_platform[c["loan"]]
            origin = self.loan_origin[c["loan"]] & (
                self.loan_known[c["loan"]] <= reach_d[c["e"], plat]
            )
            oi = np.nonzero(origin)[0]
            if len(oi):
                oe, op, ol = c["e"][oi], c["prob"][oi], c["loan"][oi]
                better = (op > best_prob[oe]) | (
                    (op == best_prob[oe])
                    & ((best_hops[oe] > layer) | ((best_hops[oe] == layer) & (ol < best_loan[oe])))
                )
                # several origins of one entry in this layer: take the best one first
                o2 = np.lexsort((ol, -op, oe))
                oi, oe, op, ol, better = oi[o2], oe[o2], op[o2], ol[o2], better[o2]
                firsts = np.ones(len(oe), dtype=bool)
                firsts[1:] = oe[1:] != oe[:-1]
                sel = firsts & better
                best_layer[oe[sel]] = layer - 1
                best_idx[oe[sel]] = oi[sel]
                best_prob[oe[sel]] = op[sel]
                best_hops[oe[sel]] = layer
                best_loan[oe[sel]] = ol[sel]
            if progress:
                progress("layers", layer, policy.max_loans)
            if layer == policy.max_loans:
                break
            # --- on to the borrowers ---------------------------------------------------------
            person = self.loan_borrower[c["loan"]]
            prob = c["prob"] * f["borrower_of_linked_loan"]
            pkeys = key_of(c["e"], self.person_base + person)
            keep = seen_prob(pkeys) < prob
            idx = np.nonzero(keep)[0]
            pe, pp, pprob = c["e"][idx], person[idx], prob[idx]
            o = np.lexsort(
                (c["loan"][idx], c["role"][idx], c["phone"][idx], c["prank"][idx], -pprob, pp, pe)
            )
            idx, pe, pp, pprob = idx[o], pe[o], pp[o], pprob[o]
            first = np.ones(len(idx), dtype=bool)
            first[1:] = (pe[1:] != pe[:-1]) | (pp[1:] != pp[:-1])
            idx, pe, pp, pprob = idx[first], pe[first], pp[first], pprob[first]
            remember(key_of(pe, self.person_base + pp), pprob)
            # dense rank of the person labels' keys (prank, phone, role, loan, borrower)
            ko = np.lexsort((pp, c["loan"][idx], c["role"][idx], c["phone"][idx], c["prank"][idx]))
            kcols = np.stack(
                [c["prank"][idx], c["phone"][idx], c["role"][idx], c["loan"][idx], pp]
            )[:, ko]
            change = np.ones(len(ko), dtype=bool)
            change[1:] = (kcols[:, 1:] != kcols[:, :-1]).any(axis=0)
            rank = np.empty(len(ko), dtype=np.int64)
            rank[ko] = np.cumsum(change)
            fr_e, fr_person, fr_prob, fr_rank = pe, pp, pprob, rank
            layers[-1]["to_person"] = idx  # loan label index of each next-layer person label

        # --- rows ----------------------------------------------------------------------------
        found = best_loan >= 0
        origin_loan = np.full(n_entries, "", dtype=object)
        origin_borrower = np.full(n_entries, "", dtype=object)
        origin_platform = np.full(n_entries, "", dtype=object)
        origin_loan[found] = self.loans[best_loan[found]]
        origin_borrower[found] = self.persons[self.loan_borrower[best_loan[found]]]
        origin_platform[found] = self.platforms[self.loan_platform[best_loan[found]]]
        codes = self._codes(best_layer, best_idx, layers, reach_h, reach_i)
        return AuditResult(
            entry_ids=e_ids,
            platform_ids=self.platforms[e_platform],
            subject_kinds=e_kind,
            subjects=e_subject,
            listed=e_listed,
            prob=np.where(found, best_prob, np.nan),
            hops=np.where(found, best_hops, 0),
            origin_loan=origin_loan,
            origin_borrower=origin_borrower,
            origin_platform=origin_platform,
            reason_codes=codes,
        )

    def _codes(
        self,
        best_layer: np.ndarray,
        best_idx: np.ndarray,
        layers: list[dict[str, np.ndarray]],
        reach_h: np.ndarray,
        reach_i: np.ndarray,
    ) -> list[tuple[str, ...]]:
        """Reason codes of every entry's best path, in step order, as the core lists them."""
        out: list[tuple[str, ...]] = []
        for ent in range(len(best_layer)):
            if best_layer[ent] < 0:
                out.append(("NO_TIME_RESPECTING_PATH",))
                continue
            layer, idx = int(best_layer[ent]), int(best_idx[ent])
            where = (layer, idx)
            chain: list[list[str]] = []
            while True:
                c = layers[layer]
                codes = []
                if c["unverified"][idx]:
                    codes.append("OWNER_UNVERIFIED")
                tie = TIE_CODES[int(c["code"][idx])]
                if tie is not None:
                    codes.append(tie)
                if layer > 0:
                    codes.insert(0, "CHAIN_VIA_BORROWER")
                chain.append(codes)
                parent = int(c["parent"][idx])
                if layer == 0 or parent < 0:
                    break
                # parent is a person label of layer-1; map it back to its loan label
                idx = int(layers[layer - 1]["to_person"][parent])
                layer -= 1
            seq: list[str] = []
            for codes in reversed(chain):
                for code in codes:
                    if code not in seq:
                        seq.append(code)
            loan = int(layers[where[0]]["loan"][where[1]])
            q = int(self.loan_platform[loan])
            if reach_h[ent, q] > 0 and "SHARED_BLACKLIST" not in seq:
                seq.append("SHARED_BLACKLIST")
            if reach_i[ent, q] > 0 and "COPIED_ENTRY" not in seq:
                seq.append("COPIED_ENTRY")
            out.append(tuple(seq))
        return out


def rows(result: AuditResult, policy: Policy) -> Iterator[dict[str, object]]:
    """Audit rows (CONTRACT §4 fields) from a batch result, scored like the core."""
    for i in range(len(result)):
        prob = float(result.prob[i])
        found = not np.isnan(prob)
        responsibility = round(prob, ROUND) if found else None
        contamination = round(1.0 - responsibility, ROUND) if responsibility is not None else 1.0
        if not found:
            verdict = "unexplained"
        elif contamination >= policy.spillover_at:
            verdict = "spillover"
        else:
            verdict = "own_conduct"
        yield {
            "entry_id": str(result.entry_ids[i]),
            "platform_id": str(result.platform_ids[i]),
            "subject_kind": str(result.subject_kinds[i]),
            "subject": str(result.subjects[i]),
            "listed_at": date.fromordinal(int(result.listed[i])),
            "contamination": contamination,
            "verdict": verdict,
            "origin_loan_id": str(result.origin_loan[i]) or None,
            "origin_borrower_id": str(result.origin_borrower[i]) or None,
            "origin_platform_id": str(result.origin_platform[i]) or None,
            "responsibility": responsibility,
            "hops": int(result.hops[i]) if found else None,
            "reason_codes": " ".join(result.reason_codes[i]),
        }
