"""The Dify-style service API over the local stack's real HTTP, with Dify's own client (`dify-client`
from PyPI, its `base_url` pointed at the stack), a real SSE client (`httpx-sse`), and the seed's curl
examples run word for word (the base URL and the key swapped in). Answers come from the stack's
embedded model, made in the surface's own process, streamed as the model writes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dify_client import ChatClient
from httpx_sse import connect_sse

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

SEED_BASE = "https://reiki-dev.web3go.xyz/ai/v1"
SEED_KEY = "ENTER-YOUR-SECRET-KEY"
# Small answers: the embedded model writes a few tokens a second on a busy machine.
SHORT = {"maxTokens": 12, "temperature": 0}


@dataclass
class App:
    stack: RunningStack
    topic_id: str
    key: str

    @property
    def base_url(self) -> str:
        return f"{self.stack.base_url}/dify/v1"

    def client(self) -> ChatClient:
        client = ChatClient(self.key)
        client.base_url = self.base_url
        return client

    def rest(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Kallo's REST API as the tenant (the stack's bootstrap service account)."""
        return self.stack.client.request(method, path, headers={"x-api-key": self.stack.api_key}, **options)


def make_app(stack: RunningStack, defaults: dict[str, Any]) -> App:
    headers = {"x-api-key": stack.api_key}
    prompt = stack.client.post(
        "/prompts", headers=headers, json={"text": "Answer {{name}} in one short line."}
    )
    assert prompt.status_code == 201, prompt.text
    topic = stack.client.post(
        "/topics",
        headers=headers,
        json={"name": "Dify app", "description": "Ask me anything.", "config": {"defaults": defaults}},
    )
    assert topic.status_code == 201, topic.text
    topic_id = topic.json()["id"]
    linked = stack.client.put(f"/topics/{topic_id}/prompts/{prompt.json()['id']}", headers=headers)
    assert linked.status_code == 204, linked.text
    made = stack.client.post(f"/topics/{topic_id}/app-keys", headers=headers, json={"name": "e2e"})
    assert made.status_code == 201, made.text
    return App(stack, topic_id, made.json()["key"])


@pytest.fixture(scope="module")
def app(stack: RunningStack) -> App:
    return make_app(stack, SHORT)


def sse_events(response: Any) -> Iterator[dict[str, Any]]:
    """The `data:` events of a `requests` streaming response (what dify-client gives back)."""
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            yield json.loads(line.removeprefix("data:").strip())


# -- dify-client ---------------------------------------------------------------------------------------


def test_dify_client_chats_blocking_and_the_topics_team_sees_the_conversation(app: App):
    client = app.client()
    response = client.create_chat_message({"name": "Ada"}, "Say hello.", "abc-123", response_mode="blocking")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event"] == "message" and body["mode"] == "chat"
    assert body["answer"].strip()
    assert body["id"] == body["message_id"] == body["task_id"]
    usage = body["metadata"]["usage"]
    assert usage["completion_tokens"] > 0 and usage["total_tokens"] >= usage["completion_tokens"]
    assert body["metadata"]["retriever_resources"] == []
    assert isinstance(body["created_at"], int)
    # An ordinary convo of the topic: its team (here the service account that owns it) sees it over REST,
    # its answer is the step of the message's id.
    listed = app.rest("GET", "/convos", params={"topicId": app.topic_id}).json()
    assert body["conversation_id"] in [c["id"] for c in listed]
    steps = app.rest("GET", f"/convos/{body['conversation_id']}/steps").json()
    assert [s["authorType"] for s in steps] == ["user", "llm"]
    assert steps[1]["id"] == body["message_id"] and steps[1]["content"]["text"] == body["answer"]
    # The conversation goes on.
    again = client.create_chat_message(
        {}, "And goodbye?", "abc-123", response_mode="blocking", conversation_id=body["conversation_id"]
    )
    assert again.status_code == 200, again.text
    assert again.json()["conversation_id"] == body["conversation_id"]


