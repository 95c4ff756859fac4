"""Query Convo Users: GET /convos/{convoId}/users[?contributors=1 | all=1] → 200 [userId]."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.store import steps
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def write(convo_id: str, author: str, second: int) -> None:
    at = f"2026-11-22T10:00:{second:02d}.000Z"
    steps.add(
        Step(
            id=str(uuid4()), convoId=convo_id, authorType="user", authorId=author, createdAt=at, updatedAt=at
        ).record()
    )


def users(principal, convo_id: str, **params: str):
    return invoke("convos.query_convo_users", principal, path={"convoId": convo_id}, query=params)


def test_the_four_paths_of_all(aws, aws_calls):
    team_owner, team_member, topic_user, creator, participant, outsider = (make_user() for _ in range(6))
    team = make_object("team", ref_of(team_owner))
    grant(team, team_member, "member")
    topic = make_object("topic", team)
    grant(topic, topic_user, "participant")
    grant(topic, creator, "member")
    convo_id = convos.create_convo(Access(creator), ConvoCreate(), topic_id=topic.id)["id"]
    grant(Ref("convo", convo_id), participant, "participant")
    for second, author in enumerate((participant, creator, participant)):
        write(convo_id, author.user_id, second)

    aws_calls.reset()
    direct = users(participant, convo_id)
    assert direct.status == 200 and direct.json == sorted([creator.user_id, participant.user_id])
    assert aws_calls.total == 4  # the check (3), the convo's user grants

    aws_calls.reset()
    everyone = users(participant, convo_id, all="1")
    expected = (team_owner, team_member, topic_user, creator, participant)
    assert everyone.json == sorted({u.user_id for u in expected})
    # The convo's, the topic's and the team's user grants: the owners were read by the check.
    assert aws_calls["dynamodb:Query"] == 2 + 3 and aws_calls.total == 6
    assert outsider.user_id not in everyone.json

    aws_calls.reset()
    wrote = users(team_member, convo_id, contributors="yes")
    assert wrote.json == sorted([creator.user_id, participant.user_id]) and aws_calls.total == 4


def test_a_team_convo_and_a_users_convo(aws):
    owner, member, guest = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    in_team = convos.create_convo(Access(member), ConvoCreate(), team_id=team.id)["id"]
    assert users(member, in_team, all="1").json == sorted([owner.user_id, member.user_id])
    own = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", own), guest, "viewer")
    assert users(guest, own, all="1").json == sorted([owner.user_id, guest.user_id])
    assert users(guest, own, contributors="1").json == []
    # Empty flags are off (seed: "any non-empty value").
    assert users(guest, own, all="", contributors="").json == sorted([owner.user_id, guest.user_id])


def test_hidden_unknown_and_bad_input(aws):
    alice, mallory = make_user(), make_user()
    convo_id = convos.create_convo(Access(alice), ConvoCreate())["id"]
    assert users(mallory, convo_id).status == 404
    assert users(mallory, convo_id, all="1").status == 404
    assert users(alice, str(uuid4())).status == 404
    for path_id, params in (
        ("nope", {}),
        (convo_id, {"all": "1", "contributors": "1"}),
        (convo_id, {"all": "x" * 100}),
    ):
        result = users(alice, path_id, **params)
        assert 400 <= result.status < 500, (params, result.status)
        assert {"code", "message"} <= set(result.json), result.body
