"""Get Topic Config: GET /convos/{convoId}/topic-config → 200 {defaults} from the owning topic."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of

DEFAULTS = {"model": "openai:gpt-4o-mini", "temperature": 0.3, "maxTokens": 800, "reply": True}


def config(principal, convo_id: str):
    return invoke("convos.get_topic_config", principal, path={"convoId": convo_id})


def test_a_topic_convo_gets_the_topic_defaults(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team, description="", config={"defaults": DEFAULTS}, dataSourceIds=[])
    convo_id = convos.create_convo(Access(member), ConvoCreate(), topic_id=topic.id)["id"]
    aws_calls.reset()
    result = config(member, convo_id)
    assert result.status == 200 and result.json == {"defaults": DEFAULTS}
    # The check (the convo's and topic's structural grants, one BatchGetItem), the topic item.
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls.total == 4


def test_other_convos_get_empty_defaults(aws, aws_calls):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    for where in ({}, {"team_id": team.id}):
        convo_id = convos.create_convo(Access(alice), ConvoCreate(), **where)["id"]
        aws_calls.reset()
        result = config(alice, convo_id)
        assert result.status == 200 and result.json == {"defaults": {}}
        assert aws_calls["dynamodb:GetItem"] == 0


def test_hidden_unknown_and_malformed(aws):
    alice, mallory = make_user(), make_user()
    topic = make_object("topic", ref_of(alice), config={"defaults": DEFAULTS})
    convo_id = convos.create_convo(Access(alice), ConvoCreate(), topic_id=topic.id)["id"]
    assert config(mallory, convo_id).status == 404
    assert config(alice, str(uuid4())).status == 404
    assert config(alice, "x").status == 422
