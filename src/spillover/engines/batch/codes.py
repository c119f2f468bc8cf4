"""The integer codes of columns whose source did not resolve them (:func:`codes_of`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...facts.columns import Codes, Columns
from ...facts.phonecodes import PhoneCodes, codes_in, string_array

__all__ = ["coded_only", "codes_of"]


def _is(values: np.ndarray | pa.Array, text: str) -> np.ndarray:
    """Where a string column equals ``text``."""
    mask: np.ndarray = pc.equal(string_array(values), text).to_numpy(zero_copy_only=False)
    return mask


def _order(values: np.ndarray | pa.Array) -> np.ndarray:
    """The rows of an id column in the order of the ids."""
    return np.asarray(pc.sort_indices(string_array(values)).to_numpy(), dtype=np.int64)


def _rows(universe: np.ndarray | pa.Array, values: np.ndarray | pa.Array) -> np.ndarray:
    """The row of each value in ``universe`` (an id column), -1 where absent."""
    return codes_in(string_array(universe), values)


def codes_of(cols: Columns) -> Codes:
    """The :class:`~spillover.facts.columns.Codes` of columns whose source did not resolve them
    (hash lookups and sorts of the id strings)."""
    is_person = _is(cols.entry_kind, "person")
    is_phone = _is(cols.entry_kind, "phone")
    applicant = string_array(cols.loan_applicant_phone)
    has_applicant = ~_is(applicant, "")
    subjects = string_array(cols.entry_subject)
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
        person_order=_order(cols.person_ids),
        platform_order=_order(cols.platform_ids),
        loan_order=_order(cols.loan_ids),
        entry_order=_order(cols.entry_ids),
        period_owner=_rows(cols.person_ids, cols.period_owner),
        loan_platform=_rows(cols.platform_ids, cols.loan_platform),
        loan_borrower=_rows(cols.person_ids, cols.loan_borrower),
        link_loan=_rows(cols.loan_ids, cols.link_loan),
        entry_platform=_rows(cols.platform_ids, cols.entry_platform),
        entry_person=np.where(is_person, _rows(cols.person_ids, cols.entry_subject), -1),
        entry_copied_from=_rows(cols.entry_ids, cols.entry_copied_from),
        share_from=_rows(cols.platform_ids, cols.share_from),
        share_to=_rows(cols.platform_ids, cols.share_to),
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
