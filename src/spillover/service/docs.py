"""The OpenAPI document's pages and examples: ``/docs`` (Swagger UI) and ``/redoc``,
whose assets the service serves itself under :data:`DOCS_ASSETS` (from the
fastapi-offline package), so that they work without the internet; response examples
computed from the Jiang case."""

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from .. import examples
from ..connect import open_folder
from ..engines.search import check as run_check
from ..engines.search import explain_entry
from ..policy import Policy
from ..render.json import explanation_out
from ..rules import recommendation
from .schemas import JIANG_CHECK, CheckIn

__all__ = ["DOCS_ASSETS", "add_examples", "pages"]

#: where the Swagger UI and ReDoc assets are served from (the fastapi-offline package)
DOCS_ASSETS = "/docs-assets"

pages = APIRouter(include_in_schema=False)


@pages.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    """The Swagger UI page."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )


@pages.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """The ReDoc page."""
    return get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def add_examples(app: FastAPI, policy: Policy) -> None:
    """Response examples in the OpenAPI document, computed from the packaged Jiang case
    when the document is first asked for."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        _set_examples(schema["paths"], policy)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _set_examples(paths: dict[str, Any], policy: Policy) -> None:
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
    _example(paths["/v1/checks"]["post"], check)
    _example(paths["/v1/checks:batch"]["post"], {"results": [{"index": 0, "check": check}]})
    _example(paths["/v1/entries/{entry_id}/explanation"]["get"], entry)
    for p in paths["/v1/entries/{entry_id}/explanation"]["get"]["parameters"]:
        if p["name"] == "entry_id":
            p["example"] = "E-QT-J"


def _example(operation: dict[str, Any], value: Any) -> None:
    operation["responses"]["200"]["content"]["application/json"]["example"] = value
