"""App keys (`kallo.services.app_keys`, `kallo.auth.app_keys`): made by a topic's editors, stored as
hashes, verified with a cache of at most a minute (a revoked key is refused within it), `lastUsedAt`
written at most once a minute, and refused by the Kallo REST authorizer whatever header carries them."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from kallo.auth import app_keys as auth
from kallo.auth import authenticate
from kallo.authz.access import Access
from kallo.errors import Conflict, Forbidden, NotFound, Unauthorized
from kallo.models.app_keys import AppKeyCreate
from kallo.models.topics import TopicCreate
from kallo.services import app_keys, purge, topics
from kallo.settings import get_settings
from kallo.store import app_keys as store
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import LambdaContext, sample_event
from tests.support.world import grant, make_service_account, make_user

authorizer = importlib.import_module("auth.authorizer")


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    auth.forget_cached_app_keys()
    authenticate.forget_cached_credentials()
    yield
    auth.forget_cached_app_keys()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=fake.time))
    return fake


def new_topic(access: Access) -> str:
    return topics.create_topic(access, TopicCreate(name="Support", description="help"))["id"]


def new_key(access: Access, topic_id: str, name: str = "web") -> dict:
    return app_keys.create_app_key(access, topic_id, AppKeyCreate(name=name))


def test_a_key_is_shown_once_and_stored_as_its_hash(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    assert made["key"].startswith("app-") and len(made["key"]) > 40
    assert made["keyPrefix"] == made["key"][:8]
    assert {"id", "name", "key", "createdAt", "createdBy"} <= set(made)
    assert made["createdBy"] == svc.user_id
    stored = table().get(keys.app_key_key(auth.hash_key(made["key"])))
    assert stored is not None and made["key"] not in str(stored)
    assert stored["tenantId"] == svc.user_id
    listed = app_keys.query_app_keys(Access(svc), topic_id)
    assert [k["id"] for k in listed] == [made["id"]]
    assert "key" not in listed[0] and "keyHash" not in listed[0] and "lastUsedAt" not in listed[0]
    assert listed[0]["keyPrefix"] == made["keyPrefix"]


def test_the_tenant_of_a_key_is_the_tenant_of_its_creator(aws):
    """I1: a key made by a user a service account created makes end users of that service account;
    a self-registered user's key, its own."""
    svc, _ = make_service_account()
    member = make_user(admin=svc)
    topic_id = new_topic(Access(member))
    made = new_key(Access(member), topic_id)
    assert auth.authenticate(made["key"]).tenant_id == svc.user_id
    own = make_user(email="solo@example.com")
    own_topic = new_topic(Access(own))
    assert auth.authenticate(new_key(Access(own), own_topic)["key"]).tenant_id == own.user_id


def test_all_three_operations_need_can_edit_on_the_topic(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    viewer, stranger = make_user(admin=svc), make_user(admin=svc)
    grant(Ref("topic", topic_id), viewer, "participant")
    for access, error in ((Access(viewer), Forbidden), (Access(stranger), NotFound)):
        with pytest.raises(error):
            new_key(access, topic_id)
        with pytest.raises(error):
            app_keys.query_app_keys(access, topic_id)
        with pytest.raises(error):
            app_keys.revoke_app_key(access, topic_id, made["id"])
    assert auth.authenticate(made["key"]).id == made["id"]


def test_another_tenant_cannot_see_list_or_revoke_a_topics_keys(aws):
    a, _ = make_service_account("a")
    b, _ = make_service_account("b")
    topic_a, topic_b = new_topic(Access(a)), new_topic(Access(b))
    made = new_key(Access(a), topic_a)
    for call in (
        lambda: new_key(Access(b), topic_a),
        lambda: app_keys.query_app_keys(Access(b), topic_a),
        lambda: app_keys.revoke_app_key(Access(b), topic_a, made["id"]),
    ):
        with pytest.raises(NotFound):
            call()
    # B's own topic does not hold A's key either: the same 404 as for a missing one.
    with pytest.raises(NotFound, match=f"app key {made['id']} not found"):
        app_keys.revoke_app_key(Access(b), topic_b, made["id"])
    assert auth.authenticate(made["key"]).topic_id == topic_a


def test_a_topic_holds_a_bounded_number_of_keys(aws, monkeypatch):
    monkeypatch.setattr(app_keys, "MAX_APP_KEYS", 2)
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    first = new_key(Access(svc), topic_id)
    new_key(Access(svc), topic_id)
    with pytest.raises(Conflict) as refused:
        new_key(Access(svc), topic_id)
    assert refused.value.code == "too_many_app_keys"
    app_keys.revoke_app_key(Access(svc), topic_id, first["id"])
    new_key(Access(svc), topic_id)


def test_a_revoked_key_works_until_the_cache_entry_expires_at_60_s(aws, clock, aws_calls):
    assert get_settings().credential_cache_seconds == 60
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    started = clock.now
    assert auth.authenticate(made["key"]).id == made["id"]
    store.delete(auth.hash_key(made["key"]))  # revoked by another container
    aws_calls.reset()
    clock.now = started + 59.9
    assert auth.authenticate(made["key"]).id == made["id"]
    assert aws_calls.total == 0
    clock.now = started + 60
    with pytest.raises(Unauthorized):
        auth.authenticate(made["key"])
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}


