"""Get a Convo: GET /convos/{convoId} → 200 convo, to whoever can view it directly or through the
topic and team that own it."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.store import steps
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def get(principal, convo_id: str):
    return invoke("convos.get_convo", principal, path={"convoId": convo_id})


def test_the_owner_reads_a_convo_with_its_latest_step(aws, aws_calls):
    alice = make_user()
    convo = convos.create_convo(Access(alice), ConvoCreate(name="Plans"))
    aws_calls.reset()
    result = get(alice, convo["id"])
    assert result.status == 200 and result.json == convo
    # The check (the convo's structural grants; alice's grant and the item in one BatchGetItem).
    assert dict(aws_calls.calls) == {"dynamodb:Query": 1, "dynamodb:BatchGetItem": 1}
    at = "2026-11-22T10:00:00.000Z"
    step = Step(
        id=str(uuid4()),
        convoId=convo["id"],
        authorType="llm",
        content={"text": "Hi"},
        createdAt=at,
        updatedAt=at,
    )
    steps.add(step.record())
    latest = get(alice, convo["id"]).json["latestStep"]
    assert latest["id"] == step.id and latest["content"] == {"text": "Hi"} and latest["status"] == "completed"


def test_inherited_access_team_topic_convo(aws, aws_calls):
    owner, member, topic_viewer, convo_viewer, outsider = (make_user() for _ in range(5))
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    grant(topic, topic_viewer, "viewer")
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    grant(Ref("convo", convo_id), convo_viewer, "viewer")
    for reader in (owner, member, topic_viewer, convo_viewer):
        assert get(reader, convo_id).status == 200
    aws_calls.reset()
    assert get(member, convo_id).status == 200
    # The convo's and the topic's structural grants; the member's grants on the whole chain and the
    # item in one BatchGetItem.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
    hidden = get(outsider, convo_id)
    assert hidden.status == 404 and hidden.json["code"] == "not_found"


def test_cross_tenant_unknown_and_malformed(aws):
    alice, mallory = make_user(), make_user()
    convo_id = convos.create_convo(Access(alice), ConvoCreate())["id"]
    assert get(mallory, convo_id).status == 404
    assert get(alice, str(uuid4())).status == 404
    bad = get(alice, "not-a-uuid")
    assert bad.status == 422 and {"code", "message"} <= set(bad.json)
