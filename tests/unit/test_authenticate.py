"""The REST authorizer (functions/auth/authorizer.py, driven with events/auth/authorizer.json) and
`kallo.auth.authenticate` behind it: the three schemes, every way a credential must be refused, and the
credential cache that bounds how long a revoked credential keeps working."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from kallo.auth import authenticate, tokens
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import iso, now
from kallo.errors import Unauthorized
from kallo.models.auth import AccessTokenCreate
from kallo.services import access_tokens
from kallo.services import credentials as service_accounts
from kallo.settings import get_settings
from kallo.store import credentials
from tests.support.api import LambdaContext, sample_event
from tests.support.aws import fresh_account
from tests.support.oidc import OidcIssuer, hs256_with_raw_key, rsa_key, unsigned, with_payload
from tests.support.world import make_service_account, make_user, ref_of

authorizer = importlib.import_module("auth.authorizer")
ORIGIN = "https://myapp.foo.com"
FIREBASE_ID = "firebase-uid-0001"


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    issuer = OidcIssuer()
    yield issuer
    issuer.close()


@dataclass
class World:
    issuer: OidcIssuer
    service_account: Principal
    api_key: str
    user: Principal  # registered through the OIDC issuer (firebaseId FIREBASE_ID)
    token_id: str
    jwt: str  # an access token for `user`, scope {user}, allowOrigin ORIGIN

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of an access token for the world's token; a None value removes the claim."""
        settings, moment = get_settings(), int(time.time())
        claims = {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "sub": self.user.user_id,
            "jti": self.token_id,
            "iat": moment,
            "exp": moment + 600,
            "scope": [{"type": "user", "id": self.user.user_id}],
            **overrides,
        }
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: bytes | None = None) -> str:
        # By hand: pyjwt would refuse to encode some of the malformed claims the tests need.
        return hs256_with_raw_key(claims, key or tokens.signing_key())


def build_world(issuer: OidcIssuer, monkeypatch: pytest.MonkeyPatch) -> World:
    """In a fresh account: trust `issuer`, then a service account with a key, its user, a token."""
    monkeypatch.setenv("KALLO_OIDC_ISSUERS", issuer.configuration())
    get_settings.cache_clear()
    svc, key = make_service_account()
    user = make_user(firebase_id=FIREBASE_ID, email="pat@example.com", admin=svc)
    created = mint(svc, user.user_id, allowOrigin=ORIGIN)
    return World(issuer, svc, key, user, created["id"], created["jwt"])


@pytest.fixture
def world(aws, monkeypatch, issuer) -> World:
    return build_world(issuer, monkeypatch)


def mint(svc: Principal, user_id: str, **fields: Any) -> dict[str, str]:
    data = AccessTokenCreate.model_validate(
        {
            "userId": user_id,
            "scopeObjects": [{"type": "user", "id": user_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
            **fields,
        }
    )
    return access_tokens.create_access_token(Access(svc), data)


def authorize(headers: dict[str, str], query: dict[str, str] | None = None) -> dict[str, Any]:
    """The authorizer's answer to a request with these headers (the sample event's are replaced)."""
    event = sample_event("auth.authorizer")
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return authorizer.lambda_handler(event, LambdaContext())


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_allowed(answer: dict[str, Any], principal_id: str) -> dict[str, Any]:
    assert answer["principalId"] == principal_id
    assert answer["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": "execute-api:Invoke",
                "Effect": "Allow",
                "Resource": sample_event("auth.authorizer")["methodArn"],
            }
        ],
    }
    context = answer["context"]
    # API Gateway accepts only flat string / number / boolean context values.
    assert all(isinstance(v, str | bool | int) for v in context.values())
    return context


# -- accepted --------------------------------------------------------------------------------------


def test_an_api_key_is_a_service_account(world, aws_calls):
    aws_calls.reset()
    context = assert_allowed(authorize({"x-api-key": world.api_key}), world.service_account.user_id)
    assert context == {"scheme": "api_key", "isServiceAccount": True, "userId": world.service_account.user_id}
    # The key's record, and the request counted against the principal's rate (I10).
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}


