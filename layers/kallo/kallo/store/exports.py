"""Export items (access pattern 21): `EXPORT#<exportId>` / `#META`, expiring through the table's TTL.

An export is written `queued` by Export Data and changed exactly once by the export worker, to `sent`
or `failed`, under the condition that it is still `queued`: that condition is what keeps a job
delivered again, after its idempotency record has expired, from sending a second email.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kallo.clock import epoch_seconds, now
from kallo.store import keys, objects
from kallo.store.table import table

# Long enough for anyone to look back at an export, short enough that addresses are not kept forever.
EXPORT_TTL_DAYS = 90
QUEUED = "queued"


def create(fields: dict[str, Any]) -> dict[str, Any]:
    """Store a new export (`fields` holds its API fields and `id`); returns it as stored, API fields
    only. Raises `kallo.errors.Conflict` (`already_exists`) when the id is taken."""
    ttl = epoch_seconds(now() + timedelta(days=EXPORT_TTL_DAYS))
    item = {**keys.export_key(fields["id"]), "entity": "export", **fields, "ttl": ttl}
    table().put(item, must_not_exist=True)
    return objects.public(item)


def get(export_id: str) -> dict[str, Any] | None:
    """An export as stored, read consistently (the worker decides from its status whether to send)."""
    found = table().get(keys.export_key(export_id), consistent=True)
    return objects.public(found) if found else None


def delete(export_id: str) -> None:
    table().delete(keys.export_key(export_id))


def finish(export_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Record the outcome of a queued export (`status` and what goes with it). Raises
    `kallo.errors.Conflict` when the export is gone or no longer queued (another delivery of the job
    got there first)."""
    return objects.public(table().update(keys.export_key(export_id), changes, expect=(("status",), QUEUED)))
