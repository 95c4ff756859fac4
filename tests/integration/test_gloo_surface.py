"""Gloo KaLLM message through its Lambda function (`compat.gloo`, Mangum, buffered) with API Gateway
events against moto: chats made and continued with Kallo credentials and app keys, answers grounded on
the topic's documents with their sources, follow-up suggestions, the switches, publishers, the
character limit, the buffered event stream, and the attacks: other tenants' and other end users'
chats, other tenants' data sources as publishers, bad input."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kallo.auth import app_keys as keys_auth
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.documents import passages
from kallo.documents.bm25 import Index
from kallo.llm import ChatMessage, Generation
from kallo.models.app_keys import AppKeyCreate
from kallo.models.auth import AccessTokenCreate
from kallo.services import access_tokens, app_keys, convos, data_source_links, naming, prompting, replies
from kallo.settings import get_settings
from kallo.store import blobs, objects, steps
from kallo.store.keys import Ref
from kallo.surfaces import gloo
from tests.support.api import Result, call_surface
from tests.support.scripted_llm import installed
from tests.support.world import make_data_source, make_object, make_service_account, make_user, ref_of

HANDLER = "compat.gloo"
PATH = gloo.PATH
HERON = (
    "# Project Heron\n\n"
    "Heron is the codename of the new billing system, planned by the platform team.\n\n"
    "The launch code of project Heron is ZX-42. Only the release manager may use it.\n\n"
    "Invoices are sent on the first working day of each month."
)
FACT = "The launch code of project Heron is ZX-42."
ROOMS = "# Rooms\n\nThe billing team meets on Thursdays in room 4 of the east wing."
QUESTION = "What is the launch code of project Heron?"
ANSWER = "The launch code is ZX-42 [1]."
FOLLOW_UPS = "Who may use the launch code?\nWhen does Heron launch?\nWhat is Heron?"


class Model:
    """A model that answers questions with `answer` (in chunks of 4 characters), names convos, and
    writes anything else it is asked for (follow-up questions) as `FOLLOW_UPS`; it keeps every call."""

    def __init__(self, answer: str = ANSWER, *, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.calls: list[tuple[list[ChatMessage], Generation]] = []

    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str]:
        self.calls.append((messages, generation))
        system = messages[0].content if messages[0].role == "system" else ""
        if system.startswith(naming.NAMING_INSTRUCTION):
            yield "Heron launch code"
        elif system.startswith(prompting.DEFAULT_INSTRUCTION):
            if self.fail:
                raise replies.ProviderError("upstream said 500 at http://10.0.0.1/v1")
            yield from (self.answer[i : i + 4] for i in range(0, len(self.answer), 4))
        else:
            yield FOLLOW_UPS

    @property
    def answers(self) -> list[tuple[list[ChatMessage], Generation]]:
        return [c for c in self.calls if c[0][0].content.startswith(prompting.DEFAULT_INSTRUCTION)]


def settled(threads: int) -> None:
    """Wait until the threads answers left behind are done (naming a new chat goes on after the
    response), so that they neither outlive the test's AWS account nor count in the next budget."""
    deadline = time.monotonic() + 10
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def model(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Model]:
    """The model every answer of the test uses (the stack's default model: Gloo names none)."""
    llm = Model()
    threads = threading.active_count()
    with installed(llm) as name:  # type: ignore[arg-type]
        monkeypatch.setenv("KALLO_DEFAULT_MODEL", name)
        get_settings.cache_clear()
        yield llm
        settled(threads)
    get_settings.cache_clear()


def ready_source(owner: Ref, text: str, name: str) -> str:
    """A processed upload of `owner`: its item (ready), its text and its index."""
    ref, location = make_data_source(
        owner, name=name, mimeType="text/markdown", status="ready", size=len(text.encode()), versionId="v1"
    )
    objects.update(ref, {"processedAt": "2026-11-01T00:00:00.000Z"})
    blobs.put(blobs.key(location, blobs.TEXT), text.encode(), content_type="text/plain; charset=utf-8")
    index = Index.build(passages.split(text))
    blobs.put(blobs.key(location, blobs.INDEX), index.to_bytes(), content_type="application/json")
    return ref.id


