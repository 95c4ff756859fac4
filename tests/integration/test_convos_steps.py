"""Query Convo Steps: GET /convos/{convoId}/steps[?after=<date-time>] → 200 [step], oldest first, paged."""

from uuid import uuid4

import pytest

from kallo.authz import access
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.store import keys, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def add_steps(convo_id: str, count: int) -> list[str]:
    """`count` steps one second apart from 10:00:00Z, added newest first (the store sorts them)."""
    made = []
    for second in reversed(range(count)):
        at = f"2026-11-22T10:{second // 60:02d}:{second % 60:02d}.000Z"
        step = Step(
            id=str(uuid4()),
            convoId=convo_id,
            authorType="user",
            authorId=str(uuid4()),
            content={"text": f"step {second}"},
            createdAt=at,
            updatedAt=at,
        )
        made.append(steps.add(step.record())["id"])
    return list(reversed(made))


def query(principal, convo_id: str, **params: str):
    return invoke("convos.query_convo_steps", principal, path={"convoId": convo_id}, query=params)


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [s["id"] for s in result.json]


@pytest.fixture
def alice(aws):
    return make_user()


@pytest.fixture
def convo_id(alice) -> str:
    return convos.create_convo(Access(alice), ConvoCreate())["id"]


def test_oldest_first(alice, convo_id, aws_calls):
    made = add_steps(convo_id, 5)
    aws_calls.reset()
    result = query(alice, convo_id)
    assert ids(result) == made and "x-next-token" not in result.headers
    first = result.json[0]
    assert first["convoId"] == convo_id and first["content"] == {"text": "step 0"}
    assert first["authorType"] == "user" and first["isAlternate"] is False
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls.total == 3  # the check (2), the steps


def test_after_a_time(alice, convo_id):
    made = add_steps(convo_id, 5)
    assert ids(query(alice, convo_id, after="2026-11-22T10:00:02.000Z")) == made[3:]
    # Any RFC 3339 spelling of the same instant.
    assert ids(query(alice, convo_id, after="2026-11-22T12:00:02+02:00")) == made[3:]
    assert ids(query(alice, convo_id, after="2026-11-22T10:00:01.5Z")) == made[2:]
    assert ids(query(alice, convo_id, after="2026-11-22T09:00:00Z")) == made
    assert ids(query(alice, convo_id, after="2026-11-23T00:00:00Z")) == []


def test_pages_with_after_and_next_token(alice, convo_id, aws_calls):
    made = add_steps(convo_id, 12)
    seen, token = [], None
    while True:
        params = {"after": "2026-11-22T10:00:01Z", "limit": "4", **({"nextToken": token} if token else {})}
        aws_calls.reset()
        result = query(alice, convo_id, **params)
        # The first cursor made reads the signing secret (once per container) for the cursor key.
        secret = aws_calls["secretsmanager:GetSecretValue"]
        # The first page makes the whole check (Query + BatchGetItem), which remembers the convo's
        # chain: the next pages check it in one BatchGetItem (`Access.direct`).
        check = 2 if not seen else 1
        assert len(result.json) <= 4 and aws_calls.total == check + 1 + secret and secret == (not seen)
        seen += ids(result)
        token = result.headers.get("x-next-token")
        if not token:
            break
    assert seen == made[2:]
    # A cursor of this convo means nothing for another one.
    token = query(alice, convo_id, limit="2").headers["x-next-token"]
    other = convos.create_convo(Access(alice), ConvoCreate())["id"]
    misused = query(alice, other, nextToken=token)
    assert misused.status == 400 and misused.json["code"] == "invalid_next_token"


def test_inherited_access(aws, aws_calls):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    made = add_steps(convo_id, 2)
    access.forget_edges()  # a process that has checked nothing
    aws_calls.reset()
    assert ids(query(member, convo_id)) == made
    # The convo's structural grants (its owner grant carries the topic's edges as a hint), then the
    # member's grants on the chain with the topic's owner grant in one BatchGetItem, the steps.
    assert aws_calls.calls == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
    aws_calls.reset()
    assert ids(query(member, convo_id)) == made
    # The chain remembered: its edges' grants and the member's, in one BatchGetItem, + the steps.
    assert aws_calls.calls == {"dynamodb:BatchGetItem": 1, "dynamodb:Query": 1}
    aws_calls.reset()
    assert query(outsider, convo_id).status == 404
    # Refused on the remembered chain, the outsider gets the whole check: BatchGetItem, then the 2
    # Query (its grants on the whole chain were read by the first, and are not read again).
    assert aws_calls.calls == {"dynamodb:BatchGetItem": 1, "dynamodb:Query": 2}


