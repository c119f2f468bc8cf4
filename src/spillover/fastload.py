"""Fast columnar loading of large data folders (Arrow CSV reader + vectorized checks).

:func:`read_columns` is for batch work (the one-pass audit) on big folders. It
reads CSV tables with Arrow and checks every rule of CONTRACT §1 on whole
columns. It is deliberately conservative: whenever something is not plainly
valid (a JSONL table, an odd spelling, a stray space, any defect at all), it
hands the folder to the exact loader (:func:`spillover.loader.load_folder`),
which either accepts it or refuses it with the usual ``file:line: field``
messages. So it never accepts what the exact loader refuses, and it never
reports problems itself.
"""

from __future__ import annotations

import csv as pycsv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from .kernel import FOREVER, NEVER, Columns, columns_from_dataset
from .loader import load_folder, table_file
from .model import LinkRole, LoanStatus, PlatformKind, SubjectKind
from .phones import DEFAULT_REGION, normalize_phone
from .resident_id import _WEIGHTS
from .rows import REQUIRED_TABLES, TABLES, required_columns

Progress = Callable[[str, int, int], None]

_DATE = r"^\d{4}-\d{2}-\d{2}$"
_BOOL_TRUE = ("true", "1", "yes")
_BOOL_FALSE = ("false", "0", "no")
_E164_CN_MOBILE = r"^\+861[3-9]\d{9}$"
_CN_NATIONAL_MOBILE = r"^1[3-9]\d{9}$"
_ORDINAL_1970 = 719163  # date(1970, 1, 1).toordinal()


class _Fallback(Exception):
    """The fast path is not sure; the exact loader decides."""


def read_columns(
    folder: str | Path, *, region: str = DEFAULT_REGION, progress: Progress | None = None
) -> Columns:
    """Validated :class:`~spillover.kernel.Columns` of a data folder.

    Raises :class:`~spillover.errors.DataError` exactly as
    :func:`~spillover.loader.load_folder` does for a bad folder.
    """
    try:
        return _fast(Path(folder), region, progress)
    except _Fallback:
        if progress:
            progress("exact loader", 0, 1)
        return columns_from_dataset(load_folder(folder, region=region))


def _need(ok: bool | np.bool_) -> None:
    if not ok:
        raise _Fallback


def _read(folder: Path, table: str) -> pa.Table | None:
    path = table_file(folder, table)
    if path is None:
        _need(table not in REQUIRED_TABLES)
        return None
    _need(path.suffix == ".csv" and not (folder / f"{table}.jsonl").exists())
    with path.open("rb") as handle:
        _need(handle.read(3) != b"\xef\xbb\xbf")  # a byte-order mark: let the exact loader read it
    try:
        types = {name: pa.string() for name in _header(path)}
        out = csv.read_csv(
            path,
            convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=False),
            read_options=csv.ReadOptions(block_size=1 << 24),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, StopIteration) as exc:
        raise _Fallback from exc
    needed = required_columns(TABLES[table])
    _need(all(c in out.column_names for c in needed))
    return out


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(pycsv.reader(handle))


def _col(table: pa.Table | None, name: str, rows: int = 0) -> pa.Array:
    if table is None or name not in table.column_names:
        return pa.array([""] * (table.num_rows if table is not None else rows), pa.string())
    return table.column(name).combine_chunks()


def _clean(arr: pa.Array, required: bool) -> np.ndarray:
    """Text column as a numpy str array; leading/trailing spaces or a missing required value: fall back."""
    _need(pc.all(pc.equal(pc.utf8_trim_whitespace(arr), arr)).as_py() in (True, None))
    values = arr.to_numpy(zero_copy_only=False).astype(str)
    if required:
        _need(not (values == "").any())
    return values


def _enum(values: np.ndarray, allowed: set[str], optional: bool) -> None:
    ok = set(np.unique(values).tolist())
    if optional:
        ok.discard("")
    _need(ok <= allowed)


def _bools(arr: pa.Array) -> np.ndarray:
    low = pc.utf8_lower(arr)
    _need(pc.all(pc.is_in(low, pa.array(["", *_BOOL_TRUE, *_BOOL_FALSE]))).as_py() in (True, None))
    return pc.is_in(low, pa.array(list(_BOOL_TRUE))).to_numpy(zero_copy_only=False)


