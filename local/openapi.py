"""The API's documents: `GET /openapi.json` merges the OpenAPI 3.1 documents of every REST function
(Powertools generates one per handler module from its route and pydantic models) and `GET /docs`
shows it with Swagger UI, above a plain list of the operations that needs no script.

The document is built on first request (importing every handler takes a moment) and kept once every
handler could be imported; until then it is rebuilt, so functions added while the stack runs appear.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from local import template
from local.runtime import LocalFunction

if TYPE_CHECKING:
    from local.stack import Stack

logger = logging.getLogger(__name__)

TITLE = "Kallo API"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A service account's API key.",
    },
    "AccessTokenAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token minted by POST /auth/access-tokens, limited to its scope objects.",
    },
    "FirebaseAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An ID token of a configured OpenID Connect issuer (Firebase, Cognito, ...).",
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "snake_case error code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {}},
    },
    "required": ["code", "message"],
}
# The gateway refuses missing or invalid credentials before any function runs.
_UNAUTHORIZED = {
    "description": "Missing or invalid credentials",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


# Powertools documents its own validation error body; `kallo.web` answers `{code, message, details}`.
_POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _use_error_schema(responses: dict[str, Any]) -> None:
    if "422" in responses:
        responses["422"] = {"description": "The request does not match the schema", "content": _ERROR_CONTENT}


def build_document(
    routes: list[template.Route], functions: dict[str, LocalFunction], version: str
) -> tuple[dict[str, Any], list[str]]:
    """The merged document, and the handler modules that could not be imported (left out of it)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    missing = []
    for route in routes:
        function = functions[route.function]
        try:
            app = function.module().app
        except Exception as error:
            logger.warning("%s left out of the OpenAPI document: %r", function.handler_name, error)
            missing.append(function.handler_name)
            continue
        document = json.loads(app.get_openapi_json_schema(title=TITLE, version=version))
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                _use_error_schema(operation.setdefault("responses", {}))
                if route.authorized:
                    operation["responses"].setdefault("401", _UNAUTHORIZED)
                else:
                    operation["security"] = []  # overrides the document's default: no credentials
                paths.setdefault(path, {})[method] = operation
        schemas.update(document.get("components", {}).get("schemas", {}))
    for replaced in _POWERTOOLS_ERROR_SCHEMAS:
        schemas.pop(replaced, None)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": version,
            "description": "The Kallo platform's REST API. An operation needs one of the three "
            "credentials below unless it declares `security: []`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES},
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }
    return document, missing


_SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"


def docs_page(document: dict[str, Any]) -> str:
    """Swagger UI (from a CDN) over a server-rendered list of the operations, which stays readable
    offline."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            secured = "" if operation.get("security") == [] else "yes"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}</td><td>{secured}</td></tr>"
            )
    title = html.escape(f"{document['info']['title']} {document['info']['version']}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{_SWAGGER_UI}/swagger-ui.css">
<style>body {{ font-family: sans-serif; margin: 0 1rem; }} td {{ padding: 0 1rem 0 0; }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<details id="operations" open>
<summary>{title}: {len(rows)} operations (<a href="openapi.json">openapi.json</a>)</summary>
<table><tr><th>method</th><th>path</th><th>summary</th><th>credentials</th></tr>
{"".join(rows)}
</table>
</details>
<script src="{_SWAGGER_UI}/swagger-ui-bundle.js" crossorigin></script>
<script>
if (window.SwaggerUIBundle) {{
  SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});
  document.getElementById("operations").open = false;
}}
</script>
</body>
</html>
"""


class ApiDocuments:
    """Serves the merged document and the docs page."""

    def __init__(
        self, routes: list[template.Route], functions: dict[str, LocalFunction], version: str
    ) -> None:
        self.rest_routes = routes
        self.functions = functions
        self.version = version
        self._document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        with self._lock:
            if self._document is not None:
                return self._document
            document, missing = build_document(self.rest_routes, self.functions, self.version)
            if not missing:
                self._document = document
            return document

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(self.document))

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(docs_page(await anyio.to_thread.run_sync(self.document)))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
        ]


def routes(stack: Stack) -> list[BaseRoute]:
    """The stack's route factory for the documents."""
    from kallo.settings import get_settings  # the layer is on sys.path once the stack runs

    version = get_settings().version
    return ApiDocuments(template.rest_routes(stack.template), stack.functions, version).routes()
