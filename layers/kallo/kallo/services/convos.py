"""Convos: creation under a user, team or topic owner, reads, renames, deletion (the rest follows through
the purge worker), the owning topic's config, a convo's steps and its users.

Costs in AWS calls (`n` convos on a page; a permission check on a convo is one Query per object of its
ownership chain that can inherit (the convo, its topic) plus one BatchGetItem, see `kallo.authz.access`):
- Query Convos `userId`: 1 Query (the user's grants) + 1 BatchGetItem (the page's convos), whatever `n`
  and whether or not `includeLatestStep` is set (the latest step is kept on the convo); another user's
  convos add the authority check. A token scoped to topics or teams adds one BatchGetItem.
- Query Convos `topicId`: the topic check (Query + BatchGetItem) + 1 Query + 1 BatchGetItem.
- Create: 1 TransactWriteItems, after the owner's check when a topic or team owns it.
- Get: the check alone (the item comes in its BatchGetItem): 2 calls for a convo a user owns, 3 for a
  topic's. Patch: the check + 1 UpdateItem; Patch broadcasts `convoUpdate` (1 Query, + for `c`
  connections their check and `c` PostToConnection, `kallo.realtime`). Delete: the check + 1 Query
  (the user grants) + 1 TransactWriteItems + 1 SQS SendMessage, + its connections (1 Query; for `c`
  of them their check, 1 BatchWriteItem, `c` PostToConnection of `convoDeleted` and `c`
  DeleteConnection).
- Announcing a change to the identifiers streams (`announce`, on create, rename and delete): 1 Query
  per user holding a grant on the convo (a rename first reads them: 1 Query), plus the work of the
  streams that are open (`kallo.realtime.identifiers`). So Create adds 1 Query, Patch 2 (for a
  convo one user holds) and Delete 1 per user grantee.
- Topic config: the check (+ 1 GetItem of the topic when one owns the convo). Steps: the check + 1
  Query. The check is 1 BatchGetItem when the process remembers the convo's chain (a check in the
  last minute; `Access.direct`, its edges and grants read live), so 2 calls then; else 1 Query (the
  convo's structural grants; a topic's convo's owner grant carries the topic's edges, `chainHint`,
  written by Create and by PUT grantees) + 1 BatchGetItem, so 3 for a convo a user owns and for a
  topic's; 4 for a topic's convo whose owner grant has no hint (written before hints) or whose hint
  is stale (its topic moved since): the whole check. `python -m tools.backfill_chain_hints` (once
  after deploying hints, and after moving topics) writes those hints. A refusal on the remembered
  chain adds its BatchGetItem to the whole check. Users: the check + 1 Query (`all`: up to 3 Queries, the owners' grants being already read).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from kallo import jobs, paging, realtime
from kallo.authz.access import Access, chain_hint, remembers
from kallo.authz.policy import ObjectType, Permission, Role, permissions_of
from kallo.clock import now_iso
from kallo.errors import BadRequest
from kallo.models.convos import ConvoCreate, ConvoPatch
from kallo.paging import PAGE_LIMIT, STEP_PAGE_LIMIT
from kallo.realtime import identifiers as identifier_streams
from kallo.services import authority, owned
from kallo.store import convos as store
from kallo.store import grants, objects, steps
from kallo.store.keys import Ref

logger = logging.getLogger(__name__)


def _convo(convo_id: str) -> Ref:
    return Ref(ObjectType.convo.value, convo_id)


_last_id = 0


def new_convo_id() -> str:
    """A UUIDv7 (RFC 9562): a millisecond timestamp then random bits. A grantee's grants are indexed
    by object id, so time-ordered ids make "a user's convos, newest first" a plain descending query."""
    global _last_id
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC variant
    # Within a millisecond the random bits would order ids at random: count up instead (RFC 9562,
    # method 2), so a container's ids always increase.
    value = max(value, _last_id + 1)
    _last_id = value
    return str(UUID(int=value))


# -- Query Convos -------------------------------------------------------------------------------------


def query_convos(
    access: Access,
    *,
    topic_id: str | None = None,
    user_id: str | None = None,
    include_latest_step: bool = False,
    limit: int = PAGE_LIMIT,
    next_token: str | None = None,
    paged: bool = True,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of convos, newest first, and the cursor of the next page (`paged=False`: the first
    page alone, and no cursor, which would need the cursor key): the convos a topic owns
    (`topic_id`, for whoever can view the topic), or those a user (the caller by default) holds a grant
    on, having created or joined them. A page may hold fewer than `limit` convos (even none, with a
    cursor) when grants outlive deleted convos or fall outside an access token's scope."""
    if topic_id and user_id:
        raise BadRequest("give topicId or userId, not both", code="ambiguous_filter")
    if topic_id:
        topic = Ref(ObjectType.topic.value, topic_id)
        access.require(topic)
        found, token = _page_of_grantee(access, topic, limit, next_token, paged)
        # Whatever a topic owns is within an access token's scope when the topic is (checked above).
        convos = _load(g for g in found if g["role"] == Role.owner)
    else:
        acting = authority.acting_for(access, user_id)
        found, token = _page_of_grantee(
            access, Ref(ObjectType.user.value, acting.principal.user_id or ""), limit, next_token, paged
        )
        viewable = (
            g for g in found if Permission.can_view in permissions_of(ObjectType.convo, Role(g["role"]))
        )
        convos = _within_scope(acting, _load(viewable))
    if not include_latest_step:
        convos = [{k: v for k, v in c.items() if k != "latestStep"} for c in convos]
    return convos, token


