"""How ``spillover serve --workers N`` spreads its connections over its workers.

uvicorn's own supervisor binds one listening socket and lets every worker accept on it:
which worker takes a connection is then the kernel's and the scheduler's choice, and
a few kept-alive clients that connect at once often all land on the worker that woke
first (on a 2-core machine with the clients on it, one worker took all four clients
and the other idled: docs/benchmarks.md). Here the supervisor accepts instead, and
hands each new connection (its file descriptor, over a Unix socket) to the worker
with the fewest open connections, the least recently chosen among equals:

- :class:`Dispatcher`, in the supervisor: a thread that accepts on the listening
  socket and on a private Unix socket (``handoff.sock`` in a directory only the
  server's user can open, and only its user's processes are let in) where each worker
  connects once it is serving; it sends the connections over those channels and
  counts each worker's open ones (a worker writes a byte for each one closed);
- :class:`HandoffServer`, in a worker: the server uvicorn starts in place of a
  listener (:func:`handoff_server`, called by the event loops' ``create_server``,
  :class:`HandoffLoop` on asyncio and ``uvhttp.GuardedLoop`` on uvloop): it receives
  the connections and runs the HTTP protocol on them as a listener would;
- :func:`run_workers`: uvicorn's supervisor (worker start, restart, health check,
  signals) with the dispatcher started before the workers and stopped before they are.

Until the first worker is serving the socket is not listened on (a connection is
refused, as with uvicorn's supervisor); while no worker is serving (all restarting),
new connections wait in the kernel's backlog. Only on systems that pass file
descriptors (:func:`available`: not Windows); elsewhere uvicorn's supervisor as is.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import Multiprocess

__all__ = [
    "HANDOFF_ENV",
    "Dispatcher",
    "HandoffLoop",
    "HandoffServer",
    "available",
    "connection_closed",
    "handoff_server",
    "new_selector_loop",
    "run_workers",
]

#: the environment variable that gives the workers the path of the dispatcher's socket
HANDOFF_ENV = "SPILLOVER_HANDOFF"

#: seconds the dispatcher waits before it accepts again after ``accept()`` ran out of
#: file descriptors or memory (as the workers' listeners, uvhttp.ACCEPT_RETRY_SECONDS)
RETRY_SECONDS = 1.0

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

log = logging.getLogger("spillover.service.app")  # the service's logger (spillover.service.logs)


def available() -> bool:
    """Whether this system can hand connections to workers (Unix sockets that carry file
    descriptors)."""
    return sys.platform != "win32" and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


# ---------------------------------------------------------------------------
# the supervisor's side
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    """A worker's channel, its open connections as the dispatcher counts them, and when
    it was last chosen."""

    channel: socket.socket
    open: int = 0
    chosen: int = 0


class Dispatcher:
    """Accepts on ``listener`` and hands each connection to the worker with the fewest
    open connections (see the module's docstring). :meth:`start` runs it in a thread,
    :meth:`stop` ends it; :attr:`path` is the socket the workers connect to."""

    def __init__(self, listener: socket.socket, backlog: int = 2048) -> None:
        self.listener = listener
        self.backlog = backlog
        self._dir = tempfile.mkdtemp(prefix="spillover-serve-")  # 0700: the user's only
        self.path = os.path.join(self._dir, "handoff.sock")
        self._rendezvous = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._rendezvous.bind(self.path)
        self._rendezvous.listen(64)
        self._rendezvous.setblocking(False)
        self._wake_read, self._wake = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._rendezvous, selectors.EVENT_READ, self._worker_arrives)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._workers: dict[socket.socket, _Worker] = {}
        self._listening = False
        self._accepting = False
        self._resume_at: float | None = None
        self._turn = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spillover-handoff", daemon=True)

    def start(self) -> None:
        """Start the dispatcher's thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and handing over (the listening socket stays open: connections
        that arrive meanwhile wait in its backlog), and close the workers' channels."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.send(b"x")
        if self._thread.is_alive():
            self._thread.join(10)
        for worker in self._workers.values():
            worker.channel.close()
        self._workers.clear()
        self._selector.close()
        for sock in (self._rendezvous, self._wake_read, self._wake):
            sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            timeout = None
            if self._resume_at is not None:
                timeout = max(0.0, self._resume_at - time.monotonic())
                if timeout == 0.0:
                    self._resume_at = None
                    self._accept_while_served()
                    continue
            for key, _ in self._selector.select(timeout):
                if key.data is None or self._stopping.is_set():
                    continue
                try:
                    key.data(key.fileobj)
                except Exception as exc:  # the dispatcher goes on; the failure is logged
                    log.warning("connection hand-off failed: %s", type(exc).__name__)

    def _accept_while_served(self) -> None:
        """Accept while a worker is serving (and not paused after running out of file
        descriptors); listen once the first worker serves."""
        wanted = bool(self._workers) and self._resume_at is None
        if wanted and not self._listening:
            self.listener.setblocking(False)
            self.listener.listen(self.backlog)
            self._listening = True
        if wanted != self._accepting:
            if wanted:
                self._selector.register(self.listener, selectors.EVENT_READ, self._client_arrives)
            else:
                self._selector.unregister(self.listener)
            self._accepting = wanted

    def _worker_arrives(self, _: object) -> None:
        try:
            channel, _addr = self._rendezvous.accept()
        except OSError:
            return
        if not _same_user(channel):
            channel.close()
            return
        channel.setblocking(False)
        self._workers[channel] = _Worker(channel)
        self._selector.register(channel, selectors.EVENT_READ, self._worker_reports)
        self._accept_while_served()

    def _worker_reports(self, channel: object) -> None:
        assert isinstance(channel, socket.socket)
        try:
            data = channel.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        worker = self._workers.get(channel)
        if worker is None:
            return
        if data:
            worker.open = max(0, worker.open - len(data))  # a byte per closed connection
        else:
            self._drop(worker)  # the worker stopped serving, or died

    def _drop(self, worker: _Worker) -> None:
        self._selector.unregister(worker.channel)
        del self._workers[worker.channel]
        worker.channel.close()
        self._accept_while_served()

    def _client_arrives(self, _: object) -> None:
        try:
            client, _addr = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            log.warning("accept() failed: out of file descriptors; accepting again in 1 s")
            self._resume_at = time.monotonic() + RETRY_SECONDS
            self._accept_while_served()
            return
        with client:
            self._hand_over(client)

    def _hand_over(self, client: socket.socket) -> None:
        """Send ``client`` to the worker with the fewest open connections that takes it
        (one whose channel is full is passed over); close it if none does."""
        for worker in sorted(self._workers.values(), key=lambda w: (w.open, w.chosen)):
            try:
                socket.send_fds(worker.channel, [b"c"], [client.fileno()])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._drop(worker)
                continue
            self._turn += 1
            worker.open += 1
            worker.chosen = self._turn
            return
        log.warning("connection closed: no worker could take it")


