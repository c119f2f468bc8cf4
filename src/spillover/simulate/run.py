"""The listing-rule simulator: the blacklist each rule would create, audited and measured.

From the loans of a data folder and their outcomes (the recorded blacklist is
ignored), :func:`simulate_rule` builds the blacklist a listing rule
(:mod:`spillover.simulate.listing`) would have created by a cut-off day: dated entries on
the platform whose loan went bad, and the copies that travel through the sharing
network. :func:`audit_engine` then scores it with the normal one-pass kernel
(:mod:`spillover.engines.batch`), and :func:`rule_metrics` measures it: people listed,
innocents, spillover share, contamination, listings by hop depth and platform kind,
innocents banks see through sharing, and the risk the rule catches (people who
default after the cut-off). :func:`simulate` runs several rules side by side and
writes ``metrics.csv``, ``metrics.json``, one blacklist per rule and the plots
(:mod:`spillover.simulate.plots`). Every definition is in ``docs/research.md``.

Everything is vectorized over integer codes (the kernel's index of the data), so a
1M-person folder stays feasible; chance (the listing and copy delays) comes from a
hash of the seed and the listing, so a run is deterministic for a seed and every
rule draws the same delay for the same listing.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..audit.run import check_spark_options
from ..connect import read_columns
from ..data.exact import Problems, read_table, table_file
from ..data.rows import BlacklistRow, PlatformRow
from ..engines.batch import Index
from ..errors import SpilloverError, UsageProblem
from ..facts import csr
from ..facts.columns import Columns
from ..facts.model import LoanStatus, PlatformKind
from ..facts.phones import DEFAULT_REGION
from ..files.write import atomic_file, atomic_folder, neutralize
from ..policy import Policy, default_policy
from ..rules import ROLES, Verdict, score, unverified_tie, use_kind
from ..version import __version__
from .listing import MAX_HOPS, OWN_TIE, TIE_KINDS, ListingRule, load_rule, shipped_rule_names
from .plots import draw

__all__ = [
    "ENGINES",
    "METRIC_COLUMNS",
    "Audited",
    "RunSummary",
    "SimulatedBlacklist",
    "World",
    "audit_engine",
    "check_options",
    "compare_runs",
    "compare_text",
    "expand_rules",
    "metrics_text",
    "prepare",
    "rule_metrics",
    "simulate",
    "simulate_rule",
]

#: the audit engines :func:`audit_engine` knows
ENGINES = ("numpy", "spark")
#: the contamination histogram's bins: [0, 0.1), ..., [0.9, 1.0]
HIST_BINS = 10

_KINDS = tuple(k.value for k in PlatformKind)
_STATUSES = tuple(s.value for s in LoanStatus)
_TIE_INDEX = {name: i for i, name in enumerate(TIE_KINDS)}
_OWN = _TIE_INDEX[OWN_TIE]
_BOOLS = (False, True)
_ROLE_ORDER = tuple(ROLES)


def _role_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per (role code, sms verified): the tie kind index; per (role code, sms verified,
    owner verified): whether the tie is one the subject did not verify. The rules,
    compiled into lookup tables (role codes index :data:`_ROLE_ORDER`)."""
    kind = np.array(
        [[_TIE_INDEX[use_kind(r, sms).name] for sms in _BOOLS] for r in _ROLE_ORDER],
        dtype=np.int64,
    )
    unverified = np.array(
        [[[unverified_tie(ov, r, sms) for ov in _BOOLS] for sms in _BOOLS] for r in _ROLE_ORDER],
        dtype=bool,
    )
    return kind, unverified


_USE_TIE, _UNVERIFIED = _role_tables()


# ---------------------------------------------------------------------------------------
# Deterministic chance: a hash of the seed and what is drawn for
# ---------------------------------------------------------------------------------------

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out: np.ndarray = (x ^ (x >> np.uint64(31))) & _MASK
    return out


