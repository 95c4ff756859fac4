"""Deleting the remains of a deleted object (`kallo.services.purge`): items given as they were read
(`objects.partition_page`, `grants.of_grantee`), deleted by their own keys, whatever their kind."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import keys
from kallo.store.table import table


def _key(item: dict[str, Any]) -> dict[str, str]:
    return {"PK": item["PK"], "SK": item["SK"]}


def delete_items(
    items: Iterable[dict[str, Any]], *, keep: dict[str, Any] | None = None, connections: Iterable[str] = ()
) -> int:
    """Delete the items but `keep` (an item to delete last, with `delete_item`), and the own items
    (`CONN#<id>`, `#META`) of the connections whose ids are `connections`, together in BatchWriteItems
    of 25, not atomically; returns how many deletes were asked for."""
    kept = _key(keep) if keep is not None else None
    doomed = [k for k in map(_key, items) if k != kept]
    return table().batch_delete(doomed + [keys.connection_key(c) for c in connections])


def delete_item(item: dict[str, Any]) -> None:
    """Delete one item as read (DeleteItem), e.g. an owned object's owner grant, kept for last."""
    table().delete(_key(item))
