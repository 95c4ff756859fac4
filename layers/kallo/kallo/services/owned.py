"""What every owned object shares (topics, prompts, convos, data sources): the owner named by the
`userId` / `teamId` query parameters, writing an object with its owner grant, editing it, and listing the
objects a caller can view without a call per object.

Costs in AWS calls (`n` objects, `T` teams the caller belongs to; a permission check is a Query per
object of the inheritance chain and a BatchGetItem, see `kallo.authz.access`):
- `viewable_among`: 1 BatchGetItem for the objects, then 1 Query for the caller's teams and
  ceil(n·(1+T)/100) BatchGetItem for its and its teams' grants on the objects that exist;
- a `list_viewable` page: 1 Query for the caller's teams, 1+T Queries (run side by side) for its own and
  its teams' grants, 1 BatchGetItem for the page's objects;
- scoped access tokens (other than the whole-user scope) add the scope check, a Query per listed object;
- a page that takes or returns a cursor reads the signing secret once per container (`kallo.paging`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from kallo import paging
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role, greater, lesser, permissions_of
from kallo.clock import now_iso
from kallo.errors import BadRequest, Conflict, NotFound
from kallo.paging import PAGE_LIMIT
from kallo.services import authority
from kallo.store import grants, objects
from kallo.store.keys import Ref

# A listing queries the caller's own grants and each of its teams' grants: a few threads keep the
# latency near one query's while bounding the connections a Lambda opens.
MAX_THREADS = 8

T = TypeVar("T")
R = TypeVar("R")


# -- owned objects ----------------------------------------------------------------------------------- ---------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The owner of a new object, and the user recorded as its creator."""

    ref: Ref
    created_by: str


# What it takes to create an object under an owner that is not a user, by (owner type, object type):
# a team's topics, prompts and data sources are made by those who may edit the team (its admins and
# owner); a convo is started in a team or topic by whoever may chat there.
_TO_OWN: dict[tuple[str, str], Permission] = {
    (ObjectType.team, ObjectType.topic): Permission.can_edit,
    (ObjectType.team, ObjectType.prompt): Permission.can_edit,
    (ObjectType.team, ObjectType.data_source): Permission.can_edit,
    (ObjectType.team, ObjectType.convo): Permission.can_chat,
    (ObjectType.topic, ObjectType.convo): Permission.can_chat,
}


def require_can_own(access: Access, owner: Ref, object_type: str) -> Owner:
    """The owner of an object of `object_type` when the caller may make it so, the user recorded as
    the one who did, or 404 / 403.

    I5 (ownership moves): the one rule for giving an object an owner, whether it is created under it
    (Create New Topic / Prompt / Convo, Upload New File) or given to it later (Set Grantees). A team or
    topic owner needs the permission `_TO_OWN` names on it (404 when the caller cannot see it, 403
    when it can but lacks the permission), so no one moves its objects into a team it could not create
    them in. A user owner is the caller itself or a user the caller has authority over
    (`authority.acting_for`, 404 for anyone else), who then counts as the one acting. Either way an
    access token's scope must cover the owner (`Access.require_scope_for_owner`).
    """
    if owner.type == ObjectType.user:
        # The caller's own id (or an empty one, when an OIDC user has none yet) is the caller itself:
        # its token's scope is then checked below (403 out_of_scope), not its authority over itself.
        named = None if owner.id in ("", access.principal.user_id) else owner.id
        acting = authority.acting_for(access, named).principal.user_id or ""
        result = Owner(Ref(ObjectType.user.value, acting), acting)
    else:
        needed = _TO_OWN.get((owner.type, object_type))
        if needed is None:
            raise BadRequest(f"a {owner.type} cannot own a {object_type}", code="grant_not_supported")
        access.require(owner, needed)
        result = Owner(owner, access.principal.user_id or "")
    access.require_scope_for_owner(result.ref)
    return result


def owner_for(access: Access, object_type: str, *, user_id: str | None, team_id: str | None) -> Owner:
    """The owner named by the `userId` / `teamId` query parameters (at most one; neither: the caller),
    checked by `require_can_own`."""
    if user_id and team_id:
        raise BadRequest("give userId or teamId, not both", code="ambiguous_owner")
    if team_id:
        return require_can_own(access, Ref(ObjectType.team.value, team_id), object_type)
    me = user_id or access.principal.user_id or ""
    return require_can_own(access, Ref(ObjectType.user.value, me), object_type)


def create_owned(
    owner: Owner, ref: Ref, fields: dict[str, Any], *, expires: int | None = None
) -> dict[str, Any]:
    """Write a new object and its owner grant in one transaction. I4 (ids): `ref`'s id is one the
    server just made (uuid4), never a client's; the create guard (409 should the id be taken) is
    a safety net that no request can reach, so it tells nothing about other tenants' objects. With
    `expires` (epoch seconds), both carry it as their `ttl`: DynamoDB deletes them then, unless the
    object is confirmed meanwhile (the `ttl` removed from both)."""
    now = now_iso()
    body = {**fields, "createdBy": owner.created_by, "createdAt": now, "updatedAt": now}
    if owner.ref.type == "team":
        body["teamId"] = owner.ref.id
    item = objects.item(ref, body)
    grant = grants.item(ref, owner.ref, Role.owner.value, created_by=owner.created_by, created_at=now)
    if expires is not None:
        item["ttl"] = grant["ttl"] = expires
    try:
        objects.create_with_owner(item, grant)
    except Conflict as error:
        raise Conflict(f"{ref.type} {ref.id} already exists", code="already_exists") from error
    return objects.public(item)


