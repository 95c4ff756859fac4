"""Evaluates what one principal may do, reading grants at most once per object per request.

Cost of a check on an object: one Query per object in its inheritance chain that can itself inherit
(convos, topics, data sources, prompts) plus one BatchGetItem for the caller's grants on the whole
chain. For a convo owned by a topic owned by a team that is 3 calls, and further checks on the same
request are free.

Remembered edges (`direct`): the structural grants a Query read are remembered in the process, per
object, for `EDGE_SECONDS`, as (object, grantee) pairs only. A hot path (`$connect`, Query Convo Steps,
a WebSocket message) may then check in ONE BatchGetItem: the principal's grants on every object of the
remembered chain and the remembered edges' grant items themselves, read live, and evaluated on what was
found alone. Sound whatever the remembered edges are: an edge counts only when its grant item is read
now (with the role it has now), and roles and scope only grow with edges (`greater`; a scope follows
owner and dependent edges), so a stale or missing edge can only lead to a refusal, which then makes the
whole check. Revocation bounds are unchanged: every grant a verdict rests on is read for it. What such
a check reads is never kept as an object's structural grants (services read those as complete lists).

Conditions instead of reads (`admission`, `$connect`): from a cold process, one Query reads an object's
structural grants with the principal's own grant on it (`structural_with_own`); a convo's owner grant
names its topic's edges (`chainHint`), so the path to the topic's team is known, and the grants on it
that were not read become conditions of the write the permission allows (a transaction's checks), which
then happens only if they stand at that moment: the bound is the same as a read's, or tighter. A failed
condition writes nothing, and the caller makes the whole check.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

from kallo.auth.principal import Principal
from kallo.authz.policy import (
    MAX_INHERITANCE_DEPTH,
    ROLE_RANK,
    STRUCTURAL_GRANTEE_TYPES,
    ObjectType,
    Permission,
    Role,
    greater,
    lesser,
    permissions_of,
)
from kallo.errors import Forbidden, NotFound
from kallo.store import grants, objects
from kallo.store.keys import Ref, grant_key, object_key
from kallo.store.table import table

# Teams and users are never granted to other objects structurally, so they inherit nothing.
_NON_INHERITING = frozenset({ObjectType.team, ObjectType.user})
# The grants along which an access token's scope extends: ownership and dependent links.
_SCOPE_ROLES = frozenset({Role.owner, Role.dependent})

EDGE_SECONDS = 60.0
_MAX_EDGES = 8192
# object → (monotonic time it expires, the grantees of its structural grants when a Query read them)
_edges: dict[Ref, tuple[float, tuple[Ref, ...]]] = {}
_edges_lock = threading.Lock()


def forget_edges() -> None:
    """Drop the remembered edges (tests that count calls from a cold process)."""
    with _edges_lock:
        _edges.clear()


def _remember_edges(obj: Ref, found: list[dict[str, Any]]) -> None:
    with _edges_lock:
        if len(_edges) >= _MAX_EDGES:
            _edges.clear()
        _edges[obj] = (time.monotonic() + EDGE_SECONDS, tuple(grants.grantee_ref(g) for g in found))


def remembers(obj: Ref) -> bool:
    """Whether the edges of `obj`'s whole chain are remembered (so `Access.direct` can check it as
    the whole check would, when nothing changed)."""
    return _remembered_chain(obj, complete=True) is not None


def edges_of(obj: Ref) -> tuple[Ref, ...] | None:
    """The grantees of `obj`'s structural grants as remembered (None: not remembered)."""
    with _edges_lock:
        entry = _edges.get(obj)
    return entry[1] if entry is not None and entry[0] > time.monotonic() else None


def chain_hint(obj: Ref, owner: Ref) -> dict[str, Any]:
    """The `chainHint` attribute for `obj`'s owner grant to `owner`: a convo owned by a topic carries
    the topic's edges as remembered (read by the owner's check a moment before), else nothing. Written
    by Create a Convo and PUT grantees, read by `_take_hints`."""
    hint = edges_of(owner) if obj.type == ObjectType.convo and owner.type == ObjectType.topic else None
    return {"chainHint": hint_of(hint)} if hint else {}