def test_an_access_token_is_its_user_within_its_scope(world, aws_calls):
    aws_calls.reset()
    context = assert_allowed(authorize(bearer(world.jwt)), world.user.user_id)
    assert context == {
        "scheme": "access_token",
        "isServiceAccount": False,
        "userId": world.user.user_id,
        "allowOrigin": ORIGIN,
        "tokenId": world.token_id,
        "scope": json.dumps([["user", world.user.user_id]], separators=(",", ":")),
    }
    # The record (the signing key is cached), and the request counted against the rate.
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}
    # What the functions rebuild from the context is the principal the authorizer saw.
    principal = Principal.from_context({k: str(v) if isinstance(v, bool) else v for k, v in context.items()})
    assert principal == authenticate.authenticate(bearer(world.jwt))
    assert principal.scope == (ref_of(world.user),)


def test_an_access_token_in_the_query_or_with_a_lowercase_scheme(world):
    """Browsers cannot set headers on a WebSocket: `?token=` carries the token there."""
    assert authorize({}, {"token": world.jwt})["principalId"] == world.user.user_id
    assert authorize({"Authorization": f"bearer {world.jwt}"})["principalId"] == world.user.user_id


def test_an_oidc_id_token_is_the_user_with_that_firebase_id(world, aws_calls):
    token = world.issuer.mint(FIREBASE_ID, email="pat@example.com")
    aws_calls.reset()
    context = assert_allowed(authorize(bearer(token)), world.user.user_id)
    assert context == {
        "scheme": "oidc",
        "isServiceAccount": False,
        "userId": world.user.user_id,
        "firebaseId": FIREBASE_ID,
        "issuer": world.issuer.issuer,
        "email": "pat@example.com",
        "emailVerified": True,
    }
    # The identity's claim, then the user; the request counted against the rate.
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 2, "dynamodb:UpdateItem": 1}
    principal = Principal.from_context({k: str(v) if isinstance(v, bool) else v for k, v in context.items()})
    assert principal == authenticate.authenticate(bearer(token))
    assert principal.issuer == world.issuer.issuer and principal.email_verified is True


@pytest.mark.parametrize("claimed", ["true", "false", "True", 1, None, [True], {"value": True}])
def test_email_verified_is_only_the_json_value_true(world, claimed):
    """I2: the string "false" (or anything but JSON true) verifies nothing."""
    token = world.issuer.sign(
        {**world.issuer.claims("fb-claims", email="x@example.com"), "email_verified": claimed}
    )
    principal = authenticate.authenticate(bearer(token))
    assert principal.email_verified is False
    assert "emailVerified" not in authorize(bearer(token))["context"]


def test_the_same_sub_from_another_issuer_is_someone_else(world, monkeypatch):
    """Finding 7 (I2): a user is (issuer, sub); another issuer's token with the same `sub` is not it."""
    other = OidcIssuer(issuer="https://other-issuer.test.kallo")
    try:
        configured = json.loads(world.issuer.configuration()) + json.loads(other.configuration())
        monkeypatch.setenv("KALLO_OIDC_ISSUERS", json.dumps(configured))
        get_settings.cache_clear()
        assert authenticate.authenticate(bearer(world.issuer.mint(FIREBASE_ID))).user_id == world.user.user_id
        stranger = authenticate.authenticate(bearer(other.mint(FIREBASE_ID, email="pat@example.com")))
        assert stranger.user_id is None and stranger.firebase_id == FIREBASE_ID
        assert stranger.issuer == other.issuer
    finally:
        other.close()


def test_an_oidc_identity_without_a_user_may_only_register(world, aws_calls):
    token = world.issuer.mint("not-registered-yet", email_verified=False)
    context = assert_allowed(authorize(bearer(token)), "oidc:not-registered-yet")
    assert "userId" not in context and "emailVerified" not in context
    assert context["firebaseId"] == "not-registered-yet" and context["scheme"] == "oidc"
    # Never cached: once its user exists, the very next request sees it.
    make_user(firebase_id="not-registered-yet")
    assert "userId" in authorize(bearer(token))["context"]


# -- refused ---------------------------------------------------------------------------------------


def _revoked(w: World) -> dict[str, str]:
    created = mint(w.service_account, w.user.user_id)
    access_tokens.revoke_access_token(Access(w.service_account), created["id"])
    return bearer(created["jwt"])


def _record_of_another_user(w: World) -> dict[str, str]:
    """A record minted for someone else, and a token naming our user with that record's id."""
    other = mint(w.service_account, make_user(admin=w.service_account).user_id)
    return bearer(w.sign(w.claims(jti=other["id"])))


