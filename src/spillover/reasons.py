"""Reason codes: short, stable identifiers with one-line texts, like adverse-action reasons.

Codes are part of the output contract: never rename one; add new ones.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "OWN_DEFAULT": "The subject's own loan is overdue or defaulted.",
    "OWN_PHONE": "The listed phone was the borrower's own number when the loan was taken.",
    "PHONE_REASSIGNED": "The listed number was the borrower's then, but has another owner at the listing.",
    "PHONE_USED_SMS_VERIFIED": "Another person applied with the subject's phone and passed an SMS check.",
    "PHONE_USED_UNVERIFIED": "Another person applied with the subject's phone without SMS verification.",
    "GUARANTOR": "The subject's phone stands as guarantor on the loan: a guarantee responsibility.",
    "EMERGENCY_CONTACT": "The subject's phone is only an emergency contact on another person's loan.",
    "REFERENCE": "The subject's phone is only a reference on another person's loan.",
    "ADDRESS_BOOK": "The subject's phone was only in another borrower's uploaded address book.",
    "OWNER_UNVERIFIED": "The subject's ownership of the phone is not real-name verified.",
    "CHAIN_VIA_BORROWER": "The tie runs through another borrower's loans.",
    "SHARED_BLACKLIST": "The listing reached this platform through blacklist sharing.",
    "COPIED_ENTRY": "The entry was copied from another platform's entry.",
    "NO_TIME_RESPECTING_PATH": "No record ties the subject to a default that reached this platform in time.",
    "PATH_IGNORES_DATES": "A tie exists only by ignoring dates (listed before the default or the sharing).",
    "NO_PLATFORM_ROUTE": "The subject is tied to defaults, but none on a platform that reaches this one.",
    "NO_TIE_TO_ANY_DEFAULT": "No record ties the subject to any overdue or defaulted loan.",
}


def reason_text(code: str) -> str:
    return REASONS[code]
