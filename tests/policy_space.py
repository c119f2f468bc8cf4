"""Valid scoring policies for hypothesis: every policy file that loads (docs/scoring.md
"Properties every policy keeps"), written out as TOML and read with ``parse_policy``.

The factors are drawn at their bounds (0, 0.1, 0.7, 1), in between, equal to each other
(ties between tie kinds) and written in every TOML form a number takes (``1``, ``1.0``,
``1e0``, ``+1.0``, ``0``, ``-0.0``); ``max_loans`` 1 to 4, ``max_paths`` 1, 2, 10 or very large,
``origin_statuses`` with or without ``overdue``, ``spillover_at`` from just above 0 to 1.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from spillover.policy import Policy, parse_policy

#: the factors a stranger's use of the subject's phone gets: each <= 0.1 (contamination >= 0.9)
STRANGER = (
    "applicant_sms_verified",
    "applicant_unverified",
    "reference",
    "reassigned_phone",
)


def _share(upper: float) -> st.SearchStrategy[float]:
    """A factor in [0, upper]: mostly the bounds and a few round values (ties), else any."""
    round_values = [0.0, upper, upper / 2, 0.01, 0.05, 1e-300, 1e-320, 5e-324]
    return st.one_of(
        st.sampled_from([v for v in round_values if v <= upper]),
        st.floats(0.0, upper),
    )


def _toml_number(draw: st.DrawFn, value: float) -> str:
    """``value`` as TOML writes a number, in one of its spellings."""
    forms = [repr(float(value))]
    if value == int(value):
        forms.append(str(int(value)))
    forms.append(f"{value:e}" if float(f"{value:e}") == value else repr(float(value)))
    forms.append("+" + forms[0])
    if value == 0:
        forms += ["-0.0", "-0"]
    return draw(st.sampled_from(forms))


@st.composite
def factor_values(draw: st.DrawFn) -> dict[str, float]:
    """One value per factor key, inside every bound and ordering the loader checks."""
    f: dict[str, float] = {"own_loan": 1.0, "own_phone": 1.0, "match_known": 1.0}
    for key in STRANGER:
        f[key] = draw(_share(0.1))
    f["emergency_contact"] = draw(_share(0.1))
    f["address_book"] = draw(
        st.one_of(st.just(f["emergency_contact"]), _share(f["emergency_contact"]))
    )
    f["owns_verified"] = draw(st.sampled_from([0.7, 0.875, 1.0]) | st.floats(0.7, 1.0))
    f["owns_unverified"] = draw(st.sampled_from([0.7, f["owns_verified"], 1.0]) | st.floats(0.7, 1))
    lowest = 0.7 / min(f["owns_verified"], f["owns_unverified"])
    f["guarantor"] = draw(st.sampled_from([1.0, min(1.0, lowest * 1.000001)]))
    if f["guarantor"] * min(f["owns_verified"], f["owns_unverified"]) < 0.7:
        f["guarantor"] = 1.0
    f["borrower_of_linked_loan"] = draw(_share(1.0))
    f.update(draw(match_values()))
    return f


@st.composite
def match_values(draw: st.DrawFn) -> dict[str, float]:
    """The match factors: phone-only <= 0.1; phone-only, name-only <= each name-and-* <=
    ID number; other <= ID number; a new identity anywhere in [0, 1]."""
    f = {"match_id_number": draw(_share(1.0))}
    top = f["match_id_number"]
    for key in ("match_name_and_phone", "match_name_and_birth_date", "match_name_and_city"):
        f[key] = draw(st.one_of(st.just(top), _share(top)))
    floor = min(f["match_name_and_phone"], f["match_name_and_birth_date"], f["match_name_and_city"])
    f["match_phone_only"] = draw(_share(min(0.1, f["match_name_and_phone"])))
    f["match_name_only"] = draw(st.one_of(st.just(floor), _share(floor)))
    f["match_other"] = draw(_share(top))
    f["match_new_identity"] = draw(_share(1.0))
    return f


@st.composite
def policy_texts(draw: st.DrawFn) -> bytes:
    """The bytes of a valid policy file."""
    factors = draw(factor_values())
    statuses = draw(
        st.sampled_from([["defaulted"], ["defaulted", "overdue"], ["overdue", "defaulted"]])
    )
    spillover_at = draw(st.sampled_from([1.0, 0.5, 0.05, 0.9, 1e-6]) | st.floats(1e-6, 1.0))
    review = draw(st.sampled_from([0.3, 1.0]) | st.floats(1e-6, 1.0))
    do_not = draw(st.sampled_from([review, 1.0]) | st.floats(review, 1.0))
    search: dict[str, Any] = {
        "max_loans": draw(st.integers(1, 4)),
        "max_paths": draw(st.sampled_from([1, 2, 10, 10**12])),
        "origin_statuses": "[" + ", ".join(f'"{s}"' for s in statuses) + "]",
    }
    lines = ["[policy]", 'name = "drawn"', 'version = "0.1"', "[factors]"]
    keys = list(factors)
    order = draw(st.permutations(keys))
    lines += [f"{k} = {_toml_number(draw, factors[k])}" for k in order]
    lines += ["[search]"] + [f"{k} = {v}" for k, v in search.items()]
    lines += ["[verdict]", f"spillover_at = {_toml_number(draw, spillover_at)}"]
    lines += [
        "[recommendation]",
        f"review_at = {_toml_number(draw, review)}",
        f"do_not_list_at = {_toml_number(draw, do_not)}",
    ]
    return ("\n".join(lines) + "\n").encode()


def policies() -> st.SearchStrategy[Policy]:
    """Valid policies, parsed from the bytes of :func:`policy_texts`."""
    return policy_texts().map(lambda raw: parse_policy(raw, "drawn.toml"))
