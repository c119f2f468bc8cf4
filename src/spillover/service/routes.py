"""The service's routes (docs/service.md, Routes), as FastAPI routers: ``checks``
(``/v1/checks``, ``/v1/checks:batch``), ``entries`` (``/v1/entries/…``,
``/v1/subjects/…``) and ``health`` (``/healthz``, ``/readyz``)."""

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response

from ..engines.search import explain_entry
from ..errors import NotFoundError
from ..facts.graph import GraphBackend
from ..policy import Policy
from ..render.json import ExplanationOut, explanation_out
from .answers import about_subject, answer_check, answer_item, forbidden, graph_subject
from .auth import TokenGrant, acts_for
from .checklog import GroupCommit
from .config import ServeConfig
from .deps import Backend, Config, PolicyDep, Service, ServiceDep, Token
from .schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    CheckIn,
    CheckOut,
    ErrorOut,
    StatusOut,
    validation_error,
)

__all__ = ["RESPONSES", "ClientGone", "check_response", "checks", "entries", "health"]

#: the answers every /v1 route may give besides its own
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No token, or a wrong one."},
    503: {"model": ErrorOut, "description": "The graph store (Neo4j) does not answer."},
    413: {"model": ErrorOut, "description": "The request body is over the size limit."},
    408: {"model": ErrorOut, "description": "The request body did not arrive in time."},
}
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "The token does not act for that platform."},
}


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


checks = APIRouter(tags=["checks"])
entries = APIRouter(tags=["entries"])
health = APIRouter(tags=["operations"])


@checks.post(
    "/v1/checks",
    response_model=CheckOut,
    responses={
        **RESPONSES,
        **_FORBIDDEN,
        404: {"model": ErrorOut, "description": "Unknown platform or person."},
    },
    summary="Check a proposed listing",
)
async def post_check(body: CheckIn, token: Token, request: Request, s: ServiceDep) -> Response:
    """The explanation of the proposed listing, a recommendation, and a check id
    under which it is recorded in the check log."""
    return await check_response(s, body, token, request)


async def check_response(s: Service, body: CheckIn, token: str, request: Request) -> Response:
    """The answer of ``POST /v1/checks`` to the valid ``body`` of the caller ``token``
    (the route's, and :mod:`~spillover.service.shortcut`'s): its record durable in the
    check log before it is returned; 403, 404 as :class:`HTTPException`."""
    if not acts_for(s.grants, token, body.platform_id):
        raise HTTPException(403, forbidden(token, body.platform_id))
    check = partial(answer_check, s.graph, body, token, ("body",), policy=s.policy, config=s.config)
    try:
        if s.inline:
            out, record = check()
        else:
            out, record = await asyncio.get_running_loop().run_in_executor(s.threads, check)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    await _record(request, s.check_log, [record])
    return _json(out)


@checks.post(
    "/v1/checks:batch",
    response_model=BatchOut,
    responses=RESPONSES,
    summary="Check proposed listings in one call",
)
async def post_batch(body: BatchIn, token: Token, request: Request, s: ServiceDep) -> Response:
    """Each item answered in order; a bad item gets an error of its own."""
    if len(body.checks) > s.config.max_batch:
        raise validation_error(
            ("body", "checks"),
            f"at most {s.config.max_batch} checks in one batch",
            len(body.checks),
        )
    left = asyncio.Event()
    watcher = asyncio.create_task(_watch(request, left))
    answer = partial(
        _answer_all, s.graph, body, token, left, grants=s.grants, policy=s.policy, config=s.config
    )
    try:
        results, records = await asyncio.get_running_loop().run_in_executor(s.threads, answer)
    finally:
        watcher.cancel()
    if left.is_set():
        raise ClientGone
    # the batch's records in one write, once every item is answered: a batch whose
    # client left, or a process killed meanwhile, leaves none of them in the log
    await _record(request, s.check_log, records)
    return _json(BatchOut(results=results))


