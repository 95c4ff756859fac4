"""The users service and models: registration on the fly, creation by service accounts, visibility,
profile updates, related users and dashboard stats."""

from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import BadRequest, Conflict, Forbidden, NotFound
from kallo.models.users import FirebaseId, User, UserUpdate
from kallo.services import authority
from kallo.services import invitations as invitation_service
from kallo.services import users as service
from kallo.store import grants, invitations, users
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of
from tests.unit.test_invitations import invite


def identity(sub: str, email: str | None = None, *, verified: bool = True) -> Principal:
    """An OpenID Connect identity that has no user yet."""
    return Principal(user_id=None, scheme="oidc", firebase_id=sub, email=email, email_verified=verified)


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
    assert user["isServiceAccount"] is False
    assert users.find_by_email("pat@example.com")["id"] == user["id"]
    # The same identity again (e.g. an authorizer's cached principal from before): the same user.
    assert service.get_or_create_user(Access(me), firebase_id="fb-pat") == (user, False)
    registered = Principal(user_id=user["id"], scheme="oidc", firebase_id="fb-pat")
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
        assert created and "emailAddress" not in user


def test_an_identity_may_only_register_itself(aws):
    me = identity("fb-me")
    with pytest.raises(Forbidden) as refused:
        service.get_or_create_user(Access(me), firebase_id="fb-someone-else")
    assert refused.value.code == "user_not_registered"
    other = make_user(firebase_id="fb-other", email="other@example.com")
    for query in ({"firebase_id": "fb-other"}, {"user_id": other.user_id}, {"email": "other@example.com"}):
        with pytest.raises(Forbidden):
            service.get_or_create_user(Access(me), **query)
    # A registered user asking for an unknown Firebase id creates nothing.
    with pytest.raises(NotFound):
        service.get_or_create_user(Access(make_user()), firebase_id="fb-nobody")
    assert users.find_by_firebase_id("fb-nobody") is None


def test_exactly_one_filter(aws):
    me = Access(make_user())
    for query in ({}, {"user_id": me.principal.user_id, "email": "a@b.test"}):
        with pytest.raises(BadRequest) as refused:
            service.get_or_create_user(me, **query)
        assert refused.value.code == "one_filter_required"


def test_other_users_are_hidden(aws):
    pat = make_user(firebase_id="fb-pat", email="pat@example.com")
    stranger, (service_account, _) = Access(make_user()), make_service_account()
    for caller in (stranger, Access(service_account)):
        for query in ({"user_id": pat.user_id}, {"firebase_id": "fb-pat"}, {"email": "pat@example.com"}):
            with pytest.raises(NotFound):
                service.get_or_create_user(caller, **query)
    with pytest.raises(NotFound):
        service.get_or_create_user(stranger, user_id=str(uuid4()))


def test_a_service_account_creates_users_it_then_has_authority_over(aws):
    account, _ = make_service_account()
    me = Access(account)
    by_firebase, created = service.get_or_create_user(me, firebase_id="fb-new")
    assert created and by_firebase["firebaseId"] == "fb-new" and "emailAddress" not in by_firebase
    by_email, created = service.get_or_create_user(me, email="new@example.com")
    assert created and by_email["emailAddress"] == "new@example.com"
    for user in (by_firebase, by_email):
        assert grants.get(Ref("user", user["id"]), ref_of(account))["role"] == "admin"
        assert authority.has_authority(Access(account), user["id"])
        assert service.get_or_create_user(Access(account), user_id=user["id"]) == (user, False)
    assert service.get_or_create_user(Access(account), email="new@example.com") == (by_email, False)
    # Members of a team it owns are under its authority too.
    member = make_user()
    grant(make_object("team", ref_of(account)), member, "member")
    assert service.get_or_create_user(Access(account), user_id=member.user_id)[0]["id"] == member.user_id


def test_an_email_of_another_user_conflicts(aws):
    make_user(email="pat@example.com")
    with pytest.raises(Conflict) as conflict:
        service.get_or_create_user(Access(identity("fb-pat", "pat@example.com")), firebase_id="fb-pat")
    assert conflict.value.code == "user_exists" and "pat@example.com" in conflict.value.message
    assert users.find_by_firebase_id("fb-pat") is None


def test_a_concurrent_registration_returns_the_other_requests_user(aws, monkeypatch):
    me = identity("fb-twice", "twice@example.com")
    first, _ = service.get_or_create_user(Access(me), firebase_id="fb-twice")
    real, lookups = users.find_by_firebase_id, []

    def lookup(firebase_id: str) -> dict | None:
        # The first lookup misses, as it would just before the other request's write.
        lookups.append(firebase_id)
        return None if len(lookups) == 1 else real(firebase_id)

    monkeypatch.setattr(users, "find_by_firebase_id", lookup)
    assert service.get_or_create_user(Access(me), firebase_id="fb-twice") == (first, False)
    assert len(lookups) == 2


def test_invitations_become_grants_when_the_user_is_created(aws):
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
    assert held[team]["role"] == "admin" and held[team]["invitedBy"] == inviter.user_id
    assert held[team]["createdBy"] == user["id"]  # the acceptance made the grant
    assert held[convo]["role"] == "participant"
    assert (
        invitations.get(team, "pat@example.com") is None and invitations.get(convo, "pat@example.com") is None
    )
    # An expired one is left for TTL; others' invitations are untouched.
    assert invitations.get(expired_team, "pat@example.com") is not None
    assert invitations.get(team, "someone@example.com") is not None


def test_many_invitations_are_accepted_in_chunks(aws, aws_calls, monkeypatch):
    # Two operations per invitation: with transactions of at most 4 operations, 5 invitations take 3.
    monkeypatch.setattr(invitation_service, "TRANSACT_LIMIT", 4)
    teams = [Ref("team", str(uuid4())) for _ in range(5)]
    for team in teams:
        invite(team, "busy@example.com")
    account, _ = make_service_account()
    aws_calls.reset()
    user, created = service.get_or_create_user(Access(account), email="busy@example.com")
    assert created
    # The claim lookup, the user, the invitations, then the acceptances.
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
    # Authority through a team it owns lets a service account read a member, not edit it.
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
