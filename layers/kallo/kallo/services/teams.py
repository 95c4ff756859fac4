"""Teams: creation with the owner grant, the teams a user belongs to, edits, membership, and deletion.

A team's users are its user grants (`owner`, `admin`, `member`, `viewer`); teams inherit nothing, so a
permission check on a team is a single BatchGetItem (`kallo.authz.access`).

Costs in AWS calls (`c` = that check):
- Create: 1 TransactWriteItems;
- Query Teams: 1 Query (the user's team grants) + 1 BatchGetItem (those teams; none for no grant);
  for another user, + the authority check (`services.authority`);
- Update: c + 1 UpdateItem;
- Delete: c + 1 Query (grants naming the team) + 1 Query (the team's partition) + 1 TransactWriteItems
  + ceil(rest / 25) BatchWriteItem for members, invitations and the team's grants on others' objects;
- Get Users: c + 1 Query;
- Add User: c + 1 BatchGetItem (the user, its current grant and, unless the caller is a service
  account, the caller's own user item for the tenant check) + 1 TransactWriteItems (none when the user
  already holds a role);
- Remove User: c + 1 DeleteItem, + 1 GetItem when removing someone else (one's own role was read by c).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import uuid4

from kallo import paging
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role, permissions_of, remove_permission
from kallo.clock import now_iso
from kallo.errors import Conflict, Forbidden, NotFound
from kallo.models.teams import TeamCreate, TeamUpdate
from kallo.paging import PAGE_LIMIT
from kallo.services import authority
from kallo.services.owned import absent_as_not_found, update_owned
from kallo.store import grants, objects, teams
from kallo.store.keys import Ref


def _team(team_id: str) -> Ref:
    return Ref(ObjectType.team.value, team_id)


def _user(user_id: str) -> Ref:
    return Ref(ObjectType.user.value, user_id)


def team_user(grant: dict[str, Any]) -> dict[str, Any]:
    """A user grant on a team as the API shows it: teamUser `{teamId, userId, isOwner, createdAt}`."""
    return {
        "teamId": grant["objectId"],
        "userId": grant["granteeId"],
        "isOwner": grant["role"] == Role.owner,
        "createdAt": grant["createdAt"],
    }


def create_team(access: Access, data: TeamCreate) -> dict[str, Any]:
    """A new team owned by the caller; the team and its owner grant are written in one transaction."""
    user_id = access.principal.user_id
    access.require_scope_for_owner(Ref("user", user_id))
    team = {"id": str(uuid4()), "name": data.name, "createdBy": user_id, "createdAt": now_iso()}
    ref = Ref("team", team["id"])
    owner_grant = grants.item(
        ref, Ref("user", user_id), "owner", created_by=user_id, created_at=team["createdAt"]
    )
    objects.create_with_owner(objects.item(ref, team), owner_grant)
    return team


def query_teams(
    access: Access, user_id: str | None = None, *, limit: int = PAGE_LIMIT, next_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the teams the user (the caller, or one it has authority over, else 404) holds any role
    on, by team id, and the next page's cursor. A page may hold fewer than `limit` teams when a grant
    outlives its team or an access token's scope leaves a team out."""
    acting = authority.acting_for(access, user_id)
    me = _user(acting.principal.user_id or "")
    kind = f"teams/{me}"
    start = paging.position(next_token, kind=kind, principal=access.principal)
    page = grants.of_grantee(me, object_type=ObjectType.team.value, limit=limit, start_key=start)
    # Teams inherit nothing: the user's grant on a team is its whole role there.
    refs = [
        grants.object_ref(g)
        for g in page.items
        if Permission.can_view in permissions_of(ObjectType.team, Role(g["role"]))
    ]
    found = objects.batch_get(refs) if refs else {}
    visible = [found[r] for r in refs if r in found and acting.in_scope(r)]
    return visible, paging.cursor(page.last_key, kind=kind, principal=access.principal)


def update_team(access: Access, team_id: str, data: TeamUpdate) -> dict[str, Any]:
    """Rename a team (admins and the owner)."""
    return update_owned(access, _team(team_id), {"name": data.name})


