"""Pseudonymized export of a data folder (docs/privacy.md).

``export_pseudonymized(data, out, key_file=K)`` reads and validates a data folder
and writes a new one (docs/contract.md §1) in which every value that names a person is
replaced by a keyed HMAC-SHA256 pseudonym:

========================  ===================================================
person ids                ``pid-`` + 16 hex digits
names                     ``P-`` + 12 hex digits (derived from the name text)
phone numbers             a valid mainland mobile number, ``+861[3589]x xxxx xxxx``
resident ID numbers       a valid 18-character ID with address code ``99``
                          (no real ID starts so), a made-up birth date and a
                          correct check digit
loan and entry ids        ``loan-`` / ``entry-`` + 16 hex digits (they may embed
                          names or initials in real data)
platform record ids       ``rec-`` + 16 hex digits (their names, ID numbers and
                          phones as above)
stated reasons, cities    dropped (free text can hold anything)
waterfall levels          kept when one of :data:`LEVEL_LABELS` (the labels
                          ``spillover link`` writes), else ``L-`` + 12 hex
                          digits (a level is free text in a hand-made
                          ``matches`` table)
records' birth dates      dropped (a match's waterfall still says which fields
                          agreed)
========================  ===================================================

Platforms (institutions, not people), dates, amounts, statuses, roles and the
graph's structure are kept, so every command runs on the export and scores it
exactly as the original. The same input and key give byte-identical output;
the key is read, never written (but by :func:`generate_key`, which makes a new
one), and must be random (:func:`key_problem`). Person ids, phone numbers, ID numbers, loan and
entry ids are mapped *injectively*: two different values never share a
pseudonym (a clash of the HMAC-derived candidates is resolved deterministically,
see :func:`_injective`), and no pseudonym equals a raw value of the same kind.
"""

from __future__ import annotations

import hmac
import itertools
import json
import math
import os
import re
import secrets
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SpilloverError, UsageProblem
from ..facts.model import (
    Dataset,
    Entry,
    Loan,
    LoanLink,
    Match,
    Person,
    PhonePeriod,
    Record,
    SubjectKind,
)
from ..facts.phones import CN_MOBILE_NATIONAL, DEFAULT_REGION
from ..facts.resident_id import check_character
from ..files.write import atomic_folder, write_data_rows
from .contract import CSV, FALSE, TABLES, TRUE
from .exact import loan_of, read_valid_table, table_file
from .fast import read_dataset
from .formats import check_format, convert_folder
from .outputs import check_outside
from .rows import LoanLinkRow, LoanRow

__all__ = [
    "LEVEL_LABELS",
    "MAX_STREAM_KEY_BYTES",
    "MIN_KEY_BITS",
    "MIN_KEY_BYTES",
    "ExportSummary",
    "Pseudonymizer",
    "check_new_folder",
    "check_options",
    "export_pseudonymized",
    "generate_key",
    "key_entropy_bits",
    "key_problem",
    "pseudonymize",
    "read_key",
    "with_unnamed_loans",
    "without_unnamed_loans",
    "write_dataset",
]

#: The shortest key accepted, in bytes (the HMAC-SHA256 output size).
MIN_KEY_BYTES = 32
#: The least entropy a key must show (:func:`key_entropy_bits`), in bits.
MIN_KEY_BITS = 128
#: A key read from a pipe, standard input or a device may hold at most this many bytes
#: (so ``/dev/zero`` or ``/dev/urandom`` given by mistake is refused, not read forever).
MAX_STREAM_KEY_BYTES = 4096
#: Waterfall levels kept as they are: the comparison labels ``spillover link`` writes
#: (``spillover.link.resolve.LEVEL_AGREES``). Any other level is free text (a ``matches`` table
#: may be made by hand) and is pseudonymized.
LEVEL_LABELS = frozenset(
    {"exact", "pinyin", "swapped", "close", "similar", "alike", "partial", "different", "missing"}
)

