"""The Dify-style service API (`functions/compat/dify.py`) through its Lambda handler, with the API
Gateway proxy events of its greedy route (Mangum, the whole answer buffered): end users, conversations,
history, rename, delete, parameters, uploads, chat in both modes, feedback, suggestions and stop, and
the attacks on each (another end user, another topic's key, another tenant, a revoked key)."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest

from kallo.auth import app_keys as auth
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.llm import Usage
from kallo.models.app_keys import AppKeyCreate
from kallo.models.convos import ConvoCreate
from kallo.models.prompts import PromptCreate
from kallo.models.steps import Step
from kallo.models.topics import TopicCreate
from kallo.services import app_keys, convos, end_users, prompts, topics
from kallo.store import objects
from kallo.store import steps as step_store
from kallo.store.keys import Ref
from tests.support.api import Result, call_surface
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_service_account

RESOURCE = "/dify/v1/{proxy+}"
PROMPT = "You help {{name}} plan a trip to {{ city }}."
BOUNDARY = "----DifyTestBoundary"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    auth.forget_cached_app_keys()
    yield
    auth.forget_cached_app_keys()


def dify(
    method: str,
    path: str,
    key: str | None,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    sent = {"Authorization": f"Bearer {key}"} if key else {}
    return call_surface(
        "compat.dify",
        method,
        f"/dify/v1{path}",
        resource=RESOURCE,
        body=body,
        raw_body=raw_body,
        query=query,
        headers={**sent, **(headers or {})},
    )


def refused(result: Result, status: int, code: str | None = None) -> dict[str, Any]:
    assert result.status == status, result.body
    body = result.json
    assert body["status"] == status and body["code"] and body["message"], body
    if code:
        assert body["code"] == code, body
    return body


@dataclass
class App:
    svc: Principal
    topic_id: str
    key: str
    key_id: str

    def app_key(self) -> auth.AppKey:
        return auth.authenticate(self.key)

    def end_user(self, user: str) -> end_users.EndUser:
        return end_users.resolve(self.app_key(), user)


def make_app(svc: Principal, *, model: str | None = None) -> App:
    access = Access(svc)
    prompt = prompts.create_prompt(access, PromptCreate(text=PROMPT))
    config = {"defaults": {"model": model}} if model else {}
    topic = topics.create_topic(
        access, TopicCreate.model_validate({"name": "Trips", "description": "Plan trips.", "config": config})
    )
    topics.set_topic_prompt(access, topic["id"], prompt["id"])
    made = app_keys.create_app_key(access, topic["id"], AppKeyCreate(name="web"))
    return App(svc, topic["id"], made["key"], made["id"])


@pytest.fixture
def app(aws) -> App:
    svc, _ = make_service_account()
    return make_app(svc)


def exchange(convo_id: str, author: str, question: str, answer: str, **answer_fields: Any) -> str:
    """A question and its answer, stored as a chat stores them; the answer's id (Dify's message id)."""
    from kallo.clock import now_iso

    asked = step_store.add(
        Step(
            id=str(uuid4()),
            convoId=convo_id,
            authorType="user",
            authorId=author,
            content={"text": question},
            createdAt=now_iso(),
            updatedAt=now_iso(),
        ).record()
    )
    answered = step_store.add(
        Step.model_validate(
            {
                "id": str(uuid4()),
                "convoId": convo_id,
                "authorType": "llm",
                "content": {"text": answer},
                "replyToStepId": asked["id"],
                "createdAt": now_iso(),
                "updatedAt": now_iso(),
                **answer_fields,
            }
        ).record()
    )
    return answered["id"]


UNIX = re.compile(r"^\d{10}$")


# -- credentials -----------------------------------------------------------------------------------------


def test_without_a_valid_app_key_everything_is_401(app):
    svc_key = make_service_account()[1]
    for key in (None, "", "app-unknown-0123456789abcdef", svc_key, "not a key"):
        result = dify("GET", "/conversations", key, query={"user": "alice"})
        refused(result, 401, "unauthorized")
    refused(
        dify("GET", "/parameters", None, query={"user": "a"}, headers={"Authorization": "Basic eA=="}), 401
    )
    # The key in x-api-key (Kallo's header) is not how Dify sends it.
    refused(dify("GET", "/conversations", None, query={"user": "a"}, headers={"x-api-key": app.key}), 401)


def test_a_revoked_key_is_refused(app):
    assert dify("GET", "/conversations", app.key, query={"user": "alice"}).status == 200
    app_keys.revoke_app_key(Access(app.svc), app.topic_id, app.key_id)
    refused(dify("GET", "/conversations", app.key, query={"user": "alice"}), 401, "unauthorized")


def test_requests_count_against_the_tenants_rate(app, monkeypatch):
    monkeypatch.setenv("KALLO_REQUESTS_PER_MINUTE", "2")
    from kallo.settings import get_settings

    get_settings.cache_clear()
    try:
        assert dify("GET", "/conversations", app.key, query={"user": "a"}).status == 200
        assert dify("GET", "/conversations", app.key, query={"user": "b"}).status == 200
        throttled = refused(dify("GET", "/conversations", app.key, query={"user": "c"}), 429, "throttled")
        assert throttled["message"]
    finally:
        get_settings.cache_clear()


# -- conversations ---------------------------------------------------------------------------------------


def test_conversations_are_the_end_users_own_newest_first_paged_by_last_id(app, aws_calls):
    alice, bob = app.end_user("alice"), app.end_user("bob")
    made = [end_users.start_convo(alice, f"c{i}", {"inputs": {"city": f"C{i}"}})["id"] for i in range(3)]
    end_users.start_convo(bob, "bob's")
    auth.forget_cached_app_keys()  # as in a new container
    aws_calls.reset()
    first = dify("GET", "/conversations", app.key, query={"user": "alice", "limit": "2"})
    assert first.status == 200, first.body
    # The key and its topic (its use was recorded less than a minute ago: no write), the request counted,
    # the end user's claim, its grants, the page's convos.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 3,
        "dynamodb:UpdateItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
    }
    aws_calls.reset()
    dify("GET", "/conversations", app.key, query={"user": "alice", "limit": "2"})
    # A warm container: the key is cached.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
    }
    page = first.json
    assert page["limit"] == 2 and page["has_more"] is True
    assert [c["id"] for c in page["data"]] == made[::-1][:2]
    latest = page["data"][0]
    assert latest["name"] == "c2" and latest["inputs"] == {"city": "C2"} and latest["status"] == "normal"
    assert UNIX.match(str(latest["created_at"])) and UNIX.match(str(latest["updated_at"]))
    rest = dify("GET", "/conversations", app.key, query={"user": "alice", "last_id": page["data"][-1]["id"]})
    assert [c["id"] for c in rest.json["data"]] == made[:1] and rest.json["has_more"] is False
    assert rest.json["limit"] == 20
    # `last_id=` (empty, as the seed's example sends it) is no position.
    blank = dify("GET", "/conversations", app.key, query={"user": "alice", "last_id": "", "limit": "20"})
    assert [c["id"] for c in blank.json["data"]] == made[::-1]
    # A new user value is a new end user with nothing yet.
    assert dify("GET", "/conversations", app.key, query={"user": "carol"}).json["data"] == []


def test_rename_by_name_or_auto_generate(app):
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice)
    exchange(
        convo["id"], alice.user_id, "How do I get from Oslo to Bergen by train?", "Take the Bergen line."
    )
    result = dify(
        "POST", f"/conversations/{convo['id']}/name", app.key, body={"name": "Trains", "user": "alice"}
    )
    assert (result.status, result.json) == (200, {"result": "success"})
    assert objects.get(Ref("convo", convo["id"]))["name"] == "Trains"
    auto = {"auto_generate": True, "user": "alice"}
    assert dify("POST", f"/conversations/{convo['id']}/name", app.key, body=auto).json == {
        "result": "success"
    }
    assert objects.get(Ref("convo", convo["id"]))["name"] == "How do I get from Oslo to Bergen"
    for body in ({"user": "alice"}, {"name": "", "user": "alice"}, {"name": "a\nb", "user": "alice"}):
        refused(
            dify("POST", f"/conversations/{convo['id']}/name", app.key, body=body), 422, "validation_error"
        )


def test_delete_a_conversation(app):
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice)
    result = dify("DELETE", f"/conversations/{convo['id']}", app.key, body={"user": "alice"})
    assert (result.status, result.json) == (200, {"result": "success"})
    assert objects.get(Ref("convo", convo["id"])) is None
    refused(
        dify("DELETE", f"/conversations/{convo['id']}", app.key, body={"user": "alice"}), 404, "not_found"
    )


def test_the_topics_team_sees_the_end_users_conversations(app):
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice, "from the app")
    listed, _ = convos.query_convos(Access(app.svc), topic_id=app.topic_id)
    assert [c["id"] for c in listed] == [convo["id"]]
    assert listed[0]["createdBy"] == alice.user_id


# -- history ---------------------------------------------------------------------------------------------


def test_history_pairs_questions_and_answers_oldest_first_paged_by_first_id(app):
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice, "trip", {"inputs": {"name": "Ada"}})
    ids = [exchange(convo["id"], alice.user_id, f"q{i}", f"a{i}") for i in range(5)]
    query = {"user": "alice", "conversation_id": convo["id"], "limit": "2"}
    latest = dify("GET", "/messages", app.key, query=query)
    assert latest.status == 200, latest.body
    body = latest.json
    assert body["limit"] == 2 and body["has_more"] is True
    assert [(m["id"], m["query"], m["answer"]) for m in body["data"]] == [
        (ids[3], "q3", "a3"),
        (ids[4], "q4", "a4"),
    ]
    message = body["data"][0]
    assert message["conversation_id"] == convo["id"] and message["inputs"] == {"name": "Ada"}
    assert message["feedback"] is None and message["retriever_resources"] == []
    assert UNIX.match(str(message["created_at"]))
    older = dify("GET", "/messages", app.key, query={**query, "first_id": ids[3]}).json
    assert [m["id"] for m in older["data"]] == ids[1:3] and older["has_more"] is True
    oldest = dify("GET", "/messages", app.key, query={**query, "first_id": ids[1]}).json
    assert [m["id"] for m in oldest["data"]] == ids[:1] and oldest["has_more"] is False
    # Without a conversation (the seed's example sends `conversation_id=`) there are no messages.
    empty = dify("GET", "/messages", app.key, query={"user": "alice", "conversation_id": ""})
    assert empty.json == {"limit": 20, "has_more": False, "data": []}


def test_history_shows_citations_as_retriever_resources(app):
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice)
    source = objects.item(Ref("data_source", str(uuid4())), {"name": "guide.md"})
    from kallo.store.table import table

    table().put(source)
    cite = {
        "type": "citation",
        "dataSourceId": source["id"],
        "text": "Trains leave hourly.",
        "start": 0,
        "end": 20,
    }
    message_id = exchange(convo["id"], alice.user_id, "When?", "Hourly [1].", annotations=[cite])
    data = dify("GET", "/messages", app.key, query={"user": "alice", "conversation_id": convo["id"]}).json[
        "data"
    ]
    assert data[0]["id"] == message_id
    assert data[0]["retriever_resources"] == [
        {
            "position": 1,
            "document_id": source["id"],
            "document_name": "guide.md",
            "content": "Trains leave hourly.",
            "start": 0,
            "end": 20,
        }
    ]


# -- attacks ---------------------------------------------------------------------------------------------


def test_an_end_user_cannot_reach_another_end_users_conversation(app):
    """End user X, with Y's conversation and message ids: the same 404 as for missing ones, and
    nothing of Y's changes."""
    alice, bob = app.end_user("alice"), app.end_user("bob")
    convo = end_users.start_convo(bob, "bob's plans")
    message_id = exchange(convo["id"], bob.user_id, "secret question", "secret answer")
    missing_convo, missing_message = str(uuid4()), str(uuid4())
    for path_of, method, body, query in (
        (lambda c, m: f"/conversations/{c}/name", "POST", {"name": "pwned", "user": "alice"}, None),
        (lambda c, m: f"/conversations/{c}", "DELETE", {"user": "alice"}, None),
        (lambda c, m: "/messages", "GET", None, "c"),
        (lambda c, m: f"/messages/{m}/feedbacks", "POST", {"rating": "dislike", "user": "alice"}, None),
        (lambda c, m: f"/messages/{m}/suggested", "GET", None, "u"),
        (lambda c, m: f"/chat-messages/{m}/stop", "POST", {"user": "alice"}, None),
        (lambda c, m: "/messages", "GET", None, "f"),
    ):
        answers = []
        for c, m in ((convo["id"], message_id), (missing_convo, missing_message)):
            params = {"user": "alice"}
            if query == "c":
                params["conversation_id"] = c
            if query == "f":
                own = end_users.start_convo(alice)
                params.update(conversation_id=own["id"], first_id=m)
            answers.append(dify(method, path_of(c, m), app.key, body=body, query=params if query else None))
        attack, control = answers
        refused(attack, 404, "not_found")
        assert attack.json["message"].replace(convo["id"], "ID").replace(message_id, "ID") == control.json[
            "message"
        ].replace(missing_convo, "ID").replace(missing_message, "ID")
        assert "secret" not in attack.body
    stored = objects.get(Ref("convo", convo["id"]))
    assert stored["name"] == "bob's plans"
    mine = dify("GET", "/messages", app.key, query={"user": "bob", "conversation_id": convo["id"]}).json
    assert [m["feedback"] for m in mine["data"]] == [None]


