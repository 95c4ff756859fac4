"""The users service and models: registration on the fly, creation by service accounts, visibility,
profile updates, related users and dashboard stats."""

from dataclasses import replace
from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.common import Grantee
from kallo.models.users import FirebaseId, User, UserUpdate
from kallo.services import authority
from kallo.services import grantees as grantee_service
from kallo.services import users as service
from kallo.store import grants, invitations, users
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.oidc import ISSUER
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of
from tests.unit.test_invitations import invite


def identity(sub: str, email: str | None = None, *, verified: bool = True, issuer: str = ISSUER) -> Principal:
    """An OpenID Connect identity that has no user yet."""
    return Principal(
        user_id=None, scheme="oidc", firebase_id=sub, issuer=issuer, email=email, email_verified=verified
    )


def token_of(principal: Principal, *scope: Ref) -> Access:
    """An access token of the user, with these scope objects."""
    return Access(replace(principal, scheme="access_token", scope=scope, firebase_id=None, issuer=None))


# -- models -----------------------------------------------------------------------------------------


def test_user_update_needs_a_valid_change():
    assert UserUpdate.model_validate({"displayName": " Pat "}).changes() == {"displayName": "Pat"}
    assert UserUpdate.model_validate({"photoUrl": "https://x.test/p.png"}).changes() == {
        "photoUrl": "https://x.test/p.png"
    }
    for bad in (
        {},
        {"displayName": None},
        {"displayName": ""},
        {"displayName": "x" * 257},
        {"photoUrl": "javascript:alert(1)"},
        {"photoUrl": "ftp://x.test/p.png"},
        {"photoUrl": "https://" + "x" * 2048},
        {"displayName": "Pat", "isServiceAccount": True},
        {"emailAddress": "a@b.test"},
    ):
        with pytest.raises(ValidationError):
            UserUpdate.model_validate(bad)


def test_user_leaves_out_what_it_does_not_have():
    user = {"id": "u", "isServiceAccount": False, "createdAt": "t", "PK": "x", "emailAddress": None}
    assert User.model_validate(user).model_dump(by_alias=True) == {
        "id": "u",
        "isServiceAccount": False,
        "createdAt": "t",
    }
    schema = User.model_json_schema(by_alias=True)
    assert set(schema["required"]) == {"id", "isServiceAccount", "createdAt"}


def test_firebase_ids_are_printable_ascii():
    adapter = TypeAdapter(FirebaseId)
    assert adapter.validate_python("Xy-12_|:.") == "Xy-12_|:."
    for bad in ("", "a b", "é", "x" * 256, "a\n"):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


# -- Get/Create a User ------------------------------------------------------------------------------


def test_an_identity_registers_with_its_verified_email(aws):
    me = identity("fb-pat", "Pat@Example.com")
    user, created = service.get_or_create_user(Access(me), firebase_id="fb-pat")
    assert created and user["firebaseId"] == "fb-pat" and user["emailAddress"] == "pat@example.com"
    assert user["isServiceAccount"] is False and user["issuer"] == ISSUER and user["emailVerified"] is True
    assert "createdBy" not in user
    assert users.find_by_email("pat@example.com")["id"] == user["id"]
    assert users.find_by_identity(ISSUER, "fb-pat")["id"] == user["id"]
    # The same identity again (e.g. an authorizer's cached principal from before): the same user.
    assert service.get_or_create_user(Access(me), firebase_id="fb-pat") == (user, False)
    registered = replace(me, user_id=user["id"])
    assert service.get_or_create_user(Access(registered), firebase_id="fb-pat") == (user, False)
    assert service.get_or_create_user(Access(registered), user_id=user["id"]) == (user, False)
    assert service.get_or_create_user(Access(registered), email="pat@example.com") == (user, False)


def test_unverified_or_broken_emails_are_not_kept(aws):
    for sub, email, verified in (
        ("fb-1", None, True),
        ("fb-2", "p@example.com", False),
        ("fb-3", "no", True),
    ):
        me = identity(sub, email, verified=verified)
        user, created = service.get_or_create_user(Access(me), firebase_id=sub)
        assert created and "emailAddress" not in user and "emailVerified" not in user
    assert users.find_by_email("p@example.com") is None


