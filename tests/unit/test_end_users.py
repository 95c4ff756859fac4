"""End users of app keys (`kallo.services.end_users`): one Kallo user per (topic, tenant, `user` value),
made by the key's tenant (I1), never reachable from another topic or tenant; each sees only the
conversations it started in the key's topic."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from kallo.auth import app_keys as auth
from kallo.authz.access import Access
from kallo.errors import NotFound, Unprocessable
from kallo.models.app_keys import AppKeyCreate
from kallo.models.convos import ConvoCreate
from kallo.models.topics import TopicCreate
from kallo.services import app_keys, authority, convos, end_users, topics, users
from kallo.store import objects
from kallo.store.keys import Ref
from tests.support.world import make_service_account, make_user


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    auth.forget_cached_app_keys()
    yield
    auth.forget_cached_app_keys()


def new_topic(access: Access) -> str:
    return topics.create_topic(access, TopicCreate(name="Support", description="help"))["id"]


def key_of(access: Access, topic_id: str) -> auth.AppKey:
    made = app_keys.create_app_key(access, topic_id, AppKeyCreate(name="web"))
    return auth.authenticate(made["key"])


@pytest.fixture
def world(aws):
    svc, _ = make_service_account("a")
    topic_id = new_topic(Access(svc))
    return svc, topic_id, key_of(Access(svc), topic_id)


def test_the_first_use_makes_an_end_user_of_the_tenant_and_later_uses_find_it(world, aws_calls):
    svc, _, key = world
    aws_calls.reset()
    alice = end_users.resolve(key, "alice")
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:TransactWriteItems": 1}
    aws_calls.reset()
    assert end_users.resolve(key, "alice").user_id == alice.user_id
    assert end_users.resolve(key, "  alice ").user_id == alice.user_id  # trimmed, like any name
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2}
    user = objects.get(Ref("user", alice.user_id))
    assert user["createdBy"] == svc.user_id and user["displayName"] == "alice"
    assert "emailAddress" not in user and user["isServiceAccount"] is False
    # I1: the tenant has authority over its end users (it may act for them over REST).
    assert authority.has_authority(Access(svc), alice.user_id)
    assert users.get_or_create_user(Access(svc), user_id=alice.user_id)[0]["id"] == alice.user_id


def test_end_users_are_per_topic_and_per_tenant(world):
    svc, topic_id, key = world
    alice = end_users.resolve(key, "alice")
    assert end_users.resolve(key, "bob").user_id != alice.user_id
    # Another key of the same topic and tenant: the same end user.
    assert end_users.resolve(key_of(Access(svc), topic_id), "alice").user_id == alice.user_id
    # Another topic of the same tenant: another end user.
    other_topic = key_of(Access(svc), new_topic(Access(svc)))
    assert end_users.resolve(other_topic, "alice").user_id != alice.user_id
    # Another tenant with a key on the same topic (it was given a share of it): another end user,
    # made by that tenant, over which tenant A has no authority.
    b, _ = make_service_account("b")
    b_user = make_user(admin=b)
    from tests.support.world import grant

    grant(Ref("topic", topic_id), b_user, "admin")
    b_key = key_of(Access(b_user), topic_id)
    assert b_key.tenant_id == b.user_id
    b_alice = end_users.resolve(b_key, "alice")
    assert b_alice.user_id != alice.user_id
    assert not authority.has_authority(Access(svc), b_alice.user_id)
    assert not authority.has_authority(Access(b), alice.user_id)


def test_an_end_user_is_never_found_by_email(world):
    svc, _, key = world
    end_users.resolve(key, "alice@example.com")
    found, created = users.get_or_create_user(Access(svc), email="alice@example.com")
    assert created  # a user of the service account's own, not the end user
    assert objects.get(Ref("user", found["id"])).get("endUserOf") is None


@pytest.mark.parametrize("value", ["", "   ", "a\nb", "x" * 257, "bidi\u202eevil"])
def test_a_bad_user_value_is_422(world, value):
    with pytest.raises(Unprocessable):
        end_users.resolve(world[2], value)


def test_no_request_can_name_a_keys_own_end_user(world):
    """Gloo's requests without `user` act as the key's own end user: a Dify client (or a Gloo one)
    naming its reserved value would reach the conversations made that way."""
    _, _, key = world
    own = end_users.key_end_user(key)
    assert end_users.key_end_user(key).user_id == own.user_id
    for value in (f"key:{key.id}", f"  key:{key.id}", "key:anything"):
        with pytest.raises(Unprocessable, match="must not start with"):
            end_users.resolve(key, value)
    assert end_users.resolve(key, f"x-key:{key.id}").user_id != own.user_id


def test_an_end_user_sees_only_its_own_convos_of_the_keys_topic(world):
    svc, topic_id, key = world
    alice, bob = end_users.resolve(key, "alice"), end_users.resolve(key, "bob")
    mine = end_users.start_convo(alice, "mine", {"inputs": {"city": "Oslo"}})
    assert mine["topicId"] == topic_id and mine["createdBy"] == alice.user_id
    assert mine["inputs"] == {"city": "Oslo"}
    theirs = end_users.start_convo(bob)
    assert end_users.own_convo(alice, mine["id"])["name"] == "mine"
    # Another end user's convo, a convo of the topic started over REST, another topic's: all 404.
    rest_convo = convos.create_convo(Access(svc), ConvoCreate(), topic_id=topic_id)
    other_key = key_of(Access(svc), new_topic(Access(svc)))
    alice_elsewhere = end_users.resolve(other_key, "alice")
    elsewhere = end_users.start_convo(alice_elsewhere)
    for convo_id in (theirs["id"], rest_convo["id"], elsewhere["id"], str(uuid4()), "not-an-id"):
        with pytest.raises(NotFound, match=f"conversation {convo_id} not found"):
            end_users.own_convo(alice, convo_id)
        with pytest.raises(NotFound):
            end_users.rename_convo(alice, convo_id, "taken")
        with pytest.raises(NotFound):
            end_users.delete_convo(alice, convo_id)
    # The same alice through another topic's key can't reach her convo here either.
    with pytest.raises(NotFound):
        end_users.own_convo(alice_elsewhere, mine["id"])
    assert objects.get(Ref("convo", theirs["id"]))["name"] == ""
    # The topic's team (here its owner) sees the end users' convos like any of the topic's convos.
    listed, _ = convos.query_convos(Access(svc), topic_id=topic_id)
    assert {mine["id"], theirs["id"], rest_convo["id"]} == {c["id"] for c in listed}


def test_listing_is_newest_first_and_pages_by_last_id(world, aws_calls):
    _, _, key = world
    alice, bob = end_users.resolve(key, "alice"), end_users.resolve(key, "bob")
    made = [end_users.start_convo(alice, f"c{i}")["id"] for i in range(5)]
    end_users.start_convo(bob)
    aws_calls.reset()
    page, more = end_users.list_convos(alice, limit=2)
    assert dict(aws_calls.calls) == {"dynamodb:Query": 1, "dynamodb:BatchGetItem": 1}
    assert [c["id"] for c in page] == made[::-1][:2] and more
    page2, more = end_users.list_convos(alice, limit=2, after=page[-1]["id"])
    assert [c["id"] for c in page2] == made[::-1][2:4] and more
    page3, more = end_users.list_convos(alice, limit=2, after=page2[-1]["id"])
    assert [c["id"] for c in page3] == made[:1] and not more
    everything, more = end_users.list_convos(alice, limit=100)
    assert [c["id"] for c in everything] == made[::-1] and not more
    with pytest.raises(Unprocessable):
        end_users.list_convos(alice, after="nope")


def test_rename_and_delete_own_convos(world):
    _, _, key = world
    alice = end_users.resolve(key, "alice")
    convo = end_users.start_convo(alice)
    assert end_users.rename_convo(alice, convo["id"], "Trip")["name"] == "Trip"
    end_users.delete_convo(alice, convo["id"])
    assert objects.get(Ref("convo", convo["id"])) is None
    with pytest.raises(NotFound):
        end_users.own_convo(alice, convo["id"])
    assert end_users.list_convos(alice)[0] == []


def test_a_convo_in_a_deleted_topic_cannot_be_started(world):
    svc, topic_id, key = world
    alice = end_users.resolve(key, "alice")
    topics.delete_topic(Access(svc), topic_id)
    with pytest.raises(NotFound):
        end_users.start_convo(alice)


def _step(convo_id: str, author: str | None, text: str, **fields) -> dict:
    from kallo.clock import now_iso
    from kallo.models.steps import Step
    from kallo.store import steps

    body = {
        "id": str(uuid4()),
        "convoId": convo_id,
        "authorType": "llm" if author is None else "user",
        "content": {"text": text},
        "createdAt": now_iso(),
        "updatedAt": now_iso(),
        **({"authorId": author} if author else {}),
        **fields,
    }
    return steps.add(Step.model_validate(body).record())


def test_exchanges_pair_questions_with_their_answers(world):
    _, _, key = world
    alice = end_users.resolve(key, "alice")
    convo_id = end_users.start_convo(alice)["id"]
    q1 = _step(convo_id, alice.user_id, "q1")
    a1 = _step(convo_id, None, "a1", replyToStepId=q1["id"])
    _step(convo_id, alice.user_id, "an alternate", isAlternate=True)
    q2 = _step(convo_id, alice.user_id, "q2 (not answered)")
    q3 = _step(convo_id, alice.user_id, "q3")
    a3 = _step(convo_id, None, "a3", replyToStepId=q3["id"])
    orphan = _step(convo_id, None, "an answer whose question is gone", replyToStepId=str(uuid4()))
    convo, found, more = end_users.exchanges(alice, convo_id, limit=10)
    assert convo["id"] == convo_id
    assert [(e.question and e.question["id"], e.answer and e.answer["id"]) for e in found] == [
        (q1["id"], a1["id"]),
        (q2["id"], None),
        (q3["id"], a3["id"]),
        (None, orphan["id"]),
    ]
    assert [e.id for e in found] == [a1["id"], q2["id"], a3["id"], orphan["id"]] and not more
    _, latest, more = end_users.exchanges(alice, convo_id, limit=2)
    assert [e.id for e in latest] == [a3["id"], orphan["id"]] and more
    _, before, more = end_users.exchanges(alice, convo_id, before=a3["id"], limit=2)
    assert [e.id for e in before] == [a1["id"], q2["id"]] and not more
    _, before_q2, more = end_users.exchanges(alice, convo_id, before=q2["id"], limit=5)
    assert [e.id for e in before_q2] == [a1["id"]] and not more
    assert end_users.first_question(alice, convo_id) == "q1"
    # Another end user: 404, the convo's and the message's alike.
    bob = end_users.resolve(key, "bob")
    with pytest.raises(NotFound):
        end_users.exchanges(bob, convo_id)
    with pytest.raises(NotFound, match=f"message {a1['id']} not found"):
        end_users.own_step(bob, a1["id"])
    with pytest.raises(NotFound):
        end_users.first_question(bob, convo_id)
    # A message of another of alice's convos is no position in this one.
    other = end_users.start_convo(alice)["id"]
    elsewhere = _step(other, alice.user_id, "elsewhere")
    with pytest.raises(NotFound):
        end_users.exchanges(alice, convo_id, before=elsewhere["id"])
    assert end_users.own_step(alice, elsewhere["id"])["id"] == elsewhere["id"]


def test_app_settings_are_the_topic_and_its_prompt(world):
    from kallo.models.prompts import PromptCreate
    from kallo.services import prompts

    svc, topic_id, key = world
    alice = end_users.resolve(key, "alice")
    topic, prompt = end_users.app_settings(alice)
    assert topic["id"] == topic_id and prompt == ""
    made = prompts.create_prompt(Access(svc), PromptCreate(text="Hi {{name}}"))
    topics.set_topic_prompt(Access(svc), topic_id, made["id"])
    assert end_users.app_settings(alice)[1] == "Hi {{name}}"
    assert end_users.source_names([]) == {}
