"""The invitations service: reading and withdrawing an object's invitations, and their acceptance."""

from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import epoch_seconds, now, now_iso
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.users import Invitation
from kallo.services import invitations as service
from kallo.store import grants, invitations, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def invite(obj: Ref, email: str, role: str = "member", *, by: str | None = None, ttl: int = 3600) -> None:
    """An invitation as Add Grantee stores it; a negative `ttl` makes one that expired."""
    invitations.put(
        invitations.item(
            obj,
            email,
            role,
            created_by=by or str(uuid4()),
            created_at=now_iso(),
            ttl=epoch_seconds(now()) + ttl,
        )
    )


def emails(found: list[dict]) -> list[str]:
    return [i["inviteEmail"] for i in found]


def test_a_teams_current_invitations(aws):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    invite(team, "b@example.com", "admin", by=owner.user_id)
    invite(team, "a@example.com", by=owner.user_id)
    invite(team, "old@example.com", ttl=-1)
    invite(make_object("team", ref_of(owner)), "elsewhere@example.com")
    found = service.get_invitations(Access(owner), "team", team.id)
    assert emails(found) == ["a@example.com", "b@example.com"]
    first = Invitation.model_validate(found[0]).model_dump(by_alias=True)
    assert first == {
        "objectType": "team",
        "objectId": team.id,
        "inviteEmail": "a@example.com",
        "role": "member",
        "createdBy": owner.user_id,
        "createdAt": found[0]["createdAt"],
    }
    assert "ttl" not in found[0] and "PK" not in found[0]


def test_who_may_manage_invitations(aws):
    owner, admin, member, outsider = (make_user() for _ in range(4))
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    convo = make_object("convo", ref_of(owner))
    grant(convo, admin, "admin")
    grant(convo, member, "participant")
    for obj in (team, convo):
        invite(obj, "x@example.com")
        assert emails(service.get_invitations(Access(admin), obj.type, obj.id)) == ["x@example.com"]
        # Seeing the object without the permission to invite to it: 403; not seeing it: 404.
        with pytest.raises(Forbidden):
            service.get_invitations(Access(member), obj.type, obj.id)
        with pytest.raises(Forbidden):
            service.delete_invitation(Access(member), obj.type, obj.id, "x@example.com")
        with pytest.raises(NotFound):
            service.get_invitations(Access(outsider), obj.type, obj.id)
        with pytest.raises(NotFound):
            service.delete_invitation(Access(outsider), obj.type, obj.id, "x@example.com")
        assert invitations.get(obj, "x@example.com") is not None
    with pytest.raises(NotFound):
        service.get_invitations(Access(owner), "team", str(uuid4()))
    with pytest.raises(BadRequest) as refused:
        service.get_invitations(Access(owner), "topic", team.id)
    assert refused.value.code == "not_invitable"


def test_a_team_member_of_the_convos_team_may_not_see_its_invitations(aws):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    convo = make_object("convo", team)
    invite(convo, "x@example.com")
    assert emails(service.get_invitations(Access(owner), "convo", convo.id)) == ["x@example.com"]
    with pytest.raises(Forbidden):
        service.get_invitations(Access(member), "convo", convo.id)


def test_withdrawing_an_invitation(aws):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    invite(team, "x@example.com")
    invite(team, "old@example.com", ttl=-1)
    service.delete_invitation(Access(owner), "team", team.id, "x@example.com")
    assert invitations.get(team, "x@example.com") is None
    for email in ("x@example.com", "old@example.com", "never@example.com"):
        with pytest.raises(NotFound):
            service.delete_invitation(Access(owner), "team", team.id, email)


def test_acceptance_turns_current_invitations_into_grants(aws):
    inviter = make_user()
    team, convo = make_object("team", ref_of(inviter)), make_object("convo", ref_of(inviter))
    invite(team, "pat@example.com", "viewer", by=inviter.user_id)
    invite(convo, "pat@example.com", "admin", by=inviter.user_id)
    invite(make_object("team", ref_of(inviter)), "pat@example.com", ttl=-5)
    pat = make_user()
    assert service.accept_invitations(pat.user_id, "pat@example.com") == 2
    assert grants.get(team, ref_of(pat))["role"] == "viewer"
    assert grants.get(convo, ref_of(pat))["role"] == "admin"
    assert service.accept_invitations(pat.user_id, "pat@example.com") == 0


