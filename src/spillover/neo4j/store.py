"""The Neo4j backend: graph facts from a Neo4j 5 database through Cypher.

Reads go through ``driver.execute_query`` (managed transactions, retried on
transient errors); every statement lives in ``spillover/neo4j/cypher/*.cypher``.
Scoring stays in the core: this class only answers the
:class:`~spillover.facts.graph.GraphBackend` questions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import neo4j
import numpy as np
from neo4j.exceptions import (
    AuthError,
    ClientError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from ..errors import BackendUnavailable
from ..facts.columns import EPOCH_ORDINAL, FOREVER, NEVER, Columns
from ..facts.model import (
    APPLICANT,
    Entry,
    FrontierFacts,
    LinkRole,
    Loan,
    LoanStatus,
    Match,
    PhonePeriod,
    PhoneUse,
    PlatformKind,
    Record,
    Sharing,
    SubjectKind,
    Surroundings,
    match_from,
    record_name,
    ref,
    split_ref,
)
from ..facts.phones import display_phone
from ..rules import ROLES
from .settings import DEFAULT_DATABASE, DEFAULT_USER, Neo4jSettings
from .statements import cypher

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_USER",
    "QUIET_NOTIFICATIONS",
    "ROLE_PARAMS",
    "STORE_DOWN_ERRORS",
    "Neo4jBackend",
    "Neo4jSettings",
    "columns_from_lists",
    "connect",
    "entry_from",
    "loan_from",
    "open_neo4j",
    "record_from",
]

_T = TypeVar("_T")
#: how many store calls of one backend with a deadline may wait on Neo4j at once (the
#: others queue, and fail at their own deadline while the server does not answer)
DEADLINE_WORKERS = 16

#: the reads of :meth:`Neo4jBackend.columns` (``cypher/NAME.cypher``): each returns one
#: record holding one list per field, and they run side by side in READ_THREADS threads
COLUMN_READS = (
    "columns_loans",
    "columns_periods",
    "columns_links",
    "columns_entries",
    "columns_people",
    "columns_platforms",
)
READ_THREADS = 4
#: the day the column reads give for a date not given (``$missing``: no real day is this
#: far from 1970-01-01; the reads count days from ``$epoch``)
MISSING_DAY = -(2**40)
_EPOCH = date(1970, 1, 1)

#: how the reads name the applicant's role, from the rules (spillover.rules.ROLES)
ROLE_PARAMS = {"applicant": APPLICANT, "applied_with": ROLES[APPLICANT].stored_as}
#: URI schemes of the Bolt protocol, the only one spillover speaks (the driver's
#: experimental http(s) query API is not supported).
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
#: the driver's errors that mean the store went away during a call (a store call raises
#: them as they are; :class:`~spillover.errors.BackendUnavailable` is spillover's own):
#: a caller that answers "the graph store is unavailable" catches these too, without
#: naming the driver (``from spillover.neo4j.store import STORE_DOWN_ERRORS``)
STORE_DOWN_ERRORS: tuple[type[Exception], ...] = (ServiceUnavailable, SessionExpired)


#: the driver's own connection and acquisition timeouts (seconds), kept without a ``timeout``
DRIVER_CONNECTION_TIMEOUT = 30.0
DRIVER_ACQUISITION_TIMEOUT = 60.0


#: what the server is asked not to send on the connections :func:`connect` opens: the
#: notifications that a label, relationship type or property does not exist (the class
#: ``UNRECOGNIZED``). The packaged statements raise them on a graph without some kind of
#: record (no phone owned: no ``OWNS``; no loan link: no ``LINKS``; before the first
#: write-back: no ``TRACED_TO``), and a library caller saw each one logged, with its whole
#: query, as a driver warning; they say nothing a user can act on. (A driver before 5.22
#: calls the class a category.)
QUIET_NOTIFICATIONS: dict[str, Any] = (
    {"notifications_disabled_classifications": ["UNRECOGNIZED"]}
    if hasattr(neo4j, "NotificationDisabledClassification")
    else {"notifications_disabled_categories": ["UNRECOGNIZED"]}
)


def connect(settings: Neo4jSettings, *, timeout: float | None = None) -> neo4j.Driver:
    """A driver that has answered once; a down server or bad credentials give one clear line.
    The server sends it no "does not exist" notification (:data:`QUIET_NOTIFICATIONS`).

    ``timeout``: seconds the server has to answer (None: the driver's own limits): the
    driver gets it as its connection and acquisition timeouts, and a server that takes
    the connection and never answers (hung, paused) is given up on past it."""
    scheme, sep, _ = settings.uri.partition("://")
    if not sep or scheme.lower() not in BOLT_SCHEMES:
        raise BackendUnavailable(
            f"bad Neo4j URI {settings.uri!r}: give a Bolt URI such as bolt://localhost:7687 "
            f"(schemes: {', '.join(BOLT_SCHEMES)})"
        )
    try:
        driver = neo4j.GraphDatabase.driver(
            settings.uri,
            auth=(settings.user, settings.password),
            connection_timeout=DRIVER_CONNECTION_TIMEOUT if timeout is None else timeout,
            connection_acquisition_timeout=(
                DRIVER_ACQUISITION_TIMEOUT if timeout is None else timeout
            ),
            **QUIET_NOTIFICATIONS,
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise BackendUnavailable(f"bad Neo4j URI {settings.uri!r}: {exc}") from None
    try:
        _answers_once(driver, settings.database, timeout)
    except AuthError:
        driver.close()
        raise BackendUnavailable(
            f"Neo4j at {settings.uri} refused the credentials of user {settings.user!r}"
        ) from None
    except ServiceUnavailable as exc:
        driver.close()
        raise BackendUnavailable(
            f"cannot reach Neo4j at {settings.uri}: {_first_line(exc)}"
        ) from None
    except FutureTimeout:  # the driver is closed by the check when it ends
        raise BackendUnavailable(
            f"cannot reach Neo4j at {settings.uri}: it did not answer within {timeout:g} s"
        ) from None
    except (ClientError, Neo4jError, OSError) as exc:
        driver.close()
        raise BackendUnavailable(f"Neo4j at {settings.uri}: {_first_line(exc)}") from None
    return driver


def _answers_once(driver: neo4j.Driver, database: str, timeout: float | None) -> None:
    """Connect and run ``RETURN 1``; with a ``timeout``, in a daemon thread waited for that
    long: past it, :class:`concurrent.futures.TimeoutError`, and the thread closes the
    driver when the call ends (a thread that never ends keeps no process alive). The
    driver's own connection timeout is the same: when it ends the call first (the
    server took the connection and never answered), that is the same timeout."""

    def check() -> None:
        driver.verify_connectivity()
        driver.execute_query(neo4j.Query("RETURN 1", timeout=timeout), database_=database)

    if timeout is None:
        check()
        return
    errors: list[BaseException] = []
    ended = threading.Event()
    gave_up = threading.Event()
    lock = threading.Lock()

    def run() -> None:
        try:
            check()
        except BaseException as exc:  # handed to the caller, which raises it
            errors.append(exc)
        with lock:
            ended.set()
            close = gave_up.is_set()
        if close:
            driver.close()

    started = time.monotonic()
    threading.Thread(target=run, name="spillover-neo4j-connect", daemon=True).start()
    ended.wait(timeout)
    with lock:
        if not ended.is_set():
            gave_up.set()  # the thread closes the driver when its call ends
            raise FutureTimeout
    if errors:
        if isinstance(errors[0], ServiceUnavailable) and time.monotonic() - started >= timeout:
            # the driver's own connection timeout (the same seconds) gave up on the server
            # just before this wait did: it did not answer within the deadline either
            driver.close()
            raise FutureTimeout
        raise errors[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _day(value: Any) -> date | None:
    """A date as Neo4j gives it: a ``Date``, ISO text or days since ``_EPOCH`` (an int)."""
    if value is None:
        return None
    if isinstance(value, int):
        return _EPOCH + timedelta(days=value)
    if isinstance(value, neo4j.time.Date):
        return value.to_native()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def loan_from(props: Mapping[str, Any]) -> Loan:
    """The :class:`Loan` of a ``Loan`` node's properties."""
    return Loan(
        loan_id=props["id"],
        platform_id=props["platform_id"],
        borrower_id=props["borrower_id"],
        applied_at=_day(props["applied_at"]),  # type: ignore[arg-type]
        status=LoanStatus(props["status"]),
        applicant_phone=props.get("applicant_phone"),
        phone_verified=props.get("phone_verified"),
        amount=props.get("amount"),
        status_at=_day(props.get("status_at")),
        borrower_record=props.get("borrower_record"),
        matched_by=props.get("matched_by"),
    )


