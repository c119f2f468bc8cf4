"""Which transaction a Neo4j database committed last, from the driver's bookmarks.

Neo4j Community keeps no change counter a client can query (``SHOW DATABASES YIELD
lastCommittedTxn`` is filled on clusters only), but every transaction, a read as well
as a write, ends with a bookmark: the database and the number of the last transaction
it had committed (Neo4j numbers its commits one after the other; a transaction that
changes nothing commits no number). A Neo4j 5 bookmark is ``"FB:"`` and the base64 of a
PackStream list: ``[database uuid (16 bytes), transaction number], [external states]``.
:func:`last_commit` reads that form and no other (a bookmark of a cluster, of a
composite database or of a later format gives None: the caller then knows nothing), so
that a write-back can tell that nothing was committed since its own last transaction
(:mod:`spillover.neo4j.writeback`, docs/graph-model.md "A rerun after which nothing was
committed").
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Commit", "Commits", "last_commit"]

_PREFIX = "FB:"
# PackStream markers: a list of one item, 16 bytes, the integer forms, an empty list
_ONE_STATE = 0x91
_BYTES_16 = b"\xcc\x10"
_EMPTY_LIST = 0x90
_INTS = {0xC8: 1, 0xC9: 2, 0xCA: 4, 0xCB: 8}


@dataclass(frozen=True, slots=True, order=True)
class Commit:
    """A database (its id, 32 hex digits) and the number of a transaction it committed."""

    database: str
    number: int


def last_commit(bookmarks: Iterable[str]) -> Commit | None:
    """The last transaction the bookmark ``bookmarks`` (a session's
    ``last_bookmarks().raw_values``) says its database committed; None unless it is one
    bookmark of Neo4j 5's form for one database.

    >>> last_commit(["FB:kcwQOT8R6KqwS+ie1wLCvTdRksoAAQ8/kA=="])
    Commit(database='393f11e8aab04be89ed702c2bd375192', number=69439)
    >>> last_commit(["FB:kcwQOT8R6KqwS+ie1wLCvTdRksoAAQ8/kA==", "FB:other"]) is None
    True
    >>> last_commit(["neo4j:bookmark:v1:tx42"]) is None
    True
    """
    values = list(bookmarks)
    if len(values) != 1 or not values[0].startswith(_PREFIX):
        return None
    try:
        raw = base64.b64decode(values[0][len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 20 or raw[0] != _ONE_STATE or raw[1:3] != _BYTES_16:
        return None
    database, rest = raw[3:19].hex(), raw[19:]
    marker = rest[0]
    if marker < 0x80:  # a tiny integer: the byte itself
        number, rest = marker, rest[1:]
    elif marker in _INTS:
        size = _INTS[marker]
        if len(rest) < 1 + size:
            return None
        number = int.from_bytes(rest[1 : 1 + size], "big", signed=True)
        rest = rest[1 + size :]
    else:
        return None
    if rest != bytes([_EMPTY_LIST]) or number < 0:
        return None
    return Commit(database, number)


class Commits:
    """The transactions a run committed, from its first (thread-safe: :meth:`add` from
    any thread): :meth:`unbroken` says whether nobody else committed between them.

    A transaction's bookmark is its own number or a later one (two committed at once may
    both be given the later): each of a run's ``k`` transactions after its first has a
    number of its own above the first's, so the highest number given is at least the
    first's plus ``k`` plus the commits of others in between, and equals the first's
    plus ``k`` only when there were none (every transaction of the run must change
    something: one that changes nothing commits no number).

    >>> c = Commits()
    >>> for n in (7, 9, 9): c.add(Commit("db", n))
    >>> c.unbroken()
    Commit(database='db', number=9)
    >>> c.add(Commit("db", 11)); c.unbroken() is None
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._database: str | None = None
        self._first = 0
        self._last = 0
        self._count = 0
        self._unknown = False

    def add(self, commit: Commit | None) -> None:
        """Count ``commit`` as the run's, the first one added as its first (None: a
        transaction whose commit is not known, after which :meth:`unbroken` is None)."""
        with self._lock:
            if commit is None or self._database not in (None, commit.database):
                self._unknown = True
                return
            if self._database is None:
                self._database, self._first = commit.database, commit.number
            self._last = max(self._last, commit.number)
            self._count += 1

    def unbroken(self) -> Commit | None:
        """The run's last commit when nobody else committed from its first to it (and
        every commit of the run is known); else None."""
        with self._lock:
            if self._unknown or self._database is None:
                return None
            if self._last - self._first != self._count - 1:
                return None
            return Commit(self._database, self._last)
