"""Get/Create a User: GET /users?userId= | firebaseId= | email=, and the identity attacks of I1 / I2
written from the other tenant's side."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from kallo.auth import authenticate
from kallo.auth.principal import Principal
from kallo.settings import get_settings
from kallo.store import grants, invitations, users
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.oidc import ISSUER, OidcIssuer
from tests.support.world import make_object, make_service_account, make_user, ref_of
from tests.unit.test_invitations import invite

GET = "users.get_or_create_user"


def identity(sub: str, email: str | None = None, *, issuer: str = ISSUER) -> Principal:
    """An OpenID Connect identity that has no user yet, with a verified email address."""
    return Principal(
        user_id=None, scheme="oidc", firebase_id=sub, issuer=issuer, email=email, email_verified=True
    )


@pytest.fixture
def issuer(monkeypatch) -> Iterator[OidcIssuer]:
    issuer = OidcIssuer()
    monkeypatch.setenv("KALLO_OIDC_ISSUERS", issuer.configuration())
    get_settings.cache_clear()
    authenticate.forget_cached_credentials()
    yield issuer
    issuer.close()
    get_settings.cache_clear()


def test_an_identity_registers_then_finds_itself(aws, aws_calls):
    me = identity("fb-pat", "Pat@Example.com")
    aws_calls.reset()
    first = invoke(GET, me, query={"firebaseId": "fb-pat"})
    assert first.status == 201, first.body
    user = first.json
    assert user["firebaseId"] == "fb-pat" and user["emailAddress"] == "pat@example.com"
    assert user["isServiceAccount"] is False and "displayName" not in user and "photoUrl" not in user
    # The identity's claim (GetItem), the user and its claims (TransactWriteItems), its invitations (Query).
    assert aws_calls.total == 3 and aws_calls["dynamodb:TransactWriteItems"] == 1
    aws_calls.reset()
    again = invoke(GET, me, query={"firebaseId": "fb-pat"})
    assert again.status == 200 and again.json == user
    # The claim and the user: seeing oneself costs nothing more.
    assert aws_calls.total == 2 and aws_calls["dynamodb:GetItem"] == 2
    registered = Principal(user_id=user["id"], scheme="oidc", firebase_id="fb-pat", issuer=ISSUER)
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


def test_a_service_account_creates_its_own_users_by_email(aws, aws_calls):
    account, _ = make_service_account()
    aws_calls.reset()
    by_email = invoke(GET, account, query={"email": "New@Example.com"})
    assert by_email.status == 201 and by_email.json["emailAddress"] == "new@example.com"
    # Its own claim of the address (GetItem), the user (TransactWriteItems): no invitation is read.
    assert aws_calls.total == 2 and aws_calls["dynamodb:Query"] == 0
    aws_calls.reset()
    again = invoke(GET, account, query={"email": "new@example.com"})
    assert again.status == 200 and again.json == by_email.json
    assert aws_calls.total == 2 and aws_calls["dynamodb:GetItem"] == 2  # its claim, the user
    aws_calls.reset()
    by_id = invoke(GET, account, query={"userId": by_email.json["id"]})
    assert by_id.status == 200 and by_id.json == by_email.json
    assert aws_calls.total == 1  # the user item, which names its creator


def test_a_service_account_cannot_claim_or_probe_a_firebase_id(aws, aws_calls):
    """Finding 7 (I2): 403 `identity_reserved`, the same whether the identity exists or not."""
    account, _ = make_service_account()
    make_user(firebase_id="fb-taken")
    aws_calls.reset()
    answers = [invoke(GET, account, query={"firebaseId": f}) for f in ("fb-free", "fb-taken")]
    assert [(a.status, a.json["code"]) for a in answers] == [(403, "identity_reserved")] * 2
    assert answers[0].json["message"] == answers[1].json["message"]
    assert aws_calls.total == 0  # nothing is even looked up
    assert users.find_by_identity(ISSUER, "fb-free") is None
    # The person registers itself as usual.
    assert invoke(GET, identity("fb-free"), query={"firebaseId": "fb-free"}).status == 201


def test_other_users_are_not_found(aws, aws_calls):
    pat = make_user(firebase_id="fb-pat", email="pat@example.com")
    account, _ = make_service_account()
    stranger = make_user(firebase_id="fb-stranger")
    for query in ({"userId": pat.user_id}, {"firebaseId": "fb-pat"}, {"email": "pat@example.com"}):
        result = invoke(GET, stranger, query=query)
        assert result.status == 404 and result.json["code"] == "not_found", (query, result.body)
    aws_calls.reset()
    assert invoke(GET, account, query={"userId": pat.user_id}).status == 404
    assert aws_calls.total == 1 and aws_calls["dynamodb:GetItem"] == 1  # the user item, not its creator's
    # By email, a service account gets a user of its own, never pat.
    own = invoke(GET, account, query={"email": "pat@example.com"})
    assert own.status == 201 and own.json["id"] != pat.user_id
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


def test_a_verified_email_held_by_another_identity_does_not_block_registration(aws):
    first = make_user(firebase_id="fb-first", email="pat@example.com")
    other_issuer = "https://other-issuer.test.kallo"
    result = invoke(
        GET, identity("fb-pat", "pat@example.com", issuer=other_issuer), query={"firebaseId": "fb-pat"}
    )
    assert result.status == 201 and "emailAddress" not in result.json
    assert users.find_by_email("pat@example.com")["id"] == first.user_id


# -- attacks --------------------------------------------------------------------------------------


def _token_for(account: Principal, user_id: str) -> int:
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"userId": user_id, "scopeObjects": [{"type": "user", "id": user_id}], "expiresAt": expires}
    return invoke("auth.create_access_token", account, body=body).status


def test_an_early_invitation_gives_the_inviter_nothing(aws):
    """Finding 1 (I1), from tenant A: A invites victim@corp-b before the user exists; B creates it."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    team = invoke("teams.create_team", tenant_a, body={"name": "A's team"}).json
    invited = invoke(
        "auth.add_grantee",
        tenant_a,
        query={"objectType": "team", "objectId": team["id"], "inviteEmail": "victim@corp-b.example"},
        body={"type": "user", "role": "member"},
    )
    assert invited.status == 201, invited.body
    victim = invoke(GET, tenant_b, query={"email": "victim@corp-b.example"})
    assert victim.status == 201
    victim_id = victim.json["id"]
    assert invoke("convos.query_convos", tenant_a, query={"userId": victim_id}).status == 404
    assert _token_for(tenant_a, victim_id) == 404
    assert invoke(GET, tenant_a, query={"userId": victim_id}).status == 404
    members = invoke("teams.get_team_users", tenant_a, path={"teamId": team["id"]}).json
    assert victim_id not in {m["userId"] for m in members}
    # B, which created it, acts for it.
    assert _token_for(tenant_b, victim_id) == 201


