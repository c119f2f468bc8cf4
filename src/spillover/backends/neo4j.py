"""The Neo4j backend: graph facts from a Neo4j 5 database through Cypher.

Reads go through ``driver.execute_query`` (managed transactions, retried on
transient errors); every statement lives in ``spillover/cypher/*.cypher``.
Scoring stays in the core: this class only answers the
:class:`~spillover.backends.base.GraphBackend` questions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import neo4j
from neo4j.exceptions import AuthError, ClientError, Neo4jError, ServiceUnavailable

from ..errors import BackendUnavailable
from ..model import (
    Entry,
    Expansion,
    LinkRole,
    Loan,
    LoanLink,
    LoanStatus,
    PhonePeriod,
    PhoneUse,
    Sharing,
    SubjectKind,
    ref,
    split_ref,
)
from ..phones import display_phone
from ..queries import cypher

if TYPE_CHECKING:
    from ..kernel import Columns

DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"
#: URI schemes of the Bolt protocol, the only one spillover speaks (the driver's
#: experimental http(s) query API is not supported).
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


@dataclass(frozen=True, slots=True)
class Neo4jSettings:
    """Where the database is. ``from_env`` reads NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE."""

    uri: str
    user: str = DEFAULT_USER
    password: str = ""
    database: str = DEFAULT_DATABASE

    @classmethod
    def from_env(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Neo4jSettings | None:
        env = os.environ if env is None else env
        uri = uri or env.get("NEO4J_URI")
        if not uri:
            return None
        return cls(
            uri=uri,
            user=user or env.get("NEO4J_USER", DEFAULT_USER),
            password=password if password is not None else env.get("NEO4J_PASSWORD", ""),
            database=database or env.get("NEO4J_DATABASE", DEFAULT_DATABASE),
        )


def connect(settings: Neo4jSettings) -> neo4j.Driver:
    """A driver that has answered once; a down server or bad credentials give one clear line."""
    scheme, sep, _ = settings.uri.partition("://")
    if not sep or scheme.lower() not in BOLT_SCHEMES:
        raise BackendUnavailable(
            f"bad Neo4j URI {settings.uri!r}: give a Bolt URI such as bolt://localhost:7687 "
            f"(schemes: {', '.join(BOLT_SCHEMES)})"
        )
    try:
        driver = neo4j.GraphDatabase.driver(settings.uri, auth=(settings.user, settings.password))
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise BackendUnavailable(f"bad Neo4j URI {settings.uri!r}: {exc}") from None
    try:
        driver.verify_connectivity()
        driver.execute_query("RETURN 1", database_=settings.database)
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
    except (ClientError, Neo4jError, OSError) as exc:
        driver.close()
        raise BackendUnavailable(f"Neo4j at {settings.uri}: {_first_line(exc)}") from None
    return driver


class _DriverLog(logging.Handler):
    """The driver's log records as ONE line each on a sink.

    Server notifications are dropped (the queries are written to raise none; what is
    left, such as "label does not exist" on an empty database, says nothing a user
    can act on), and a transaction retry (a deadlock between concurrent ingest
    batches, a server restarting) becomes one line with the error's code, not a dump.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("neo4j.notifications"):
            return
        if str(record.msg).startswith("Transaction failed and will be retried") and record.args:
            delay, error = (*tuple(record.args), None, None)[:2]  # type: ignore[arg-type]
            line = f"Neo4j transaction retried in {float(delay or 0):.1f}s ({_reason(error)})"
        else:
            try:
                text = record.getMessage()
            except Exception:  # a malformed record must not break the command
                text = str(record.msg)
            line = f"Neo4j driver: {text}"
        line = " ".join(line.split())
        self.sink(line if len(line) <= 240 else line[:237] + "...")


def _reason(error: object) -> str:
    code = getattr(error, "code", None)
    if code:
        return str(code)
    return type(error).__name__ if isinstance(error, BaseException) else str(error)


def route_driver_logs(sink: Callable[[str], None]) -> None:
    """Send the driver's warnings to ``sink`` as one line each (see :class:`_DriverLog`)."""
    logger = logging.getLogger("neo4j")
    for handler in list(logger.handlers):
        if isinstance(handler, _DriverLog):
            logger.removeHandler(handler)
    logger.addHandler(_DriverLog(sink))
    logger.propagate = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, neo4j.time.Date):
        return value.to_native()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def loan_from(props: Mapping[str, Any]) -> Loan:
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
    )


