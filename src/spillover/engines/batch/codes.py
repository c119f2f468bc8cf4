"""The integer codes of columns whose source did not resolve them (:func:`codes_of`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...facts.columns import Codes, Columns
from ...facts.phonecodes import PhoneCodes, codes_in, string_array

__all__ = ["coded_only", "codes_of"]


def _is(values: pa.Array, text: str) -> np.ndarray:
    """Where a string column equals ``text``."""
    mask: np.ndarray = pc.equal(values, text).to_numpy(zero_copy_only=False)
    return mask


def _order(values: pa.Array) -> np.ndarray:
    """The rows of an id column in the order of the ids."""
    return np.asarray(pc.sort_indices(values).to_numpy(), dtype=np.int64)


def codes_of(cols: Columns) -> Codes:
    """The :class:`~spillover.facts.columns.Codes` of columns whose source did not resolve them
    (hash lookups and sorts of the id strings). Each text column is made an Arrow array
    once (:func:`~spillover.facts.phonecodes.string_array`: a no-op for a column that
    already is one), however many lookups read it."""
    people, platforms = string_array(cols.person_ids), string_array(cols.platform_ids)
    loans, entries = string_array(cols.loan_ids), string_array(cols.entry_ids)
    kinds, subjects = string_array(cols.entry_kind), string_array(cols.entry_subject)
    is_person, is_phone = _is(kinds, "person"), _is(kinds, "phone")
    applicant = string_array(cols.loan_applicant_phone)
    has_applicant = ~_is(applicant, "")
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
        person_order=_order(people),
        platform_order=_order(platforms),
        loan_order=_order(loans),
        entry_order=_order(entries),
        period_owner=codes_in(people, cols.period_owner),
        loan_platform=codes_in(platforms, cols.loan_platform),
        loan_borrower=codes_in(people, cols.loan_borrower),
        link_loan=codes_in(loans, cols.link_loan),
        entry_platform=codes_in(platforms, cols.entry_platform),
        entry_person=np.where(is_person, codes_in(people, subjects), -1),
        entry_copied_from=codes_in(entries, cols.entry_copied_from),
        share_from=codes_in(platforms, cols.share_from),
        share_to=codes_in(platforms, cols.share_to),
        phones=phones,
        period_phone=period,
        loan_applicant_phone=applicant_phone,
        link_phone=link,
        entry_phone=entry_phone,
    )


#: the columns the index reads only through their codes when the source resolved them
#: (:attr:`~spillover.facts.columns.Columns.codes`), and only to make the codes when not
CODED_COLUMNS = (
    "period_phone",
    "period_owner",
    "loan_platform",
    "loan_borrower",
    "loan_applicant_phone",
    "link_loan",
    "link_phone",
    "entry_platform",
    "entry_copied_from",
    "share_from",
    "share_to",
)


def coded_only(cols: Columns) -> Columns:
    """What an :class:`~spillover.engines.batch.Index` of ``cols`` reads, for a caller that
    keeps nothing else: when the source resolved the codes, the text of the references the
    codes stand for (phone numbers, the ids a row names) and the display fields are dropped
    (empty), so that their memory is freed before the pass; else ``cols`` as they are."""
    if cols.codes is None:
        return cols
    empty = pa.array([], pa.string())
    return replace(cols, details=None, **{name: empty for name in CODED_COLUMNS})
