"""The faster HTTP stack of ``spillover serve``: uvicorn's httptools protocol on uvloop,
with the guarantees of :mod:`spillover.service.httpguard`'s h11 stack.

- :class:`GuardedHttpToolsProtocol`: the header deadline
  (:class:`~spillover.service.httpguard.HeaderDeadline`), the connection cap
  (:func:`~spillover.service.httpguard.refused`) and h11's limit on the size of a
  request's headers on uvicorn's httptools protocol (the request parsed by llhttp, in
  C, instead of h11 in Python);
- :func:`new_event_loop`: a uvloop loop (the event loop and its transports in C) whose
  TCP servers accept as asyncio's do. uvloop's own server (libuv) closes its listening
  socket for good when ``accept()`` fails with an error other than "try again", such as
  running out of file descriptors at the wrong moment; asyncio's logs the failure,
  waits a second and accepts again. :class:`Listener` accepts the asyncio way on the
  uvloop loop, so that a process out of file descriptors keeps its port.

``spillover serve`` uses this stack when uvloop and httptools are installed (the
``serve`` extra installs them; ``--http h11`` keeps the h11 stack).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable
from typing import Any

import uvloop
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .handoff import handoff_server
from .httpguard import MAX_HEAD_BYTES, ConnectionGuard, log

__all__ = [
    "ACCEPT_RETRY_SECONDS",
    "MAX_HEAD_BYTES",
    "GuardedHttpToolsProtocol",
    "GuardedLoop",
    "Listener",
    "OneWriteCycle",
    "new_event_loop",
]

#: seconds the listener waits before it accepts again after ``accept()`` ran out of file
#: descriptors or memory (asyncio's ``ACCEPT_RETRY_DELAY``)
ACCEPT_RETRY_SECONDS = 1.0

#: ``accept()`` errors that mean "out of resources for now": wait, then accept again
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with the header deadline, the connection cap and the
    limit on a request's head of
    :class:`~spillover.service.httpguard.GuardedH11Protocol` (their
    :class:`~spillover.service.httpguard.ConnectionGuard`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting = True  # a request's headers are awaited

    def on_headers_complete(self) -> None:
        """A request's headers are in: no deadline until its answer has been sent. Its
        answer's head goes out with its body (:class:`OneWriteCycle`)."""
        self._awaiting = False
        if self.deadline is not None:
            self.deadline.disarm()
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            # the cycle uvicorn made for this request, as one that writes its answer's
            # head and body together (its ASGI task, created but not yet run, calls
            # the cycle's send through the instance: it gets OneWriteCycle.send)
            self.cycle.__class__ = OneWriteCycle

    def on_response_complete(self) -> None:
        """Arm the header deadline of the next request on a kept-alive connection (unless
        a pipelined request, its headers in already, is being answered)."""
        super().on_response_complete()
        if (
            self.deadline is not None
            and not self.transport.is_closing()
            and self.cycle.response_complete
        ):
            self._awaiting = True
            self.head_bytes = 0
            self.deadline.arm()

    def awaiting_headers(self) -> bool:
        """Whether a request's headers are awaited (none is being answered)."""
        return self._awaiting


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, whose answer's head (status line and headers)
    is written with the first part of its body, in one write, rather than in a write of
    its own: one segment for a whole small answer instead of two, so one ``send`` in
    the server and one wake-up of the client less. The bytes sent are the same."""

    _head = b""

    async def send(self, message: ASGISendEvent) -> None:
        """Send ``message`` as uvicorn does; the head is held until the body's first
        write (or written alone when none follows, as after a ``HEAD`` request)."""
        if message["type"] == "http.response.start" and not self.response_started:
            transport = self.transport
            held = _Held(transport)
            self.transport = held
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._head = b"".join(held.data)
            return
        head = self._head
        if not head:
            await super().send(message)
            return
        self._head = b""
        transport = self.transport
        joined = _Joined(transport, head)
        self.transport = joined
        try:
            await super().send(message)
        finally:
            self.transport = transport
            if joined.head and not self.disconnected:
                transport.write(joined.head)  # no body written: the head alone (HEAD)


class _Held(asyncio.Transport):
    """A transport that keeps what is written (an answer's head); closing it is an
    error (the start of an answer never closes the connection)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.transport = transport
        self.data: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data.append(bytes(data))

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class _Joined(asyncio.Transport):
    """A transport whose first write is prefixed with ``head``; closing it closes the
    connection (after the head, if nothing was written)."""

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        super().__init__()
        self.transport = transport
        self.head = head

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head, self.head = self.head, b""
        self.transport.write(head + data if head else data)

    def close(self) -> None:
        head, self.head = self.head, b""
        if head:
            self.transport.write(head)
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class Listener(asyncio.AbstractServer):
    """A TCP server on a uvloop loop that accepts as asyncio's does, but one connection
    at a time: when ``accept()`` runs out of file descriptors or memory it logs it,
    stops accepting for :data:`ACCEPT_RETRY_SECONDS` and then accepts again (the waiting
    connections stay in the kernel's backlog). Each accepted socket becomes a uvloop
    transport with ``protocol_factory()``'s protocol.

    One connection each time a socket is readable (asyncio's loop takes up to
    ``backlog``, and usually finds one): the socket stays readable while connections
    wait, so the next turn of the loop takes the next one. With ``--workers N`` the
    workers do not listen: the supervisor accepts and hands the connections over
    (:mod:`spillover.service.handoff`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._sockets = sockets
        self._factory = protocol_factory
        self._backlog = backlog
        self._serving = False
        self._closed = asyncio.Event()
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (none once closed)."""
        return () if self._closed.is_set() else tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server accepts on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the server accepts connections."""
        return self._serving

    async def start_serving(self) -> None:
        """Listen and accept (done already by :meth:`GuardedLoop.create_server`)."""
        self.start()

    def start(self) -> None:
        """Listen on the sockets and accept their connections."""
        if self._serving or self._closed.is_set():
            return
        self._serving = True
        for sock in self._sockets:
            sock.setblocking(False)
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        """Stop accepting and close the listening sockets (open connections stay)."""
        if self._closed.is_set():
            return
        self._serving = False
        for sock in self._sockets:
            if sock.fileno() != -1:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        """Return once :meth:`close` has been called."""
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Accept until the server is closed."""
        self.start()
        await self._closed.wait()

    def _accept(self, sock: socket.socket) -> None:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # nothing to accept now (another worker took it)
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise  # the loop logs it; the socket stays readable and is tried again
            log.warning("accept() failed: out of file descriptors; accepting again in 1 s")
            self._loop.remove_reader(sock.fileno())
            self._loop.call_later(ACCEPT_RETRY_SECONDS, self._resume, sock)
            return
        conn.setblocking(False)
        task = self._loop.create_task(self._connect(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def _resume(self, sock: socket.socket) -> None:
        if self._serving and sock.fileno() != -1:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except Exception as exc:  # one connection failed; the server goes on
            log.warning("connection not set up: %s", type(exc).__name__)
            conn.close()


class GuardedLoop(uvloop.Loop):
    """A uvloop loop whose plain TCP servers are :class:`Listener` (TLS or other options:
    uvloop's own server)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **kwargs: Any,
    ) -> asyncio.AbstractServer:
        """A TCP server on ``host``:``port`` or on the bound socket ``sock``; in a worker
        behind the supervisor's dispatcher, a
        :class:`~spillover.service.handoff.HandoffServer` in place of a listener on
        ``sock``."""
        if sock is not None and ssl is None:
            handed = handoff_server(self, protocol_factory)
            if handed is not None:
                return handed
        if ssl is not None or kwargs:
            uvloops: Any = super()  # its overloads take host and port, or sock
            server: asyncio.AbstractServer = await uvloops.create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **kwargs
            )
            return server
        sockets = [sock] if sock is not None else _bind(host, port)
        listener = Listener(self, sockets, protocol_factory, backlog)
        listener.start()
        return listener


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A :class:`GuardedLoop` (uvicorn's loop factory: ``loop="spillover.service.uvhttp:new_event_loop"``)."""
    return GuardedLoop()


def _bind(host: str | None, port: int | None) -> list[socket.socket]:
    """Sockets bound to every address ``host`` names (all interfaces when None or
    empty), as asyncio binds them: SO_REUSEADDR, IPv6 sockets IPv6 only."""
    infos = socket.getaddrinfo(
        host or None,
        port,
        family=socket.AF_UNSPEC,
        type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in _unique(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address!r}: "
                    f"{(exc.strerror or '').lower()}",
                ) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _unique(infos: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    seen: set[tuple[Any, Any]] = set()
    out = []
    for info in infos:
        key = (info[0], info[4])
        if key not in seen:
            seen.add(key)
            out.append(info)
    return out