@contextmanager
def absent_as_not_found(*refs: Ref) -> Iterator[None]:
    """A write conditioned on objects' existence fails when one was deleted: grants can outlive their
    object until the purge worker runs, so a permission check alone does not prove it exists."""
    try:
        yield
    except Conflict as error:
        raise NotFound(" or ".join(f"{r.type} {r.id}" for r in refs) + " not found") from error


def update_owned(access: Access, ref: Ref, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH to an object the caller may edit; returns the whole object after it."""
    access.require(ref, Permission.can_edit)
    with absent_as_not_found(ref):
        return objects.update(ref, {**changes, "updatedAt": now_iso()})


def require_existing(ref: Ref) -> dict[str, Any]:
    found = objects.get(ref)
    if found is None:
        raise NotFound(f"{ref.type} {ref.id} not found")
    return found


# -- what a caller can view, without a call per object -----------------------------------------------


def concurrently(work: Callable[[T], R], inputs: Sequence[T], *, threads: int = MAX_THREADS) -> list[R]:
    """`work` on every input, side by side on at most `threads` threads; results in input order."""
    if len(inputs) <= 1:
        return [work(i) for i in inputs]
    with ThreadPoolExecutor(max_workers=min(threads, len(inputs))) as pool:
        return list(pool.map(work, inputs))


def _team_roles(me: Ref) -> dict[Ref, Role]:
    """The caller's role on each team it belongs to (teams inherit nothing, so this is all of it)."""
    return {grants.object_ref(g): Role(g["role"]) for g in grants.all_of_grantee(me, object_type="team")}


def _roles(found: Iterable[dict[str, Any]], me: Ref, team_roles: dict[Ref, Role]) -> dict[str, Role]:
    """The caller's role on each object, from its own grants on them and its teams' grants on them.

    This is `Access.role` evaluated in bulk for topics and prompts: a grant to a team passes on the lesser
    of its role and the caller's role on the team. (Prompts also inherit from the topics they are set
    on; listings leave those out, Query Prompts `topicId` returns them.)
    """
    roles: dict[str, Role] = {}
    for grant in found:
        grantee, held = grants.grantee_ref(grant), Role(grant["role"])
        if grantee in team_roles:
            held = lesser(held, team_roles[grantee])
        elif grantee != me:
            continue
        roles[grant["objectId"]] = greater(roles.get(grant["objectId"]), held) or held
    return roles


def _viewable(access: Access, ref: Ref, role: Role | None) -> bool:
    return Permission.can_view in permissions_of(ObjectType(ref.type), role) and access.in_scope(ref)


def viewable_among(access: Access, refs: list[Ref]) -> list[dict[str, Any]]:
    """The objects among `refs` (same type, at most 100) that exist and the caller can view, in order;
    the others are simply absent."""
    found = objects.batch_get(refs)
    present = [r for r in refs if r in found]
    if not present:
        return []
    me = Ref("user", access.principal.user_id or "")
    team_roles = _team_roles(me)
    held = grants.batch_get([(r, grantee) for r in present for grantee in (me, *team_roles)])
    roles = _roles(held.values(), me, team_roles)
    return [found[r] for r in present if _viewable(access, r, roles.get(r.id))]


def _after(access: Access, token: str | None, object_type: str) -> str:
    """The id a page starts after ("" for the first page)."""
    found = paging.position(token, kind=_listing(access, object_type), principal=access.principal)
    after = (found or {}).get("after", "")
    if not isinstance(after, str):
        raise paging.invalid()
    return after


def _listing(access: Access, object_type: str) -> str:
    # The listing of one user's objects of one type (the caller, or a user it acts for).
    return f"owned/{object_type}/{access.principal.user_id or ''}"


@dataclass
class _Source:
    grants: list[dict[str, Any]]
    more: bool


def _grants_after(grantee: Ref, object_type: str, after: str, limit: int) -> _Source:
    """Up to `limit` of a grantee's grants on objects of a type, in object-id order, after an id.

    GSI1 sorts a grantee's grants by `<objectType>#<objectId>`: the key condition starts right after
    the cursor and the first grant on another type ends the source.
    """
    page = grants.of_grantee_after(grantee, Ref(object_type, after), limit)
    mine = [g for g in page.items if g["objectType"] == object_type]
    return _Source(mine, bool(page.last_key) and len(mine) == len(page.items))


def list_viewable(
    access: Access, object_type: str, *, limit: int = PAGE_LIMIT, next_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the objects of a type the caller holds a grant on, itself or through its teams, in
    id order, and the cursor of the next page (None on the last; a page may hold fewer than `limit`
    objects, even none, when grants outlive deleted objects or fall outside a token's scope).

    Each source (the caller, each of its teams) is sorted by object id, so the page's first `limit` ids
    of the merged sources are among the first `limit` of each source: every grant that decides a listed
    object's role is read, at one Query per source whatever the page.
    """
    after = _after(access, next_token, object_type)
    me = Ref("user", access.principal.user_id or "")
    team_roles = _team_roles(me)
    sources = concurrently(lambda g: _grants_after(g, object_type, after, limit), [me, *team_roles])
    by_id: dict[str, list[dict[str, Any]]] = {}
    for source in sources:
        for grant in source.grants:
            by_id.setdefault(grant["objectId"], []).append(grant)
    ids = sorted(by_id)[:limit]
    more = len(by_id) > limit or any(s.more for s in sources)
    roles = _roles((g for i in ids for g in by_id[i]), me, team_roles)
    refs = [Ref(object_type, i) for i in ids]
    found = objects.batch_get(refs) if refs else {}
    page = [found[r] for r in refs if r in found and _viewable(access, r, roles.get(r.id))]
    position = {"after": ids[-1]} if more and ids else None
    return page, paging.cursor(position, kind=_listing(access, object_type), principal=access.principal)
