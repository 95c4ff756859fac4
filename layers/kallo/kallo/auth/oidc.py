"""ID tokens from configured OpenID Connect issuers (Firebase, Cognito, any OIDC provider), verified
against the issuer's JWKS with a pinned asymmetric algorithm."""

from __future__ import annotations

from typing import Any

import jwt

from kallo.settings import OidcIssuer

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


def _jwks_client(issuer: OidcIssuer) -> jwt.PyJWKClient:
    # PyJWKClient caches the key set and refetches it when it meets an unknown `kid`.
    if issuer.jwks_uri not in _jwks_clients:
        _jwks_clients[issuer.jwks_uri] = jwt.PyJWKClient(
            issuer.jwks_uri, cache_keys=True, lifespan=3600, timeout=5
        )
    return _jwks_clients[issuer.jwks_uri]


def verify(token: str, issuer: OidcIssuer) -> dict[str, Any]:
    """The token's claims; raises `jwt.InvalidTokenError` (or `jwt.PyJWKClientError`) otherwise."""
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in ALGORITHMS:
        raise jwt.InvalidAlgorithmError("algorithm not allowed")
    signing_key = _jwks_client(issuer).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=ALGORITHMS,
        audience=issuer.audience,
        issuer=issuer.issuer,
        options={"require": REQUIRED_CLAIMS},
    )