def test_dify_client_streams_history_conversations_rename_feedback_delete(app: App):
    client = app.client()
    user = "stream-user"
    response = client.create_chat_message({}, "Name a colour.", user, response_mode="streaming")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = list(sse_events(response))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "message" and kinds[-1] == "message_end" and set(kinds) == {"message", "message_end"}
    end = events[-1]
    conversation_id, message_id = end["conversation_id"], end["message_id"]
    assert all(e["message_id"] == message_id and e["conversation_id"] == conversation_id for e in events)
    answer = "".join(e["answer"] for e in events if e["event"] == "message")
    assert end["metadata"]["usage"]["completion_tokens"] > 0

    history = client.get_conversation_messages(user, conversation_id=conversation_id).json()
    assert history["has_more"] is False
    [message] = history["data"]
    assert (message["id"], message["query"], message["answer"]) == (message_id, "Name a colour.", answer)
    assert message["feedback"] is None

    conversations = client.get_conversations(user).json()
    assert [c["id"] for c in conversations["data"]] == [conversation_id]
    assert conversations["data"][0]["status"] == "normal"

    renamed = client.rename_conversation(conversation_id, "Colours", user)
    assert renamed.json() == {"result": "success"}
    assert app.rest("GET", f"/convos/{conversation_id}").json()["name"] == "Colours"
    assert client.get_conversations(user).json()["data"][0]["name"] == "Colours"

    liked = client.message_feedback(message_id, "like", user)
    assert liked.json() == {"result": "success"}
    assert (
        client.get_conversation_messages(user, conversation_id=conversation_id).json()["data"][0]["feedback"]
        == "like"
    )
    step = app.rest("GET", f"/convos/{conversation_id}/steps").json()[-1]
    assert step["feedback"]["likes"] == 1
    assert client.message_feedback(message_id, None, user).json() == {"result": "success"}

    # Another end user of the same app sees none of it.
    assert client.get_conversations("someone-else").json()["data"] == []
    assert (
        client.get_conversation_messages("someone-else", conversation_id=conversation_id).status_code == 404
    )

    deleted = client._send_request("DELETE", f"/conversations/{conversation_id}", {"user": user})
    assert deleted.json() == {"result": "success"}
    assert client.get_conversations(user).json()["data"] == []
    assert app.rest("GET", f"/convos/{conversation_id}").status_code == 404


def test_parameters_and_an_uploaded_file_grounding_an_answer(app: App, tmp_path):
    client = app.client()
    parameters = client.get_application_parameters("files-user").json()
    assert parameters["opening_statement"] == "Ask me anything."
    assert [f["text-input"]["variable"] for f in parameters["user_input_form"]] == ["name"]
    notes = tmp_path / "notes.md"
    notes.write_text("# Lighthouse\n\nThe lighthouse keeper is called Morwenna.\n")
    with notes.open("rb") as handle:
        uploaded = client.file_upload("files-user", {"file": ("notes.md", handle, "text/markdown")})
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert file["name"] == "notes.md" and file["extension"] == "md"
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": file["id"]}]
    answer = client.create_chat_message({}, "Who keeps the lighthouse?", "files-user", files=files)
    assert answer.status_code == 200, answer.text
    steps = app.rest("GET", f"/convos/{answer.json()['conversation_id']}/steps").json()
    assert steps[0]["files"][0]["dataSourceId"] == file["id"]
    # Another end user can't use it.
    refused = client.create_chat_message({}, "Who?", "other-user", files=files)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"


# -- a real SSE client ---------------------------------------------------------------------------------


def test_the_first_message_event_leaves_before_the_answer_is_done(stack: RunningStack):
    """Streaming really streams: the first `message` event arrives, then time passes while the model
    writes, then `message_end`."""
    longer = make_app(stack, {"maxTokens": 40, "temperature": 0})
    body = {
        "inputs": {},
        "query": "Count from one to twenty in words.",
        "response_mode": "streaming",
        "user": "sse",
    }
    headers = {"Authorization": f"Bearer {longer.key}"}
    arrivals: list[tuple[float, dict[str, Any]]] = []
    with (
        httpx.Client(timeout=120) as http,
        connect_sse(http, "POST", f"{longer.base_url}/chat-messages", json=body, headers=headers) as source,
    ):
        assert source.response.status_code == 200
        for event in source.iter_sse():
            arrivals.append((time.monotonic(), json.loads(event.data)))
    kinds = [data["event"] for _, data in arrivals]
    assert kinds[-1] == "message_end" and kinds.count("message") >= 2, kinds
    first_message = next(at for at, data in arrivals if data["event"] == "message")
    ended = arrivals[-1][0]
    assert ended - first_message > 0.2, f"the whole answer came at once: {ended - first_message:.3f} s"


# -- the seed's curl examples, word for word -------------------------------------------------------------

CHAT = """curl --location --request POST 'https://reiki-dev.web3go.xyz/ai/v1/chat-messages' \\
--header 'Authorization: Bearer ENTER-YOUR-SECRET-KEY' \\
--header 'Content-Type: application/json' \\
--data-raw '{
    "inputs": {},
    "query": "eh",
    "response_mode": "streaming",
    "conversation_id": "1c7e55fb-1ba2-4e10-81b5-30addcea2276",
    "user": "abc-123"
}'"""
FEEDBACK = """curl --location --request POST  \\
'https://reiki-dev.web3go.xyz/ai/v1/messages/{message_id}/feedbacks \\
 --header 'Authorization: Bearer ENTER-YOUR-SECRET-KEY' \\
--header 'Content-Type: application/json' \\
--data-raw '{
    "rating": "like",
    "user": "abc-123"
}'"""
HISTORY = """curl --location --request GET 'https://reiki-dev.web3go.xyz/ai/v1/messages?user=abc-123&conversation_id='\\
  --header 'Authorization: Bearer ENTER-YOUR-SECRET-KEY'"""