def test_one_topics_key_cannot_reach_another_topics_conversations(app):
    other = make_app(app.svc)  # the same tenant's other topic, and its key
    alice_here = app.end_user("alice")
    convo = end_users.start_convo(alice_here)
    message_id = exchange(convo["id"], alice_here.user_id, "q", "a")
    refused(dify("GET", "/messages", other.key, query={"user": "alice", "conversation_id": convo["id"]}), 404)
    refused(dify("DELETE", f"/conversations/{convo['id']}", other.key, body={"user": "alice"}), 404)
    refused(
        dify(
            "POST", f"/messages/{message_id}/feedbacks", other.key, body={"rating": "like", "user": "alice"}
        ),
        404,
    )
    assert dify("GET", "/conversations", other.key, query={"user": "alice"}).json["data"] == []
    assert objects.get(Ref("convo", convo["id"])) is not None


def test_another_tenants_key_cannot_reach_a_tenants_conversations(app):
    b, _ = make_service_account("b")
    theirs = make_app(b)
    alice = app.end_user("alice")
    convo = end_users.start_convo(alice)
    rest_convo = convos.create_convo(Access(app.svc), ConvoCreate(), topic_id=app.topic_id)
    for convo_id in (convo["id"], rest_convo["id"]):
        refused(
            dify("GET", "/messages", theirs.key, query={"user": "alice", "conversation_id": convo_id}), 404
        )
        refused(
            dify("POST", f"/conversations/{convo_id}/name", theirs.key, body={"name": "x", "user": "alice"}),
            404,
        )
    # A convo of the topic started over REST is not an end user's either.
    refused(dify("DELETE", f"/conversations/{rest_convo['id']}", app.key, body={"user": "alice"}), 404)


