"""Steps of a convo (access patterns 12, 13, 17 and 18), the convo's contributor markers, step groups,
and the convo's denormalized `latestStep`.

A step lives in its convo's partition, sorted by creation time (`STEP#<createdAt>#<stepId>`), so a
convo's steps are one range query, oldest first; GSI1 (`STEP#<stepId>`) finds a step by id alone. A
user-authored step also leaves a contributor marker (`CONTRIB#<userId>`, one per user whatever the
number of steps), so "who wrote in this convo" is one small query instead of a read of every step. A
step of a group (`groupId`) has a group member item (`GROUP#<groupId>#<createdAt>#<stepId>`), so a
group's steps are one small query and one BatchGetItem.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kallo.clock import iso, now_iso
from kallo.errors import Conflict
from kallo.store import feedback, keys, objects, search
from kallo.store.keys import Ref
from kallo.store.table import TRANSACT_LIMIT, Page, table

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


def item(step: Mapping[str, Any]) -> dict[str, Any]:
    """The stored item of a step (also what `add` writes), from its fields under their API names
    (`kallo.models.steps.Step.record()`); fields set to None are left out."""
    fields = {name: value for name, value in step.items() if value is not None}
    fields["createdAt"] = _sortable(fields["createdAt"])
    fields["updatedAt"] = _sortable(fields["updatedAt"])
    return {
        "PK": keys.object_pk(Ref("convo", fields["convoId"])),
        "SK": keys.step_sk(fields["createdAt"], fields["id"]),
        "GSI1PK": keys.step_index_pk(fields["id"]),
        "GSI1SK": keys.META,
        "entity": "step",
        **fields,
    }


def add(step: Mapping[str, Any]) -> dict[str, Any]:
    """Store a new step of an existing convo, in one transaction with what depends on it:
    - the contributor marker of its author, when a user wrote it;
    - its group member item, when it belongs to a group;
    - the convo's `updatedAt` (now), and its `latestStep` when it is a primary step (not an
      alternate); that update also requires the convo to exist, so no step is ever written into a
      deleted convo.

    `createdAt`/`updatedAt` may be any RFC 3339 spelling; they are stored normalized. Returns the step
    as stored (API fields only). Raises `kallo.errors.Conflict` when the convo does not exist (or was
    deleted) or this exact step is already stored; `ValueError` for a timestamp that is not RFC 3339.
    """
    return add_many([step])[0]


def add_many(
    new_steps: list[Mapping[str, Any]], *, index: bool = False, guard: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Store several new steps of one convo (a step group) in one transaction, as `add` does for one:
    all of them or none. The newest primary step among them becomes the convo's `latestStep`.

    `index`: also write their search postings (`kallo.store.search`), in the same transaction when
    they fit in it (a message of up to about 95 distinct words: one call instead of two), else through
    BatchWriteItem afterwards. `guard`: a condition check (a `Table.transact` operation) the write
    needs to hold, e.g. the writer's grant (`kallo.store.grants.role_check`); `Conflict` when it fails."""
    if not new_steps or len({s["convoId"] for s in new_steps}) != 1:
        raise ValueError("add_many stores one or more steps of a single convo")
    convo_id = new_steps[0]["convoId"]
    stored = [item(s) for s in new_steps]
    operations: list[dict[str, Any]] = [{"put": i, "new": True} for i in stored]
    operations += [{"put": _member_item(i)} for i in stored if i.get("groupId")]
    # One marker per author: a transaction may not touch an item twice.
    authors = dict.fromkeys(
        s["authorId"] for s in new_steps if s.get("authorType") == "user" and s.get("authorId")
    )
    operations += [
        {
            "put": {
                **contributor_key(convo_id, author),
                "entity": "contributor",
                "convoId": convo_id,
                "userId": author,
            }
        }
        for author in authors
    ]
    public = [objects.public(i) for i in stored]
    primaries = sorted(
        (p for p in public if not p.get("isAlternate")), key=lambda p: (p["createdAt"], p["id"])
    )
    # The convo's update also checks that it exists (no step is written into a deleted convo). It
    # changed when its newest step was written, so whoever holds the steps knows its updatedAt.
    touched = {"updatedAt": max((s.get("updatedAt") or now_iso() for s in public), default=now_iso())}
    if primaries:
        touched["latestStep"] = primaries[-1]
    operations.append({"update": keys.object_key(Ref("convo", convo_id)), "set": touched})
    if guard is not None:
        operations.append(guard)
    postings = search.posting_items(public) if index else []
    folded = len(operations) + len(postings) <= TRANSACT_LIMIT
    if folded:
        operations += [{"put": p} for p in postings]
    table().transact(operations)
    if postings and not folded:
        search.write_postings(postings)
    return public