def test_an_identity_may_only_register_itself(aws):
    me = identity("fb-me")
    with pytest.raises(Forbidden) as refused:
        service.get_or_create_user(Access(me), firebase_id="fb-someone-else")
    assert refused.value.code == "user_not_registered"
    other = make_user(firebase_id="fb-other", email="other@example.com")
    for query in ({"firebase_id": "fb-other"}, {"user_id": other.user_id}, {"email": "other@example.com"}):
        with pytest.raises(Forbidden):
            service.get_or_create_user(Access(me), **query)
    # A registered user asking for another Firebase id finds and creates nothing.
    for firebase_id in ("fb-nobody", "fb-other"):
        with pytest.raises(NotFound):
            service.get_or_create_user(
                Access(make_user(firebase_id="fb-x" + firebase_id)), firebase_id=firebase_id
            )
    assert users.find_by_identity(ISSUER, "fb-nobody") is None


def test_the_same_sub_from_two_issuers_is_two_users(aws):
    """Finding 7 (I2): an identity is (issuer, sub), never `sub` alone."""
    first, _ = service.get_or_create_user(Access(identity("shared-sub")), firebase_id="shared-sub")
    other_issuer = "https://other-issuer.test.kallo"
    second, created = service.get_or_create_user(
        Access(identity("shared-sub", "x@other.example", issuer=other_issuer)), firebase_id="shared-sub"
    )
    assert created and second["id"] != first["id"] and second["issuer"] == other_issuer
    assert users.find_by_identity(ISSUER, "shared-sub")["id"] == first["id"]
    assert users.find_by_identity(other_issuer, "shared-sub")["id"] == second["id"]
    # Each is only itself: the first identity reaches nothing of the second.
    me = replace(identity("shared-sub"), user_id=first["id"])
    with pytest.raises(NotFound):
        service.get_or_create_user(Access(me), user_id=second["id"])


def test_a_service_account_cannot_claim_a_firebase_id(aws):
    """Finding 7 (I2): neither pre-claiming an identity nor probing whether one exists."""
    account, _ = make_service_account()
    make_user(firebase_id="fb-taken")
    make_user(firebase_id="fb-own", admin=account)  # even one it created is not found that way
    for firebase_id in ("fb-free", "fb-taken", "fb-own"):
        with pytest.raises(Forbidden) as refused:
            service.get_or_create_user(Access(account), firebase_id=firebase_id)
        assert refused.value.code == "identity_reserved"
    assert users.find_by_identity(ISSUER, "fb-free") is None
    # The person registers as usual.
    user, created = service.get_or_create_user(Access(identity("fb-free")), firebase_id="fb-free")
    assert created and "createdBy" not in user


def test_exactly_one_filter(aws):
    me = Access(make_user())
    for query in ({}, {"user_id": me.principal.user_id, "email": "a@b.test"}):
        with pytest.raises(BadRequest) as refused:
            service.get_or_create_user(me, **query)
        assert refused.value.code == "one_filter_required"


def test_other_users_are_hidden(aws):
    pat = make_user(firebase_id="fb-pat", email="pat@example.com")
    stranger, (service_account, _) = Access(make_user()), make_service_account()
    for query in ({"user_id": pat.user_id}, {"firebase_id": "fb-pat"}, {"email": "pat@example.com"}):
        with pytest.raises(NotFound):
            service.get_or_create_user(stranger, **query)
    with pytest.raises(NotFound):
        service.get_or_create_user(Access(service_account), user_id=pat.user_id)
    # By email, a service account only ever gets a user of its own: never pat.
    own, created = service.get_or_create_user(Access(service_account), email="pat@example.com")
    assert created and own["id"] != pat.user_id
    with pytest.raises(NotFound):
        service.get_or_create_user(stranger, user_id=str(uuid4()))


def test_a_service_account_creates_users_it_then_has_authority_over(aws, aws_calls):
    account, _ = make_service_account()
    me = Access(account)
    aws_calls.reset()
    by_email, created = service.get_or_create_user(me, email="new@example.com")
    assert created and by_email["emailAddress"] == "new@example.com"
    assert by_email["createdBy"] == account.user_id and "emailVerified" not in by_email
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:TransactWriteItems": 1}
    assert grants.get(Ref("user", by_email["id"]), ref_of(account))["role"] == "admin"
    assert authority.has_authority(me, by_email["id"])
    stored = users.get(by_email["id"])
    assert service.get_or_create_user(me, user_id=by_email["id"]) == (stored, False)
    assert service.get_or_create_user(me, email="new@example.com") == (stored, False)
    # Tenant-local: unverified, so never found as the address's owner.
    assert users.find_by_email("new@example.com") is None
    # A member of a team it owns is not under its authority (I1).
    member = make_user()
    grant(make_object("team", ref_of(account)), member, "member")
    with pytest.raises(NotFound):
        service.get_or_create_user(me, user_id=member.user_id)