def _loans_once() -> Callable[[Mapping[str, Any]], Loan]:
    """:func:`loan_from` for one answer, where a loan comes once per number it names (and
    once more as an own loan): each is built once (every copy read in one transaction)."""
    built: dict[str, Loan] = {}

    def loan_of(props: Mapping[str, Any]) -> Loan:
        loan = built.get(props["id"])
        if loan is None:
            loan = built[props["id"]] = loan_from(props)
        return loan

    return loan_of


def entry_from(props: Mapping[str, Any]) -> Entry:
    """The :class:`Entry` of an ``Entry`` node's properties."""
    return Entry(
        entry_id=props["id"],
        platform_id=props["platform_id"],
        subject_kind=SubjectKind(props["subject_kind"]),
        subject=props["subject"],
        listed_at=_day(props["listed_at"]),  # type: ignore[arg-type]
        stated_reason=props.get("stated_reason"),
        copied_from=props.get("copied_from"),
    )


def record_from(props: Mapping[str, Any]) -> Record:
    """The :class:`Record` of a ``Record`` node's properties."""
    return Record(
        props["id"],
        props["platform_id"],
        props.get("name"),
        props.get("id_number"),
        props.get("phone"),
        _day(props.get("birth_date")),
        props.get("city"),
        props.get("person_id"),
    )