def token_of(admin: Principal, user: Principal, *scope: Ref) -> str:
    """An access token of `user`, minted by its service account, limited to `scope`."""
    body = AccessTokenCreate.model_validate(
        {
            "userId": user.user_id,
            "scopeObjects": [{"type": r.type, "id": r.id} for r in scope],
            "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
    )
    return access_tokens.create_access_token(Access(admin), body)["jwt"]


def post(credential: str, body: dict[str, Any], **query: str) -> Result:
    return call_surface(
        HANDLER,
        "POST",
        PATH,
        resource=PATH,
        body=body,
        headers={"Authorization": f"Bearer {credential}"},
        query=query or None,
    )


def events_of(result: Result) -> list[tuple[str, dict[str, Any]]]:
    """A buffered event stream's events, (name, data); `message` for those without a name."""
    found = []
    for block in result.body.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines.get("event", "message"), json.loads(lines["data"])))
    return found


@pytest.fixture(autouse=True)
def fresh_key_cache() -> Iterator[None]:
    keys_auth.forget_cached_app_keys()
    yield
    keys_auth.forget_cached_app_keys()


class Tenant:
    """A service account, a user it made, that user's topic with Heron and Rooms linked to it, tokens
    of the user (whole-user and scoped to the topic), and an app key of the topic."""

    def __init__(self, name: str) -> None:
        self.admin, self.key = make_service_account(name)
        self.user = make_user(admin=self.admin, name=f"{name} user")
        self.topic = make_object("topic", ref_of(self.user), name=f"{name} topic", config={})
        self.heron = ready_source(ref_of(self.user), HERON, "heron.md")
        self.rooms = ready_source(ref_of(self.user), ROOMS, "rooms.md")
        access = Access(self.user)
        data_source_links.add_topic_data_source(access, self.topic.id, self.heron)
        data_source_links.add_topic_data_source(access, self.topic.id, self.rooms)
        self.token = token_of(self.admin, self.user, ref_of(self.user))
        self.topic_token = token_of(self.admin, self.user, self.topic)
        self.app_key = self.new_app_key(self.topic.id)

    def new_app_key(self, topic_id: str) -> str:
        return app_keys.create_app_key(Access(self.user), topic_id, AppKeyCreate(name="site"))["key"]


@pytest.fixture
def tenant(model: Model) -> Tenant:
    return Tenant("acme")


# -- Kallo credentials ----------------------------------------------------------------------------------


def test_a_new_chat_in_the_tokens_topic_answers_with_sources_and_suggestions(tenant: Tenant, model: Model):
    result = post(tenant.topic_token, {"query": QUESTION})
    assert result.status == 200, result.body
    answer = result.json
    convo = objects.get(Ref("convo", answer["chat_id"]))
    assert convo["topicId"] == tenant.topic.id and convo["createdBy"] == tenant.user.user_id
    question, reply = steps.get(answer["query_id"]), steps.get(answer["message_id"])
    assert question["content"] == {"text": QUESTION} and question["authorId"] == tenant.user.user_id
    assert reply["replyToStepId"] == question["id"] and reply["status"] == "completed"
    assert answer["message"] == ANSWER == reply["content"]["text"]
    assert answer["timestamp"] == gloo.gloo_time(reply["createdAt"])
    assert answer["sources"] == [{"dataSourceId": tenant.heron, "name": "heron.md", "text": FACT}]
    assert answer["suggestions"] == FOLLOW_UPS.splitlines()
    assert set(answer) == {
        "query_id",
        "message_id",
        "chat_id",
        "message",
        "timestamp",
        "sources",
        "suggestions",
    }


def test_a_whole_user_token_chats_in_the_users_own_space(tenant: Tenant, model: Model):
    answer = post(tenant.token, {"query": QUESTION}, enable_suggestions="0").json
    convo = objects.get(Ref("convo", answer["chat_id"]))
    assert "topicId" not in convo and convo["createdBy"] == tenant.user.user_id
    # Nothing is linked to a convo of one's own: the answer is not grounded.
    assert answer["message"] == ANSWER and "sources" not in answer and "suggestions" not in answer


