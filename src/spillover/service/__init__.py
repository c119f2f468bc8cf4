"""The HTTP check service: the app, tokens, limits and the check log.

``create_app``, ``serve`` and ``app_from_env`` need the ``serve`` extra (FastAPI, uvicorn)
and are loaded when first used, as are ``ServeConfig`` (the service's one configuration)
and ``load_tokens``.
"""

from .checklog import CheckLog

_LAZY = {
    "ServeConfig": "config",
    "create_app": "app",
    "serve": "run",
    "app_from_env": "run",
    "load_tokens": "auth",
}


def __getattr__(name: str) -> object:
    """The names that need the ``serve`` extra (or load much), imported when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckLog",
    "ServeConfig",
    "app_from_env",
    "create_app",
    "load_tokens",
    "serve",
]
