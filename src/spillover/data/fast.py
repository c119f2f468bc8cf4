"""Fast columnar loading of large data folders (Arrow CSV reader + vectorized checks).

:func:`read_columns` is for batch work (the one-pass audit) on big folders. It
reads CSV and Parquet tables with Arrow and checks every rule of docs/contract.md §1 on whole
columns. It is deliberately conservative: whenever something is not plainly
valid (a JSONL table, an odd spelling, a stray space, any defect at all), it
hands the folder to the exact loader (:func:`spillover.data.exact.load_folder`),
which either accepts it or refuses it with the usual ``file:line: field``
messages. So it never accepts what the exact loader refuses, and it never
reports problems itself.
"""

from __future__ import annotations

import csv as pycsv
import json
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from ..facts import fixedtext
from ..facts.columns import (
    EPOCH_ORDINAL,
    FOREVER,
    NEVER,
    Codes,
    Columns,
    Details,
    columns_from_dataset,
)
from ..facts.model import (
    Dataset,
    Entry,
    LinkRole,
    Loan,
    LoanLink,
    LoanStatus,
    Match,
    MatchKey,
    MatchLevel,
    Person,
    PhonePeriod,
    Platform,
    PlatformKind,
    Record,
    Sharing,
    SubjectKind,
)
from ..facts.phonecodes import PhoneCodes
from ..facts.phones import (
    CN_MOBILE_E164,
    CN_MOBILE_NATIONAL,
    DEFAULT_REGION,
    mobile_prefixes,
    normalize_phone,
)
from ..facts.resident_id import CHECK_CHARACTERS, CHECK_WEIGHTS, ID_SHAPE
from . import parquet as parquetio
from .contract import (
    CSV,
    FALSE_TEXTS,
    ISO_DAY,
    MAX_YEAR,
    MIN_YEAR,
    REQUIRED_TABLES,
    SPACES,
    TABLES,
    TRUE_TEXTS,
    enum_values,
    field_kinds,
    required_columns,
)
from .exact import checked_region, load_folder, odd_table_paths, table_paths
from .rows import MatchRow, Row

__all__ = ["Progress", "read_columns", "read_dataset"]


Progress = Callable[[str, int, int], None]

#: the days the exact loader accepts (contract.MIN_YEAR-01-01 .. contract.MAX_YEAR-12-31), as ordinals
_FIRST_DAY = date(MIN_YEAR, 1, 1).toordinal()
_LAST_DAY = date(MAX_YEAR, 12, 31).toordinal()
#: per byte, whether it is one of :data:`~spillover.data.contract.SPACES` (what the exact
#: loader trims; the ASCII ones: a byte from 0x80 up starts or ends a character the
#: general check looks at)
_SPACE_BYTE = np.zeros(256, dtype=bool)
_SPACE_BYTE[[ord(c) for c in SPACES if ord(c) < 0x80]] = True


class _Fallback(Exception):
    """The fast path is not sure; the exact loader decides."""


def read_columns(
    folder: str | Path, *, region: str = DEFAULT_REGION, progress: Progress | None = None
) -> Columns:
    """Validated :class:`~spillover.engines.batch.Columns` of a data folder.

    Raises :class:`~spillover.errors.DataError` exactly as
    :func:`~spillover.data.exact.load_folder` does for a bad folder.
    """
    region = checked_region(region)
    try:
        columns, _, linkage = _fast(Path(folder), region, progress)
    except (_Fallback, pa.ArrowException):
        if progress:
            progress("exact loader", 0, 1)
        return columns_from_dataset(load_folder(folder, region=region))
    # the tables as read are gone (only the checked columns are kept): their memory goes
    # back to the system now, not at the allocator's leisure
    pa.default_memory_pool().release_unused()
    return columns if linkage is None else _linked_columns(columns, linkage)


def read_dataset(
    folder: str | Path, *, region: str = DEFAULT_REGION, unnamed_loans: bool = False
) -> Dataset:
    """The same :class:`~spillover.facts.model.Dataset` as :func:`~spillover.data.exact.load_folder`, faster
    on large plain CSV folders (checked with Arrow, then built once); anything unusual goes
    through the exact loader. ``unnamed_loans``: keep the loans named only by an unresolved
    record, and their links, as :func:`~spillover.data.exact.load_folder` does (not for a
    graph)."""
    region = checked_region(region)
    try:
        columns, extra, linkage = _fast(Path(folder), region, None)
    except (_Fallback, pa.ArrowException):
        return load_folder(folder, region=region, unnamed_loans=unnamed_loans)
    data = _dataset(columns, extra)
    return data if linkage is None else _linked(data, linkage, unnamed_loans)


def _opt(values: list[str]) -> list[str | None]:
    return [v if v != "" else None for v in values]


def _day_or_none(ordinals: np.ndarray, missing: np.int64) -> list[date | None]:
    return [None if d == missing else date.fromordinal(d) for d in ordinals.tolist()]


