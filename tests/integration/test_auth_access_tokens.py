"""Create / Revoke Access Token through their handlers, and the token's use afterwards."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from kallo.auth import authenticate
from kallo.auth.principal import Principal
from kallo.errors import Unauthorized
from kallo.store import credentials
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import make_object, make_service_account, make_user, ref_of

ORIGIN = "https://myapp.foo.com"
UNKNOWN_ID = "497f6eca-6276-4993-bfeb-53cbbbba6f08"


def body(user: Principal, *scope: Ref, **fields) -> dict:
    return {
        "userId": user.user_id,
        "scopeObjects": [{"type": r.type, "id": r.id} for r in (scope or [ref_of(user)])],
        "allowOrigin": ORIGIN,
        "expiresAt": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fields,
    }


def create(caller: Principal, payload: dict):
    return invoke("auth.create_access_token", caller, body=payload)


def revoke(caller: Principal, token_id: str):
    return invoke("auth.revoke_access_token", caller, path={"accessTokenId": token_id})


def bearer(jwt: str) -> Principal:
    return authenticate.authenticate({"Authorization": f"Bearer {jwt}"})


@pytest.fixture
def svc(aws):
    account, _ = make_service_account()
    return account


def test_create_returns_a_token_that_works_with_its_origin(svc, aws_calls):
    user = make_user(admin=svc)
    aws_calls.reset()
    result = create(svc, body(user))
    assert result.status == 201, result.body
    assert set(result.json) == {"id", "jwt"}
    # Authority (the user item), the user's grants on the scope, the record, the signing key.
    assert aws_calls.total == 4 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls["dynamodb:GetItem"] == 1
    assert aws_calls["dynamodb:PutItem"] == 1 and aws_calls["secretsmanager:GetSecretValue"] == 1
    # An API-key call itself gets no CORS origin: only tokens carry one.
    assert "access-control-allow-origin" not in result.headers

    principal = bearer(result.json["jwt"])
    assert principal.user_id == user.user_id and principal.scheme == "access_token"
    assert principal.scope == (ref_of(user),) and principal.allow_origin == ORIGIN
    assert principal.token_id == result.json["id"]
    team = invoke("teams.create_team", principal, body={"name": "With a token"})
    assert team.status == 201, team.body
    assert team.json["createdBy"] == user.user_id
    assert team.headers["access-control-allow-origin"] == ORIGIN


def test_a_token_limited_to_a_team_cannot_create_for_its_user(svc):
    user = make_user(admin=svc)
    team = make_object("team", ref_of(user))
    result = create(svc, body(user, team, allowOrigin="*"))
    assert result.status == 201, result.body
    principal = bearer(result.json["jwt"])
    assert principal.scope == (team,) and principal.allow_origin == "*"
    refused = invoke("teams.create_team", principal, body={"name": "Out of scope"})
    assert refused.status == 403 and refused.json["code"] == "out_of_scope"
    assert refused.headers["access-control-allow-origin"] == "*"


def test_without_allow_origin_the_header_is_omitted(svc):
    user = make_user(admin=svc)
    payload = body(user)
    del payload["allowOrigin"]
    principal = bearer(create(svc, payload).json["jwt"])
    assert principal.allow_origin is None
    team = invoke("teams.create_team", principal, body={"name": "No CORS"})
    assert team.status == 201 and "access-control-allow-origin" not in team.headers


def test_cross_tenant_probes_are_404(svc):
    other_svc, _ = make_service_account("other")
    theirs = make_user(admin=other_svc)
    their_team = make_object("team", ref_of(theirs))
    mine = make_user(admin=svc)
    # Someone else's user, with or without a scope that exists.
    for payload in (body(theirs), body(theirs, their_team)):
        result = create(svc, payload)
        assert result.status == 404 and result.json == {
            "code": "not_found",
            "message": f"user {theirs.user_id} not found",
        }
    # My user, someone else's team: the same answer as a team that does not exist.
    hidden = create(svc, body(mine, ref_of(mine), their_team))
    missing = create(svc, body(mine, ref_of(mine), Ref("team", UNKNOWN_ID)))
    assert hidden.status == missing.status == 404
    assert hidden.json["message"] == f"team {their_team.id} not found"
    assert missing.json["message"] == f"team {UNKNOWN_ID} not found"
    # Another user's user object, even one the same service account manages.
    sibling = make_user(admin=svc)
    assert create(svc, body(mine, ref_of(sibling))).status == 404


@pytest.mark.parametrize(
    "principal",
    [
        Principal(user_id="2c4a230c-5085-4924-a3e1-25fb4fc5965b", scheme="access_token", scope=()),
        Principal(user_id="2c4a230c-5085-4924-a3e1-25fb4fc5965b", scheme="oidc", firebase_id="f"),
        Principal(user_id=None, scheme="oidc", firebase_id="f"),
    ],
    ids=["access token", "oidc user", "unregistered oidc"],
)
def test_other_schemes_get_403_api_key_required(aws, principal):
    user = make_user()
    for result in (create(principal, body(user)), revoke(principal, UNKNOWN_ID)):
        assert result.status == 403 and result.json["code"] == "api_key_required", result.body


def test_no_credentials_is_401(aws):
    for result in (create(None, body(make_user())), revoke(None, UNKNOWN_ID)):
        assert result.status == 401 and result.json["code"] == "unauthorized"


def _bad_create_bodies(user_id: str) -> list[tuple[str, int]]:
    good = {
        "userId": user_id,
        "scopeObjects": [{"type": "user", "id": user_id}],
        "expiresAt": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    raw = [
        ("{bad", 400),
        ("", 422),
        ("[]", 422),
        ("null", 422),
        ('"text"', 422),
    ]
    variants = [
        {**good, "userId": "not-a-uuid"},
        {**good, "userId": 42},
        {**good, "userId": "x" * 100_000},
        {**good, "scopeObjects": []},
        {**good, "scopeObjects": {"type": "user", "id": user_id}},
        {**good, "scopeObjects": [{"type": "widget", "id": user_id}]},
        {**good, "scopeObjects": [{"type": "user", "id": "1234"}]},
        {**good, "scopeObjects": [{"type": "user", "id": user_id}] * 51},
        {**good, "scopeObjects": [None]},
        {**good, "allowOrigin": "https://myapp.foo.com/path"},
        {**good, "allowOrigin": "https://" + "a" * 100_000},
        {**good, "allowOrigin": ["*"]},
        {**good, "expiresAt": "2030-01-01T00:00:00"},
        {**good, "expiresAt": "soon"},
        {**good, "expiresAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        {**good, "expiresAt": (datetime.now(UTC) + timedelta(days=31)).isoformat()},
        {**good, "expiresAt": "9999-12-31T23:59:59Z"},
        {**good, "jwt": "mine"},
        {k: v for k, v in good.items() if k != "expiresAt"},
        {k: v for k, v in good.items() if k != "scopeObjects"},
    ]
    return raw + [(json.dumps(v), 422) for v in variants]


def test_create_bad_input_is_a_4xx_json_error(svc):
    user = make_user(admin=svc)
    for raw, status in _bad_create_bodies(user.user_id):
        result = invoke("auth.create_access_token", svc, raw_body=raw)
        assert result.status == status, (raw[:200], result.status, result.body)
        assert {"code", "message"} <= set(result.json), result.body
        assert result.json["code"] == ("malformed_json" if status == 400 else "validation_error")
    good = json.dumps(body(user))
    as_text = invoke("auth.create_access_token", svc, raw_body=good, headers={"content-type": "text/plain"})
    assert as_text.status == 415 and as_text.json == {
        "code": "unsupported_media_type",
        "message": "send application/json, not text/plain",
    }


def test_revoke_then_the_token_is_refused_once_the_cache_forgets_it(svc, aws_calls):
    user = make_user(admin=svc)
    created = create(svc, body(user)).json
    assert bearer(created["jwt"]).user_id == user.user_id  # now cached
    aws_calls.reset()
    result = revoke(svc, created["id"])
    assert result.status == 204 and result.body == ""
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}
    assert credentials.get_access_token(created["id"])["revokedAt"]
    # Within the cache bound the container may still accept it (see tests/unit/test_authenticate.py).
    assert bearer(created["jwt"]).user_id == user.user_id
    authenticate.forget_cached_credentials()
    with pytest.raises(Unauthorized):
        bearer(created["jwt"])
    # Revoking twice is fine, and costs one read.
    aws_calls.reset()
    assert revoke(svc, created["id"]).status == 204
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}


def test_revoke_someone_elses_or_an_unknown_token_is_404(svc):
    user = make_user(admin=svc)
    created = create(svc, body(user)).json
    other_svc, _ = make_service_account("other")
    for caller, token_id in ((other_svc, created["id"]), (svc, UNKNOWN_ID)):
        result = revoke(caller, token_id)
        assert result.status == 404 and result.json == {
            "code": "not_found",
            "message": f"access token {token_id} not found",
        }
    assert bearer(created["jwt"]).user_id == user.user_id


@pytest.mark.parametrize("token_id", ["not-a-uuid", "x" * 5000, "497f6eca-6276-4993-bfeb-53cbbbba6f0"])
def test_revoke_bad_id_is_422(svc, token_id):
    result = revoke(svc, token_id)
    assert result.status == 422 and result.json["code"] == "validation_error", result.body
