"""Object items (users, teams, topics, convos, prompts, data sources): access patterns 1 and 2.

An object item keeps its API fields as they are returned (camelCase), plus `entity` and the key
attributes, which `public` strips before the data leaves the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import Page, table

_INTERNAL = frozenset({"PK", "SK", "GSI1PK", "GSI1SK", "entity", "ttl", "version"})


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


def item(ref: Ref, fields: dict[str, Any]) -> dict[str, Any]:
    """A full object item ready to write (for `Table.put` or a transaction)."""
    return {**keys.object_key(ref), "entity": ref.type, **fields, "id": ref.id}


def get(ref: Ref, *, consistent: bool = False) -> dict[str, Any] | None:
    """The object (None when it does not exist); `consistent` reads it strongly consistently (a write
    may have made or deleted it milliseconds ago)."""
    found = table().get(keys.object_key(ref), consistent=consistent)
    return public(found) if found else None


def batch_get(refs: list[Ref]) -> dict[Ref, dict[str, Any]]:
    """The objects that exist among `refs`, keyed by ref."""
    found = table().batch_get(keys.object_key(r) for r in refs)
    return {Ref(i["entity"], i["id"]): public(i) for i in found}


def update(ref: Ref, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> dict[str, Any]:
    return public(table().update(keys.object_key(ref), changes, remove=remove))


def update_if_unset(ref: Ref, changes: dict[str, Any], *, field: str) -> dict[str, Any]:
    """`update`, only while the object's `field` is empty; raises `Conflict` otherwise (or when the
    object is gone)."""
    return update_if_unchanged(ref, changes, field=field, expected="")


def update_if_unchanged(ref: Ref, changes: dict[str, Any], *, field: str, expected: Any) -> dict[str, Any]:
    """`update`, only while the object's `field` still holds `expected` (as read; None: absent), an
    optimistic check for a read-modify-write; raises `Conflict` otherwise (or when the object is gone)."""
    return public(table().update(keys.object_key(ref), changes, expect=((field,), expected)))


def partition(ref: Ref) -> list[dict[str, Any]]:
    """Every item of the object's partition (the item itself, its grants, invitations, and what else
    is keyed under `OBJ#<type>#<id>`), as stored, keys included."""
    return table().query_all(keys.object_pk(ref))


def partition_page(ref: Ref, start_key: dict[str, Any] | None = None) -> Page:
    """One page (at most 1 MB) of the object's partition, as stored, keys included."""
    return table().query(keys.object_pk(ref), start_key=start_key)


def delete(ref: Ref) -> None:
    """Delete the object's item (nothing else of its partition), whether or not it exists."""
    table().delete(keys.object_key(ref))


def exists_check(ref: Ref) -> dict[str, Any]:
    """A transaction's condition that the object exists (a write that must not outlive it)."""
    return {"check": keys.object_key(ref), "exists": True}


def create_with_owner(item: dict[str, Any], owner_grant: dict[str, Any]) -> None:
    """Write a new object item (`item`) and its owner grant (`kallo.store.grants.item`) in one
    transaction; raises `Conflict` when the object exists already."""
    table().transact([{"put": item, "new": True}, {"put": owner_grant}])


def delete_with_grants(ref: Ref, grantees: Iterable[Ref], *, must_exist: bool = True) -> None:
    """Delete an object and its grants to `grantees` (its owner's, so it leaves the owner's lists at
    once) in one transaction. With `must_exist`, raises `Conflict` when the object is gone."""
    operations: list[dict[str, Any]] = [
        {"delete": keys.object_key(ref), **({"exists": True} if must_exist else {})}
    ]
    operations += [{"delete": keys.grant_key(ref, grantee)} for grantee in grantees]
    table().transact(operations)