def _same_user(channel: socket.socket) -> bool:
    """Whether the process at the other end of ``channel`` runs as this one's user (where
    the system says: Linux's ``SO_PEERCRED``; elsewhere the directory's mode decides)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    _pid, uid, _gid = struct.unpack("3i", channel.getsockopt(socket.SOL_SOCKET, option, 12))
    return bool(uid == os.getuid())


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, which stops the dispatcher before it stops the workers."""

    def __init__(self, config: Config, sockets: list[socket.socket], dispatcher: Dispatcher):
        super().__init__(config, sockets)
        self.dispatcher = dispatcher

    def terminate_all(self) -> None:
        """Stop handing connections over, then stop the workers (each answers what it has)."""
        self.dispatcher.stop()
        super().terminate_all()


def run_workers(config: Config) -> None:
    """Run ``config.workers`` uvicorn workers behind a :class:`Dispatcher` until SIGINT or
    SIGTERM (what ``uvicorn.run`` does with ``workers > 1``, the dispatcher added)."""
    sock = config.bind_socket()
    dispatcher = Dispatcher(sock, config.backlog)
    os.environ[HANDOFF_ENV] = dispatcher.path
    try:
        dispatcher.start()
        _Supervisor(config, [sock], dispatcher).run()
    except KeyboardInterrupt:
        pass
    finally:
        dispatcher.stop()
        os.environ.pop(HANDOFF_ENV, None)
        sock.close()


# ---------------------------------------------------------------------------
# a worker's side
# ---------------------------------------------------------------------------

_serving: list[HandoffServer] = []  # this process's hand-off server, while it serves