def _days(arr: pa.Array, missing: np.int64 | None) -> np.ndarray:
    """ISO dates as ordinals; empty cells become ``missing`` (None: not allowed)."""
    empty = pc.equal(arr, "")
    if missing is None:
        _need(not pc.any(empty).as_py())
    present = pc.filter(arr, pc.invert(empty))
    _need(pc.all(pc.match_substring_regex(present, _DATE)).as_py() in (True, None))
    parsed = pc.strptime(present, format="%Y-%m-%d", unit="s", error_is_null=True)
    _need(parsed.null_count == 0)
    days = parsed.cast(pa.int64()).to_numpy() // 86400 + _ORDINAL_1970
    # strptime accepts some impossible days (e.g. 2023-02-30 -> rolls); compare back
    _need(pc.all(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), present)).as_py() in (True, None))
    out = np.full(len(arr), missing if missing is not None else 0, dtype=np.int64)
    out[~empty.to_numpy(zero_copy_only=False)] = days
    return out


def _phones(values: np.ndarray, region: str, optional: bool) -> np.ndarray:
    """E.164 numbers; national CN mobiles are completed directly, anything else through phonenumbers."""
    out = values.astype(object)
    mask = np.zeros(len(values), dtype=bool)
    if len(values):
        arr = pa.array(values)
        mask = pc.match_substring_regex(arr, _E164_CN_MOBILE).to_numpy(zero_copy_only=False)
        if region == "CN":
            national = pc.match_substring_regex(arr, _CN_NATIONAL_MOBILE).to_numpy(
                zero_copy_only=False
            )
            out[national] = np.char.add("+86", values[national].astype(str))
            mask |= national
    rest = ~mask & (values != "") if optional else ~mask
    if rest.any():
        mapped = {}
        for raw in np.unique(values[rest]).tolist():
            try:
                mapped[raw] = normalize_phone(raw, region)
            except ValueError as exc:
                raise _Fallback from exc
        out[rest] = [mapped[v] for v in values[rest].tolist()]
    return out.astype(str)


def _unique(values: np.ndarray) -> None:
    _need(len(np.unique(values)) == len(values))


def _known(values: np.ndarray, pool: np.ndarray, optional: bool) -> None:
    check = values[values != ""] if optional else values
    _need(np.isin(check, pool).all())


def _resident_ids(values: np.ndarray) -> None:
    present = values[values != ""]
    if not len(present):
        return
    arr = pa.array(present)
    _need(pc.all(pc.match_substring_regex(arr, r"^\d{17}[\dX]$")).as_py())
    births = pc.utf8_slice_codeunits(arr, 6, 14)
    parsed = pc.strptime(births, format="%Y%m%d", unit="s", error_is_null=True)
    _need(parsed.null_count == 0)
    _need(pc.all(pc.equal(pc.strftime(parsed, format="%Y%m%d"), births)).as_py())
    codes = np.frombuffer(np.asarray(present, dtype="U18").tobytes(), dtype=np.uint32).reshape(
        -1, 18
    )
    digits = codes[:, :17].astype(np.int64) - ord("0")
    total = digits @ np.array(_WEIGHTS, dtype=np.int64)
    expected = np.frombuffer(b"10X98765432", dtype=np.uint8)[total % 11]
    _need((codes[:, 17] == expected).all())


