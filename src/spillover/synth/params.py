"""The knobs of the synthetic population (:class:`SynthParams`) and their checks.

:func:`read_params` reads the overrides given to :func:`spillover.synth.generate.generate`
into their types and refuses every wrong one at once; :func:`check_target` refuses a
population size, a seed or an output folder it cannot use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from ..data.contract import MAX_YEAR
from ..errors import SpilloverError

__all__ = ["YEAR", "SynthParams", "check_target", "read_params"]

#: days in a year of the generative model
YEAR = 365


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generative model, with its default (see ``docs/synthetic-data.md``).

    Probabilities are per person, per loan, per platform or per platform pair as
    their names say. Pass any of them to :func:`generate` as a keyword argument.
    """

    # --- time
    #: first application day
    start: date = date(2019, 1, 1)
    #: snapshot day: nothing happens after it
    end: date = date(2024, 12, 31)

    # --- platforms and their policies
    #: number of platforms; 0 = auto: people // 100, clipped to 4..30
    platforms: int = 0
    #: share of platforms that are banks (at least 1)
    bank_share: float = 0.2
    #: share of platforms that are data brokers (at least 1)
    broker_share: float = 0.1
    #: share of lenders that do not verify applicant phones by SMS (at least 1, not all)
    informal_share: float = 0.4
    #: a lender also lists the applicant phone of a delinquent loan
    p_lists_applicant_phone: float = 0.4
    #: a lender also lists the contact, reference and guarantor phones of a delinquent loan
    p_lists_contacts: float = 0.4
    #: a contact-listing lender lists the phone's real-name owner instead of the phone
    p_lists_owner: float = 0.3
    #: a contact-listing lender also lists the uploaded address-book numbers
    p_lists_address_book: float = 0.3
    #: an informal lender uploads applicants' address books
    p_address_book_informal: float = 0.5
    #: a verifying lender uploads applicants' address books
    p_address_book_verifying: float = 0.1
    #: a broker resolves the phones it copies to their real-name owners
    p_broker_resolves: float = 0.5
    #: a lender passes its blacklist to a given broker
    p_lender_to_broker: float = 0.3
    #: a broker passes its blacklist to a given bank
    p_broker_to_bank: float = 0.7
    #: a lender passes its blacklist to a given other lender
    p_lender_to_lender: float = 0.04

    # --- people
    #: smallest community (people who may know each other; one city)
    community_min: int = 20
    #: largest community
    community_max: int = 150
    #: acquaintances per person, drawn from the community
    circle_size: int = 8
    #: a person has no resident ID number in the data
    p_no_id_number: float = 0.03
    #: a person has no city in the data
    p_no_city: float = 0.02

    # --- phones
    #: a person has a second number
    p_second_phone: float = 0.45
    #: a second number belonged to another person before (number reassignment)
    p_reassigned: float = 0.06
    #: an owner period's real-name registration is not verified
    p_phone_unverified: float = 0.08
    #: an owner period's subscriber is unknown (owner_id empty; the truth still knows)
    p_owner_unknown: float = 0.01
    #: a person gives another valid number of theirs instead of the first one
    p_use_second_phone: float = 0.3
    #: a contact is given by their old number that now belongs to someone else
    p_stale_number: float = 0.3

    # --- loans
    #: share of risky people (borrow more, default much more)
    risky_share: float = 0.04
    #: mean loans per person
    loans_mean: float = 2.3
    #: negative binomial dispersion of loans per person (lower = more skewed)
    loans_dispersion: float = 0.6
    #: a risky person's mean number of loans, relative to the others
    risky_loan_factor: float = 3.0
    #: cap on loans per person
    max_loans: int = 80
    #: share of loans at banks / verifying lenders / informal lenders
    share_normal: tuple[float, float, float] = (0.3, 0.5, 0.2)
    #: the same for risky people
    share_risky: tuple[float, float, float] = (0.1, 0.4, 0.5)
    #: a risky person's loan goes bad (overdue, then defaulted)
    p_bad_risky: float = 0.25
    #: the same for the others
    p_bad_normal: float = 0.005
    #: a risky person's loan goes overdue and stays so
    p_late_risky: float = 0.08
    #: the same for the others
    p_late_normal: float = 0.008
    #: factor on the bad and late rates at banks / verifying lenders / informal lenders
    risk_by_kind: tuple[float, float, float] = (0.4, 1.0, 1.5)
    #: an application at a bank uses a phone that is not the borrower's
    p_misuse_bank: float = 0.001
    #: the same at a lender that verifies phones by SMS
    p_misuse_verifying: float = 0.004
    #: the same at an informal lender
    p_misuse_informal: float = 0.03
    #: factor on the misuse rates for risky people
    misuse_risky_factor: float = 3.0
    #: a misused phone is an acquaintance's (else a stranger's)
    p_misuse_acquaintance: float = 0.7

    # --- loan links
    #: a lender's application names a second emergency contact (banks: always one)
    p_second_contact: float = 0.3
    #: an application names a reference
    p_reference: float = 0.2
    #: a bank loan has a guarantor
    p_guarantor_bank: float = 0.05
    #: a lender's loan has a guarantor
    p_guarantor_lender: float = 0.01
    #: a contact, reference or guarantor is someone outside the circle
    p_out_of_circle: float = 0.1
    #: fewest numbers uploaded from an address book
    address_book_min: int = 1
    #: most numbers uploaded from an address book (at most circle_size)
    address_book_max: int = 4

    # --- blacklisting
    #: days between delinquency (status_at) and listing: 1..this
    listing_delay_max: int = 14
    #: days between a source entry (or the sharing's start) and its copy: 0..this (+1 when screening)
    copy_delay_max: int = 10
    #: an entry a bank lists from a shared list names its source (copied_from)
    p_bank_records_source: float = 0.8
    #: the same for a lender
    p_lender_records_source: float = 0.3

    # --- customer records (generate(..., records=True); docs/synthetic-data.md)
    #: platform records per person beyond the first (Poisson mean)
    records_extra: float = 1.0
    #: a record writes the name in Chinese characters (王伟芳) instead of pinyin
    p_record_hanzi: float = 0.3
    #: a pinyin name is written with other case or spacing (WANG WEIFANG, wangweifang, Wang Wei Fang)
    p_record_spacing: float = 0.3
    #: a pinyin name is written given name first (Weifang Wang): an order swap
    p_record_swapped: float = 0.1
    #: a pinyin name has a typo (one letter replaced)
    p_record_typo: float = 0.05
    #: a record has no ID number (also when the person has none)
    p_record_no_id: float = 0.3
    #: a record's ID number has a typo (one of the first 17 digits replaced)
    p_record_id_typo: float = 0.01
    #: a record has no phone number
    p_record_no_phone: float = 0.05
    #: a record gives the person's second number (when they have one)
    p_record_second_phone: float = 0.15
    #: a record gives the first number of someone in the person's circle (a shared phone)
    p_record_shared_phone: float = 0.03
    #: a record gives a hub number (an agent's or a shop's, reused by many customers)
    p_record_hub_phone: float = 0.005
    #: a record writes the phone as a national number (13912345678) instead of E.164
    p_record_national_phone: float = 0.2
    #: a record has no birth date
    p_record_no_birth: float = 0.3
    #: a record's birth date is one day off
    p_record_birth_typo: float = 0.01
    #: a record has no city
    p_record_no_city: float = 0.15
    #: a record gives another city (the person moved)
    p_record_moved: float = 0.05
    #: a record already names its person (records.person_id)
    p_record_known: float = 0.05


