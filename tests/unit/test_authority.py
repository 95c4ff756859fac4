"""I1 (authority): a service account acts for the users it created itself, and for nobody else; each
attack is written from the side of the tenant that tries to act for someone else's user."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.errors import NotFound
from kallo.models.auth import AccessTokenCreate
from kallo.models.common import Grantee
from kallo.models.users import UserUpdate
from kallo.services import access_tokens, authority, convos, grantees, teams
from kallo.services import users as user_service
from kallo.store import grants, invitations, objects, users
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.oidc import ISSUER
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of
from tests.unit.test_invitations import invite


def _token_request(user_id: str) -> AccessTokenCreate:
    return AccessTokenCreate.model_validate(
        {
            "userId": user_id,
            "scopeObjects": [{"type": "user", "id": user_id}],
            "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
    )


def assert_no_authority(attacker: Principal, user_id: str) -> None:
    """Every way of acting for the user is refused as if it did not exist."""
    access = Access(attacker)
    assert authority.has_authority(access, user_id) is False
    with pytest.raises(NotFound):
        authority.acting_for(access, user_id)
    with pytest.raises(NotFound):
        access_tokens.create_access_token(access, _token_request(user_id))
    with pytest.raises(NotFound):
        convos.query_convos(access, user_id=user_id)
    with pytest.raises(NotFound):
        teams.query_teams(access, user_id)
    with pytest.raises(NotFound):
        user_service.get_or_create_user(access, user_id=user_id)
    with pytest.raises(NotFound):
        user_service.update_user(access, user_id, UserUpdate(displayName="Mallory"))
    with pytest.raises(NotFound):
        user_service.user_stats(access, user_id)


def test_a_service_account_acts_for_the_users_it_created(aws, aws_calls):
    service, _ = make_service_account()
    created, _ = user_service.get_or_create_user(Access(service), email="pat@corp.example")
    assert users.get(created["id"])["createdBy"] == service.user_id
    aws_calls.reset()
    assert authority.has_authority(Access(service), created["id"]) is True
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}  # the user item
    aws_calls.reset()
    assert authority.has_authority(Access(service), service.user_id) is True
    assert aws_calls.total == 0  # oneself is free
    acting = authority.acting_for(Access(service), created["id"])
    assert acting.principal.user_id == created["id"]
    other, _ = make_service_account("other")
    assert_no_authority(other, created["id"])


def test_an_early_invitation_gives_no_authority(aws):
    """Finding 1: A invites victim@corp-b before the user exists; B creates that user by email. A can
    neither list its convos nor mint a token for it, and the user is not in A's team."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    team_a = make_object("team", ref_of(tenant_a))
    invite(team_a, "victim@corp-b.example", by=tenant_a.user_id)
    victim, created = user_service.get_or_create_user(Access(tenant_b), email="victim@corp-b.example")
    assert created
    assert grants.get(team_a, Ref("user", victim["id"])) is None
    assert invitations.get(team_a, "victim@corp-b.example") is not None  # still the real person's
    assert_no_authority(tenant_a, victim["id"])
    assert authority.has_authority(Access(tenant_b), victim["id"]) is True


def test_an_accepted_invitation_gives_no_authority(aws):
    """The invited person registers and joins A's team: A still does not act for them."""
    tenant_a, _ = make_service_account("a")
    team_a = make_object("team", ref_of(tenant_a))
    invite(team_a, "new@example.com", by=tenant_a.user_id)
    identity = Principal(
        user_id=None,
        scheme="oidc",
        firebase_id="fb-new",
        issuer=ISSUER,
        email="new@example.com",
        email_verified=True,
    )
    newcomer, _ = user_service.get_or_create_user(Access(identity), firebase_id="fb-new")
    membership = grants.get(team_a, Ref("user", newcomer["id"]))
    assert membership["role"] == "member" and membership["createdBy"] == tenant_a.user_id
    assert_no_authority(tenant_a, newcomer["id"])


def test_memberships_give_no_authority(aws):
    service, _ = make_service_account()
    member = make_user()
    team = make_object("team", ref_of(service))
    table().put(grants.item(team, ref_of(member), "member", created_by=member.user_id, created_at=now_iso()))
    assert_no_authority(service, member.user_id)


def test_an_admin_grant_on_a_user_object_gives_no_authority(aws):
    """An admin grant on a user object for a service account (Add Grantee no longer names another
    tenant's account, I1/I4, but such a grant may exist) is a permission on the object, not authority
    over the user."""
    service, _ = make_service_account()
    pat = make_user()
    with pytest.raises(NotFound):
        grantees.add_grantee(Access(pat), ref_of(pat), Grantee(type="user", id=service.user_id, role="admin"))
    grant(ref_of(pat), service, "admin")
    assert_no_authority(service, pat.user_id)


# -- I1/I4: which users a caller may name as grantees ---------------------------------------------------


def _reaches(access: Access, user_id: str) -> bool:
    """`authority.reaches` on the items it needs, read as the services read them."""
    me = access.principal.user_id or ""
    found = objects.batch_get([Ref("user", user_id), *authority.caller_keys(access)])
    return authority.reaches(access, found.get(Ref("user", user_id)), found.get(Ref("user", me)))


def test_reachable_users_are_oneself_and_ones_tenant(aws):
    tenant, _ = make_service_account("a")
    other, _ = make_service_account("b")
    alice, bob = make_user(admin=tenant), make_user(admin=tenant)
    pat = make_user(email="pat@example.com")
    stranger = make_user(admin=other)
    reached = [
        # A service account: itself and the users it created.
        (Access(tenant), tenant.user_id),
        (Access(tenant), alice.user_id),
        # Its users: themselves, each other and their service account.
        (Access(alice), alice.user_id),
        (Access(alice), bob.user_id),
        (Access(alice), tenant.user_id),
        # A service account acting for its user reaches that user's tenant.
        (authority.acting_for(Access(tenant), alice.user_id), bob.user_id),
        # A self-registered user is its own tenant.
        (Access(pat), pat.user_id),
    ]
    for access, user_id in reached:
        assert _reaches(access, user_id), (access.principal, user_id)
    # No one needs to read anything more of a service account acting as itself.
    assert authority.caller_keys(Access(tenant)) == []
    refused = [
        (tenant, stranger.user_id),
        (tenant, other.user_id),
        (tenant, pat.user_id),
        (alice, stranger.user_id),
        (alice, pat.user_id),
        (alice, str(uuid4())),
        (pat, alice.user_id),
        (pat, tenant.user_id),
    ]
    for caller, user_id in refused:
        assert not _reaches(Access(caller), user_id), (caller, user_id)
    assert str(authority.not_found("x")) == "user x not found"
