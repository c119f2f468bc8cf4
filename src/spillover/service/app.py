"""The pre-blacklist check service (``spillover serve``): the FastAPI application.

Routes, authentication, logs and the check log are documented in docs/service.md.
The explanation JSON is :class:`~spillover.render.json.ExplanationOut` (docs/contract.md §3),
the recommendation :func:`spillover.rules.recommendation`; the service only wires them
to HTTP: :mod:`~spillover.service.routes` (over :mod:`~spillover.service.deps`),
:mod:`~spillover.service.gate` (and its short way for checks,
:mod:`~spillover.service.shortcut`), :mod:`~spillover.service.docs`, assembled here. It
needs the optional extra ``spillover[serve]``.
"""

import sys
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ..backends.memory import MemoryBackend
from ..errors import BackendUnavailable, SpilloverError
from ..facts.graph import GraphBackend
from ..policy import Policy
from ..version import __version__
from . import docs, routes
from .auth import TokenGrant, authenticate
from .checklog import CheckLog, GroupCommit
from .config import ServeConfig
from .deps import Service
from .gate import Gate
from .logs import json_log
from .schemas import clean_errors
from .shortcut import CheckShortcut

__all__ = ["CHECK_THREADS", "create_app"]

#: threads that answer checks (as many as Starlette's pool: a check on Neo4j waits on
#: the network, so that many can be under way at once)
CHECK_THREADS = 40


def create_app(
    open_graph: Callable[[], GraphBackend],
    config: ServeConfig,
    *,
    grants: Mapping[str, TokenGrant] | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """The service's ASGI application over the graph ``open_graph()`` opens (at startup;
    closed at shutdown, after the requests in flight have been answered).

    ``grants``: the bearer tokens (default: :meth:`ServeConfig.grants`, from
    SPILLOVER_TOKENS and the token file); ``policy``: the scoring policy (default:
    :meth:`ServeConfig.load_policy`). A check log that would change the data folder is
    refused first (:meth:`ServeConfig.check_log_outside`)."""
    config.check_log_outside()
    app = FastAPI(
        title="spillover pre-blacklist check",
        version=__version__,
        description=(
            "Before a platform lists someone: would the listing punish them for someone "
            "else's debt? Every /v1 route needs a bearer token. See docs/service.md."
        ),
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.open_graph = open_graph
    app.state.config = config
    app.state.grants = dict(grants if grants is not None else config.grants())
    app.state.policy = policy if policy is not None else config.load_policy()
    app.state.check_log = CheckLog(Path(config.check_log), config.log_max_bytes, config.log_backups)
    app.state.check_log_commit = GroupCommit(app.state.check_log)
    _add_error_handlers(app, config)
    app.include_router(routes.checks)
    app.include_router(routes.entries)
    app.include_router(routes.health)
    # the scripts, styles and icon of /docs and /redoc, from the fastapi-offline package
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(docs.DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    app.include_router(docs.pages)
    app.add_middleware(
        Gate,
        authenticate=partial(authenticate, app.state.grants),
        limit=config.max_body_bytes,
        body_timeout=config.body_timeout,
        # with CORS on, every check goes the long way (the CORS middleware adds
        # `vary: Origin` to every answer; tests/test_service.py compares both ways)
        shortcut=None if config.cors_origins else CheckShortcut(app),
    )
    if config.cors_origins:
        # added last, so the outer layer: a browser's preflight (OPTIONS, which never
        # carries a token) is answered before the gate asks for one, and the gate's own
        # answers (401, 408, 413) carry the CORS headers a page needs to read them
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    docs.add_examples(app, app.state.policy)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the graph and the checks' threads at startup; close them at shutdown. A graph
    that does not open (:class:`~spillover.errors.SpilloverError`: Neo4j unreachable,
    say) leaves its one-line message in ``app.state.start_error``, which
    :class:`~spillover.service.shortcut.Front` reports in place of the traceback."""
    try:
        app.state.backend = app.state.open_graph()
    except SpilloverError as exc:
        app.state.start_error = f"cannot start: {exc}"
        raise
    # the checks run in threads of their own (a check on Neo4j waits on the network;
    # /readyz's probe runs in asyncio's default threads, so that hung checks cannot
    # delay it); as many as Starlette's thread pool has. A single check on the embedded
    # memory graph runs on the event loop itself (Service.inline)
    app.state.threads = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="spillover-check")
    app.state.service = Service(
        app.state.backend,
        app.state.config,
        app.state.policy,
        app.state.grants,
        app.state.check_log_commit,
        app.state.threads,
        inline=isinstance(app.state.backend, MemoryBackend),
    )
    json_log(
        {"event": "start", "backend": app.state.backend.name, "policy": app.state.policy.label}
    )
    try:
        yield
    finally:
        backend = app.state.backend
        del app.state.backend, app.state.service
        app.state.threads.shutdown(wait=False, cancel_futures=True)
        backend.close()
        json_log({"event": "stop"})


def _add_error_handlers(app: FastAPI, config: ServeConfig) -> None:
    """503 for a graph store that does not answer, 422 with the cleaned validation
    errors, 499 (for the request log) when the client left."""
    app.add_exception_handler(BackendUnavailable, _unavailable)
    for driver_error in _driver_errors(config):
        app.add_exception_handler(driver_error, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(routes.ClientGone, _gone)


def _driver_errors(config: ServeConfig) -> tuple[type[Exception], ...]:
    """The Neo4j driver's errors that mean the store is unavailable, when the graph is
    (or may be) Neo4j's: the driver is loaded only then."""
    if config.backend_name != "neo4j" and "neo4j" not in sys.modules:
        return ()
    from ..neo4j.store import STORE_DOWN_ERRORS

    return STORE_DOWN_ERRORS


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # the message may name the server; the client learns only that it is down
    return JSONResponse({"detail": "the graph store is unavailable"}, status_code=503)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": clean_errors(exc.errors())}, status_code=422)


async def _gone(request: Request, exc: Exception) -> JSONResponse:
    # nobody reads this answer; the status is for the request log
    return JSONResponse({"detail": "the client left; not recorded"}, status_code=499)