def _member_item(stored: dict[str, Any]) -> dict[str, Any]:
    """The group member item of a stored step that has a `groupId`."""
    return {
        **keys.group_member_key(stored["convoId"], stored["groupId"], stored["createdAt"], stored["id"]),
        "entity": "group_member",
        "convoId": stored["convoId"],
        "groupId": stored["groupId"],
        "stepId": stored["id"],
        "createdAt": stored["createdAt"],
    }


def of_convo(
    convo_id: str, *, after: datetime | None = None, limit: int = 100, start_key: dict | None = None
) -> Page:
    """One page of a convo's steps, oldest first; with `after`, only those created strictly after it
    (at the stored millisecond precision)."""
    low = f"{STEP_PREFIX}{iso(after)}#{_HIGH}" if after else STEP_PREFIX
    page = table().query(
        keys.object_pk(Ref("convo", convo_id)),
        between=(low, f"{STEP_PREFIX}{_HIGH}"),
        limit=limit,
        start_key=start_key,
    )
    return Page([objects.public(i) for i in page.items], page.last_key)


def running_of_convo(convo_id: str) -> list[dict[str, Any]]:
    """The convo's steps that are `running` (answers being written), oldest first, read strongly
    consistently: one Query per MB of the convo's steps (usually one), filtered on `status`. No index
    holds running steps, so that an answer costs no extra write to mark and unmark one."""
    found = table().query_all(
        keys.object_pk(Ref("convo", convo_id)),
        between=(STEP_PREFIX, f"{STEP_PREFIX}{_HIGH}"),
        where=("status", "running"),
        consistent=True,
    )
    return [objects.public(i) for i in found]


def newest_first(
    convo_id: str, *, upto: dict[str, Any] | None = None, limit: int = 100, start_key: dict | None = None
) -> Page:
    """One page of a convo's steps, newest first; with `upto` (a stored step), only that step and those
    sorted before it."""
    high = keys.step_sk(upto["createdAt"], upto["id"]) if upto else f"{STEP_PREFIX}{_HIGH}"
    page = table().query(
        keys.object_pk(Ref("convo", convo_id)),
        between=(STEP_PREFIX, high),
        limit=limit,
        start_key=start_key,
        newest_first=True,
    )
    return Page([objects.public(i) for i in page.items], page.last_key)


def get(step_id: str) -> dict[str, Any] | None:
    """A step by id alone (GSI1, eventually consistent: a step written a moment ago may be missing)."""
    found = table().query(keys.step_index_pk(step_id), index="GSI1", limit=1).items
    return objects.public(found[0]) if found else None


def contributors(convo_id: str) -> list[str]:
    """The users who wrote at least one step of the convo, by id."""
    markers = table().query_all(keys.object_pk(Ref("convo", convo_id)), prefix=CONTRIBUTOR_PREFIX)
    return [m["userId"] for m in markers]


def delete_all_of_convo(convo_id: str) -> int:
    """Delete every step and contributor marker of a convo, and the feedback items of its rated steps,
    a page at a time so memory stays flat whatever the convo's size; returns how many items were
    deleted. Safe to repeat."""
    partition = keys.object_pk(Ref("convo", convo_id))
    deleted = 0
    for condition in (
        {"between": (STEP_PREFIX, f"{STEP_PREFIX}{_HIGH}")},
        {"prefix": CONTRIBUTOR_PREFIX},
    ):
        start = None
        while True:
            page = table().query(partition, start_key=start, **condition)
            # A rated step's feedback lives outside the convo's partition (keyed by the step).
            deleted += sum(feedback.delete_of_step(i["id"]) for i in page.items if feedback.rated(i))
            deleted += table().batch_delete({"PK": i["PK"], "SK": i["SK"]} for i in page.items)
            start = page.last_key
            if not start:
                break
    return deleted


