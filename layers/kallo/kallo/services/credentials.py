"""Service accounts and their API keys: used by the local stack's bootstrap and the admin command."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from kallo.auth import api_keys
from kallo.clock import now_iso
from kallo.errors import NotFound
from kallo.store import credentials, users


def create_service_account(display_name: str, *, user_id: str | None = None) -> dict[str, Any]:
    user = {
        "id": user_id or str(uuid4()),
        "isServiceAccount": True,
        "displayName": display_name,
        "createdAt": now_iso(),
    }
    users.create(user)
    return user


def issue_api_key(
    user_id: str, *, key: str | None = None, name: str = "default"
) -> tuple[str, dict[str, Any]]:
    """Store a new key (or the given one) for a service account; returns the key and its record.
    The key itself is never stored: only its hash."""
    user = users.get(user_id)
    if not user or not user.get("isServiceAccount"):
        raise NotFound(f"service account {user_id} not found")
    key = key or api_keys.generate()
    key_hash = api_keys.hash_key(key)
    record = {
        "id": str(uuid4()),
        "userId": user_id,
        "name": name,
        "createdAt": now_iso(),
        "keyHash": key_hash,
    }
    credentials.put_api_key(key_hash, record)
    return key, record


def list_api_keys(user_id: str) -> list[dict[str, Any]]:
    return [
        {k: r[k] for k in ("id", "userId", "name", "createdAt")}
        for r in credentials.api_keys_of_user(user_id)
    ]


def revoke_api_key(key: str) -> None:
    key_hash = api_keys.hash_key(key)
    if not credentials.get_api_key(key_hash):
        raise NotFound("no such API key")
    credentials.delete_api_key(key_hash)


def revoke_api_key_by_id(user_id: str, key_id: str) -> None:
    for record in credentials.api_keys_of_user(user_id):
        if record["id"] == key_id:
            credentials.delete_api_key(record["keyHash"])
            return
    raise NotFound(f"no API key {key_id} for {user_id}")