def _json(out: CheckOut | BatchOut) -> Response:
    """The answer's JSON, encoded once: the model was validated when it was built, so
    FastAPI's second validation against ``response_model`` is skipped; the bytes are
    those FastAPI would send (pydantic's ``dump_json``, by alias)."""
    return Response(out.model_dump_json(by_alias=True), media_type="application/json")


def _answer_all(
    graph: GraphBackend,
    body: BatchIn,
    token: str,
    left: asyncio.Event,
    *,
    grants: Mapping[str, TokenGrant],
    policy: Policy,
    config: ServeConfig,
) -> tuple[list[BatchItemOut], list[dict[str, Any]]]:
    """The answers of a batch's items and their records, until the client leaves."""
    results: list[BatchItemOut] = []
    records: list[dict[str, Any]] = []
    for i, raw in enumerate(body.checks):
        if left.is_set():
            break  # the client is gone: no more work for it
        item = answer_item(
            graph, i, raw, token, records, grants=grants, policy=policy, config=config
        )
        results.append(item)
    return results, records


async def _watch(request: Request, left: asyncio.Event) -> None:
    """Set ``left`` when the client of ``request`` closes its connection."""
    while not await request.is_disconnected():
        await asyncio.sleep(0.2)
    left.set()


async def _record(request: Request, check_log: GroupCommit, records: list[dict[str, Any]]) -> None:
    """Write the records to the check log if the client still waits for the answer;
    raise :class:`ClientGone` (nothing written) if it has left. Returns once they are
    durable (fsynced, in one write with the records of the answers given meanwhile)."""
    if await request.is_disconnected():
        raise ClientGone
    await check_log.append_all(records)


@entries.get(
    "/v1/entries/{entry_id:path}/explanation",
    response_model=ExplanationOut,
    responses={**RESPONSES, 404: {"model": ErrorOut, "description": "Unknown entry."}},
    summary="Explain a recorded blacklist entry",
)
def get_explanation(
    entry_id: str, token: Token, graph: Backend, config: Config, policy: PolicyDep
) -> ExplanationOut:
    """The explanation JSON (docs/contract.md §3) of the entry ``entry_id``."""
    try:
        return explanation_out(explain_entry(graph, entry_id, policy, max_paths=config.max_paths))
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


@entries.get(
    "/v1/subjects/{kind}/{subject_id:path}/entries",
    response_model=list[ExplanationOut],
    responses={**RESPONSES, 404: {"model": ErrorOut, "description": "Unknown subject."}},
    summary="Explain every entry on a person or a phone",
)
def get_subject_entries(
    kind: Literal["person", "phone"],
    subject_id: str,
    token: Token,
    graph: Backend,
    config: Config,
    policy: PolicyDep,
) -> list[ExplanationOut]:
    """Every recorded entry on the subject, explained: for a person also the entries
    on a phone they owned on the listing day."""
    subject = graph_subject(kind, subject_id, config.region, ("path", "subject_id"))
    try:
        found = about_subject(graph, kind, subject, policy, config.max_paths)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return [explanation_out(e) for e in found]


@health.get("/healthz", response_model=StatusOut)
async def healthz() -> StatusOut:
    """The process is alive (no token needed)."""
    return StatusOut(status="ok")


@health.get(
    "/readyz",
    response_model=StatusOut,
    responses={503: {"model": StatusOut, "description": "The graph store does not answer."}},
)
async def readyz(response: Response, request: Request, config: Config) -> StatusOut:
    """Ready to answer: the graph is loaded, and Neo4j (if used) answers within
    a second or two."""
    b = getattr(request.app.state, "backend", None)
    if b is None or not await asyncio.to_thread(_answers, b, config.ready_timeout):
        response.status_code = 503
        return StatusOut(status="unavailable", backend=config.backend_name)
    return StatusOut(status="ok", backend=config.backend_name)


def _answers(backend: GraphBackend, timeout: float) -> bool:
    answers = getattr(backend, "answers", None)
    if answers is None:
        return True  # an embedded graph: loaded is ready
    return bool(answers(timeout))
