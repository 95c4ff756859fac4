"""Data sources linked to topics and convos, and the deletion of a data source.

A link is the data source's `dependent` grant to the topic or convo (PK `OBJ#data_source#<id>`, SK
`GRANT#<topic|convo>#<id>`; GSI1 lists a topic's or convo's data sources): through it everyone on the
topic or convo may read the data source (`kallo.authz.policy`), and an access token scoped to them
covers it. A topic also keeps the ids in its `dataSourceIds` list (their order), changed in the same
transaction as the link, on condition that the list is as it was read (else it is read again), so
concurrent links never lose an id. Only someone who may use both objects links them: `can_add_data_source` on the
topic or convo and `can_add_dependent` on the data source (its owners and admins, and the members of a
team that owns it; a user who sees it only through a link may not pass it on).

Costs in AWS calls (a check on an object is one Query per object of its inheritance chain that can
inherit, and one BatchGetItem for the caller's grants on both chains, see `kallo.authz.access`; a data
source linked to `k` topics and convos adds their Queries):
- Add Topic / Convo Data Source: the checks (2 Queries + 1 BatchGetItem for a user's topic or convo and
  an unlinked data source) + 1 GetItem (a topic) + 1 TransactWriteItems (none when already linked).
- Remove Topic / Convo Data Source: the same.
- Delete a Data Source: the check + 1 Query (its partition: item, grants, summary) + 1 BatchGetItem (the
  linked topics, when there are any) + 1 TransactWriteItems (per 100 writes) + 1 ListObjectVersions
  + 1 DeleteObjects (when there are versions) + 1 DeleteItem (its owner grant).
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound
from kallo.models.topics import MAX_DATA_SOURCE_IDS
from kallo.services.owned import absent_as_not_found
from kallo.store import blobs, grants, objects
from kallo.store import data_sources as store
from kallo.store.keys import Ref

# How many times a link re-reads a topic's `dataSourceIds` that changed under it.
LIST_ATTEMPTS = 3


def _data_source(data_source_id: str) -> Ref:
    return Ref(ObjectType.data_source.value, data_source_id)


def _link(access: Access, data_source: Ref, target: Ref) -> dict[str, Any] | None:
    """The data source's link to a topic or convo: among its structural grants, read by the check."""
    return next(
        (
            g
            for g in access.structural_grants(data_source)
            if grants.grantee_ref(g) == target and g["role"] == Role.dependent
        ),
        None,
    )


def _require_both(
    access: Access, target: Ref, on_target: Permission, data_source: Ref, on_data_source: Permission
) -> None:
    """404 when either object is hidden from the caller, before any 403: a refusal on one object must
    not tell whether the other exists. Both chains are read first, for one BatchGetItem of grants."""
    access.preload([target, data_source])
    access.require(target)
    access.require(data_source)
    access.require(target, on_target)
    access.require(data_source, on_data_source)


def _topic_ids(topic: Ref) -> list[str] | None:
    """The topic's `dataSourceIds` as stored (None when it has none): what a list update expects."""
    found = objects.get(topic)
    if found is None:
        raise NotFound(f"topic {topic.id} not found")
    return found.get("dataSourceIds")


# -- Add Topic / Convo Data Source ---------------------------------------------------------------------


def add_topic_data_source(access: Access, topic_id: str, data_source_id: str) -> None:
    _add(access, Ref(ObjectType.topic.value, topic_id), _data_source(data_source_id))


def add_convo_data_source(access: Access, convo_id: str, data_source_id: str) -> None:
    _add(access, Ref(ObjectType.convo.value, convo_id), _data_source(data_source_id))


def _add(access: Access, target: Ref, data_source: Ref) -> None:
    """Link a data source to a topic or convo. Linking again changes nothing (a topic's list is put back
    in step if an Update Topic took the id out). The link is written only while both objects exist:
    grants can outlive a deleted object until the purge worker runs. A topic's list changed by someone
    else meanwhile is read again (`LIST_ATTEMPTS` times at most)."""
    _require_both(access, target, Permission.can_add_data_source, data_source, Permission.can_add_dependent)
    linked = _link(access, data_source, target) is not None
    for attempt in range(1, LIST_ATTEMPTS + 1):
        now = now_iso()
        listed = _listed(target, data_source, now)
        if linked and listed is None:
            return
        by = access.principal.user_id or ""
        grant = (
            None
            if linked
            else grants.item(data_source, target, Role.dependent.value, created_by=by, created_at=now)
        )
        try:
            with absent_as_not_found(target, data_source):
                store.link(data_source, target, grant=grant, listed=listed)
            return
        except NotFound:
            # Deleted objects fail every attempt (the topic's is reported by the next read).
            if target.type != ObjectType.topic or attempt == LIST_ATTEMPTS:
                raise


