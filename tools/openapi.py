"""The REST API's OpenAPI 3.1 document, `python -m tools.openapi`: it merges the documents Powertools
generates for every REST function (one per handler module, from its route and pydantic models), gives
every operation the API's error responses (`{code, message, details?}`, never Powertools'
HTTPValidationError) and its security (the three credentials, or none for the public routes), and
writes docs/openapi.json and the documents function's copy (tools/published.py). A test fails when the
committed document drifts from the code; `openapi-spec-validator` and Redocly check it."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from tools import published

if TYPE_CHECKING:
    from local.runtime import LocalFunction
    from local.template import Route

logger = logging.getLogger(__name__)

NAME = "openapi.json"
DOCUMENT = published.DOCS / NAME

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
    "title": "Error",
    "description": "Every 4xx and 5xx answer of the API (`kallo.web` maps each domain error to it).",
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "A snake_case code a client can branch on, e.g. `not_found`, `validation_error`",
        },
        "message": {"type": "string", "description": "What went wrong, for a person"},
        "details": {
            "type": "array",
            "description": "Present on some errors: for `validation_error`, one `{loc, type, msg}` per "
            'invalid field (`loc` is the path to it, e.g. `["body", "name"]`)',
            "items": {"type": "object", "additionalProperties": True},
        },
    },
    "required": ["code", "message"],
    "examples": [{"code": "not_found", "message": "no such team"}],
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# Powertools documents its own validation error bodies; `kallo.web` answers `{code, message, details}`.
_POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# Where the API is served. The first is relative (to where the document was fetched): Swagger UI at
# /docs then calls the stack that served it, local or deployed.
SERVERS: list[dict[str, Any]] = [
    {"url": ".", "description": "The stack that served this document"},
    {"url": "http://127.0.0.1:3000", "description": "The local stack (`make run`)"},
    {
        "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
        "description": "A deployed stack: its `ApiUrl` output",
        "variables": {
            "restApiId": {"default": "abcdef1234", "description": "The REST API's id"},
            "region": {"default": "us-east-1"},
            "stage": {"default": "v1", "description": "The StageName parameter"},
        },
    },
]
# Every tag an operation names (Redocly's operation-tag-defined fails on one missing here).
TAGS: dict[str, str] = {
    "Auth": "Access tokens, grantees (who may do what on an object) and permission checks",
    "Convos": "Conversations: their steps (questions and answers), users, data sources and exports",
    "Data Sources": "Uploaded documents that ground answers: upload, status, summary, download",
    "Health": "Whether the API answers (no credentials)",
    "Models": "The models this deployment answers with, the names a topic or a step may use",
    "Prompts": "A service account's reusable system prompts",
    "Teams": "Groups of users that own topics",
    "Topics": "A team's subjects: prompt, default model and answer settings, app keys, data sources",
    "Users": "End users of a service account, their invitations and statistics",
}


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
            "A rate or quota of the caller is used up (I10), or the stage's own throttle refused the "
            "request (`code: throttled`, on any operation)",
            headers={
                "Retry-After": {
                    "description": "Seconds to wait before trying again: given when the caller's own "
                    "rate or quota is used up, not by the stage's throttle",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        ),
    ),
}
# Any operation may answer a malformed, oversized or non-JSON body, an unknown id or a bad field, and
# the stage's throttle (template.yaml MethodSettings) covers every route; only writes conflict with an
# object's state; only a caller with credentials is refused them or lacks a permission.
_ALWAYS = ("400", "404", "413", "415", "422", "429")
_WRITES_ONLY = ("409",)
_AUTHORIZED_ONLY = ("401", "403")
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
    routes: list[Route], functions: dict[str, LocalFunction], version: str
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
        "servers": SERVERS,
        "tags": [{"name": name, "description": description} for name, description in sorted(TAGS.items())],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": dict(ERROR_RESPONSES.values()),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }
    return document, missing


def _importable() -> None:
    """Every function's code root (its CodeUri) and the layer on sys.path, as the local stack has them."""
    from local import runtime, template

    runtime.add_code_paths(template.load())


def render() -> str:
    _importable()
    from kallo.settings import get_settings
    from local import runtime, template

    loaded = template.load()
    document, missing = build_document(
        template.rest_routes(loaded), runtime.load_functions(loaded), get_settings().version
    )
    if missing:
        raise SystemExit(f"handlers that cannot be imported: {', '.join(missing)}")
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> None:
    published.write(NAME, render())


if __name__ == "__main__":
    main()