def _dataset(c: Columns, x: dict[str, pa.Array | np.ndarray]) -> Dataset:
    people = {
        pid: Person(pid, name, idn, city)
        for pid, name, idn, city in zip(
            c.person_ids.to_pylist(),
            x["person_name"].to_pylist(),
            _opt(x["person_id_number"].to_pylist()),
            _opt(x["person_city"].to_pylist()),
            strict=True,
        )
    }
    platforms = {
        pid: Platform(pid, name, PlatformKind(kind) if kind else PlatformKind.OTHER)
        for pid, name, kind in zip(
            c.platform_ids.to_pylist(),
            x["platform_name"].to_pylist(),
            x["platform_kind"].to_pylist(),
            strict=True,
        )
    }
    periods: dict[str, list[PhonePeriod]] = {}
    for phone, owner, verified, since, until in zip(
        c.period_phone.to_pylist(),
        _opt(c.period_owner.to_pylist()),
        c.period_verified.tolist(),
        _day_or_none(c.period_since, NEVER),
        _day_or_none(c.period_until, FOREVER),
        strict=True,
    ):
        periods.setdefault(phone, []).append(PhonePeriod(phone, owner, verified, since, until))
    phone_periods = {
        phone: tuple(sorted(ps, key=lambda p: (p.since is not None, p.since or date.min)))
        for phone, ps in periods.items()
    }
    raw_verified = pc.utf8_lower(x["loan_phone_verified"]).to_pylist()
    loans = {}
    for lid, plat, borrower, applied, status, phone, verified, amount, status_at in zip(
        c.loan_ids.to_pylist(),
        c.loan_platform.to_pylist(),
        c.loan_borrower.to_pylist(),
        [date.fromordinal(d) for d in c.loan_applied.tolist()],
        c.loan_status.to_pylist(),
        _opt(c.loan_applicant_phone.to_pylist()),
        [None if v == "" else v in TRUE_TEXTS for v in raw_verified],
        [None if a == "" else float(a) for a in x["loan_amount"].to_pylist()],
        _day_or_none(x["loan_status_at"], NEVER),
        strict=True,
    ):
        loans[lid] = Loan(
            lid, plat, borrower, applied, LoanStatus(status), phone, verified, amount, status_at
        )
    links = tuple(
        LoanLink(loan, phone, LinkRole(role))
        for loan, phone, role in zip(
            c.link_loan.to_pylist(), c.link_phone.to_pylist(), c.link_role.to_pylist(), strict=True
        )
    )
    entries = {
        eid: Entry(eid, plat, SubjectKind(kind), subject, date.fromordinal(listed), reason, copied)
        for eid, plat, kind, subject, listed, reason, copied in zip(
            c.entry_ids.to_pylist(),
            c.entry_platform.to_pylist(),
            c.entry_kind.to_pylist(),
            c.entry_subject.to_pylist(),
            c.entry_listed.tolist(),
            _opt(x["entry_stated_reason"].to_pylist()),
            _opt(c.entry_copied_from.to_pylist()),
            strict=True,
        )
    }
    sharing = tuple(
        Sharing(a, b, None if s == NEVER else date.fromordinal(s))
        for a, b, s in zip(
            c.share_from.to_pylist(), c.share_to.to_pylist(), c.share_since.tolist(), strict=True
        )
    )
    return Dataset(people, platforms, phone_periods, loans, links, entries, sharing)


def _details(x: dict[str, pa.Array | np.ndarray]) -> Details:
    """The display fields of a checked folder as :class:`~spillover.facts.columns.Details`."""
    amount = x["loan_amount"]
    raw = pc.utf8_lower(x["loan_phone_verified"])
    verified = np.where(
        pc.equal(raw, "").to_numpy(zero_copy_only=False),
        -1,
        pc.is_in(raw, value_set=pa.array(TRUE_TEXTS)).to_numpy(zero_copy_only=False),
    ).astype(np.int8)
    return Details(
        person_name=x["person_name"],
        platform_name=x["platform_name"],
        loan_amount=pc.cast(pc.if_else(pc.equal(amount, ""), None, amount), pa.float64())
        .fill_null(np.nan)
        .to_numpy(zero_copy_only=False),
        loan_status_at=x["loan_status_at"],
        loan_phone_verified=verified,
        entry_stated_reason=x["entry_stated_reason"],
        person_id_number=x["person_id_number"],
        person_city=x["person_city"],
        platform_kind=x["platform_kind"],
    )


def _need(ok: bool | np.bool_) -> None:
    if not ok:
        raise _Fallback


def _read(folder: Path, table: str) -> pa.Table | None:
    _need(not odd_table_paths(folder, table))
    found = table_paths(folder, table)
    if not found:
        _need(table not in REQUIRED_TABLES)
        return None
    _need(len(found) == 1)
    path = found[0]
    if path.suffix == parquetio.SUFFIX:
        return _read_parquet(path, TABLES[table])
    _need(path.suffix == CSV)
    with path.open("rb") as handle:
        _need(handle.read(3) != b"\xef\xbb\xbf")  # a byte-order mark: let the exact loader read it
    try:
        header = _header(path)
        # duplicate, padded or oddly read column names: the exact loader names the problem
        _need(len(set(header)) == len(header) and all(h == h.strip() and h for h in header))
        types = {name: pa.string() for name in header}
        # Arrow's blocks parsed on every core (a quoted value may hold a newline, as in
        # the exact loader), then each column made one array, once, which the checks
        # read in place: on two cores about half the time of one block for the whole
        # file, which one thread parsed (docs/benchmarks.md, session 47)
        out = csv.read_csv(
            path,
            convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=False),
            parse_options=csv.ParseOptions(newlines_in_values=True),
        ).combine_chunks()
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, StopIteration, pycsv.Error) as exc:
        raise _Fallback from exc
    _need(out.column_names == header)
    needed = required_columns(TABLES[table])
    _need(all(c in out.column_names for c in needed))
    return out


def _read_parquet(path: Path, model: type[Row]) -> pa.Table:
    """A Parquet table (a file or the parts of a folder) as text columns, the cells of its
    CSV form (:func:`spillover.data.parquet.as_text`); anything unusual: the exact loader."""
    kinds = field_kinds(model)
    needed = required_columns(model)
    pieces = []
    try:
        for part in parquetio.parts(path):
            with pq.ParquetFile(part) as handle:
                schema = handle.schema_arrow
                header = schema.names
                _need(len(set(header)) == len(header) and all(h == h.strip() and h for h in header))
                used = [c for c in kinds if c in header]
                _need(all(c in used for c in needed))
                _need(
                    all(
                        parquetio.column_problem(kinds[c], schema.field(c).type) is None
                        for c in used
                    )
                )
                data = handle.read(columns=used)
            data.validate(full=True)  # text that is not UTF-8: the exact loader names the row
            pieces.append(pa.table({c: parquetio.as_text(data.column(c)) for c in used}))
    except (parquetio.PartsError, OSError) as exc:
        raise _Fallback from exc
    _need(all(p.column_names == pieces[0].column_names for p in pieces))
    return pa.concat_tables(pieces)


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(pycsv.reader(handle))


def _col(table: pa.Table | None, name: str) -> pa.Array:
    """A column as one array (in place when it is one chunk); a missing one: all ""."""
    if table is None or name not in table.column_names:
        size = table.num_rows if table is not None else 0
        offsets = pa.py_buffer(np.zeros(size + 1, dtype=np.int32))
        return pa.Array.from_buffers(pa.string(), size, [None, offsets, pa.py_buffer(b"")])
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _true(mask: pa.Array | pa.ChunkedArray) -> bool:
    """Every value true (an empty column counts as true)."""
    return pc.all(mask).as_py() in (True, None)