# -- input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "query", "status"),
    [
        ("GET", "/conversations", None, {}, 422),
        ("GET", "/conversations", None, {"user": ""}, 422),
        ("GET", "/conversations", None, {"user": "a", "limit": "0"}, 422),
        ("GET", "/conversations", None, {"user": "a", "limit": "101"}, 422),
        ("GET", "/conversations", None, {"user": "a", "limit": "x"}, 422),
        ("GET", "/conversations", None, {"user": "a", "last_id": "nope"}, 404),
        ("GET", "/messages", None, {"user": "a", "conversation_id": "../x"}, 404),
        ("GET", "/messages", None, {"user": "a\u202e"}, 422),
        ("POST", "/chat-messages", {"query": "hi"}, None, 422),
        ("POST", "/chat-messages", {"query": "", "user": "a"}, None, 422),
        ("POST", "/chat-messages", {"query": "hi", "user": "a", "response_mode": "fast"}, None, 422),
        ("POST", "/chat-messages", {"query": "hi", "user": "a", "inputs": {"x": {"deep": 1}}}, None, 422),
        ("POST", "/chat-messages", {"query": "hi", "user": "a", "inputs": [1]}, None, 422),
        (
            "POST",
            "/chat-messages",
            {
                "query": "hi",
                "user": "a",
                "files": [{"type": "image", "transfer_method": "remote_url", "url": "http://x"}],
            },
            None,
            422,
        ),
        ("POST", "/chat-messages", {"query": "hi", "user": "a", "conversation_id": "nope"}, None, 404),
        ("POST", "/messages/nope/feedbacks", {"rating": "like", "user": "a"}, None, 404),
        ("POST", f"/messages/{uuid4()}/feedbacks", {"rating": "meh", "user": "a"}, None, 422),
        ("POST", "/conversations/nope/name", {"name": "x", "user": "a"}, None, 404),
        ("DELETE", "/conversations/nope", {"user": "a"}, None, 404),
        ("GET", "/nothing-here", None, {"user": "a"}, 404),
        ("PUT", "/conversations", None, {"user": "a"}, 405),
    ],
)
def test_bad_input_is_a_4xx_with_a_code(app, method, path, body, query, status):
    refused(dify(method, path, app.key, body=body, query=query), status)


