"""The FastAPI dependencies of the routes: what the application holds (set by
:func:`~spillover.service.app.create_app` on ``app.state``) and the caller's token.

Each is also an ``Annotated`` type (``Config``, ``Backend``, ...) for a route's
parameters."""

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..facts.graph import GraphBackend
from ..policy import Policy
from .auth import TokenGrant
from .checklog import GroupCommit
from .config import ServeConfig

__all__ = [
    "Backend",
    "CheckLogDep",
    "Config",
    "Grants",
    "PolicyDep",
    "Service",
    "ServiceDep",
    "Token",
    "bearer",
    "get_backend",
    "get_check_log",
    "get_config",
    "get_grants",
    "get_policy",
    "get_service",
    "require_token",
    "unauthorized",
]

#: the bearer scheme of the OpenAPI document (the gate has checked the token already)
bearer = HTTPBearer(auto_error=False)


async def get_config(request: Request) -> ServeConfig:
    """The service's configuration."""
    config: ServeConfig = request.app.state.config
    return config


async def get_policy(request: Request) -> Policy:
    """The scoring policy."""
    policy: Policy = request.app.state.policy
    return policy


async def get_grants(request: Request) -> Mapping[str, TokenGrant]:
    """The bearer tokens by name."""
    grants: Mapping[str, TokenGrant] = request.app.state.grants
    return grants


async def get_check_log(request: Request) -> GroupCommit:
    """The check log, written by group commit."""
    check_log: GroupCommit = request.app.state.check_log_commit
    return check_log


async def get_backend(request: Request) -> GraphBackend:
    """The graph, opened at startup."""
    backend: GraphBackend = request.app.state.backend
    return backend


@dataclass(frozen=True)
class Service:
    """What a check route needs, in one dependency (each dependency costs a little on
    every request): the graph, the configuration, the policy, the tokens, the check log
    and the threads the checks run in."""

    graph: GraphBackend
    config: ServeConfig
    policy: Policy
    grants: Mapping[str, TokenGrant]
    check_log: GroupCommit
    threads: ThreadPoolExecutor
    #: a single check runs on the event loop itself rather than in ``threads``: on the
    #: embedded memory graph, where it is about a millisecond of CPU and waits on
    #: nothing (the hand-off to a thread and back, and the two threads taking turns at
    #: Python's lock, cost a good part of that again)
    inline: bool = False


async def get_service(request: Request) -> Service:
    """What a check route needs (:class:`Service`), made once at startup."""
    service: Service = request.app.state.service
    return service


def unauthorized() -> HTTPException:
    """The 401 answer."""
    return HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The name of the caller's token (401 without one)."""
    # the gate has checked the token before anything else (so that a request without
    # one learns nothing, not even whether its body is valid)
    name = getattr(request.state, "token_name", None)
    if credentials is None or name is None:
        raise unauthorized()
    return str(name)


Config = Annotated[ServeConfig, Depends(get_config)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
Grants = Annotated[Mapping[str, TokenGrant], Depends(get_grants)]
CheckLogDep = Annotated[GroupCommit, Depends(get_check_log)]
Backend = Annotated[GraphBackend, Depends(get_backend)]
Token = Annotated[str, Depends(require_token)]
ServiceDep = Annotated[Service, Depends(get_service)]
