"""Acting for users: the one place that decides whether a caller may act for (or mint tokens for) a user.

I1 (authority): a caller has authority over itself, and a service account over the users it created
itself, as recorded on the user item (`createdBy`, written by `store.users.create`). Nothing else gives
authority: not a team membership, not an invitation (accepted or not), not an email address or a
firebaseId, not an admin or owner grant on a user object (Add / Set Grantees can make those).

I3 (scope): acting for a user, oneself included, is an operation on that user object, so an access
token must hold the whole-user scope `{type: user, id: <user>}`. Outside it the user is hidden like any
object outside a token's scope: 404, as if unknown.

I1 / I4 (reachable users): a user may be NAMED by id as a grantee or a team member only by a caller in
the same tenant (`reaches`, on items the operation reads in its own BatchGetItem, `caller_keys` saying
what it needs of the caller). The tenant of a user is the service account that created it
(`createdBy`); a service account and a self-registered OIDC user are each their own. So a caller
reaches itself, the users it has authority over and its tenant's other users; another tenant's user
answers 404 with the very message a missing id gets, so no one learns which ids exist elsewhere or
pushes grants onto them. People outside the tenant are reached by email invitation, which the invitee
accepts (I2, `services.invitations`).

Costs in AWS calls: authority: none for oneself; 1 GetItem (the user item) for anyone else. Reaching a
user: none of its own (its items join the operation's BatchGetItem).
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


def tenant_of(user: dict[str, Any]) -> str:
    """The tenant of a user item: a service account and a self-registered (OIDC) user are their own;
    a user a service account created belongs to that service account (I1)."""
    if user.get("isServiceAccount"):
        return str(user["id"])
    return str(user.get("createdBy") or user["id"])


def caller_keys(access: Access) -> list[Ref]:
    """What `reaches` needs to read about the caller besides the named users: its own user item,
    unless it is a service account acting as itself (its own tenant)."""
    me = access.principal.user_id
    if not me or access.principal.is_service_account:
        return []
    return [Ref("user", me)]


def reaches(access: Access, user: dict[str, Any] | None, caller: dict[str, Any] | None) -> bool:
    """Whether the caller may name this (already read, None when missing) user by id as a grantee or a
    team member (I1/I4, see the module): it is the caller, or of the caller's tenant. `caller` is the
    caller's user item as read for `caller_keys` (unused for a service account acting as itself)."""
    me = access.principal.user_id
    if user is None or not me:
        return False
    if user["id"] == me:
        return True
    if access.principal.is_service_account:
        mine = me
    elif caller is not None:
        mine = tenant_of(caller)
    else:
        return False
    return tenant_of(user) == mine


def not_found(user_id: str) -> NotFound:
    """The one answer for a user the caller can't reach, whether it exists (in another tenant) or not."""
    return NotFound(f"user {user_id} not found")


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
        raise not_found(user_id)
    if user_id == access.principal.user_id:
        return access
    return Access(access.principal.acting_as(user_id))