def _page_of_grantee(
    access: Access, grantee: Ref, limit: int, next_token: str | None, paged: bool = True
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the grantee's grants on convos, by descending convo id (newest first for the
    server's time-ordered ids), and the caller's cursor of the next page."""
    kind = f"convos/{grantee}"
    page = grants.of_grantee(
        grantee,
        object_type=ObjectType.convo.value,
        limit=limit,
        start_key=paging.position(next_token, kind=kind, principal=access.principal),
        newest_first=True,
    )
    if not paged:
        return page.items, None
    return page.items, paging.cursor(page.last_key, kind=kind, principal=access.principal)


def _load(listed: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The convos the grants point at, in one BatchGetItem, newest first (ids made by two containers
    within one millisecond need not follow time, so the page is also sorted by its creation time)."""
    refs = [grants.object_ref(g) for g in listed]
    if not refs:
        return []
    found = objects.batch_get(refs)
    convos = [found[r] for r in refs if r in found]
    return sorted(convos, key=lambda c: (c.get("createdAt", ""), c["id"]), reverse=True)


def _within_scope(access: Access, convos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The convos an access token's scope covers: `Access.in_scope` evaluated for a whole page at once.

    A convo is in scope when it, the topic that owns it, the team that owns it, or the team that owns
    its topic is a scope object (ownership only: what is merely shared with a team is not covered by a
    team scope, see `Access.in_scope`). The owning topic is the one the convo item names; every link is
    confirmed by its owner grant, all read in one BatchGetItem.
    """
    scope = access.principal.scope
    if scope is None or Ref(ObjectType.user.value, access.principal.user_id or "") in scope:
        return convos
    scoped = set(scope)
    teams = [r for r in scope if r.type == ObjectType.team]
    topic_of = {
        c["id"]: Ref(ObjectType.topic.value, c["topicId"])
        for c in convos
        if c.get("topicId") and (teams or Ref(ObjectType.topic.value, c["topicId"]) in scoped)
    }
    pairs = [(_convo(c), t) for c, t in topic_of.items()]
    pairs += [(_convo(c["id"]), team) for c in convos for team in teams]
    pairs += [(t, team) for t in set(topic_of.values()) for team in teams]
    found = grants.batch_get(pairs) if pairs else {}
    linked = {pair for pair, grant in found.items() if grant["role"] == Role.owner}

    def covered(convo: dict[str, Any]) -> bool:
        ref, topic = _convo(convo["id"]), topic_of.get(convo["id"])
        if ref in scoped or any((ref, team) in linked for team in teams):
            return True
        return (
            topic is not None
            and (ref, topic) in linked
            and (topic in scoped or any((topic, team) in linked for team in teams))
        )

    return [c for c in convos if covered(c)]


# -- Create, Get, Patch, Delete -----------------------------------------------------------------------


def _owner_for(
    access: Access, *, topic_id: str | None, team_id: str | None, user_id: str | None
) -> owned.Owner:
    """The owner named by the query parameters (at most one; none: the caller), checked by
    `owned.require_can_own` (chatting in a topic or team is what it takes to start a convo there)."""
    if sum(1 for given in (topic_id, team_id, user_id) if given) > 1:
        raise BadRequest("give at most one of topicId, teamId and userId", code="ambiguous_owner")
    if topic_id:
        owner = Ref(ObjectType.topic.value, topic_id)
    elif team_id:
        owner = Ref(ObjectType.team.value, team_id)
    else:
        owner = Ref(ObjectType.user.value, user_id or access.principal.user_id or "")
    return owned.require_can_own(access, owner, ObjectType.convo)


def create_convo(
    access: Access,
    data: ConvoCreate,
    *,
    topic_id: str | None = None,
    team_id: str | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """A new convo, its owner grant and, when a topic or team owns it, an `admin` grant for its creator
    (so it is among the creator's convos), all in one transaction. The server sets createdAt and
    createdBy; a latestStep in the body is ignored."""
    chosen = _owner_for(access, topic_id=topic_id, team_id=team_id, user_id=user_id)
    return write_convo(chosen, data.name or "")


def write_convo(chosen: owned.Owner, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a new convo under an owner already checked (`owned.require_can_own`, or an app key's end
    user in its key's topic, `kallo.services.end_users`), with `extra` fields of its own."""
    owner, creator = chosen.ref, chosen.created_by
    ref = _convo(new_convo_id())
    now = now_iso()
    fields: dict[str, Any] = {
        **(extra or {}),
        "name": name,
        "createdAt": now,
        "createdBy": creator,
        "updatedAt": now,
    }
    owned_by_group = owner.type != ObjectType.user
    if owned_by_group:
        fields[f"{owner.type}Id"] = owner.id
    item = objects.item(ref, fields)
    # The id is new (I4: the server makes it), so `new` is only a guard against a broken generator.
    # The owner's own edges as the owner's check just read them (`kallo.authz.access`): a hint that
    # lets a later check read the whole chain's grants in one BatchGetItem after the convo's Query.
    # It is never trusted (every edge it names is read again), so a topic moved later costs the whole
    # check, nothing more.
    owner_grant = {
        **grants.item(ref, owner, Role.owner.value, created_by=creator, created_at=now),
        **chain_hint(ref, owner),
    }
    creator_grant = None
    if owned_by_group:
        creator_grant = grants.item(
            ref, Ref(ObjectType.user.value, creator), Role.admin.value, created_by=creator, created_at=now
        )
    # The ids are new, so only the owner's check can fail: a topic or team deleted meanwhile (the check
    # passed on the owner's grants, which can outlive it for a while).
    with owned.absent_as_not_found(owner):
        store.create(item, owner_grant, creator_grant=creator_grant, owner=owner)
    announce(ref.id, identifier_streams.CREATED, [creator])
    return objects.public(item)


def get_convo(access: Access, convo_id: str) -> dict[str, Any]:
    """The convo, read in the check's own BatchGetItem (`Access.read`)."""
    return access.read(_convo(convo_id))


def patch_convo(access: Access, convo_id: str, data: ConvoPatch) -> dict[str, Any]:
    """Rename the convo; its connections hear `convoUpdate` `{id, name, updatedAt}` (those whose
    principal may still view it, I8), and its users' identifiers streams are told."""
    patched = owned.update_owned(access, _convo(convo_id), {"name": data.name})
    update = {"id": convo_id, "name": patched.get("name", ""), "updatedAt": patched.get("updatedAt")}
    _broadcast(convo_id, "convoUpdate", update)
    announce_renamed(convo_id)
    return patched


def _broadcast(convo_id: str, message_type: str, payload: dict[str, Any]) -> None:
    """Tell the convo's connections of a change made; a failure is logged, never the caller's (the
    change is made, and a client catches up with convoSync or REST)."""
    try:
        realtime.broadcast(convo_id, message_type, payload)
    except Exception:
        logger.warning("broadcasting a convo change failed", extra={"convoId": convo_id}, exc_info=True)


def delete_convo(access: Access, convo_id: str) -> None:
    """Delete the convo with every grant on it in one transaction, so it is gone for everyone at once;
    its steps, contributor markers, invitations and links go through the purge worker, which has no
    request timeout to fit in. (Should a convo have more grants than a transaction holds, the owner's
    goes first and the rest wait for the purge.) I8: its connections hear `convoDeleted` and are
    closed at once (`remove_convo`); with its grants gone, any left are refused at their next message,
    and the purge closes them."""
    ref = _convo(convo_id)
    access.require(ref, Permission.can_delete)
    remove_convo(access, ref)


def remove_convo(access: Access, ref: Ref) -> None:
    """Delete a convo the caller was found allowed to delete (Delete Convo: `can_delete`; an app key's
    end user: its own convo, `kallo.services.end_users`), as `delete_convo` describes. Its
    connections that may view it (read before the grants go, I8) hear `convoDeleted` `{id}`; then
    every one of its sockets is closed."""
    heard = _listeners(ref.id)
    on_convo = access.structural_grants(ref) + grants.all_of_object(ref, grantee_type=ObjectType.user.value)
    on_convo.sort(key=lambda g: g["role"] != Role.owner)
    with owned.absent_as_not_found(ref):
        store.delete(ref, [grants.grantee_ref(g) for g in on_convo])
    jobs.send(jobs.PurgeJob.of(ref))
    try:
        realtime.farewell(ref.id, heard, "convoDeleted", {"id": ref.id})
    except Exception:  # the purge closes what is left; the deletion stands
        logger.warning(
            "closing a deleted convo's connections failed", extra={"convoId": ref.id}, exc_info=True
        )
    users = [g["granteeId"] for g in on_convo if g.get("granteeType") == ObjectType.user]
    announce(ref.id, identifier_streams.DELETED, users)


def _listeners(convo_id: str) -> realtime.Listeners:
    try:
        return realtime.listeners(convo_id)
    except Exception:  # nobody hears the deletion then; the purge still closes the sockets
        logger.warning("reading a convo's connections failed", extra={"convoId": convo_id}, exc_info=True)
        return realtime.Listeners([], [])


# -- The identifiers streams ---------------------------------------------------------------------------


LISTING_LIMIT = PAGE_LIMIT


def identifiers(access: Access) -> list[str]:
    """The ids of the caller's newest convos (at most `LISTING_LIMIT`), newest first: the first page
    of Query Convos, so exactly what the caller may list (its grants, its token's scope). What the
    Pieces surface lists and its identifiers stream sends."""
    convos, _ = query_convos(access, limit=LISTING_LIMIT, paged=False)
    return [c["id"] for c in convos]


def contents(convo_ids: list[str]) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """For convos just listed for the caller (`identifiers` / Query Convos: it may view each), their
    primary steps (the first `STEP_PAGE_LIMIT`, oldest first) and the ids of their linked data sources
    (oldest link first): 2 Queries per convo, run in parallel."""

    def read(convo_id: str) -> tuple[list[dict[str, Any]], list[str]]:
        page = steps.of_convo(convo_id, limit=STEP_PAGE_LIMIT)
        linked = grants.links_to(_convo(convo_id), ObjectType.data_source.value)
        return [s for s in page.items if not s.get("isAlternate")], [g["objectId"] for g in linked]

    return dict(zip(convo_ids, owned.concurrently(read, convo_ids), strict=True))


def announce(convo_id: str, change: str, users: Iterable[str]) -> None:
    """The one place a convo's creation, renaming or deletion (by REST, WebSocket, a surface, the
    answer that names it, or a purge) is told to the identifiers streams of the users who hold a grant
    on it (`kallo.realtime.identifiers`, which re-checks each stream's principal: I8). A failure is
    logged, never the caller's: the change itself is made."""
    try:
        identifier_streams.announce(convo_id, change, users, identifiers)
    except Exception:
        logger.warning("announcing a convo change failed", extra={"convoId": convo_id}, exc_info=True)


def announce_renamed(convo_id: str) -> None:
    """A convo was renamed: its user grantees' streams hear it (1 Query reads them)."""
    try:
        users = _user_grantees(_convo(convo_id))
    except Exception:
        logger.warning("reading a renamed convo's users failed", extra={"convoId": convo_id}, exc_info=True)
        return
    announce(convo_id, identifier_streams.RENAMED, users)


# -- Topic config, steps, users -----------------------------------------------------------------------


def _owner(access: Access, obj: Ref) -> Ref | None:
    """The team or topic that owns an object (None for a user's): its structural grants were read by
    the permission check, so this costs nothing."""
    return grants.owner_of(access.structural_grants(obj))


def get_topic_config(access: Access, convo_id: str) -> dict[str, Any]:
    """The config the owning topic gives its convos (`{defaults: {}}` when no topic owns it)."""
    ref = _convo(convo_id)
    access.require(ref)
    owner = _owner(access, ref)
    topic = objects.get(owner) if owner and owner.type == ObjectType.topic else None
    config = (topic or {}).get("config") or {}
    return {"defaults": config.get("defaults") or {}}


def query_convo_steps(
    access: Access,
    convo_id: str,
    *,
    after: datetime | None = None,
    limit: int = STEP_PAGE_LIMIT,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the convo's steps, oldest first (only those created after `after`, a datetime)."""
    ref = _convo(convo_id)
    # With the convo's chain remembered (a check in the last minute, or its owner grant's hint read by
    # the convo's Query), one BatchGetItem checks it (`Access.direct`); else the whole check.
    if not remembers(ref):
        access.structural_grants(ref)
    if not (remembers(ref) and access.direct(ref, Permission.can_view)):
        access.require(ref)
    # The cursor is bound to `after` too: a start key outside the range is DynamoDB's 400.
    kind = f"convo-steps/{convo_id}/{after.isoformat() if after else ''}"
    start = paging.position(next_token, kind=kind, principal=access.principal)
    page = steps.of_convo(convo_id, after=after, limit=limit, start_key=start)
    return page.items, paging.cursor(page.last_key, kind=kind, principal=access.principal)


def _user_grantees(obj: Ref) -> list[str]:
    return [g["granteeId"] for g in grants.all_of_object(obj, grantee_type=ObjectType.user.value)]


def query_convo_users(
    access: Access, convo_id: str, *, contributors: bool = False, everyone: bool = False
) -> list[str]:
    """User ids, sorted: by default the convo's direct user grantees; `contributors`, those who wrote at
    least one step; `everyone` (the seed's `all`), the direct grantees plus the members of the team that
    owns the convo, or the direct grantees of the topic that owns it and the members of that topic's
    owning team."""
    if contributors and everyone:
        raise BadRequest("give contributors or all, not both", code="ambiguous_filter")
    ref = _convo(convo_id)
    access.require(ref)
    if contributors:
        return sorted(set(steps.contributors(convo_id)))
    users = set(_user_grantees(ref))
    if everyone:
        owner = _owner(access, ref)
        if owner is not None:
            users.update(_user_grantees(owner))
            topic_owner = _owner(access, owner) if owner.type == ObjectType.topic else None
            if topic_owner is not None and topic_owner.type == ObjectType.team:
                users.update(_user_grantees(topic_owner))
    return sorted(users)
