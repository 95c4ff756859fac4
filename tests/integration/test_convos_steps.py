"""Query Convo Steps: GET /convos/{convoId}/steps[?after=<date-time>] → 200 [step], oldest first, paged."""

from uuid import uuid4

import pytest

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.store import steps
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
        assert len(result.json) <= 4 and aws_calls.total == 3 + secret and secret == (not seen)
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


def test_inherited_access(aws):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    made = add_steps(convo_id, 2)
    assert ids(query(member, convo_id)) == made
    assert query(outsider, convo_id).status == 404


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
