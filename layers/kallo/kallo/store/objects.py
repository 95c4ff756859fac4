"""Object items (users, teams, topics, convos, prompts, data sources): access patterns 1 and 2.

An object item keeps its API fields as they are returned (camelCase), plus `entity` and the key
attributes, which `public` strips before the data leaves the store.
"""

from __future__ import annotations

from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table

_INTERNAL = frozenset({"PK", "SK", "GSI1PK", "GSI1SK", "entity", "ttl", "version"})


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


def item(ref: Ref, fields: dict[str, Any]) -> dict[str, Any]:
    """A full object item ready to write (for `Table.put` or a transaction)."""
    return {**keys.object_key(ref), "entity": ref.type, **fields, "id": ref.id}


def get(ref: Ref) -> dict[str, Any] | None:
    found = table().get(keys.object_key(ref))
    return public(found) if found else None


def batch_get(refs: list[Ref]) -> dict[Ref, dict[str, Any]]:
    """The objects that exist among `refs`, keyed by ref."""
    found = table().batch_get(keys.object_key(r) for r in refs)
    return {Ref(i["entity"], i["id"]): public(i) for i in found}


def update(ref: Ref, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> dict[str, Any]:
    return public(table().update(keys.object_key(ref), changes, remove=remove))
