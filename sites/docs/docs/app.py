"""The API's documents, public (no authorizer): GET /openapi.json (REST, OpenAPI 3.1), GET /asyncapi.json
(WebSocket, AsyncAPI 3.0) and GET /docs, Swagger UI over the OpenAPI document, with its files under
GET /docs/{proxy+}. A Starlette app on Mangum; the local stack serves the same app (`asgi_app`).

Everything is a file shipped in this function's package: the documents are the generators' copies in
documents/ (`python -m tools.openapi`, `python -m tools.asyncapi` write docs/ and documents/ alike; a
test holds them equal), Swagger UI is vendored from npm's swagger-ui-dist in static/ (static/README.md),
so the page loads nothing from another origin. Its Content-Security-Policy says so too: scripts,
styles, images and requests from this origin only.

The page's URLs are relative (`docs/swagger-ui.css`, `openapi.json`), so they hold under a stage
prefix (`/Prod/docs`) as well as on the local stack (`/docs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

HERE = Path(__file__).resolve().parent
DOCUMENTS = HERE / "documents"
STATIC = HERE / "static"
# The files of static/ the page uses; nothing else there is served (licence texts, README).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-init.js": "text/javascript; charset=utf-8",
}
# Swagger UI sets inline style attributes and shows inline SVG/data: images; nothing else is needed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"x-content-type-options": "nosniff"}
# Swagger UI is pinned in package.json: a day's cache is safe. The documents change with every deploy.
_ASSET_CACHE = "public, max-age=86400"
_DOCUMENT_CACHE = "no-cache"


def _document(name: str) -> Response:
    return FileResponse(
        DOCUMENTS / name,
        media_type="application/json",
        headers={**_HEADERS, "cache-control": _DOCUMENT_CACHE},
    )


async def openapi_json(request: Request) -> Response:
    return _document("openapi.json")


async def asyncapi_json(request: Request) -> Response:
    return _document("asyncapi.json")


async def docs_page(request: Request) -> Response:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**_HEADERS, "cache-control": _DOCUMENT_CACHE, "content-security-policy": CSP},
    )


async def docs_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "":
        # /docs/ would resolve the page's relative URLs one level too deep: back to /docs.
        return RedirectResponse("../docs", status_code=308)
    if name not in ASSETS:
        return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
    return FileResponse(
        STATIC / name, media_type=ASSETS[name], headers={**_HEADERS, "cache-control": _ASSET_CACHE}
    )


app = Starlette(
    routes=[
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/asyncapi.json", asyncapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/docs/{name:path}", docs_file, methods=["GET"]),
    ]
)
_adapter = Mangum(app, lifespan="off")


def lambda_handler(event: dict, context: Any) -> dict:
    return _adapter(event, context)


# The local stack serves the app itself, as it does the compatibility surfaces.
lambda_handler.asgi_app = app  # type: ignore[attr-defined]
