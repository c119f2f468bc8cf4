"""The rules compiled into lookup tables indexed by integer codes, for the batch kernel.

Every step kind, factor and reason code of :mod:`spillover.rules` becomes a table the
kernel indexes with integer codes (``USE_KIND[role, sms]``, ...): the kernel decides
nothing the rules do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...rules import APPLICANT as APPLICANT_ROLE
from ...rules import (
    ROLES,
    TIE_KINDS,
    MatchKey,
    StepKind,
    loan_kind,
    owns_kind,
    subject_phone_kind,
    use_kind,
)

__all__ = [
    "APPLICANT",
    "KIND_CODE",
    "LAYER_BITS",
    "LOAN_KIND",
    "MATCH_KEYS",
    "OWN",
    "OWNS_KIND",
    "OWNS_UNVERIFIED",
    "OWN_LOAN_KEY",
    "ROLE_CODE",
    "ROLE_NAMES",
    "SUBJECT_PHONE_KIND",
    "USE_KIND",
]

#: role codes sort like the role strings ("" = own loan sorts first)
ROLE_NAMES = ("", *sorted(ROLES))
ROLE_CODE = {name: i for i, name in enumerate(ROLE_NAMES)}
OWN = ROLE_CODE[""]
APPLICANT = ROLE_CODE[APPLICANT_ROLE]

#: tie kinds as integer codes: the index in spillover.rules.TIE_KINDS
KIND_CODE = {k.name: i for i, k in enumerate(TIE_KINDS)}
#: the bits of one layer's summary (kind code * 2 + owner unverified) in a path signature
LAYER_BITS = (2 * len(TIE_KINDS) - 1).bit_length()


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
OWN_LOAN_KEY = loan_kind(subject=True).factor_key
#: match keys as integer codes: the index in this tuple
MATCH_KEYS: tuple[MatchKey, ...] = tuple(MatchKey)
