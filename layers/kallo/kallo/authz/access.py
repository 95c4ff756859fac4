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
from kallo.store.keys import Ref

# Teams and users are never granted to other objects structurally, so they inherit nothing.
_NON_INHERITING = frozenset({ObjectType.team, ObjectType.user})
# The grants along which an access token's scope extends: ownership and dependent links.
_SCOPE_ROLES = frozenset({Role.owner, Role.dependent})


class Access:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._structural: dict[Ref, list[dict[str, Any]]] = {}
        self._direct: dict[Ref, Role | None] = {}

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

    def _load_direct_roles(self, nodes: list[Ref]) -> None:
        user_id = self.principal.user_id
        missing = [n for n in nodes if n not in self._direct]
        if not missing:
            return
        if not user_id:
            self._direct.update(dict.fromkeys(missing))
            return
        me = Ref("user", user_id)
        found = grants.batch_get([(n, me) for n in missing])
        for node in missing:
            grant = found.get((node, me))
            self._direct[node] = Role(grant["role"]) if grant else None

    def preload(self, objs: list[Ref]) -> None:
        """Read what checks on many objects need up front: their chains' structural grants, then the
        principal's grants on all of those objects in one BatchGetItem (instead of one per object)."""
        nodes = [node for obj in objs for node in self._chain(obj)]
        self._load_direct_roles(list(dict.fromkeys(nodes)))

    # -- evaluation --------------------------------------------------------------------------------

    def role(self, obj: Ref) -> Role | None:
        """The highest role the principal holds on `obj`, directly or inherited (ignoring scope)."""
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


def preload_many(accesses: Sequence[Access], obj: Ref) -> None:
    """Read what checks on one object by many principals need, at the cost of one check: `obj`'s
    chain is walked once (one Query per node that can inherit) and shared by every Access, and all
    the principals' grants on it come in one BatchGetItem. (Used by broadcasts, which re-check every
    connection of a convo.)"""
    if not accesses:
        return
    first = accesses[0]
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
    found = grants.batch_get(list(wanted)) if wanted else {}
    for access in accesses:
        me = Ref("user", access.principal.user_id or "")
        for node in chain:
            if node not in access._direct:
                grant = found.get((node, me)) if access.principal.user_id else None
                access._direct[node] = Role(grant["role"]) if grant else None