def _fast(folder: Path, region: str, progress: Progress | None) -> Columns:
    _need(folder.is_dir())
    tables = {}
    for i, name in enumerate(TABLES):
        if progress:
            progress("read", i, len(TABLES))
        tables[name] = _read(folder, name)
    if progress:
        progress("read", len(TABLES), len(TABLES))
        progress("check", 0, 1)

    people, platforms = tables["people"], tables["platforms"]
    person_ids = _clean(_col(people, "person_id"), True)
    _clean(_col(people, "name"), True)
    _unique(person_ids)
    _resident_ids(_clean(_col(people, "id_number"), False))
    _clean(_col(people, "city"), False)

    platform_ids = _clean(_col(platforms, "platform_id"), True)
    _clean(_col(platforms, "name"), True)
    _unique(platform_ids)
    _enum(_clean(_col(platforms, "kind"), False), {k.value for k in PlatformKind}, True)

    ph = tables["phones"]
    p_phone = _phones(_clean(_col(ph, "phone"), True), region, False)
    p_owner = _clean(_col(ph, "owner_id"), False)
    _known(p_owner, person_ids, True)
    p_verified = _bools(_col(ph, "verified"))
    p_since = _days(_col(ph, "since"), NEVER)
    p_until = _days(_col(ph, "until"), FOREVER)
    _need((p_until >= p_since).all())
    order = np.lexsort((p_since, p_phone))
    same = p_phone[order][1:] == p_phone[order][:-1]
    _need(not (same & (p_until[order][:-1] >= p_since[order][1:])).any())

    ln = tables["loans"]
    loan_ids = _clean(_col(ln, "loan_id"), True)
    _unique(loan_ids)
    loan_platform = _clean(_col(ln, "platform_id"), True)
    _known(loan_platform, platform_ids, False)
    loan_borrower = _clean(_col(ln, "borrower_id"), True)
    _known(loan_borrower, person_ids, False)
    applied = _days(_col(ln, "applied_at"), None)
    status = _clean(_col(ln, "status"), True)
    _enum(status, {s.value for s in LoanStatus}, False)
    status_at = _days(_col(ln, "status_at"), NEVER)
    _need(((status_at == NEVER) | (status_at >= applied)).all())
    applicant = _phones(_clean(_col(ln, "applicant_phone"), False), region, True)
    verified = _bools(_col(ln, "phone_verified"))
    amount = _clean(_col(ln, "amount"), False)
    present = amount[amount != ""]
    if len(present):
        _need(
            bool(
                pc.all(pc.match_substring_regex(pa.array(present), r"^[0-9]+(\.[0-9]+)?$")).as_py()
            )
        )

    lk = tables["loan_links"]
    n_links = lk.num_rows if lk is not None else 0
    link_loan = _clean(_col(lk, "loan_id"), True) if n_links else np.array([], dtype=str)
    link_phone = _phones(_clean(_col(lk, "phone"), True), region, False) if n_links else link_loan
    link_role = _clean(_col(lk, "role"), True) if n_links else link_loan
    if n_links:
        _known(link_loan, loan_ids, False)
        _enum(link_role, {r.value for r in LinkRole}, False)
        _unique(
            np.char.add(
                np.char.add(np.char.add(link_loan, "\x00"), np.char.add(link_phone, "\x00")),
                link_role,
            )
        )

    bl = tables["blacklist"]
    n_entries = bl.num_rows if bl is not None else 0
    empty = np.array([], dtype=str)
    entry_ids = _clean(_col(bl, "entry_id"), True) if n_entries else empty
    e_platform = _clean(_col(bl, "platform_id"), True) if n_entries else empty
    e_kind = _clean(_col(bl, "subject_kind"), True) if n_entries else empty
    e_subject = _clean(_col(bl, "subject"), True) if n_entries else empty
    e_listed = _days(_col(bl, "listed_at"), None) if n_entries else np.array([], dtype=np.int64)
    e_copied = _clean(_col(bl, "copied_from"), False) if n_entries else empty
    if n_entries:
        _clean(_col(bl, "stated_reason"), False)
        _unique(entry_ids)
        _known(e_platform, platform_ids, False)
        _enum(e_kind, {k.value for k in SubjectKind}, False)
        is_person = e_kind == "person"
        _known(e_subject[is_person], person_ids, False)
        subjects = e_subject.astype(object)
        subjects[~is_person] = _phones(e_subject[~is_person], region, False)
        e_subject = subjects.astype(str)
        _known(e_copied, entry_ids, True)
        _acyclic(entry_ids, e_copied)

    sh = tables["sharing"]
    n_share = sh.num_rows if sh is not None else 0
    s_from = _clean(_col(sh, "from_platform"), True) if n_share else empty
    s_to = _clean(_col(sh, "to_platform"), True) if n_share else empty
    s_since = _days(_col(sh, "since"), NEVER) if n_share else np.array([], dtype=np.int64)
    if n_share:
        _known(s_from, platform_ids, False)
        _known(s_to, platform_ids, False)
        _need(not (s_from == s_to).any())
        _unique(np.char.add(np.char.add(s_from, "\x00"), s_to))
    if progress:
        progress("check", 1, 1)

    known_at = np.where(status_at == NEVER, applied, status_at)
    return Columns(
        person_ids=person_ids,
        platform_ids=platform_ids,
        period_phone=p_phone,
        period_owner=p_owner,
        period_verified=p_verified,
        period_since=p_since,
        period_until=p_until,
        loan_ids=loan_ids,
        loan_platform=loan_platform,
        loan_borrower=loan_borrower,
        loan_applied=applied,
        loan_known=known_at,
        loan_status=status,
        loan_applicant_phone=applicant,
        loan_phone_verified=verified,
        link_loan=link_loan,
        link_phone=link_phone,
        link_role=link_role,
        entry_ids=entry_ids,
        entry_platform=e_platform,
        entry_kind=e_kind,
        entry_subject=e_subject,
        entry_listed=e_listed,
        entry_copied_from=e_copied,
        share_from=s_from,
        share_to=s_to,
        share_since=s_since,
    )


def _acyclic(ids: np.ndarray, copied: np.ndarray, max_depth: int = 64) -> None:
    """Copy chains end within ``max_depth`` links (a loop, or a longer chain: the exact loader decides)."""
    order = np.argsort(ids)
    has = copied != ""
    parent = np.full(len(ids), -1, dtype=np.int64)
    parent[has] = order[np.searchsorted(ids[order], copied[has])]
    cur = parent.copy()
    for _ in range(max_depth):
        alive = cur >= 0
        if not alive.any():
            return
        cur[alive] = parent[cur[alive]]
    raise _Fallback
