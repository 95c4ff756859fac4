"""The WebSocket API's AsyncAPI 3.0 document, `python -m tools.asyncapi`: every client message (send)
with the payload model its handler validates (`kallo.websocket.message_handler(...).payload_model`), and
every server message (receive) with its model in `kallo.models.ws.SERVER_MESSAGES`, each in the envelope
`{type, payload, requestId?}`; the servers (local ws://, deployed wss://), the convo channel with its
`convoId` and `token` query parameters, and the credentials. It writes docs/asyncapi.json and the
documents function's copy (tools/published.py); a test fails when they drift from the code, and the
AsyncAPI CLI validates it in `make test`."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tools import openapi, published

NAME = "asyncapi.json"
DOCUMENT = published.DOCS / NAME
CHANNEL = "convo"
_SCHEMAS = "#/components/schemas/{model}"

DESCRIPTION = """\
Live convos: a connection joins one convo and hears everything that happens in it, and sends the
messages that change it.

**Connect** to the server's URL with `?convoId=<uuid>` (the local stack also takes
`/ws/convos/<uuid>`) and one credential: an `Authorization: Bearer` header (an access token or an
OpenID Connect ID token), a `token` query parameter (the same tokens; browsers cannot set headers on a
WebSocket), or an `x-api-key` header (a service account). The caller needs to be able to view the convo;
the upgrade is refused with 400 (no or bad convoId), 401 (no or bad credential), 403 (an identity with
no user) or 404 (unknown or hidden convo).

**Every message**, both ways, is a JSON text frame `{"type": ..., "payload": {...}, "requestId": ...}`.
`requestId` (up to 256 characters) is the client's own: the `error` a message causes echoes it, and so
do the messages it causes when they go back to their sender only.

**An answer** (a step sent with `config.reply: true`) arrives as `convoStatus` `running`, a
`convoNewStep` with `authorType: "llm"` and `status: "running"`, `convoStepUpdate`s with `delta` and
`seq` (1, 2, ...: append each in order), a final `convoStepUpdate` with the whole `content` and its
`status`, then `convoStatus` `idle`.

Every message is checked against the caller's current permissions: a connection that may no longer view
its convo gets an `unauthorized` error and is closed.
"""

SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKeyAuth": {
        "type": "httpApiKey",
        "in": "header",
        "name": "x-api-key",
        "description": openapi.SECURITY_SCHEMES["ApiKeyAuth"]["description"],
    },
    "AccessTokenAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": openapi.SECURITY_SCHEMES["AccessTokenAuth"]["description"],
    },
    "FirebaseAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": openapi.SECURITY_SCHEMES["FirebaseAuth"]["description"],
    },
    "TokenQuery": {
        "type": "httpApiKey",
        "in": "query",
        "name": "token",
        "description": "An access token or an ID token in the `token` query parameter (for browsers).",
    },
}
_SECURITY = [{"$ref": f"#/components/securitySchemes/{name}"} for name in SECURITY_SCHEMES]

SERVERS: dict[str, Any] = {
    "local": {
        "host": "127.0.0.1:3000",
        "pathname": "/ws",
        "protocol": "ws",
        "description": "The local stack (`make run`)",
        "security": _SECURITY,
    },
    "deployed": {
        "host": "{apiId}.execute-api.{region}.amazonaws.com",
        "pathname": "/{stage}",
        "protocol": "wss",
        "description": "A deployed stack: its `WebSocketUrl` output",
        "variables": {
            "apiId": {"default": "abcdef1234", "description": "The WebSocket API's id"},
            "region": {"default": "us-east-1"},
            "stage": {"default": "v1", "description": "The StageName parameter"},
        },
        "security": _SECURITY,
    },
}

QUERY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "convoId": {"type": "string", "format": "uuid", "description": "The convo to join"},
        "token": {
            "type": "string",
            "description": "A credential for clients that cannot set headers (browsers): an access token "
            "or an ID token",
        },
    },
    "required": ["convoId"],
}
HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "authorization": {"type": "string", "description": "`Bearer <access token or ID token>`"},
        "x-api-key": {"type": "string", "description": "A service account's API key"},
    },
}
REQUEST_ID: dict[str, Any] = {
    "type": "string",
    "maxLength": 256,
    "description": "The client's own id for the message, echoed by what it causes for its sender",
}


def _snake(message_type: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", message_type).lower()


def client_payloads() -> dict[str, tuple[type[BaseModel], str]]:
    """Every client message: the payload model its handler validates, and its handler's docstring."""
    from kallo.websocket import CLIENT_MESSAGES

    found = {}
    for message_type in CLIENT_MESSAGES:
        module = importlib.import_module(f"ws.{_snake(message_type)}")
        model = getattr(module.lambda_handler, "payload_model", None)
        if model is None:
            raise SystemExit(f"ws.{_snake(message_type)}: lambda_handler is not made by message_handler")
        found[message_type] = (model, inspect.cleandoc(module.__doc__ or ""))
    return found


