"""Turn a request's credentials into a Principal, as the API Gateway authorizer does for every call.

A refusal names the kind of credential, never the JWT library's reason (which would tell an attacker
which part of a forged token to fix next, I7); the reason is logged.

Verified credentials are remembered in the container for at most `credential_cache_seconds` (and never
past their expiry), so a revoked key or token stops working within that time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

import jwt
from aws_lambda_powertools import Logger

from kallo.auth import api_keys, oidc, tokens
from kallo.auth.principal import Principal
from kallo.errors import Unauthorized
from kallo.settings import OidcIssuer, get_settings
from kallo.store import credentials, users
from kallo.store.keys import Ref

logger = Logger(child=True)
_cache: dict[str, tuple[float, Principal]] = {}
_MAX_CACHE_ENTRIES = 1024


def credential_from(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, str]:
    """(kind, value) of the credential a request carries: `x-api-key`, a bearer token in the
    `Authorization` header or, for browser WebSockets, a `token` query parameter."""
    lowered = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    if lowered.get("x-api-key"):
        return "api_key", lowered["x-api-key"].strip()
    authorization = lowered.get("authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be `Bearer <token>`")
        return "bearer", value.strip()
    if query.get("token"):
        return "bearer", query["token"].strip()
    raise Unauthorized("credentials are required: an x-api-key header or a bearer token")


def authenticate(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> Principal:
    kind, value = credential_from(headers, query or {})
    cache_key = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
    cached = _cache.get(cache_key)
    now = time.time()
    if cached and cached[0] > now:
        return cached[1]
    principal, expires_at = _api_key(value) if kind == "api_key" else _bearer(value)
    if principal.user_id is None:
        return principal  # an identity about to register: its user must be seen as soon as it exists
    if len(_cache) >= _MAX_CACHE_ENTRIES:
        _cache.clear()
    _cache[cache_key] = (min(expires_at, now + get_settings().credential_cache_seconds), principal)
    return principal


def forget_cached_credentials() -> None:
    _cache.clear()


def _api_key(key: str) -> tuple[Principal, float]:
    record = credentials.get_api_key(api_keys.hash_key(key)) if api_keys.looks_valid(key) else None
    if not record:
        raise Unauthorized("the API key is not valid")
    principal = Principal(user_id=record["userId"], scheme="api_key", is_service_account=True)
    return principal, float("inf")


def _bearer(token: str) -> tuple[Principal, float]:
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError as error:
        raise Unauthorized("the bearer token is not a JWT") from error
    settings = get_settings()
    if issuer == settings.jwt_issuer:
        return _access_token(token)
    for configured in settings.oidc_issuers:
        if configured.issuer == issuer:
            return _id_token(token, configured)
    raise Unauthorized("the token's issuer is not accepted")


def _access_token(token: str) -> tuple[Principal, float]:
    try:
        claims = tokens.verify(token)
    except jwt.InvalidTokenError as error:
        raise _refused("the access token is not valid", error) from error
    record = credentials.get_access_token(claims["jti"])
    if not record or record.get("revokedAt") or record["userId"] != claims["sub"]:
        raise Unauthorized("the access token has been revoked")
    principal = Principal(
        user_id=claims["sub"],
        scheme="access_token",
        scope=tuple(Ref(s["type"], s["id"]) for s in record["scopeObjects"]),
        allow_origin=record.get("allowOrigin"),
        token_id=claims["jti"],
    )
    return principal, float(claims["exp"])


def _id_token(token: str, issuer: OidcIssuer) -> tuple[Principal, float]:
    try:
        claims = oidc.verify(token, issuer)
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as error:
        raise _refused("the ID token is not valid", error) from error
    # I2 (identity): the user is the one of (issuer, sub); the same `sub` from another issuer is
    # someone else.
    user = users.find_by_identity(issuer.issuer, claims["sub"])
    email = claims.get("email")
    principal = Principal(
        user_id=user["id"] if user else None,
        scheme="oidc",
        firebase_id=claims["sub"],
        issuer=issuer.issuer,
        email=email if isinstance(email, str) else None,
        # I2: only the JSON value true counts; the strings "true" and "false" are not a verification.
        email_verified=claims.get("email_verified") is True,
    )
    return principal, float(claims["exp"])


def _refused(message: str, error: Exception) -> Unauthorized:
    """A refusal that names no reason (I7); the reason goes to the log."""
    logger.info("bearer token refused", extra={"refusal": message, "reason": str(error)})
    return Unauthorized(message)
