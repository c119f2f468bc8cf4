"""Worlds that stress hubs and chains: grown along one axis (a hub, a copy chain), or
random with long copy chains; and a time budget run in a child process.

The scaling tests build such a world at a size whose quadratic cost is minutes, and run
the command under test in a fresh interpreter with a time budget some 5-10x above what
the near-linear code needs on a loaded machine: the budget fails (instead of hanging the
suite) where the cost grows with the square of the size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

from scenario import Scenario, random_scenario


def hub_case(loans: int, entries: int = 1) -> Scenario:
    """``owner``'s phone is the emergency contact on ``loans`` defaulted loans of as many
    strangers at ``lender`` (which shares with ``bank``); ``lender`` lists the owner
    (entry ``E``), and the bank lists them ``entries - 1`` more times (``E1``, ...)."""
    s = Scenario()
    s.platform("lender")
    s.platform("bank", "bank")
    s.share("lender", "bank")
    s.person("owner")
    hub = s.phone("owner", "+8613900000000")
    for i in range(loans):
        borrower = s.person(f"b{i:05d}")
        own = s.phone(borrower)
        loan = f"L{i:05d}"
        s.loan(loan, "lender", borrower, "2023-01-10", applicant_phone=own, status_at="2023-02-01")
        s.link(loan, hub, "emergency_contact")
    s.entry("E", "lender", "owner", "2023-04-01")
    for k in range(1, entries):
        s.entry(f"E{k}", "bank", "owner", "2023-04-02")
    return s


def copy_heavy_scenario(seed: int, loans: int = 30, entries: int = 14) -> Scenario:
    """A random world where most listings are copies of recent ones and more platforms
    share, some agreements undated (so chains are long, and cuts hold copies as well as
    tie records)."""
    import random

    s = random_scenario(seed, people=8, loans=loans, entries=entries)
    rng = random.Random(seed)
    rows = sorted(s.tables["blacklist"], key=lambda r: r["listed_at"])
    for k, row in enumerate(rows):
        row["copied_from"] = None
        if k and rng.random() < 0.8:
            row["copied_from"] = rng.choice(rows[max(0, k - 3) : k])["entry_id"]
    platforms = [p["platform_id"] for p in s.tables["platforms"]]
    pairs = {(x["from_platform"], x["to_platform"]) for x in s.tables["sharing"]}
    for _ in range(5):
        a, b = rng.sample(platforms, 2)
        if (a, b) not in pairs:
            pairs.add((a, b))
            s.share(a, b, f"2022-0{rng.randint(1, 9)}-01" if rng.random() < 0.8 else None)
    return s


def copy_chain_case(platforms: int, *, dated: bool = False, status: str = "defaulted") -> Scenario:
    """A chain of ``platforms`` platforms, each passing its blacklist to the next (from one
    day, or ``dated``: from a day of its own), and a chain of as many entries on ``x``,
    each copied from the one on the platform before (listed ten a day). ``y``'s loan at
    the first platform (``status``) names ``x``'s phone as emergency contact."""
    s = Scenario()
    s.person("x")
    s.person("y")
    px, py = s.phone("x"), s.phone("y")
    names = [s.platform(f"pl{i:05d}") for i in range(platforms)]
    day0 = date(2023, 1, 1)
    for i in range(platforms - 1):
        since = (date(2022, 1, 1) + timedelta(days=i % 300)).isoformat() if dated else None
        s.share(names[i], names[i + 1], since)
    s.loan("L", names[0], "y", "2022-01-10", status, applicant_phone=py, status_at="2022-02-01")
    s.link("L", px, "emergency_contact")
    previous = None
    for i in range(platforms):
        listed = (day0 + timedelta(days=i // 10)).isoformat()
        previous = s.entry(f"E{i:05d}", names[i], "x", listed, copied_from=previous)
    return s


def reassigned_case(periods: int) -> Scenario:
    """One number, ``+8613900000000``, reassigned ``periods`` times: owner ``o{i}`` holds it
    for one day (from 1950-01-01 on, one day each), the day ``x`` names it as the
    applicant phone (no SMS check) on his loan ``L{i}`` at ``lender``, defaulted the next
    day; ``lender`` lists each owner (``E{i}``), and lists the phone itself (``E-PH``) in
    2099."""
    s = Scenario()
    s.platform("lender")
    s.person("x")
    s.phone("x")
    hub = "+8613900000000"
    day0 = date(1950, 1, 1)
    for i in range(periods):
        day = (day0 + timedelta(days=i)).isoformat()
        after = (day0 + timedelta(days=i + 1)).isoformat()
        s.person(f"o{i:05d}")
        s.phone(f"o{i:05d}", hub, since=day, until=day)
        s.loan(f"L{i:05d}", "lender", "x", day, applicant_phone=hub, status_at=after)
        s.entry(f"E{i:05d}", "lender", f"o{i:05d}", after)
    s.entry("E-PH", "lender", hub, "2099-01-01", kind="phone")
    return s


def within(seconds: float, code: str, *args: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter (with this one's import path: the same
    spillover); its wall time and stdout. Fails the test past ``seconds``."""
    began = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            timeout=seconds,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"not done in {seconds} s: the cost grows faster than the size"
        ) from None
    wall = time.perf_counter() - began
    assert proc.returncode == 0, proc.stderr[-3000:]
    return wall, proc.stdout


def listed_per_loan_case(loans: int, seed: int = 0) -> Scenario:
    """``x`` borrows ``loans`` loans at three lenders (one a day, each with a status of its
    own, known 1-60 days later), ``y``'s phone named on every third as emergency contact
    and ``z``'s as the applicant phone on every fifth; and ``x`` is listed once per loan
    (on a day 0-90 days after it, by its lender or a bank two of them share with from days
    of their own), as a simulated rule lists a borrower per defaulted loan; ``y`` and
    ``z`` are listed a few times too. Each entry on ``x`` ties to every loan of his
    applied by its listing: entries x loans."""
    import random

    rng = random.Random(seed)
    s = Scenario()
    lenders = [s.platform(f"l{i}") for i in range(3)]
    s.platform("bank", "bank")
    s.share("l0", "bank", "2021-01-01")
    s.share("l1", "bank", "2022-06-01")
    s.share("l2", "l0")
    for who in ("x", "y", "z"):
        s.person(who)
    px, py, pz = s.phone("x"), s.phone("y"), s.phone("z", verified=False)
    day0 = date(2020, 1, 1)
    statuses = ["defaulted", "overdue", "repaid", "current"]
    for i in range(loans):
        applied = day0 + timedelta(days=i)
        known = (applied + timedelta(days=rng.randint(1, 60))).isoformat()
        loan = f"L{i:05d}"
        phone = pz if i % 5 == 0 else px
        s.loan(
            loan,
            rng.choice(lenders),
            "x",
            applied.isoformat(),
            rng.choice(statuses),
            applicant_phone=phone,
            status_at=known,
        )
        if i % 3 == 0:
            s.link(loan, py, "emergency_contact")
        listed = (applied + timedelta(days=rng.randint(0, 90))).isoformat()
        s.entry(f"E{i:05d}", rng.choice([*lenders, "bank"]), "x", listed)
        if i % 7 == 0:
            s.entry(f"Y{i:05d}", rng.choice([*lenders, "bank"]), rng.choice(["y", "z"]), listed)
    return s