def _clean(arr: pa.Array, required: bool) -> pa.Array:
    """A text column; leading/trailing spaces, or a missing required value: fall back."""
    found = fixedtext.edges(arr)
    if found is not None:  # the first and last bytes: ASCII ones are decided here
        first, last, empty = found
        _need(not (_SPACE_BYTE[first].any() or _SPACE_BYTE[last].any()))
        _need(not (required and empty.any()))
        if (first < 0x80).all() and (last < 0x80).all():
            return arr
    _need(_true(pc.equal(pc.utf8_trim(arr, characters=SPACES), arr)))
    if required:
        _need(not pc.any(pc.equal(arr, "")).as_py())
    return arr


def _enum(values: pa.Array, allowed: Collection[str], optional: bool) -> None:
    found = set(pc.unique(values).to_pylist())
    if optional:
        found.discard("")
    _need(found <= set(allowed))


def _bools(arr: pa.Array) -> np.ndarray:
    low = pc.utf8_lower(arr)
    _need(_true(pc.is_in(low, value_set=pa.array(["", *TRUE_TEXTS, *FALSE_TEXTS]))))
    truth: np.ndarray = pc.is_in(low, value_set=pa.array(list(TRUE_TEXTS))).to_numpy(
        zero_copy_only=False
    )
    return truth


def _days(arr: pa.Array, missing: np.int64 | None) -> np.ndarray:
    """ISO dates as ordinals; empty cells become ``missing`` (None: not allowed)."""
    empty = pc.equal(arr, "")
    some_empty = bool(pc.any(empty).as_py())
    if missing is None:
        _need(not pc.any(empty).as_py())
    some_empty = pc.any(empty).as_py()
    present = pc.filter(arr, pc.invert(empty)) if some_empty else arr
    days = _iso_days(present) + EPOCH_ORDINAL
    _need(((days >= _FIRST_DAY) & (days <= _LAST_DAY)).all())  # years out of bounds
    if not some_empty:
        return days
    out = np.full(len(arr), missing if missing is not None else 0, dtype=np.int64)
    out[~empty.to_numpy(zero_copy_only=False)] = days
    return out


def _iso_days(present: pa.Array) -> np.ndarray:
    """ISO dates (no empty cell) as days since 1970-01-01 (int64); anything else: fall back."""
    m = fixedtext.matrix(present)
    if m is not None:  # one width: the shape read from the bytes, no regular expression
        _need(fixedtext.iso_shaped(m))
    else:
        _need(_true(pc.match_substring_regex(present, ISO_DAY)))
    try:  # Arrow's ISO parser refuses impossible days (2023-02-30), like date.fromisoformat
        days = pc.cast(present, pa.date32()).cast(pa.int32()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _Fallback from exc
    return np.asarray(days, dtype=np.int64)


def _phones(values: pa.Array, region: str, optional: bool) -> pa.Array:
    """E.164 numbers: CN mobiles directly; anything else through phonenumbers (per distinct value)."""
    if _cn_mobiles(values):
        return values
    ok = pc.match_substring_regex(values, CN_MOBILE_E164)
    if optional:
        ok = pc.or_(ok, pc.equal(values, ""))
    if _true(ok):  # every number a CN mobile in E.164 form already (no national form is)
        return values
    out = values
    if region == "CN":
        national = pc.match_substring_regex(values, CN_MOBILE_NATIONAL)
        out = pc.if_else(national, pc.binary_join_element_wise("+86", values, ""), values)
        ok = pc.or_(ok, national)
    rest = pc.invert(ok)
    if optional:
        rest = pc.and_(rest, pc.not_equal(values, ""))
    if pc.any(rest).as_py():
        distinct = pc.unique(pc.filter(values, rest)).to_pylist()
        try:
            mapped = [normalize_phone(raw, region) for raw in distinct]
        except ValueError as exc:
            raise _Fallback from exc
        where = pc.index_in(values, value_set=pa.array(distinct, pa.string()))
        replaced = pa.array(mapped, pa.string()).take(where.fill_null(0))
        out = pc.if_else(rest, replaced, out)
    return out


def _cn_mobiles(values: pa.Array) -> bool:
    """Every value a CN mobile number in E.164 form (``CN_MOBILE_E164`` matches it), read
    from the bytes of a column of one width by the numbering plan's prefix table; False
    also where that cannot tell (other widths, empty cells): the regular expression then
    answers."""
    m = fixedtext.matrix(values)
    found = mobile_prefixes("CN")
    if m is None or found is None:
        return False
    lead, table = found
    if m.shape[1] != len(lead) + table.width:
        return False
    head = np.frombuffer(lead, dtype=np.uint8)
    if not all(bool((m[:, j] == head[j]).all()) for j in range(len(lead))):
        return False
    return bool(table.matches(m[:, len(lead) :]).all())


def _unique(values: pa.Array) -> np.ndarray:
    """No value twice; returns the rows in the order of their values (the index reuses it)."""
    if len(values) > 1 and _true(pc.greater(values[1:], values[:-1])):
        return np.arange(len(values), dtype=np.int64)  # in order already (one pass, no sort)
    order = pc.sort_indices(values)
    if len(values) > 1:
        ordered = values.take(order)
        _need(not pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py())
    return np.asarray(order.to_numpy(), dtype=np.int64)


def _known(values: pa.Array, pool: pa.Array, optional: bool) -> np.ndarray:
    """Every value (but "" when optional) is in ``pool``; returns each value's row in
    ``pool``, -1 for "" (the one hash lookup checks and resolves the reference). A column
    in runs of one value (a table grouped by it: each loan's links) is looked up once
    per run. Ids that are a prefix then digits (``P0000721``) are looked up by their
    number (:class:`~spillover.facts.fixedtext.DenseIds`), no string hashed."""
    dense = fixedtext.DenseIds.of(pool)
    rows = dense.rows(values) if dense is not None else None
    if rows is not None:
        missing = rows < 0
        if optional and missing.any():
            missing &= pc.not_equal(values, "").to_numpy(zero_copy_only=False)
        _need(not missing.any())
        return rows
    if len(values) > 1:
        heads = np.flatnonzero(
            np.concatenate([[True], pc.not_equal(values[1:], values[:-1]).to_numpy(False)])
        )
        if len(heads) < 0.75 * len(values):
            rows = _known(values.take(pa.array(heads)), pool, optional)
            return np.repeat(rows, np.diff(np.append(heads, len(values))))
    found = pc.index_in(values, value_set=pool)
    missing = pc.is_null(found)
    if optional:
        missing = pc.and_(missing, pc.not_equal(values, ""))
    _need(not pc.any(missing).as_py())
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _joined(*columns: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*columns, "\x00")


def _resident_ids(values: pa.Array) -> None:
    present = pc.filter(values, pc.not_equal(values, ""))
    if not len(present):
        return
    m = fixedtext.matrix(present)
    if m is not None and m.shape[1] == 18:  # the usual case: read from the bytes
        _need(fixedtext.all_digits(m[:, :17]))
        _need(_digit_or_x(m))
        _check_digits(m)
        born = fixedtext.civil_days(
            fixedtext.decimal(m[:, 6:10]),
            fixedtext.decimal(m[:, 10:12]),
            fixedtext.decimal(m[:, 12:14]),
        )
        _need(born is not None)
        born = np.asarray(born) + EPOCH_ORDINAL
        _need(((born >= _FIRST_DAY) & (born <= _LAST_DAY)).all())
        return
    _need(_true(pc.match_substring_regex(present, ID_SHAPE)))
    births = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(present, 6, 10),
        pc.utf8_slice_codeunits(present, 10, 12),
        pc.utf8_slice_codeunits(present, 12, 14),
        "-",
    )
    _days(births, None)
    raw = np.frombuffer(present.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(present.buffers()[1], dtype=np.int32)[
        present.offset : present.offset + len(present)
    ]
    _check_digits(raw[offsets[:, None] + np.arange(18)])


def _digit_or_x(m: np.ndarray) -> bool:
    last = m[:, 17]
    return bool((((last - np.uint8(ord("0"))) < 10) | (last == ord("X"))).all())


def _check_digits(chars: np.ndarray) -> None:
    """The check character (the 18th) of resident ID numbers, rows of 18 bytes."""
    total = np.full(len(chars), -ord("0") * sum(CHECK_WEIGHTS), dtype=np.int64)
    for j, weight in enumerate(CHECK_WEIGHTS):
        total += chars[:, j].astype(np.int64) * weight
    expected = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)[total % 11]
    _need((chars[:, 17] == expected).all())