def test_malformed_json_is_400(app):
    result = dify(
        "POST", "/chat-messages", app.key, raw_body='{"query": ', headers={"Content-Type": "application/json"}
    )
    refused(result, 400, "malformed_json")
    deep = "[" * 100 + "]" * 100
    assert 400 <= dify("POST", "/chat-messages", app.key, raw_body=deep).status < 500


# -- parameters, uploads ---------------------------------------------------------------------------------


def test_parameters_come_from_the_topic_and_its_prompt(app):
    result = dify("GET", "/parameters", app.key, query={"user": "alice"})
    assert result.status == 200, result.body
    body = result.json
    assert body["opening_statement"] == "Plan trips."
    assert [f["text-input"]["variable"] for f in body["user_input_form"]] == ["name", "city"]
    assert body["suggested_questions_after_answer"] == {"enabled": True}
    assert body["file_upload"]["enabled"] is True
    assert body["system_parameters"]["file_size_limit"] == 4


def form(user: str | None, name: str, content_type: str, data: bytes) -> bytes:
    body = b""
    if user is not None:
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="user"\r\n\r\n{user}\r\n'.encode()
    body += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return body + data + f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def upload(app: App, user: str | None, data: bytes = b"# Trains\n\nThey leave hourly.\n") -> Result:
    return dify(
        "POST",
        "/files/upload",
        app.key,
        raw_body=form(user, "notes.md", "text/markdown", data),
        headers=MULTIPART,
    )