def test_two_tenants_creating_the_same_email_get_two_users(aws):
    tenant_a, tenant_b = make_service_account("a")[0], make_service_account("b")[0]
    for_a, _ = service.get_or_create_user(Access(tenant_a), email="shared@example.com")
    for_b, created = service.get_or_create_user(Access(tenant_b), email="shared@example.com")
    assert created and for_b["id"] != for_a["id"]
    assert service.get_or_create_user(Access(tenant_a), email="shared@example.com")[0]["id"] == for_a["id"]
    with pytest.raises(NotFound):
        service.get_or_create_user(Access(tenant_a), user_id=for_b["id"])


def test_claiming_an_email_takes_no_invitation_and_blocks_no_sign_up(aws):
    """Finding 2 (I2): B invites newhire@; A creates a user with that address. B's invitation stays
    pending, A's user is not in B's team, and the person's own registration succeeds and accepts it."""
    tenant_a, tenant_b = make_service_account("a")[0], make_service_account("b")[0]
    team_b = make_object("team", ref_of(tenant_b))
    invite(team_b, "newhire@corp-b.example", by=tenant_b.user_id)
    claimed, created = service.get_or_create_user(Access(tenant_a), email="newhire@corp-b.example")
    assert created
    assert grants.get(team_b, Ref("user", claimed["id"])) is None
    assert invitations.get(team_b, "newhire@corp-b.example") is not None
    person = identity("fb-newhire", "newhire@corp-b.example")
    registered, created = service.get_or_create_user(Access(person), firebase_id="fb-newhire")
    assert created and registered["emailVerified"] is True
    assert grants.get(team_b, Ref("user", registered["id"]))["role"] == "member"
    assert invitations.get(team_b, "newhire@corp-b.example") is None
    assert users.find_by_email("newhire@corp-b.example")["id"] == registered["id"]


def test_an_unverified_identity_accepts_no_invitation(aws):
    inviter = make_user()
    team = make_object("team", ref_of(inviter))
    invite(team, "pat@example.com", by=inviter.user_id)
    user, _ = service.get_or_create_user(
        Access(identity("fb-pat", "pat@example.com", verified=False)), firebase_id="fb-pat"
    )
    assert grants.get(team, Ref("user", user["id"])) is None
    assert invitations.get(team, "pat@example.com") is not None


def test_a_verified_email_of_another_identity_does_not_block_registration(aws, aws_calls):
    """The same person at a second issuer (or an issuer vouching for someone else's address): the
    identity registers without the address, which stays the first user's."""
    first = make_user(firebase_id="fb-first", email="pat@example.com")
    second_issuer = "https://second.test.kallo"
    aws_calls.reset()
    user, created = service.get_or_create_user(
        Access(identity("fb-pat", "pat@example.com", issuer=second_issuer)), firebase_id="fb-pat"
    )
    # The identity's claim, the refused creation, the race check, the creation without the address.
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2, "dynamodb:TransactWriteItems": 2}
    assert created and "emailAddress" not in user and "emailVerified" not in user
    assert users.find_by_email("pat@example.com")["id"] == first.user_id
    assert users.find_by_identity(second_issuer, "fb-pat")["id"] == user["id"]


def test_a_concurrent_registration_returns_the_other_requests_user(aws, monkeypatch):
    me = identity("fb-twice", "twice@example.com")
    first, _ = service.get_or_create_user(Access(me), firebase_id="fb-twice")
    real, lookups = users.find_by_identity, []

    def lookup(issuer: str, subject: str) -> dict | None:
        # The first lookup misses, as it would just before the other request's write.
        lookups.append(subject)
        return None if len(lookups) == 1 else real(issuer, subject)

    monkeypatch.setattr(users, "find_by_identity", lookup)
    assert service.get_or_create_user(Access(me), firebase_id="fb-twice") == (first, False)
    assert len(lookups) == 2


def test_invitations_become_grants_when_the_user_registers(aws):
    inviter = make_user()
    team, convo = make_object("team", ref_of(inviter)), make_object("convo", ref_of(inviter))
    expired_team = make_object("team", ref_of(inviter))
    invite(team, "pat@example.com", "admin", by=inviter.user_id)
    invite(convo, "pat@example.com", "participant", by=inviter.user_id)
    invite(expired_team, "pat@example.com", "member", ttl=-1)
    invite(team, "someone@example.com")
    user, _ = service.get_or_create_user(Access(identity("fb-pat", "pat@example.com")), firebase_id="fb-pat")
    me = Ref("user", user["id"])
    held = {grants.object_ref(g): g for g in grants.all_of_grantee(me)}
    assert set(held) == {team, convo}
    assert held[team]["role"] == "admin" and held[team]["createdBy"] == inviter.user_id
    assert held[convo]["role"] == "participant"
    assert (
        invitations.get(team, "pat@example.com") is None and invitations.get(convo, "pat@example.com") is None
    )
    # An expired one is left for TTL; others' invitations are untouched.
    assert invitations.get(expired_team, "pat@example.com") is not None
    assert invitations.get(team, "someone@example.com") is not None


