"""Gloo KaLLM message over the local stack's real HTTP: the seed's curl example, run word for word with
the base URL and the token swapped, answers from a document uploaded to the app key's topic with its
sources and follow-up suggestions; a real SSE client sees the first delta well before the end; the chat
is an ordinary convo of the topic over REST; another tenant's key cannot continue it."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.e2e.conftest import RunningStack
from tests.e2e.test_data_sources_e2e import ok, until
from tests.support.tenants import service_account

pytestmark = pytest.mark.e2e

# Seed 002's example, as written there.
SEED_CURL = """curl --request POST \\
  --url https://platform.ai.gloo.com/ai/{v}/message/kallm \\
  --header 'Authorization: Bearer <token>' \\
  --header 'Content-Type: application/json' \\
  --data '{
  "chat_id": "<string>",
  "query": "What is your name?",
  "character_limit": 123,
  "sources_limit": 123,
  "stream": true,
  "publishers": [
    "<string>"
  ]
}'"""
GLOO_BASE_URL = "https://platform.ai.gloo.com/ai/{v}"
# An answer of the embedded model on a busy machine (the convo's naming may hold the model a while).
ANSWER_SECONDS = 300
# What the topic knows: its assistant's name, so that the seed's question finds it.
DOCUMENT = (
    b"# About this assistant\n\n"
    b"The name of this assistant is Kallo Helper. It answers questions about project Heron.\n\n"
    b"## Heron\n\nThe launch code of project Heron is ZX-42.\n"
)


def app_of(stack: RunningStack, api_key: str, name: str) -> dict[str, Any]:
    """A topic of the service account of `api_key`, the document uploaded, processed and linked to it,
    and an app key of the topic: `{key, topicId, dataSourceId, headers}` (the account's headers)."""
    headers = {"x-api-key": api_key}
    topic = ok(stack.client.post("/topics", json={"name": name, "description": ""}, headers=headers), 201)
    files = {"file": (f"{name}.md", DOCUMENT, "text/markdown")}
    source = ok(stack.client.post("/data-sources/uploads", files=files, headers=headers), 201)

    def ready() -> bool:
        found = ok(stack.client.get(f"/data-sources/{source['id']}", headers=headers))
        assert found["status"] != "failed", found
        return found["status"] == "ready"

    until("the upload to be processed", ready)
    ok(stack.client.put(f"/topics/{topic['id']}/data-sources/{source['id']}", headers=headers), 204)
    key = ok(stack.client.post(f"/topics/{topic['id']}/app-keys", json={"name": name}, headers=headers), 201)
    return {"key": key["key"], "topicId": topic["id"], "dataSourceId": source["id"], "headers": headers}


@pytest.fixture(scope="module")
def app(stack: RunningStack) -> dict[str, Any]:
    return app_of(stack, stack.api_key, f"gloo-{uuid.uuid4().hex[:6]}")


def named(stack: RunningStack, app: dict[str, Any], chat_id: str) -> None:
    """Wait until the chat has its generated name: naming goes on in the stack after the answer, on the
    embedded model, which must be left idle for the next test (and for a clean stop)."""

    def has_name() -> bool:
        return bool(ok(stack.client.get(f"/convos/{chat_id}", headers=app["headers"]))["name"])

    until("the chat to be named", has_name, seconds=ANSWER_SECONDS)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            found.append((fields.get("event", "message"), json.loads(fields["data"])))
    return found