def test_a_chat_continues_with_its_history(tenant: Tenant, model: Model):
    first = post(tenant.topic_token, {"query": QUESTION}).json
    second = post(tenant.topic_token, {"query": "And who may use it?", "chat_id": first["chat_id"]}).json
    assert second["chat_id"] == first["chat_id"] and second["query_id"] != first["query_id"]
    messages, _ = model.answers[-1]
    assert [m.role for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[1].content == QUESTION and messages[-1].content == "And who may use it?"
    # The seed lists chat_id as a query parameter as well.
    third = post(tenant.topic_token, {"query": "Thanks"}, chat_id=first["chat_id"]).json
    assert third["chat_id"] == first["chat_id"]


def test_the_seeds_placeholder_chat_id_starts_a_new_chat(tenant: Tenant, model: Model):
    answer = post(tenant.topic_token, {"query": QUESTION, "chat_id": "<string>"}, chat_id="")
    assert answer.status == 200 and objects.get(Ref("convo", answer.json["chat_id"])) is not None


# -- switches, limits, publishers -------------------------------------------------------------------------


def test_intent_0_answers_without_grounding(tenant: Tenant, model: Model):
    answer = post(tenant.topic_token, {"query": QUESTION}, intent="0", enable_sources="2").json
    assert answer["sources"] == []
    assert prompting.GROUNDING_INSTRUCTION not in model.answers[-1][0][0].content


def test_enable_sources_0_leaves_sources_out_and_sources_limit_caps_them(tenant: Tenant, model: Model):
    assert "sources" not in post(tenant.topic_token, {"query": QUESTION}, enable_sources="0").json
    assert (
        post(tenant.topic_token, {"query": QUESTION, "sources_limit": 0}, enable_sources="2").json["sources"]
        == []
    )


def test_the_character_limit_caps_max_tokens_and_cuts_the_message(tenant: Tenant, model: Model):
    answer = post(tenant.topic_token, {"query": QUESTION, "character_limit": 12}).json
    assert answer["message"] == ANSWER[:12]
    assert model.answers[-1][1].max_tokens == 3 + gloo.MAX_TOKENS_MARGIN
    # The stored step keeps what the model wrote.
    assert steps.get(answer["message_id"])["content"]["text"] == ANSWER


def test_publishers_narrow_the_grounding_by_name_or_id(tenant: Tenant, model: Model):
    question = "Which billing team or system?"  # both documents speak of billing
    post(tenant.topic_token, {"query": question})
    system = model.answers[-1][0][0].content
    assert "room 4" in system and "billing system" in system
    post(tenant.topic_token, {"query": question, "publishers": ["ROOMS.md"]})
    system = model.answers[-1][0][0].content
    assert "room 4" in system and "billing system" not in system
    post(tenant.topic_token, {"query": question, "publishers": [tenant.heron, "<string>"]})
    system = model.answers[-1][0][0].content
    assert "billing system" in system and "room 4" not in system


def test_a_kallo_credential_may_name_its_own_unlinked_data_source(tenant: Tenant, model: Model):
    own = ready_source(
        ref_of(tenant.user), "# Kestrel\n\nThe launch code of project Kestrel is QQ-7.", "k.md"
    )
    answer = post(tenant.token, {"query": "What is the launch code of project Kestrel?", "publishers": [own]})
    assert "QQ-7" in model.answers[-1][0][0].content
    assert answer.json["sources"][0]["dataSourceId"] == own


def test_publishers_of_another_tenant_are_ignored_without_a_trace(tenant: Tenant, model: Model):
    other = Tenant("globex")
    probe = {"query": QUESTION, "publishers": [other.heron, "heron.md"]}
    answer = post(tenant.topic_token, probe).json
    assert [s["dataSourceId"] for s in answer["sources"]] == [tenant.heron]
    # Naming only another tenant's source narrows nothing (the same as naming a missing one).
    for named in ([other.heron], ["00000000-0000-4000-8000-000000000000"]):
        post(tenant.token, {"query": QUESTION, "publishers": named})
        assert prompting.GROUNDING_INSTRUCTION not in model.answers[-1][0][0].content
    assert all(other.heron not in json.dumps(c[0][0].content) for c in model.answers)


# -- streaming (buffered behind API Gateway) ----------------------------------------------------------------


def test_a_stream_sends_deltas_then_the_whole_object(tenant: Tenant, model: Model):
    result = post(tenant.topic_token, {"query": QUESTION, "stream": True, "character_limit": 10})
    assert result.status == 200 and result.headers["content-type"].startswith("text/event-stream")
    events = events_of(result)
    *deltas, (last, whole) = events
    assert last == gloo.DONE_EVENT and all(name == "message" for name, _ in deltas)
    assert "".join(d["message"] for _, d in deltas) == ANSWER[:10] == whole["message"]
    ids = {k: whole[k] for k in ("query_id", "message_id", "chat_id", "timestamp")}
    assert all({k: d[k] for k in ids} == ids for _, d in deltas)
    assert whole["sources"][0]["dataSourceId"] == tenant.heron and whole["suggestions"]


def test_a_failed_answer_is_a_502_with_our_code_only(tenant: Tenant, model: Model):
    model.fail = True
    result = post(tenant.topic_token, {"query": QUESTION})
    assert result.status == 502
    assert result.json["code"] == "model_error" and "10.0.0.1" not in result.body
    assert steps.get(result.json["message_id"])["status"] == "failed"
    streamed = events_of(post(tenant.topic_token, {"query": QUESTION, "stream": True}))
    assert streamed[-1][0] == gloo.ERROR_EVENT and streamed[-1][1]["code"] == "model_error"


def test_a_stream_that_breaks_off_ends_with_an_error_event(
    tenant: Tenant, model: Model, monkeypatch: pytest.MonkeyPatch
):
    whole_run = gloo.answering.run

    def breaking(job: Any, **options: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        for count, message in enumerate(whole_run(job, **options)):
            if count == 2:  # after convoStatus and convoNewStep: the store went away
                raise RuntimeError("connection to 10.0.0.9 reset")
            yield message

    monkeypatch.setattr(gloo.answering, "run", breaking)
    result = post(tenant.topic_token, {"query": QUESTION, "stream": True})
    assert result.status == 200 and "10.0.0.9" not in result.body
    name, error = events_of(result)[-1]
    assert name == gloo.ERROR_EVENT and (error["code"], error["status"]) == ("internal_error", 500)


# -- attacks and bad input ----------------------------------------------------------------------------------


def test_another_tenants_chat_is_not_found_like_a_missing_one(tenant: Tenant, model: Model):
    other = Tenant("globex")
    theirs = post(other.topic_token, {"query": QUESTION}).json["chat_id"]
    answers = len(model.answers)
    hidden = post(tenant.token, {"query": "Tell me their secrets", "chat_id": theirs})
    missing = post(tenant.token, {"query": "Tell me", "chat_id": "00000000-0000-7000-8000-000000000000"})
    assert hidden.status == missing.status == 404
    assert hidden.json["code"] == missing.json["code"] == "not_found"
    assert len(model.answers) == answers and len(steps.of_convo(theirs, limit=10).items) == 2


def test_a_refused_first_message_leaves_no_empty_chat(
    tenant: Tenant, model: Model, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KALLO_USER_TOKENS_PER_DAY", "0")
    get_settings.cache_clear()
    for credential in (tenant.app_key, tenant.topic_token):
        result = post(credential, {"query": QUESTION})
        assert result.status == 429 and result.json["code"] == "quota_exceeded"
    assert convos.query_convos(Access(tenant.user), topic_id=tenant.topic.id)[0] == []
    assert model.calls == []


def test_without_credentials_it_is_401(tenant: Tenant):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        result = call_surface(HANDLER, "POST", PATH, resource=PATH, body={"query": "Hi"}, headers=headers)
        assert result.status == 401 and result.json["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "query", "status", "code"),
    [
        ({}, {}, 422, "validation_error"),
        ({"query": ""}, {}, 422, "validation_error"),
        ({"query": " \n "}, {}, 422, "validation_error"),  # an empty step, however it is spelt
        ({"query": "Hi", "character_limit": -5}, {}, 422, "validation_error"),
        ({"query": "Hi", "publishers": [{"id": 1}]}, {}, 422, "validation_error"),
        ({"query": "Hi"}, {"intent": "7"}, 422, "validation_error"),
        ({"query": "Hi"}, {"enable_sources": "yes"}, 422, "validation_error"),
        ({"query": "Hi", "user": "someone"}, {}, 422, "validation_error"),
    ],
)
def test_bad_input_is_a_4xx_with_a_code(tenant: Tenant, body, query, status, code):
    result = post(tenant.token, body, **query)
    assert result.status == status and result.json["code"] == code, result.body


def test_a_body_that_is_not_json_is_a_400(tenant: Tenant):
    result = call_surface(
        HANDLER,
        "POST",
        PATH,
        resource=PATH,
        raw_body="{query: nope",
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    assert result.status == 400 and result.json["code"] == "malformed_json"


# -- app keys: end users ------------------------------------------------------------------------------------


def test_an_app_key_chats_as_its_own_end_user_in_its_topic(tenant: Tenant, model: Model):
    first = post(tenant.app_key, {"query": QUESTION})
    assert first.status == 200, first.body
    answer = first.json
    convo = objects.get(Ref("convo", answer["chat_id"]))
    end_user = objects.get(Ref("user", convo["createdBy"]))
    key_id = app_keys.query_app_keys(Access(tenant.user), tenant.topic.id)[0]["id"]
    assert convo["topicId"] == tenant.topic.id and end_user["displayName"] == f"key:{key_id}"
    assert end_user["createdBy"] == tenant.admin.user_id  # I1: the key's tenant made it
    assert answer["sources"] == [{"dataSourceId": tenant.heron, "name": "heron.md", "text": FACT}]
    assert answer["suggestions"] == FOLLOW_UPS.splitlines()
    again = post(tenant.app_key, {"query": "Who may use it?", "chat_id": answer["chat_id"]})
    assert again.status == 200 and again.json["chat_id"] == answer["chat_id"]
    # The topic's owner sees the chat as an ordinary convo of the topic.
    assert steps.get(again.json["message_id"])["convoId"] == answer["chat_id"]


def test_end_users_of_a_key_reach_only_their_own_chats(tenant: Tenant, model: Model):
    alices = post(tenant.app_key, {"query": QUESTION, "user": "alice"}).json["chat_id"]
    assert post(tenant.app_key, {"query": "Hi", "user": "alice", "chat_id": alices}).status == 200
    for probe in ({"user": "bob"}, {}):  # another end user; the key's own end user
        result = post(tenant.app_key, {"query": "Show me Alice's chat", "chat_id": alices, **probe})
        assert result.status == 404 and result.json["code"] == "not_found"
    # Nor does the same `user` through another topic's key of the tenant, or through another tenant's key.
    other_topic = make_object("topic", ref_of(tenant.user), name="other", config={})
    other_key = tenant.new_app_key(other_topic.id)
    globex = Tenant("globex")
    for key in (other_key, globex.app_key):
        result = post(key, {"query": "Show me Alice's chat", "chat_id": alices, "user": "alice"})
        assert result.status == 404 and result.json["code"] == "not_found"
    assert len(steps.of_convo(alices, limit=10).items) == 4


def test_an_app_key_cannot_reach_a_chat_made_with_a_kallo_credential(tenant: Tenant, model: Model):
    mine = post(tenant.topic_token, {"query": QUESTION}).json["chat_id"]
    result = post(tenant.app_key, {"query": "Hi", "chat_id": mine})
    assert result.status == 404


def test_an_app_keys_publishers_are_only_the_topics_sources(tenant: Tenant, model: Model):
    own = ready_source(
        ref_of(tenant.user), "# Kestrel\n\nThe launch code of project Kestrel is QQ-7.", "k.md"
    )
    globex = Tenant("globex")
    for named in ([own], [globex.heron], ["k.md"]):
        answer = post(
            tenant.app_key, {"query": "What is the launch code of project Kestrel?", "publishers": named}
        )
        assert answer.status == 200
        assert "QQ-7" not in model.answers[-1][0][0].content
        assert all(s["dataSourceId"] == tenant.heron for s in answer.json.get("sources", []))


def test_a_revoked_or_unknown_app_key_is_401(tenant: Tenant, model: Model):
    key_id = app_keys.query_app_keys(Access(tenant.user), tenant.topic.id)[0]["id"]
    app_keys.revoke_app_key(Access(tenant.user), tenant.topic.id, key_id)
    for key in (tenant.app_key, "app-" + "x" * 43):
        result = post(key, {"query": QUESTION})
        assert result.status == 401 and result.json["code"] == "unauthorized"


# -- costs --------------------------------------------------------------------------------------------------


def test_aws_calls_of_a_message_in_an_app_keys_chat(tenant: Tenant, model: Model, aws_calls):
    """An app key this container knows, an end user met before, a named chat continued, an answer citing
    one source, suggestions made: 32 calls. The surface's own are 6: the key's request rate
    (UpdateItem), the end user's claim (GetItem), the chat's check (2 Query + BatchGetItem, which reads
    the convo too), the cited sources' names (BatchGetItem); the question is Add Step's 4 (its words in
    its transaction, no SendMessage), the answer
    the step worker's (15, its indexing included, no idempotency record), the suggestions 7 (the
    convo's grants were read already)."""
    threads = threading.active_count()
    chat = post(tenant.app_key, {"query": QUESTION, "user": "alice"}).json["chat_id"]
    settled(threads)
    assert objects.get(Ref("convo", chat))["name"]  # named: no naming in what is counted
    aws_calls.reset()
    answer = post(tenant.app_key, {"query": "Who may use it?", "user": "alice", "chat_id": chat})
    assert answer.status == 200 and answer.json["sources"] and answer.json["suggestions"]
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 4,
        "dynamodb:Query": 13,
        "dynamodb:BatchGetItem": 5,
        "dynamodb:TransactWriteItems": 2,
        "dynamodb:BatchWriteItem": 1,
        "dynamodb:UpdateItem": 7,
    }