def _listed(target: Ref, data_source: Ref, now: str) -> store.ListChange | None:
    """The change of a topic's list that adds the data source (None for a convo, or when the topic
    lists it already)."""
    if target.type != ObjectType.topic:
        return None
    before = _topic_ids(target)
    ids = list(before or [])
    if data_source.id in ids:
        return None
    if len(ids) >= MAX_DATA_SOURCE_IDS:
        raise Conflict(
            f"a topic has at most {MAX_DATA_SOURCE_IDS} data sources", code="too_many_data_sources"
        )
    return store.ListChange(before, [*ids, data_source.id], now)


# -- Remove Topic / Convo Data Source ------------------------------------------------------------------


def remove_topic_data_source(access: Access, topic_id: str, data_source_id: str) -> None:
    _remove(access, Ref(ObjectType.topic.value, topic_id), _data_source(data_source_id))


def remove_convo_data_source(access: Access, convo_id: str, data_source_id: str) -> None:
    _remove(access, Ref(ObjectType.convo.value, convo_id), _data_source(data_source_id))


def _not_linked(target: Ref, data_source: Ref) -> NotFound:
    return NotFound(
        f"data source {data_source.id} is not linked to {target.type} {target.id}", code="not_linked"
    )


def _remove(access: Access, target: Ref, data_source: Ref) -> None:
    """Unlink a data source from a topic or convo (404 `not_linked` when it is not linked). Whoever may
    manage the target's data sources may unlink any data source they can see, the link included."""
    _require_both(access, target, Permission.can_remove_data_source, data_source, Permission.can_view)
    if _link(access, data_source, target) is None:
        raise _not_linked(target, data_source)
    for attempt in range(1, LIST_ATTEMPTS + 1):
        # The grant must still be there (a concurrent removal), and so must the target.
        before = _topic_ids(target) if target.type == ObjectType.topic else None
        listed = None
        if data_source.id in (before or []):
            kept = [i for i in before or [] if i != data_source.id]
            listed = store.ListChange(before, kept, now_iso())
        try:
            store.unlink(data_source, target, listed=listed)
            return
        except Conflict as error:
            if objects.get(target) is None:
                raise NotFound(f"{target.type} {target.id} not found") from error
            if grants.get(data_source, target) is None:
                raise _not_linked(target, data_source) from error
            if attempt == LIST_ATTEMPTS:  # the topic's list kept changing
                raise


# -- Delete a Data Source ------------------------------------------------------------------------------


def blob_prefix(data_source: Ref, location: str | None, owner: Ref | None) -> str | None:
    """The S3 prefix of the data source's blobs: from its `location` (the owner it was uploaded under,
    whatever owns it now or whether that owner still exists), else from its owner. Only a key of the
    bucket's layout naming this very data source is trusted: a bad prefix would delete other tenants'
    files."""
    parsed = blobs.parse(location) if location else None
    if parsed is not None and parsed[1] == data_source.id:
        return blobs.prefix(parsed[0], data_source.id)
    return blobs.prefix(owner, data_source.id) if owner is not None else None


def delete_data_source(access: Access, data_source_id: str) -> None:
    """Delete a data source: its item, everything in its partition (grants, links, summary), its id in
    the lists of the topics it is linked to, then every version of its blobs in S3, so no signed URL
    outlives it.

    The item goes in the first transaction, so the data source disappears at once. Its owner grant is
    deleted last, after S3: until then the owner's same DELETE passes the check and finishes the job
    after a partial failure. The first transaction copies the item's `location` onto that owner grant,
    so a retry that finds the item gone still deletes the right S3 prefix.
    """
    ref = _data_source(data_source_id)
    access.require(ref, Permission.can_delete)
    partition = store.partition(ref)
    owner_grant = next((g for g in partition.grants if g.get("role") == Role.owner), None)
    owner = grants.grantee_ref(owner_grant) if owner_grant else None
    location = (partition.item or {}).get("location") or (owner_grant or {}).get("location")
    linked = [
        grants.grantee_ref(g)
        for g in partition.grants
        if g["role"] == Role.dependent and g["granteeType"] == ObjectType.topic
    ]
    found = objects.batch_get(linked) if linked else {}
    using = sorted(t for t in linked if ref.id in (found.get(t, {}).get("dataSourceIds") or []))
    lists = [(t, [i for i in found[t]["dataSourceIds"] if i != ref.id]) for t in using]
    # The location goes onto the owner grant in the first transaction, with the item's deletion.
    store.delete(ref, partition, owner=owner, location=location, lists=lists, at=now_iso())
    prefix = blob_prefix(ref, location, owner)
    if prefix is not None:
        blobs.delete_all(prefix)
    if owner is not None:
        store.delete_owner_grant(ref, owner)