def delete_team(access: Access, team_id: str) -> None:
    """Delete a team (its owner only), with its members' grants, its invitations and the grants it holds
    on others' objects (e.g. viewer on someone's topic).

    A team that still owns topics, convos, prompts or data sources is refused with 409 `team_not_empty`:
    deleting them with it would silently destroy its members' work, and keeping them would leave objects
    that nobody can reach. Delete them, or give them another owner (PUT /auth/grantees), first.

    The team item and its owner grant go in one transaction, so the team disappears at once; the rest
    follows in batches. Should those fail, the leftover grants name a team that no longer exists: it is
    absent from Query Teams, and Update or Add User answer 404 (they need the team item).
    """
    ref = _team(team_id)
    access.require(ref, Permission.can_delete)
    as_grantee = grants.all_of_grantee(ref)
    owned = Counter(g["objectType"] for g in as_grantee if g["role"] == Role.owner)
    if owned:
        listed = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(owned.items()))
        raise Conflict(
            f"team {team_id} still owns {listed}: delete them or change their owner "
            "(PUT /auth/grantees) before deleting the team",
            code="team_not_empty",
            details=[{"objectType": kind, "count": n} for kind, n in sorted(owned.items())],
        )
    with absent_as_not_found(ref):
        teams.delete_with_partition(ref, as_grantee)


def get_team_users(
    access: Access, team_id: str, *, limit: int = PAGE_LIMIT, next_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the team's users (every role), by user id, for whoever can view the team."""
    ref = _team(team_id)
    access.require(ref)
    kind = f"team-users/{ref}"
    start = paging.position(next_token, kind=kind, principal=access.principal)
    page = grants.of_object(ref, grantee_type=ObjectType.user.value, limit=limit, start_key=start)
    return [team_user(g) for g in page.items], paging.cursor(
        page.last_key, kind=kind, principal=access.principal
    )


def add_team_user(access: Access, team_id: str, user_id: str) -> dict[str, Any]:
    """Make a user a `member` of the team; a user who already holds a role on it keeps that role (so
    repeating the request changes nothing). Needs `can_add_member`.

    I1/I4: a newcomer must be a user the caller may name (`authority.reaches`: itself or of its
    tenant); another tenant's user answers 404 exactly like a missing id, and nothing is written.
    """
    team, user = _team(team_id), _user(user_id)
    access.require(team, Permission.can_add_member)
    # One BatchGetItem: the user, its current grant, and what the tenant check needs of the caller.
    granted, items = grants.batch_get_with_objects([(team, user)], [user, *authority.caller_keys(access)])
    current = granted.get((team, user))
    if current is not None:
        # A user of the team already: Get a Team's Users lists it anyway.
        return team_user(current)
    if not authority.reaches(access, items.get(user), items.get(_user(access.principal.user_id or ""))):
        raise authority.not_found(user_id)
    item = grants.item(
        team, user, Role.member.value, created_by=access.principal.user_id or "", created_at=now_iso()
    )
    try:
        # The grant must be new (a concurrent request may have granted a role meanwhile), and the team
        # must still exist: grants outlive a deleted team until its deletion finishes.
        grants.put_while_object_exists(item, new=True)
    except Conflict as error:
        current = grants.get(team, user)
        if current is None:
            raise NotFound(f"team {team_id} not found") from error
        return team_user(current)
    return team_user(item)


def remove_team_user(access: Access, team_id: str, user_id: str) -> None:
    """Take a user off a team: with the permission to remove that user's role (`can_remove_member` for a
    member...), or when users remove themselves. The owner cannot be removed (409
    `owner_cannot_be_removed`): the ownership moves first, with PUT /auth/grantees. 404 when the user
    holds no role on the team."""
    team, user = _team(team_id), _user(user_id)
    held = access.require(team)
    myself = user_id == access.principal.user_id
    if myself:
        # Teams inherit nothing: the caller's role is its own grant, already read by the check.
        role = access.role(team)
    else:
        current = grants.get(team, user)
        role = Role(current["role"]) if current else None
    if role is None:
        raise NotFound(f"user {user_id} is not a user of team {team_id}")
    if role == Role.owner:
        raise Conflict(
            "the owner cannot be removed from the team: give the team another owner first "
            "(PUT /auth/grantees)",
            code="owner_cannot_be_removed",
        )
    needed = remove_permission(role)
    if not myself and (needed is None or needed not in held):
        name = needed.value if needed else f"can_remove_{role.value}"
        raise Forbidden(f"{name} is required on team {team_id}", code="permission_denied")
    grants.delete(team, user)