def _payload_not_an_object(w: World) -> dict[str, str]:
    header, _, signature = w.jwt.split(".")
    return bearer(f"{header}.WzEsMiwzXQ.{signature}")  # base64url of [1,2,3]


# Each case: how to build the request's headers, and why `authenticate` refuses them (so that a case
# cannot pass for the wrong reason).
REFUSED: dict[str, tuple[Callable[[World], dict[str, str]], str]] = {
    "no credentials": (lambda w: {}, "credentials are required"),
    "empty api key": (lambda w: {"x-api-key": ""}, "credentials are required"),
    "basic scheme": (lambda w: {"authorization": "Basic dXNlcjpwYXNz"}, "must be `Bearer <token>`"),
    "bearer without token": (lambda w: {"authorization": "Bearer"}, "must be `Bearer <token>`"),
    "bearer with blank token": (lambda w: {"authorization": "Bearer    "}, "must be `Bearer <token>`"),
    "token scheme": (lambda w: {"authorization": f"Token {w.jwt}"}, "must be `Bearer <token>`"),
    "not a jwt": (lambda w: bearer("not-a-jwt"), "not a JWT"),
    "three garbage segments": (lambda w: bearer("a.b.c"), "not a JWT"),
    "payload not an object": (_payload_not_an_object, "not a JWT"),
    "unknown api key": (lambda w: {"x-api-key": "kallo_not_a_key_we_issued_000000"}, "API key is not valid"),
    "malformed api key": (lambda w: {"x-api-key": "short"}, "API key is not valid"),
    "huge api key": (lambda w: {"x-api-key": "kallo_" + "x" * 10_000}, "API key is not valid"),
    "alg none": (lambda w: bearer(unsigned(w.claims())), "alg value is not allowed"),
    "alg none, oidc issuer": (
        lambda w: bearer(unsigned(w.issuer.claims(FIREBASE_ID))),
        "algorithm not allowed",
    ),
    "wrong hmac key": (
        lambda w: bearer(w.sign(w.claims(), b"another-key-entirely-0123456789abcdef")),
        "Signature verification failed",
    ),
    "tampered payload": (
        lambda w: bearer(with_payload(w.jwt, w.claims(exp=int(time.time()) + 86_400 * 365))),
        "Signature verification failed",
    ),
    "tampered scope": (
        lambda w: bearer(with_payload(w.jwt, w.claims(scope=[]))),
        "Signature verification failed",
    ),
    "expired": (
        lambda w: bearer(w.sign(w.claims(iat=int(time.time()) - 600, exp=int(time.time()) - 60))),
        "Signature has expired",
    ),
    "revoked": (_revoked, "revoked"),
    "unknown jti": (lambda w: bearer(w.sign(w.claims(jti=str(uuid4())))), "revoked"),
    "record of another user": (_record_of_another_user, "revoked"),
    "wrong iss": (lambda w: bearer(w.sign(w.claims(iss="https://evil.example"))), "issuer is not accepted"),
    "iss not a string": (
        lambda w: bearer(w.sign(w.claims(iss=[get_settings().jwt_issuer]))),
        "issuer is not accepted",
    ),
    "no iss": (lambda w: bearer(w.sign(w.claims(iss=None))), "issuer is not accepted"),
    "wrong aud": (lambda w: bearer(w.sign(w.claims(aud="someone-else"))), "Audience doesn't match"),
    "no aud": (lambda w: bearer(w.sign(w.claims(aud=None))), 'missing the "aud" claim'),
    "no jti": (lambda w: bearer(w.sign(w.claims(jti=None))), 'missing the "jti" claim'),
    "jti not a string": (lambda w: bearer(w.sign(w.claims(jti=12345))), "JWT ID must be a string"),
    "no exp": (lambda w: bearer(w.sign(w.claims(exp=None))), 'missing the "exp" claim'),
    "exp not a number": (lambda w: bearer(w.sign(w.claims(exp="tomorrow"))), "(exp) must be an integer"),
    "no sub": (lambda w: bearer(w.sign(w.claims(sub=None))), 'missing the "sub" claim'),
    "no iat": (lambda w: bearer(w.sign(w.claims(iat=None))), 'missing the "iat" claim'),
    "oidc unknown kid": (
        lambda w: bearer(w.issuer.mint(FIREBASE_ID, kid="unknown-kid")),
        "Unable to find a signing key",
    ),
    "oidc signed by another rsa key": (
        lambda w: bearer(w.issuer.mint(FIREBASE_ID, key=rsa_key())),
        "Signature verification failed",
    ),
    "oidc unconfigured issuer": (
        lambda w: bearer(w.issuer.mint(FIREBASE_ID, iss="https://unknown.example")),
        "issuer is not accepted",
    ),
    "oidc wrong aud": (
        lambda w: bearer(w.issuer.mint(FIREBASE_ID, aud="someone-else")),
        "Audience doesn't match",
    ),
    "oidc expired": (
        lambda w: bearer(w.issuer.mint(FIREBASE_ID, exp=int(time.time()) - 60)),
        "Signature has expired",
    ),
    "oidc no sub": (
        lambda w: bearer(w.issuer.sign({**w.issuer.claims(FIREBASE_ID), "sub": None})),
        'missing the "sub" claim',
    ),
    "oidc sub not a string": (
        lambda w: bearer(w.issuer.sign({**w.issuer.claims(FIREBASE_ID), "sub": 1234})),
        "Subject must be a string",
    ),
    "key confusion, oidc iss": (
        lambda w: bearer(
            hs256_with_raw_key(w.issuer.claims(FIREBASE_ID), w.issuer.public_pem, kid=w.issuer.key_id)
        ),
        "algorithm not allowed",
    ),
    "key confusion, our iss": (
        lambda w: bearer(hs256_with_raw_key(w.claims(), w.issuer.public_pem, kid=w.issuer.key_id)),
        "Signature verification failed",
    ),
    "rs256 token with our iss": (lambda w: bearer(w.issuer.sign(w.claims())), "alg value is not allowed"),
}


