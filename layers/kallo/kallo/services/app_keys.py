"""App keys of a topic: Create, Query and Revoke App Keys (REST). The keys themselves are verified by
`kallo.auth.app_keys`, on the compatibility surfaces only.

All three need `can_edit` on the topic (404 when the caller cannot see it, 403 when it can but may not
edit it): a key is a credential that chats in the topic as any number of end users, so even listing
keys is for the topic's editors. An access token's scope must cover the topic (I3).

I1 (authority): a key records its tenant, `authority.tenant_of` its creator (a service account, or a
self-registered user, is its own tenant; a user a service account created belongs to that service
account). The key's end users are created by that tenant (`kallo.services.end_users`), so the tenant,
and no one else, has authority over them.

A revoked key is refused within `credential_cache_seconds` (60 s by default) by every container.

Costs in AWS calls (the topic check: 1 Query for its structural grants + 1 BatchGetItem for the
caller's grants, `kallo.authz.access`):
- Create: the check + 1 Query (the topic's keys, to bound their number) + 1 GetItem (the creator's user
  item; none for a service account) + 1 PutItem;
- Query: the check + 1 Query;
- Revoke: the check + 1 Query + 1 TransactWriteItems.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from kallo.auth import app_keys as keys_auth
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound
from kallo.models.app_keys import AppKeyCreate
from kallo.services import authority
from kallo.store import app_keys, users
from kallo.store.keys import Ref

# A topic has at most this many app keys (rotation needs two; a few apps may share a topic).
MAX_APP_KEYS = 20
_LISTED = ("id", "name", "topicId", "keyPrefix", "createdAt", "createdBy", "lastUsedAt")


def _require_topic(access: Access, topic_id: str) -> None:
    access.require(Ref(ObjectType.topic.value, topic_id), Permission.can_edit)


def _tenant_of_caller(access: Access) -> str:
    """The tenant of the caller: the one whose authority the key's end users come under (I1)."""
    principal = access.principal
    me = principal.user_id or ""
    if principal.is_service_account:
        return me
    user = users.get(me)
    if user is None:
        raise NotFound(f"user {me} not found")
    return authority.tenant_of(user)


def create_app_key(access: Access, topic_id: str, data: AppKeyCreate) -> dict[str, Any]:
    """A new key for the topic: the record without the secret is stored, the secret returned once."""
    _require_topic(access, topic_id)
    if len(app_keys.of_topic(topic_id)) >= MAX_APP_KEYS:
        raise Conflict(
            f"a topic has at most {MAX_APP_KEYS} app keys: revoke one first", code="too_many_app_keys"
        )
    key = keys_auth.generate()
    key_hash = keys_auth.hash_key(key)
    record = {
        "id": str(uuid4()),
        "name": data.name,
        "topicId": topic_id,
        "tenantId": _tenant_of_caller(access),
        "keyPrefix": keys_auth.shown_prefix(key),
        "keyHash": key_hash,
        "createdAt": now_iso(),
        "createdBy": access.principal.user_id or "",
    }
    app_keys.put(key_hash, record)
    return {**{k: record[k] for k in _LISTED if k in record}, "key": key}


def query_app_keys(access: Access, topic_id: str) -> list[dict[str, Any]]:
    """The topic's keys, oldest first, without their secrets."""
    _require_topic(access, topic_id)
    return [{k: r[k] for k in _LISTED if k in r} for r in app_keys.of_topic(topic_id)]


def revoke_app_key(access: Access, topic_id: str, app_key_id: str) -> None:
    """Delete the key; 404 when the topic has no key of that id (another topic's key included)."""
    _require_topic(access, topic_id)
    for record in app_keys.of_topic(topic_id):
        if record["id"] == app_key_id:
            app_keys.delete(record["keyHash"])
            keys_auth.forget(record["keyHash"])
            return
    raise NotFound(f"app key {app_key_id} not found")