#: the checks across parameters, after each is read: (the parameters it reads, whether
#: they are wrong, what to say then; ``{p.NAME}`` in the message is the parameter's value)
_CHECKS: tuple[tuple[str, Callable[[SynthParams], bool], str], ...] = (
    (
        "start, end",
        lambda p: not date(1980, 1, 1) <= p.start or p.end > date(MAX_YEAR, 12, 31),
        f"start and end must lie between 1980-01-01 and {MAX_YEAR}-12-31",
    ),
    (
        "start, end",
        lambda p: (p.end - p.start).days < YEAR,
        "end {p.end} must be at least a year after start {p.start}",
    ),
    (
        "platforms",
        lambda p: bool(p.platforms) and p.platforms < 4,
        "platforms must be 0 (auto) or at least 4, got {p.platforms}",
    ),
    (
        "bank_share, broker_share",
        lambda p: p.bank_share + p.broker_share > 0.8,
        "bank_share + broker_share must leave room for lenders (at most 0.8)",
    ),
    (
        "community_min, community_max",
        lambda p: p.community_min < 2 or p.community_max < p.community_min,
        "need 2 <= community_min <= community_max",
    ),
    ("circle_size", lambda p: p.circle_size < 1, "circle_size must be at least 1"),
    (
        "address_book_min, address_book_max",
        lambda p: not 1 <= p.address_book_min <= p.address_book_max,
        "need 1 <= address_book_min <= address_book_max",
    ),
    (
        "loans_mean, loans_dispersion, max_loans",
        lambda p: p.loans_dispersion <= 0 or p.loans_mean <= 0 or p.max_loans < 1,
        "loans_mean and loans_dispersion must be positive, max_loans >= 1",
    ),
    (
        "listing_delay_max",
        lambda p: p.listing_delay_max < 1,
        "listing_delay_max must be at least 1",
    ),
)


