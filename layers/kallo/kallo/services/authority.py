"""Acting for other users: a caller acts for itself, or for a user it has authority over.

A service account has authority over the users it created (it holds `admin` on their user object)
and over members of teams it owns (API.md, Authentication) who joined by accepting an invitation:
a membership someone else granted does not give authority over a user who never consented.
"""

from __future__ import annotations

from kallo.authz.access import Access
from kallo.authz.policy import Role
from kallo.errors import NotFound
from kallo.store import grants
from kallo.store.keys import Ref


def has_authority(access: Access, user_id: str) -> bool:
    principal = access.principal
    if user_id == principal.user_id:
        return True
    if access.role(Ref("user", user_id)) in (Role.owner, Role.admin) and access.in_scope(
        Ref("user", user_id)
    ):
        return True
    if not principal.is_service_account or not principal.user_id:
        return False
    # Only memberships the user made (by accepting an invitation) count: otherwise the service account,
    # or any user it controls as a team admin, could add anyone whose id it knows to a team it owns and
    # act for them from then on.
    teams = [
        grants.object_ref(g)
        for g in grants.all_of_grantee(Ref("user", user_id), object_type="team")
        if g.get("createdBy") == user_id
    ]
    if not teams:
        return False
    me = Ref("user", principal.user_id)
    mine = grants.batch_get([(team, me) for team in teams])
    return any(g["role"] == Role.owner for g in mine.values())


def acting_for(access: Access, user_id: str | None) -> Access:
    """The access of the user the request acts for: the caller itself when `user_id` is absent or its
    own; another user only under the caller's authority (anyone else is 404, as if unknown)."""
    if user_id is None or user_id == access.principal.user_id:
        return access
    if not has_authority(access, user_id):
        raise NotFound(f"user {user_id} not found")
    return Access(access.principal.acting_as(user_id))
