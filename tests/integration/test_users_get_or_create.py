"""Get/Create a User: GET /users?userId= | firebaseId= | email=."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.store import grants
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import make_object, make_service_account, make_user, ref_of
from tests.unit.test_invitations import invite

GET = "users.get_or_create_user"


def identity(sub: str, email: str | None = None) -> Principal:
    """An OpenID Connect identity that has no user yet, with a verified email address."""
    return Principal(user_id=None, scheme="oidc", firebase_id=sub, email=email, email_verified=True)


def test_an_identity_registers_then_finds_itself(aws, aws_calls):
    me = identity("fb-pat", "Pat@Example.com")
    aws_calls.reset()
    first = invoke(GET, me, query={"firebaseId": "fb-pat"})
    assert first.status == 201, first.body
    user = first.json
    assert user["firebaseId"] == "fb-pat" and user["emailAddress"] == "pat@example.com"
    assert user["isServiceAccount"] is False and "displayName" not in user and "photoUrl" not in user
    # The Firebase claim (GetItem), the user and its claims (TransactWriteItems), its invitations (Query).
    assert aws_calls.total == 3 and aws_calls["dynamodb:TransactWriteItems"] == 1
    aws_calls.reset()
    again = invoke(GET, me, query={"firebaseId": "fb-pat"})
    assert again.status == 200 and again.json == user
    # The claim and the user: seeing oneself costs nothing more.
    assert aws_calls.total == 2 and aws_calls["dynamodb:GetItem"] == 2
    registered = Principal(user_id=user["id"], scheme="oidc", firebase_id="fb-pat")
    aws_calls.reset()
    by_id = invoke(GET, registered, query={"userId": user["id"]})
    assert by_id.status == 200 and by_id.json == user
    assert aws_calls.total == 1 and aws_calls["dynamodb:GetItem"] == 1
    # The registered user can now create a team.
    assert invoke("teams.create_team", registered, body={"name": "Mine"}).status == 201


def test_registration_accepts_pending_invitations(aws, aws_calls):
    inviter = make_user()
    team = make_object("team", ref_of(inviter))
    convo = make_object("convo", ref_of(inviter))
    invite(team, "pat@example.com", "member", by=inviter.user_id)
    invite(convo, "pat@example.com", "viewer", by=inviter.user_id)
    aws_calls.reset()
    result = invoke(GET, identity("fb-pat", "pat@example.com"), query={"firebaseId": "fb-pat"})
    assert result.status == 201, result.body
    # As above, plus one transaction for both grants and both invitations' deletion.
    assert aws_calls.total == 4 and aws_calls["dynamodb:TransactWriteItems"] == 2
    me = Ref("user", result.json["id"])
    assert {grants.object_ref(g) for g in grants.all_of_grantee(me)} == {team, convo}


def test_a_service_account_creates_by_firebase_id_or_email(aws, aws_calls):
    account, _ = make_service_account()
    aws_calls.reset()
    by_firebase = invoke(GET, account, query={"firebaseId": "fb-new"})
    assert by_firebase.status == 201 and by_firebase.json["firebaseId"] == "fb-new"
    # No email address, so no invitations to look for.
    assert aws_calls.total == 2
    aws_calls.reset()
    by_email = invoke(GET, account, query={"email": "New@Example.com"})
    assert by_email.status == 201 and by_email.json["emailAddress"] == "new@example.com"
    assert aws_calls.total == 3 and aws_calls["dynamodb:Query"] == 1
    aws_calls.reset()
    again = invoke(GET, account, query={"email": "new@example.com"})
    assert again.status == 200 and again.json == by_email.json
    # The claim, the user, and its admin grant (the authority check).
    assert aws_calls.total == 3 and aws_calls["dynamodb:BatchGetItem"] == 1
    aws_calls.reset()
    by_id = invoke(GET, account, query={"userId": by_firebase.json["id"]})
    assert by_id.status == 200 and by_id.json == by_firebase.json
    assert aws_calls.total == 2


def test_other_users_are_not_found(aws, aws_calls):
    pat = make_user(firebase_id="fb-pat", email="pat@example.com")
    account, _ = make_service_account()
    stranger = make_user()
    for caller in (stranger, account):
        for query in ({"userId": pat.user_id}, {"firebaseId": "fb-pat"}, {"email": "pat@example.com"}):
            result = invoke(GET, caller, query=query)
            assert result.status == 404 and result.json["code"] == "not_found", (query, result.body)
    aws_calls.reset()
    assert invoke(GET, account, query={"userId": pat.user_id}).status == 404
    # Its grant on the user (BatchGetItem) and the user's teams (Query); the user itself is never read.
    assert aws_calls.total == 2 and aws_calls["dynamodb:GetItem"] == 0
    # Unknown ones are 404 for everyone but service accounts (which create them).
    assert invoke(GET, stranger, query={"firebaseId": "fb-unknown"}).status == 404
    assert invoke(GET, stranger, query={"email": "unknown@example.com"}).status == 404
    assert invoke(GET, stranger, query={"userId": str(uuid4())}).status == 404


def test_an_identity_without_a_user_may_only_register_itself(aws):
    me = identity("fb-me")
    pat = make_user(firebase_id="fb-pat")
    for query in ({"firebaseId": "fb-pat"}, {"firebaseId": "fb-other"}, {"userId": pat.user_id}):
        result = invoke(GET, me, query=query)
        assert result.status == 403 and result.json["code"] == "user_not_registered", result.body
    # Every other operation refuses it the same way.
    assert invoke("teams.create_team", me, body={"name": "T"}).json["code"] == "user_not_registered"


def test_an_email_that_belongs_to_another_user_conflicts(aws):
    make_user(email="pat@example.com")
    result = invoke(GET, identity("fb-pat", "pat@example.com"), query={"firebaseId": "fb-pat"})
    assert result.status == 409 and result.json["code"] == "user_exists"


def test_bad_input(aws):
    pat = make_user()
    for query in (
        {},
        {"userId": "not-a-uuid"},
        {"userId": "1" * 5000},
        {"firebaseId": ""},
        {"firebaseId": "has space"},
        {"firebaseId": "x" * 256},
        {"email": "not-an-email"},
        {"email": "a" * 300 + "@example.com"},
        {"email": "a@b.test", "firebaseId": "fb"},
    ):
        result = invoke(GET, pat, query=query)
        assert 400 <= result.status < 500, (query, result.body)
        assert {"code", "message"} <= set(result.json)


def test_no_credentials_is_401(aws):
    result = invoke(GET, None, query={"userId": str(uuid4())})
    assert result.status == 401 and result.json["code"] == "unauthorized"