def test_acceptance_without_invitations_writes_nothing(aws, aws_calls):
    pat = make_user()
    aws_calls.reset()
    assert service.accept_invitations(pat.user_id, "nobody@example.com") == 0
    assert aws_calls.total == 1 and aws_calls["dynamodb:Query"] == 1


# -- Get My Invitations / Accept Invitation (I2) ---------------------------------------------------------


def test_the_invitee_lists_and_accepts_its_invitations(aws):
    """Another tenant invited the address B's OIDC user verified: the user sees it and accepts it; the
    grant is the inviter's and the invitation is used up."""
    tenant, _ = make_service_account("a")
    team, convo = make_object("team", ref_of(tenant)), make_object("convo", ref_of(tenant))
    invite(team, "pat@b.example", "viewer", by=tenant.user_id)
    invite(convo, "pat@b.example", "participant", by=tenant.user_id)
    invite(make_object("team", ref_of(tenant)), "pat@b.example", ttl=-5)
    invite(team, "someone@b.example", by=tenant.user_id)
    pat = make_user(email="pat@b.example")
    mine = service.my_invitations(Access(pat))
    assert sorted((i["objectType"], i["objectId"]) for i in mine) == [("convo", convo.id), ("team", team.id)]
    assert {i["inviteEmail"] for i in mine} == {"pat@b.example"} and "ttl" not in mine[0]
    accepted = service.accept_invitation(Access(pat), "team", team.id)
    assert accepted == {"id": pat.user_id, "type": "user", "role": "viewer"}
    assert grants.get(team, ref_of(pat))["createdBy"] == tenant.user_id
    assert invitations.get(team, "pat@b.example") is None
    assert [i["objectType"] for i in service.my_invitations(Access(pat))] == ["convo"]
    with pytest.raises(NotFound):  # used up
        service.accept_invitation(Access(pat), "team", team.id)


def test_an_accepted_invitation_keeps_a_role_already_held(aws):
    pat = make_user(email="pat@example.com")
    convo = make_object("convo", ref_of(pat))
    invite(convo, "pat@example.com", "viewer")
    assert service.accept_invitation(Access(pat), "convo", convo.id)["role"] == "owner"
    assert grants.get(convo, ref_of(pat))["role"] == "owner"
    assert invitations.get(convo, "pat@example.com") is None


def test_only_the_verified_owner_of_the_address_accepts(aws):
    """I2/I3: a user a service account made with the address (unverified, tenant-local), another user,
    the service account itself, a narrow token of the invitee: 404 as if there were no invitation, and
    they see none."""
    tenant, _ = make_service_account("a")
    team = make_object("team", ref_of(tenant))
    invite(team, "pat@b.example", by=tenant.user_id)
    pat = make_user(email="pat@b.example")
    local = make_user(email="pat@b.example", admin=tenant)
    narrow = Principal(user_id=pat.user_id, scheme="access_token", scope=(team,))
    whole = Principal(user_id=pat.user_id, scheme="access_token", scope=(ref_of(pat),))
    for caller in (local, make_user(email="other@b.example"), tenant, narrow):
        assert service.my_invitations(Access(caller)) == []
        with pytest.raises(NotFound) as refused:
            service.accept_invitation(Access(caller), "team", team.id)
        assert refused.value.message == f"no invitation to team {team.id}"
    assert grants.get(team, ref_of(local)) is None and grants.get(team, ref_of(pat)) is None
    assert invitations.get(team, "pat@b.example") is not None
    # A token with the whole-user scope acts as the user.
    assert service.accept_invitation(Access(whole), "team", team.id)["role"] == "member"


def test_accepting_for_a_deleted_object_writes_nothing(aws):
    pat = make_user(email="pat@example.com")
    owner = make_user()
    team = make_object("team", ref_of(owner))
    invite(team, "pat@example.com")
    table().delete(keys.object_key(team))
    with pytest.raises(NotFound):
        service.accept_invitation(Access(pat), "team", team.id)
    assert grants.get(team, ref_of(pat)) is None
    assert invitations.get(team, "pat@example.com") is not None
