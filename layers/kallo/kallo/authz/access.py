"""Evaluates what one principal may do, reading grants at most once per object per request.

Cost of a check on an object: one Query per object in its inheritance chain that can itself inherit
(convos, topics, data sources, prompts) plus one BatchGetItem for the caller's grants on the whole
chain. For a convo owned by a topic owned by a team that is 3 calls, and further checks on the same
request are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kallo.auth.principal import Principal
from kallo.authz.policy import (
    MAX_INHERITANCE_DEPTH,
    STRUCTURAL_GRANTEE_TYPES,
    ObjectType,
    Permission,
    Role,
    greater,
    lesser,
    permissions_of,
)
from kallo.errors import Forbidden, NotFound
from kallo.store import grants
from kallo.store.keys import Ref, grant_key
from kallo.store.table import table

# Teams and users are never granted to other objects structurally, so they inherit nothing.
_NON_INHERITING = frozenset({ObjectType.team, ObjectType.user})
# The grants along which an access token's scope extends: ownership and dependent links.
_SCOPE_ROLES = frozenset({Role.owner, Role.dependent})


class Access:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._structural: dict[Ref, list[dict[str, Any]]] = {}
        self._direct: dict[Ref, Role | None] = {}
        self._objects: dict[Ref, dict[str, Any] | None] = {}
        # Read by an earlier check (`snapshot`): `require` reads afresh before deciding anything.
        self.remembered = False

    # -- reading the graph -------------------------------------------------------------------------

    def structural_grants(self, obj: Ref) -> list[dict[str, Any]]:
        if obj not in self._structural:
            self._structural[obj] = [] if obj.type in _NON_INHERITING else grants.structural(obj)
        return self._structural[obj]

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
        copy.remembered = True
        return copy

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
        """Whether the principal's own grant on `obj` alone gives `permission` (one BatchGetItem, no
        Query), when the token's scope needs no walk to cover `obj`. False says nothing: the whole
        check (`require`) decides then. Sound because inheritance only adds roles (`greater`) and
        every role's permissions include those of the roles ranked below it (`kallo.authz.policy`)."""
        scope = self.principal.scope
        me = Ref("user", self.principal.user_id or "")
        if scope is not None and me not in scope and obj not in scope:
            return False
        self._load_direct_roles([obj])
        role = self._direct.get(obj)
        if obj.type == ObjectType.user and obj.id == self.principal.user_id:
            role = Role.owner
        return permission in permissions_of(ObjectType(obj.type), role)


def preload_many(
    accesses: Sequence[Access],
    obj: Ref,
    *,
    structural: dict[Ref, list[dict[str, Any]]] | None = None,
    also: Sequence[dict[str, str]] = (),
) -> list[dict[str, Any]]:
    """Read what checks on one object by many principals need, at the cost of one check: `obj`'s
    chain is walked once (one Query per node that can inherit, but for the nodes `structural` gives)
    and shared by every Access, and all the principals' grants on it come in one BatchGetItem, with
    the items of the keys `also` names, which are returned. (Used by broadcasts, which re-check every
    connection of a convo, and their credentials.)"""
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
    read = table().batch_get([*keys, *also]) if keys or also else []
    found = {(grants.object_ref(i), grants.grantee_ref(i)): i for i in read if i.get("entity") == "grant"}
    for access in accesses:
        me = Ref("user", access.principal.user_id or "")
        for node in chain:
            if node not in access._direct:
                grant = found.get((node, me)) if access.principal.user_id else None
                access._direct[node] = Role(grant["role"]) if grant else None
    return [i for i in read if i.get("entity") != "grant"]