CONVERSATIONS = """curl --location --request GET 'https://reiki-dev.web3go.xyz/ai/v1/conversations?user=abc-123&last_id=&limit=20'"""
RENAME = """curl --location --request POST 'https://reiki-dev.web3go.xyz/ai/v1/conversations/name' \\
--header 'Authorization: Bearer ENTER-YOUR-SECRET-KEY' \\
--header 'Content-Type: application/json' \\
--data-raw '{ 
 "name": "", 
 "user": "abc-123"
}'"""  # noqa: W291 (the seed's trailing spaces, kept)
DELETE = """curl --location --request DELETE 'https://reiki-dev.web3go.xyz/ai/v1/conversations/{conversation_id}' \\
--header 'Authorization: Bearer ENTER-YOUR-SECRET-KEY' \\
--header 'Content-Type: application/json' \\
--data-raw '{
 "user": "abc-123"
}'"""


def curl(app: App, example: str, **swaps: str) -> tuple[int, str, str]:
    """Run an example with bash as printed, the base URL and the key swapped in (and any placeholder
    `swaps`); returns curl's exit code, what it printed, and the HTTP status (`-w` appended)."""
    command = example.replace(SEED_BASE, app.base_url).replace(SEED_KEY, app.key)
    for old, new in swaps.items():
        command = command.replace(old, new)
    command = command.replace("curl ", "curl --silent --show-error --write-out '\\n%{http_code}' ", 1)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    body, _, status = done.stdout.rpartition("\n")
    return done.returncode, body, status


def test_the_seeds_curl_examples(app: App):
    user = "abc-123"
    # Chat: the example's conversation does not exist: 404, in Dify's error shape.
    code, body, status = curl(app, CHAT)
    assert (code, status) == (0, "404") and json.loads(body)["code"] == "not_found"
    # With a conversation of this user's, the same command streams an answer.
    started = app.client().create_chat_message({}, "Hi", user).json()
    conversation_id = started["conversation_id"]
    code, body, status = curl(app, CHAT, **{"1c7e55fb-1ba2-4e10-81b5-30addcea2276": conversation_id})
    assert (code, status) == (0, "200")
    events = [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]
    assert events[0]["event"] == "message" and events[-1]["event"] == "message_end"
    message_id = events[-1]["message_id"]

    # Feedback: the example's quotes do not balance: bash refuses it before any request.
    code, _, _ = curl(app, FEEDBACK, **{"{message_id}": message_id})
    assert code != 0
    # With its URL's quote closed, it likes the message.
    fixed = FEEDBACK.replace("/feedbacks \\", "/feedbacks' \\")
    code, body, status = curl(app, fixed, **{"{message_id}": message_id})
    assert (code, status, json.loads(body)) == (0, "200", {"result": "success"})

    # History: `conversation_id=` names none: no messages. With the conversation: its messages.
    code, body, status = curl(app, HISTORY)
    assert (code, status, json.loads(body)) == (0, "200", {"limit": 20, "has_more": False, "data": []})
    code, body, status = curl(app, HISTORY, **{"conversation_id=": f"conversation_id={conversation_id}"})
    data = json.loads(body)["data"]
    assert status == "200" and data[-1]["id"] == message_id and data[-1]["feedback"] == "like"

    # Conversations: the example sends no key (401); with the header, the list.
    code, body, status = curl(app, CONVERSATIONS)
    assert (code, status) == (0, "401") and json.loads(body)["code"] == "unauthorized"
    with_key = CONVERSATIONS + f" \\\n--header 'Authorization: Bearer {SEED_KEY}'"
    code, body, status = curl(app, with_key)
    # Newest first (abc-123 chatted in an earlier test of this module too).
    assert status == "200" and json.loads(body)["data"][0]["id"] == conversation_id

    # Rename: the example's path has no conversation id: no such operation (405).
    code, body, status = curl(app, RENAME)
    assert (code, status) == (0, "405")
    # With the id, its empty name is refused (422); with a name, renamed.
    path_swap = {"/conversations/name": f"/conversations/{conversation_id}/name"}
    code, body, status = curl(app, RENAME, **path_swap)
    assert (status, json.loads(body)["code"]) == ("422", "validation_error")
    code, body, status = curl(app, RENAME, **path_swap, **{'"name": ""': '"name": "Seed chat"'})
    assert (status, json.loads(body)) == ("200", {"result": "success"})

    # Delete, the conversation id filled in.
    code, body, status = curl(app, DELETE, **{"{conversation_id}": conversation_id})
    assert (code, status, json.loads(body)) == (0, "200", {"result": "success"})
    assert app.rest("GET", f"/convos/{conversation_id}").status_code == 404


# -- security over HTTP --------------------------------------------------------------------------------


def test_an_app_key_is_refused_by_the_kallo_api(app: App):
    for headers in ({"Authorization": f"Bearer {app.key}"}, {"x-api-key": app.key}):
        answer = app.stack.client.get("/convos", headers=headers)
        assert answer.status_code == 401, answer.text


def test_a_revoked_key_is_refused(stack: RunningStack):
    doomed = make_app(stack, SHORT)
    client = doomed.client()
    assert client.get_conversations("u").status_code == 200
    key_id = doomed.rest("GET", f"/topics/{doomed.topic_id}/app-keys").json()[0]["id"]
    assert doomed.rest("DELETE", f"/topics/{doomed.topic_id}/app-keys/{key_id}").status_code == 204
    refused = client.get_conversations("u")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