def entry_from(props: Mapping[str, Any]) -> Entry:
    return Entry(
        entry_id=props["id"],
        platform_id=props["platform_id"],
        subject_kind=SubjectKind(props["subject_kind"]),
        subject=props["subject"],
        listed_at=_day(props["listed_at"]),  # type: ignore[arg-type]
        stated_reason=props.get("stated_reason"),
        copied_from=props.get("copied_from"),
    )


class Neo4jBackend:
    """Graph facts from Neo4j. Open with :func:`open_neo4j` or from a driver you own."""

    name = "neo4j"
    round_trips = True

    def __init__(
        self, driver: neo4j.Driver, database: str = DEFAULT_DATABASE, *, owns_driver: bool = False
    ):
        self.driver = driver
        self.database = database
        self._owns_driver = owns_driver
        self._sharing: tuple[Sharing, ...] | None = None

    def _read(self, name: str, **params: Any) -> list[neo4j.Record]:
        # No bookmark manager: Neo4j Community is a single instance, where a read
        # always sees every committed write; tracking bookmarks only adds latency.
        records, _, _ = self.driver.execute_query(
            cypher(name),
            params,
            database_=self.database,
            routing_=neo4j.RoutingControl.READ,
            bookmark_manager_=None,
        )
        return records

    def entries(self, ids: Collection[str]) -> dict[str, Entry]:
        if not ids:
            return {}
        return {
            e.entry_id: e
            for e in (entry_from(r["entry"]) for r in self._read("entries_by_id", ids=list(ids)))
        }  # type: ignore[misc]

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
        people, platforms, out = [], [], {}
        for node in refs:
            kind, ident = split_ref(node)
            if kind == "phone":
                out[node] = display_phone(ident)
            elif kind == "person":
                people.append(ident)
            elif kind == "platform":
                platforms.append(ident)
        if people or platforms:
            record = self._read("names", people=people, platforms=platforms)[0]
            out.update({ref("person", i): n for i, n in record["people"]})
            out.update({ref("platform", i): n for i, n in record["platforms"]})
        return out

    def exists(self, node: str) -> bool:
        kind, ident = split_ref(node)
        return bool(self._read("exists", kind=kind, id=ident)[0]["found"])

    def neighbourhood(self, persons: Collection[str], phones: Collection[str]) -> Expansion:
        record = self._read("neighbourhood", persons=list(persons), phones=list(phones))[0]
        exp = self._expansion(record)
        return Expansion(exp.periods, exp.own_loans, exp.uses, frozenset(record["covered"]))

    def expand(self, persons: Collection[str], phones: Collection[str], until: date) -> Expansion:
        record = self._read("expand", persons=list(persons), phones=list(phones), until=until)[0]
        return self._expansion(record)

    @staticmethod
    def _expansion(record: neo4j.Record) -> Expansion:
        return Expansion(
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
            own_loans=tuple(loan_from(p) for p in record["own_loans"]),
            uses=tuple(
                PhoneUse(u["phone"], u["role"], loan_from(u["loan"])) for u in record["uses"]
            ),
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

    def columns(self) -> Columns:
        """The whole graph as flat columns, read in keyset pages (no per-entry round trip)."""
        from ..kernel import columns_from_facts

        people = [r["id"] for r in self._pages("export_people", "id")]
        platforms = [r["id"] for r in self._read("export_platforms")]
        periods = [
            PhonePeriod(r["phone"], owner, bool(verified), _day(since), _day(until))
            for r in self._pages("export_phones", "phone")
            for owner, verified, since, until in r["periods"]
        ]
        loans: list[Loan] = []
        links: list[LoanLink] = []
        for r in self._pages("export_loans", "loan"):
            loan = loan_from(r["loan"])
            loans.append(loan)
            links.extend(
                LoanLink(loan.loan_id, phone, LinkRole(role)) for phone, role in r["links"]
            )
        entries = [e for batch in self.iter_entries(10_000) for e in batch]
        return columns_from_facts(people, platforms, periods, loans, links, entries, self.sharing())

    def close(self) -> None:
        if self._owns_driver:
            self.driver.close()


def open_neo4j(settings: Neo4jSettings) -> Neo4jBackend:
    """Connect and return a backend that closes its driver on :meth:`Neo4jBackend.close`."""
    return Neo4jBackend(connect(settings), settings.database, owns_driver=True)