def test_an_upload_is_a_data_source_of_the_end_users_own(app):
    result = upload(app, "alice")
    assert result.status == 201, result.body
    body = result.json
    alice = app.end_user("alice")
    assert body["name"] == "notes.md" and body["extension"] == "md" and body["mime_type"] == "text/markdown"
    assert body["size"] == len(b"# Trains\n\nThey leave hourly.\n") and body["created_by"] == alice.user_id
    assert UNIX.match(str(body["created_at"]))
    stored = objects.get(Ref("data_source", body["id"]))
    assert stored["createdBy"] == alice.user_id
    from kallo.store import grants

    assert grants.get(Ref("data_source", body["id"]), Ref("user", alice.user_id))["role"] == "owner"


def test_bad_uploads_are_4xx(app):
    refused(upload(app, None), 422)
    refused(upload(app, "alice", b"MZ\x90\x00 a program"), 415)
    no_file = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="user"\r\n\r\nalice\r\n--{BOUNDARY}--\r\n'
    )
    refused(dify("POST", "/files/upload", app.key, raw_body=no_file.encode(), headers=MULTIPART), 400)
    refused(dify("POST", "/files/upload", app.key, body={"user": "alice"}), 400)
    big = b"a" * (4 * 1024 * 1024 + 1)
    refused(upload(app, "alice", big), 413)


def test_the_event_is_never_logged_with_its_key(app, capsys):
    dify("GET", "/conversations", app.key, query={"user": "alice"})
    captured = capsys.readouterr()
    assert app.key not in captured.out + captured.err
    assert json.dumps(app.key) not in captured.out


# -- answers (made in process, with a scripted model) ------------------------------------------------------


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    # The answer, then whatever else asks the model (the convo's name, suggestions).
    scripted = ScriptedLLM(
        Script(["Take ", "the ", "night ", "train."], usage=Usage(21, 4)),
        Script(["Night trains"]),
    )
    with installed(scripted) as model:
        yield scripted, model


@pytest.fixture
def chat_app(aws, llm) -> App:
    svc, _ = make_service_account()
    return make_app(svc, model=llm[1])


def chat(app: App, user: str = "alice", **fields: Any) -> Result:
    body = {
        "inputs": {},
        "query": "How do I get to Oslo?",
        "response_mode": "blocking",
        "user": user,
        **fields,
    }
    return dify("POST", "/chat-messages", app.key, body=body)


