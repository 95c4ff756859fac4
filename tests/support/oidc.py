"""A test OpenID Connect issuer, and forged JWTs for the tests that must see them refused.

The issuer has an RSA key pair and serves its JWKS over HTTP on loopback: PyJWKClient refuses any
`jwksUri` that is not http(s) (pyjwt 2.10+), so a `file://` JWKS cannot be used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://issuer.test.kallo"
AUDIENCE = "kallo-test"
KEY_ID = "test-key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcIssuer:
    """Signs ID tokens with its RSA key and serves the matching JWKS at `jwks_uri` until `close()`."""

    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE, key_id: str = KEY_ID) -> None:
        self.issuer, self.audience, self.key_id = issuer, audience, key_id
        self.private_key = rsa_key()
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = {"keys": [{**public, "kid": key_id, "alg": "RS256", "use": "sig"}]}
        body = json.dumps(self.jwks).encode()

        class Jwks(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
        self.jwks_uri = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def public_pem(self) -> bytes:
        """The public key as PEM: what an attacker would try as an HMAC secret (key confusion)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def configuration(self) -> str:
        """The KALLO_OIDC_ISSUERS value that trusts this issuer."""
        return issuers_configuration([self])

    def entry(self) -> dict[str, str]:
        """This issuer's entry in KALLO_OIDC_ISSUERS."""
        return {"issuer": self.issuer, "audience": self.audience, "jwksUri": self.jwks_uri}

    def claims(
        self, sub: str, *, email: str | None = None, email_verified: bool | str = True
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + 600,
            "email": email or f"{sub}@example.com",
            "email_verified": email_verified,
        }

    def mint(
        self,
        sub: str,
        *,
        email: str | None = None,
        email_verified: bool | str = True,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """An ID token for `sub`; `claims` override or add claims (a value of None removes one);
        `key` / `kid` sign with another key or name another key id. `email_verified` may be a string,
        as some issuers send it (`"false"` must not read as true)."""
        payload = {**self.claims(sub, email=email, email_verified=email_verified), **claims}
        return self.sign(payload, key=key, kid=kid)

    def sign(
        self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None
    ) -> str:
        """Any claims (None values dropped), signed RS256 like the issuer's ID tokens."""
        payload = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": kid or self.key_id}
        return jwt.encode(payload, key or self.private_key, algorithm="RS256", headers=headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def issuers_configuration(issuers: Iterable[OidcIssuer]) -> str:
    """The KALLO_OIDC_ISSUERS value that trusts every one of `issuers`."""
    return json.dumps([issuer.entry() for issuer in issuers])


def _segment(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsigned(claims: dict[str, Any]) -> str:
    """An `alg: none` token (no signature at all)."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def hs256_with_raw_key(claims: dict[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """An HS256 token signed with any bytes. pyjwt refuses to use a PEM public key as an HMAC secret,
    so the key-confusion attack (RS256 → HS256 with the issuer's public key) is forged by hand."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """`token` with its payload replaced and its original signature kept (a tampered token)."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment(claims)}.{signature}"
