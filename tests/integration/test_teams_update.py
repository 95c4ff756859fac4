"""Update a Team: PATCH /teams/{teamId} {name} — admins and the owner, in two AWS calls."""

from kallo.store import objects
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def test_admin_renames_the_team(aws, aws_calls):
    owner, admin = make_user(), make_user()
    team = make_object("team", ref_of(owner), name="Old")
    grant(team, admin, "admin")
    aws_calls.reset()
    result = invoke("teams.update_team", admin, path={"teamId": team.id}, body={"name": "  New name "})
    assert result.status == 200, result.body
    assert result.json["name"] == "New name" and result.json["id"] == team.id
    assert result.json["createdBy"] == owner.user_id
    assert set(result.json) == {"id", "name", "createdBy", "createdAt"}
    # The check (1 BatchGetItem: teams inherit nothing) and 1 UpdateItem.
    assert aws_calls.total == 2 and aws_calls["dynamodb:UpdateItem"] == 1
    assert objects.get(team)["name"] == "New name"


def test_members_may_not_rename(aws):
    owner, member, viewer = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner), name="Old")
    grant(team, member, "member")
    grant(team, viewer, "viewer")
    for caller in (member, viewer):
        result = invoke("teams.update_team", caller, path={"teamId": team.id}, body={"name": "X"})
        assert result.status == 403 and result.json["code"] == "permission_denied"
    assert objects.get(team)["name"] == "Old"
