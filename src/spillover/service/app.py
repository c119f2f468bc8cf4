"""The pre-blacklist check service (``spillover serve``): FastAPI on uvicorn.

Routes, authentication, logs and the check log are documented in docs/service.md.
The explanation JSON is :class:`~spillover.render.json.ExplanationOut` (docs/contract.md §3),
the recommendation :func:`spillover.rules.recommendation`; this module only wires
them to HTTP. It needs the optional extra ``spillover[serve]``.
"""

import asyncio
import hmac
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import fastapi_offline
import neo4j
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ..data.contract import MAX_YEAR, MIN_YEAR
from ..engines.search import Explanation, explain, explain_about_person, explain_entry
from ..engines.search import check as run_check
from ..errors import BackendUnavailable, NotFoundError, SpilloverError
from ..facts.graph import GraphBackend
from ..facts.model import SubjectKind
from ..facts.phones import DEFAULT_REGION, normalize_phone
from ..facts.resident_id import mask_ids_in
from ..policy import Policy
from ..render.json import ExplanationOut, explanation_out
from ..rules import Recommendation, recommendation
from .checklog import CheckLog

__all__ = [
    "BatchIn",
    "BatchItemOut",
    "BatchOut",
    "CheckIn",
    "CheckOut",
    "ErrorOut",
    "Gate",
    "ServeSpec",
    "ServiceConfig",
    "SubjectIn",
    "TokenGrant",
    "app_from_env",
    "create_app",
    "load_tokens",
    "read_tokens",
    "serve",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("spillover.service.app")

#: the Jiang case (examples/jiang_case): the proposed listing the OpenAPI document shows
JIANG_CHECK: dict[str, Any] = {
    "platform_id": "quickcash",
    "subject": {"kind": "person", "id": "jiang"},
    "listed_at": "2024-03-01",
    "stated_reason": "phone 13957112345 named on a defaulted loan",
}


@dataclass(frozen=True)
class TokenGrant:
    """A bearer token and the platforms it may check for."""

    token: str
    platforms: frozenset[str]


def load_tokens(env_value: str | None = None, file: str | Path | None = None) -> dict[str, str]:
    """Bearer tokens by name (see :func:`read_tokens`, which also gives their platforms).

    >>> load_tokens("qc:s3cret-token-one, yd:s3cret-token-two")
    {'qc': 's3cret-token-one', 'yd': 's3cret-token-two'}
    """
    return {name: grant.token for name, grant in read_tokens(env_value, file).items()}


def read_tokens(
    env_value: str | None = None, file: str | Path | None = None
) -> dict[str, TokenGrant]:
    """Bearer tokens by name, from ``name:token`` pairs: in ``env_value`` separated by
    commas or newlines, in ``file`` one a line (``#`` starts a comment). A token acts for
    the platform of its name; ``name@platform+platform:token`` names the platforms it
    acts for instead (a broker's token).

    >>> grants = read_tokens("quickcash:s3cret-token-one, broker@quickcash+yidai:s3cret-token-two")
    >>> sorted(grants["quickcash"].platforms), sorted(grants["broker"].platforms)
    (['quickcash'], ['quickcash', 'yidai'])
    """
    pairs: list[tuple[str, str]] = []
    if env_value:
        pairs += [("SPILLOVER_TOKENS", p) for p in env_value.replace("\n", ",").split(",")]
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpilloverError(f"{path}: cannot read tokens: {exc.strerror}") from None
        pairs += [(str(path), line.split("#", 1)[0]) for line in text.splitlines()]
    tokens: dict[str, TokenGrant] = {}
    for where, pair in pairs:
        pair = pair.strip()
        if not pair:
            continue
        named, sep, token = pair.partition(":")
        named, token = named.strip(), token.strip()
        name, at, listed = named.partition("@")
        name = name.strip()
        platforms = frozenset(p.strip() for p in listed.split("+")) if at else frozenset([name])
        if not sep or not name or not token:
            raise SpilloverError(f"{where}: a token is written name:token")
        if "" in platforms:
            raise SpilloverError(
                f"{where}: the platforms of the token named {name!r} are written "
                "name@platform+platform:token"
            )
        if len(token) < 16:
            raise SpilloverError(f"{where}: the token named {name!r} is shorter than 16 characters")
        if name in tokens:
            raise SpilloverError(f"{where}: two tokens named {name!r}")
        tokens[name] = TokenGrant(token, platforms)
    return tokens


@dataclass(frozen=True)
class ServiceConfig:
    """What the service needs besides the graph: tokens, the check log, limits.

    ``platforms``: the platforms a token (by name) may check for; a token not in it acts
    for the platform of its own name. ``body_timeout``: seconds for a request's body;
    ``ready_timeout``: seconds ``/readyz`` waits for Neo4j."""

    tokens: dict[str, str]
    check_log: Path
    policy: Policy
    region: str = DEFAULT_REGION
    max_batch: int = 100
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    log_max_bytes: int = 50 * 1024 * 1024
    log_backups: int = 10
    max_paths: int | None = None
    backend_name: str = field(default="embedded")
    platforms: dict[str, frozenset[str]] = field(default_factory=dict)
    body_timeout: float = 30.0
    ready_timeout: float = 1.5


# ---------------------------------------------------------------------------
# The edge: request and response models
# ---------------------------------------------------------------------------


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None
    return value


#: text of a request: valid Unicode (JSON can spell a lone surrogate, ``"\ud800"``,
#: which no answer and no log line could hold)
Text = Annotated[str, AfterValidator(_unicode)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectIn(_In):
    """Who would be listed: a person (``person_id``) or a phone (any written form)."""

    kind: Literal["person", "phone"]
    id: Text = Field(min_length=1, max_length=200)


class CheckIn(_In):
    """A proposed listing: ``platform_id`` would list ``subject`` on ``listed_at``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [dict(JIANG_CHECK)]}
    )

    platform_id: Text = Field(min_length=1, max_length=200)
    subject: SubjectIn
    listed_at: date | None = Field(
        default=None, description="Day of the proposed listing (default: today, UTC)."
    )
    stated_reason: Text | None = Field(default=None, max_length=2000)

    @field_validator("listed_at")
    @classmethod
    def _year(cls, value: date | None) -> date | None:
        if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"the year must lie in {MIN_YEAR}-{MAX_YEAR}")
        return value


class CheckOut(ExplanationOut):
    """The explanation of the proposed listing (docs/contract.md §3), its recommendation
    (docs/contract.md §6) and the id under which it is recorded in the check log."""

    check_id: str
    recommendation: Recommendation


class ErrorOut(BaseModel):
    """An error: ``detail`` says what was wrong."""

    detail: str


class ItemErrorOut(BaseModel):
    """Why one item of a batch got no answer: ``status`` as the single call would give it."""

    status: int
    detail: Any


class BatchIn(_In):
    """Proposed listings, answered in order (at most the service's ``max_batch``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"checks": [JIANG_CHECK]}]}
    )

    checks: list[dict[str, Any]] = Field(
        min_length=1,
        description="Each item is a CheckIn; a bad item gets an error, not the whole batch.",
    )


class BatchItemOut(BaseModel):
    """One answer of a batch: ``check`` or ``error``, for the item at ``index``."""

    index: int
    check: CheckOut | None = None
    error: ItemErrorOut | None = None


class BatchOut(BaseModel):
    """The answers of a batch, in the order of its items."""

    results: list[BatchItemOut]


class StatusOut(BaseModel):
    """Health and readiness."""

    status: Literal["ok", "unavailable"]
    backend: str | None = None


# ---------------------------------------------------------------------------
# Middleware: the token first, then the body within its limits; structured logs
# ---------------------------------------------------------------------------


class Gate:
    """Every HTTP request, in this order: a request id (also sent back as
    ``X-Request-ID``); on a ``/v1`` route the bearer token, answered 401 before a byte
    of the body is read; the body, read here up to ``limit`` bytes (413, declared or
    streamed) within ``body_timeout`` seconds (408) and replayed to the application;
    the request's line in the log, once it is answered."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str | None], str | None],
        limit: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limit = limit
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer or pass on one request (see the class's docstring)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        state = scope.setdefault("state", {})
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

        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers") or []:
            headers.setdefault(key, value)
        declared = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers or declared not in (None, b"0")
        try:
            if scope["path"].startswith("/v1/"):
                given = headers.get(b"authorization")
                name = self.authenticate(given.decode("latin-1") if given else None)
                if name is None:
                    # the body is never read: the connection is closed after the answer
                    await _reply(answer, 401, "unauthorized", close=has_body, www_authenticate=True)
                    return
                state["token_name"] = name
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                await _reply(answer, 413, f"request body over {self.limit} bytes", close=True)
                return
            body = await self._body(receive)
            if isinstance(body, int):
                if body == 413:
                    await _reply(answer, 413, f"request body over {self.limit} bytes", close=True)
                elif body == 408:
                    await _reply(answer, 408, "request body not received in time", close=True)
                else:
                    status = body  # the client left before its body was complete
                return
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, answer)
        finally:
            route = scope.get("route")
            _json_log(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "event": "request",
                    "request_id": request_id,
                    "token_name": state.get("token_name"),
                    "method": scope.get("method"),
                    # the route's template, never the path: a path can carry a phone or an id
                    "route": getattr(route, "path", None),
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )

    async def _body(self, receive: Receive) -> bytes | int:
        """The body, or the status it earns: 413 over the limit, 408 past the deadline,
        499 when the client left before it was complete."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return 408
            if message["type"] != "http.request":
                return 499
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return 413
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


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


def _json_log(record: dict[str, Any]) -> None:
    log.info(json.dumps(record, separators=(",", ":")))


class JsonLines(logging.Formatter):
    """Log records as JSON lines; a record whose message is JSON already is kept as is."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):
            return message
        # uvicorn's own messages (started, stopping) carry no personal data; any other
        # message text might carry a name, a phone or an ID number and is left out
        out: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": "log",
        }
        if (
            record.name.startswith("uvicorn") or record.name == "spillover.service.app"
        ) and not record.exc_info:
            out["message"] = mask_ids_in(message)
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = type(record.exc_info[1]).__name__
        suppressed = getattr(record, "suppressed", None)
        if suppressed:
            out["suppressed"] = suppressed  # lines like this one held back (RateLimit)
        return json.dumps(out, ensure_ascii=False)


def configure_logging() -> None:
    """JSON lines on stderr for the service's logger and uvicorn's error logger; each
    other message at most a few times a minute (:class:`~spillover.service.httpguard.RateLimit`)."""
    from .httpguard import RateLimit

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RateLimit())
    for name in ("spillover.service.app", "uvicorn.error"):
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


# ---------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


def _unauthorized() -> HTTPException:
    return HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


def _validation_error(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error", "input": value}])


def _safe(value: Any) -> Any:
    """``value`` made fit for a JSON answer: text with lone surrogates escaped
    (``\\ud800`` as six characters), numbers that JSON cannot spell (NaN, Infinity) as
    text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _clean(errors: Any) -> list[dict[str, Any]]:
    """Validation errors as the answer gives them: where, what, which kind, never the
    input (it may be what made the error: a NaN, a lone surrogate, or just personal)."""
    return [
        {
            "loc": [_safe(x) for x in e.get("loc", ())],
            "msg": _safe(str(e.get("msg", ""))),
            "type": _safe(str(e.get("type", ""))),
        }
        for e in errors
    ]


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return _clean(exc.errors(include_url=False, include_input=False, include_context=False))


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No token, or a wrong one."},
    503: {"model": ErrorOut, "description": "The graph store (Neo4j) does not answer."},
    413: {"model": ErrorOut, "description": "The request body is over the size limit."},
    408: {"model": ErrorOut, "description": "The request body did not arrive in time."},
}
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "The token does not act for that platform."},
}