def _message(message_type: str, schemas: list[str], summary: str, description: str) -> dict[str, Any]:
    refs = [{"$ref": _SCHEMAS.format(model=schema)} for schema in schemas]
    return {
        "name": message_type,
        "title": message_type,
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "correlationId": {"$ref": "#/components/correlationIds/requestId"},
        "payload": {
            "type": "object",
            "properties": {
                "type": {"const": message_type, "description": "The message type"},
                "payload": refs[0] if len(refs) == 1 else {"oneOf": refs},
                "requestId": REQUEST_ID,
            },
            "required": ["type", "payload"],
        },
    }


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    return flat.split(". ")[0].rstrip(".") if flat else ""


def build_document(version: str) -> dict[str, Any]:
    from kallo.models.ws import SERVER_MESSAGES, Envelope

    clients = client_payloads()
    models: list[tuple[type[BaseModel], str]] = [(model, "validation") for model, _ in clients.values()]
    models += [(model, "serialization") for shapes in SERVER_MESSAGES.values() for model in shapes]
    names, definitions = models_json_schema(models, ref_template=_SCHEMAS)
    schemas = definitions.get("$defs", {})
    envelope = Envelope.model_json_schema(by_alias=True, ref_template=_SCHEMAS)

    def schema_name(model: type[BaseModel], mode: str) -> str:
        return names[(model, mode)]["$ref"].rsplit("/", 1)[1]

    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for message_type, (model, doc) in clients.items():
        key = f"{message_type}.send"
        messages[key] = _message(message_type, [schema_name(model, "validation")], _first_sentence(doc), doc)
        operations[f"send{message_type[0].upper()}{message_type[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": f"Send {message_type}",
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{key}"}],
        }
    for message_type, shapes in SERVER_MESSAGES.items():
        key = f"{message_type}.receive"
        docs = [inspect.cleandoc(model.__doc__ or "") for model in shapes]
        payloads = [schema_name(model, "serialization") for model in shapes]
        messages[key] = _message(message_type, payloads, _first_sentence(docs[0]), "\n\n".join(docs))
        operations[f"receive{message_type[0].upper()}{message_type[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": f"Receive {message_type}",
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{key}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Kallo WebSocket API", "version": version, "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": SERVERS,
        "channels": {
            CHANNEL: {
                "address": None,
                "title": "A convo",
                "description": "One connection per convo, named by the `convoId` query parameter.",
                "servers": [{"$ref": f"#/servers/{name}"} for name in SERVERS],
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
                "bindings": {
                    "ws": {"method": "GET", "query": QUERY, "headers": HEADERS, "bindingVersion": "0.1.0"}
                },
            }
        },
        "operations": operations,
        "components": {
            "schemas": {"Envelope": envelope, **dict(sorted(schemas.items()))},
            "messages": messages,
            "securitySchemes": SECURITY_SCHEMES,
            "correlationIds": {
                "requestId": {
                    "description": "A message's requestId, echoed by the error it causes",
                    "location": "$message.payload#/requestId",
                }
            },
        },
    }


def render() -> str:
    openapi._importable()
    from kallo.settings import get_settings

    return json.dumps(build_document(get_settings().version), indent=2) + "\n"


def main() -> None:
    published.write(NAME, render())


if __name__ == "__main__":
    main()