def _fast(
    folder: Path, region: str, progress: Progress | None
) -> tuple[Columns, dict[str, pa.Array], _Linkage | None]:
    """Read and check a folder in named steps (each one falls back on anything unusual);
    returns its columns, the display fields (``extra``) the columns leave out and its
    identity linkage (None: the folder has none). With linkage, the columns' loans name
    each loan's resolved borrower ("" for a record that resolves to no one: the loan
    stays out of the graph, :func:`_linked`)."""
    _need(folder.is_dir())
    # a table at a time: each is read when a check first needs it (or just before, while
    # the one before it is checked) and dropped (its text freed) once checked, so the
    # text of only a few tables is held at once
    with _Tables(folder, progress) as tables:
        _tick(progress, 0)
        extra: dict[str, pa.Array | np.ndarray] = {}
        keys = _check_platforms_people(tables, extra)
        tables.drop("people", "platforms")
        periods = _check_phones(tables["phones"], region, keys)
        tables.drop("phones")
        _tick(progress, 1)
        linkage = _check_linkage(tables, region, keys)
        tables.drop("records", "matches")
        _tick(progress, 2)
        loans = _check_loans(tables["loans"], region, keys, extra)
        if linkage is not None:
            loans, linkage = _loan_records(tables["loans"], loans, linkage)
        tables.drop("loans")
        _tick(progress, 3)
        entries = _check_entries(tables["blacklist"], region, keys, extra, linkage)
        tables.drop("blacklist")
        _tick(progress, 4)
        links = _check_links(tables["loan_links"], region, loans)
        tables.drop("loan_links")
        _tick(progress, 5)
        shares = _check_sharing(tables["sharing"], keys)
        tables.drop("sharing")
    codes = _phone_codes(periods, loans, links, entries)
    _tick(progress, 6)
    columns = _assemble(keys, periods, loans, links, entries, shares, codes, extra)
    return columns, extra, linkage


#: the checking steps after reading (the progress of "check" counts them)
_CHECK_STEPS = 6


def _tick(progress: Progress | None, done: int) -> None:
    if progress:
        progress("check", done, _CHECK_STEPS)


class _Tables:
    """The tables of the contract (None: missing), each read when first asked for and
    held until :meth:`drop` (then the memory of its columns that no check kept goes
    back to the system). Every table is asked for by some check, so a
    folder falls back on an unusual file whichever table holds it.

    While a table is checked, the next one of the contract's order (``TABLES``) not read
    yet is read on a thread of its own (one table ahead, at most): Arrow reads without
    holding the interpreter, so the read and the check share the cores. Use it in a
    ``with`` block: on leaving, a read still under way is waited for (or dropped, if it
    had not begun)."""

    def __init__(self, folder: Path, progress: Progress | None) -> None:
        self._folder, self._progress = folder, progress
        self._held: dict[str, pa.Table | None] = {}
        self._read = 0
        self._started: set[str] = set()  # every table whose read began
        self._ahead: dict[str, Future[pa.Table | None]] = {}
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="spillover-read-ahead")

    def __enter__(self) -> _Tables:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.shutdown(wait=True, cancel_futures=True)

    def __getitem__(self, name: str) -> pa.Table | None:
        if name not in self._held:
            if self._progress:
                self._progress("read", self._read, len(TABLES))
            ahead = self._ahead.pop(name, None)
            self._started.add(name)
            self._held[name] = ahead.result() if ahead else _read(self._folder, name)
            self._read += 1
            if self._progress and self._read == len(TABLES):
                self._progress("read", self._read, len(TABLES))
            self._read_next()
        return self._held[name]

    def _read_next(self) -> None:
        """Start reading the first table of ``TABLES`` not read yet, unless a read ahead
        is under way."""
        if self._ahead:
            return
        for name in TABLES:
            if name not in self._started:
                self._started.add(name)
                self._ahead[name] = self._reader.submit(_read, self._folder, name)
                return

    def drop(self, *names: str) -> None:
        """Forget the tables ``names`` (checked), and give their memory back."""
        for name in names:
            self._held.pop(name, None)
        pa.default_memory_pool().release_unused()