def test_many_invitations_are_accepted_in_chunks(aws, aws_calls, monkeypatch):
    # Two operations per invitation: with transactions of at most 4 operations, 5 invitations take 3.
    monkeypatch.setattr(invitations, "TRANSACT_LIMIT", 4)
    teams = [Ref("team", str(uuid4())) for _ in range(5)]
    for team in teams:
        invite(team, "busy@example.com")
    aws_calls.reset()
    user, created = service.get_or_create_user(
        Access(identity("fb-busy", "busy@example.com")), firebase_id="fb-busy"
    )
    assert created
    # The identity's claim, the user, the invitations, then the acceptances.
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls["dynamodb:Query"] == 1
    assert aws_calls["dynamodb:TransactWriteItems"] == 4 and aws_calls.total == 6
    held = grants.all_of_grantee(Ref("user", user["id"]), object_type="team")
    assert {grants.object_ref(g) for g in held} == set(teams)
    assert invitations.for_email("busy@example.com") == []


# -- Update a User ----------------------------------------------------------------------------------


def test_a_user_and_its_creator_may_update_it(aws):
    account, _ = make_service_account()
    pat = make_user(admin=account, name="Pat")
    mine = service.update_user(Access(pat), pat.user_id, UserUpdate(displayName="Patricia"))
    assert mine["displayName"] == "Patricia" and mine["id"] == pat.user_id
    theirs = service.update_user(Access(account), pat.user_id, UserUpdate(photoUrl="https://x.test/p.png"))
    assert theirs["displayName"] == "Patricia" and theirs["photoUrl"] == "https://x.test/p.png"
    assert "PK" not in theirs


def test_nobody_else_may_update_a_user(aws):
    owner, _ = make_service_account()
    pat = make_user()
    # A team it owns gives a service account no authority over a member (I1).
    grant(make_object("team", ref_of(owner)), pat, "member")
    for caller in (Access(make_user()), Access(owner)):
        with pytest.raises(NotFound):
            service.update_user(caller, pat.user_id, UserUpdate(displayName="Hacked"))
    with pytest.raises(NotFound):
        service.update_user(Access(owner), str(uuid4()), UserUpdate(displayName="Ghost"))
    assert users.get(pat.user_id)["displayName"] == "Pat"


# -- Get Related Users ------------------------------------------------------------------------------


def related_ids(access: Access, user_id: str, **paging) -> tuple[list[str], str | None]:
    found, token = service.related_users(access, user_id, **paging)
    return [u["id"] for u in found], token


def test_related_users_share_a_team_topic_or_convo(aws):
    pat, teammate, topic_peer, convo_peer, both, stranger = (make_user() for _ in range(6))
    team = make_object("team", ref_of(pat))
    grant(team, teammate, "member")
    grant(team, both, "viewer")
    topic = make_object("topic", ref_of(topic_peer))
    grant(topic, pat, "participant")
    grant(topic, both, "member")
    convo = make_object("convo", ref_of(convo_peer))
    grant(convo, pat, "viewer")
    # A data source in common, or a team of the stranger's, relates nobody.
    source = make_object("data_source", ref_of(stranger))
    grant(source, pat, "viewer")
    make_object("team", ref_of(stranger))
    found, token = related_ids(Access(pat), pat.user_id)
    expected = sorted(p.user_id for p in (teammate, topic_peer, convo_peer, both))
    assert found == expected and token is None
    assert related_ids(Access(teammate), teammate.user_id)[0] == sorted([pat.user_id, both.user_id])
    assert related_ids(Access(stranger), stranger.user_id) == ([], None)


def test_related_users_pages(aws):
    pat = make_user()
    team = make_object("team", ref_of(pat))
    members = sorted(make_user().user_id for _ in range(5))
    for member in members:
        grant(team, Ref("user", member), "member")
    first, token = related_ids(Access(pat), pat.user_id, limit=2)
    second, token = related_ids(Access(pat), pat.user_id, limit=2, next_token=token)
    rest, last = related_ids(Access(pat), pat.user_id, limit=2, next_token=token)
    assert first + second + rest == members and last is None
    for bad in ("nope", "%%%", "cmVsYXRlZDpub3QtYS11dWlk"):  # the last: "related:not-a-uuid"
        with pytest.raises(BadRequest):
            service.related_users(Access(pat), pat.user_id, next_token=bad)


