"""Attacks through app keys and the Dify surface, over the real local stack: end users of one key
against each other, one tenant's key against another tenant's conversations and end users, and app keys
against Kallo's own REST API and WebSocket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.security.conftest import Api, Connect, Tenant, bearer

pytestmark = [pytest.mark.e2e, pytest.mark.security]


@dataclass
class Dify:
    """The Dify surface with one tenant's app key (of a topic of its own whose answers are short)."""

    tenant: Tenant
    topic_id: str
    key: str

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **options.pop("headers", {})}
        return self.tenant.stack.client.request(method, f"/dify/v1{path}", headers=headers, **options)

    def chat(self, user: str, query: str) -> dict[str, Any]:
        body = {"inputs": {}, "query": query, "response_mode": "blocking", "user": user}
        answer = self.call("POST", "/chat-messages", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        return answer.json()


def dify_of(tenant: Tenant) -> Dify:
    user: Api = tenant.user
    topic = user.ok(
        "POST",
        "/topics",
        201,
        params={"teamId": tenant.team_id},
        json={"name": "App", "description": "", "config": {"defaults": {"maxTokens": 6, "temperature": 0}}},
    )
    key = user.ok("POST", f"/topics/{topic['id']}/app-keys", 201, json={"name": "app"})
    return Dify(tenant, topic["id"], key["key"])


@pytest.fixture(scope="module")
def apps(tenant_a: Tenant, tenant_b: Tenant) -> tuple[Dify, Dify, dict[str, Any]]:
    """A's and B's apps, and a conversation of A's end user `alice` with one message."""
    a, b = dify_of(tenant_a), dify_of(tenant_b)
    return a, b, a.chat("alice", f"Remember the word {tenant_a.secret}.")


def probes(conversation_id: str, message_id: str, user: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", "/messages", {"params": {"user": user, "conversation_id": conversation_id}}),
        (
            "GET",
            "/messages",
            {"params": {"user": user, "conversation_id": conversation_id, "first_id": message_id}},
        ),
        ("POST", f"/conversations/{conversation_id}/name", {"json": {"name": "taken", "user": user}}),
        ("DELETE", f"/conversations/{conversation_id}", {"json": {"user": user}}),
        ("POST", f"/messages/{message_id}/feedbacks", {"json": {"rating": "dislike", "user": user}}),
        ("GET", f"/messages/{message_id}/suggested", {"params": {"user": user}}),
        ("POST", f"/chat-messages/{message_id}/stop", {"json": {"user": user}}),
        (
            "POST",
            "/chat-messages",
            {"json": {"query": "hi", "user": user, "conversation_id": conversation_id}},
        ),
    ]


def assert_unreachable(app: Dify, user: str, chat: dict[str, Any], secret: str) -> None:
    """Every operation on the conversation and its message answers as for missing ids, and tells
    nothing of them."""
    attacks = probes(chat["conversation_id"], chat["message_id"], user)
    controls = probes(str(uuid.uuid4()), str(uuid.uuid4()), user)
    for (method, path, options), (_, control_path, control_options) in zip(attacks, controls, strict=True):
        answer = app.call(method, path, **options)
        control = app.call(method, control_path, **control_options)
        assert answer.status_code == control.status_code == 404, f"{method} {path}: {answer.text}"
        assert answer.json()["code"] == control.json()["code"] == "not_found"
        assert secret not in answer.text and chat["answer"] not in answer.text


def assert_intact(owner: Dify, chat: dict[str, Any]) -> None:
    history = owner.call(
        "GET", "/messages", params={"user": "alice", "conversation_id": chat["conversation_id"]}
    )
    assert history.status_code == 200
    [message] = history.json()["data"]
    assert message["id"] == chat["message_id"] and message["feedback"] is None
    [conversation] = [
        c
        for c in owner.call("GET", "/conversations", params={"user": "alice"}).json()["data"]
        if c["id"] == chat["conversation_id"]
    ]
    assert conversation["name"] != "taken"


def test_i4_an_end_user_cannot_reach_another_end_users_conversation(apps, tenant_a):
    a, _, chat = apps
    assert_unreachable(a, "mallory", chat, tenant_a.secret)
    assert a.call("GET", "/conversations", params={"user": "mallory"}).json()["data"] == []
    assert_intact(a, chat)


def test_i4_another_tenants_key_cannot_reach_a_tenants_conversations(apps, tenant_a):
    a, b, chat = apps
    # The same `user` value through B's key is B's own end user, a stranger to A's.
    assert_unreachable(b, "alice", chat, tenant_a.secret)
    assert b.call("GET", "/conversations", params={"user": "alice"}).json()["data"] == []
    assert_intact(a, chat)


def test_i4_one_topics_key_cannot_reach_another_topics_conversations(apps, tenant_a):
    a, _, chat = apps
    sibling = dify_of(tenant_a)  # the same tenant, another topic
    assert_unreachable(sibling, "alice", chat, tenant_a.secret)
    assert_intact(a, chat)


def test_i1_only_the_keys_tenant_has_authority_over_its_end_users(apps, tenant_a, tenant_b):
    chat = apps[2]
    convo = tenant_a.user.ok("GET", f"/convos/{chat['conversation_id']}")
    end_user_id = convo["createdBy"]
    # A's service account created the end user: it acts for it, like for any user it created.
    assert tenant_a.sa.ok("GET", "/users", params={"userId": end_user_id})["id"] == end_user_id
    mine = tenant_a.sa.ok("GET", "/convos", params={"userId": end_user_id})
    assert [c["id"] for c in mine] == [chat["conversation_id"]]
    # B (key or user token) reaches neither the end user nor its conversation.
    for api in (tenant_b.sa, tenant_b.user):
        assert api.call("GET", "/users", params={"userId": end_user_id}).status_code == 404
        assert api.call("GET", "/convos", params={"userId": end_user_id}).status_code == 404
        assert api.call("GET", f"/convos/{chat['conversation_id']}").status_code == 404


def test_an_app_key_is_refused_by_the_rest_api_and_the_websocket(apps, ws_connect: Connect):
    a, _, chat = apps
    client = a.tenant.stack.client
    for headers in (bearer(a.key), {"x-api-key": a.key}):
        for path in ("/convos", f"/convos/{chat['conversation_id']}", f"/topics/{a.topic_id}/app-keys"):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401, f"{path}: {answer.text}"
    for headers, query in ((bearer(a.key), None), ({"x-api-key": a.key}, None), ({}, {"token": a.key})):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(chat["conversation_id"], headers=headers, query=query)
        assert refused.value.response.status_code == 401
    # And Kallo's own credentials are not app keys.
    for headers in (bearer(a.tenant.user_token["jwt"]), {"x-api-key": a.tenant.key}, bearer(a.tenant.key)):
        answer = client.get("/dify/v1/conversations", params={"user": "x"}, headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
