"""The access-token service (Create / Revoke Access Token) and its models."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from kallo.auth import tokens
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Forbidden, NotFound, Unprocessable
from kallo.models.auth import AccessTokenCreate
from kallo.services import access_tokens
from kallo.settings import get_settings
from kallo.store import credentials, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

ORIGIN = "https://myapp.foo.com"


def request(
    user_id: str, *scope: Ref, expires_in: timedelta = timedelta(hours=1), **fields
) -> AccessTokenCreate:
    return AccessTokenCreate.model_validate(
        {
            "userId": user_id,
            "scopeObjects": [{"type": r.type, "id": r.id} for r in scope]
            or [{"type": "user", "id": user_id}],
            "expiresAt": (datetime.now(UTC) + expires_in).isoformat(),
            **fields,
        }
    )


@pytest.fixture
def svc(aws):
    account, _ = make_service_account()
    return account


# -- models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("*", "*"),
        ("https://myapp.foo.com", "https://myapp.foo.com"),
        ("HTTPS://MyApp.Foo.com", "https://myapp.foo.com"),
        ("https://myapp.foo.com:443", "https://myapp.foo.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("capacitor://localhost", "capacitor://localhost"),
    ],
)
def test_allow_origin_is_kept_as_browsers_send_it(given, stored):
    assert request("2c4a230c-5085-4924-a3e1-25fb4fc5965b", allowOrigin=given).allow_origin == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "null",
        "myapp.foo.com",
        "https://",
        "https://myapp.foo.com/",
        "https://myapp.foo.com/app",
        "https://myapp.foo.com?x=1",
        "https://myapp.foo.com#x",
        "https://user@myapp.foo.com",
        "https://myapp.foo.com:0",
        "https://myapp.foo.com:65536",
        "https://myapp.foo.com\r\nset-cookie: x=1",
        " https://myapp.foo.com",
        "*.foo.com",
        "https://" + "a" * 2048 + ".com",
        1,
    ],
)
def test_allow_origin_must_be_star_or_an_origin(bad):
    with pytest.raises(ValidationError):
        request("2c4a230c-5085-4924-a3e1-25fb4fc5965b", allowOrigin=bad)


def test_scope_objects_are_1_to_50_typed_uuids():
    user = "2c4a230c-5085-4924-a3e1-25fb4fc5965b"
    fifty = [{"type": "team", "id": f"6f1c2a4e-0000-4000-8000-{i:012d}"} for i in range(50)]
    assert len(AccessTokenCreate.model_validate({**_body(user), "scopeObjects": fifty}).scope_objects) == 50
    for scope in (
        [],
        [*fifty, {"type": "team", "id": user}],
        [{"type": "widget", "id": user}],
        [{"type": "team", "id": "not-a-uuid"}],
        [{"type": "team"}],
        [{"type": "team", "id": user, "role": "owner"}],
        "team",
    ):
        with pytest.raises(ValidationError):
            AccessTokenCreate.model_validate({**_body(user), "scopeObjects": scope})


def test_expires_at_needs_a_time_zone_and_the_rest_is_required():
    user = "2c4a230c-5085-4924-a3e1-25fb4fc5965b"
    for bad in (
        {**_body(user), "expiresAt": "2030-01-01T00:00:00"},
        {**_body(user), "expiresAt": "tomorrow"},
        {**_body(user), "userId": "nope"},
        {**_body(user), "extra": 1},
        {"userId": user, "scopeObjects": [{"type": "user", "id": user}]},
    ):
        with pytest.raises(ValidationError):
            AccessTokenCreate.model_validate(bad)


def _body(user: str) -> dict:
    return {
        "userId": user,
        "scopeObjects": [{"type": "user", "id": user}],
        "expiresAt": "2030-01-01T00:00:00Z",
    }


# -- create ----------------------------------------------------------------------------------------


def test_create_stores_the_record_and_mints_a_matching_jwt(svc, aws_calls):
    user = make_user(admin=svc)
    team = make_object("team", ref_of(user))
    data = request(user.user_id, ref_of(user), team, team, allowOrigin=ORIGIN)
    aws_calls.reset()
    created = access_tokens.create_access_token(Access(svc), data)
    # Authority (the user item), the user's grants on the scope, the record, the signing key.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:PutItem": 1,
        "secretsmanager:GetSecretValue": 1,
    }
    stored = credentials.get_access_token(created["id"])
    scope = [{"type": "user", "id": user.user_id}, {"type": "team", "id": team.id}]  # deduplicated
    assert stored["userId"] == user.user_id and stored["createdBy"] == svc.user_id
    assert stored["scopeObjects"] == scope and stored["allowOrigin"] == ORIGIN
    assert stored["ttl"] == int(data.expires_at.timestamp())
    assert stored["expiresAt"].endswith("Z") and stored["createdAt"].endswith("Z")
    assert stored["GSI1PK"] == keys.access_tokens_of_creator_pk(svc.user_id)
    assert "revokedAt" not in stored
    claims = tokens.verify(created["jwt"])
    assert claims["sub"] == user.user_id and claims["jti"] == created["id"]
    assert claims["exp"] == int(data.expires_at.timestamp()) and claims["scope"] == scope
    assert jwt.get_unverified_header(created["jwt"])["alg"] == "HS256"
    # The signing key is read once per container.
    aws_calls.reset()
    access_tokens.create_access_token(Access(svc), request(user.user_id))
    assert aws_calls["secretsmanager:GetSecretValue"] == 0


def test_scope_checks_cost_one_batch_for_all_objects(svc, aws_calls):
    """No N+1: one Query per scope object that inherits (its owners), one BatchGetItem for all."""
    user = make_user(admin=svc)
    team = make_object("team", ref_of(user))
    topics = [make_object("topic", team) for _ in range(3)]
    convo = make_object("convo", topics[0])
    access_tokens.create_access_token(Access(svc), request(user.user_id))  # reads the signing key
    aws_calls.reset()
    access_tokens.create_access_token(Access(svc), request(user.user_id, *topics, convo, team))
    assert aws_calls["dynamodb:Query"] == 4  # 3 topics + the convo; the team inherits nothing
    assert aws_calls["dynamodb:GetItem"] == 1  # authority: the user item
    assert aws_calls["dynamodb:BatchGetItem"] == 1  # the user's grants on every chain
    assert aws_calls["dynamodb:PutItem"] == 1 and aws_calls.total == 7


def test_a_token_without_allow_origin_stores_none(svc):
    user = make_user(admin=svc)
    created = access_tokens.create_access_token(Access(svc), request(user.user_id))
    assert "allowOrigin" not in credentials.get_access_token(created["id"])


def test_no_token_for_a_member_of_a_team_the_service_account_owns(svc):
    """I1: a membership gives no authority, whoever made it."""
    member = make_user()
    team = make_object("team", ref_of(svc))
    grant(team, member, "member")
    with pytest.raises(NotFound):
        access_tokens.create_access_token(Access(svc), request(member.user_id, team))


def test_a_service_account_may_mint_for_itself(svc):
    created = access_tokens.create_access_token(Access(svc), request(svc.user_id))
    assert tokens.verify(created["jwt"])["sub"] == svc.user_id


def test_no_authority_is_404(svc):
    other_svc, _ = make_service_account("other")
    theirs = make_user(admin=other_svc)
    stranger = make_user()
    for user_id in (theirs.user_id, stranger.user_id, "2c4a230c-5085-4924-a3e1-25fb4fc5965b"):
        with pytest.raises(NotFound, match=f"user {user_id} not found"):
            access_tokens.create_access_token(Access(svc), request(user_id))
    # A team member's authority does not come from a team someone else owns.
    team = make_object("team", ref_of(other_svc))
    grant(team, stranger, "member")
    grant(team, svc, "admin")
    with pytest.raises(NotFound):
        access_tokens.create_access_token(Access(svc), request(stranger.user_id))


def test_scope_objects_the_user_cannot_view_are_404(svc):
    user = make_user(admin=svc)
    # Visible to the service account (it owns them), not to the user.
    hidden_team = make_object("team", ref_of(svc))
    hidden_topic = make_object("topic", hidden_team)
    other_user = make_user(admin=svc)
    for hidden in (
        hidden_team,
        hidden_topic,
        ref_of(other_user),
        Ref("convo", "7b0e3c5a-2f4e-4a43-9a51-3f0a3d9d2c11"),
    ):
        with pytest.raises(NotFound, match=f"{hidden.type} {hidden.id} not found"):
            access_tokens.create_access_token(Access(svc), request(user.user_id, ref_of(user), hidden))
    assert table().query_all(keys.access_tokens_of_creator_pk(svc.user_id), index="GSI1") == []


def test_inherited_view_is_enough(svc):
    user = make_user(admin=svc)
    team = make_object("team", ref_of(svc))
    grant(team, user, "viewer")
    topic = make_object("topic", team)
    convo = make_object("convo", topic)
    created = access_tokens.create_access_token(Access(svc), request(user.user_id, topic, convo))
    assert tokens.verify(created["jwt"])["scope"] == [
        {"type": "topic", "id": topic.id},
        {"type": "convo", "id": convo.id},
    ]


@pytest.mark.parametrize(
    "principal",
    [
        Principal(user_id="2c4a230c-5085-4924-a3e1-25fb4fc5965b", scheme="access_token", scope=()),
        Principal(user_id="2c4a230c-5085-4924-a3e1-25fb4fc5965b", scheme="oidc", firebase_id="f"),
        Principal(user_id=None, scheme="oidc", firebase_id="f"),
    ],
    ids=["access token", "oidc user", "unregistered oidc"],
)
def test_only_api_keys_may_create_or_revoke(aws, aws_calls, principal):
    aws_calls.reset()
    with pytest.raises(Forbidden) as refused:
        access_tokens.create_access_token(Access(principal), request("2c4a230c-5085-4924-a3e1-25fb4fc5965b"))
    assert refused.value.code == "api_key_required"
    with pytest.raises(Forbidden) as refused:
        access_tokens.revoke_access_token(Access(principal), "497f6eca-6276-4993-bfeb-53cbbbba6f08")
    assert refused.value.code == "api_key_required"
    assert aws_calls.total == 0


def test_expiry_must_be_ahead_and_within_the_maximum_lifetime(svc, monkeypatch):
    user = make_user(admin=svc)
    for expires_in, problem in (
        (timedelta(seconds=-1), "in the future"),
        (timedelta(0), "in the future"),
        (timedelta(days=30, seconds=5), "at most 30 days"),
    ):
        with pytest.raises(Unprocessable, match=problem) as refused:
            access_tokens.create_access_token(Access(svc), request(user.user_id, expires_in=expires_in))
        assert refused.value.details[0]["loc"] == ["body", "expiresAt"]
    created = access_tokens.create_access_token(
        Access(svc), request(user.user_id, expires_in=timedelta(days=30, seconds=-5))
    )
    assert created["jwt"]
    monkeypatch.setenv("KALLO_MAX_TOKEN_LIFETIME_DAYS", "1")
    get_settings.cache_clear()
    with pytest.raises(Unprocessable, match="at most 1 days"):
        access_tokens.create_access_token(Access(svc), request(user.user_id, expires_in=timedelta(days=2)))


# -- revoke ----------------------------------------------------------------------------------------


def test_the_creator_revokes_once_and_again_for_free(svc, aws_calls):
    user = make_user(admin=svc)
    created = access_tokens.create_access_token(Access(svc), request(user.user_id))
    aws_calls.reset()
    access_tokens.revoke_access_token(Access(svc), created["id"])
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}
    revoked_at = credentials.get_access_token(created["id"])["revokedAt"]
    assert revoked_at.endswith("Z")
    aws_calls.reset()
    access_tokens.revoke_access_token(Access(svc), created["id"])
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}
    assert credentials.get_access_token(created["id"])["revokedAt"] == revoked_at


def test_another_key_of_the_same_account_may_revoke(svc):
    user = make_user(admin=svc)
    created = access_tokens.create_access_token(Access(svc), request(user.user_id))
    same_account = Principal(user_id=svc.user_id, scheme="api_key", is_service_account=True)
    access_tokens.revoke_access_token(Access(same_account), created["id"])
    assert credentials.get_access_token(created["id"])["revokedAt"]


def test_only_the_creator_may_revoke(svc):
    user = make_user(admin=svc)
    created = access_tokens.create_access_token(Access(svc), request(user.user_id))
    other_svc, _ = make_service_account("other")
    # Not even the token's own user, through an API key of its own.
    as_user = Principal(user_id=user.user_id, scheme="api_key")
    for intruder in (other_svc, as_user):
        with pytest.raises(NotFound, match=f"access token {created['id']} not found"):
            access_tokens.revoke_access_token(Access(intruder), created["id"])
    assert "revokedAt" not in credentials.get_access_token(created["id"])
    with pytest.raises(NotFound):
        access_tokens.revoke_access_token(Access(svc), "497f6eca-6276-4993-bfeb-53cbbbba6f08")