#: Mobile prefixes whose every 8-digit continuation is a valid mainland number
#: (phonenumbers metadata); pseudonyms are drawn from them.
_PHONE_PREFIXES = tuple(
    str(p)
    for p in (*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159, *range(180, 190))
)
_CN_MOBILE = re.compile(CN_MOBILE_NATIONAL)
#: Made-up birth dates of pseudonymous ID numbers lie in this range.
_BIRTH_FIRST = date(1940, 1, 1)
_BIRTH_DAYS = (date(2005, 12, 31) - _BIRTH_FIRST).days + 1
#: Version tag of the derivation: a change of format gets a new tag, never silently new values.
_DOMAIN = b"spillover/pseudonym/v1/"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :func:`export_pseudonymized` wrote: the folder and the rows per table."""

    out: Path
    counts: dict[str, int]


def _shannon_bits(values: bytes) -> float:
    """The empirical Shannon entropy of ``values``, in bits per value."""
    n = len(values)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(values).values()))


def _period(key: bytes) -> int:
    """The shortest p such that ``key`` is its first p bytes repeated (``len(key)`` if none)."""
    n = len(key)
    fail = [0] * n  # Knuth-Morris-Pratt failure function: linear time
    k = 0
    for i in range(1, n):
        while k and key[i] != key[k]:
            k = fail[k - 1]
        if key[i] == key[k]:
            k += 1
        fail[i] = k
    p = n - fail[-1] if n else 0
    return p if p and n % p == 0 else n


def key_entropy_bits(key: bytes) -> float:
    """A cautious estimate of the entropy of ``key``, in bits (an upper bound of what a
    weak key shows, never a proof that a key is random).

    The least of: the Shannon entropy of its byte values and that of the steps between
    neighbouring bytes (so ``00 01 02 ...`` or ``abcabc...`` count for nothing), times the
    length of its shortest repeating unit (a block written twice counts once).

    >>> key_entropy_bits(bytes(32)), key_entropy_bits(b" " * 40), key_entropy_bits(bytes(range(32)))
    (0.0, 0.0, 0.0)
    >>> key_entropy_bits(b"0123456789abcdef" * 4) < MIN_KEY_BITS
    True
    """
    if len(key) < 2:
        return 0.0
    steps = bytes((b - a) % 256 for a, b in itertools.pairwise(key))
    return min(_shannon_bits(key), _shannon_bits(steps)) * _period(key)


def key_problem(key: bytes) -> str | None:
    """Why ``key`` is not fit to pseudonymize with (None when it is): fewer than
    :data:`MIN_KEY_BYTES` bytes, or less than :data:`MIN_KEY_BITS` bits of entropy by
    :func:`key_entropy_bits` (zero bytes, one character repeated, spaces, a counting
    sequence, a short block repeated). The message never shows the key.

    >>> key_problem(bytes(32))
    'it shows no entropy (about 0 bits: one byte value repeated, a sequence or a block written again); a key needs at least 128 bits: 32 random bytes'
    """
    if len(key) < MIN_KEY_BYTES:
        what = "is empty" if not key else f"holds only {len(key)} bytes"
        return f"it {what}; a key needs at least {MIN_KEY_BYTES} random bytes"
    bits = key_entropy_bits(key)
    if bits < MIN_KEY_BITS:
        what = "no entropy" if bits < 1 else "too little entropy"
        return (
            f"it shows {what} (about {bits:.0f} bits: one byte value repeated, a sequence "
            f"or a block written again); a key needs at least {MIN_KEY_BITS} bits: "
            f"{MIN_KEY_BYTES} random bytes"
        )
    return None


def _hint(path: object) -> str:
    return (
        f"make one with: spillover export --generate-key {path} "
        f"(or head -c {MIN_KEY_BYTES} /dev/urandom > {path})"
    )


def _read_stream(stream: BinaryIO, name: str) -> bytes:
    """At most :data:`MAX_STREAM_KEY_BYTES` bytes of a pipe, standard input or device."""
    if stream.isatty():
        raise SpilloverError(f"{name} is a terminal: pipe the key in (--key-file - < FILE)")
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_STREAM_KEY_BYTES:
        chunk = stream.read(MAX_STREAM_KEY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_STREAM_KEY_BYTES:
        raise SpilloverError(
            f"{name} holds more than {MAX_STREAM_KEY_BYTES} bytes: not a key "
            "(a key read from a pipe or device is at most that long)"
        )
    return b"".join(chunks)


def read_key(path: str | Path, *, stdin: BinaryIO | None = None) -> bytes:
    """The secret key in ``path`` (its raw bytes, all of them).

    ``path`` ``-`` reads the key from standard input (``stdin``, default the process's);
    a pipe, ``/dev/stdin`` or another device is read too (at most
    :data:`MAX_STREAM_KEY_BYTES` bytes). Refused with a clear message when the file is
    missing, unreadable, or the key is too short or too weak (:func:`key_problem`). The
    key's content never appears in a message.
    """
    if str(path) == "-":
        name = "the key on standard input"
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise SpilloverError("--key-file -: there is no standard input to read the key from")
        try:
            key = _read_stream(stream, "standard input")
        except OSError as exc:
            raise SpilloverError(f"standard input cannot be read: {exc.strerror}") from None
    else:
        path = Path(path)
        name = f"key file {path}"
        try:
            mode = path.stat().st_mode
        except OSError:
            raise SpilloverError(f"key file {path} does not exist; {_hint(path)}") from None
        if stat.S_ISDIR(mode):
            raise SpilloverError(f"key file {path} is a folder, not a file; {_hint(path)}")
        try:
            if stat.S_ISREG(mode):
                key = path.read_bytes()
            else:  # a pipe, /dev/stdin, a character device
                with path.open("rb", buffering=0) as handle:
                    key = _read_stream(handle, f"key file {path}")
        except OSError as exc:
            raise SpilloverError(f"key file {path} cannot be read: {exc.strerror}") from None
    problem = key_problem(key)
    if problem is not None:
        raise SpilloverError(f"{name} is refused: {problem}; {_hint('NEW_FILE')}")
    return key


def check_options(
    *,
    data: str | Path | None,
    out: str | Path | None,
    pseudonymize: bool,
    key_file: str | Path | None,
    new_key_file: str | Path | None,
) -> None:
    """Refuse ``spillover export`` options that do not go together
    (:class:`~spillover.errors.UsageProblem`): ``new_key_file`` (``--generate-key``) with
    anything of an export, an export without ``pseudonymize`` or without ``key_file``
    (``data`` and ``out`` are the command line's to require)."""
    if new_key_file is not None:
        if data is not None or out is not None or pseudonymize or key_file is not None:
            raise UsageProblem(
                "--generate-key only makes a key: export with --key-file in a second command"
            )
        return
    if not pseudonymize:
        raise UsageProblem("export writes pseudonymized data only: pass --pseudonymize")
    if key_file is None:
        raise UsageProblem("--pseudonymize needs --key-file FILE")


def generate_key(path: str | Path) -> Path:
    """Write a new random key (:data:`MIN_KEY_BYTES` bytes from :mod:`secrets`) to the new
    file ``path``, readable and writable by its owner only (mode 0600).

    An existing ``path`` (even a dangling link) is never overwritten: the exports made
    with a key cannot be linked to later ones without it. Returns ``path``.
    """
    path = Path(path)
    if str(path) == "-":
        raise SpilloverError("--generate-key writes the key to a new file, not to standard output")
    key = secrets.token_bytes(MIN_KEY_BYTES)
    while key_problem(key) is not None:  # next to never; a generated key must pass the check
        key = secrets.token_bytes(MIN_KEY_BYTES)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise SpilloverError(
            f"{path} already exists: a key file is never overwritten (choose a new name)"
        ) from None
    except OSError as exc:
        raise SpilloverError(f"{path}: cannot create the key file: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(key)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise SpilloverError(f"{path}: cannot write the key file: {exc.strerror}") from None
    os.close(fd)
    return path


class Pseudonymizer:
    """Keyed pseudonyms of one kind of value at a time (HMAC-SHA256, domain-separated)."""

    def __init__(self, key: bytes) -> None:
        problem = key_problem(key)
        if problem is not None:
            raise SpilloverError(f"the pseudonymization key is refused: {problem}")
        self._key = key

    def digest(self, kind: str, value: str, attempt: int = 0) -> bytes:
        """HMAC-SHA256 of ``value`` for ``kind``; ``attempt`` > 0 gives the next candidates."""
        message = _DOMAIN + kind.encode() + b"\0" + value.encode("utf-8")
        if attempt:
            message += b"\0" + str(attempt).encode()
        return hmac.digest(self._key, message, "sha256")

    def name(self, name: str) -> str:
        """``P-`` and 12 hex digits. Not injective (names are not keys): equal names stay equal."""
        return "P-" + self.digest("name", name).hex()[:12]

    def level(self, level: str) -> str:
        """A waterfall level: kept when one of :data:`LEVEL_LABELS`, else ``L-`` and 12 hex
        digits (free text may hold a name or a number); equal levels stay equal."""
        return level if level in LEVEL_LABELS else "L-" + self.digest("level", level).hex()[:12]

    def person_ids(self, values: Iterable[str]) -> dict[str, str]:
        """Person ids to ``pid-`` and 16 hex digits, injectively."""
        return self._hex_ids("person", "pid-", values)

    def loan_ids(self, values: Iterable[str]) -> dict[str, str]:
        """Loan ids to ``loan-`` and 16 hex digits, injectively."""
        return self._hex_ids("loan", "loan-", values)

    def entry_ids(self, values: Iterable[str]) -> dict[str, str]:
        """Blacklist entry ids to ``entry-`` and 16 hex digits, injectively."""
        return self._hex_ids("entry", "entry-", values)

    def record_ids(self, values: Iterable[str]) -> dict[str, str]:
        """Platform record ids to ``rec-`` and 16 hex digits, injectively."""
        return self._hex_ids("record", "rec-", values)

    def _hex_ids(self, kind: str, prefix: str, values: Iterable[str]) -> dict[str, str]:
        return _injective(self, kind, values, lambda d: prefix + d.hex()[:16])

    def phones(self, values: Iterable[str]) -> dict[str, str]:
        """E.164 numbers to valid mainland mobile numbers, injectively."""
        return _injective(self, "phone", values, _phone_candidate)

    def id_numbers(self, values: Iterable[str]) -> dict[str, str]:
        """Resident ID numbers to valid-looking ones that no real person holds, injectively."""
        return _injective(self, "id_number", values, _id_candidate)


def _phone_candidate(digest: bytes) -> str | None:
    n = int.from_bytes(digest[:16], "big")
    rest, prefix = divmod(n, len(_PHONE_PREFIXES))
    national = _PHONE_PREFIXES[prefix] + f"{rest % 10**8:08d}"
    return "+86" + national if _CN_MOBILE.fullmatch(national) else None


def _id_candidate(digest: bytes) -> str:
    n = int.from_bytes(digest[:16], "big")
    area = f"99{n % 10_000:04d}"  # real IDs begin 11..83 (or 9 + a province code)
    n //= 10_000
    born = _BIRTH_FIRST + timedelta(days=n % _BIRTH_DAYS)
    n //= _BIRTH_DAYS
    first17 = f"{area}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_character(first17)


def _injective(
    p: Pseudonymizer, kind: str, values: Iterable[str], make: Callable[[bytes], str | None]
) -> dict[str, str]:
    """Map each distinct value to the first free candidate ``make(digest(value, attempt))``.

    Values are assigned in the order of their first digest (so the order of the
    input leaks nothing); a candidate is taken when it is valid (``make`` does not
    return None), not given to another value yet, and not itself a raw value of
    this kind. Almost always attempt 0 wins, so a value's pseudonym is the same in
    every export with the same key; only after a clash does the value whose digest
    sorts later move on to its next candidate.
    """
    raw = set(values)
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for first, value in sorted((p.digest(kind, v), v) for v in raw):
        attempt = 0
        while True:
            candidate = make(first if attempt == 0 else p.digest(kind, value, attempt))
            if candidate is not None and candidate not in taken and candidate not in raw:
                break
            attempt += 1
        taken.add(candidate)
        mapping[value] = candidate
    return mapping


@dataclass(frozen=True, slots=True)
class _Pseudonyms:
    """The pseudonym of every value of a dataset that names a person, by kind, and the
    :class:`Pseudonymizer` that made them (for names and waterfall levels)."""

    p: Pseudonymizer
    phone: dict[str, str]
    person: dict[str, str]
    loan_id: dict[str, str]
    entry_id: dict[str, str]
    id_number: dict[str, str]
    record_id: dict[str, str]

    def owner(self, value: str | None) -> str | None:
        return None if value is None else self.person[value]

    def subject(self, e: Entry) -> str:
        if e.subject_kind is SubjectKind.RECORD:
            return self.record_id[e.subject]
        if e.subject_kind is SubjectKind.PHONE:
            return self.phone[e.subject]
        return self.person[e.subject]


def pseudonymize(data: Dataset, key: bytes) -> Dataset:
    """The dataset with every personal value replaced (see the module docs)."""
    ids = _pseudonyms(Pseudonymizer(key), data)
    return Dataset(
        _pseudonymize_people(ids, data),
        dict(data.platforms),
        _pseudonymize_phones(ids, data),
        _pseudonymize_loans(ids, data),
        tuple(LoanLink(ids.loan_id[x.loan_id], ids.phone[x.phone], x.role) for x in data.links),
        _pseudonymize_blacklist(ids, data),
        data.sharing,
        _pseudonymize_records(ids, data),
        _pseudonymize_matches(ids, data),
    )


def _phone_values(data: Dataset) -> set[str]:
    """Every phone number of the dataset (periods, applicants, links, subjects, records)."""
    values = set(data.phone_periods)
    values.update(loan.applicant_phone for loan in data.loans.values() if loan.applicant_phone)
    values.update(link.phone for link in data.links)
    values.update(e.subject for e in data.entries.values() if e.subject_kind is SubjectKind.PHONE)
    values.update(r.phone for r in data.records.values() if r.phone)
    return values


def _person_values(data: Dataset) -> set[str]:
    """Every person id of the dataset (people, borrowers, owners, subjects, records, matches)."""
    values = set(data.people)
    # a loan left out of the graph (its record unresolved) has the borrower "" (export)
    values.update(loan.borrower_id for loan in data.loans.values() if loan.borrower_id)
    values.update(
        period.owner_id
        for periods in data.phone_periods.values()
        for period in periods
        if period.owner_id is not None
    )
    values.update(e.subject for e in data.entries.values() if e.subject_kind is SubjectKind.PERSON)
    values.update(r.person_id for r in data.records.values() if r.person_id)
    values.update(m.person_id for m in data.matches.values())
    return values


def _pseudonyms(p: Pseudonymizer, data: Dataset) -> _Pseudonyms:
    """The injective pseudonyms of the dataset's phones, person ids, loan, entry and
    record ids and ID numbers."""
    return _Pseudonyms(
        p,
        phone=p.phones(_phone_values(data)),
        person=p.person_ids(v for v in _person_values(data) if v is not None),
        loan_id=p.loan_ids(data.loans),
        entry_id=p.entry_ids(e for e in data.entries),
        id_number=p.id_numbers(
            [x.id_number for x in data.people.values() if x.id_number]
            + [r.id_number for r in data.records.values() if r.id_number]
        ),
        record_id=p.record_ids(data.records),
    )


def with_unnamed_loans(source: Path, data: Dataset, region: str) -> Dataset:
    """``data`` with the loans the loader leaves out of the graph, and their links: a loan
    that names its borrower only by an unresolved record names no one (docs/contract.md
    §1), yet it is a row of the folder, and a later ``spillover link`` of the export may
    resolve its record. Such a loan has the empty ``borrower_id`` ``""`` here (it is
    written empty); the folder is validated already. The export and ``remedy --apply``
    write every loan of the folder with it.

    This reads the ``loans`` (and ``loan_links``) table of ``source`` again when some
    record is unresolved; :func:`~spillover.data.fast.read_dataset` with
    ``unnamed_loans=True`` gives the same dataset from one read (what the export and
    ``remedy --apply`` use now), and :func:`without_unnamed_loans` the graph's from it."""
    if data.matches.keys() >= data.records.keys():
        return data  # every record resolved (or none): no loan was left out, nothing to read
    unnamed = {
        row.loan_id: loan_of(row, "")
        for row in read_valid_table(source, "loans", region)
        if isinstance(row, LoanRow) and row.loan_id not in data.loans
    }
    if not unnamed:
        return data
    links = (
        read_valid_table(source, "loan_links", region)
        if table_file(source, "loan_links") is not None
        else []
    )
    return replace(
        data,
        loans={**data.loans, **unnamed},
        links=(
            *data.links,
            *(
                LoanLink(row.loan_id, row.phone, row.role)
                for row in links
                if isinstance(row, LoanLinkRow) and row.loan_id in unnamed
            ),
        ),
    )


def without_unnamed_loans(data: Dataset) -> Dataset:
    """``data`` without the loans that name no one (the borrower ``""``: named only by an
    unresolved record, kept by ``read_dataset(..., unnamed_loans=True)``) and their links:
    the dataset of the graph, as read without them."""
    if all(loan.borrower_id for loan in data.loans.values()):
        return data
    loans = {k: loan for k, loan in data.loans.items() if loan.borrower_id}
    return replace(data, loans=loans, links=tuple(x for x in data.links if x.loan_id in loans))


def _pseudonymize_people(ids: _Pseudonyms, data: Dataset) -> dict[str, Person]:
    """People: id, name and ID number replaced, city dropped."""
    return {
        ids.person[x.person_id]: Person(
            ids.person[x.person_id],
            ids.p.name(x.name),
            ids.id_number[x.id_number] if x.id_number else None,
            None,
        )
        for x in data.people.values()
    }


def _pseudonymize_phones(ids: _Pseudonyms, data: Dataset) -> dict[str, tuple[PhonePeriod, ...]]:
    """Owner periods: numbers and owners replaced."""
    return {
        ids.phone[number]: tuple(
            PhonePeriod(ids.phone[number], ids.owner(x.owner_id), x.verified, x.since, x.until)
            for x in rows
        )
        for number, rows in data.phone_periods.items()
    }


def _pseudonymize_loans(ids: _Pseudonyms, data: Dataset) -> dict[str, Loan]:
    """Loans: ids, borrowers, applicant phones and borrower records replaced."""
    return {
        ids.loan_id[x.loan_id]: Loan(
            ids.loan_id[x.loan_id],
            x.platform_id,
            ids.person[x.borrower_id] if x.borrower_id else "",
            x.applied_at,
            x.status,
            ids.phone[x.applicant_phone] if x.applicant_phone else None,
            x.phone_verified,
            x.amount,
            x.status_at,
            ids.record_id[x.borrower_record] if x.borrower_record else None,
            x.matched_by,
        )
        for x in data.loans.values()
    }


def _pseudonymize_blacklist(ids: _Pseudonyms, data: Dataset) -> dict[str, Entry]:
    """Entries: ids, subjects and copied entries replaced, stated reasons dropped."""
    return {
        ids.entry_id[x.entry_id]: Entry(
            ids.entry_id[x.entry_id],
            x.platform_id,
            x.subject_kind,
            ids.subject(x),
            x.listed_at,
            None,
            ids.entry_id[x.copied_from] if x.copied_from else None,
        )
        for x in data.entries.values()
        if x.entry_id is not None
    }


def _pseudonymize_records(ids: _Pseudonyms, data: Dataset) -> dict[str, Record]:
    """Platform records: ids, names, ID numbers, phones and persons replaced; birth
    dates and cities dropped."""
    return {
        ids.record_id[x.record_id]: Record(
            ids.record_id[x.record_id],
            x.platform_id,
            ids.p.name(x.name) if x.name else None,
            ids.id_number[x.id_number] if x.id_number else None,
            ids.phone[x.phone] if x.phone else None,
            None,
            None,
            ids.owner(x.person_id),
        )
        for x in data.records.values()
    }


def _pseudonymize_matches(ids: _Pseudonyms, data: Dataset) -> dict[str, Match]:
    """Matches: records and persons replaced, free-text waterfall levels too."""
    return {
        ids.record_id[m.record_id]: Match(
            ids.record_id[m.record_id],
            ids.person[m.person_id],
            m.match_probability,
            m.matched_by,
            ids.record_id[m.matched_with] if m.matched_with else None,
            m.match_weight,
            tuple(replace(w, level=ids.p.level(w.level)) for w in m.waterfall),
        )
        for m in data.matches.values()
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _table_rows(data: Dataset) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table in the contract's column order (:func:`columns`), sorted (the input's
    order is not kept)."""
    records = bool(data.records) or any(x.borrower_record for x in data.loans.values())
    identity: dict[str, list[tuple[Any, ...]]] = {}
    if records:
        identity["records"] = sorted(
            (
                x.record_id,
                x.platform_id,
                x.name,
                x.id_number,
                x.phone,
                x.birth_date,
                x.city,
                x.person_id,
            )
            for x in data.records.values()
        )
        # a record's person given in the data is not repeated as a match
        identity["matches"] = sorted(
            (
                m.record_id,
                m.person_id,
                m.match_probability,
                m.matched_by.value,
                m.matched_with,
                m.match_weight,
                _waterfall(m),
            )
            for m in data.matches.values()
            if data.records[m.record_id].person_id is None
        )
    return {
        "people": sorted((x.person_id, x.name, x.id_number, x.city) for x in data.people.values()),
        "platforms": sorted((x.platform_id, x.name, x.kind.value) for x in data.platforms.values()),
        "phones": sorted(
            (
                (x.phone, x.owner_id, x.verified, x.since, x.until)
                for periods in data.phone_periods.values()
                for x in periods
            ),
            key=lambda r: (r[0], r[3] or date.min, r[4] or date.max, r[1] or ""),
        ),
        "loans": sorted(
            (
                x.loan_id,
                x.platform_id,
                # a loan named by a record names its borrower by the record alone: its
                # person follows from the record (records.person_id or its match), and a
                # match written as a fact here would outlive the match's correction
                "" if x.borrower_record else x.borrower_id,
                x.applied_at,
                x.status.value,
                x.applicant_phone,
                x.phone_verified,
                x.amount,
                x.status_at,
                *((x.borrower_record,) if records else ()),
            )
            for x in data.loans.values()
        ),
        "loan_links": sorted((x.loan_id, x.phone, x.role.value) for x in data.links),
        "blacklist": sorted(
            (
                (
                    x.entry_id,
                    x.platform_id,
                    x.subject_kind.value,
                    x.subject,
                    x.listed_at,
                    x.stated_reason,
                    x.copied_from,
                )
                for x in data.entries.values()
            ),
            key=lambda r: r[0] or "",
        ),
        "sharing": sorted(
            ((x.from_platform, x.to_platform, x.since) for x in data.sharing),
            key=lambda r: (r[0], r[1], r[2] or date.min),
        ),
        **identity,
    }


def _waterfall(m: Match) -> str | None:
    if not m.waterfall:
        return None
    return json.dumps(
        [
            {
                "field": w.field,
                "level": w.level,
                "agreed": w.agreed,
                "log2_bayes_factor": w.log2_bayes_factor,
            }
            for w in m.waterfall
        ]
    )


def columns(table: str, data: Dataset) -> list[str]:
    """The header of ``table`` as :func:`write_dataset` writes it: the contract's columns
    in order; ``loans.borrower_record`` last, and only when the data has records."""
    names = [c for c in TABLES[table].model_fields if c != "borrower_record"]
    if table == "loans" and (data.records or any(x.borrower_record for x in data.loans.values())):
        names.append("borrower_record")
    return names


def write_dataset(data: Dataset, folder: Path, progress: Progress | None = None) -> dict[str, int]:
    """Write ``data`` as CSV files (docs/contract.md §1) into the existing folder ``folder``.

    A data folder is machine input: cells are written exactly as the loader reads
    them back (no formula neutralizing, see docs/privacy.md). A loan that names its
    borrower by a platform record (``borrower_record``) is written with the record only
    (``borrower_id`` empty): the record resolves to the same person, and a linkage match
    is not turned into a given borrower.
    """
    counts: dict[str, int] = {}
    tables = _table_rows(data)
    for done, (table, rows) in enumerate(tables.items()):
        if progress:
            progress("write", done, len(tables))
        with (folder / f"{table}{CSV}").open("w", newline="", encoding="utf-8") as handle:
            write_data_rows(handle, [columns(table, data)])
            write_data_rows(handle, ([_cell(v) for v in row] for row in rows))
        counts[table] = len(rows)
    if progress:
        progress("write", len(tables), len(tables))
    return counts


def check_new_folder(out: Path) -> None:
    """Refuse ``out`` as a folder to write unless it is new or empty (a file there, or a
    folder with anything in it, is refused: nothing is overwritten)."""
    if out.exists() and not out.is_dir():
        raise SpilloverError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise SpilloverError(f"{out}: the output folder must be new or empty")


def export_pseudonymized(
    data: str | Path,
    out: str | Path,
    *,
    key_file: str | Path | None = None,
    key: bytes | None = None,
    region: str = DEFAULT_REGION,
    progress: Progress | None = None,
    format: str = "csv",
) -> ExportSummary:
    """Read the data folder ``data`` and write its pseudonymized copy to the new folder ``out``.

    ``format``: the tables as ``csv`` (default), ``jsonl`` or ``parquet``
    (:func:`spillover.data.formats.convert_folder`).

    The key comes from ``key_file`` (see :func:`read_key`) or is given as ``key``.
    The folder is written atomically (it appears complete or not at all) and is
    readable by its owner only. Bad input is refused before anything is written.
    """
    check_format(format)
    if (key is None) == (key_file is None):
        raise SpilloverError("give exactly one of a key file or a key")
    secret = read_key(key_file) if key_file is not None else key
    assert secret is not None
    source, out = Path(data), Path(out)
    check_outside(out, source)
    check_new_folder(out)
    if progress:
        progress("read", 0, 1)
    # every loan of the folder, those the graph leaves out too, from one read
    dataset = read_dataset(source, region=region, unnamed_loans=True)
    if progress:
        progress("read", 1, 1)
        progress("pseudonymize", 0, 1)
    result = pseudonymize(dataset, secret)
    if progress:
        progress("pseudonymize", 1, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out, private=True) as tmp:
        counts = write_dataset(result, tmp, progress)
        convert_folder(tmp, format, progress)
    return ExportSummary(out, counts)
