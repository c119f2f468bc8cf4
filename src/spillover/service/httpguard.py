"""What keeps ``spillover serve`` answering under slow, idle or too many connections.

- :class:`GuardedH11Protocol`: uvicorn's HTTP/1.1 protocol with a deadline for a
  request's headers (:class:`HeaderDeadline`: from the connection's start, or from the
  end of the previous answer on a kept-alive connection; bytes trickling in do not
  extend it) and a cap on open connections (:func:`refused`: one over it is answered
  503 and closed at once, before the process runs out of file descriptors and
  ``accept()`` starts failing) and a limit on a request's line and headers
  (:data:`MAX_HEAD_BYTES`: 400 and closed, however they arrive); the same guard on
  httptools and uvloop is :mod:`spillover.service.uvhttp`'s;
- :class:`RateLimit`: a logging filter that lets the same message through a few times a
  minute and then counts what it held back, so that a storm of failing connections
  cannot flood the log.

The body deadline is the service's (:class:`spillover.service.gate.Gate`); the idle
keep-alive deadline is uvicorn's ``timeout_keep_alive``. The limits come from the
environment variable :data:`LIMITS_ENV` (``spillover serve`` sets it, so every worker
process reads the same). It needs the optional extra ``spillover[serve]``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Sized
from dataclasses import asdict, dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .handoff import connection_closed

__all__ = [
    "LIMITS_ENV",
    "MAX_HEAD_BYTES",
    "ConnectionGuard",
    "GuardedH11Protocol",
    "HeaderDeadline",
    "HttpLimits",
    "RateLimit",
    "connection_cap",
    "limits_and_cap",
    "refused",
]

#: the environment variable ``spillover serve`` hands the connection limits in
LIMITS_ENV = "SPILLOVER_HTTP_LIMITS"

#: bytes of a request line and headers at most (h11's default limit on an incomplete
#: head; :class:`ConnectionGuard` applies it to every head, on both stacks)
MAX_HEAD_BYTES = 16 * 1024

log = logging.getLogger("spillover.service.app")  # the service's logger (spillover.service.logs)


@dataclass(frozen=True)
class HttpLimits:
    """Connection limits: seconds for a request's headers, open connections at most."""

    header_timeout: float = 10.0
    max_connections: int = 1000

    def to_env(self) -> str:
        """The limits as the value of :data:`LIMITS_ENV`."""
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> HttpLimits:
        """The limits :data:`LIMITS_ENV` holds (the defaults when it is not set)."""
        raw = os.environ.get(LIMITS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def connection_cap(wanted: int) -> int:
    """``wanted``, but at most half the process's soft limit of open files: the other
    half stays for the Neo4j driver's connections, the logs and the listening socket."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft // 2))


_REFUSED_BODY = b'{"detail":"too many open connections"}\n'
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_REFUSED_BODY), _REFUSED_BODY)
)


@functools.cache
def limits_and_cap() -> tuple[HttpLimits, int]:
    """The limits of :data:`LIMITS_ENV` and the connection cap they give (read once per
    process: every worker reads the same)."""
    limits = HttpLimits.from_env()
    return limits, connection_cap(limits.max_connections)


def refused(connections: Sized, transport: asyncio.Transport) -> bool:
    """Whether the connection just counted in ``connections`` is over the cap: then it
    is answered 503 and closed at once."""
    if len(connections) <= limits_and_cap()[1]:
        return False
    log.warning("connection refused: too many open connections")
    transport.write(_REFUSED)
    transport.close()
    return True


class HeaderDeadline:
    """A connection's deadline for a request's headers: :meth:`arm` when the connection
    starts and when an answer ends; when it passes while ``waiting()`` (the headers of
    a request are still awaited), the connection is closed. Bytes trickling in do not
    extend it."""

    __slots__ = ("_handle", "_loop", "_transport", "_waiting")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.BaseTransport,
        waiting: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._waiting = waiting
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start the deadline over, from now."""
        self.disarm()
        timeout = limits_and_cap()[0].header_timeout
        self._handle = self._loop.call_later(timeout, self._passed)

    def disarm(self) -> None:
        """No deadline (a request's headers are in, or the connection is gone)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _passed(self) -> None:
        self._handle = None
        # still waiting for (the rest of) a request line and its headers: close; a
        # request being answered is not affected
        if self._waiting() and not self._transport.is_closing():
            log.warning("connection closed: request headers not received in time")
            self._transport.close()


class ConnectionGuard(asyncio.Protocol):
    """The connection cap, the header deadline and the limit on a request's head of a
    uvicorn HTTP protocol, as a mixin placed before it among the bases
    (``class P(ConnectionGuard, H11Protocol)``): a connection over the cap is refused
    (:func:`refused`), the others get a :class:`HeaderDeadline`, armed when the
    connection is made and disarmed when it is lost; a request line and headers over
    ``max_head`` bytes (:data:`MAX_HEAD_BYTES`, or uvicorn's
    ``h11_max_incomplete_event_size``) are answered 400 and the connection closed,
    however they arrive (:meth:`data_received`). The protocol says when a request's
    headers are awaited (:meth:`awaiting_headers`), re-arms :attr:`deadline` and sets
    :attr:`head_bytes` to 0 after each answer."""

    # what uvicorn's protocols (H11Protocol, HttpToolsProtocol) set in __init__
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    transport: asyncio.Transport
    logger: logging.Logger
    config: Any
    send_400_response: Callable[[str], None]
    #: the header deadline (None: the connection was refused, or not made yet)
    deadline: HeaderDeadline | None = None
    #: bytes of a request line and headers at most
    max_head: int = MAX_HEAD_BYTES
    #: bytes of the awaited request's head received so far (the head still incomplete)
    head_bytes: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wanted = self.config.h11_max_incomplete_event_size
        if wanted is not None:
            self.max_head = wanted

    def data_received(self, data: bytes) -> None:
        """Parse ``data``. While a request's head is awaited, no more than the bytes it
        may still take are parsed first: if it is not complete within them it is too
        long, answered 400 and the connection closed (h11 limits only a head still
        incomplete in its buffer, llhttp none: a long head that arrived whole in one
        read was taken); else the rest is parsed."""
        awaiting = self.awaiting_headers()
        room = self.max_head - self.head_bytes
        if awaiting and len(data) > room:
            if room > 0:
                super().data_received(data[:room])
            if self.transport.is_closing():
                return
            if self.awaiting_headers():
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
                return
            data = data[room:]
            awaiting = False
        super().data_received(data)
        if awaiting and self.awaiting_headers() and not self.transport.is_closing():
            self.head_bytes += len(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse a connection over the cap; arm the header deadline of the others."""
        super().connection_made(transport)
        if refused(self.connections, transport):
            return
        self.deadline = HeaderDeadline(self.loop, transport, self.awaiting_headers)
        self.deadline.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Disarm the header deadline; tell the supervisor's dispatcher, if the connection
        came from one (:func:`~spillover.service.handoff.connection_closed`)."""
        if self.deadline is not None:
            self.deadline.disarm()
        super().connection_lost(exc)
        connection_closed()

    def awaiting_headers(self) -> bool:
        """Whether a request's headers are awaited (the deadline closes the connection
        only then)."""
        raise NotImplementedError


class GuardedH11Protocol(ConnectionGuard, H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (see the
    module's docstring and :class:`ConnectionGuard`)."""

    def on_response_complete(self) -> None:
        """Arm the header deadline of the next request on a kept-alive connection."""
        self.head_bytes = 0
        super().on_response_complete()
        if self.deadline is not None and not self.transport.is_closing():
            # the next request's headers: from the end of this answer on
            self.deadline.arm()

    def awaiting_headers(self) -> bool:
        """Whether h11 waits for a request (its client's state is IDLE)."""
        return self.conn.their_state is h11.IDLE


class RateLimit(logging.Filter):
    """Let each message (by logger and message template) through at most ``burst`` times
    per ``window`` seconds; the next one let through carries ``suppressed``: how many
    were held back meanwhile. The service's own JSON lines (requests, start, stop) are
    never held back."""

    def __init__(self, burst: int = 5, window: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is let through (see the class's docstring)."""
        if isinstance(record.msg, str) and record.msg.startswith("{"):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            start, passed, held = self._seen.get(key, (now, 0, 0))
            if now - start >= self.window:
                start, passed = now, 0
            if passed >= self.burst:
                self._seen[key] = (start, passed, held + 1)
                return False
            self._seen[key] = (start, passed + 1, 0)
        if held:
            record.suppressed = held
        return True