def events_of(result: Result) -> list[dict[str, Any]]:
    assert result.headers["content-type"].startswith("text/event-stream"), result.headers
    return [json.loads(line[5:]) for line in result.body.splitlines() if line.startswith("data:")]


def test_a_blocking_chat_starts_a_conversation_with_its_inputs(chat_app, llm):
    scripted, model = llm
    result = chat(chat_app, inputs={"name": "Ada", "city": "Oslo"})
    assert result.status == 200, result.body
    body = result.json
    assert body["event"] == "message" and body["mode"] == "chat"
    assert body["answer"] == "Take the night train."
    assert body["id"] == body["message_id"] == body["task_id"]
    assert body["metadata"]["usage"]["prompt_tokens"] == 21
    assert body["metadata"]["usage"]["completion_tokens"] == 4
    assert body["metadata"]["usage"]["total_tokens"] == 25
    assert body["metadata"]["retriever_resources"] == []
    assert UNIX.match(str(body["created_at"]))
    # The topic prompt's variables, filled from the inputs.
    system = scripted.calls[0][0][0]
    assert system.role == "system" and system.content.endswith("You help Ada plan a trip to Oslo.")
    convo = objects.get(Ref("convo", body["conversation_id"]))
    assert convo["topicId"] == chat_app.topic_id and convo["inputs"] == {"name": "Ada", "city": "Oslo"}
    assert convo["createdBy"] == chat_app.end_user("alice").user_id
    answer = step_store.get(body["message_id"])
    assert answer["authorType"] == "llm" and answer["status"] == "completed"
    assert answer["usage"] == {"inputTokens": 21, "outputTokens": 4, "model": model}
    # The next message goes on in the conversation; its inputs are the conversation's still.
    again = chat(chat_app, conversation_id=body["conversation_id"], inputs={"name": "Bob"})
    assert again.status == 200 and again.json["conversation_id"] == body["conversation_id"]
    assert scripted.calls[-1][0][0].content.endswith("You help Ada plan a trip to Oslo.")
    history = dify(
        "GET", "/messages", chat_app.key, query={"user": "alice", "conversation_id": body["conversation_id"]}
    )
    assert [m["id"] for m in history.json["data"]] == [body["message_id"], again.json["message_id"]]


def test_a_streamed_chat_is_message_events_then_message_end(chat_app):
    result = chat(chat_app, response_mode="streaming")
    assert result.status == 200, result.body
    events = events_of(result)
    assert [e["event"] for e in events] == ["message"] * (len(events) - 1) + ["message_end"]
    assert "".join(e["answer"] for e in events[:-1]) == "Take the night train."
    end = events[-1]
    assert end["metadata"]["usage"]["total_tokens"] == 25
    for event in events:
        assert event["message_id"] == event["task_id"] == event["id"] == end["message_id"]
        assert event["conversation_id"] == end["conversation_id"]


def test_a_failed_answer_is_400_or_an_error_event(aws):
    svc, _ = make_service_account()
    broken = ScriptedLLM(Script(["Hal", "f"], fail_after=1))
    with installed(broken) as model:
        app = make_app(svc, model=model)
        blocking = chat(app)
        failed = refused(blocking, 400, "model_error")
        assert "scripted" not in failed["message"]  # I7: never the provider's own words
        events = events_of(chat(app, response_mode="streaming"))
    assert events[0] == {**events[0], "event": "message", "answer": "Hal"}
    assert events[-1]["event"] == "error" and events[-1]["code"] == "model_error"
    assert events[-1]["status"] == 400 and events[-1]["message_id"] == events[0]["message_id"]


def test_a_chat_in_another_end_users_conversation_is_404_and_writes_nothing(chat_app):
    theirs = chat(chat_app, user="bob").json["conversation_id"]
    before = step_store.of_convo(theirs).items
    refused(chat(chat_app, user="alice", conversation_id=theirs), 404, "not_found")
    assert step_store.of_convo(theirs).items == before


def test_a_refused_question_leaves_no_conversation_behind(chat_app):
    from kallo import quotas

    alice = chat_app.end_user("alice")
    quotas.charge_tokens(alice.user_id, None, 10**9)
    refused(chat(chat_app), 429, "quota_exceeded")
    assert end_users.list_convos(alice)[0] == []


