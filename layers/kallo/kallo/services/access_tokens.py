"""Access tokens (API.md, Authentication): minted by a service account for a user it has authority over
(I1, `services.authority`: itself or a user it created, nothing else), limited to scope objects that user
can view, revocable by their creator.

The token is a JWT (`kallo.auth.tokens`); its record (`TOKEN#<id>`) holds the scope, the allowed origin
and the revocation, and is read by the authorizer on every (uncached) use, so a revocation takes effect
within `credential_cache_seconds`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.clock import epoch_seconds, iso, now
from kallo.errors import Forbidden, NotFound, Unprocessable
from kallo.models.auth import AccessTokenCreate
from kallo.services import authority
from kallo.settings import get_settings
from kallo.store import credentials
from kallo.store.keys import Ref


def create_access_token(access: Access, data: AccessTokenCreate) -> dict[str, Any]:
    """Store the token's record and return `{id, jwt}`. 404 when the caller has no authority over the
    user or the user cannot view a scope object (either may exist; neither is revealed)."""
    _require_api_key(access)
    issued_at = now()
    _check_expiry(data.expires_at, issued_at)
    user = authority.acting_for(access, data.user_id)
    scope = list(dict.fromkeys(Ref(s.type.value, s.id) for s in data.scope_objects))
    user.preload(scope)  # one BatchGetItem for the user's grants on every scope object's chain
    for ref in scope:
        user.require(ref, Permission.can_view)
    record = {
        "id": str(uuid4()),
        "userId": data.user_id,
        "createdBy": access.principal.user_id,
        "scopeObjects": [{"type": ref.type, "id": ref.id} for ref in scope],
        "allowOrigin": data.allow_origin,
        "expiresAt": iso(data.expires_at),
        "createdAt": iso(issued_at),
    }
    # DynamoDB may drop the record once the token expires: from then on its `exp` refuses it anyway.
    credentials.put_access_token(record, ttl=epoch_seconds(data.expires_at))
    # Imported here: only minting needs PyJWT (and the cryptography it loads, about 50 ms of CPU at
    # cold start); Revoke Access Token deletes the record by id.
    from kallo.auth import tokens

    jwt = tokens.mint(
        token_id=record["id"],
        user_id=data.user_id,
        scope=record["scopeObjects"],
        issued_at=issued_at,
        expires_at=data.expires_at,
    )
    return {"id": record["id"], "jwt": jwt}


def revoke_access_token(access: Access, token_id: str) -> None:
    """Revoke a token the caller created; revoking it again is a no-op. Someone else's token is 404."""
    _require_api_key(access)
    record = credentials.get_access_token(token_id)
    if not record or record.get("createdBy") != access.principal.user_id:
        raise NotFound(f"access token {token_id} not found")
    if not record.get("revokedAt"):
        credentials.revoke_access_token(token_id, iso(now()))


def _require_api_key(access: Access) -> None:
    # Seed: both operations are ApiKeyAuth only, so a token can never mint or revoke tokens.
    if access.principal.scheme != "api_key":
        raise Forbidden("this operation needs an API key (x-api-key)", code="api_key_required")


def _check_expiry(expires_at: datetime, issued_at: datetime) -> None:
    days = get_settings().max_token_lifetime_days
    if expires_at <= issued_at:
        problem = "must be in the future"
    elif expires_at > issued_at + timedelta(days=days):
        problem = f"must be at most {days} days ahead"
    else:
        return
    raise Unprocessable(
        f"body.expiresAt: {problem}",
        details=[{"loc": ["body", "expiresAt"], "type": "value_error", "msg": problem}],
    )