@dataclass(frozen=True, slots=True)
class _Keys:
    """The checked ids of people and platforms and the rows in the order of their ids."""

    person_ids: pa.Array
    person_order: np.ndarray
    platform_ids: pa.Array
    platform_order: np.ndarray


def _check_platforms_people(tables: _Tables, extra: dict[str, pa.Array | np.ndarray]) -> _Keys:
    people, platforms = tables["people"], tables["platforms"]
    person_ids = _clean(_col(people, "person_id"), True)
    extra["person_name"] = _clean(_col(people, "name"), True)
    person_order = _unique(person_ids)
    extra["person_id_number"] = _clean(_col(people, "id_number"), False)
    _resident_ids(extra["person_id_number"])
    extra["person_city"] = _clean(_col(people, "city"), False)

    platform_ids = _clean(_col(platforms, "platform_id"), True)
    extra["platform_name"] = _clean(_col(platforms, "name"), True)
    platform_order = _unique(platform_ids)
    extra["platform_kind"] = _clean(_col(platforms, "kind"), False)
    _enum(extra["platform_kind"], enum_values(PlatformKind), True)
    return _Keys(person_ids, person_order, platform_ids, platform_order)


@dataclass(frozen=True, slots=True)
class _Periods:
    """The checked ``phones`` table: who held which number when."""

    phone: pa.Array
    owner: pa.Array
    owner_row: np.ndarray
    verified: np.ndarray
    since: np.ndarray
    until: np.ndarray


def _check_phones(ph: pa.Table | None, region: str, keys: _Keys) -> _Periods:
    phone = _phones(_clean(_col(ph, "phone"), True), region, False)
    owner = _clean(_col(ph, "owner_id"), False)
    owner_row = _known(owner, keys.person_ids, True)
    verified = _bools(_col(ph, "verified"))
    since = _days(_col(ph, "since"), NEVER)
    until = _days(_col(ph, "until"), FOREVER)
    _need((until >= since).all())
    return _Periods(phone, owner, owner_row, verified, since, until)


@dataclass(frozen=True, slots=True)
class _Loans:
    """The checked ``loans`` table."""

    ids: pa.Array
    order: np.ndarray
    platform: pa.Array
    platform_row: np.ndarray
    borrower: pa.Array
    borrower_row: np.ndarray
    applied: np.ndarray
    status: pa.Array
    status_at: np.ndarray
    applicant: pa.Array
    verified: np.ndarray


def _check_loans(
    ln: pa.Table | None, region: str, keys: _Keys, extra: dict[str, pa.Array | np.ndarray]
) -> _Loans:
    loan_ids = _clean(_col(ln, "loan_id"), True)
    loan_order = _unique(loan_ids)
    platform = _clean(_col(ln, "platform_id"), True)
    platform_row = _known(platform, keys.platform_ids, False)
    borrower = _clean(_col(ln, "borrower_id"), False)
    named = pc.or_(pc.not_equal(borrower, ""), pc.not_equal(_col(ln, "borrower_record"), ""))
    _need(_true(named))  # a borrower_id, or a record (resolved by _loan_records)
    borrower_row = _known(borrower, keys.person_ids, True)
    applied = _days(_col(ln, "applied_at"), None)
    status = _clean(_col(ln, "status"), True)
    _enum(status, enum_values(LoanStatus), False)
    status_at = extra["loan_status_at"] = _days(_col(ln, "status_at"), NEVER)
    _need(((status_at == NEVER) | (status_at >= applied)).all())
    applicant = _phones(_clean(_col(ln, "applicant_phone"), False), region, True)
    extra["loan_phone_verified"] = _col(ln, "phone_verified")
    verified = _bools(extra["loan_phone_verified"])
    amount = extra["loan_amount"] = _clean(_col(ln, "amount"), False)
    present = pc.filter(amount, pc.not_equal(amount, ""))
    _need(_true(pc.match_substring_regex(present, r"^[0-9]+(\.[0-9]+)?$")))
    _need(_true(pc.is_finite(pc.cast(present, pa.float64()))))  # 400 digits: inf
    return _Loans(
        loan_ids,
        loan_order,
        platform,
        platform_row,
        borrower,
        borrower_row,
        applied,
        status,
        status_at,
        applicant,
        verified,
    )


@dataclass(frozen=True, slots=True)
class _Links:
    """The checked ``loan_links`` table."""

    loan: pa.Array
    phone: pa.Array
    role: pa.Array
    loan_row: np.ndarray


def _check_links(lk: pa.Table | None, region: str, loans: _Loans) -> _Links:
    loan = _clean(_col(lk, "loan_id"), True)
    phone = _phones(_clean(_col(lk, "phone"), True), region, False)
    role = _clean(_col(lk, "role"), True)
    loan_row = _known(loan, loans.ids, False)
    _enum(role, enum_values(LinkRole), False)
    return _Links(loan, phone, role, loan_row)


@dataclass(frozen=True, slots=True)
class _Entries:
    """The checked ``blacklist`` table (phone subjects in E.164 form)."""

    ids: pa.Array
    order: np.ndarray
    platform: pa.Array
    platform_row: np.ndarray
    kind: pa.Array
    subject: pa.Array
    is_phone: np.ndarray
    person_row: np.ndarray
    listed: np.ndarray
    copied: pa.Array
    copied_row: np.ndarray


