"""Acting for users: the one place that decides whether a caller may act for (or mint tokens for) a user.

I1 (authority): a caller has authority over itself, and a service account over the users it created
itself, as recorded on the user item (`createdBy`, written by `store.users.create`). Nothing else gives
authority: not a team membership, not an invitation (accepted or not), not an email address or a
firebaseId, not an admin or owner grant on a user object (Add / Set Grantees can make those).

I3 (scope): acting for a user, oneself included, is an operation on that user object, so an access
token must hold the whole-user scope `{type: user, id: <user>}`. Outside it the user is hidden like any
object outside a token's scope: 404, as if unknown.

Costs in AWS calls: none for oneself; 1 GetItem (the user item) for anyone else.
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.errors import NotFound
from kallo.store import users
from kallo.store.keys import Ref


def over(access: Access, user: dict[str, Any]) -> bool:
    """Whether the caller has authority over this (already read) user item (I1, I3)."""
    me = access.principal.user_id
    if not me or (user["id"] != me and user.get("createdBy") != me):
        return False
    return access.in_scope(Ref("user", user["id"]))


def has_authority(access: Access, user_id: str) -> bool:
    """Whether the caller may act for `user_id` (I1): itself, or a user it created; within its token's
    scope (I3)."""
    if user_id == access.principal.user_id:
        return over(access, {"id": user_id})
    user = users.get(user_id)
    return user is not None and over(access, user)


def acting_for(access: Access, user_id: str | None) -> Access:
    """The access of the user a request acts for: the caller itself when `user_id` is absent; a named
    user (the caller's own id included) only under the caller's authority and scope, anyone else 404.

    Without `user_id` the caller's own access is returned as is: what it then reads or writes is
    bounded by its scope object by object (lists keep what is in scope, creations check the owner).
    Operations on the user object itself (stats, related users, profile) name the user explicitly.
    """
    if user_id is None:
        return access
    if not has_authority(access, user_id):
        raise NotFound(f"user {user_id} not found")
    if user_id == access.principal.user_id:
        return access
    return Access(access.principal.acting_as(user_id))