def test_a_key_revoked_in_this_container_is_refused_at_once(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    auth.authenticate(made["key"])
    app_keys.revoke_app_key(Access(svc), topic_id, made["id"])
    with pytest.raises(Unauthorized):
        auth.authenticate(made["key"])
    assert app_keys.query_app_keys(Access(svc), topic_id) == []
    with pytest.raises(NotFound):
        app_keys.revoke_app_key(Access(svc), topic_id, made["id"])


def test_a_deleted_topics_key_is_refused(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    topics.delete_topic(Access(svc), topic_id)
    with pytest.raises(Unauthorized):
        auth.authenticate(made["key"])
    # The topic's purge deletes its keys.
    purge.purge(Ref("topic", topic_id))
    assert store.of_topic(topic_id) == []
    assert store.get(auth.hash_key(made["key"])) is None


@pytest.mark.parametrize(
    "key", ["", "app-", "app-short", "kallo_" + "x" * 40, "app-" + "x" * 200, "APP-" + "x" * 40]
)
def test_malformed_and_unknown_keys_are_refused_without_a_read(aws, aws_calls, key):
    aws_calls.reset()
    with pytest.raises(Unauthorized):
        auth.authenticate(key)
    assert aws_calls.total == 0


def test_an_unknown_key_is_refused_and_not_cached(aws):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    key = auth.generate()
    with pytest.raises(Unauthorized):
        auth.authenticate(key)
    # The same key stored later works at once: the refusal was not remembered.
    record = {
        "id": "k",
        "topicId": topic_id,
        "tenantId": svc.user_id,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    store.put(auth.hash_key(key), record)
    assert auth.authenticate(key).topic_id == topic_id


def test_last_used_at_is_written_at_most_once_a_minute(aws, clock, aws_calls):
    svc, _ = make_service_account()
    topic_id = new_topic(Access(svc))
    made = new_key(Access(svc), topic_id)
    started = clock.now
    aws_calls.reset()
    auth.authenticate(made["key"])
    # The key, its topic, and the first use recorded.
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2, "dynamodb:UpdateItem": 1}
    first = app_keys.query_app_keys(Access(svc), topic_id)[0]["lastUsedAt"]
    # Re-read after the cache expires, but within a minute of the recorded use: no write.
    clock.now = started + 30
    auth.forget_cached_app_keys()
    aws_calls.reset()
    auth.authenticate(made["key"])
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2}
    clock.now = started + 61
    auth.forget_cached_app_keys()
    aws_calls.reset()
    auth.authenticate(made["key"])
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2, "dynamodb:UpdateItem": 1}
    assert app_keys.query_app_keys(Access(svc), topic_id)[0]["lastUsedAt"] > first


def authorize(headers: dict[str, str]) -> dict:
    event = sample_event("auth.authorizer")
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
    return authorizer.lambda_handler(event, LambdaContext())


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "token"])
def test_the_kallo_rest_authorizer_refuses_an_app_key(aws, header):
    """App keys are valid on the compatibility surfaces only: REST (and the WebSocket, whose $connect
    authenticates the same way) answers 401."""
    svc, _ = make_service_account()
    made = new_key(Access(svc), new_topic(Access(svc)))
    assert auth.authenticate(made["key"]).topic_id  # a working key
    if header == "token":
        event = sample_event("auth.authorizer")
        event["headers"], event["multiValueHeaders"] = {}, {}
        event["queryStringParameters"] = {"token": made["key"]}
        event["multiValueQueryStringParameters"] = {"token": [made["key"]]}
        call = lambda: authorizer.lambda_handler(event, LambdaContext())  # noqa: E731
    else:
        value = f"Bearer {made['key']}" if header == "authorization" else made["key"]
        call = lambda: authorize({header: value})  # noqa: E731
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        call()
    with pytest.raises(Unauthorized):
        authenticate.authenticate(
            {"authorization": f"Bearer {made['key']}"}
            if header != "x-api-key"
            else {"x-api-key": made["key"]}
        )
