"""The gate every HTTP request passes first (ASGI middleware): its id, the bearer token
before a byte of the body is read, the body within its limits, and its line in the log."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Protocol

from .ids import new_id
from .logs import json_log

__all__ = [
    "LOGGED_METHODS",
    "ASGIApp",
    "Gate",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "Shortcut",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Shortcut(Protocol):
    """A short way for some requests past the application's routing (one that answers
    exactly as the application would: :class:`~spillover.service.shortcut.CheckShortcut`)."""

    def takes(self, scope: Scope, headers: Mapping[bytes, bytes]) -> bool:
        """Whether the request (its scope, its headers by lower-case name) may go the
        short way."""
        ...

    async def __call__(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Answer the request whose body is ``body``; False (nothing sent) when it
        must go to the application after all."""
        ...


class Gate:
    """Every HTTP request, in this order: a request id (also sent back as
    ``X-Request-ID``); a request with both a ``Content-Length`` and a
    ``Transfer-Encoding`` refused (400, closed); on a ``/v1`` route the bearer token,
    answered 401 before a byte of the body is read; the body, read here up to ``limit``
    bytes (413, declared or streamed) within ``body_timeout`` seconds (408) and replayed
    to the application (outside ``/v1``, where no route takes one, a body is never read:
    the answer closes the connection); the request's line in the log, once it is
    answered. A request the ``shortcut`` takes is answered by it rather than by ``app``
    (the same answer, less work)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str | None], str | None],
        limit: int,
        body_timeout: float,
        shortcut: Shortcut | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limit = limit
        self.body_timeout = body_timeout
        self.shortcut = shortcut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer or pass on one request (see the class's docstring)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id()
        started = time.perf_counter()
        scope.setdefault("state", {})
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        try:
            left = await self._pass(scope, receive, answer)
            if left is not None:
                status = left  # the client left before its body was complete
        finally:
            json_log(_request_line(scope, request_id, status, started))

    async def _pass(self, scope: Scope, receive: Receive, answer: Send) -> int | None:
        """Refuse the request (401, 413, 408), or pass it on to the application with its
        body; 499 when the client left before its body was complete."""
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers") or []:
            headers.setdefault(key, value)
        declared = headers.get(b"content-length")
        if declared is not None and b"transfer-encoding" in headers:
            # two framings of one body (h11 takes the chunks; a proxy in front may take
            # the length, and read the rest as another request): refused, as llhttp
            # (the httptools stack) refuses it, and the connection closed
            await _reply(answer, 400, "Invalid HTTP request received.", close=True)
            return None
        has_body = b"transfer-encoding" in headers or declared not in (None, b"0")
        if not scope["path"].startswith("/v1/"):
            if has_body:
                # no route outside /v1 takes a body (health, readiness, the docs): it is
                # never read, so that a client without a token cannot make the server
                # hold one; the connection is closed after the answer
                await self.app(scope, _replay(b"", receive), _closing(answer))
                return None
        else:
            given = headers.get(b"authorization")
            name = self.authenticate(given.decode("latin-1") if given else None)
            if name is None:
                # the body is never read: the connection is closed after the answer
                await _reply(answer, 401, "unauthorized", close=has_body, www_authenticate=True)
                return None
            scope["state"]["token_name"] = name
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _reply(answer, 413, f"request body over {self.limit} bytes", close=True)
            return None
        body = await self._body(receive)
        if body == 413:
            await _reply(answer, 413, f"request body over {self.limit} bytes", close=True)
        elif body == 408:
            await _reply(answer, 408, "request body not received in time", close=True)
        elif isinstance(body, int):
            return body
        elif not (
            self.shortcut is not None
            and self.shortcut.takes(scope, headers)
            and await self.shortcut(scope, body, receive, answer)
        ):
            await self.app(scope, _replay(body, receive), answer)
        return None

    async def _body(self, receive: Receive) -> bytes | int:
        """The body, or the status it earns: 413 over the limit, 408 past the deadline,
        499 when the client left before it was complete."""
        chunks: list[bytes] = []
        size = 0
        try:
            # one deadline for the whole body (a context, not a task per message)
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return 499
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limit:
                        return 413
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            return 408


async def _reply(
    send: Send, status: int, detail: str, *, close: bool, www_authenticate: bool = False
) -> None:
    headers = [(b"content-type", b"application/json")]
    if www_authenticate:
        headers.append((b"www-authenticate", b"Bearer"))
    if close:
        # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    content = json.dumps({"detail": detail}).encode()
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _closing(send: Send) -> Send:
    """``send`` for an answer after which the connection is closed (``connection:
    close``): the request's body was not read, so the connection cannot carry another
    request."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the application: the body, read already, then what comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


#: the methods the request log names as they are; any other is logged as null (a
#: method is the client's text: the h11 stack takes any token as one, an ID number too)
LOGGED_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def _request_line(scope: Scope, request_id: str, status: int, started: float) -> dict[str, Any]:
    """The request's line in the log: never its path, body or token, nor a method other
    than HTTP's own (:data:`LOGGED_METHODS`)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is not None and "{" in template:
        # without its parameters' converters: `{entry_id}`, not `{entry_id:path}`
        template = getattr(route, "path_format", template)
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": "request",
        "request_id": request_id,
        "token_name": scope["state"].get("token_name"),
        "method": method if (method := scope.get("method")) in LOGGED_METHODS else None,
        # the route's template, never the path: a path can carry a phone or an id
        "route": template,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
