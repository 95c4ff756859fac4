"""Purging what hangs off a deleted object, off the request path.

Deleting a convo or a topic removes its item (and its owner grant) at once, then `schedule` sends a job
`{"type": "<objectType>", "id": "<id>"}` to the purge queue; the purge worker runs `purge`, which deletes:
- everything left in the object's partition: steps and contributor markers, grants, invitations,
  connections (whose sockets are closed: `DeleteConnection` each), and the feedback items of its rated
  answers (kept by step, outside the partition: one Query each);
- the grants that name the object as grantee (GSI1): data-source and prompt links, team grants...;
- the objects it owned (a topic's convos, a team's topics), each purged the same way, recursively. A
  convo purged this way disappears only now for the users holding a grant on it: their identifiers
  streams hear it (`convos.announce`; a convo deleted itself was announced by Delete Convo);
- a topic's app keys.

A job may be delivered more than once, and a worker may time out half-way: every step is a delete of
what is still there, and an owned object's owner grant (the only way to find it again) is deleted last,
so running a job again finishes the work and a finished job does nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from kallo import jobs, realtime
from kallo.authz.policy import ObjectType, Role
from kallo.store import app_keys, grants, objects, steps
from kallo.store import purge as store
from kallo.store.keys import Ref

logger = Logger(child=True)


def schedule(ref: Ref) -> None:
    """Queue the purge of a deleted object."""
    jobs.send(jobs.PurgeJob(type=ObjectType(ref.type), id=ref.id))


class LiveObject(Exception):
    """A purge job names an object that exists: no Delete sent it (see `purge`)."""


def purge(ref: Ref) -> int:
    """Delete what is left of a deleted object; returns the number of items deleted (0 when nothing was
    left: a job delivered again).

    I4 (ids): the server makes every id and never reuses one, and Delete Topic / Delete Convo remove
    the object's item before they send its job. So a job names exactly one object, already deleted, and
    everything still keyed by its id is that object's remains: all of it goes, and no purge is ever
    skipped for a newer object under the same id (there is none).

    A job whose object still exists was therefore not sent by a delete: a forged or corrupt message.
    Purging would destroy a live object's convos, steps and links, and dropping the job would hide
    that something sends such messages; it raises `LiveObject` instead, so the message fails, is
    retried, and ends in the dead-letter queue, where it is seen. Nothing is deleted.
    """
    if objects.get(ref, consistent=True) is not None:
        logger.error("purge refused: the object exists", extra={"objectType": ref.type, "objectId": ref.id})
        raise LiveObject(f"{ref.type} {ref.id} exists: a purge job is only sent for a deleted object")
    return _purge(ref, link=None, seen=set())


def _purge(ref: Ref, *, link: dict[str, Any] | None, seen: set[Ref]) -> int:
    """Purge an object; `link` is its owner grant (as read) when it is purged because its owner was,
    kept until the end so that an interrupted purge finds it again."""
    if ref in seen:  # ownership is a tree; this only guards against corrupt data
        return 0
    seen.add(ref)
    deleted = 0
    if link is not None:
        # An owned object disappears first, so no one reads it while the rest goes.
        objects.delete(ref)
        deleted += 1
    deleted += _purge_dependents(ref, seen)
    if ref.type == ObjectType.convo:
        deleted += steps.delete_all_of_convo(ref.id)
    if ref.type == ObjectType.topic:
        # Refused since the topic went (`kallo.auth.app_keys` checks it), a topic's app keys go too.
        deleted += app_keys.delete_of_topic(ref.id)
    users: list[str] = []
    deleted += _delete_partition(ref, keep=link, users=users)
    if link is not None:
        store.delete_item(link)
        deleted += 1
        if ref.type == ObjectType.convo:
            # Imported here: convos imports this module (Delete Convo schedules purges).
            from kallo.services import convos

            convos.announce(ref.id, "deleted", users)
    return deleted


def _purge_dependents(ref: Ref, seen: set[Ref]) -> int:
    """The grants naming `ref` as grantee: owned objects are purged, other links simply deleted."""
    deleted, start = 0, None
    while True:
        page = grants.of_grantee(ref, start_key=start)
        links = []
        for grant in page.items:
            if grant.get("entity") == "grant" and grant.get("role") == Role.owner:
                deleted += _purge(grants.object_ref(grant), link=grant, seen=seen)
            else:
                links.append(grant)
        deleted += store.delete_items(links)
        start = page.last_key
        if not start:
            return deleted


def _delete_partition(ref: Ref, *, keep: dict[str, Any] | None, users: list[str] | None = None) -> int:
    """Every item of the object's partition but `keep`, a page (at most 1 MB) at a time; the ids of the
    users whose grants it deleted are added to `users`.

    I8 (live access): a deleted convo's connections are forgotten (their own items too) and their
    sockets closed through the management API, so they hear nothing more of it."""
    deleted, start = 0, None
    while True:
        page = objects.partition_page(ref, start)
        sockets = [i["connectionId"] for i in page.items if i.get("entity") == "connection"]
        if users is not None:
            users += [
                i["granteeId"]
                for i in page.items
                if i.get("entity") == "grant" and i.get("granteeType") == ObjectType.user
            ]
        deleted += store.delete_items(page.items, keep=keep, connections=sockets)
        realtime.close_all(sockets)
        start = page.last_key
        if not start:
            return deleted