class HandoffServer(asyncio.AbstractServer):
    """A worker's server that takes its connections from the supervisor's
    :class:`Dispatcher` over the Unix socket at ``path`` (in place of a listener): each
    one becomes a transport on ``loop`` with ``protocol_factory()``'s protocol.
    :func:`connection_closed` tells the dispatcher when one closes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: str,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._channel.connect(path)
        self._channel.setblocking(False)
        self._parent = os.getppid()  # the supervisor
        self._closed = asyncio.Event()
        self._unsent = 0
        self._connecting: set[asyncio.Task[None]] = set()
        loop.add_reader(self._channel.fileno(), self._receive)
        _serving[:] = [self]

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """No listening socket (the supervisor's is listened on by the dispatcher)."""
        return ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the connections run on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether connections are taken."""
        return not self._closed.is_set()

    async def start_serving(self) -> None:
        """Nothing to do: connections are taken from the start."""

    async def serve_forever(self) -> None:
        """Take connections until the server is closed."""
        await self._closed.wait()

    def close(self) -> None:
        """Take no more connections (the dispatcher sees the channel close; connections
        sent but not yet taken are closed with it). Open connections stay. When the
        supervisor closes the channel because it was killed (the worker's parent
        changed), the worker stops as on SIGTERM."""
        if self._closed.is_set():
            return
        self._loop.remove_reader(self._channel.fileno())
        self._channel.close()
        self._closed.set()
        if _serving and _serving[0] is self:
            _serving.clear()

    async def wait_closed(self) -> None:
        """Return once :meth:`close` has been called."""
        await self._closed.wait()

    def closed_one(self) -> None:
        """Tell the dispatcher that a connection it sent has closed (a byte; written with
        the next one when the channel is full)."""
        self._unsent += 1
        try:
            sent = self._channel.send(b"x" * self._unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()  # the supervisor is gone
            return
        self._unsent -= sent

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._channel, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:
                self.close()
                self._watch_parent()
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                task = self._loop.create_task(self._connect(conn))
                self._connecting.add(task)
                task.add_done_callback(self._connecting.discard)

    def _watch_parent(self) -> None:
        """Once the channel is closed: when the supervisor is gone (killed, the worker's
        parent changed), no connection comes any more, so finish those open and exit,
        as on SIGTERM. (Its end may close a moment before the worker is handed to a new
        parent: look again every second; on an orderly stop SIGTERM comes anyway.)"""
        if os.getppid() != self._parent:
            log.warning("the supervisor is gone: stopping")
            signal.raise_signal(signal.SIGTERM)
        else:
            self._loop.call_later(1.0, self._watch_parent)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except Exception as exc:  # one connection failed; the server goes on
            log.warning("connection not set up: %s", type(exc).__name__)
            conn.close()
            self.closed_one()


def handoff_server(
    loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.BaseProtocol]
) -> HandoffServer | None:
    """A :class:`HandoffServer` when this process is a worker behind a
    :class:`Dispatcher` (:data:`HANDOFF_ENV` is set), else None (listen as usual)."""
    path = os.environ.get(HANDOFF_ENV)
    return HandoffServer(loop, path, protocol_factory) if path else None


def connection_closed() -> None:
    """A connection of this process has closed: tell the dispatcher, if this process
    takes its connections from one (the HTTP protocols call it when a connection is
    lost, ``httpguard.ConnectionGuard``)."""
    if _serving:
        _serving[0].closed_one()


class HandoffLoop(asyncio.SelectorEventLoop):
    """asyncio's loop whose TCP server is a :class:`HandoffServer` in a worker behind a
    :class:`Dispatcher` (the h11 stack's loop, ``spillover serve --http h11``)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        ssl: object = None,
        **kwargs: object,
    ) -> asyncio.AbstractServer:
        """A :class:`HandoffServer` in place of a listener on ``sock`` when there is a
        dispatcher; otherwise asyncio's server."""
        if sock is not None and ssl is None:
            server = handoff_server(self, protocol_factory)
            if server is not None:
                return server
        loops: object = super()  # its overloads take host and port, or sock
        made: asyncio.AbstractServer = await loops.create_server(  # type: ignore[attr-defined]
            protocol_factory, host, port, sock=sock, ssl=ssl, **kwargs
        )
        return made


def new_selector_loop() -> asyncio.AbstractEventLoop:
    """A :class:`HandoffLoop` (uvicorn's loop factory for the h11 stack)."""
    return HandoffLoop()