def _strs(values: list[Any]) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _ordinals(days: list[int], missing: np.int64) -> np.ndarray:
    """Days since 1970-01-01 (:data:`MISSING_DAY`: not given) as date ordinals (``missing``)."""
    found = np.asarray(days, dtype=np.int64)
    return np.where(found == MISSING_DAY, missing, found + EPOCH_ORDINAL)


def _checked(values: list[str], kind: type[StrEnum]) -> np.ndarray:
    """``values`` as a column, every distinct one a value of ``kind`` (ValueError if not)."""
    for value in set(values):
        kind(value)  # raises ValueError naming the value, as reading it one by one did
    return _strs(values)


def columns_from_lists(
    lists: Mapping[str, Mapping[str, list[Any]]], sharing: Sequence[Sharing]
) -> Columns:
    """:class:`Columns` from the column reads (:data:`COLUMN_READS`, by name without
    ``columns_``): the same columns as :func:`~spillover.facts.columns.columns_from_facts`
    over the facts they hold, without a Python object per node."""
    periods, loans, links, entries = (
        lists["periods"],
        lists["loans"],
        lists["links"],
        lists["entries"],
    )
    applied = _ordinals(loans["applied"], NEVER)
    status_at = np.asarray(loans["status_at"], dtype=np.int64)
    return Columns(
        person_ids=_strs(lists["people"]["id"]),
        platform_ids=_strs(lists["platforms"]["id"]),
        period_phone=_strs(periods["phone"]),
        period_owner=_strs(periods["owner"]),
        period_verified=np.asarray(periods["verified"], dtype=bool),
        period_since=_ordinals(periods["since"], NEVER),
        period_until=_ordinals(periods["until"], FOREVER),
        loan_ids=_strs(loans["id"]),
        loan_platform=_strs(loans["platform"]),
        loan_borrower=_strs(loans["borrower"]),
        loan_applied=applied,
        loan_known=np.where(status_at == MISSING_DAY, applied, status_at + EPOCH_ORDINAL),
        loan_status=_checked(loans["status"], LoanStatus),
        loan_applicant_phone=_strs(loans["applicant_phone"]),
        loan_phone_verified=np.asarray(loans["phone_verified"], dtype=bool),
        link_loan=_strs(links["loan"]),
        link_phone=_strs(links["phone"]),
        link_role=_checked(links["role"], LinkRole),
        entry_ids=_strs(entries["id"]),
        entry_platform=_strs(entries["platform"]),
        entry_kind=_checked(entries["subject_kind"], SubjectKind),
        entry_subject=_strs(entries["subject"]),
        entry_listed=_ordinals(entries["listed"], NEVER),
        entry_copied_from=_strs(entries["copied_from"]),
        share_from=_strs([s.from_platform for s in sharing]),
        share_to=_strs([s.to_platform for s in sharing]),
        share_since=np.array(
            [NEVER if s.since is None else s.since.toordinal() for s in sharing], dtype=np.int64
        ),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, neo4j.time.Date):
        return value.to_native().isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _entry_key(entry: Entry) -> str:
    return entry.entry_id or ""


