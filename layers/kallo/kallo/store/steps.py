"""Steps of a convo (access patterns 12 and 13), the convo's contributor markers, and its denormalized
`latestStep`.

A step lives in its convo's partition, sorted by creation time (`STEP#<createdAt>#<stepId>`), so a
convo's steps are one range query, oldest first; GSI1 (`STEP#<stepId>`) finds a step by id alone. A
user-authored step also leaves a contributor marker (`CONTRIB#<userId>`, one per user whatever the
number of steps), so "who wrote in this convo" is one small query instead of a read of every step.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from kallo.clock import iso, now_iso
from kallo.errors import Conflict
from kallo.models.steps import Step
from kallo.store import keys, objects
from kallo.store.keys import Ref
from kallo.store.table import Page, table

STEP_PREFIX = "STEP#"
# Above every character of a timestamp or id, so `STEP#<t>#~` ends the steps created at `t` and
# `STEP#~` ends all steps.
_HIGH = "~"
CONTRIBUTOR_PREFIX = keys.CONTRIBUTOR_PREFIX
contributor_key = keys.contributor_key


def _sortable(moment: str) -> str:
    """A timestamp in the one format the sort keys use (RFC 3339 UTC, milliseconds, `Z`): any other
    spelling of the same instant would sort out of place."""
    parsed = datetime.fromisoformat(moment)
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def item(step: Step) -> dict[str, Any]:
    """The stored item of a step (also what `add` writes)."""
    fields = step.model_dump(by_alias=True, exclude_none=True)
    fields["createdAt"] = _sortable(fields["createdAt"])
    fields["updatedAt"] = _sortable(fields["updatedAt"])
    return {
        "PK": keys.object_pk(Ref("convo", step.convo_id)),
        "SK": keys.step_sk(fields["createdAt"], step.id),
        "GSI1PK": keys.step_index_pk(step.id),
        "GSI1SK": keys.META,
        "entity": "step",
        **fields,
    }


def add(step: Step) -> dict[str, Any]:
    """Store a new step of an existing convo, in one transaction with what depends on it:
    - the contributor marker of its author, when a user wrote it;
    - the convo's `latestStep`, when it is a primary step (not an alternate); otherwise a check that
      the convo exists, so no step is ever written into a deleted convo.

    `createdAt`/`updatedAt` may be any RFC 3339 spelling; they are stored normalized. Returns the step
    as stored (API fields only). Raises `kallo.errors.Conflict` when the convo does not exist (or was
    deleted) or this exact step is already stored; `ValueError` for a timestamp that is not RFC 3339.
    """
    stored = item(step)
    public = objects.public(stored)
    convo_key = keys.object_key(Ref("convo", step.convo_id))
    operations: list[dict[str, Any]] = [{"put": stored, "new": True}]
    if step.author_type == "user" and step.author_id:
        marker = {
            **contributor_key(step.convo_id, step.author_id),
            "entity": "contributor",
            "convoId": step.convo_id,
            "userId": step.author_id,
        }
        operations.append({"put": marker})
    if step.is_alternate:
        operations.append({"check": convo_key, "exists": True})
    else:
        operations.append({"update": convo_key, "set": {"latestStep": public}})
    table().transact(operations)
    return public


def of_convo(
    convo_id: str, *, after: datetime | None = None, limit: int = 100, next_token: str | None = None
) -> Page:
    """One page of a convo's steps, oldest first; with `after`, only those created strictly after it
    (at the stored millisecond precision)."""
    low = f"{STEP_PREFIX}{iso(after)}#{_HIGH}" if after else STEP_PREFIX
    page = table().query(
        keys.object_pk(Ref("convo", convo_id)),
        between=(low, f"{STEP_PREFIX}{_HIGH}"),
        limit=limit,
        next_token=next_token,
    )
    return Page([objects.public(i) for i in page.items], page.next_token)


def get(step_id: str) -> dict[str, Any] | None:
    """A step by id alone (GSI1, eventually consistent: a step written a moment ago may be missing)."""
    found = table().query(keys.step_index_pk(step_id), index="GSI1", limit=1).items
    return objects.public(found[0]) if found else None


def contributors(convo_id: str) -> list[str]:
    """The users who wrote at least one step of the convo, by id."""
    markers = table().query_all(keys.object_pk(Ref("convo", convo_id)), prefix=CONTRIBUTOR_PREFIX)
    return [m["userId"] for m in markers]


def delete_all_of_convo(convo_id: str) -> int:
    """Delete every step and contributor marker of a convo, a page at a time so memory stays flat
    whatever the convo's size; returns how many items were deleted. Safe to repeat."""
    partition = keys.object_pk(Ref("convo", convo_id))
    deleted = 0
    for condition in (
        {"between": (STEP_PREFIX, f"{STEP_PREFIX}{_HIGH}")},
        {"prefix": CONTRIBUTOR_PREFIX},
    ):
        token = None
        while True:
            page = table().query(partition, next_token=token, **condition)
            deleted += table().batch_delete({"PK": i["PK"], "SK": i["SK"]} for i in page.items)
            token = page.next_token
            if not token:
                break
    return deleted


def key(step: dict[str, Any]) -> dict[str, str]:
    """The table key of a stored step (as `get` or `of_convo` return it)."""
    return {
        "PK": keys.object_pk(Ref("convo", step["convoId"])),
        "SK": keys.step_sk(step["createdAt"], step["id"]),
    }


def update(step: dict[str, Any], changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> dict[str, Any]:
    """Change a stored step (`updatedAt` is set here) and keep the convo's `latestStep` in step when it
    is this step. Raises `Conflict` (code `not_found`) when the step was deleted meanwhile."""
    updated = objects.public(table().update(key(step), {**changes, "updatedAt": now_iso()}, remove=remove))
    if not updated.get("isAlternate"):
        _replace_latest(step["convoId"], step["id"], updated)
    return updated


def delete(step: dict[str, Any]) -> None:
    """Delete one step; when it was the convo's `latestStep`, the newest remaining primary step takes
    its place (or none)."""
    table().delete(key(step))
    _replace_latest(step["convoId"], step["id"], _newest_primary(step["convoId"]))


def _newest_primary(convo_id: str) -> dict[str, Any] | None:
    token = None
    while True:
        page = table().query(
            keys.object_pk(Ref("convo", convo_id)),
            between=(STEP_PREFIX, f"{STEP_PREFIX}{_HIGH}"),
            newest_first=True,
            limit=20,
            next_token=token,
        )
        for found in page.items:
            if not found.get("isAlternate"):
                return objects.public(found)
        token = page.next_token
        if not token:
            return None


def _replace_latest(convo_id: str, step_id: str, replacement: dict[str, Any] | None) -> None:
    """Point the convo's `latestStep` at `replacement`, but only while it still names `step_id`: a
    newer step written meanwhile wins."""
    convo_key = keys.object_key(Ref("convo", convo_id))
    changes, remove = ({"latestStep": replacement}, ()) if replacement else ({}, ("latestStep",))
    with contextlib.suppress(Conflict):
        table().update(convo_key, changes, remove=remove, expect=(("latestStep", "id"), step_id))