def test_claiming_an_email_takes_no_other_tenants_invitation(aws, issuer):
    """Finding 2 (I2), from tenant A: B invites newhire@; A creates a user with that address."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    team = invoke("teams.create_team", tenant_b, body={"name": "B's team"}).json
    query = {"objectType": "team", "objectId": team["id"], "inviteEmail": "newhire@corp-b.example"}
    invoke("auth.add_grantee", tenant_b, query=query, body={"type": "user", "role": "member"})
    claimed = invoke(GET, tenant_a, query={"email": "newhire@corp-b.example"})
    assert claimed.status == 201
    pending = invoke("users.get_invitations", tenant_b, query={"objectType": "team", "objectId": team["id"]})
    assert [i["inviteEmail"] for i in pending.json] == ["newhire@corp-b.example"]
    members = invoke("teams.get_team_users", tenant_b, path={"teamId": team["id"]}).json
    assert claimed.json["id"] not in {m["userId"] for m in members}
    # The person signs in (email_verified exactly true) and registers: 201, and joins B's team.
    token = issuer.mint("fb-newhire", email="newhire@corp-b.example")
    person = authenticate.authenticate({"authorization": f"Bearer {token}"})
    registered = invoke(GET, person, query={"firebaseId": "fb-newhire"})
    assert registered.status == 201, registered.body
    members = invoke("teams.get_team_users", tenant_b, path={"teamId": team["id"]}).json
    assert registered.json["id"] in {m["userId"] for m in members}
    assert invitations.get(Ref("team", team["id"]), "newhire@corp-b.example") is None


@pytest.mark.parametrize("claimed", ["false", "true"])
def test_an_email_verified_string_verifies_nothing(aws, issuer, claimed):
    """Finding 2 (I2): `"email_verified": "false"` (or "true") is not the JSON value true."""
    inviter = make_user()
    team = make_object("team", ref_of(inviter))
    invite(team, "victim@example.com", by=inviter.user_id)
    claims = {**issuer.claims("fb-attacker", email="victim@example.com"), "email_verified": claimed}
    attacker = authenticate.authenticate({"authorization": f"Bearer {issuer.sign(claims)}"})
    registered = invoke(GET, attacker, query={"firebaseId": "fb-attacker"})
    assert registered.status == 201 and "emailAddress" not in registered.json
    assert grants.get(team, Ref("user", registered.json["id"])) is None
    assert invitations.get(team, "victim@example.com") is not None
    assert users.find_by_email("victim@example.com") is None


def test_the_same_sub_from_two_issuers_is_two_users(aws):
    """Finding 7 (I2): an identity is (issuer, sub)."""
    first = invoke(GET, identity("same-sub"), query={"firebaseId": "same-sub"})
    second = invoke(
        GET, identity("same-sub", issuer="https://other-issuer.test.kallo"), query={"firebaseId": "same-sub"}
    )
    assert first.status == second.status == 201
    assert first.json["id"] != second.json["id"]
    me = Principal(user_id=first.json["id"], scheme="oidc", firebase_id="same-sub", issuer=ISSUER)
    assert invoke(GET, me, query={"userId": second.json["id"]}).status == 404


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