def _draw(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    """A uniform uint64 per row, from the seed, a salt and integer keys only (so the
    same listing draws the same number in every rule and every run)."""
    with np.errstate(over="ignore"):
        h = _mix(np.full(len(keys[0]), np.uint64(seed * 1_000_003 + salt), dtype=np.uint64))
        for k in keys:
            h = _mix(
                h ^ (np.asarray(k).astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
            )
    return h


def _delay(draw: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = (hi - lo + 1).astype(np.uint64)
    out: np.ndarray = lo + (draw % span).astype(np.int64)
    return out


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
    platform_kind: np.ndarray  # kind index (_KINDS) per platform code
    loan_status: np.ndarray  # status index (_STATUSES) per loan code
    # uses of phones on loans, CSR by loan code
    use_ptr: np.ndarray
    use_phone: np.ndarray
    use_role: np.ndarray  # index in _ROLE_ORDER
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
        [_KINDS.index(platform_kinds.get(p, PlatformKind.OTHER.value)) for p in platform_ids],
        dtype=np.int64,
    )
    status_text = np.asarray(cols.loan_status, dtype=object)[index.loan_order]
    loan_status = np.zeros(nl, dtype=np.int64)
    for i, s in enumerate(_STATUSES):
        loan_status[status_text == s] = i
    # uses: the kernel's phone -> loan uses, re-sorted by loan
    u_phone = np.repeat(np.arange(len(index.phones)), np.diff(index.u_ptr)[: len(index.phones)])
    u_phone = u_phone[: len(index.u_loan)]
    period = index.period_at(u_phone, index.loan_applied[index.u_loan])
    owner_verified = np.append(index.p_verified, False)[period]
    order = np.argsort(index.u_loan, kind="stable")
    role_names = ("", *sorted(ROLES))  # the kernel's role codes
    role_map = np.array([-1, *(_ROLE_ORDER.index(r) for r in role_names[1:])], dtype=np.int64)
    # loans by borrower, in application order
    by_borrower = np.lexsort((index.loan_applied, index.loan_borrower))
    origin = np.isin(loan_status, [_STATUSES.index(s.value) for s in policy.origin_statuses])
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


# ---------------------------------------------------------------------------------------
# One rule's blacklist
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Actions:
    """A rule resolved for every platform code, as arrays."""

    ties: np.ndarray  # (platforms, tie kinds) bool
    delay_lo: np.ndarray
    delay_hi: np.ndarray
    depth: np.ndarray
    act: np.ndarray  # acts on shared lists
    copy_lo: np.ndarray
    copy_hi: np.ndarray
    verified_only: np.ndarray
    as_phone: np.ndarray  # lists the phone, not its owner
    statuses: np.ndarray  # (platforms, statuses) bool

    @classmethod
    def of(cls, rule: ListingRule, world: World) -> _Actions:
        acts = [
            rule.action_for(_KINDS[k], p)
            for p, k in zip(world.platform_ids, world.platform_kind.tolist(), strict=True)
        ]
        unknown = sorted(set(rule.platforms) - set(world.platform_ids))
        if unknown:
            raise SpilloverError(
                f"{rule.source}: platform.{unknown[0]}: no such platform in the data"
            )

        def arr(values: Iterable[Any], dtype: Any = np.int64) -> np.ndarray:
            return np.array(list(values), dtype=dtype)

        return cls(
            ties=np.array([[t in a.ties for t in TIE_KINDS] for a in acts], dtype=bool).reshape(
                len(acts), len(TIE_KINDS)
            ),
            delay_lo=arr(a.delay_days[0] for a in acts),
            delay_hi=arr(a.delay_days[1] for a in acts),
            depth=arr(a.depth for a in acts),
            act=arr((a.act_on_shared for a in acts), bool),
            copy_lo=arr(a.copy_delay_days[0] for a in acts),
            copy_hi=arr(a.copy_delay_days[1] for a in acts),
            verified_only=arr((a.verified_only for a in acts), bool),
            as_phone=arr((a.subject == "phone" for a in acts), bool),
            statuses=np.array(
                [[LoanStatus(s) in a.statuses for s in _STATUSES] for a in acts], dtype=bool
            ).reshape(len(acts), len(_STATUSES)),
        )


@dataclass(frozen=True)
class SimulatedBlacklist:
    """The blacklist a rule would create, one row per entry in entry order (by listing
    day, platform, subject). Subjects are person codes (``person`` >= 0) or phone codes
    (``phone`` >= 0); ``owner`` is the person a phone subject belongs to on the listing
    day (the person for a person subject; -1 unknown); ``hop`` the depth the rule
    reached the subject at (0: the borrower's own default; for copies the hop of the
    entry copied); ``cause`` the loan code whose default set it off; ``copied_from``
    the row the entry was copied from (-1: listed by the platform itself); ``tie`` the
    tie kind the listing acted on (index in :data:`spillover.simulate.listing.TIE_KINDS`; for
    copies the one of the entry at the start of the chain) and ``linked`` the person
    it named (the borrower, or the phone's owner on the application day; -1 unknown)."""

    rule: ListingRule
    platform: np.ndarray
    person: np.ndarray
    phone: np.ndarray
    owner: np.ndarray
    listed: np.ndarray
    hop: np.ndarray
    cause: np.ndarray
    tie: np.ndarray
    linked: np.ndarray
    copied_from: np.ndarray

    def __len__(self) -> int:
        return len(self.platform)


_CAND_FIELDS = ("platform", "person", "phone", "listed", "hop", "cause", "tie", "linked")


@dataclass
class _Cands:
    platform: np.ndarray
    person: np.ndarray
    phone: np.ndarray
    listed: np.ndarray
    hop: np.ndarray
    cause: np.ndarray
    tie: np.ndarray  # tie kind index (listing.TIE_KINDS)
    linked: np.ndarray  # the person the tie names (owner on the application day), -1

    def take(self, rows: np.ndarray) -> _Cands:
        return _Cands(*(getattr(self, f)[rows] for f in _CAND_FIELDS))

    @classmethod
    def concat(cls, parts: Sequence[_Cands]) -> _Cands:
        fields = _CAND_FIELDS
        if not parts:
            return cls(*(np.zeros(0, dtype=np.int64) for _ in fields))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def _owner_at(world: World, phone: np.ndarray, day: np.ndarray) -> np.ndarray:
    period = world.index.period_at(phone, day)
    owner: np.ndarray = np.append(world.index.p_owner, -1)[period]
    return owner


def _tie_listings(
    world: World,
    acts: _Actions,
    seed: int,
    loans: np.ndarray,
    listed: np.ndarray,
    hop: int,
    cause: np.ndarray,
) -> _Cands:
    """The entries for the phone ties of ``loans`` (listed on ``listed``): every use of a
    phone on the loan whose tie kind the platform acts on, not the borrower's own."""
    plat = world.index.loan_platform[loans]
    row, use = csr.gather(world.use_ptr, loans)
    plat, day, src, cause = plat[row], listed[row], loans[row], cause[row]
    role, sms = world.use_role[use], world.use_sms[use].astype(np.int64)
    tie = _USE_TIE[role, sms]
    owner = world.use_owner[use]
    borrower = world.index.loan_borrower[src]
    keep = acts.ties[plat, tie] & (owner != borrower)
    if hop > 1:
        keep &= acts.depth[plat] >= hop
    unverified = _UNVERIFIED[role, sms, world.use_owner_verified[use].astype(np.int64)]
    keep &= ~(acts.verified_only[plat] & unverified)
    use, plat, day, cause = use[keep], plat[keep], day[keep], cause[keep]
    tie, owner = tie[keep], owner[keep]
    phone = world.use_phone[use]
    now = _owner_at(world, phone, day)
    as_person = ~acts.as_phone[plat] & (now >= 0)
    return _Cands(
        platform=plat,
        person=np.where(as_person, now, -1),
        phone=np.where(as_person, -1, phone),
        listed=day,
        hop=np.full(len(plat), hop, dtype=np.int64),
        cause=cause,
        tie=tie,
        linked=owner,
    )


def _first(keys: np.ndarray, *order: np.ndarray) -> np.ndarray:
    """Rows of the first row per key, after sorting by ``order`` (last key first)."""
    o = np.lexsort((*order[::-1], keys))
    first = np.ones(len(o), dtype=bool)
    first[1:] = keys[o][1:] != keys[o][:-1]
    return o[first]


def simulate_rule(world: World, rule: ListingRule, *, seed: int = 0) -> SimulatedBlacklist:
    """The blacklist ``rule`` would create by the world's cut-off (docs/research.md).

    1. A loan whose status is one the platform's action lists on, known (``status_at``)
       by the cut-off, is listed ``delay_days`` after that day (one draw per loan): its
       borrower (tie ``own_loan``) and every phone tie the action names (the phone's
       owner on the application day is not the borrower), as the phone's owner on the
       listing day (the phone when unknown, or with ``subject = "phone"``).
    2. Depth k > 1: the people listed at hop k - 1 by a platform, their own loans with
       it applied for by that listing, and those loans' ties, ``delay_days`` later.
    3. One entry per (platform, subject): the earliest (then the lowest hop).
    4. Sharing: a platform that acts on shared lists copies every entry of a platform
       sharing with it, ``copy_delay_days`` after the later of the entry and the
       agreement's ``since``; copies travel on (one entry per (platform, subject), the
       earliest), nothing after the cut-off.
    """
    acts = _Actions.of(rule, world)
    ix = world.index
    cutoff = world.cutoff
    # 1. the loans that set a listing off, and the day
    plat = ix.loan_platform
    trig = np.nonzero(
        acts.statuses[plat, world.loan_status] & (ix.loan_known <= cutoff)
        if len(plat)
        else np.zeros(0, dtype=bool)
    )[0]
    tp = plat[trig]
    day = ix.loan_known[trig] + _delay(_draw(seed, 1, trig), acts.delay_lo[tp], acts.delay_hi[tp])
    ok = day <= cutoff
    trig, tp, day = trig[ok], tp[ok], day[ok]
    own = acts.ties[tp, _OWN]
    parts = [
        _Cands(
            platform=tp[own],
            person=ix.loan_borrower[trig[own]],
            phone=np.full(int(own.sum()), -1, dtype=np.int64),
            listed=day[own],
            hop=np.zeros(int(own.sum()), dtype=np.int64),
            cause=trig[own],
            tie=np.full(int(own.sum()), _OWN, dtype=np.int64),
            linked=ix.loan_borrower[trig[own]],
        )
    ]
    frontier = _tie_listings(world, acts, seed, trig, day, 1, trig)
    parts.append(frontier)
    # 2. deeper: the listed people's own loans with the platform
    for hop in range(2, int(acts.depth.max(initial=1)) + 1):
        fr = frontier.take(np.nonzero(acts.depth[frontier.platform] >= hop)[0])
        # who was listed: the person, or a listed phone's owner on the listing day
        who = fr.person.copy()
        phones = np.nonzero(who < 0)[0]
        who[phones] = _owner_at(world, fr.phone[phones], fr.listed[phones])
        fr, who = fr.take(np.nonzero(who >= 0)[0]), who[who >= 0]
        keep = _first(fr.platform * ix.phone_base + who, fr.listed)
        person, fplat, fday, fcause = who[keep], fr.platform[keep], fr.listed[keep], fr.cause[keep]
        row, pos = csr.gather(world.own_ptr, person)
        loan = world.own_loan[pos]
        ok = (ix.loan_platform[loan] == fplat[row]) & (ix.loan_applied[loan] <= fday[row])
        row, loan = row[ok], loan[ok]
        lday = fday[row] + _delay(
            _draw(seed, hop, loan, person[row]),
            acts.delay_lo[fplat[row]],
            acts.delay_hi[fplat[row]],
        )
        ok = lday <= cutoff
        frontier = _tie_listings(world, acts, seed, loan[ok], lday[ok], hop, fcause[row][ok])
        if not len(frontier.platform):
            break
        parts.append(frontier)
    c = _Cands.concat(parts)
    # 3. one entry per (platform, subject)
    n_keys = ix.phone_base + len(ix.phones) + 1
    subject = np.where(c.person >= 0, c.person, len(ix.persons) + c.phone)
    first = _first(c.platform * n_keys + subject, c.listed, c.hop, c.cause)
    entries = {
        "platform": c.platform[first],
        "subject": subject[first],
        "listed": c.listed[first],
        "hop": c.hop[first],
        "cause": c.cause[first],
        "tie": c.tie[first],
        "linked": c.linked[first],
        "src": np.full(len(first), -1, dtype=np.int64),
    }
    # 4. copies through the sharing network
    entries = _share(world, acts, seed, entries, n_keys)
    return _finish(world, rule, entries)


def _share(
    world: World, acts: _Actions, seed: int, e: dict[str, np.ndarray], n_keys: int
) -> dict[str, np.ndarray]:
    """Copies through sharing, relaxed until no entry gets earlier (Bellman-Ford over
    the platforms: a copy is never earlier than what it copies)."""
    ix = world.index

    s_from = csr.recode(ix.platform_rank, ix.codes.share_from)
    s_to = csr.recode(ix.platform_rank, ix.codes.share_to)
    since = np.asarray(world.cols.share_since, dtype=np.int64)
    live = acts.act[s_to] if len(s_to) else np.zeros(0, dtype=bool)
    s_from, s_to, since = s_from[live], s_to[live], since[live]
    if not len(s_from):
        return e
    key = e["platform"] * n_keys + e["subject"]
    order = np.argsort(key)
    sorted_keys, sorted_rows = key[order], order
    frontier = np.arange(len(key))
    for _ in range(len(world.platform_ids) + 1):
        fp = e["platform"][frontier]
        row, edge = _edges(s_from, fp)
        src = frontier[row]
        to = s_to[edge]
        day = np.maximum(e["listed"][src], since[edge]) + _delay(
            _draw(seed, 97, e["subject"][src], to), acts.copy_lo[to], acts.copy_hi[to]
        )
        ok = day <= world.cutoff
        src, to, day = src[ok], to[ok], day[ok]
        if not len(src):
            break
        ck = to * n_keys + e["subject"][src]
        best = _first(ck, day, src)
        src, to, day, ck = src[best], to[best], day[best], ck[best]
        pos = np.minimum(np.searchsorted(sorted_keys, ck), max(len(sorted_keys) - 1, 0))
        exists = len(sorted_keys) > 0
        found = (sorted_keys[pos] == ck) if exists else np.zeros(len(ck), dtype=bool)
        at = np.where(found, sorted_rows[pos] if exists else -1, -1)
        better = found & (day < e["listed"][np.maximum(at, 0)])
        upd = at[better]
        e["listed"][upd] = day[better]
        e["src"][upd] = src[better]
        new = ~found
        n0 = len(e["platform"])
        add = {
            "platform": to[new],
            "subject": e["subject"][src[new]],
            "listed": day[new],
            "hop": e["hop"][src[new]],
            "cause": e["cause"][src[new]],
            "tie": e["tie"][src[new]],
            "linked": e["linked"][src[new]],
            "src": src[new],
        }
        e = {k: np.concatenate([v, add[k]]) for k, v in e.items()}
        added = np.arange(n0, len(e["platform"]))
        frontier = np.concatenate([upd, added])
        if not len(frontier):
            break
        allkeys = e["platform"] * n_keys + e["subject"]
        order = np.argsort(allkeys)
        sorted_keys, sorted_rows = allkeys[order], order
    # a copy takes the hop and cause of the entry at the start of its chain
    root = np.arange(len(e["src"]))
    for _ in range(len(world.platform_ids) + 1):
        parent = e["src"][root]
        more = parent >= 0
        if not more.any():
            break
        root = np.where(more, parent, root)
    for name in ("hop", "cause", "tie", "linked"):
        e[name] = e[name][root]
    return e


def _edges(s_from: np.ndarray, platforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``platforms``, the sharing edges leaving it: (row, edge)."""
    order = np.argsort(s_from, kind="stable")
    ptr = csr.ptr(s_from, int(max(s_from.max(initial=-1), platforms.max(initial=-1))) + 1)
    row, pos = csr.gather(ptr, platforms)
    return row, order[pos]


def _finish(world: World, rule: ListingRule, e: dict[str, np.ndarray]) -> SimulatedBlacklist:
    """The entries in entry order (listing day, platform, subject), copies re-pointed."""
    npers = len(world.index.persons)
    order = np.lexsort((e["subject"], e["platform"], e["listed"]))
    rank = csr.rank(order)
    subject = e["subject"][order]
    is_person = subject < npers
    person = np.where(is_person, subject, -1)
    phone = np.where(is_person, -1, subject - npers)
    listed = e["listed"][order]
    owner = person.copy()
    phones = np.nonzero(~is_person)[0]
    if len(phones):
        owner[phones] = _owner_at(world, phone[phones], listed[phones])
    src = e["src"][order]
    return SimulatedBlacklist(
        rule=rule,
        platform=e["platform"][order],
        person=person,
        phone=phone,
        owner=owner,
        listed=listed,
        hop=e["hop"][order],
        cause=e["cause"][order],
        tie=e["tie"][order],
        linked=e["linked"][order],
        copied_from=np.where(src >= 0, rank[np.maximum(src, 0)], -1),
    )


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
        from ..audit.spark import audit_frames, frames_from_columns, session

        spark = spark or session()
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


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------

#: the columns of metrics.csv, in order (docs/contract.md §6, docs/research.md)
METRIC_COLUMNS: tuple[str, ...] = (
    "rule",
    "entries",
    "entries_direct",
    "entries_copied",
    "people_listed",
    "phones_unowned",
    "innocents",
    "innocent_share",
    "spillover_entries",
    "spillover_share",
    "unexplained_entries",
    "contamination_mean",
    "contamination_median",
    "contamination_p90",
    *(f"entries_hop_{h}" for h in range(MAX_HOPS + 1)),
    *(f"spillover_hop_{h}" for h in range(MAX_HOPS + 1)),
    *(f"entries_{k}" for k in _KINDS),
    "innocents_seen_by_banks",
    "defaulted_later",
    "innocents_defaulted_later",
    "risk_total",
    "risk_recall",
    "listed_risky",
    "innocents_risky",
)


def _share_of(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def rule_metrics(world: World, bl: SimulatedBlacklist, audited: Audited) -> dict[str, Any]:
    """The metrics of one rule's blacklist and its audit (every definition:
    docs/research.md). Returns the :data:`METRIC_COLUMNS` fields plus
    ``contamination_histogram`` (entries per tenth of [0, 1], the last bin closed)."""
    n = len(bl)
    bank = _KINDS.index(PlatformKind.BANK.value)
    listed = np.unique(bl.owner[bl.owner >= 0])
    innocent_person = np.zeros(world.n_people, dtype=bool)
    innocent_person[listed] = world.delinquent_by[listed] > world.cutoff
    innocents = listed[innocent_person[listed]]
    spill = audited.verdict == Verdict.SPILLOVER.value
    copied = bl.copied_from >= 0
    kind = world.platform_kind[bl.platform] if n else np.zeros(0, dtype=np.int64)
    seen = bl.owner[copied & (kind == bank) & (bl.owner >= 0)]
    seen = np.unique(seen[innocent_person[seen]])
    later = world.later_default
    c = audited.contamination
    hist = np.histogram(c, bins=HIST_BINS, range=(0.0, 1.0))[0] if n else np.zeros(HIST_BINS)
    risk_total = int(later.sum())
    out: dict[str, Any] = {
        "rule": bl.rule.name,
        "entries": n,
        "entries_direct": int((~copied).sum()),
        "entries_copied": int(copied.sum()),
        "people_listed": len(listed),
        "phones_unowned": int(((bl.phone >= 0) & (bl.owner < 0)).sum()),
        "innocents": len(innocents),
        "innocent_share": _share_of(len(innocents), len(listed)),
        "spillover_entries": int(spill.sum()),
        "spillover_share": _share_of(int(spill.sum()), n),
        "unexplained_entries": int((audited.verdict == Verdict.UNEXPLAINED.value).sum()),
        "contamination_mean": round(float(c.mean()), 6) if n else 0.0,
        "contamination_median": round(float(np.median(c)), 6) if n else 0.0,
        "contamination_p90": round(float(np.quantile(c, 0.9)), 6) if n else 0.0,
    }
    for h in range(MAX_HOPS + 1):
        out[f"entries_hop_{h}"] = int((bl.hop == h).sum())
    for h in range(MAX_HOPS + 1):
        out[f"spillover_hop_{h}"] = int((spill & (bl.hop == h)).sum())
    for i, k in enumerate(_KINDS):
        out[f"entries_{k}"] = int((kind == i).sum())
    out["innocents_seen_by_banks"] = len(seen)
    out["defaulted_later"] = int(later[listed].sum())
    out["innocents_defaulted_later"] = int(later[innocents].sum())
    out["risk_total"] = risk_total
    out["risk_recall"] = _share_of(int(later[listed].sum()), risk_total)
    if world.risky is not None:
        out["listed_risky"] = int(world.risky[listed].sum())
        out["innocents_risky"] = int(world.risky[innocents].sum())
    else:
        out["listed_risky"] = None
        out["innocents_risky"] = None
    out["contamination_histogram"] = [int(x) for x in hist]
    return out


# ---------------------------------------------------------------------------------------
# A run: several rules side by side, written to a folder
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """What :func:`simulate` did: the folder, the run's settings and each rule's metrics."""

    out: Path
    seed: int
    cutoff: date
    rules: list[str]
    metrics: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)


#: the blacklist file columns: docs/contract.md §1's blacklist, then what the simulation adds
BLACKLIST_COLUMNS = (
    *BlacklistRow.model_fields,
    "hop",
    "tie",
    "cause_loan_id",
    "owner_id",
    "contamination",
    "verdict",
)


def _platform_kinds(folder: Path) -> dict[str, str]:
    """``platforms.kind`` by platform id (the folder is already validated; the table in any
    of its forms, CSV, JSONL or Parquet, read by the exact loader's row reader)."""
    path = table_file(folder, "platforms")
    if path is None:
        return {}
    rows = read_table(path, PlatformRow, Problems(1), DEFAULT_REGION)
    return {item.row.platform_id: item.row.kind.value for item in rows}


def _ground_truth_risky(folder: Path) -> dict[str, bool] | None:
    """The latent type by person id from ``ground_truth/people.csv`` (spillover synth)."""
    path = folder / "ground_truth" / "people.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if "risky" not in (reader.fieldnames or []):
            return None
        return {r["person_id"]: r["risky"].strip().lower() == "true" for r in reader}


def _write_blacklist(
    path: Path, world: World, bl: SimulatedBlacklist, audited: Audited, cols: Columns
) -> None:
    ix = world.index
    n = len(bl)

    def safe(values: np.ndarray) -> list[Any]:
        if not len(values):
            return []
        distinct, inverse = np.unique(values.astype(str), return_inverse=True)
        cleaned = np.array([neutralize(v) for v in distinct.tolist()], dtype=object)
        out: list[Any] = cleaned[inverse.ravel()].tolist()
        return out

    owner = np.full(n, "", dtype=object)
    has = bl.owner >= 0
    if has.any():
        owner[has] = ix.persons.take(pa.array(bl.owner[has])).to_numpy(zero_copy_only=False)
    cause = (
        ix.loans.take(pa.array(bl.cause)).to_numpy(zero_copy_only=False)
        if n
        else np.zeros(0, dtype=object)
    )
    columns = [
        np.asarray(cols.entry_ids).tolist(),
        safe(np.asarray(cols.entry_platform)),
        np.asarray(cols.entry_kind).tolist(),
        safe(np.asarray(cols.entry_subject)),
        [date.fromordinal(d).isoformat() for d in bl.listed.tolist()],
        [f"simulated: {bl.rule.name}"] * n,
        np.asarray(cols.entry_copied_from).tolist(),
        bl.hop.tolist(),
        np.asarray(TIE_KINDS, dtype=object)[bl.tie].tolist() if n else [],
        safe(np.asarray(cause)),
        safe(owner),
        audited.contamination.tolist(),
        audited.verdict.tolist(),
    ]
    with atomic_file(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(BLACKLIST_COLUMNS)
        writer.writerows(zip(*columns, strict=True))


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def expand_rules(names: Iterable[str | Path]) -> list[str | Path]:
    """Rule names as given on the command line, with ``all`` standing for every shipped
    rule (in name order).

    >>> expand_rules(["all"])[:2]
    ['borrower_and_guarantor', 'borrower_only']
    """
    out: list[str | Path] = []
    for name in names:
        out.extend(shipped_rule_names() if str(name) == "all" else [name])
    return out


def simulate(
    data: str | Path,
    rules: Sequence[str | Path | ListingRule],
    out: str | Path,
    *,
    seed: int = 0,
    cutoff: date | None = None,
    policy: Policy | None = None,
    engine: str = "numpy",
    region: str = DEFAULT_REGION,
    plots: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    master: str = "local[*]",
    spark_conf: Mapping[str, str] | None = None,
) -> RunSummary:
    """Simulate ``rules`` on the data folder ``data`` and write the run to the new
    folder ``out``: ``run.json``, ``metrics.csv``, ``metrics.json``,
    ``blacklists/RULE.csv`` (each rule's simulated blacklist with its audit) and the
    plots (PNG and SVG, :func:`spillover.simulate.plots.draw`). ``engine="spark"``
    audits every rule's blacklist on Spark (one session on ``master`` with
    ``spark_conf`` for the run); the metrics are the same as with ``numpy``."""
    if engine not in ENGINES:
        raise SpilloverError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    loaded = [r if isinstance(r, ListingRule) else load_rule(r) for r in rules]
    if not loaded:
        raise SpilloverError("give at least one listing rule")
    names = [r.name for r in loaded]
    if len(set(names)) != len(names):
        raise SpilloverError(
            f"rule {sorted(n for n in names if names.count(n) > 1)[0]!r} given twice"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpilloverError(f"{out}: exists and is not an empty folder")
    if not out.parent.is_dir():
        raise SpilloverError(f"{out}: folder {out.parent} does not exist")
    policy = policy or default_policy()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    folder = Path(data)
    cols = read_columns(folder, region=region)
    world = prepare(
        cols, _platform_kinds(folder), policy, cutoff=cutoff, risky=_ground_truth_risky(folder)
    )
    seconds["prepare"] = round(time.perf_counter() - t0, 3)
    metrics: list[dict[str, Any]] = []
    spark = None
    if engine == "spark":
        from ..audit.spark import session

        spark = session(master, spark_conf)
    with atomic_folder(out) as tmp:
        (tmp / "blacklists").mkdir()
        for i, rule in enumerate(loaded):
            if progress:
                progress("rules", i, len(loaded))
            t = time.perf_counter()
            bl = simulate_rule(world, rule, seed=seed)
            sim_cols = blacklist_columns(world, bl)
            audited = audit_engine(sim_cols, policy, engine, spark=spark)
            metrics.append(rule_metrics(world, bl, audited))
            _write_blacklist(tmp / "blacklists" / f"{rule.name}.csv", world, bl, audited, sim_cols)
            seconds[rule.name] = round(time.perf_counter() - t, 3)
        if progress:
            progress("rules", len(loaded), len(loaded))
        run = {
            "spillover_version": __version__,
            "data": str(folder),
            "seed": seed,
            "cutoff": date.fromordinal(world.cutoff).isoformat(),
            "policy": policy.label,
            "engine": engine,
            "rules": [
                {"name": r.name, "description": r.description, "source": r.source} for r in loaded
            ],
        }
        with atomic_file(tmp / "run.json") as handle:
            json.dump(run, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        with atomic_file(tmp / "metrics.json") as handle:
            json.dump({"run": run, "metrics": metrics}, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        with atomic_file(tmp / "metrics.csv") as handle:
            writer = csv.writer(handle)
            writer.writerow(METRIC_COLUMNS)
            for m in metrics:
                writer.writerow([_csv_cell(neutralize(m[c])) for c in METRIC_COLUMNS])
        if plots:
            draw(metrics, tmp)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    return RunSummary(out, seed, date.fromordinal(world.cutoff), names, metrics, seconds)


# ---------------------------------------------------------------------------------------
# Text: the side-by-side table, and a before/after comparison of two runs
# ---------------------------------------------------------------------------------------

_TABLE = (
    ("people_listed", "listed"),
    ("innocents", "innocents"),
    ("innocent_share", "innocent%"),
    ("spillover_share", "spillover%"),
    ("contamination_mean", "contam."),
    ("innocents_seen_by_banks", "banks see"),
    ("defaulted_later", "risk caught"),
    ("risk_recall", "recall"),
)


def _fmt(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column.endswith(("_share", "_recall")):
        return f"{100 * float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def metrics_text(metrics: Sequence[Mapping[str, Any]]) -> str:
    """The rules side by side, one line each (the terminal table)."""
    header = ["rule", *(label for _, label in _TABLE)]
    rows = [[str(m["rule"]), *(_fmt(m.get(c), c) for c, _ in _TABLE)] for m in metrics]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _read_metrics(run: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(m["rule"]): m for m in raw["metrics"]}
    except OSError as exc:
        raise SpilloverError(f"{path}: cannot read the run's metrics: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SpilloverError(f"{path}: not a simulate run's metrics.json ({exc})") from None


def check_options(
    *,
    data: str | Path | None,
    rules: Sequence[str],
    out: str | Path | None,
    compare: Sequence[str | Path] | None = None,
    engine: str = "numpy",
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> None:
    """Refuse what ``spillover simulate`` was given when it does not go together
    (:class:`~spillover.errors.UsageProblem`): ``compare`` reads two finished runs (no
    ``data``, ``rules`` or ``out``); a run needs all three; ``master``/``conf`` go with the
    spark engine (``master=None``: not given)."""
    if compare is not None:
        if data is not None or rules or out is not None:
            raise UsageProblem("--compare reads two finished runs: drop --data, --rule, --out")
        return
    if data is None or not rules or out is None:
        raise UsageProblem("give --data DIR, at least one --rule and --out DIR (or --compare)")
    if master is not None:
        check_spark_options(engine, master, conf or {})


def compare_runs(run_a: str | Path, run_b: str | Path) -> list[dict[str, Any]]:
    """Before/after: for every rule of either run and every numeric metric, the value in
    ``run_a``, in ``run_b`` and the change (``b - a``).

    A rule in both runs gives a row per metric that is a number in both. A rule in one
    run only gives a row per numeric metric with the other side and the change ``None``
    (so two runs of different rule sets never read as equal). Rules come in ``run_a``'s
    order, then those of ``run_b`` only.
    """
    a, b = _read_metrics(run_a), _read_metrics(run_b)
    out: list[dict[str, Any]] = []
    for rule in [*a, *(r for r in b if r not in a)]:
        for col in METRIC_COLUMNS[1:]:
            va = a[rule].get(col) if rule in a else None
            vb = b[rule].get(col) if rule in b else None
            numbers = [isinstance(v, int | float) for v in (va, vb)]
            if (
                rule in a
                and rule in b
                and isinstance(va, int | float)
                and isinstance(vb, int | float)
            ):
                delta = vb - va
                change = round(delta, 6) if isinstance(delta, float) else delta
                out.append({"rule": rule, "metric": col, "a": va, "b": vb, "change": change})
            elif (rule not in b and numbers[0]) or (rule not in a and numbers[1]):
                out.append({"rule": rule, "metric": col, "a": va, "b": vb, "change": None})
    return out


def _one_run_only(rows: Sequence[Mapping[str, Any]], side: str) -> list[str]:
    """The rules whose every row has a value on ``side`` only (``a`` or ``b``)."""
    other = "b" if side == "a" else "a"
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_rule.setdefault(str(r["rule"]), []).append(r)
    return [
        rule
        for rule, group in by_rule.items()
        if all(r[other] is None and r[side] is not None for r in group)
    ]


def compare_text(rows: Sequence[Mapping[str, Any]], *, changed_only: bool = True) -> str:
    """The comparison as text: the rules found in one run only, then one line per rule in
    both runs and metric (only the changed ones unless ``changed_only`` is false; then the
    rules of one run only too, ``-`` for the other run)."""
    only_a, only_b = _one_run_only(rows, "a"), _one_run_only(rows, "b")
    one_sided = set(only_a) | set(only_b)
    notes = [
        f"rules only in run {side}: {', '.join(rules)}"
        for side, rules in (("A", only_a), ("B", only_b))
        if rules
    ]
    shared = [r for r in rows if r["rule"] not in one_sided]
    shown = [
        r for r in rows if not changed_only or (r["rule"] not in one_sided and r["change"] != 0)
    ]
    if not shown:
        if not one_sided:
            return "no metric differs between the two runs"
        n_shared = len({r["rule"] for r in shared})
        if n_shared:
            said = f"no metric of the {n_shared} rule(s) in both runs differs"
        else:
            said = "no rule is in both runs"
        return "\n".join([*notes, said])
    lines = [*notes, f"{'rule':<28} {'metric':<28} {'A':>12} {'B':>12} {'B - A':>12}"]
    for r in shown:
        vals = [r["a"], r["b"], r["change"]]
        cells = ["-" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in vals]
        lines.append(
            f"{r['rule']:<28} {r['metric']:<28} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}"
        )
    return "\n".join(lines)
