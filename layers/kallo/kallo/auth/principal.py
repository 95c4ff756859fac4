"""The authenticated caller, as the authorizer hands it to every function through the request context."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from kallo.store.keys import Ref

Scheme = Literal["api_key", "access_token", "oidc", "app_key"]


@dataclass(frozen=True)
class Principal:
    """Who is calling. `user_id` is None only for an OIDC identity that has no user yet (it may then
    only create its user through Get/Create a User). `scope` is None when unrestricted; for an access
    token it is the token's scope objects. An OIDC identity is `issuer` and `firebase_id` (its `sub`)
    together (I2); `email_verified` is true only when the issuer said exactly `true`."""

    user_id: str | None
    scheme: Scheme
    is_service_account: bool = False
    scope: tuple[Ref, ...] | None = None
    allow_origin: str | None = None
    token_id: str | None = None
    firebase_id: str | None = None
    issuer: str | None = None
    email: str | None = None
    email_verified: bool = False
    # The caller's own user id when this principal acts for another user (`acting_as`).
    caller_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_context(self) -> dict[str, str | bool | int]:
        """The authorizer's `context`: API Gateway allows only flat string/number/boolean values."""
        context: dict[str, str | bool | int] = {
            "scheme": self.scheme,
            "isServiceAccount": self.is_service_account,
        }
        for name, value in (
            ("userId", self.user_id),
            ("allowOrigin", self.allow_origin),
            ("tokenId", self.token_id),
            ("firebaseId", self.firebase_id),
            ("issuer", self.issuer),
            ("email", self.email),
        ):
            if value:
                context[name] = value
        if self.email_verified:
            context["emailVerified"] = True
        if self.scope is not None:
            context["scope"] = json.dumps([[r.type, r.id] for r in self.scope], separators=(",", ":"))
        return context

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> Principal:
        scope = context.get("scope")
        return cls(
            user_id=context.get("userId") or None,
            scheme=context["scheme"],
            is_service_account=_truthy(context.get("isServiceAccount")),
            scope=tuple(Ref(t, i) for t, i in json.loads(scope)) if scope else None,
            allow_origin=context.get("allowOrigin") or None,
            token_id=context.get("tokenId") or None,
            firebase_id=context.get("firebaseId") or None,
            issuer=context.get("issuer") or None,
            email=context.get("email") or None,
            email_verified=_truthy(context.get("emailVerified")),
        )

    def acting_as(self, user_id: str) -> Principal:
        """The same caller acting for another user it has authority over (no scope widening)."""
        return Principal(
            user_id=user_id,
            scheme=self.scheme,
            scope=self.scope,
            allow_origin=self.allow_origin,
            caller_id=self.caller_id or self.user_id,
        )


def _truthy(value: Any) -> bool:
    # API Gateway turns context booleans into strings on the way to the function.
    return value is True or str(value).lower() == "true"
