"""API keys and access-token records (access patterns 10 and 11)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import keys
from kallo.store.table import table


def put_api_key(key_hash: str, record: dict[str, Any]) -> None:
    item = {
        **keys.api_key_key(key_hash),
        "GSI1PK": keys.api_keys_of_user_pk(record["userId"]),
        "GSI1SK": record["createdAt"],
        "entity": "api_key",
        **record,
    }
    table().put(item, must_not_exist=True)


def get_api_key(key_hash: str) -> dict[str, Any] | None:
    return table().get(keys.api_key_key(key_hash))


def api_keys_of_user(user_id: str) -> list[dict[str, Any]]:
    return table().query_all(keys.api_keys_of_user_pk(user_id), index="GSI1")


def delete_api_key(key_hash: str) -> None:
    table().delete(keys.api_key_key(key_hash))


def put_access_token(record: dict[str, Any], *, ttl: int) -> None:
    item = {
        **keys.access_token_key(record["id"]),
        "GSI1PK": keys.access_tokens_of_creator_pk(record["createdBy"]),
        "GSI1SK": record["createdAt"],
        "entity": "access_token",
        "ttl": ttl,
        **record,
    }
    table().put(item, must_not_exist=True)


def get_access_token(token_id: str) -> dict[str, Any] | None:
    return table().get(keys.access_token_key(token_id))


def access_tokens(token_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The access-token records among these ids (pattern 11, many at once: one BatchGetItem)."""
    found = table().batch_get(keys.access_token_key(t) for t in token_ids)
    return {record["id"]: record for record in found}


def revoke_access_token(token_id: str, revoked_at: str) -> None:
    table().update(keys.access_token_key(token_id), {"revokedAt": revoked_at})