def test_feedback_likes_dislikes_and_undoes(chat_app):
    message_id = chat(chat_app).json["message_id"]
    path = f"/messages/{message_id}/feedbacks"
    for rating in ("like", "dislike", None, None):
        result = dify("POST", path, chat_app.key, body={"rating": rating, "user": "alice", "content": "ok"})
        assert (result.status, result.json) == (200, {"result": "success"})
        counts = step_store.get(message_id).get("feedback") or {}
        assert counts.get("likes", 0) == (rating == "like")
        assert counts.get("dislikes", 0) == (rating == "dislike")
    dify("POST", path, chat_app.key, body={"rating": "like", "user": "alice"})
    convo_id = step_store.get(message_id)["convoId"]
    history = dify("GET", "/messages", chat_app.key, query={"user": "alice", "conversation_id": convo_id})
    assert history.json["data"][0]["feedback"] == "like"


def test_suggested_questions_are_made_once(chat_app, llm):
    scripted, _ = llm
    message_id = chat(chat_app).json["message_id"]
    scripted.scripts.append(Script(["Is there a sleeper car?\nHow long does it take?"]))
    first = dify("GET", f"/messages/{message_id}/suggested", chat_app.key, query={"user": "alice"})
    assert first.status == 200, first.body
    assert first.json == {"result": "success", "data": ["Is there a sleeper car?", "How long does it take?"]}
    calls = len(scripted.calls)
    again = dify("GET", f"/messages/{message_id}/suggested", chat_app.key, query={"user": "alice"})
    assert again.json == first.json and len(scripted.calls) == calls


def test_stop_ends_a_running_answer_with_its_text(aws):
    import asyncio
    import threading

    svc, _ = make_service_account()
    slow = ScriptedLLM(Script(["One. ", "Two. ", "Three. ", "Four."], delay=[0, 0.6, 0.6, 0.6]))
    with installed(slow) as model:
        app = make_app(svc, model=model)
        answered: list[Result] = []

        def ask() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum's, as a Lambda's main thread has
            answered.append(chat(app, response_mode="streaming"))

        thread = threading.Thread(target=ask)
        thread.start()
        alice = app.end_user("alice")
        running = None
        for _ in range(100):
            convos_of = end_users.list_convos(alice)[0]
            found = step_store.of_convo(convos_of[0]["id"]).items if convos_of else []
            running = next((s for s in found if s["authorType"] == "llm" and s["status"] == "running"), None)
            if running:
                break
            time.sleep(0.05)
        assert running is not None
        stopped = dify("POST", f"/chat-messages/{running['id']}/stop", app.key, body={"user": "alice"})
        assert (stopped.status, stopped.json) == (200, {"result": "success"})
        # Another end user cannot stop it (404), and stopping what is over is a success too.
        refused(dify("POST", f"/chat-messages/{running['id']}/stop", app.key, body={"user": "bob"}), 404)
        thread.join(timeout=30)
    events = events_of(answered[0])
    assert events[-1]["event"] == "message_end"
    final = step_store.get(running["id"])
    assert final["status"] == "stopped" and final["content"]["text"].startswith("One.")
    assert "Four." not in final["content"]["text"]
    again = dify("POST", f"/chat-messages/{running['id']}/stop", app.key, body={"user": "alice"})
    assert again.json == {"result": "success"}


def test_an_uploaded_file_grounds_the_answer_and_is_the_uploaders_alone(chat_app):
    file_id = upload(chat_app, "alice").json["id"]
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": file_id}]
    result = chat(chat_app, files=files)
    assert result.status == 200, result.body
    question = step_store.of_convo(result.json["conversation_id"]).items[0]
    assert question["files"] == [{"dataSourceId": file_id, "name": "notes.md", "mimeType": "text/markdown"}]
    assert question["config"]["dataSourceIds"] == [file_id]
    # Bob can't use Alice's file: 404, and no conversation is started for him.
    refused(chat(chat_app, user="bob", files=files), 404, "not_found")
    assert end_users.list_convos(chat_app.end_user("bob"))[0] == []
    refused(chat(chat_app, files=[{"type": "document", "transfer_method": "local_file"}]), 422)