def hint_of(edges: Sequence[Ref]) -> list[str]:
    """A `chainHint` value: the grantees of a topic's structural grants, as `type#id`."""
    return [f"{r.type}#{r.id}" for r in edges]


def _take_hints(found: list[dict[str, Any]]) -> None:
    """A convo's owner grant carries its owner's edges as they were when it was written (`chainHint`,
    `kallo.services.convos`): remember them for that owner unless its own are. Only a hint: `direct`
    reads every edge it uses, so a stale one costs the whole check, never gives access."""
    for grant in found:
        hint = grant.get("chainHint")
        if grant.get("role") != Role.owner.value or not isinstance(hint, list):
            continue
        owner = grants.grantee_ref(grant)
        refs = tuple(Ref(*h.split("#", 1)) for h in hint if isinstance(h, str) and "#" in h)
        if edges_of(owner) is None and all(r.type in STRUCTURAL_GRANTEE_TYPES for r in refs):
            with _edges_lock:
                _edges[owner] = (time.monotonic() + EDGE_SECONDS, refs)


def _remembered_chain(obj: Ref, *, complete: bool = False) -> dict[Ref, tuple[Ref, ...]] | None:
    """The remembered edges of `obj`'s chain, breadth first up to the maximum depth; an object that
    can inherit and has none remembered (or expired) has none here (so the check sees fewer edges), or
    with `complete`, None is returned."""
    moment, chain, level = time.monotonic(), {}, [obj]
    with _edges_lock:
        for _ in range(MAX_INHERITANCE_DEPTH):
            following: list[Ref] = []
            for node in level:
                entry = _edges.get(node)
                known = entry is not None and entry[0] > moment
                if complete and not known and node.type not in _NON_INHERITING:
                    return None
                chain[node] = entry[1] if entry is not None and known else ()
                following.extend(g for g in chain[node] if g.type in STRUCTURAL_GRANTEE_TYPES)
            level = [n for n in dict.fromkeys(following) if n not in chain]
            if not level:
                break
        for node in level:
            chain.setdefault(node, ())
    return chain