def test_related_users_read_a_bounded_number_of_objects(aws, monkeypatch):
    pat = make_user()
    convo_peer, team_peer = make_user(), make_user()
    convo = make_object("convo", ref_of(convo_peer))
    grant(convo, pat, "viewer")
    grant(make_object("team", ref_of(team_peer)), pat, "member")
    monkeypatch.setattr(service, "MAX_RELATED_OBJECTS", 1)
    # Teams come first when the bound cuts.
    assert related_ids(Access(pat), pat.user_id)[0] == [team_peer.user_id]


def test_related_users_keep_the_most_recent_objects_of_a_type(aws, monkeypatch):
    pat, old_peer, new_peer = make_user(), make_user(), make_user()
    old_convo, new_convo = make_object("convo", ref_of(old_peer)), make_object("convo", ref_of(new_peer))
    for convo, created_at in (
        (old_convo, "2026-01-01T00:00:00.000Z"),
        (new_convo, "2026-06-01T00:00:00.000Z"),
    ):
        table().put(grants.item(convo, ref_of(pat), "viewer", created_by=pat.user_id, created_at=created_at))
    monkeypatch.setattr(service, "MAX_RELATED_OBJECTS", 1)
    assert related_ids(Access(pat), pat.user_id)[0] == [new_peer.user_id]


def test_related_users_of_others_need_authority(aws):
    account, _ = make_service_account()
    pat, peer = make_user(admin=account), make_user()
    grant(make_object("team", ref_of(peer)), pat, "member")
    assert related_ids(Access(account), pat.user_id)[0] == [peer.user_id]
    for caller in (Access(peer), Access(make_user())):
        with pytest.raises(NotFound):
            service.related_users(caller, pat.user_id)


# -- Get Dashboard User Stats -----------------------------------------------------------------------


def test_stats_count_direct_grants(aws):
    account, _ = make_service_account()
    pat = make_user(admin=account)
    for kind, count in (("convo", 3), ("team", 2), ("data_source", 1), ("topic", 2), ("prompt", 1)):
        for _ in range(count):
            make_object(kind, ref_of(pat))
    grant(make_object("team", ref_of(account)), pat, "member")
    expected = {"convos": 3, "teams": 3, "sources": 1}
    assert service.user_stats(Access(pat)) == expected
    assert service.user_stats(Access(account), pat.user_id) == expected
    assert service.user_stats(Access(account)) == {"convos": 0, "teams": 1, "sources": 0}
    with pytest.raises(NotFound):
        service.user_stats(Access(make_user()), pat.user_id)


# -- I3: a narrow token and its own user object -------------------------------------------------------


def test_a_narrow_token_does_not_reach_its_own_user_object(aws):
    """Finding 3: a convo-scoped token cannot read or change its own user (profile, grantees, related
    users, stats): hidden, 404, as everything outside its scope. The whole-user scope can."""
    account, _ = make_service_account()
    pat = make_user(admin=account)
    convo = make_object("convo", ref_of(pat))
    grant(make_object("team", ref_of(make_user())), pat, "member")
    narrow = token_of(pat, convo)
    me = ref_of(pat)
    refused = [
        lambda a: service.get_or_create_user(a, user_id=pat.user_id),
        lambda a: service.update_user(a, pat.user_id, UserUpdate(displayName="Hacked")),
        lambda a: service.related_users(a, pat.user_id),
        lambda a: service.user_stats(a),
        lambda a: service.user_stats(a, pat.user_id),
        lambda a: grantee_service.add_grantee(a, me, Grantee(type="user", id=account.user_id, role="admin")),
        lambda a: grantee_service.query_grantees(a, me),
    ]
    for attempt in refused:
        with pytest.raises(NotFound):
            attempt(narrow)
    assert users.get(pat.user_id)["displayName"] == "Pat"
    assert grants.get(me, ref_of(account))["role"] == "admin"  # its creator's, untouched
    assert grants.all_of_object(me, grantee_type="user") == [grants.get(me, ref_of(account))]
    # The token still reaches its convo, and the whole-user scope reaches the user object.
    narrow.require(convo)
    whole = token_of(pat, me)
    for attempt in refused[:5]:
        attempt(whole)
    assert users.get(pat.user_id)["displayName"] == "Hacked"