def test_the_aws_calls_of_each_operation(app, aws_calls):
    """A warm container (the key cached): every request counts itself against the tenant's rate (1
    UpdateItem) and finds its end user's claim (1 GetItem); an own-conversation check is the convo's
    and its topic's structural grants (2 Query) with the end user's grants (1 BatchGetItem) and the
    convo (1 GetItem); a message is first found by id (1 Query)."""
    import threading

    # An earlier test's answer may still be naming its convo on its thread: its calls are not these.
    for thread in threading.enumerate():
        if thread.name == "answer":
            thread.join(timeout=30)
    alice = app.end_user("alice")
    convo_id = end_users.start_convo(alice)["id"]
    message_id = exchange(convo_id, alice.user_id, "When?", "Hourly.")
    dify("GET", "/parameters", app.key, query={"user": "alice"})  # the key cached, as in a warm container
    budgets: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
        (
            "GET",
            "/messages",
            {"query": {"user": "alice", "conversation_id": convo_id}},
            # + the page of steps (Query) and the end user's ratings (BatchGetItem).
            {"UpdateItem": 1, "GetItem": 2, "Query": 3, "BatchGetItem": 2},
        ),
        (
            "POST",
            f"/messages/{message_id}/feedbacks",
            {"body": {"rating": "like", "user": "alice"}},
            # + Set Step Feedback (kallo.services.feedback).
            {"UpdateItem": 1, "GetItem": 4, "Query": 5, "BatchGetItem": 1, "TransactWriteItems": 1},
        ),
        (
            "POST",
            f"/chat-messages/{message_id}/stop",
            {"body": {"user": "alice"}},
            # + Stop Step's check and the re-read that finds the answer over (kallo.services.stops).
            {"UpdateItem": 1, "GetItem": 2, "Query": 4, "BatchGetItem": 1},
        ),
        (
            "POST",
            f"/conversations/{convo_id}/name",
            {"body": {"name": "Trains", "user": "alice"}},
            # + the rename told to the identifiers streams: the convo's users (Query), alice's (Query),
            # and to the convo's connections as convoUpdate (Query).
            {"UpdateItem": 2, "GetItem": 2, "Query": 5, "BatchGetItem": 1},
        ),
        ("GET", "/parameters", {"query": {"user": "alice"}}, {"UpdateItem": 1, "GetItem": 3}),
        (
            "DELETE",
            f"/conversations/{convo_id}",
            {"body": {"user": "alice"}},
            # + the convo's connections, read for convoDeleted before the grants go (Query), the convo's
            # user grants (Query), one transaction, the purge job, and the deletion told to alice's
            # identifiers streams (Query).
            {
                "UpdateItem": 1,
                "GetItem": 2,
                "Query": 5,
                "BatchGetItem": 1,
                "TransactWriteItems": 1,
                "SendMessage": 1,
            },
        ),
    ]
    for method, path, options, expected in budgets:
        aws_calls.reset()
        assert dify(method, path, app.key, **options).status == 200, path
        assert {k.split(":")[1]: v for k, v in aws_calls.calls.items()} == expected, path
    aws_calls.reset()
    assert upload(app, "alice").status == 201
    # + the upload's charge and version (2 UpdateItem), the data source (TransactWriteItems), its bytes.
    assert dict(aws_calls.calls) == {
        "dynamodb:UpdateItem": 3,
        "dynamodb:GetItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "s3:PutObject": 1,
    }


def test_an_answer_is_made_in_process_without_the_queue(chat_app, aws_calls):
    aws_calls.reset()
    assert chat(chat_app).status == 200
    assert not any(name.startswith("sqs:") for name in aws_calls.calls)
    assert not any(name.endswith(":Scan") for name in aws_calls.calls)


def test_an_answer_ends_before_the_lambda_invocation_does(aws, monkeypatch):
    from tests.support import api

    svc, _ = make_service_account()
    slow = ScriptedLLM(Script(["One. ", "Two. ", "Three."], delay=[0, 3.0, 3.0]))
    with installed(slow) as model:
        app = make_app(svc, model=model)
        # 6 s left in the invocation: the answer has 1 (the 5 s of safety taken off).
        monkeypatch.setattr(
            api, "LambdaContext", functools.partial(api.LambdaContext, remaining_millis=6_000)
        )
        started = time.monotonic()
        failed = refused(chat(app), 400, "answer_timeout")
    assert time.monotonic() - started < 4
    assert failed["message"]