def key(step: dict[str, Any]) -> dict[str, str]:
    """The table key of a stored step (as `get` or `of_convo` return it)."""
    return {
        "PK": keys.object_pk(Ref("convo", step["convoId"])),
        "SK": keys.step_sk(step["createdAt"], step["id"]),
    }


def update(
    step: dict[str, Any],
    changes: dict[str, Any],
    *,
    remove: tuple[str, ...] = (),
    expect: tuple[str, Any] | None = None,
    latest: bool = True,
    touch_convo: bool = False,
) -> dict[str, Any]:
    """Change a stored step (`updatedAt` is set here) and keep the convo's `latestStep` in step when it
    is this step (unless `latest` is False: a change that a listing would not show). `expect=(name,
    value)` also requires an attribute to hold a value (to be absent: None). `touch_convo`: the
    convo's `updatedAt` moves too, in one transaction with the step's (a user's edit), instead of
    one UpdateItem. Raises `Conflict` (code `not_found`) when the step was deleted meanwhile or the
    expectation does not hold."""
    stamp = now_iso()
    condition = ((expect[0],), expect[1]) if expect else None
    if touch_convo:
        operation: dict[str, Any] = {"update": key(step), "set": {**changes, "updatedAt": stamp}}
        if remove:
            operation["remove"] = list(remove)
        if condition:
            operation["expect"] = condition
        convo = keys.object_key(Ref("convo", step["convoId"]))
        table().transact([operation, {"update": convo, "set": {"updatedAt": stamp}}])
        # The transaction returns nothing: the step as written is the one read, with the changes.
        written = {k: v for k, v in {**step, **changes, "updatedAt": stamp}.items() if k not in remove}
        updated = objects.public(written)
    else:
        updated = objects.public(
            table().update(key(step), {**changes, "updatedAt": stamp}, remove=remove, expect=condition)
        )
    if latest and not updated.get("isAlternate"):
        _replace_latest(step["convoId"], step["id"], updated)
    return updated


def current(step: dict[str, Any]) -> dict[str, Any] | None:
    """A step as stored now (a strongly consistent read of its item, where `get` reads an index)."""
    found = table().get(key(step), consistent=True)
    return objects.public(found) if found else None


def request_stop(step: dict[str, Any]) -> dict[str, Any]:
    """Mark a running step `stopRequestedAt` (now), only while it is `running`: whoever writes its text
    sees the mark at its next save (`kallo.services.replies`). Raises `Conflict` (code `not_found`)
    when the step is gone or no longer running. The step's `updatedAt` and the convo's `latestStep` are
    left alone: nothing a reader sees has changed yet."""
    return objects.public(
        table().update(key(step), {"stopRequestedAt": now_iso()}, expect=(("status",), "running"))
    )


