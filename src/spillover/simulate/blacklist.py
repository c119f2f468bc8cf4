"""One listing rule's blacklist (:func:`simulate_rule`): the dated entries the rule would
have created on the platforms whose loans went bad, by the ties it acts on, and the
copies that travel through the sharing network.

Chance (the listing and copy delays) comes from a hash of the seed and the listing, so a
run is deterministic for a seed and every rule draws the same delay for the same
listing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpilloverError
from ..facts import csr
from ..facts.model import LoanStatus
from ..rules import unverified_tie, use_kind
from .listing import OWN_TIE, TIE_KINDS, ListingRule
from .world import KINDS, ROLE_ORDER, STATUSES, World

__all__ = [
    "SEEDS",
    "SimulatedBlacklist",
    "check_seed",
    "simulate_rule",
]

_TIE_INDEX = {name: i for i, name in enumerate(TIE_KINDS)}
_OWN = _TIE_INDEX[OWN_TIE]
_BOOLS = (False, True)


def _role_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per (role code, sms verified): the tie kind index; per (role code, sms verified,
    owner verified): whether the tie is one the subject did not verify. The rules,
    compiled into lookup tables (role codes index :data:`ROLE_ORDER`)."""
    kind = np.array(
        [[_TIE_INDEX[use_kind(r, sms).name] for sms in _BOOLS] for r in ROLE_ORDER],
        dtype=np.int64,
    )
    unverified = np.array(
        [[[unverified_tie(ov, r, sms) for ov in _BOOLS] for sms in _BOOLS] for r in ROLE_ORDER],
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


#: the seeds a run takes: 0 .. 2**64 - 1 (the hash starts from seed * 1000003 + salt
#: modulo 2**64, one start per seed: 1000003 is odd)
SEEDS = range(2**64)


def check_seed(seed: int) -> None:
    """Refuse a seed outside :data:`SEEDS` (:class:`~spillover.errors.SpilloverError`)."""
    if seed not in SEEDS:
        raise SpilloverError(f"seed must be 0 .. 2**64 - 1, not {seed}")


def _draw(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    """A uniform uint64 per row, from the seed, a salt and integer keys only (so the
    same listing draws the same number in every rule and every run)."""
    start = np.uint64((seed * 1_000_003 + salt) % 2**64)
    with np.errstate(over="ignore"):
        h = _mix(np.full(len(keys[0]), start, dtype=np.uint64))
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
            rule.action_for(KINDS[k], p)
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
                [[LoanStatus(s) in a.statuses for s in STATUSES] for a in acts], dtype=bool
            ).reshape(len(acts), len(STATUSES)),
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


def _entry_order(c: _Cands) -> tuple[np.ndarray, ...]:
    """The order the candidates for one (platform, subject) are chosen in, as sort keys
    (first key first): the earliest listing day, then the lowest hop, then the lowest
    cause (loan codes sort like the loan ids), then the most direct tie kind, in the
    order of :data:`~spillover.simulate.listing.TIE_KINDS` (the borrower's own loan,
    the applicant's phone, a guarantor, an emergency contact, a reference, an address
    book: the order of :data:`spillover.rules.ROLES`), then the person the tie names
    (by id; unknown last).

    The tie kind decides when one loan names the subject in several roles (one number
    given as an emergency contact and found in the address book, or two numbers of one
    person): the entry is put down to the most direct of them, whatever order the data
    lists the roles in or the index holds them in. Every field of an entry is then
    fixed by these keys, so no sort's order of equal keys decides an answer."""
    linked = np.where(c.linked >= 0, c.linked, np.iinfo(np.int64).max)
    return c.listed, c.hop, c.cause, c.tie, linked


def simulate_rule(world: World, rule: ListingRule, *, seed: int = 0) -> SimulatedBlacklist:
    """The blacklist ``rule`` would create by the world's cut-off (docs/research.md).

    1. A loan whose status is one the platform's action lists on, known (``status_at``)
       by the cut-off, is listed ``delay_days`` after that day (one draw per loan): its
       borrower (tie ``own_loan``) and every phone tie the action names (the phone's
       owner on the application day is not the borrower), as the phone's owner on the
       listing day (the phone when unknown, or with ``subject = "phone"``).
    2. Depth k > 1: the people listed at hop k - 1 by a platform, their own loans with
       it applied for by that listing, and those loans' ties, ``delay_days`` later.
    3. One entry per (platform, subject): the earliest, then the lowest hop, then the
       lowest cause (loan id), then the most direct tie (:func:`_entry_order`).
    4. Sharing: a platform that acts on shared lists copies every entry of a platform
       sharing with it, ``copy_delay_days`` after the later of the entry and the
       agreement's ``since``; copies travel on (one entry per (platform, subject), the
       earliest), nothing after the cut-off.
    """
    check_seed(seed)
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
        # (the earliest listing; of listings on one day, the lowest cause: loan codes sort
        # like the loan ids, so the rows' order never decides)
        keep = _first(fr.platform * ix.phone_base + who, fr.listed, fr.cause)
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
    first = _first(c.platform * n_keys + subject, *_entry_order(c))
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
