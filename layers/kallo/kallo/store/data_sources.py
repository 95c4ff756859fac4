"""What is written beside a data source item: its links to topics and convos, and its deletion.

A link is the data source's `dependent` grant to a topic or convo (access pattern 3 on
`OBJ#data_source#<id>` / `GRANT#<topic|convo>#<id>`; pattern 6 lists a target's data sources). A topic
also keeps the ids in its own `dataSourceIds` list, written in the same transaction as the link on
condition that the list is still as it was read (`ListChange`), so two links made at once never lose
an id. The item and what it owns are in S3 (`kallo.store.blobs`); its summary is in its partition
(`kallo.store.summaries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from kallo.store import keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table


class ListChange(NamedTuple):
    """A topic's `dataSourceIds` going from `before` (as read; None when it has none) to `after`, its
    `updatedAt` becoming `at`."""

    before: list[str] | None
    after: list[str]
    at: str


def _list_write(topic: Ref, change: ListChange) -> dict[str, Any]:
    """The write of a topic's new list, on condition that nobody changed it since it was read."""
    return {
        "update": keys.object_key(topic),
        "set": {"dataSourceIds": change.after, "updatedAt": change.at},
        "expect": (("dataSourceIds",), change.before),
    }


def link(data_source: Ref, target: Ref, *, grant: dict[str, Any] | None, listed: ListChange | None) -> None:
    """Link a data source to a topic or convo in one transaction, only while both objects exist (their
    grants can outlive them until the purge worker runs):
    - the target's list changes (`listed`, a topic's; its condition: the list as read) or, without
      one, the target's existence is checked;
    - the data source's existence is checked;
    - `grant` (`kallo.store.grants.item`, role `dependent`) is put, unless it is None (linked already).
    Raises `Conflict` when an object is gone or the list changed meanwhile."""
    operations = [
        _list_write(target, listed) if listed is not None else objects.exists_check(target),
        objects.exists_check(data_source),
    ]
    if grant is not None:
        operations.append({"put": grant})
    table().transact(operations)


def unlink(data_source: Ref, target: Ref, *, listed: ListChange | None) -> None:
    """Delete a data source's link to a topic or convo in one transaction: the link grant, which must
    still exist (a concurrent removal), and the target's list change (`listed`, on condition that the
    list is as read) or else the target's existence check. Raises `Conflict` otherwise."""
    operations: list[dict[str, Any]] = [
        {"delete": keys.grant_key(data_source, target), "exists": True},
        _list_write(target, listed) if listed is not None else objects.exists_check(target),
    ]
    table().transact(operations)


@dataclass
class Partition:
    """A data source's partition as one Query reads it (pattern 1's item, its grants, its summary).
    `item` and `grants` are as stored; `items` is everything, what a deletion removes."""

    item: dict[str, Any] | None
    grants: list[dict[str, Any]]
    items: list[dict[str, Any]]


def partition(data_source: Ref) -> Partition:
    """Everything in the data source's partition (`OBJ#data_source#<id>`), read with one Query (pages
    followed)."""
    found = objects.partition(data_source)
    return Partition(
        item=next((i for i in found if i["SK"] == keys.META), None),
        grants=[i for i in found if i.get("entity") == "grant"],
        items=found,
    )


def delete(
    data_source: Ref,
    found: Partition,
    *,
    owner: Ref | None,
    location: str | None,
    lists: list[tuple[Ref, list[str]]],
    at: str,
) -> None:
    """Delete a data source and everything in its partition but its owner grant, in transactions of
    at most 100 writes (one, as a rule), in this order: the item (unconditionally: a retry after a
    partial failure finds it gone); `location` copied onto the owner's grant (when the item was still
    there: what a retry reads the S3 prefix from); each topic of `lists` set to its new `dataSourceIds` (unconditionally);
    every other item of `found`. The owner grant goes with `delete_owner_grant`, once the blobs are
    deleted."""
    operations: list[dict[str, Any]] = [{"delete": keys.object_key(data_source)}]
    if owner is not None and found.item is not None and location:
        operations.append({"update": keys.grant_key(data_source, owner), "set": {"location": location}})
    operations += [
        {"update": keys.object_key(topic), "set": {"dataSourceIds": ids, "updatedAt": at}}
        for topic, ids in lists
    ]
    kept = {keys.META, keys.grant_sk(owner)} if owner else {keys.META}
    operations += [{"delete": {"PK": i["PK"], "SK": i["SK"]}} for i in found.items if i["SK"] not in kept]
    table().transact_in_batches(operations)


def delete_owner_grant(data_source: Ref, owner: Ref) -> None:
    """The last step of a data source's deletion (`delete`): its owner's grant (DeleteItem)."""
    table().delete(keys.grant_key(data_source, owner))


def keep_owner_grant(data_source: Ref, owner: Ref) -> None:
    """A presigned upload arrived: the owner's grant on the data source no longer expires (its `ttl`
    goes). Raises `Conflict` when that grant is gone (ownership changed since the upload was signed)."""
    table().update(keys.grant_key(data_source, owner), {}, remove=("ttl",))
