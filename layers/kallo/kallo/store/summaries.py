"""A data source's summary: one item in the data source's partition (`OBJ#data_source#<id>` /
`#SUMMARY`, access pattern 20), so deleting the data source's partition deletes it. Its fields are
`kallo.services.summaries`' (`status`, `requestedAt`, `content`, `annotations`, `error`, `model`,
`updatedAt`)."""

from __future__ import annotations

from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table


def with_data_source(data_source_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The data source's item and its summary (each None when absent), as stored, in one Query of the
    partition's `#` items (`#META`, `#SUMMARY`: not its grants)."""
    found = table().query(keys.object_pk(Ref("data_source", data_source_id)), prefix="#").items
    item = next((i for i in found if i["SK"] == keys.META), None)
    summary = next((i for i in found if i["SK"] == keys.summary_key(data_source_id)["SK"]), None)
    return item, summary


def get(data_source_id: str) -> dict[str, Any] | None:
    """The summary as stored now (a strongly consistent GetItem), None when there is none."""
    return table().get(keys.summary_key(data_source_id), consistent=True)


def claim(data_source_id: str, pending: dict[str, Any], *, requested_at: str | None) -> None:
    """Write a new request (`pending`: its status and times) so that exactly one request makes the job:
    a new item when `requested_at` is None (PutItem, only while there is none), else onto the existing
    one (its `error` removed) only while its `requestedAt` is still `requested_at`, as read (no one
    asked again meanwhile). Raises `Conflict` when another request was first."""
    if requested_at is None:
        table().put({**keys.summary_key(data_source_id), **pending}, must_not_exist=True)
    else:
        table().update(
            keys.summary_key(data_source_id),
            pending,
            remove=("error",),
            expect=(("requestedAt",), requested_at),
        )


def update(data_source_id: str, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> None:
    """Write the summary's outcome (UpdateItem), only while it exists; raises `Conflict` when it is gone
    (its data source was deleted meanwhile)."""
    table().update(keys.summary_key(data_source_id), changes, remove=remove)