class Access:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._structural: dict[Ref, list[dict[str, Any]]] = {}
        self._direct: dict[Ref, Role | None] = {}
        self._objects: dict[Ref, dict[str, Any] | None] = {}
        # Never Query: a node's structural grants are those given (a check on remembered edges).
        self._offline = False
        # Read by an earlier check (`snapshot`): `require` reads afresh before deciding anything.
        self.remembered = False

    # -- reading the graph -------------------------------------------------------------------------

    def structural_grants(self, obj: Ref) -> list[dict[str, Any]]:
        if obj not in self._structural:
            if obj.type in _NON_INHERITING or self._offline:
                self._structural[obj] = []
            else:
                self._structural[obj] = grants.structural(obj)
                _remember_edges(obj, self._structural[obj])
                _take_hints(self._structural[obj])
        return self._structural[obj]

    def structural_with_own(self, obj: Ref) -> None:
        """Read `obj`'s structural grants and the principal's own grant on it in ONE Query
        (`grants.structural_and_own`), instead of a Query and a BatchGetItem: what `admission` needs
        from a cold process. Both are this request's reads, kept as `structural_grants` and the
        principal's grants would be."""
        user_id = self.principal.user_id
        if obj in self._structural or obj.type in _NON_INHERITING or self._offline or not user_id:
            self.structural_grants(obj)
            return
        found = grants.structural_and_own(obj, Ref(ObjectType.user.value, user_id))
        own = [g for g in found if g["granteeType"] == ObjectType.user.value]
        self._structural[obj] = [g for g in found if g["granteeType"] in STRUCTURAL_GRANTEE_TYPES]
        _remember_edges(obj, self._structural[obj])
        _take_hints(self._structural[obj])
        self._direct[obj] = Role(own[0]["role"]) if own and own[0]["granteeId"] == user_id else None

    def _chain(self, obj: Ref) -> list[Ref]:
        """`obj` and every object it inherits from, breadth first, up to the maximum depth."""
        return self._walk(obj, roles=None)

    def _walk(self, obj: Ref, *, roles: frozenset[Role] | None) -> list[Ref]:
        """`obj` and the grantees of its structural grants (only those of `roles`, when given),
        transitively, breadth first, up to the maximum depth."""
        seen, level = [obj], [obj]
        for _ in range(MAX_INHERITANCE_DEPTH):
            level = [
                grants.grantee_ref(g)
                for node in level
                for g in self.structural_grants(node)
                if g["granteeType"] in STRUCTURAL_GRANTEE_TYPES and (roles is None or g["role"] in roles)
            ]
            level = [n for n in level if n not in seen]
            seen.extend(level)
            if not level:
                break
        return seen

    def _load_direct_roles(self, nodes: list[Ref], objects: Sequence[Ref] = ()) -> None:
        """The principal's grants on `nodes` (and the items of `objects`), those not read yet, in one
        BatchGetItem."""
        user_id = self.principal.user_id
        missing = [n for n in nodes if n not in self._direct] if user_id else []
        if not user_id:
            self._direct.update({n: None for n in nodes if n not in self._direct})
        wanted = [o for o in objects if o not in self._objects]
        if not missing and not wanted:
            return
        me = Ref("user", user_id or "")
        found, items = grants.batch_get_with_objects([(n, me) for n in missing], wanted)
        for node in missing:
            grant = found.get((node, me))
            self._direct[node] = Role(grant["role"]) if grant else None
        for ref in wanted:
            self._objects[ref] = items.get(ref)

    def preload(self, objs: list[Ref]) -> None:
        """Read what checks on many objects need up front: their chains' structural grants, then the
        principal's grants on all of those objects in one BatchGetItem (instead of one per object)."""
        nodes = [node for obj in objs for node in self._chain(obj)]
        self._load_direct_roles(list(dict.fromkeys(nodes)))

    def holds_grant(self, obj: Ref) -> bool | None:
        """Whether the principal holds a grant of its own on `obj`, as read by an earlier check of this
        Access (None: not read)."""
        if obj not in self._direct:
            return None
        return self._direct[obj] is not None

    def snapshot(self) -> Access:
        """A new Access for the same principal holding what this one has read (each dict copied, so
        the two never share later reads). `kallo.realtime.audience` hands one out for each message of a
        connection checked moments ago (I8: within its bound)."""
        copy = Access(self.principal)
        copy._structural = dict(self._structural)
        copy._direct = dict(self._direct)
        copy._objects = dict(self._objects)
        copy.remembered = True
        return copy

    def item(self, ref: Ref) -> dict[str, Any] | None:
        """The item of `ref` (public fields) as read with this Access's checks (`read`,
        `preload_many(owner_item=True)`), None when none was. Not a permission: the caller says why the
        item's age is fine for its use (a remembered Access's items are as old as its grants)."""
        return self._objects.get(ref)

    def refresh(self) -> None:
        """Forget what was read, so the next check reads the grants afresh."""
        self._structural, self._direct, self._objects = {}, {}, {}
        self.remembered = False

    # -- evaluation --------------------------------------------------------------------------------

    def role(self, obj: Ref) -> Role | None:
        """The highest role the principal holds on `obj`, directly or inherited (ignoring scope)."""
        if self.remembered:
            self.refresh()
        self._load_direct_roles(self._chain(obj))
        return self._role(obj, MAX_INHERITANCE_DEPTH)

    def _role(self, obj: Ref, depth: int) -> Role | None:
        best = self._direct.get(obj)
        if obj.type == ObjectType.user and obj.id == self.principal.user_id:
            best = Role.owner
        if depth == 0:
            return best
        for grant in self.structural_grants(obj):
            inherited = self._role(grants.grantee_ref(grant), depth - 1)
            if inherited is not None:
                best = greater(best, lesser(Role(grant["role"]), inherited))
        return best

    def in_scope(self, obj: Ref) -> bool:
        """Whether an access token's scope covers `obj`: a scope object, or anything it owns or links.

        I3 (scope): the whole-user scope `{type: user, id: <self>}` covers everything; the token's own
        user object (its grantees, profile, stats, related users) is covered by nothing less. A user
        object owns and links nothing, so it is in scope only when it is a scope object itself.
        """
        scope = self.principal.scope
        if scope is None:
            return True
        if Ref("user", self.principal.user_id or "") in scope:
            return True
        return any(node in scope for node in self._scope_chain(obj))

    def _scope_chain(self, obj: Ref) -> list[Ref]:
        """`obj` and what owns it or links it, transitively: a scope covers what its objects own and
        link (API.md), not what is merely shared with them (a topic shared with a team is not the
        team's, so a team-scoped token must not act on it)."""
        return self._walk(obj, roles=_SCOPE_ROLES)

    def require_scope_for_owner(self, owner: Ref) -> None:
        """Creating an object owned by `owner` needs a token whose scope covers that owner; owning
        something as oneself needs the whole-user scope `{type: user, id: <self>}`."""
        scope = self.principal.scope
        if scope is None or Ref("user", self.principal.user_id or "") in scope:
            return
        if owner.type == ObjectType.user or not self.in_scope(owner):
            raise Forbidden("the access token's scope does not cover this owner", code="out_of_scope")

    def permissions(self, obj: Ref) -> frozenset[Permission]:
        """What the principal may do on `obj`. An Access remembered from an earlier check (`snapshot`)
        reads afresh first: a decision is always made on grants read for it."""
        if self.remembered:
            self.refresh()
        if not self.in_scope(obj):
            return frozenset()
        return permissions_of(ObjectType(obj.type), self.role(obj))

    def can(self, obj: Ref, permission: Permission) -> bool:
        return permission in self.permissions(obj)

    def require(
        self, obj: Ref, permission: Permission = Permission.can_view, *, hidden_as: Ref | None = None
    ) -> frozenset[Permission]:
        """Raise unless the principal holds `permission` on `obj`: 404 when it cannot even see the
        object (so hidden objects are indistinguishable from missing ones), 403 when it can.

        I7 (errors): when `obj` was reached through another object the caller named (a step's convo),
        `hidden_as` is that object, and the 404 names it alone, worded as for a missing one: the
        hidden object's id is never told. (A 403 may name `obj`: the caller can see it.)"""
        held = self.permissions(obj)
        if Permission.can_view not in held:
            shown = hidden_as or obj
            raise NotFound(f"{shown.type} {shown.id} not found")
        if permission not in held:
            raise Forbidden(
                f"{permission.value} is required on {obj.type} {obj.id}", code="permission_denied"
            )
        return held

    def read(
        self, obj: Ref, permission: Permission = Permission.can_view, *, hidden_as: Ref | None = None
    ) -> dict[str, Any]:
        """`require(obj, permission)`, then the object's item (public fields), read in the same
        BatchGetItem as the principal's grants on its chain: the check and the read cost the check
        alone. A missing object is 404 like a hidden one (I4)."""
        if self.remembered:
            self.refresh()
        self._load_direct_roles(self._chain(obj), objects=[obj])
        self.require(obj, permission, hidden_as=hidden_as)
        found = self._objects.get(obj)
        if found is None:
            shown = hidden_as or obj
            raise NotFound(f"{shown.type} {shown.id} not found")
        return found

    def direct(self, obj: Ref, permission: Permission) -> bool:
        """Whether the principal's grants on `obj`'s remembered chain, with the remembered edges, give
        `permission` on it, all read in ONE BatchGetItem (no Query); with no edge remembered, the
        principal's own grant on `obj` alone; no read when its own grant, already read, suffices.
        False says nothing: the whole check (`require`) decides then. Sound (see the module's docstring): only edges and grants read now count, and they can
        only give less than the whole check would. The principal's grants read are kept (they are this
        request's); the edges are not (they may be fewer than the object's structural grants)."""
        me = Ref("user", self.principal.user_id or "")
        if not self.principal.user_id:
            return False
        scope = self.principal.scope
        if obj in self._direct and (scope is None or me in scope or obj in scope):
            # The principal's own grant, already read (a remembered Access's, within its bound), may
            # suffice alone: no read at all.
            role = Role.owner if obj == me else self._direct[obj]
            if permission in permissions_of(ObjectType(obj.type), role):
                return True
        chain = _remembered_chain(obj) or {}
        nodes = list(dict.fromkeys([*chain, *(g for gs in chain.values() for g in gs)]))
        edges = [(node, grantee) for node, grantees in chain.items() for grantee in grantees]
        missing = [n for n in nodes if n not in self._direct]
        found = grants.batch_get([*((n, me) for n in missing), *edges]) if missing or edges else {}
        for node in missing:
            grant = found.get((node, me))
            self._direct[node] = Role(grant["role"]) if grant else None
        trial = Access(self.principal)
        trial._offline = True
        trial._direct = dict(self._direct)
        trial._structural = {
            node: [found[(node, g)] for g in grantees if (node, g) in found]
            for node, grantees in chain.items()
        }
        return permission in trial.permissions(obj)

    def admission(self, obj: Ref, permission: Permission) -> list[dict[str, Any]] | None:
        """The conditions under which the principal holds `permission` on `obj`, for a write that
        needs it to carry as its transaction's checks (`grants.role_check`), instead of reading them:
        [] when what this Access read already gives it; else, when `obj`'s chain is remembered, the
        path to the first team the chain reaches (breadth first), each of its grants not read by this
        Access (edges, and the principal's grant on the team) required to hold a role of at least the
        least rank that gives the permission; None when there is no such path (the caller then checks
        with reads).

        Sound: the write happens only if every conditioned grant exists with such a role at that very
        moment (a transaction's checks), and what was read counts as read, so the verdict rests on
        grants that stand when the write is made, as `direct`'s does. The roles are found by
        evaluating the ordinary check offline with each unread grant at that least rank (scope
        included, which follows only owner and dependent edges: when the scope needs it, an edge is
        supposed, and required, to be an owner grant); inherited roles only grow with the roles of
        grants (`lesser`, `greater`) and scope with edges, and the permission must hold for every
        role ranked above (else None), so any role the condition admits gives at least what the
        trial found. A stale or wrong edge, a hint naming a team of
        another tenant, a member removed: a condition fails, nothing is written, and the caller makes
        the whole check."""
        if not self.principal.user_id:
            return None
        me = Ref(ObjectType.user.value, self.principal.user_id)
        if self._trial(obj, {}, {}).can(obj, permission):
            return []
        holding = [r for r in Role if permission in permissions_of(ObjectType(obj.type), r)]
        if not holding:
            return None
        least = min(holding, key=lambda r: ROLE_RANK[r])
        at_least = sorted(r.value for r in Role if ROLE_RANK[r] >= ROLE_RANK[least])
        if any(Role(r) not in holding for r in at_least):
            return None  # the permission is not monotone in rank on this type: no role condition fits
        path = _path_to_team(obj, _remembered_chain(obj, complete=True))
        if path is None:
            return None
        team = path[-1][1]
        edges = [(node, grantee) for node, grantee in path if node not in self._structural]
        own = None if team in self._direct else least
        # An edge supposed at the least rank is followed by no scope: a token scoped to the team needs
        # the edges to be owner grants (as a team's topic's is), so those are tried next, fewest first.
        for owners in range(len(edges) + 1):
            for owned in itertools.combinations(edges, owners):
                supposed = {edge: Role.owner if edge in owned else least for edge in edges}
                trial = self._trial(obj, supposed, {team: own} if own else {})
                if trial.can(obj, permission):
                    checks = [
                        grants.role_check(
                            node, grantee, [Role.owner.value] if (node, grantee) in owned else at_least
                        )
                        for node, grantee in edges
                    ]
                    return checks + ([grants.role_check(team, me, at_least)] if own is not None else [])
            if least == Role.owner:
                break
        return None

    def _trial(self, obj: Ref, edges: dict[tuple[Ref, Ref], Role], own: dict[Ref, Role]) -> Access:
        """An Access that reads nothing: what this one read, plus the `edges` and the principal's `own`
        grants as supposed (each with the role given); whatever was not read is absent."""
        trial = Access(self.principal)
        trial._offline = True
        trial._structural = {node: list(found) for node, found in self._structural.items()}
        for (node, grantee), role in edges.items():
            supposed = {
                "objectType": node.type,
                "objectId": node.id,
                "granteeType": grantee.type,
                "granteeId": grantee.id,
                "role": role.value,
            }
            trial._structural.setdefault(node, []).append(supposed)
        trial._direct = {**self._direct, **own}
        nodes = {
            obj,
            *trial._structural,
            *(grants.grantee_ref(g) for gs in trial._structural.values() for g in gs),
        }
        for node in nodes:
            trial._direct.setdefault(node, None)
        return trial