class Neo4jBackend:
    """Graph facts from Neo4j. Open with :func:`open_neo4j` or from a driver you own."""

    name = "neo4j"
    round_trips = True

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str = DEFAULT_DATABASE,
        *,
        owns_driver: bool = False,
        timeout: float | None = None,
    ):
        """``timeout``: the deadline of every store call, in seconds (None: none). Past
        it a call raises :class:`~spillover.errors.BackendUnavailable`, whether Neo4j is
        slow, unreachable or hung (a paused server that keeps its connections open
        answers nothing, and the driver has no read timeout of its own): the call is
        waited for in a small pool of threads, and the query also carries the deadline
        as its transaction timeout, so the server drops work nobody waits for."""
        self.driver = driver
        self.database = database
        self.timeout = timeout
        self._owns_driver = owns_driver
        self._sharing: tuple[Sharing, ...] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _within_deadline(self, call: Callable[[], _T], timeout: float, what: str) -> _T:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(DEADLINE_WORKERS, "spillover-neo4j")
            pool = self._pool
        future = pool.submit(call)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()  # still queued: never runs; running: left to finish or fail
            raise BackendUnavailable(f"Neo4j did not answer {what} within {timeout:g} s") from None

    def _read(self, name: str, **params: Any) -> list[neo4j.Record]:
        # No bookmark manager: Neo4j Community is a single instance, where a read
        # always sees every committed write; tracking bookmarks only adds latency.
        timeout = self.timeout
        if timeout is None:
            records, _, _ = self.driver.execute_query(
                cypher(name),
                params,
                database_=self.database,
                routing_=neo4j.RoutingControl.READ,
                bookmark_manager_=None,
            )
            return records

        def run() -> list[neo4j.Record]:
            found, _, _ = self.driver.execute_query(
                neo4j.Query(cypher(name), timeout=timeout),
                params,
                database_=self.database,
                routing_=neo4j.RoutingControl.READ,
                bookmark_manager_=None,
            )
            return found

        return self._within_deadline(run, timeout, f"the query {name!r}")

    def answers(self, timeout: float) -> bool:
        """Whether Neo4j answers ``RETURN 1`` within ``timeout`` seconds (one auto-commit
        query, no retries: a dead pooled connection or a refused new one fails at once)."""

        def ping() -> None:
            with self.driver.session(database=self.database) as session:
                session.run("RETURN 1").consume()

        try:
            self._within_deadline(ping, timeout, "a ping")
        except Exception:
            return False
        return True

    def entries(self, ids: Collection[str]) -> dict[str, Entry]:
        if not ids:
            return {}
        found = (entry_from(r["entry"]) for r in self._read("entries_by_id", ids=list(ids)))
        return {e.entry_id: e for e in found if e.entry_id is not None}

    def iter_entries(self, batch_size: int = 1000) -> Iterator[list[Entry]]:
        after = ""
        while True:
            records = self._read("entries_page", after=after, limit=batch_size)
            if not records:
                return
            batch = [entry_from(r["entry"]) for r in records]
            yield batch
            after = batch[-1].entry_id or ""

    def sharing(self) -> tuple[Sharing, ...]:
        if self._sharing is None:
            self._sharing = tuple(
                Sharing(r["from_platform"], r["to_platform"], _day(r["since"]))
                for r in self._read("sharing")
            )
        return self._sharing

    def names(self, refs: Collection[str]) -> dict[str, str]:
        people, platforms, records, out = [], [], [], {}
        for node in refs:
            kind, ident = split_ref(node)
            if kind == "phone":
                out[node] = display_phone(ident)
            elif kind == "person":
                people.append(ident)
            elif kind == "platform":
                platforms.append(ident)
            elif kind == "record":
                records.append(ident)
        if people or platforms or records:
            record = self._read("names", people=people, platforms=platforms, records=records)[0]
            out.update({ref("person", i): n for i, n in record["people"]})
            out.update({ref("platform", i): n for i, n in record["platforms"]})
            out.update(
                {ref("record", i): record_name(Record(i, "", n)) for i, n in record["records"]}
            )
        return out

    def platform_kinds(self, ids: Collection[str]) -> dict[str, PlatformKind]:
        if not ids:
            return {}
        return {
            r["id"]: PlatformKind(r["kind"] or PlatformKind.OTHER)
            for r in self._read("platform_kinds", ids=list(ids))
        }

    def matches(self, record_ids: Collection[str]) -> dict[str, Match]:
        if not record_ids:
            return {}
        return {
            r["id"]: match_from(r["id"], r["person_id"], r["match"])
            for r in self._read("matches", ids=list(record_ids))
        }

    def record_platforms(self, record_ids: Collection[str]) -> dict[str, str]:
        if not record_ids:
            return {}
        return {
            r["id"]: r["platform_id"] for r in self._read("record_platforms", ids=list(record_ids))
        }

    def matched_records(self, persons: Collection[str]) -> tuple[tuple[Record, Match], ...]:
        if not persons:
            return ()
        found = [
            (record_from(r["record"]), match_from(r["record"]["id"], r["person_id"], r["match"]))
            for r in self._read("matched_records", persons=list(dict.fromkeys(persons)))
        ]
        # in Python's order of the ids, as the embedded backends: Neo4j's own sort compares
        # UTF-16 code units (an id past U+FFFF before one in U+E000..U+FFFF), its index
        # code points, and which one an ORDER BY gets is the planner's choice
        return tuple(sorted(found, key=lambda rm: rm[0].record_id))

    def exists(self, node: str) -> bool:
        kind, ident = split_ref(node)
        return bool(self._read("exists", kind=kind, id=ident)[0]["found"])

    def neighbourhood(
        self, persons: Collection[str], phones: Collection[str], platforms: Collection[str] = ()
    ) -> FrontierFacts:
        record = self._read(
            "neighbourhood",
            persons=list(persons),
            phones=list(phones),
            platforms=list(platforms),
            epoch=_EPOCH,
            **ROLE_PARAMS,
        )[0]
        exp = self._frontier_facts(record)
        names = {ref("person", i): n for i, n in record["people_names"]}
        names.update({ref("platform", i): n for i, n in record["platform_names"]})
        return FrontierFacts(
            exp.periods, exp.own_loans, exp.uses, frozenset(record["covered"]), names
        )

    def expand(
        self, persons: Collection[str], phones: Collection[str], until: date
    ) -> FrontierFacts:
        record = self._read(
            "expand", persons=list(persons), phones=list(phones), until=until, **ROLE_PARAMS
        )[0]
        return self._frontier_facts(record)

    def query(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run the saved query ``cypher/investigate/NAME.cypher`` (read-only) with
        ``params``; dates come back as ISO text."""
        return [
            {k: _plain(r[k]) for k in r.keys()}  # noqa: SIM118 (a Record, not a dict)
            for r in self._read(f"investigate/{name}", **params)
        ]

    def surroundings(self, loans: Collection[str], subjects: Collection[str]) -> Surroundings:
        wanted = [dict(zip(("kind", "id"), split_ref(s), strict=True)) for s in subjects]
        record = self._read(
            "surroundings", loans=list(dict.fromkeys(loans)), subjects=wanted, **ROLE_PARAMS
        )[0]
        loan_of = _loans_once()
        return Surroundings(
            tuple(PhoneUse(u["phone"], u["role"], loan_of(u["loan"])) for u in record["uses"]),
            tuple(sorted((entry_from(e) for e in record["entries"]), key=_entry_key)),
        )

    @staticmethod
    def _frontier_facts(record: neo4j.Record) -> FrontierFacts:
        loan_of = _loans_once()
        return FrontierFacts(
            periods=tuple(
                PhonePeriod(
                    p["phone"],
                    p["owner_id"],
                    bool(p["verified"]),
                    _day(p["since"]),
                    _day(p["until"]),
                )
                for p in record["periods"]
            ),
            own_loans=tuple(loan_of(p) for p in record["own_loans"]),
            uses=tuple(PhoneUse(u["phone"], u["role"], loan_of(u["loan"])) for u in record["uses"]),
        )

    def _pages(self, name: str, key: str, page: int = 10_000) -> Iterator[neo4j.Record]:
        after = ""
        while True:
            records = self._read(name, after=after, limit=page)
            yield from records
            if len(records) < page:
                return
            last = records[-1][key]
            after = last["id"] if isinstance(last, Mapping) else last

    def _column_lists(self, name: str) -> dict[str, list[Any]]:
        """The one record of the column read ``cypher/NAME.cypher``: a list per field,
        each as long as its ``rows`` (a null would have been dropped by ``collect``)."""
        record = self._read(name, epoch=_EPOCH, missing=MISSING_DAY)[0]
        lists = {k: record[k] for k in record.keys() if k != "rows"}  # noqa: SIM118 (a Record)
        short = sorted(k for k, v in lists.items() if len(v) != record["rows"])
        if short:
            raise BackendUnavailable(
                f"Neo4j: {name}: {', '.join(short)} missing on some of {record['rows']} rows"
            )
        return lists

    def columns(self) -> Columns:
        """The whole graph as flat columns: one read per label, each a single record of
        one list per field (only the fields the batch pass uses), the reads run side by
        side (:data:`COLUMN_READS` in :data:`READ_THREADS` threads)."""
        with ThreadPoolExecutor(READ_THREADS, "spillover-columns") as pool:
            sharing = pool.submit(self.sharing)
            records = pool.submit(self._records)
            read = {name: pool.submit(self._column_lists, name) for name in COLUMN_READS}
            got = {name.removeprefix("columns_"): f.result() for name, f in read.items()}
            columns = columns_from_lists(got, sharing.result())
            found, matches = records.result()
        if not found:
            return columns
        return replace(
            columns,
            loan_record=_strs(got["loans"]["borrower_record"]),
            records=found,
            matches=matches,
        )

    def _records(self) -> tuple[dict[str, Record], dict[str, Match]]:
        """The platform records, each with its match (if any), read in keyset pages."""
        records: dict[str, Record] = {}
        matches: dict[str, Match] = {}
        for r in self._pages("export_records", "record"):
            props = r["record"]
            records[props["id"]] = record_from(props)
            if r["person_id"] is not None:
                matches[props["id"]] = match_from(props["id"], r["person_id"], r["match"])
        return records, matches

    def close(self) -> None:
        if self._pool is not None:
            # calls still hung on the server are not waited for
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_driver:
            self.driver.close()


def open_neo4j(settings: Neo4jSettings, *, timeout: float | None = None) -> Neo4jBackend:
    """Connect and return a backend that closes its driver on :meth:`Neo4jBackend.close`;
    ``timeout``: the deadline of every store call (see :class:`Neo4jBackend`)."""
    return Neo4jBackend(
        connect(settings, timeout=timeout), settings.database, owns_driver=True, timeout=timeout
    )