def test_a_convo_without_a_hint_gets_the_whole_check(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic, topicId=topic.id)  # an owner grant written without a hint
    made = add_steps(convo.id, 1)
    aws_calls.reset()
    assert ids(query(member, convo.id)) == made
    # 2 Query (the convo's and the topic's structural grants) + BatchGetItem + the steps.
    assert aws_calls.calls == {"dynamodb:Query": 3, "dynamodb:BatchGetItem": 1}


def test_a_stale_hint_never_lets_in_the_old_team(aws):
    """ATTACK (I5): a topic moved from one team to another (its owner grant replaced, as PUT grantees
    does) leaves its convos' hints naming the old team: a member of the old team only is refused, a
    member of the new one admitted, from a cold process and from one that remembers the old chain."""
    owner, old_member, new_member = make_user(), make_user(), make_user()
    old_team, new_team = make_object("team", ref_of(owner)), make_object("team", ref_of(owner))
    grant(old_team, old_member, "member")
    grant(new_team, new_member, "member")
    topic = make_object("topic", old_team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    made = add_steps(convo_id, 1)
    assert ids(query(old_member, convo_id)) == made  # remembers convo → topic → old team
    table().delete(keys.grant_key(topic, old_team))
    grant(topic, new_team, "owner")
    for cold in (False, True):
        if cold:
            access.forget_edges()
        assert query(old_member, convo_id).status == 404
        assert ids(query(new_member, convo_id)) == made
        assert query(old_member, convo_id).status == 404


def test_a_remembered_chain_never_outlives_its_grants(aws):
    """ATTACK (I5, I8): a convo moved out of a team's topic, or a member removed from the team, is
    refused at once, though the process remembers the convo's old chain: every edge and grant is
    read again."""
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    made = add_steps(convo_id, 1)
    assert ids(query(member, convo_id)) == made  # remembers convo → topic → team
    table().delete(keys.grant_key(team, ref_of(member)))
    assert query(member, convo_id).status == 404
    grant(team, member, "member")
    assert ids(query(member, convo_id)) == made
    # The convo leaves the topic: its owner grant goes to the owner user (as PUT grantees would).
    table().delete(keys.grant_key(Ref("convo", convo_id), topic))
    grant(Ref("convo", convo_id), owner, "owner")
    assert query(member, convo_id).status == 404


def test_cross_tenant_and_unknown(alice, convo_id):
    add_steps(convo_id, 1)
    assert query(make_user(), convo_id).status == 404
    assert query(alice, str(uuid4())).status == 404


def test_bad_input(alice, convo_id):
    for params in (
        {"after": "yesterday"},
        {"after": "1700000000"},
        {"after": "2026-11-22"},
        {"after": "2026-11-22T10:00:00"},  # no offset
        {"after": "2026-13-22T10:00:00Z"},
        {"after": "2026-11-22T10:00:00Z" + "0" * 100},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "-1"},
        {"nextToken": "garbage"},
    ):
        result = query(alice, convo_id, **params)
        assert 400 <= result.status < 500, (params, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    assert query(alice, "not-a-uuid").status == 422
    assert query(alice, convo_id, limit="500").status == 200


def test_a_convo_moved_into_a_topic_carries_the_hint(aws, aws_calls):
    """PUT grantees writes the new owner grant with the topic's edges (`chain_hint`), so a member of
    the topic's team checks it in the convo's Query and one BatchGetItem from a cold process."""
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate())["id"]  # the owner's own convo
    made = add_steps(convo_id, 1)
    assert query(member, convo_id).status == 404
    moved = invoke(
        "auth.set_grantees",
        owner,
        query={"objectType": "convo", "objectId": convo_id},
        body=[{"id": topic.id, "type": "topic", "role": "owner"}],
    )
    assert moved.status == 200, moved.body
    access.forget_edges()
    aws_calls.reset()
    assert ids(query(member, convo_id)) == made
    assert aws_calls.calls == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
