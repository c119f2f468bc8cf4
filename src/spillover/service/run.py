"""Running the service: :func:`serve` starts uvicorn's workers, each of which builds its
application with :func:`app_from_env` from the configuration left in the environment."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import SpilloverError
from . import handoff
from .app import create_app
from .config import CONFIG_ENV, ServeConfig
from .httpguard import LIMITS_ENV, GuardedH11Protocol, HttpLimits, RateLimit
from .logs import LOGGER, JsonLines, JsonLinesHandler
from .shortcut import Front

__all__ = [
    "APP",
    "HTTP_STACKS",
    "WORKER_HEALTHCHECK_SECONDS",
    "ServeConfig",
    "app_from_env",
    "configure_logging",
    "http_stack",
    "serve",
]

#: the HTTP stacks ``serve`` can run on: ``httptools`` (on uvloop), ``h11`` (on asyncio),
#: ``auto`` (httptools when uvloop and httptools are installed, else h11)
HTTP_STACKS = ("auto", "httptools", "h11")

#: the application uvicorn's workers make (a factory, uvicorn's ``factory=True``)
APP = "spillover.service.run:app_from_env"

#: seconds a uvicorn worker may take to answer its supervisor's ping (``--workers N``)
WORKER_HEALTHCHECK_SECONDS = 60


def app_from_env() -> Front:
    """The application of one uvicorn worker, from the configuration ``spillover serve``
    left in the environment (uvicorn's ``factory``): :func:`create_app`'s, checks let
    in at its gate (:class:`~spillover.service.shortcut.Front`)."""
    configure_logging()
    config = ServeConfig.from_env(os.environ[CONFIG_ENV])
    return Front(create_app(config.open_graph, config))


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    graceful_seconds: int = 30,
    neo4j_password: str | None = None,
    http: str = "auto",
) -> None:
    """Run the service until SIGINT or SIGTERM; then stop taking connections, answer the
    requests in flight (up to ``graceful_seconds``) and close the graph.

    ``neo4j_password`` (not part of the configuration, which the workers' environment
    shows) is handed to the workers as NEO4J_PASSWORD, beside it; without it they read
    the NEO4J_PASSWORD they inherit. ``http``: the HTTP stack (:data:`HTTP_STACKS`,
    :func:`http_stack`). A check log that would change the data folder is refused
    before anything starts (:meth:`ServeConfig.check_log_outside`)."""
    if config.data is None and not config.neo4j_uri:
        raise SpilloverError("no graph given: pass --data DIR, or --neo4j-uri (or set NEO4J_URI)")
    config.check_log_outside()
    import uvicorn

    protocol, loop = http_stack(http)
    # refuse missing tokens or a bad policy before anything starts
    config.grants()
    config.load_policy()
    if config.data is not None and not Path(config.data).is_dir():
        raise SpilloverError(f"{config.data}: no such data folder")
    if neo4j_password:
        os.environ["NEO4J_PASSWORD"] = neo4j_password
    if config.neo4j_uri:  # reach Neo4j (within --store-timeout) before anything starts
        config.open_graph().close()
    os.environ[CONFIG_ENV] = config.to_env()
    os.environ[LIMITS_ENV] = HttpLimits(config.header_timeout, config.max_connections).to_env()
    configure_logging()
    settings: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_seconds,
        timeout_keep_alive=config.keep_alive_timeout,
        # with --workers N, uvicorn's supervisor kills a worker that does not answer its
        # ping within this many seconds; its default (5 s) killed every worker, again and
        # again, on a loaded machine (a spawned worker takes that long to start)
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        server_header=False,
        # no WebSocket route: an upgrade request is an HTTP request like any other (with
        # a WebSocket library installed, uvicorn took it past the gate, and logged its
        # path, a phone number in it, and the client's address)
        ws="none",
        # the header deadline and the connection cap (spillover.service.httpguard), on a
        # loop whose failed accept() waits a second before it tries again
        http=protocol,
        loop=loop,
    )
    if workers > 1 and handoff.available():
        # the supervisor accepts and hands each connection to the worker with the fewest
        # (spillover.service.handoff): uvicorn's lets the workers race for them
        handoff.run_workers(uvicorn.Config(APP, **settings))
    else:
        uvicorn.run(APP, **settings)


def http_stack(choice: str = "auto") -> tuple[type[asyncio.Protocol], str]:
    """The guarded HTTP protocol and the event loop (uvicorn's ``http`` and ``loop``) of
    the stack ``choice`` (:data:`HTTP_STACKS`): httptools on uvloop
    (:mod:`spillover.service.uvhttp`) or h11 on asyncio
    (:class:`~spillover.service.httpguard.GuardedH11Protocol`)."""
    if choice not in HTTP_STACKS:
        raise SpilloverError(f"unknown HTTP stack {choice!r}: one of {', '.join(HTTP_STACKS)}")
    if choice != "h11":
        try:
            from .uvhttp import GuardedHttpToolsProtocol
        except ImportError as exc:
            if choice == "httptools":
                raise SpilloverError(
                    f"--http httptools needs uvloop and httptools ({exc.name} is missing): "
                    "pip install 'spillover[serve]'"
                ) from None
        else:
            return GuardedHttpToolsProtocol, "spillover.service.uvhttp:new_event_loop"
    if not handoff.available():
        return GuardedH11Protocol, "asyncio"
    # asyncio's loop, which takes its connections from the supervisor with --workers N
    return GuardedH11Protocol, "spillover.service.handoff:new_selector_loop"


def configure_logging() -> None:
    """JSON lines on stderr for the service's logger and uvicorn's error logger; each
    other message at most a few times a minute (:class:`~spillover.service.httpguard.RateLimit`)."""
    handler = JsonLinesHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RateLimit())
    for name in (LOGGER, "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # the Neo4j driver's warnings: the command line routes them as plain-text notes
    # (spillover.neo4j.driverlog); the service writes them as JSON lines like the rest
    driver = logging.getLogger("neo4j")
    driver.handlers = []
    driver.propagate = True
    # everything else (the Neo4j driver's notifications, Python warnings) as JSON lines too,
    # without its text: a query notification quotes parameters
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