def assert_refused(headers: dict[str, str], query: dict[str, str] | None = None) -> None:
    # API Gateway answers 401 for exactly this exception (type Exception, message Unauthorized).
    with pytest.raises(Exception, match=r"^Unauthorized$") as refused:
        authorize(headers, query)
    assert type(refused.value) is Exception


class TestRefused:
    """The cases share one account (they only add to it): provisioning one each would cost most of
    their time."""

    @pytest.fixture(scope="class")
    def shared(self, issuer: OidcIssuer) -> Iterator[World]:
        with fresh_account(), pytest.MonkeyPatch.context() as monkeypatch:
            yield build_world(issuer, monkeypatch)

    @pytest.fixture(autouse=True)
    def _forget(self) -> None:
        authenticate.forget_cached_credentials()

    @pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
    def test_refused_credentials_raise_unauthorized(self, shared: World, case: str) -> None:
        make, reason = REFUSED[case]
        headers = make(shared)
        assert_refused(headers)
        with pytest.raises(Unauthorized) as refused:
            authenticate.authenticate(headers)
        message, cause = refused.value.message, str(refused.value.__cause__)
        if message in ("the access token is not valid", "the ID token is not valid"):
            # A token's flaw is logged, never told (I7): the message names only the kind of token.
            assert reason in cause and cause not in message
        else:
            assert reason in message

    def test_a_garbage_token_in_the_query_is_refused(self, shared: World) -> None:
        assert_refused({}, {"token": "garbage"})

    def test_the_valid_originals_of_the_refused_cases_pass(self, shared: World) -> None:
        """The refused cases differ from these in one point each, so that point is what is refused."""
        assert authorize(bearer(shared.jwt))["principalId"] == shared.user.user_id
        assert authorize(bearer(shared.sign(shared.claims())))["principalId"] == shared.user.user_id
        assert authorize(bearer(shared.issuer.mint(FIREBASE_ID)))["principalId"] == shared.user.user_id
        assert authorize({"x-api-key": shared.api_key})["principalId"] == shared.service_account.user_id


def test_a_refused_token_says_why_only_in_the_log(world, monkeypatch):
    """I7: the 401's message names the kind of token, never the JWT library's reason; the log does."""
    # What the module logs, whatever the logging configuration other tests left in the process.
    logged: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        authenticate.logger,
        "info",
        lambda message, *_, **kwargs: logged.append((message, kwargs.get("extra", {}))),
    )
    forged = world.sign(world.claims(), b"another-key-entirely-0123456789abcdef")
    expired = world.issuer.mint(FIREBASE_ID, exp=int(time.time()) - 60)
    for token, message in ((forged, "the access token is not valid"), (expired, "the ID token is not valid")):
        with pytest.raises(Unauthorized) as refused:
            authenticate.authenticate(bearer(token))
        assert refused.value.message == message
    reasons = [extra.get("reason") for message, extra in logged if message == "bearer token refused"]
    assert reasons == ["Signature verification failed", "Signature has expired"]


