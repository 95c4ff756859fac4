"""Query Convos: GET /convos?topicId= | userId= [&includeLatestStep=1] — newest first, paged, one
BatchGetItem for a whole page whatever its size."""

from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.store import keys, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def new_convo(owner: Principal, **where: str) -> str:
    return convos.create_convo(Access(owner), ConvoCreate(name="c"), **where)["id"]


def add_step(convo_id: str, text: str) -> None:
    at = "2026-11-22T10:00:00.000Z"
    steps.add(
        Step(
            id=str(uuid4()),
            convoId=convo_id,
            authorType="llm",
            content={"text": text},
            createdAt=at,
            updatedAt=at,
        ).record()
    )


def query(principal, **params: str):
    return invoke("convos.query_convos", principal, query=params)


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [c["id"] for c in result.json]


@pytest.mark.parametrize("count", [1, 20])
def test_a_users_convos_cost_two_calls_whatever_their_number(aws, aws_calls, count):
    alice = make_user()
    made = [new_convo(alice) for _ in range(count)]
    for convo_id in made:
        add_step(convo_id, f"last words of {convo_id}")
    aws_calls.reset()
    result = query(alice, includeLatestStep="1")
    assert ids(result) == list(reversed(made))  # newest first
    assert all(c["latestStep"]["content"]["text"] == f"last words of {c['id']}" for c in result.json)
    # Alice's grants (1 Query) and the convos with their latest steps (1 BatchGetItem).
    assert aws_calls["dynamodb:Query"] == 1 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == 2


@pytest.mark.parametrize("count", [1, 20])
def test_a_topics_convos_cost_four_calls_whatever_their_number(aws, aws_calls, count):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    made = [new_convo(owner, topic_id=topic.id) for _ in range(count)]
    for convo_id in made:
        add_step(convo_id, "hi")
    aws_calls.reset()
    result = query(member, topicId=topic.id, includeLatestStep="1")
    assert ids(result) == list(reversed(made)) and all("latestStep" in c for c in result.json)
    # The topic check (Query + BatchGetItem), the topic's grants (Query), the convos (BatchGetItem).
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 2
    assert aws_calls.total == 4


def test_latest_step_only_on_request(aws):
    alice = make_user()
    convo_id = new_convo(alice)
    add_step(convo_id, "hi")
    for params in ({}, {"includeLatestStep": ""}):
        result = query(alice, **params)
        assert ids(result) == [convo_id] and "latestStep" not in result.json[0]


def test_created_and_joined_convos(aws):
    alice, bob = make_user(), make_user()
    topic = make_object("topic", ref_of(bob))
    grant(topic, alice, "participant")
    own = new_convo(alice)
    in_topic = new_convo(alice, topic_id=topic.id)  # alice is its admin
    joined = new_convo(bob)
    grant(Ref("convo", joined), alice, "viewer")
    new_convo(bob)  # not alice's
    new_convo(bob, topic_id=topic.id)  # alice may view it through the topic, but never joined it
    assert ids(query(alice)) == [joined, in_topic, own]
    assert ids(query(alice, userId=alice.user_id)) == [joined, in_topic, own]


def test_inherited_access_to_a_topics_convos(aws):
    owner, member, topic_user, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    grant(topic, topic_user, "viewer")
    made = [new_convo(owner, topic_id=topic.id) for _ in range(2)]
    new_convo(owner)  # not the topic's
    for reader in (owner, member, topic_user):
        assert ids(query(reader, topicId=topic.id)) == list(reversed(made))
    hidden = query(outsider, topicId=topic.id)
    assert hidden.status == 404 and hidden.json["code"] == "not_found"
    assert query(owner, topicId=str(uuid4())).status == 404


def test_another_users_convos_need_authority(aws, aws_calls):
    service, _ = make_service_account()
    pat, stranger = make_user(admin=service), make_user()
    mine = new_convo(pat)
    aws_calls.reset()
    assert ids(query(service, userId=pat.user_id)) == [mine]
    assert aws_calls.total == 3  # the authority check, the grants, the convos
    for caller, user in ((stranger, pat), (service, stranger), (pat, service)):
        hidden = query(caller, userId=user.user_id)
        assert hidden.status == 404 and hidden.json["code"] == "not_found"


def test_pages_newest_first(aws, aws_calls):
    alice = make_user()
    made = [new_convo(alice) for _ in range(7)]
    seen, token = [], None
    while True:
        aws_calls.reset()
        result = query(alice, limit="3", **({"nextToken": token} if token else {}))
        # The first cursor reads the signing secret (the cursor key), once per container.
        secret = aws_calls["secretsmanager:GetSecretValue"]
        assert aws_calls.total == 2 + secret and secret == (not seen) and len(result.json) <= 3
        seen += ids(result)
        token = result.headers.get("x-next-token")
        if not token:
            break
    assert seen == list(reversed(made))
    # A cursor belongs to its listing: not to another user's or another topic's.
    first = query(alice, limit="3").headers["x-next-token"]
    other = query(make_user(), nextToken=first)
    assert other.status == 400 and other.json["code"] == "invalid_next_token"


def test_deleted_convos_whose_grants_wait_for_the_purge_are_left_out(aws):
    alice = make_user()
    kept, gone = new_convo(alice), new_convo(alice)
    table().delete(keys.object_key(Ref("convo", gone)))
    assert ids(query(alice)) == [kept]


def test_an_access_token_lists_only_its_scope(aws, aws_calls):
    alice = make_user()
    topic, other = make_object("topic", ref_of(alice)), make_object("topic", ref_of(alice))
    in_scope = new_convo(alice, topic_id=topic.id)
    new_convo(alice, topic_id=other.id)
    new_convo(alice)
    token = Principal(user_id=alice.user_id, scheme="access_token", scope=(topic,))
    aws_calls.reset()
    assert ids(query(token)) == [in_scope]
    assert aws_calls.total == 3  # + one BatchGetItem confirming the convos' links to scoped objects
    assert ids(query(token, topicId=topic.id)) == [in_scope]
    assert query(token, topicId=other.id).status == 404
    whole = Principal(user_id=alice.user_id, scheme="access_token", scope=(ref_of(alice),))
    assert len(ids(query(whole))) == 3


def test_bad_input(aws):
    alice = make_user()
    for params in (
        {"topicId": "nope"},
        {"userId": "1"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"nextToken": "!!!"},
        {"nextToken": "x" * 2000},
        {"includeLatestStep": "1" * 100},
        {"topicId": str(uuid4()), "userId": alice.user_id},
    ):
        result = query(alice, **params)
        assert 400 <= result.status < 500, (params, result.status)
        assert {"code", "message"} <= set(result.json), result.body
