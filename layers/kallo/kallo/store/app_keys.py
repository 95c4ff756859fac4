"""App key records (access patterns 23 and 24): one item per key, keyed by the key's hash, and listed
by topic through GSI1."""

from __future__ import annotations

import contextlib
from typing import Any

from kallo.errors import Conflict, NotFound
from kallo.store import keys
from kallo.store.table import table


def put(key_hash: str, record: dict[str, Any]) -> None:
    item = {
        **keys.app_key_key(key_hash),
        "GSI1PK": keys.app_keys_of_topic_pk(record["topicId"]),
        "GSI1SK": f"{record['createdAt']}#{record['id']}",
        "entity": "app_key",
        **record,
    }
    table().put(item, must_not_exist=True)


def get(key_hash: str) -> dict[str, Any] | None:
    # A key is used right after it is made (and refused right after it is revoked): a strong read.
    return table().get(keys.app_key_key(key_hash), consistent=True)


def of_topic(topic_id: str) -> list[dict[str, Any]]:
    """A topic's app keys, oldest first."""
    return table().query_all(keys.app_keys_of_topic_pk(topic_id), index="GSI1")


def delete(key_hash: str) -> None:
    """Delete a key record; NotFound when it is gone already (revoked meanwhile)."""
    try:
        table().transact([{"delete": keys.app_key_key(key_hash), "exists": True}])
    except Conflict as error:
        raise NotFound("app key not found") from error


def touch(key_hash: str, last_used_at: str) -> None:
    """Record a use; nothing when the key was revoked meanwhile."""
    with contextlib.suppress(Conflict):
        table().update(keys.app_key_key(key_hash), {"lastUsedAt": last_used_at})


def delete_of_topic(topic_id: str) -> int:
    """Delete every app key of a (deleted) topic; returns how many there were."""
    return table().batch_delete({"PK": item["PK"], "SK": item["SK"]} for item in of_topic(topic_id))