def read_params(overrides: dict[str, Any]) -> SynthParams:
    """The parameters: the defaults with ``overrides`` read into their types, checked
    (every problem named at once)."""
    known = {f.name: f for f in fields(SynthParams)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise SpilloverError(
            f"unknown synth parameter(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    defaults = SynthParams()
    values = {
        name: _read(name, value, getattr(defaults, name)) for name, value in overrides.items()
    }
    p = SynthParams(**{**{f: getattr(defaults, f) for f in known}, **values})
    problems = [_range_problem(name, getattr(p, name)) for name in known]
    problems += [message.format(p=p) for _, wrong, message in _CHECKS if wrong(p)]
    if any(problems):
        raise SpilloverError("bad synth parameters: " + "; ".join(filter(None, problems)))
    return p


def _read(name: str, value: Any, default: Any) -> Any:
    """One override read into the type of its default (a date, three shares, a flag, an
    integer, a number)."""
    try:
        if isinstance(default, date):
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if isinstance(default, tuple):
            shares = tuple(float(v) for v in value)
            if len(shares) != len(default) or min(shares) < 0 or sum(shares) <= 0:
                value = shares
                raise ValueError("three non-negative numbers, not all 0")
            return shares
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, bool) or int(value) != value:
                raise ValueError("an integer")
            return int(value)
        return float(value)
    except (TypeError, ValueError) as exc:
        raise SpilloverError(f"synth parameter {name}={value!r}: {exc}") from None


def _range_problem(name: str, value: Any) -> str:
    """What is wrong with one parameter alone: a probability or share outside [0, 1], a
    negative count or number ("" when nothing)."""
    if name.startswith("p_") or name.endswith("_share"):
        if not 0.0 <= value <= 1.0:
            return f"{name} must be in [0, 1], got {value}"
    elif isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
        return f"{name} must not be negative, got {value}"
    return ""


def check_target(people: Any, seed: Any, out: Path) -> None:
    """Refuse a population size, a seed or an output folder :func:`generate` cannot use
    (the folder must be new or empty)."""
    if isinstance(people, bool) or not isinstance(people, int | np.integer):
        raise SpilloverError(f"people must be an integer, got {people!r}")
    if people < 10:
        raise SpilloverError(f"people must be at least 10, got {people}")
    if people > 100_000_000:
        raise SpilloverError(f"people must be at most 100000000, got {people}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SpilloverError(f"seed must be a non-negative integer, got {seed!r}")
    if out.exists():
        if not out.is_dir():
            raise SpilloverError(f"output {out} exists and is not a directory")
        if any(out.iterdir()):
            raise SpilloverError(f"output directory {out} is not empty; choose a new one")