#: where the Swagger UI and ReDoc assets are served from (the fastapi-offline package)
_DOCS_ASSETS = "/docs-assets"


class _ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def create_app(open_graph: Callable[[], GraphBackend], config: ServiceConfig) -> FastAPI:  # noqa: C901 (to split, issue 20)
    """The service's ASGI application over the graph ``open_graph()`` opens (at startup;
    closed at shutdown, after the requests in flight have been answered)."""
    policy = config.policy
    check_log = CheckLog(config.check_log, config.log_max_bytes, config.log_backups)
    state: dict[str, GraphBackend] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["backend"] = open_graph()
        _json_log({"event": "start", "backend": state["backend"].name, "policy": policy.label})
        try:
            yield
        finally:
            state.pop("backend").close()
            _json_log({"event": "stop"})

    app = FastAPI(
        title="spillover pre-blacklist check",
        version=_version(),
        description=(
            "Before a platform lists someone: would the listing punish them for someone "
            "else's debt? Every /v1 route needs a bearer token. See docs/service.md."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    def backend() -> GraphBackend:
        return state["backend"]

    def authenticate(header: str | None) -> str | None:
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return None
        found = None
        for name, token in config.tokens.items():
            # every token is compared, in constant time, whichever matches
            if hmac.compare_digest(given.strip().encode(), token.encode()):
                found = name
        return found

    def token_name(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        # the gate has checked the token before anything else (so that a request without
        # one learns nothing, not even whether its body is valid)
        name = getattr(request.state, "token_name", None)
        if credentials is None or name is None:
            raise _unauthorized()
        return str(name)

    Token = Annotated[str, Depends(token_name)]

    def acts_for(token: str, platform_id: str) -> bool:
        return platform_id in config.platforms.get(token, frozenset([token]))

    def forbidden(token: str, platform_id: str) -> str:
        return f"the token {token!r} does not act for the platform {_safe(platform_id)!r}"

    def _subject(kind: str, subject: str, loc: tuple[str | int, ...]) -> str:
        if kind != "phone":
            return subject
        try:
            return normalize_phone(subject, config.region)
        except ValueError as exc:
            raise _validation_error(loc, str(exc), subject) from None

    def _check(
        item: CheckIn, token: str, loc: tuple[str | int, ...]
    ) -> tuple[CheckOut, dict[str, Any]]:
        """The answer to one check and its check-log record (written by the caller,
        once the answer can still be given)."""
        subject = _subject(item.subject.kind, item.subject.id, (*loc, "subject", "id"))
        day = item.listed_at or datetime.now(UTC).date()
        graph = backend()
        e = run_check(
            graph,
            item.platform_id,
            item.subject.kind,
            subject,
            day,
            policy,
            max_paths=config.max_paths,
        )
        advice = recommendation(e.contamination, policy)
        check_id = uuid.uuid4().hex
        out = CheckOut.model_validate(
            {
                **dict(explanation_out(e)),
                "check_id": check_id,
                "recommendation": advice,
            }
        )
        record: dict[str, Any] = {
            "check_id": check_id,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "token_name": token,
            "platform_id": item.platform_id,
            "subject": {"kind": item.subject.kind, "id": subject},
            "listed_at": day.isoformat(),
            "stated_reason": item.stated_reason,
            "result": {
                "recommendation": advice.value,
                "verdict": e.verdict.value,
                "contamination": e.contamination,
                "reason_codes": list(e.reason_codes),
                "origin_loan_id": e.best.origin.loan_id if e.best else None,
            },
            "policy": {
                "name": policy.name,
                "version": policy.version,
                "digest": policy.digest,
            },
        }
        if item.subject.kind == "phone":
            # whose phone it was on the listing day: `spillover checks --subject PERSON`
            # finds the checks made on a person's phones by it
            record["phone_owner_id"] = _phone_owner(graph, subject, day)
        return out, record

    async def _record(request: Request, records: list[dict[str, Any]]) -> None:
        """Write the records to the check log if the client still waits for the answer;
        raise :class:`_ClientGone` (nothing written) if it has left."""
        if await request.is_disconnected():
            raise _ClientGone
        await run_in_threadpool(check_log.append_all, records)

    @app.exception_handler(BackendUnavailable)
    @app.exception_handler(neo4j.exceptions.ServiceUnavailable)
    @app.exception_handler(neo4j.exceptions.SessionExpired)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # the message may name the server; the client learns only that it is down
        return JSONResponse({"detail": "the graph store is unavailable"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _clean(exc.errors())}, status_code=422)

    @app.exception_handler(_ClientGone)
    async def gone(request: Request, exc: Exception) -> JSONResponse:
        # nobody reads this answer; the status is for the request log
        return JSONResponse({"detail": "the client left; not recorded"}, status_code=499)

    @app.post(
        "/v1/checks",
        response_model=CheckOut,
        responses={
            **_RESPONSES,
            **_FORBIDDEN,
            404: {"model": ErrorOut, "description": "Unknown platform or person."},
        },
        summary="Check a proposed listing",
        tags=["checks"],
    )
    async def post_check(body: CheckIn, token: Token, request: Request) -> CheckOut:
        """The explanation of the proposed listing, a recommendation, and a check id
        under which it is recorded in the check log."""
        if not acts_for(token, body.platform_id):
            raise HTTPException(403, forbidden(token, body.platform_id))
        try:
            out, record = await run_in_threadpool(_check, body, token, ("body",))
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        await _record(request, [record])
        return out

    @app.post(
        "/v1/checks:batch",
        response_model=BatchOut,
        responses=_RESPONSES,
        summary="Check proposed listings in one call",
        tags=["checks"],
    )
    async def post_batch(body: BatchIn, token: Token, request: Request) -> BatchOut:
        """Each item answered in order; a bad item gets an error of its own."""
        if len(body.checks) > config.max_batch:
            raise _validation_error(
                ("body", "checks"),
                f"at most {config.max_batch} checks in one batch",
                len(body.checks),
            )
        left = asyncio.Event()

        def answer_all() -> tuple[list[BatchItemOut], list[dict[str, Any]]]:
            results: list[BatchItemOut] = []
            records: list[dict[str, Any]] = []
            for i, raw in enumerate(body.checks):
                if left.is_set():
                    break  # the client is gone: no more work for it
                results.append(answer_one(i, raw, records))
            return results, records

        def answer_one(i: int, raw: dict[str, Any], records: list[dict[str, Any]]) -> BatchItemOut:
            try:
                item = CheckIn.model_validate(raw)
                if not acts_for(token, item.platform_id):
                    error = ItemErrorOut(status=403, detail=forbidden(token, item.platform_id))
                    return BatchItemOut(index=i, error=error)
                out, record = _check(item, token, ("checks", i))
            except ValidationError as exc:
                return BatchItemOut(index=i, error=ItemErrorOut(status=422, detail=_errors(exc)))
            except RequestValidationError as exc:
                detail = _clean(exc.errors())
                return BatchItemOut(index=i, error=ItemErrorOut(status=422, detail=detail))
            except NotFoundError as exc:
                return BatchItemOut(index=i, error=ItemErrorOut(status=404, detail=str(exc)))
            records.append(record)
            return BatchItemOut(index=i, check=out)

        watcher = asyncio.create_task(_watch(request, left))
        try:
            results, records = await run_in_threadpool(answer_all)
        finally:
            watcher.cancel()
        if left.is_set():
            raise _ClientGone
        # the batch's records in one write, once every item is answered: a batch whose
        # client left, or a process killed meanwhile, leaves none of them in the log
        await _record(request, records)
        return BatchOut(results=results)

    @app.get(
        "/v1/entries/{entry_id}/explanation",
        response_model=ExplanationOut,
        responses={**_RESPONSES, 404: {"model": ErrorOut, "description": "Unknown entry."}},
        summary="Explain a recorded blacklist entry",
        tags=["entries"],
    )
    def get_explanation(entry_id: str, token: Token) -> ExplanationOut:
        """The explanation JSON (docs/contract.md §3) of the entry ``entry_id``."""
        try:
            return explanation_out(
                explain_entry(backend(), entry_id, policy, max_paths=config.max_paths)
            )
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get(
        "/v1/subjects/{kind}/{subject_id}/entries",
        response_model=list[ExplanationOut],
        responses={**_RESPONSES, 404: {"model": ErrorOut, "description": "Unknown subject."}},
        summary="Explain every entry on a person or a phone",
        tags=["entries"],
    )
    def get_subject_entries(
        kind: Literal["person", "phone"], subject_id: str, token: Token
    ) -> list[ExplanationOut]:
        """Every recorded entry on the subject, explained: for a person also the entries
        on a phone they owned on the listing day."""
        subject = _subject(kind, subject_id, ("path", "subject_id"))
        try:
            found = _about(backend(), kind, subject, policy, config.max_paths)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        return [explanation_out(e) for e in found]

    @app.get("/healthz", response_model=StatusOut, tags=["operations"])
    async def healthz() -> StatusOut:
        """The process is alive (no token needed)."""
        return StatusOut(status="ok")

    @app.get(
        "/readyz",
        response_model=StatusOut,
        responses={503: {"model": StatusOut, "description": "The graph store does not answer."}},
        tags=["operations"],
    )
    async def readyz(response: Response) -> StatusOut:
        """Ready to answer: the graph is loaded, and Neo4j (if used) answers within
        a second or two."""
        b = state.get("backend")
        if b is None or not await asyncio.to_thread(_answers, b, config.ready_timeout):
            response.status_code = 503
            return StatusOut(status="unavailable", backend=config.backend_name)
        return StatusOut(status="ok", backend=config.backend_name)

    _offline_docs(app)

    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        Gate,
        authenticate=authenticate,
        limit=config.max_body_bytes,
        body_timeout=config.body_timeout,
    )
    _add_examples(app, policy)
    return app


async def _watch(request: Request, left: asyncio.Event) -> None:
    """Set ``left`` when the client of ``request`` closes its connection."""
    while not await request.is_disconnected():
        await asyncio.sleep(0.2)
    left.set()


def _phone_owner(backend: GraphBackend, phone: str, day: date) -> str | None:
    """The person who owned ``phone`` on ``day`` (None: nobody known)."""
    facts = backend.expand((), (phone,), day)
    for period in facts.periods:
        if period.phone == phone and period.owner_id is not None and period.covers(day):
            return period.owner_id
    return None


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their assets served by the service
    itself (from the fastapi-offline package), so that they work without the internet."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(_DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _about(
    backend: GraphBackend, kind: str, subject: str, policy: Policy, max_paths: int | None
) -> list[Explanation]:
    if kind == SubjectKind.PERSON:
        return explain_about_person(backend, subject, policy, max_paths=max_paths)
    if not backend.exists(f"phone:{subject}"):
        raise NotFoundError(f"unknown phone {subject!r}")
    return [
        explain(backend, entry, policy, max_paths=max_paths)
        for batch in backend.iter_entries()
        for entry in batch
        if entry.subject_kind == SubjectKind.PHONE and entry.subject == subject
    ]


def _answers(backend: GraphBackend, timeout: float) -> bool:
    answers = getattr(backend, "answers", None)
    if answers is None:
        return True  # an embedded graph: loaded is ready
    return bool(answers(timeout))


def _version() -> str:
    from ..version import __version__

    return __version__


def _add_examples(app: FastAPI, policy: Policy) -> None:
    """Response examples in the OpenAPI document, computed from the packaged Jiang case."""
    from .. import examples
    from ..connect import open_folder

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        jiang = open_folder(examples.jiang_case_path())
        item = CheckIn.model_validate(JIANG_CHECK)
        e = run_check(
            jiang, item.platform_id, item.subject.kind, item.subject.id, item.listed_at, policy
        )
        check = {
            **json.loads(explanation_out(e).model_dump_json(by_alias=True)),
            "check_id": "5f0c1d2e3a4b4c5d8e9f0a1b2c3d4e5f",
            "recommendation": recommendation(e.contamination, policy).value,
        }
        entry = json.loads(
            explanation_out(explain_entry(jiang, "E-QT-J", policy)).model_dump_json(by_alias=True)
        )
        paths = schema["paths"]
        _example(paths["/v1/checks"]["post"], check)
        _example(paths["/v1/checks:batch"]["post"], {"results": [{"index": 0, "check": check}]})
        _example(paths["/v1/entries/{entry_id}/explanation"]["get"], entry)
        for p in paths["/v1/entries/{entry_id}/explanation"]["get"]["parameters"]:
            if p["name"] == "entry_id":
                p["example"] = "E-QT-J"
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _example(operation: dict[str, Any], value: Any) -> None:
    operation["responses"]["200"]["content"]["application/json"]["example"] = value


#: the environment variable ``spillover serve`` hands its settings to the workers in
SPEC_ENV = "SPILLOVER_SERVE_SPEC"
#: the environment variable holding the bearer tokens (``name:token,name:token``)
TOKENS_ENV = "SPILLOVER_TOKENS"


@dataclass(frozen=True)
class ServeSpec:
    """``spillover serve``'s settings as plain values: every uvicorn worker builds its
    application from them (:func:`app_from_env`). The Neo4j password and the tokens are
    not in it: the workers read them from the environment (NEO4J_PASSWORD,
    SPILLOVER_TOKENS) or the token file."""

    check_log: str
    data: str | None = None
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_database: str | None = None
    region: str = DEFAULT_REGION
    token_file: str | None = None
    policy: str | None = None
    max_batch: int = 100
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    log_max_bytes: int = 50 * 1024 * 1024
    log_backups: int = 10
    max_paths: int | None = None
    #: the embedded backend over ``data``: ``memory`` (a networkx graph: one check in
    #: about a millisecond, more memory) or ``arrays`` (the audit's columns: less memory,
    #: a check in a few hundred milliseconds at 100k people)
    embedded: str = "memory"
    #: seconds: every Neo4j call (a check past it is 503), a request's body, a
    #: request's headers, an idle kept-alive connection; and open connections at most
    store_timeout: float = 10.0
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive_timeout: int = 5
    max_connections: int = 1000

    def config(self) -> ServiceConfig:
        """The service configuration (tokens and policy read and checked)."""
        from ..policy import load_policy

        grants = read_tokens(os.environ.get(TOKENS_ENV), self.token_file)
        if not grants:
            raise SpilloverError(
                f"no bearer tokens: set {TOKENS_ENV}=name:token[,name:token] or pass --token-file"
            )
        return ServiceConfig(
            tokens={name: g.token for name, g in grants.items()},
            platforms={name: g.platforms for name, g in grants.items()},
            body_timeout=self.body_timeout,
            check_log=Path(self.check_log),
            policy=load_policy(self.policy),
            region=self.region,
            max_batch=self.max_batch,
            max_body_bytes=self.max_body_bytes,
            cors_origins=tuple(self.cors_origins),
            log_max_bytes=self.log_max_bytes,
            log_backups=self.log_backups,
            max_paths=self.max_paths,
            backend_name="neo4j" if self.neo4j_uri else self.embedded,
        )

    def open_graph(self) -> GraphBackend:
        """Open the graph the spec names (the embedded backend over ``data``, or Neo4j,
        every call of which has the deadline ``store_timeout``)."""
        from ..connect import open_backend
        from ..neo4j.settings import Neo4jSettings

        if self.neo4j_uri:
            from ..neo4j.store import open_neo4j

            settings = Neo4jSettings.from_env(
                self.neo4j_uri, self.neo4j_user, None, self.neo4j_database
            )
            assert settings is not None  # a URI is given
            return open_neo4j(settings, timeout=self.store_timeout)
        if self.data is not None and self.embedded == "memory":
            from ..backends.memory import MemoryBackend
            from ..connect import read_dataset

            return MemoryBackend(read_dataset(self.data, region=self.region))
        return open_backend(self.data, None, region=self.region)


def app_from_env() -> FastAPI:
    """The application of one uvicorn worker, from the spec ``spillover serve`` left in
    the environment (uvicorn's ``factory``)."""
    configure_logging()
    raw = json.loads(os.environ[SPEC_ENV])
    spec = ServeSpec(**{**raw, "cors_origins": tuple(raw.get("cors_origins", ()))})
    return create_app(spec.open_graph, spec.config())


def serve(
    spec: ServeSpec,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    graceful_seconds: int = 30,
    neo4j_password: str | None = None,
) -> None:
    """Run the service until SIGINT or SIGTERM; then stop taking connections, answer the
    requests in flight (up to ``graceful_seconds``) and close the graph.

    ``neo4j_password`` (not part of the spec, which the workers' environment shows) is
    handed to the workers as NEO4J_PASSWORD, beside the spec; without it they read the
    NEO4J_PASSWORD they inherit."""
    if spec.data is None and not spec.neo4j_uri:
        raise SpilloverError("no graph given: pass --data DIR, or --neo4j-uri (or set NEO4J_URI)")
    import uvicorn

    from .httpguard import LIMITS_ENV, GuardedH11Protocol, HttpLimits

    spec.config()  # refuse missing tokens or a bad policy before anything starts
    if spec.data is not None and not Path(spec.data).is_dir():
        raise SpilloverError(f"{spec.data}: no such data folder")
    if neo4j_password:
        os.environ["NEO4J_PASSWORD"] = neo4j_password
    os.environ[SPEC_ENV] = json.dumps(asdict(spec))
    os.environ[LIMITS_ENV] = HttpLimits(spec.header_timeout, spec.max_connections).to_env()
    configure_logging()
    uvicorn.run(
        "spillover.service.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_seconds,
        timeout_keep_alive=spec.keep_alive_timeout,
        server_header=False,
        # the header deadline and the connection cap (spillover.service.httpguard); the plain
        # asyncio loop, whose failed accept() waits a second before it tries again
        http=GuardedH11Protocol,
        loop="asyncio",
    )
