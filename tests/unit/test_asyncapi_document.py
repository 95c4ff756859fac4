"""docs/asyncapi.json is the WebSocket API's published contract (AsyncAPI 3.0): generated from the
payload models (`kallo.models.ws`) and the message handlers, it must match the code, name every client
and server message with its payload, and say how to connect and authenticate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kallo.models.ws import SERVER_MESSAGES
from kallo.websocket import CLIENT_MESSAGES
from tests.support.ws import documented
from tools import asyncapi, published

DOCUMENT = json.loads(asyncapi.DOCUMENT.read_text())


def test_the_committed_asyncapi_document_matches_the_code() -> None:
    assert published.stale(asyncapi.NAME, asyncapi.render()) == [], (
        "docs/asyncapi.json is out of date: run `python -m tools.asyncapi`"
    )


def _resolve(ref: str) -> Any:
    node: Any = DOCUMENT
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves() -> None:
    refs = _refs(DOCUMENT)
    assert len(refs) > 50
    for ref in refs:
        assert _resolve(ref) is not None, ref


def _operations(action: str) -> dict[str, dict]:
    """Message type → the message of each `action` operation."""
    found = {}
    for operation in DOCUMENT["operations"].values():
        if operation["action"] == action:
            assert operation["channel"] == {"$ref": "#/channels/convo"}
            (message,) = [_resolve(_resolve(m["$ref"])["$ref"]) for m in operation["messages"]]
            found[message["name"]] = message
    return found


def test_every_client_message_is_sent_with_its_handlers_payload_model() -> None:
    sent = _operations("send")
    assert set(sent) == set(CLIENT_MESSAGES)
    for message_type, (model, _) in asyncapi.client_payloads().items():
        envelope = sent[message_type]["payload"]
        assert envelope["required"] == ["type", "payload"]
        assert envelope["properties"]["type"]["const"] == message_type
        schema = _resolve(envelope["properties"]["payload"]["$ref"])
        fields = {f.alias or n for n, f in model.model_fields.items()}
        # Every documented field is the model's (a refused `id` is left out of the schema).
        assert set(schema["properties"]) <= fields and schema["properties"], message_type
    # What a convoNewStep takes, config.reply included.
    new_step = _resolve(sent["convoNewStep"]["payload"]["properties"]["payload"]["$ref"])
    assert "content" in new_step["required"]
    assert "reply" in DOCUMENT["components"]["schemas"]["StepConfig"]["properties"]


def test_every_server_message_is_received_with_its_payload_model() -> None:
    received = _operations("receive")
    assert set(received) == set(SERVER_MESSAGES)
    for message_type, shapes in SERVER_MESSAGES.items():
        payload = received[message_type]["payload"]["properties"]["payload"]
        refs = [option["$ref"] for option in payload.get("oneOf", [payload])]
        assert len(refs) == len(shapes), message_type
        for ref, model in zip(refs, shapes, strict=True):
            schema = _resolve(ref)
            assert set(schema["properties"]) == {f.alias or n for n, f in model.model_fields.items()}
        assert received[message_type]["description"], message_type  # the models' docstrings
    update = DOCUMENT["components"]["schemas"]["StepChange"]["properties"]
    assert {"delta", "seq", "content", "status", "usage", "annotations"} <= set(update)


def test_the_document_says_where_and_how_to_connect() -> None:
    servers = DOCUMENT["servers"]
    assert (servers["local"]["protocol"], servers["local"]["host"], servers["local"]["pathname"]) == (
        "ws",
        "127.0.0.1:3000",
        "/ws",
    )
    assert servers["deployed"]["protocol"] == "wss"
    assert servers["deployed"]["host"] == "{apiId}.execute-api.{region}.amazonaws.com"
    query = DOCUMENT["channels"]["convo"]["bindings"]["ws"]["query"]
    assert set(query["properties"]) == {"convoId", "token"} and query["required"] == ["convoId"]
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"]["name"] == "x-api-key" and schemes["TokenQuery"]["in"] == "query"
    assert {schemes[n]["scheme"] for n in ("AccessTokenAuth", "FirebaseAuth")} == {"bearer"}
    for server in servers.values():
        assert {s["$ref"].rsplit("/", 1)[1] for s in server["security"]} == set(schemes)
    envelope = DOCUMENT["components"]["schemas"]["Envelope"]
    assert {"type", "payload", "requestId"} == set(envelope["properties"])


def test_a_frame_the_document_does_not_describe_fails_the_tests_that_see_it() -> None:
    """The WebSocket tests check every frame posted (tests/support/ws.py) with `documented`."""
    documented({"type": "convoStepUpdate", "payload": {"id": "s-1", "delta": "Hi", "seq": 1}})
    documented({"type": "error", "payload": {"code": "not_found", "message": "no"}, "requestId": "r"})
    with pytest.raises(AssertionError, match="undocumented"):
        documented({"type": "convoNewStep", "payload": {**_step(), "secret": 1}})
    with pytest.raises(AssertionError, match="SERVER_MESSAGES"):
        documented({"type": "convoSomethingNew", "payload": {}})
    with pytest.raises(AssertionError, match="status"):
        documented({"type": "convoStatus", "payload": {"convoId": "c", "status": "thinking"}})


def _step() -> dict[str, Any]:
    return {
        "id": "s-1",
        "convoId": "c-1",
        "authorType": "user",
        "content": {"text": "Hi"},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }
