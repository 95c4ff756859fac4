"""Over the local stack's real HTTP and WebSocket: the model names a client may use (`GET /models`, 422
`unknown_model` when a topic names another), a topic's `defaults.reply` answering the questions of its
convos that leave `reply` out, an empty step refused, the topic config's merge patch, and the convo's
`updatedAt` moving as steps are added."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.e2e.conftest import RunningStack, WsClient
from tests.support.e2e import ok

pytestmark = pytest.mark.e2e

Connect = Callable[..., WsClient]
EMBEDDED_MODEL = "embedded:smollm2"  # the local stack's one model


def test_models_and_a_topics_default_reply_over_the_websocket(
    stack: RunningStack, ws_connect: Connect
) -> None:
    key = {"x-api-key": stack.api_key}
    models = ok(stack.client.get("/models", headers=key))
    assert models == [{"id": EMBEDDED_MODEL, "provider": "embedded", "default": True}]

    # A topic naming a model the stack does not have is refused when it is written.
    topic = {"name": f"Defaults {uuid.uuid4().hex[:6]}", "description": "answers by default"}
    refused = stack.client.post(
        "/topics", json={**topic, "config": {"defaults": {"model": "bedrock:x"}}}, headers=key
    )
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_model"
    assert EMBEDDED_MODEL in refused.json()["message"]
    defaults = {"reply": True, "maxTokens": 8, "temperature": 0}
    made = ok(
        stack.client.post("/topics", json={**topic, "config": {"defaults": defaults}}, headers=key), 201
    )
    # Merge patch: one default changes, the others stay.
    patched = ok(
        stack.client.patch(
            f"/topics/{made['id']}", json={"config": {"defaults": {"model": EMBEDDED_MODEL}}}, headers=key
        )
    )
    assert patched["config"] == {"defaults": {**defaults, "model": EMBEDDED_MODEL}}

    convo = ok(
        stack.client.post("/convos", params={"topicId": made["id"]}, json={"name": "Hi"}, headers=key), 201
    )
    client = ws_connect(convo["id"], headers=key)
    client.send("convoNewStep", {"content": {}}, request_id="empty")
    error = client.expect("error")
    assert (error["requestId"], error["payload"]["code"]) == ("empty", "validation_error")

    # An explicit reply: false wins over the topic's default...
    client.send(
        "convoNewStep", {"content": {"text": "Just a note."}, "config": {"reply": False}}, request_id="n"
    )
    note = client.expect("convoNewStep")["payload"]
    # ...and a question without config.reply gets an answer, made with the topic's defaults.
    client.send("convoNewStep", {"content": {"text": "Say hello."}}, request_id="q")
    question = client.expect("convoNewStep", authorType="user")["payload"]
    answer = client.expect("convoNewStep", authorType="llm")["payload"]
    assert answer["replyToStepId"] == question["id"]
    assert answer["config"] == {"maxTokens": 8, "temperature": 0, "model": EMBEDDED_MODEL}
    final = client.expect("convoStepUpdate", id=answer["id"], status="completed")["payload"]
    assert final["content"]["text"].strip()

    steps = ok(stack.client.get(f"/convos/{convo['id']}/steps", headers=key))
    assert [s["id"] for s in steps] == [note["id"], question["id"], answer["id"]]
    # The convo's updatedAt moved with its steps.
    after = ok(stack.client.get(f"/convos/{convo['id']}", headers=key))
    assert after["updatedAt"] >= answer["createdAt"] > convo["createdAt"]