def _check_entries(
    bl: pa.Table | None,
    region: str,
    keys: _Keys,
    extra: dict[str, pa.Array | np.ndarray],
    linkage: _Linkage | None,
) -> _Entries:
    entry_ids = _clean(_col(bl, "entry_id"), True)
    platform = _clean(_col(bl, "platform_id"), True)
    kind = _clean(_col(bl, "subject_kind"), True)
    subject = _clean(_col(bl, "subject"), True)
    listed = _days(_col(bl, "listed_at"), None)
    copied = _clean(_col(bl, "copied_from"), False)
    extra["entry_stated_reason"] = _clean(_col(bl, "stated_reason"), False)
    entry_order = _unique(entry_ids)
    platform_row = _known(platform, keys.platform_ids, False)
    kinds = {SubjectKind.PERSON.value, SubjectKind.PHONE.value}
    if linkage is not None:  # an entry on a platform record: a known record
        kinds.add(SubjectKind.RECORD.value)
        is_record = pc.equal(kind, SubjectKind.RECORD.value)
        _known(pc.filter(subject, is_record), linkage.record_ids, False)
    _enum(kind, kinds, False)
    is_person = pc.equal(kind, SubjectKind.PERSON.value)
    person_row = np.full(len(subject), -1, dtype=np.int64)
    person_row[is_person.to_numpy(zero_copy_only=False)] = _known(
        pc.filter(subject, is_person), keys.person_ids, False
    )
    is_phone = pc.equal(kind, SubjectKind.PHONE.value)
    if pc.any(is_phone).as_py():
        normalized = _phones(pc.filter(subject, is_phone), region, False)
        subject = pc.replace_with_mask(subject, is_phone, normalized)
    copied_row = _known(copied, entry_ids, True)
    _acyclic(copied_row)
    return _Entries(
        entry_ids,
        entry_order,
        platform,
        platform_row,
        kind,
        subject,
        is_phone.to_numpy(zero_copy_only=False),
        person_row,
        listed,
        copied,
        copied_row,
    )


@dataclass(frozen=True, slots=True)
class _Shares:
    """The checked ``sharing`` table."""

    from_platform: pa.Array
    to_platform: pa.Array
    since: np.ndarray
    from_row: np.ndarray
    to_row: np.ndarray


def _check_sharing(sh: pa.Table | None, keys: _Keys) -> _Shares:
    s_from = _clean(_col(sh, "from_platform"), True)
    s_to = _clean(_col(sh, "to_platform"), True)
    s_since = _days(_col(sh, "since"), NEVER)
    s_from_row = _known(s_from, keys.platform_ids, False)
    s_to_row = _known(s_to, keys.platform_ids, False)
    _need(not pc.any(pc.equal(s_from, s_to)).as_py())
    _unique(_joined(s_from, s_to))
    return _Shares(s_from, s_to, s_since, s_from_row, s_to_row)


@dataclass(frozen=True, slots=True)
class _Codes:
    """Phone numbers as integer codes (the index reuses them); -1: no phone."""

    phones: PhoneCodes
    period: np.ndarray
    applicant: np.ndarray
    link: np.ndarray
    subject: np.ndarray


def _phone_codes(periods: _Periods, loans: _Loans, links: _Links, entries: _Entries) -> _Codes:
    """The phone codes, checking on them that the owner periods of one number do not
    overlap and that no link is given twice."""
    applicant = loans.applicant
    has_applicant = pc.not_equal(applicant, "").to_numpy(zero_copy_only=False)
    phones, (period_code, app_code, link_code, subject_code) = PhoneCodes.build(
        [
            periods.phone,
            applicant.filter(pa.array(has_applicant)),
            links.phone,
            entries.subject.filter(pa.array(entries.is_phone)),
        ]
    )
    _need(not _overlapping(period_code, periods.since, periods.until))
    role = pc.index_in(links.role, value_set=pa.array(sorted(enum_values(LinkRole))))
    link_key = (links.loan_row * max(len(phones), 1) + link_code) * 8 + role.to_numpy(
        zero_copy_only=False
    )
    # a stable sort (timsort) of keys in runs (the links of a folder grouped by loan) is
    # one pass; any duplicate is then beside its twin
    link_key.sort(kind="stable")
    _need(not (link_key[1:] == link_key[:-1]).any())
    applicant_code = np.full(len(applicant), -1, dtype=np.int64)
    applicant_code[has_applicant] = app_code
    subject_phone = np.full(len(entries.subject), -1, dtype=np.int64)
    subject_phone[entries.is_phone] = subject_code
    return _Codes(phones, period_code, applicant_code, link_code, subject_phone)


def _overlapping(code: np.ndarray, since: np.ndarray, until: np.ndarray) -> bool:
    """Whether two owner periods of one number (``code``) overlap. A table sorted by
    number, then ``since`` (the usual export) is checked as it stands; else sorted."""
    same = code[1:] == code[:-1]
    if not ((code[1:] >= code[:-1]).all() and (~same | (since[1:] >= since[:-1])).all()):
        order = np.lexsort((since, code))
        code, since, until = code[order], since[order], until[order]
        same = code[1:] == code[:-1]
    return bool((same & (until[:-1] >= since[1:])).any())


def _assemble(
    keys: _Keys,
    periods: _Periods,
    loans: _Loans,
    links: _Links,
    entries: _Entries,
    shares: _Shares,
    codes: _Codes,
    extra: dict[str, pa.Array | np.ndarray],
) -> Columns:
    """The checked tables as one :class:`~spillover.facts.columns.Columns`."""
    return Columns(
        person_ids=keys.person_ids,
        platform_ids=keys.platform_ids,
        period_phone=periods.phone,
        period_owner=periods.owner,
        period_verified=periods.verified,
        period_since=periods.since,
        period_until=periods.until,
        loan_ids=loans.ids,
        loan_platform=loans.platform,
        loan_borrower=loans.borrower,
        loan_applied=loans.applied,
        loan_known=np.where(loans.status_at == NEVER, loans.applied, loans.status_at),
        loan_status=loans.status,
        loan_applicant_phone=loans.applicant,
        loan_phone_verified=loans.verified,
        link_loan=links.loan,
        link_phone=links.phone,
        link_role=links.role,
        entry_ids=entries.ids,
        entry_platform=entries.platform,
        entry_kind=entries.kind,
        entry_subject=entries.subject,
        entry_listed=entries.listed,
        entry_copied_from=entries.copied,
        share_from=shares.from_platform,
        share_to=shares.to_platform,
        share_since=shares.since,
        details=_details(extra),
        codes=Codes(
            person_order=keys.person_order,
            platform_order=keys.platform_order,
            loan_order=loans.order,
            entry_order=entries.order,
            period_owner=periods.owner_row,
            loan_platform=loans.platform_row,
            loan_borrower=loans.borrower_row,
            link_loan=links.loan_row,
            entry_platform=entries.platform_row,
            entry_person=entries.person_row,
            entry_copied_from=entries.copied_row,
            share_from=shares.from_row,
            share_to=shares.to_row,
            phones=codes.phones,
            period_phone=codes.period,
            loan_applicant_phone=codes.applicant,
            link_phone=codes.link,
            entry_phone=codes.subject,
        ),
    )


def _acyclic(copied: np.ndarray) -> None:
    """Copy chains end (no loop); a loop: the exact loader names it. ``copied``: the
    row each entry copies, -1 for none.

    Pointer doubling: after k rounds every entry points 2**k links up its chain, so
    ceil(log2(n)) + 1 rounds reach the end of every chain that has one.
    """
    n = len(copied)
    parent = np.where(copied < 0, n, copied)
    jump = np.append(parent, n)  # n: past the end of a chain, points to itself
    for _ in range(max(n, 1).bit_length() + 1):
        if (jump == n).all():
            return
        jump = jump[jump]
    _need((jump == n).all())


# ---------------------------------------------------------------------------------------------
# identity linkage (docs/contract.md §1): platform records, their matches, loans and entries
# naming a record. Checked on whole columns like the rest; resolved as the exact loader
# resolves them (exact._resolve): records.person_id when given (``known``), else the record's
# matches row; a record with neither resolves to no one.


@dataclass(frozen=True, slots=True)
class _Linkage:
    """The checked ``records`` and ``matches``: the records by id, each resolved record's
    match (in the exact loader's order), the person each record resolves to ("" none),
    and per loan row its record ("") and how that record was resolved (None)."""

    record_ids: pa.Array
    record_platform: np.ndarray
    resolved: np.ndarray
    records: dict[str, Record]
    matches: dict[str, Match]
    loan_record: list[str]
    loan_matched_by: list[str | None]


_PROBABILITY = r"^[0-9]+(\.[0-9]+)?$"
_WEIGHT = r"^-?[0-9]+(\.[0-9]+)?$"


def _has_linkage(tables: _Tables) -> bool:
    """Whether the folder uses identity linkage at all (else: no records, as before)."""
    if any(tables[t] is not None and tables[t].num_rows for t in ("records", "matches")):
        return True
    if pc.any(pc.not_equal(_col(tables["loans"], "borrower_record"), "")).as_py():
        return True
    kinds = _col(tables["blacklist"], "subject_kind")
    return bool(pc.any(pc.equal(kinds, SubjectKind.RECORD.value)).as_py())


def _check_linkage(tables: _Tables, region: str, keys: _Keys) -> _Linkage | None:
    """The records and their matches checked and resolved (None: the folder has none)."""
    if not _has_linkage(tables):
        return None
    rc = tables["records"]
    ids = _clean(_col(rc, "record_id"), True)
    _unique(ids)
    platform = _clean(_col(rc, "platform_id"), True)
    _known(platform, keys.platform_ids, False)
    id_number = _clean(_col(rc, "id_number"), False)
    present = pc.filter(id_number, pc.not_equal(id_number, ""))
    # a record's ID number: the shape only, upper-case (a lower-case x: the exact loader)
    _need(_true(pc.match_substring_regex(present, ID_SHAPE)))
    person = _clean(_col(rc, "person_id"), False)
    _known(person, keys.person_ids, True)
    records = {
        rid: Record(rid, plat, name, idn, phone, birth, city, pid)
        for rid, plat, name, idn, phone, birth, city, pid in zip(
            ids.to_pylist(),
            platform.to_pylist(),
            _opt(_clean(_col(rc, "name"), False).to_pylist()),
            _opt(id_number.to_pylist()),
            _opt(_phones(_clean(_col(rc, "phone"), False), region, True).to_pylist()),
            _day_or_none(_days(_col(rc, "birth_date"), NEVER), NEVER),
            _opt(_clean(_col(rc, "city"), False).to_pylist()),
            _opt(person.to_pylist()),
            strict=True,
        )
    }
    matches, rows = _check_matches(tables["matches"], keys, ids, person)
    resolved = np.asarray(person.to_numpy(zero_copy_only=False), dtype=object)
    resolved[rows] = [m.person_id for m in matches.values()]
    known = {
        rid: Match(rid, r.person_id, 1.0, MatchKey.KNOWN)
        for rid, r in records.items()
        if r.person_id is not None
    }
    return _Linkage(
        ids,
        np.asarray(platform.to_numpy(zero_copy_only=False), dtype=object),
        resolved,
        records,
        {**known, **matches},
        [],
        [],
    )


def _numbers(values: pa.Array, pattern: str) -> np.ndarray:
    """Plain decimal numbers (``pattern``) as floats, NaN for ""; anything else (signs,
    exponents, inf): the exact loader reads it."""
    present = pc.not_equal(values, "")
    _need(_true(pc.match_substring_regex(pc.filter(values, present), pattern)))
    numbers = pc.cast(pc.if_else(present, values, None), pa.float64())
    out: np.ndarray = numbers.fill_null(np.nan).to_numpy(zero_copy_only=False)
    _need(np.isfinite(out[present.to_numpy(zero_copy_only=False)]).all())
    return out


def _waterfalls(values: pa.Array) -> dict[str, tuple[MatchLevel, ...]]:
    """Each distinct ``waterfall`` cell read by the row model the exact loader uses (a
    linked folder repeats few of them); anything it refuses: the exact loader names it."""
    out: dict[str, tuple[MatchLevel, ...]] = {"": ()}
    for text in pc.unique(values).to_pylist():
        if text in out:
            continue
        try:
            _need(isinstance(json.loads(text), list))
            row = MatchRow.model_validate(
                {"record_id": "r", "person_id": "p", "match_probability": "0"}
                | {"matched_by": MatchKey.KNOWN.value, "waterfall": text}
            )
        except ValueError as exc:  # pydantic's ValidationError and JSON's errors are ValueErrors
            raise _Fallback from exc
        out[text] = tuple(
            MatchLevel(w.field, w.level, w.agreed, w.log2_bayes_factor) for w in row.waterfall or ()
        )
    return out


