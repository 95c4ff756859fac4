"""Get Invitations (GET /invitations), Delete Invitation (DELETE /invitations), Get My Invitations
(GET /invitations/mine) and Accept Invitation (POST /invitations/accept)."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.store import grants, invitations
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of
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


# -- Get My Invitations / Accept Invitation ---------------------------------------------------------------

MINE, ACCEPT = "users.get_my_invitations", "users.accept_invitation"


def test_an_invitation_across_tenants_is_accepted_by_the_verified_invitee(aws, aws_calls):
    """Tenant A invites the address B's OIDC user verified: a pending invitation (no grant), which that
    user lists and accepts; then it takes part in A's convo."""
    tenant_a, _ = make_service_account("a")
    convo = make_object("convo", ref_of(tenant_a))
    pat = make_user(email="pat@b.example")
    sent = invoke(
        "auth.add_grantee",
        tenant_a,
        query={"objectType": "convo", "objectId": convo.id, "inviteEmail": "Pat@B.example"},
        body={"type": "user", "role": "participant"},
    )
    assert sent.status == 201 and sent.json["inviteEmail"] == "pat@b.example"
    assert grants.get(convo, ref_of(pat)) is None
    assert invoke("convos.get_convo", pat, path={"convoId": convo.id}).status == 404
    aws_calls.reset()
    mine = invoke(MINE, pat)
    assert mine.status == 200, mine.body
    assert [(i["objectType"], i["objectId"], i["role"]) for i in mine.json] == [
        ("convo", convo.id, "participant")
    ]
    # The caller's user (1 GetItem), the invitations to its address (1 Query).
    assert aws_calls.total == 2 and aws_calls["dynamodb:Query"] == 1
    aws_calls.reset()
    accepted = invoke(ACCEPT, pat, query={"objectType": "convo", "objectId": convo.id})
    assert accepted.status == 200, accepted.body
    assert accepted.json == {"id": pat.user_id, "type": "user", "role": "participant"}
    # The caller's user, the invitation with the current grant (1 BatchGetItem), the write.
    assert aws_calls.total == 3 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert grants.get(convo, ref_of(pat))["createdBy"] == tenant_a.user_id
    assert invoke("convos.get_convo", pat, path={"convoId": convo.id}).status == 200
    assert invoke(MINE, pat).json == []
    again = invoke(ACCEPT, pat, query={"objectType": "convo", "objectId": convo.id})
    assert again.status == 404 and again.json["code"] == "not_found"


def test_no_one_else_accepts_or_sees_an_invitation(aws):
    """I2/I3: a tenant-local user with the address (unverified, made by a service account), another
    verified user, the inviting service account and a narrow token of the invitee get the 404 of an
    object without invitation, see none, and write nothing."""
    tenant_a, _ = make_service_account("a")
    team = make_object("team", ref_of(tenant_a))
    pat = make_user(email="pat@b.example")
    invite(team, "pat@b.example", by=tenant_a.user_id)
    local = invoke("users.get_or_create_user", tenant_a, query={"email": "pat@b.example"})
    assert local.status == 201 and "emailVerified" not in local.json
    local_user = Principal(user_id=local.json["id"], scheme="oidc")
    narrow = Principal(user_id=pat.user_id, scheme="access_token", scope=(team,))
    query = {"objectType": "team", "objectId": team.id}
    none = invoke(ACCEPT, pat, query={"objectType": "team", "objectId": str(uuid4())})
    assert none.status == 404
    for caller in (local_user, make_user(email="other@b.example"), tenant_a, narrow):
        assert invoke(MINE, caller).json == []
        refused = invoke(ACCEPT, caller, query=query)
        assert refused.status == 404
        assert refused.json == {
            "code": none.json["code"],
            "message": none.json["message"].replace(none.json["message"].split()[-1], team.id),
        }
    assert grants.get(team, Ref("user", local.json["id"])) is None and grants.get(team, ref_of(pat)) is None
    assert invitations.get(team, "pat@b.example") is not None
    whole = Principal(user_id=pat.user_id, scheme="access_token", scope=(ref_of(pat),))
    assert invoke(ACCEPT, whole, query=query).status == 200


def test_accept_invitation_bad_input(aws):
    pat = make_user(email="pat@b.example")
    for query in (
        {},
        {"objectType": "topic", "objectId": str(uuid4())},
        {"objectType": "team", "objectId": "nope"},
        {"objectType": "team"},
    ):
        result = invoke(ACCEPT, pat, query=query)
        assert 400 <= result.status < 500 and {"code", "message"} <= set(result.json), result.body
