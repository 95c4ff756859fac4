"""Our access tokens: HS256 JWTs signed with a key kept in Secrets Manager.

The algorithm is pinned on both sides, and `iss`, `aud`, `exp`, `iat`, `jti` and `sub` are required, so
`alg: none`, a token signed with another key (including an issuer's RSA public key used as an HMAC
secret) or one missing a claim are all refused.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import jwt

from kallo import aws
from kallo.settings import get_settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "jti", "sub"]


@cache
def signing_key() -> bytes:
    secret = aws.client("secretsmanager").get_secret_value(SecretId=get_settings().jwt_secret_arn)
    return secret["SecretString"].encode()


def mint(
    *, token_id: str, user_id: str, scope: list[dict[str, str]], issued_at: datetime, expires_at: datetime
) -> str:
    settings = get_settings()
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "jti": token_id,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "scope": scope,
    }
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHM)


def verify(token: str) -> dict[str, Any]:
    """The token's claims; raises `jwt.InvalidTokenError` for anything not minted by us and current."""
    settings = get_settings()
    return jwt.decode(
        token,
        signing_key(),
        algorithms=[ALGORITHM],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": REQUIRED_CLAIMS},
    )
