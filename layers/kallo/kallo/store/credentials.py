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


def live_records(
    token_ids: Iterable[str], key_hashes: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The access-token records (by id) and API-key records (by hash) among these, read together
    (patterns 10 and 11, many at once: one BatchGetItem per 100)."""
    hashes = list(key_hashes)
    wanted = record_keys(token_ids, hashes)
    return sort_records(table().batch_get(wanted) if wanted else [], hashes)


def record_keys(token_ids: Iterable[str], key_hashes: Iterable[str]) -> list[dict[str, str]]:
    """The keys of these access-token and API-key records (to read with other items, `live_records`)."""
    return [keys.access_token_key(t) for t in token_ids] + [keys.api_key_key(h) for h in key_hashes]


def sort_records(
    found: Iterable[dict[str, Any]], key_hashes: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The access-token records (by id) and API-key records (by hash) among items read."""
    hash_of = {keys.api_key_key(h)["PK"]: h for h in key_hashes}
    items = list(found)
    tokens = {r["id"]: r for r in items if r.get("entity") == "access_token"}
    api_keys = {hash_of[r["PK"]]: r for r in items if r.get("entity") == "api_key" and r["PK"] in hash_of}
    return tokens, api_keys


def revoke_access_token(token_id: str, revoked_at: str) -> None:
    table().update(keys.access_token_key(token_id), {"revokedAt": revoked_at})