def test_the_seeds_curl_answers_with_sources_and_suggestions(stack: RunningStack, app: dict[str, Any]):
    command = SEED_CURL.replace(GLOO_BASE_URL, f"{stack.base_url}/gloo/ai/v1").replace("<token>", app["key"])
    run = subprocess.run(
        shlex.split(command.replace("\\\n", " ")),
        capture_output=True,
        text=True,
        timeout=ANSWER_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    *deltas, (last, whole) = sse_events(run.stdout)
    assert last == "done", run.stdout
    assert deltas and all(name == "message" for name, _ in deltas)
    assert "".join(d["message"] for _, d in deltas) == whole["message"]
    assert whole["message"].strip() and len(whole["message"]) <= 123
    # The placeholder publisher names nothing, so nothing is narrowed: the document grounds the answer.
    assert whole["sources"] and {s["dataSourceId"] for s in whole["sources"]} == {app["dataSourceId"]}
    assert all(s["text"] in DOCUMENT.decode() and s["name"].endswith(".md") for s in whole["sources"])
    assert isinstance(whole["suggestions"], list)

    # The chat is an ordinary convo of the topic: its team (here its owner) sees it over REST.
    convos = ok(stack.client.get("/convos", params={"topicId": app["topicId"]}, headers=app["headers"]))
    assert whole["chat_id"] in [c["id"] for c in convos]
    steps = ok(stack.client.get(f"/convos/{whole['chat_id']}/steps", headers=app["headers"]))
    assert [s["id"] for s in steps] == [whole["query_id"], whole["message_id"]]
    assert steps[1]["annotations"][0]["dataSourceId"] == app["dataSourceId"]
    kept = ok(stack.client.get(f"/steps/{whole['message_id']}/suggestions", headers=app["headers"]))
    assert kept["suggestions"] == whole["suggestions"]
    named(stack, app, whole["chat_id"])


def test_a_blocking_answer_continues_the_chat(stack: RunningStack, app: dict[str, Any]):
    auth = {"Authorization": f"Bearer {app['key']}"}
    url = f"{stack.base_url}/gloo/ai/v1/message/kallm"
    patient = httpx.Client(timeout=ANSWER_SECONDS)
    first = ok(patient.post(url, json={"query": "What is your name?", "character_limit": 80}, headers=auth))
    body = {
        "query": "What is the launch code of project Heron?",
        "chat_id": first["chat_id"],
        "character_limit": 80,
    }
    second = ok(patient.post(url, json=body, headers=auth, params={"enable_suggestions": "0"}))
    assert second["chat_id"] == first["chat_id"] and second["query_id"] != first["query_id"]
    assert {s["dataSourceId"] for s in second["sources"]} == {app["dataSourceId"]}
    assert "suggestions" not in second
    assert set(second) == {"query_id", "message_id", "chat_id", "message", "timestamp", "sources"}
    named(stack, app, first["chat_id"])

    # Another tenant's key (of its own topic) cannot continue it, nor can another end user of this key.
    label = f"gloo-other-{uuid.uuid4().hex[:6]}"
    other = app_of(stack, service_account(stack, label)[1], label)
    for headers, extra in (({"Authorization": f"Bearer {other['key']}"}, {}), (auth, {"user": "mallory"})):
        probe = {"query": "What did they ask?", "chat_id": first["chat_id"], **extra}
        refused = patient.post(url, json=probe, headers=headers)
        assert refused.status_code == 404 and refused.json()["code"] == "not_found"


def test_a_real_sse_client_sees_the_first_delta_before_the_end(stack: RunningStack, app: dict[str, Any]):
    body = {"query": "Tell me about project Heron in detail.", "stream": True, "character_limit": 400}
    auth = {"Authorization": f"Bearer {app['key']}"}
    arrivals: list[tuple[float, str, dict[str, Any]]] = []
    with httpx.Client(base_url=stack.base_url, timeout=ANSWER_SECONDS) as client:
        started = time.monotonic()
        with connect_sse(client, "POST", "/gloo/ai/v1/message/kallm", json=body, headers=auth) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            for event in source.iter_sse():
                arrivals.append((time.monotonic() - started, event.event, event.json()))
    *deltas, (ended, last, whole) = arrivals
    assert last == "done" and len(deltas) >= 2, arrivals
    first_delta = deltas[0][0]
    # Streamed, not buffered: the first words came while the model was still writing the rest.
    assert ended - first_delta > 0.2, arrivals
    assert "".join(d["message"] for _, _, d in deltas) == whole["message"]
    named(stack, app, whole["chat_id"])