def _check_matches(
    mt: pa.Table | None, keys: _Keys, record_ids: pa.Array, record_person: pa.Array
) -> tuple[dict[str, Match], np.ndarray]:
    """The ``matches`` rows checked (one per known record, to a known person, never with
    itself, agreeing with the record's own ``person_id``), as the exact loader's
    :class:`Match` values in file order, and the row of each one's record. The row of a
    record that names its person is checked but not used (``known`` wins, as in the exact
    loader)."""
    ids = _clean(_col(mt, "record_id"), True)
    _unique(ids)
    rows = _known(ids, record_ids, False)
    person = _clean(_col(mt, "person_id"), True)
    _known(person, keys.person_ids, False)
    given = record_person.take(pa.array(rows, pa.int64()))
    unnamed = pc.equal(given, "").to_numpy(zero_copy_only=False)
    _need(_true(pc.or_(pc.equal(given, ""), pc.equal(given, person))))
    probability = _numbers(_clean(_col(mt, "match_probability"), True), _PROBABILITY)
    _need((probability <= 1).all())
    by = _clean(_col(mt, "matched_by"), True)
    _enum(by, enum_values(MatchKey), False)
    matched_with = _clean(_col(mt, "matched_with"), False)
    _known(matched_with, record_ids, True)
    _need(not pc.any(pc.equal(matched_with, ids)).as_py())
    weight = _numbers(_clean(_col(mt, "match_weight"), False), _WEIGHT)
    waterfall = _clean(_col(mt, "waterfall"), False)
    levels = _waterfalls(waterfall)
    matches = {
        rid: Match(
            rid, pid, p + 0.0, MatchKey(k), w or None, None if np.isnan(x) else x + 0.0, levels[f]
        )
        for rid, pid, p, k, w, x, f, unnamed_record in zip(
            ids.to_pylist(),
            person.to_pylist(),
            probability.tolist(),
            by.to_pylist(),
            matched_with.to_pylist(),
            weight.tolist(),
            waterfall.to_pylist(),
            unnamed.tolist(),
            strict=True,
        )
        if unnamed_record
    }
    return matches, rows[unnamed]


def _loan_records(ln: pa.Table | None, loans: _Loans, linkage: _Linkage) -> tuple[_Loans, _Linkage]:
    """Each loan's record known, held by the loan's platform, resolving to its borrower_id
    when that is given; the loans then name the resolved borrower ("" none)."""
    record = _clean(_col(ln, "borrower_record"), False)
    row = _known(record, linkage.record_ids, True)
    has = row >= 0
    platform = np.asarray(loans.platform.to_numpy(zero_copy_only=False), dtype=object)
    _need((linkage.record_platform[row[has]] == platform[has]).all())
    given = np.asarray(loans.borrower.to_numpy(zero_copy_only=False), dtype=object)
    person = given.copy()
    person[has] = linkage.resolved[row[has]]
    _need(((given == "") | (person == given)).all())
    borrower = pa.array(person.tolist(), pa.string())
    by = [
        linkage.matches[r].matched_by.value if r and r in linkage.matches else None
        for r in record.to_pylist()
    ]
    resolved = replace(loans, borrower=borrower)
    return resolved, replace(linkage, loan_record=record.to_pylist(), loan_matched_by=by)


def _linked(data: Dataset, linkage: _Linkage, unnamed_loans: bool = False) -> Dataset:
    """The dataset of a folder with identity linkage, as the exact loader builds it: loans
    naming their record and how it was resolved; a loan whose record resolves to no one
    (and its links) out of the graph, or with ``unnamed_loans`` after the others (its
    borrower ``""``); the records and their matches."""
    loans = {}
    unnamed = {}
    for (loan_id, loan), record, by in zip(
        data.loans.items(), linkage.loan_record, linkage.loan_matched_by, strict=True
    ):
        if loan.borrower_id:
            loans[loan_id] = replace(loan, borrower_record=record or None, matched_by=by)
        elif unnamed_loans:
            unnamed[loan_id] = replace(loan, borrower_record=record or None, matched_by=by)
    return replace(
        data,
        loans={**loans, **unnamed},
        links=(
            *(x for x in data.links if x.loan_id in loans),
            *(x for x in data.links if x.loan_id in unnamed),
        ),
        records=linkage.records,
        matches=linkage.matches,
    )


def _pick(values: pa.Array | np.ndarray, rows: np.ndarray) -> pa.Array | np.ndarray:
    """The values at ``rows`` (indices), Arrow or numpy alike."""
    if isinstance(values, np.ndarray):
        return values[rows]
    return values.take(pa.array(rows, pa.int64()))


def _linked_columns(c: Columns, linkage: _Linkage) -> Columns:
    """The columns of a folder with identity linkage, as
    :func:`~spillover.facts.columns.columns_from_dataset` makes them from the exact loader's
    dataset: the loans whose record resolves to no one (and their links) left out, the
    owner periods grouped by number (first seen first) and ordered by ``since``, no codes
    (the batch index makes them), each loan's record, the records and their matches."""
    loans = np.flatnonzero(pc.not_equal(c.loan_borrower, "").to_numpy(zero_copy_only=False))
    kept = pc.filter(c.loan_ids, pc.not_equal(c.loan_borrower, ""))
    links = np.flatnonzero(pc.is_in(c.link_loan, value_set=kept).to_numpy(zero_copy_only=False))
    first_seen = pc.index_in(c.period_phone, value_set=pc.unique(c.period_phone))
    periods = np.lexsort((c.period_since, first_seen.to_numpy(zero_copy_only=False)))
    picked: dict[str, pa.Array | np.ndarray] = {
        f"period_{name}": _pick(getattr(c, f"period_{name}"), periods)
        for name in ("phone", "owner", "verified", "since", "until")
    }
    for name in ("ids", "platform", "borrower", "applied", "known", "status"):
        picked[f"loan_{name}"] = _pick(getattr(c, f"loan_{name}"), loans)
    for name in ("applicant_phone", "phone_verified"):
        picked[f"loan_{name}"] = _pick(getattr(c, f"loan_{name}"), loans)
    for name in ("loan", "phone", "role"):
        picked[f"link_{name}"] = _pick(getattr(c, f"link_{name}"), links)
    details = c.details
    if details is not None:
        details = replace(
            details,
            loan_amount=details.loan_amount[loans],
            loan_status_at=details.loan_status_at[loans],
            loan_phone_verified=details.loan_phone_verified[loans],
        )
    return replace(
        c,
        **picked,
        details=details,
        codes=None,
        loan_record=np.asarray(linkage.loan_record, dtype=object)[loans],
        records=linkage.records,
        matches=linkage.matches,
    )
