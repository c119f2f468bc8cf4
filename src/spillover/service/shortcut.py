"""The short way of ``POST /v1/checks``: the gate (:class:`~spillover.service.gate.Gate`)
hands a check it has authenticated and read straight to the route's own code
(:func:`~spillover.service.routes.check_response`), past FastAPI's routing, dependency
solving and request handling, which cost more CPU than the check itself.

Only the plain case goes this way: a JSON body (``Content-Type: application/json``)
that is a valid :class:`~spillover.service.schemas.CheckIn`, on a service without CORS
(the CORS middleware adds ``vary: Origin`` to every answer: with ``--cors-origin`` every
request goes the long way). Anything else (no or another content type, a body that is
not JSON or not a valid check) goes the long way, through FastAPI, which answers it as
it always has. The answers are the same either
way, byte for byte: the same code answers the check, the same exception handlers
answer its errors (403, 404, 422, 499, 503), and the request log names the same route.
"""

import inspect
import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware

from .deps import get_service
from .gate import Gate, Receive, Scope, Send
from .routes import check_response, checks
from .schemas import CheckIn

__all__ = ["CHECKS_PATH", "CheckShortcut", "Front"]

#: the route that goes the short way
CHECKS_PATH = "/v1/checks"


class CheckShortcut:
    """``POST /v1/checks`` for the gate (see the module's docstring); ``app`` is the
    service's application, its routes included."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # the route FastAPI's router puts in the scope for this path: its own, of the
        # router the application includes (spillover.service.routes.checks)
        self.route = next(
            r
            for r in checks.routes
            if isinstance(r, APIRoute) and r.path == CHECKS_PATH and "POST" in (r.methods or ())
        )

    def takes(self, scope: Scope, headers: Mapping[bytes, bytes]) -> bool:
        """Whether the request may go the short way (before its body is read)."""
        return (
            scope["path"] == CHECKS_PATH
            and scope["method"] == "POST"
            and headers.get(b"content-type") == b"application/json"
            and b"origin" not in headers
        )

    async def __call__(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Answer the check whose body is ``body``; False (nothing sent) when it must go
        the long way."""
        item = _valid_check(body)
        if item is None:
            return False
        scope["route"] = self.route  # what FastAPI's router sets: the request log names it
        request = _Request(scope, receive)
        try:
            response = await check_response(
                await get_service(request), item, scope["state"]["token_name"], request
            )
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # a 500, as from the long way (Starlette's ServerErrorMiddleware)
            response = await handler(request, exc)
            exc.__traceback__ = None
        await response(scope, receive, send)
        return True

    def _handler(self, exc: Exception) -> Any:
        """The application's handler of ``exc``, found as Starlette's exception
        middleware finds it (a status code's handler first, then by class); None for
        an exception no handler takes."""
        handlers = self.app.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:
                return handlers[cls]
        return None


class Front:
    """The ASGI application ``spillover serve`` runs: ``POST /v1/checks`` goes from here
    to the service's own outer layer, the application's
    :class:`~spillover.service.gate.Gate` (and from it the short way, or on to the rest
    of the application, as always) or, with ``--cors-origin``, the CORS middleware
    around it, past the layers FastAPI and Starlette put around them (their
    OpenTelemetry hooks, FastAPI's own body limit, off here: the gate has its own),
    inside Starlette's ``ServerErrorMiddleware`` as before (an unhandled error is a 500,
    the same bytes); every other request goes to ``app`` itself. ``app``'s middleware
    stack is built here (it is otherwise built on the first request)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        if app.middleware_stack is None:
            app.middleware_stack = app.build_middleware_stack()
        outer = app.middleware_stack
        if not isinstance(outer, ServerErrorMiddleware):
            raise TypeError(f"the application's outer layer is {type(outer).__name__}")
        node: Any = outer
        # the outer one of the service's own layers: CORS (when on) around the gate
        while not isinstance(node, CORSMiddleware | Gate):
            node = node.app  # each layer wraps the next one as its ``app``
        self.gate = ServerErrorMiddleware(node, handler=outer.handler, debug=outer.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request, or run the application's lifespan (a start-up that fails
        with a message of its own, ``app.state.start_error``, reports that line, not
        the traceback)."""
        if scope["type"] == "http" and scope["path"] == CHECKS_PATH and scope["method"] == "POST":
            scope["app"] = self.app  # what Starlette sets: the routes' request.app
            await self.gate(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
        else:
            await self.app(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        state = self.app.state

        async def reporting(message: MutableMapping[str, Any]) -> None:
            error = getattr(state, "start_error", None)
            if message["type"] == "lifespan.startup.failed" and error is not None:
                message = {**message, "message": error}
            await send(message)

        return reporting


class _Request(Request):
    """Starlette's request, whose :meth:`is_disconnected` does without anyio's cancel
    scope (whose ``cancel()`` formats the task's repr: about 3 % of the event loop's
    time per check in the profile)."""

    _left = False

    async def is_disconnected(self) -> bool:
        """Whether the client has left: Starlette's answer (the next message, if it is
        there already, says so), found by running ``receive()`` up to its first wait."""
        if self._left:
            return True
        waiting = self.receive()
        if not inspect.iscoroutine(waiting):
            return await super().is_disconnected()
        try:
            waiting.send(None)
        except StopIteration as done:  # a message was there already
            self._left = done.value.get("type") == "http.disconnect"
            return self._left
        waiting.close()  # it would wait for one: the client is still there
        return False


def _valid_check(body: bytes) -> CheckIn | None:
    """``body`` as a check, read as FastAPI reads it (Python's ``json``, then the model,
    validated as FastAPI validates a body); None when it is not one (the long way then answers the 422)."""
    if not body:
        return None
    try:
        return CheckIn.model_validate(json.loads(body), from_attributes=True)
    except (ValueError, ValidationError, RecursionError):
        return None