def test_a_refusal_is_not_cached(world):
    """A key refused once works as soon as it exists (no negative caching)."""
    key = "kallo_issued_after_a_first_try_0001"
    with pytest.raises(Unauthorized):
        authenticate.authenticate({"x-api-key": key})
    service_accounts.issue_api_key(world.service_account.user_id, key=key)
    assert authenticate.authenticate({"x-api-key": key}).user_id == world.service_account.user_id


# -- the credential cache --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The cache's clock only: JWT expiry keeps checking the real time."""
    fake = Clock()
    monkeypatch.setattr(authenticate, "time", SimpleNamespace(time=fake.time))
    return fake


def test_a_revoked_token_works_until_the_cache_entry_expires_at_60_s(world, clock, aws_calls):
    assert get_settings().credential_cache_seconds == 60
    started = clock.now
    assert authenticate.authenticate(bearer(world.jwt)).user_id == world.user.user_id
    credentials.revoke_access_token(world.token_id, iso(now()))
    aws_calls.reset()
    clock.now = started + 59.9
    assert authenticate.authenticate(bearer(world.jwt)).user_id == world.user.user_id
    assert aws_calls.total == 0  # served from the cache
    clock.now = started + 60
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate.authenticate(bearer(world.jwt))
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}


def test_a_revoked_token_is_refused_once_the_cache_is_reset(world):
    authenticate.authenticate(bearer(world.jwt))
    access_tokens.revoke_access_token(Access(world.service_account), world.token_id)
    authenticate.forget_cached_credentials()
    assert_refused(bearer(world.jwt))


def test_a_deleted_api_key_stops_working_within_60_s(world, clock):
    started = clock.now
    assert authenticate.authenticate({"x-api-key": world.api_key}).is_service_account
    service_accounts.revoke_api_key(world.api_key)
    clock.now = started + 59
    assert authenticate.authenticate({"x-api-key": world.api_key}).is_service_account
    clock.now = started + 60
    with pytest.raises(Unauthorized):
        authenticate.authenticate({"x-api-key": world.api_key})


def test_a_cache_entry_never_outlives_the_token(world, clock, aws_calls):
    expires_at = datetime.now(UTC) + timedelta(seconds=30)
    short = mint(world.service_account, world.user.user_id, expiresAt=expires_at.isoformat())
    started = clock.now
    authenticate.authenticate(bearer(short["jwt"]))
    aws_calls.reset()
    clock.now = started + 20
    authenticate.authenticate(bearer(short["jwt"]))
    assert aws_calls.total == 0
    # Past the token's `exp` on the cache's clock (the real clock still accepts it): read again.
    clock.now = int(expires_at.timestamp()) + 0.5
    authenticate.authenticate(bearer(short["jwt"]))
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}


def test_the_cache_bound_follows_the_setting(world, clock, monkeypatch, aws_calls):
    monkeypatch.setenv("KALLO_CREDENTIAL_CACHE_SECONDS", "5")
    get_settings.cache_clear()
    started = clock.now
    authenticate.authenticate({"x-api-key": world.api_key})
    aws_calls.reset()
    clock.now = started + 4.9
    authenticate.authenticate({"x-api-key": world.api_key})
    assert aws_calls.total == 0
    clock.now = started + 5
    authenticate.authenticate({"x-api-key": world.api_key})
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}


def test_every_entry_is_bounded_by_60_s(world, clock, aws_calls):
    """Whatever the credential (an API key never expires; this token lives an hour), 60 s at most."""
    headers = [{"x-api-key": world.api_key}, bearer(world.jwt), bearer(world.issuer.mint(FIREBASE_ID))]
    started = clock.now
    for h in headers:
        authenticate.authenticate(h)
    aws_calls.reset()
    clock.now = started + 59.99
    for h in headers:
        authenticate.authenticate(h)
    assert aws_calls.total == 0
    clock.now = started + 60
    for h in headers:
        authenticate.authenticate(h)
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 4}  # key, token record, firebase id + user
