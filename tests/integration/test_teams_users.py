"""A team's users: Get a Team's Users, Add a Team User and Remove a Team User."""

from uuid import uuid4

from kallo.store import grants
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def path(team, user=None) -> dict[str, str]:
    return {"teamId": team.id} | ({"userId": user.user_id} if user else {})


# -- Get a Team's Users -------------------------------------------------------------------------------


def test_get_team_users(aws, aws_calls):
    owner, viewer = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, viewer, "viewer")
    members = [make_user() for _ in range(3)]
    for member in members:
        grant(team, member, "member")
    aws_calls.reset()
    result = invoke("teams.get_team_users", viewer, path=path(team), query={})
    assert result.status == 200, result.body
    assert [u["userId"] for u in result.json] == sorted(u.user_id for u in [owner, viewer, *members])
    owner_entry = next(u for u in result.json if u["userId"] == owner.user_id)
    assert owner_entry["isOwner"] is True and owner_entry["teamId"] == team.id
    assert set(owner_entry) == {"teamId", "userId", "isOwner", "createdAt"}
    assert sum(u["isOwner"] for u in result.json) == 1
    assert aws_calls.total == 2 and aws_calls["dynamodb:Query"] == 1


def test_get_team_users_pages(aws):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    for _ in range(4):
        grant(team, make_user(), "member")
    first = invoke("teams.get_team_users", owner, path=path(team), query={"limit": "3"})
    token = first.headers["x-next-token"]
    rest = invoke("teams.get_team_users", owner, path=path(team), query={"limit": "3", "nextToken": token})
    assert len(first.json) == 3 and len(rest.json) == 2 and "x-next-token" not in rest.headers
    other = make_object("team", ref_of(owner))
    foreign = invoke("teams.get_team_users", owner, path=path(other), query={"nextToken": token})
    assert foreign.status == 400 and foreign.json["code"] == "invalid_next_token"


# -- Add a Team User ----------------------------------------------------------------------------------


def test_add_team_user(aws, aws_calls):
    tenant, _ = make_service_account()
    owner, newcomer = make_user(admin=tenant), make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    aws_calls.reset()
    result = invoke("teams.add_team_user", owner, path=path(team, newcomer))
    assert result.status == 200, result.body
    assert result.json["teamId"] == team.id and result.json["userId"] == newcomer.user_id
    assert result.json["isOwner"] is False
    # The check, the user, its current grant and the caller's user (1 BatchGetItem), the new grant.
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls.total == 3
    aws_calls.reset()
    again = invoke("teams.add_team_user", owner, path=path(team, newcomer))
    assert again.status == 200 and again.json == result.json
    assert aws_calls.total == 2  # nothing written
    # The newcomer now sees the team.
    assert [t["id"] for t in invoke("teams.query_teams", newcomer, query={}).json] == [team.id]


def test_add_team_user_keeps_a_held_role(aws):
    owner, admin = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    assert invoke("teams.add_team_user", owner, path=path(team, admin)).json["isOwner"] is False
    assert grants.get(team, ref_of(admin))["role"] == "admin"
    assert invoke("teams.add_team_user", admin, path=path(team, owner)).json["isOwner"] is True


def test_another_tenants_user_answers_like_an_unknown_id(aws):
    """I1/I4, from tenant A's side: adding B's user (or a self-registered user) to A's team is the 404
    a random id gets, same code and message shape, and writes nothing; A's own user is added."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    team = make_object("team", ref_of(tenant_a))
    a_admin = make_user(admin=tenant_a)
    grant(team, a_admin, "admin")
    unknown = str(uuid4())
    victims = (make_user(admin=tenant_b), make_user(email="b@b.example"), tenant_b)
    for caller in (tenant_a, a_admin):
        missing = invoke("teams.add_team_user", caller, path={"teamId": team.id, "userId": unknown})
        for victim in victims:
            result = invoke("teams.add_team_user", caller, path=path(team, victim))
            assert result.status == missing.status == 404
            assert result.json == {
                "code": missing.json["code"],
                "message": missing.json["message"].replace(unknown, victim.user_id or ""),
            }
            assert grants.get(team, ref_of(victim)) is None
    mate = make_user(admin=tenant_a)
    assert invoke("teams.add_team_user", a_admin, path=path(team, mate)).status == 200
    assert grants.get(team, ref_of(mate))["role"] == "member"


def test_add_team_user_refusals(aws):
    owner, member, someone = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    result = invoke("teams.add_team_user", member, path=path(team, someone))
    assert result.status == 403 and result.json["code"] == "permission_denied"
    unknown = invoke("teams.add_team_user", owner, path={"teamId": team.id, "userId": str(uuid4())})
    assert unknown.status == 404 and unknown.json["code"] == "not_found"
    assert grants.get(team, ref_of(someone)) is None


# -- Remove a Team User -------------------------------------------------------------------------------


def test_admin_removes_a_member(aws, aws_calls):
    owner, admin, member = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    aws_calls.reset()
    result = invoke("teams.remove_team_user", admin, path=path(team, member))
    assert result.status == 204 and result.body == ""
    # The check, the member's grant (GetItem), its deletion.
    assert (
        aws_calls.total == 3 and aws_calls["dynamodb:GetItem"] == 1 and aws_calls["dynamodb:DeleteItem"] == 1
    )
    assert grants.get(team, ref_of(member)) is None
    assert invoke("teams.remove_team_user", admin, path=path(team, member)).status == 404


def test_a_member_leaves(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    aws_calls.reset()
    assert invoke("teams.remove_team_user", member, path=path(team, member)).status == 204
    assert aws_calls.total == 2  # its own role was read by the check
    assert invoke("teams.get_team_users", member, path=path(team), query={}).status == 404


def test_remove_team_user_refusals(aws):
    owner, admin, member, other = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    grant(team, other, "member")
    for caller in (owner, admin):
        result = invoke("teams.remove_team_user", caller, path=path(team, owner))
        assert result.status == 409 and result.json["code"] == "owner_cannot_be_removed"
        assert "PUT /auth/grantees" in result.json["message"]
    result = invoke("teams.remove_team_user", member, path=path(team, other))
    assert result.status == 403 and result.json["code"] == "permission_denied"
    result = invoke("teams.remove_team_user", owner, path={"teamId": team.id, "userId": str(uuid4())})
    assert result.status == 404
    assert {g["granteeId"] for g in grants.all_of_object(team)} == {
        u.user_id for u in (owner, admin, member, other)
    }
