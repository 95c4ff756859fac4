"""Stop Step over the local stack's real sockets: the embedded model writes a long answer, `convoStopStep`
stops it, and it ends `stopped` with the text it had; then an answer made in process
(`kallo.services.answering`, as the compatibility surfaces make them) against the same stack: it yields
its deltas before its end, the stack's WebSocket clients hear them too, and Stop Step over REST ends it.

The stack's bootstrap service account plays the user (its API key opens the WebSocket). The time from
the stop to `stopped` is measured by bench/stop.py, not asserted here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kallo import aws, realtime
from kallo.auth.authenticate import authenticate
from kallo.authz.access import Access
from kallo.llm import registry
from kallo.models.ws import NewStep
from kallo.services import answering, steps
from kallo.settings import get_settings
from local.ws_gateway import MANAGEMENT_PATH
from tests.e2e.conftest import RunningStack, WsClient
from tests.support.e2e import Connect, key, new_convo, ok
from tests.support.local_stack import TABLE_NAME
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.tenants import EMBEDDED_AWS_CREDENTIALS

pytestmark = pytest.mark.e2e

# Long enough that the embedded model is still writing when the stop comes (tens of seconds).
LONG_ANSWER = {"reply": True, "maxTokens": 600, "temperature": 0}
STOP_SECONDS = 15  # a generous bound for a loaded machine; bench/stop.py measures the real figure


def answer_started(client: WsClient, question_id: str) -> dict[str, Any]:
    """The LLM step answering `question_id`, once its first delta arrived."""
    step = client.expect("convoNewStep", replyToStepId=question_id, timeout=120)["payload"]
    client.expect("convoStepUpdate", id=step["id"], seq=1, timeout=120)
    return step


def until_final(client: WsClient, step_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The deltas of `step_id` that arrive before its final update, and that update."""
    deltas = []
    while True:
        payload = client.expect("convoStepUpdate", id=step_id, timeout=STOP_SECONDS)["payload"]
        if "delta" not in payload:
            return deltas, payload
        deltas.append(payload)


def test_convo_stop_step_stops_the_embedded_models_answer(stack: RunningStack, ws_connect: Connect) -> None:
    convo_id = new_convo(stack, "Stop me")
    client = ws_connect(convo_id, headers=key(stack))
    watcher = ws_connect(convo_id, headers=key(stack))
    question = {
        "content": {"text": "Write a very long story about a lighthouse keeper."},
        "config": LONG_ANSWER,
    }
    client.send("convoNewStep", question, request_id="ask")
    question_id = client.expect("convoNewStep", authorType="user")["payload"]["id"]
    step = answer_started(client, question_id)

    client.send("convoStopStep", {"id": step["id"]}, request_id="stop")
    _, final = until_final(client, step["id"])
    assert final["status"] == "stopped", final
    earlier = [
        m["payload"] for m in client.seen if m["type"] == "convoStepUpdate" and "delta" in m["payload"]
    ]
    text = final["content"]["text"]
    assert text.strip() and text.startswith("".join(d["delta"] for d in earlier))
    assert final["seq"] == earlier[-1]["seq"] + 1
    # llama.cpp's counts of what it read and wrote until the stop.
    assert final["usage"]["model"] == "embedded:smollm2"
    assert (
        final["usage"]["inputTokens"] > 10 and 1 <= final["usage"]["outputTokens"] < LONG_ANSWER["maxTokens"]
    )
    assert client.expect("convoStatus", status="idle", timeout=STOP_SECONDS)
    assert not [e for e in client.seen if e["type"] == "error"]
    # Every connection heard the same end; over REST the step is stopped with that text.
    assert (
        watcher.expect("convoStepUpdate", id=step["id"], status="stopped", timeout=STOP_SECONDS)["payload"]
        == final
    )
    stored = ok(stack.client.get(f"/convos/{convo_id}/steps", headers=key(stack)))
    assert [(s["status"], s["content"]) for s in stored if s["id"] == step["id"]] == [
        ("stopped", final["content"])
    ]
    # Asked again: the same answer (202); a completed step is not running.
    assert stack.client.post(f"/steps/{step['id']}/stop", headers=key(stack)).status_code == 202
    refused = stack.client.post(f"/steps/{question_id}/stop", headers=key(stack))
    assert refused.status_code == 409 and refused.json()["code"] == "not_running"


@pytest.fixture
def against_the_stack(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process uses the stack's table and WebSocket connections, as a surface's function does, and
    answers with a slow scripted model (the answer is made here, not by the stack's worker); yields
    the model's name."""
    for name, value in {
        **EMBEDDED_AWS_CREDENTIALS,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "KALLO_TABLE_NAME": TABLE_NAME,
        "KALLO_WS_MANAGEMENT_ENDPOINT": f"{stack.base_url}{MANAGEMENT_PATH}",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws.reset_clients()
    realtime.reset()
    registry.reset()
    # A word at once, then one every 50 ms: 10 s unless stopped.
    with installed(ScriptedLLM(Script.saying("word " * 200, size=5, delay=0.05))) as model:
        yield model
    get_settings.cache_clear()
    aws.reset_clients()
    realtime.reset()
    registry.reset()


def test_an_answer_made_in_process_streams_before_its_end_and_stops(
    stack: RunningStack, against_the_stack: str, ws_connect: Connect
) -> None:
    convo_id = new_convo(stack, "In process")
    client = ws_connect(convo_id, headers=key(stack))
    access = Access(authenticate({"x-api-key": stack.api_key}))
    data = NewStep.model_validate(
        {"content": {"text": "Tell me everything"}, "config": {"model": against_the_stack, "reply": True}}
    )
    question, job = answering.ask(steps.Actor(access), convo_id, data)
    assert client.expect("convoNewStep", id=question["id"])

    received: list[tuple[str, dict[str, Any]]] = []
    stopped: list[int] = []
    for message_type, payload in answering.run(job):
        received.append((message_type, payload))
        if message_type == "convoStepUpdate" and payload.get("seq") == 2:
            # Deltas come while the answer is still being written (the WebSocket hears them too);
            # Stop Step over the stack's REST API ends it.
            assert client.expect("convoStepUpdate", id=job.llm_step_id, seq=1)
            response = stack.client.post(f"/steps/{job.llm_step_id}/stop", headers=key(stack))
            stopped.append(response.status_code)
    assert stopped == [202]
    types = [t for t, _ in received]
    assert types[:3] == ["convoStatus", "convoNewStep", "convoStepUpdate"]
    final = [p for t, p in received if t == "convoStepUpdate" and "delta" not in p]
    assert [f["status"] for f in final] == ["stopped"]
    assert 0 < len(final[0]["content"]["text"]) < len("word " * 200)
    assert received[-1] == ("convoStatus", {"convoId": convo_id, "status": "idle"})
    heard = client.expect("convoStepUpdate", id=job.llm_step_id, status="stopped", timeout=STOP_SECONDS)
    assert heard["payload"] == final[0]
    assert threading.active_count() < 50  # the answer's threads are not piling up
