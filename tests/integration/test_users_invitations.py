"""Get Invitations (GET /invitations) and Delete Invitation (DELETE /invitations)."""

from uuid import uuid4

from kallo.store import invitations
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of
from tests.unit.test_invitations import invite

GET, DELETE = "users.get_invitations", "users.delete_invitation"


def test_a_teams_owner_reads_and_withdraws_its_invitations(aws, aws_calls):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    invite(team, "b@example.com", "admin", by=owner.user_id)
    invite(team, "a@example.com", by=owner.user_id)
    invite(team, "expired@example.com", ttl=-1)
    query = {"objectType": "team", "objectId": team.id}
    aws_calls.reset()
    result = invoke(GET, owner, query=query)
    assert result.status == 200, result.body
    assert [(i["inviteEmail"], i["role"]) for i in result.json] == [
        ("a@example.com", "member"),
        ("b@example.com", "admin"),
    ]
    assert set(result.json[0]) == {"objectType", "objectId", "inviteEmail", "role", "createdBy", "createdAt"}
    # The permission check on a team (1 BatchGetItem), its invitations (1 Query).
    assert aws_calls.total == 2 and aws_calls["dynamodb:Query"] == 1
    aws_calls.reset()
    deleted = invoke(DELETE, owner, query={**query, "inviteEmail": "A@Example.com"})
    assert deleted.status == 204 and deleted.body == ""
    # The check, the invitation (GetItem), its deletion.
    assert aws_calls.total == 3 and aws_calls["dynamodb:DeleteItem"] == 1
    assert invitations.get(team, "a@example.com") is None
    assert [i["inviteEmail"] for i in invoke(GET, owner, query=query).json] == ["b@example.com"]
    for email in ("a@example.com", "expired@example.com", "never@example.com"):
        result = invoke(DELETE, owner, query={**query, "inviteEmail": email})
        assert result.status == 404 and result.json["code"] == "not_found"


def test_a_convos_invitations(aws, aws_calls):
    owner, participant = make_user(), make_user()
    convo = make_object("convo", ref_of(owner))
    grant(convo, participant, "participant")
    invite(convo, "x@example.com", "viewer", by=owner.user_id)
    query = {"objectType": "convo", "objectId": convo.id}
    aws_calls.reset()
    result = invoke(GET, owner, query=query)
    assert result.status == 200 and [i["inviteEmail"] for i in result.json] == ["x@example.com"]
    # The convo's structural grants (Query) and the caller's grant (BatchGetItem), its invitations.
    assert aws_calls.total == 3
    forbidden = invoke(GET, participant, query=query)
    assert forbidden.status == 403 and forbidden.json["code"] == "permission_denied"
    assert invoke(DELETE, participant, query={**query, "inviteEmail": "x@example.com"}).status == 403
    assert invoke(DELETE, owner, query={**query, "inviteEmail": "x@example.com"}).status == 204


def test_other_tenants_objects_are_not_found(aws):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    invite(team, "x@example.com")
    query = {"objectType": "team", "objectId": team.id}
    assert invoke(GET, outsider, query=query).status == 404
    assert invoke(DELETE, outsider, query={**query, "inviteEmail": "x@example.com"}).status == 404
    assert invoke(GET, member, query=query).status == 403
    # The type is part of the object's identity: the team's id as a convo is unknown.
    assert invoke(GET, owner, query={"objectType": "convo", "objectId": team.id}).status == 404
    assert invoke(GET, owner, query={"objectType": "team", "objectId": str(uuid4())}).status == 404
    assert invitations.get(team, "x@example.com") is not None


def test_bad_input(aws):
    caller, some_id = make_user(), str(uuid4())
    for query in (
        {},
        {"objectType": "team"},
        {"objectId": some_id},
        {"objectType": "topic", "objectId": some_id},
        {"objectType": "TEAM", "objectId": some_id},
        {"objectType": "team", "objectId": "nope"},
        {"objectType": "team", "objectId": "x" * 5000},
    ):
        result = invoke(GET, caller, query=query)
        assert result.status == 422, (query, result.body)
        assert {"code", "message"} <= set(result.json)
    team = {"objectType": "team", "objectId": some_id}
    for query in (
        team,
        {**team, "inviteEmail": "nope"},
        {**team, "inviteEmail": "a" * 3000},
        {**team, "objectType": "user", "inviteEmail": "a@b.test"},
        {"inviteEmail": "a@b.test"},
    ):
        result = invoke(DELETE, caller, query=query)
        assert result.status == 422, (query, result.body)
        assert {"code", "message"} <= set(result.json)
