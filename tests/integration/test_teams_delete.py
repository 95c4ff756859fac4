"""Delete a Team: DELETE /teams/{teamId} — the owner, only once the team owns nothing; members,
invitations and the team's grants go with it."""

from kallo.clock import now_iso
from kallo.store import grants, invitations, keys, objects
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def test_owner_deletes_an_empty_team(aws, aws_calls):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    aws_calls.reset()
    result = invoke("teams.delete_team", owner, path={"teamId": team.id})
    assert result.status == 204 and result.body == ""
    # The check, the grants naming the team (Query), its partition (Query), one transaction.
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:Query"] == 2
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert table().query_all(keys.object_pk(team)) == []
    again = invoke("teams.delete_team", owner, path={"teamId": team.id})
    assert again.status == 404


def test_members_invitations_and_grants_go_too(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    for _ in range(30):
        grant(team, make_user(), "member")
    grant(team, member, "admin")
    invitations.put(
        invitations.item(
            team, "x@example.com", "member", created_by=owner.user_id, created_at=now_iso(), ttl=2**31
        )
    )
    topic = make_object("topic", ref_of(member))
    grant(topic, team, "participant")
    aws_calls.reset()
    assert invoke("teams.delete_team", owner, path={"teamId": team.id}).status == 204
    # 31 grants, 1 invitation and 1 grant on the topic: 2 BatchWriteItem of at most 25.
    assert aws_calls["dynamodb:BatchWriteItem"] == 2 and aws_calls.total == 6
    assert table().query_all(keys.object_pk(team)) == [] and grants.all_of_grantee(team) == []
    assert invoke("teams.query_teams", member, query={}).json == []
    assert objects.get(topic) is not None


def test_a_team_that_owns_objects_is_not_deleted(aws, aws_calls):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    for kind in ("topic", "topic", "prompt"):
        make_object(kind, team)
    aws_calls.reset()
    result = invoke("teams.delete_team", owner, path={"teamId": team.id})
    assert result.status == 409 and result.json["code"] == "team_not_empty"
    assert "2 topics" in result.json["message"] and "1 prompt" in result.json["message"]
    assert result.json["details"] == [
        {"objectType": "prompt", "count": 1},
        {"objectType": "topic", "count": 2},
    ]
    assert aws_calls.total == 2 and aws_calls["dynamodb:Query"] == 1
    assert objects.get(team) is not None


def test_only_the_owner_deletes(aws):
    owner, admin = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    result = invoke("teams.delete_team", admin, path={"teamId": team.id})
    assert result.status == 403 and result.json["code"] == "permission_denied"
    assert objects.get(team) is not None