def _path_to_team(obj: Ref, chain: dict[Ref, tuple[Ref, ...]] | None) -> list[tuple[Ref, Ref]] | None:
    """The edges from `obj` to the first team its remembered chain reaches, breadth first (None: none)."""
    if chain is None:
        return None
    parent: dict[Ref, Ref] = {}
    level = [obj]
    while level:
        following = []
        for node in level:
            for grantee in chain.get(node, ()):
                if grantee == obj or grantee in parent:
                    continue
                parent[grantee] = node
                if grantee.type == ObjectType.team:
                    path, child = [], grantee
                    while child != obj:
                        path.append((parent[child], child))
                        child = parent[child]
                    return path[::-1]
                following.append(grantee)
        level = following
    return None


def preload_many(
    accesses: Sequence[Access],
    obj: Ref,
    *,
    structural: dict[Ref, list[dict[str, Any]]] | None = None,
    also: Sequence[dict[str, str]] = (),
    owner_item: bool = False,
) -> list[dict[str, Any]]:
    """Read what checks on one object by many principals need, at the cost of one check: `obj`'s
    chain is walked once (one Query per node that can inherit, but for the nodes `structural` gives)
    and shared by every Access, and all the principals' grants on it come in one BatchGetItem, with
    the items of the keys `also` names, which are returned. (Used by broadcasts, which re-check every
    connection of a convo, and their credentials.) `owner_item`: when a topic owns `obj`, its item
    comes in the same BatchGetItem and every Access keeps it (`Access.item`)."""
    if not accesses:
        return list(table().batch_get(also)) if also else []
    first = accesses[0]
    first._structural.update(structural or {})
    chain = first._chain(obj)
    for other in accesses[1:]:
        other._structural.update(first._structural)
    wanted = {
        (node, Ref("user", a.principal.user_id)): None
        for a in accesses
        if a.principal.user_id
        for node in chain
        if node not in a._direct
    }
    keys = [grant_key(o, g) for o, g in wanted]
    owner = grants.owner_of(first._structural.get(obj, [])) if owner_item else None
    owners = [object_key(owner)] if owner is not None and owner.type == ObjectType.topic else []
    read = table().batch_get([*keys, *owners, *also]) if keys or owners or also else []
    found = {(grants.object_ref(i), grants.grantee_ref(i)): i for i in read if i.get("entity") == "grant"}
    if owner is not None and owners:
        owned = next((i for i in read if i["PK"] == owners[0]["PK"] and i["SK"] == owners[0]["SK"]), None)
        read = [i for i in read if i is not owned]
        for access in accesses:
            access._objects[owner] = objects.public(owned) if owned is not None else None
    for access in accesses:
        me = Ref("user", access.principal.user_id or "")
        for node in chain:
            if node not in access._direct:
                grant = found.get((node, me)) if access.principal.user_id else None
                access._direct[node] = Role(grant["role"]) if grant else None
    return [i for i in read if i.get("entity") != "grant"]
