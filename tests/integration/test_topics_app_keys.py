"""Create / Query / Revoke App Keys (POST, GET /topics/{topicId}/app-keys, DELETE
/topics/{topicId}/app-keys/{appKeyId}) through their handlers, and app keys refused by Kallo's own
WebSocket: an app key is a credential of the compatibility surfaces only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import uuid4

import pytest

from kallo.auth import app_keys as auth
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Unauthorized
from kallo.models.topics import TopicCreate
from kallo.services import end_users, topics
from kallo.store.keys import Ref
from tests.support import ws
from tests.support.api import invoke
from tests.support.world import grant, make_service_account, make_user

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    auth.forget_cached_app_keys()
    yield
    auth.forget_cached_app_keys()


def new_topic(owner: Principal) -> str:
    return topics.create_topic(Access(owner), TopicCreate(name="Support", description=""))["id"]


def create(principal: Principal, topic_id: str, body=None):
    return invoke(
        "topics.create_app_key",
        principal,
        path={"topicId": topic_id},
        body={"name": "Website chat"} if body is None else body,
    )


def listed(principal: Principal, topic_id: str):
    return invoke("topics.query_app_keys", principal, path={"topicId": topic_id})


def revoke(principal: Principal, topic_id: str, key_id: str):
    return invoke("topics.revoke_app_key", principal, path={"topicId": topic_id, "appKeyId": key_id})


def test_create_list_revoke(aws, aws_calls):
    svc, _ = make_service_account()
    topic_id = new_topic(svc)
    aws_calls.reset()
    made = create(svc, topic_id)
    assert made.status == 201, made.body
    # The topic check (Query + BatchGetItem), the topic's keys (Query), the record (PutItem), and the
    # request counted (none here: the authorizer counts REST requests).
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:PutItem": 1,
    }
    body = made.json
    assert set(body) == {"id", "name", "topicId", "key", "keyPrefix", "createdAt", "createdBy"}
    assert body["key"].startswith("app-") and body["name"] == "Website chat"

    aws_calls.reset()
    answer = listed(svc, topic_id)
    assert answer.status == 200
    assert dict(aws_calls.calls) == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
    assert answer.json == [{k: v for k, v in body.items() if k != "key"}]
    assert body["key"] not in answer.body

    auth.authenticate(body["key"])
    used = listed(svc, topic_id).json[0]
    assert used["lastUsedAt"] >= body["createdAt"]

    aws_calls.reset()
    assert revoke(svc, topic_id, body["id"]).status == 204
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:TransactWriteItems": 1,
    }
    with pytest.raises(Unauthorized):
        auth.authenticate(body["key"])
    assert listed(svc, topic_id).json == []
    again = revoke(svc, topic_id, body["id"])
    assert (again.status, again.json["code"]) == (404, "not_found")


def test_a_user_created_by_a_service_account_makes_keys_for_its_tenant(aws, aws_calls):
    svc, _ = make_service_account()
    member = make_user(admin=svc)
    topic_id = new_topic(member)
    aws_calls.reset()
    made = create(member, topic_id)
    assert made.status == 201
    assert aws_calls["dynamodb:GetItem"] == 1  # the creator's user item, for its tenant
    assert auth.authenticate(made.json["key"]).tenant_id == svc.user_id


def test_participants_get_403_and_others_404(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(svc)
    key_id = create(svc, topic_id).json["id"]
    participant, stranger = make_user(admin=svc), make_user(admin=svc)
    grant(Ref("topic", topic_id), participant, "participant")
    for principal, status in ((participant, 403), (stranger, 404)):
        assert create(principal, topic_id).status == status
        assert listed(principal, topic_id).status == status
        assert revoke(principal, topic_id, key_id).status == status
    assert len(listed(svc, topic_id).json) == 1


def test_another_tenant_gets_the_answers_of_missing_ids(aws):
    a, _ = make_service_account("a")
    b, _ = make_service_account("b")
    topic_a, topic_b = new_topic(a), new_topic(b)
    key = create(a, topic_a).json
    for answer, control in (
        (create(b, topic_a), create(b, str(uuid4()))),
        (listed(b, topic_a), listed(b, str(uuid4()))),
        (revoke(b, topic_a, key["id"]), revoke(b, str(uuid4()), str(uuid4()))),
        (revoke(b, topic_b, key["id"]), revoke(b, topic_b, str(uuid4()))),
    ):
        assert answer.status == control.status == 404
        assert answer.json["code"] == control.json["code"] == "not_found"
        assert key["key"] not in answer.body
        # The same words as for missing ids (only the ids the request named are echoed).
        assert UUID.sub("ID", answer.json["message"]) == UUID.sub("ID", control.json["message"])
    assert auth.authenticate(key["key"]).topic_id == topic_a
    assert [k["id"] for k in listed(a, topic_a).json] == [key["id"]]


def test_a_topic_scoped_token_needs_the_topic_in_scope(aws):
    svc, _ = make_service_account()
    user = make_user(admin=svc)
    mine, other = new_topic(user), new_topic(user)
    scoped = Principal(user_id=user.user_id, scheme="access_token", scope=(Ref("topic", mine),))
    assert create(scoped, mine).status == 201
    assert create(scoped, other).status == 404
    assert listed(scoped, other).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 257},
        {"name": "a\nb"},
        {"name": "ok", "id": str(uuid4())},
        {"name": 7},
    ],
)
def test_bad_bodies_are_422(aws, body):
    svc, _ = make_service_account()
    topic_id = new_topic(svc)
    answer = create(svc, topic_id, body)
    assert answer.status == 422 and answer.json["code"], answer.body
    assert listed(svc, topic_id).json == []


def test_bad_ids_are_4xx(aws):
    svc, _ = make_service_account()
    for answer in (
        listed(svc, "nope"),
        create(svc, "x" * 100),
        revoke(svc, str(uuid4()), "../etc"),
    ):
        assert 400 <= answer.status < 500 and answer.json["code"], answer.body


def test_the_websocket_refuses_an_app_key(aws):
    """$connect authenticates like the REST authorizer: an app key is neither a Kallo API key nor a
    token, whichever way it comes, even on a convo its own end user started."""
    svc, _ = make_service_account()
    topic_id = new_topic(svc)
    key = create(svc, topic_id).json["key"]
    alice = end_users.resolve(auth.authenticate(key), "alice")
    convo_id = end_users.start_convo(alice)["id"]
    for headers, query in (
        ({"Authorization": f"Bearer {key}"}, {"convoId": convo_id}),
        ({"x-api-key": key}, {"convoId": convo_id}),
        ({}, {"convoId": convo_id, "token": key}),
    ):
        answer = ws.invoke("connect", "a1=", headers={"Host": "localhost", **headers}, query=query)
        assert answer["statusCode"] == 401, answer