def delete(step: dict[str, Any], *, promote: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Delete one step (and its feedback items, when it has been rated); when it was the convo's
    `latestStep`, the newest remaining primary step takes its place (or none). The convo's
    `updatedAt` moves (a deleted convo makes this a `Conflict`).

    A step of a group leaves the group too; `promote` (another step of the group) becomes a primary
    step in the same transaction, so a group never loses its primary. Returns `promote` as updated.
    """
    # The convo's `updatedAt` moves in the same transaction (also for a lone step: one
    # TransactWriteItems instead of one DeleteItem).
    operations: list[dict[str, Any]] = [
        {"delete": key(step)},
        {"update": keys.object_key(Ref("convo", step["convoId"])), "set": {"updatedAt": now_iso()}},
    ]
    if step.get("groupId"):
        operations.append({"delete": _member_key(step)})
    promoted = None
    if promote is not None:
        promoted = {**promote, "isAlternate": False, "updatedAt": now_iso()}
        operations.append(
            {"update": key(promote), "set": {"isAlternate": False, "updatedAt": promoted["updatedAt"]}}
        )
    table().transact(operations)
    if feedback.rated(step):
        feedback.delete_of_step(step["id"])
    _replace_latest(step["convoId"], step["id"], _newest_primary(step["convoId"]))
    return promoted


def _member_key(step: dict[str, Any]) -> dict[str, str]:
    return keys.group_member_key(step["convoId"], step["groupId"], step["createdAt"], step["id"])


def batch_get(wanted: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Many steps at once (access pattern 18), by id; each entry of `wanted` names a step by its
    `convoId`, `createdAt` and `id`. Steps that no longer exist are absent."""
    found = table().batch_get(key(w) for w in wanted) if wanted else []
    return {f["id"]: objects.public(f) for f in found}


def group(convo_id: str, group_id: str) -> list[dict[str, Any]]:
    """The steps of a group (access pattern 17), oldest first."""
    members = table().query_all(keys.object_pk(Ref("convo", convo_id)), prefix=keys.group_prefix(group_id))
    found = batch_get(
        [{"convoId": convo_id, "createdAt": m["createdAt"], "id": m["stepId"]} for m in members]
    )
    return sorted(found.values(), key=lambda s: (s["createdAt"], s["id"]))


def join_group(step: dict[str, Any], group_id: str) -> dict[str, Any]:
    """Put a step that has no group into group `group_id` (as its primary when it is not an
    alternate): the step and its member item in one transaction. Returns the step as updated. Raises
    `Conflict` when the step was deleted meanwhile."""
    joined = {**step, "groupId": group_id, "updatedAt": now_iso()}
    table().transact(
        [
            {"update": key(step), "set": {"groupId": group_id, "updatedAt": joined["updatedAt"]}},
            {"put": _member_item(joined)},
        ]
    )
    if not joined.get("isAlternate"):
        _replace_latest(step["convoId"], step["id"], joined)
    return joined


def set_primary(members: list[dict[str, Any]], primary_id: str) -> list[dict[str, Any]]:
    """Make one step of a group its primary and every other step an alternate, in one transaction;
    the convo's `latestStep` follows when it named the group's former primary. Returns the steps that
    changed, as updated (none when the group already was that way)."""
    stamp = now_iso()
    changed = [
        {**m, "isAlternate": m["id"] != primary_id, "updatedAt": stamp}
        for m in members
        if bool(m.get("isAlternate")) != (m["id"] != primary_id)
    ]
    if not changed:
        return []
    convo = keys.object_key(Ref("convo", members[0]["convoId"]))
    table().transact(
        [{"update": key(c), "set": {"isAlternate": c["isAlternate"], "updatedAt": stamp}} for c in changed]
        + [{"update": convo, "set": {"updatedAt": stamp}}]
    )
    primary = next((s for s in [*changed, *members] if s["id"] == primary_id), None)
    if primary is not None:
        for former in (c for c in changed if c["isAlternate"]):
            _replace_latest(primary["convoId"], former["id"], primary)
    return changed


def _newest_primary(convo_id: str) -> dict[str, Any] | None:
    start = None
    while True:
        page = table().query(
            keys.object_pk(Ref("convo", convo_id)),
            between=(STEP_PREFIX, f"{STEP_PREFIX}{_HIGH}"),
            newest_first=True,
            limit=20,
            start_key=start,
        )
        for found in page.items:
            if not found.get("isAlternate"):
                return objects.public(found)
        start = page.last_key
        if not start:
            return None


def _replace_latest(convo_id: str, step_id: str, replacement: dict[str, Any] | None) -> None:
    """Point the convo's `latestStep` at `replacement`, but only while it still names `step_id`: a
    newer step written meanwhile wins."""
    convo_key = keys.object_key(Ref("convo", convo_id))
    changes, remove = ({"latestStep": replacement}, ()) if replacement else ({}, ("latestStep",))
    changes["updatedAt"] = now_iso()  # free: the convo changed as a listing shows it
    with contextlib.suppress(Conflict):
        table().update(convo_key, changes, remove=remove, expect=(("latestStep", "id"), step_id))
