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
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# Powertools documents its own validation error body; `kallo.web` answers `{code, message, details}`.
_POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _ERROR_CONTENT, **extra}


# Error responses, shared under components/responses (`kallo.web` maps every DomainError to
# `{code, message, details?}`), by status.
ERROR_RESPONSES: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("BadRequest", _error("Malformed request (e.g. a body that is not JSON, a bad cursor)")),
    "401": ("Unauthorized", _error("Missing or invalid credentials (refused before any function runs)")),
    "403": (
        "Forbidden",
        _error("The caller can see the object but lacks the permission, or is not registered"),
    ),
    "404": ("NotFound", _error("No such object, or one the caller cannot see")),
    "409": ("Conflict", _error("The request conflicts with the object's current state")),
    "413": ("PayloadTooLarge", _error("The body is larger than the operation accepts")),
    "415": ("UnsupportedMediaType", _error("The body is of a media type the operation does not read")),
    "422": ("ValidationError", _error("The request does not match the schema")),
    "429": (
        "TooManyRequests",
        _error(
            "A rate or quota of the caller is used up (I10)",
            headers={
                "Retry-After": {
                    "description": "Seconds to wait before trying again",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        ),
    ),
}
# Any operation may answer a malformed, oversized or non-JSON body, an unknown id or a bad field; only
# writes conflict with an object's state; only a caller with credentials is refused them, lacks a
# permission or uses up a rate or quota.
_ALWAYS = ("400", "404", "413", "415", "422")
_WRITES_ONLY = ("409",)
_AUTHORIZED_ONLY = ("401", "403", "429")
_WRITES = ("put", "post", "delete", "patch")
# Every authenticated operation takes any of the three credentials.
_AUTHENTICATED = [{name: []} for name in SECURITY_SCHEMES]


def _document_responses(method: str, operation: dict[str, Any], authorized: bool) -> None:
    """The operation's errors with the API's error schema, and 204s without a body (Powertools
    declares a JSON `null` for a handler that returns no content)."""
    responses = operation.setdefault("responses", {})
    if "204" in responses:
        responses["204"] = {"description": "No content"}
    # A read that depends on an object's state too (Get Step Suggestions) declares its 409 itself.
    conflicts = method in _WRITES or "409" in responses
    statuses = _ALWAYS + (_WRITES_ONLY if conflicts else ()) + (_AUTHORIZED_ONLY if authorized else ())
    for status in statuses:  # 422 replaces Powertools' HTTPValidationError
        responses[status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    operation["responses"] = dict(sorted(responses.items()))
    operation["security"] = _AUTHENTICATED if authorized else []


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
        if not hasattr(app, "get_openapi_json_schema"):
            continue  # a compatibility surface's ASGI app: a peer API, documented in docs/COMPATIBILITY.md
        document = json.loads(app.get_openapi_json_schema(title=TITLE, version=version))
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                _document_responses(method, operation, route.authorized)
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
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": dict(ERROR_RESPONSES.values()),
            "securitySchemes": SECURITY_SCHEMES,
        },
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
