"""Grantees: the direct grants on an object, read by Query Grantees and changed by Add / Set / Remove
Grantee (invitations by email included).

Rules (the role → permission table is `kallo.authz.policy`):
- which grantee type may hold which role on which object type is `policy.ALLOWED_GRANTS`;
- granting role R needs `can_add_R` on the object, taking it away `can_remove_R` (a grantee may always
  leave: remove its own grant); changing a grantee's role needs both;
- owners change only through Set Grantees, which needs `can_add_owner` and `can_remove_owner` on the
  object and, I5 (ownership moves), what creating the object under the new owner would take
  (`owned.require_can_own`: `can_edit` on a team for a topic, `can_chat` on a topic for a convo, and
  authority over a user);
- a topic or convo as grantee is always an ownership or a link change, never plain sharing: it is
  either a convo's owning topic (the rule above) or a `dependent` link. Links are made only by the
  dedicated endpoints (Add Topic / Convo Data Source, Set Topic Prompt), which need the link
  permission on the topic or convo and `can_add_dependent` on the linked object (I5); the grantee
  endpoints neither make, change nor remove them (400 `use_link_endpoint`);
- a new grantee must exist and be reachable: a user the caller may name (I1/I4,
  `authority.reaches`: itself or a user of its tenant; another tenant's user is 404 exactly like a
  missing id), a team, topic or convo visible to the caller (one that holds a grant already may have
  its role changed without);
- an email invitation (`inviteEmail`) is always stored as a pending invitation, whoever has the
  address (I2: the answer says nothing about who is registered); the invitee accepts it
  (`services.invitations`).

Costs in AWS calls (a check on an object is one Query per object of its ownership chain that can
inherit, plus one BatchGetItem, see `kallo.authz.access`; on a team or user object just the BatchGetItem):
- Query: the check + 1 Query.
- Add: the check + 1 BatchGetItem (the grantee, the caller's grant on a team grantee, the current
  grant, and for a user grantee the caller's own user item unless it is a service account) + 1
  TransactWriteItems (nothing when the grant is already there). With `inviteEmail`: the check + 1
  UpdateItem (the inviter's invitation emails of the day, I9) + 1 TransactWriteItems, and its email (1
  BatchGetItem: the inviter and the object's name; 1 SES SendEmail); on a stack without a sender
  address, no email and no count.
- Set: the check + 1 Query (every grant on the object) + 1 BatchGetItem (the new grantees; none when
  there are none) + 1 TransactWriteItems; a new owner adds its check (`owned.require_can_own`: a
  team's is 1 BatchGetItem, a topic's 1 Query + 1 BatchGetItem, another user's the authority check).
- Remove: the check + 1 GetItem for a user grantee (a structural one was read by the check)
  + 1 DeleteItem.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from kallo import paging, quotas
from kallo.authz.access import Access, chain_hint
from kallo.authz.policy import (
    ALLOWED_GRANTS,
    INVITABLE_TYPES,
    GranteeType,
    ObjectType,
    Permission,
    Role,
    add_permission,
    permissions_of,
    remove_permission,
)
from kallo.clock import epoch_seconds, iso, now, now_iso
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.common import Grantee
from kallo.paging import PAGE_LIMIT
from kallo.services import authority, invitation_mail
from kallo.services.owned import absent_as_not_found, require_can_own
from kallo.settings import get_settings
from kallo.store import grants, invitations
from kallo.store.keys import Ref

# Where the links that `dependent` grants stand for are made, by the type of the linked object.
_LINK_ENDPOINTS = {
    ObjectType.data_source: "PUT /convos/{convoId}/data-sources/{dataSourceId} (Add Convo Data Source) or "
    "PUT /topics/{topicId}/data-sources/{dataSourceId} (Add Topic Data Source)",
    ObjectType.prompt: "PUT /topics/{topicId}/prompts/{promptId} (Set Topic Prompt)",
}
_LINK_GRANTEE_TYPES = frozenset({GranteeType.convo, GranteeType.topic})

# The object items that also name their owner (when it is a team or topic) in a field: topics and
# prompts keep `teamId`, convos `teamId` or `topicId` (set at creation, see services.topics/convos).
_OWNER_FIELDS: dict[str, dict[str, str]] = {
    ObjectType.topic: {GranteeType.team: "teamId"},
    ObjectType.prompt: {GranteeType.team: "teamId"},
    ObjectType.convo: {GranteeType.team: "teamId", GranteeType.topic: "topicId"},
}


def object_ref(object_type: ObjectType, object_id: str) -> Ref:
    return Ref(ObjectType(object_type).value, object_id)


def view(grantee: Ref, role: Role | str) -> dict[str, str]:
    """A grant as the API shows it: `{id, type, role}`."""
    return {"id": grantee.id, "type": grantee.type, "role": Role(role).value}


def _view_of(grant: dict[str, Any]) -> dict[str, str]:
    return view(grants.grantee_ref(grant), grant["role"])


def _me(access: Access) -> Ref:
    return Ref(ObjectType.user.value, access.principal.user_id or "")


# -- input rules ----------------------------------------------------------------------------------------


def _link_refused(obj: Ref) -> BadRequest:
    where = _LINK_ENDPOINTS.get(ObjectType(obj.type)) or " or ".join(_LINK_ENDPOINTS.values())
    return BadRequest(f"dependent grants are links: use {where}", code="use_link_endpoint")


def _owner_refused() -> BadRequest:
    return BadRequest(
        "owners are changed only by replacing the grantees: PUT /auth/grantees", code="use_put_for_owner"
    )


def _check_grant(obj: Ref, grantee_type: GranteeType, role: Role) -> Permission:
    """Refuse (400) a grant the grantee endpoints do not make; else the permission granting it needs."""
    if role == Role.dependent or (
        obj.type in _LINK_ENDPOINTS and GranteeType(grantee_type) in _LINK_GRANTEE_TYPES
    ):
        raise _link_refused(obj)
    if role not in ALLOWED_GRANTS[ObjectType(obj.type)].get(GranteeType(grantee_type), frozenset()):
        raise BadRequest(
            f"a {grantee_type} cannot be granted role {role} on a {obj.type}", code="grant_not_supported"
        )
    needed = add_permission(role)
    if needed is None:
        raise BadRequest(f"no one may grant role {role}", code="grant_not_supported")
    return needed


def _grantee_ref(grantee: Grantee) -> Ref:
    if grantee.id is None:
        raise BadRequest("the grantee's id is required", code="grantee_id_required")
    return Ref(grantee.type.value, grantee.id)


def _needs(held: frozenset[Permission], permission: Permission | None, obj: Ref) -> None:
    if permission is None or permission not in held:
        name = permission.value if permission else "a permission no role has"
        raise Forbidden(f"{name} is required on {obj.type} {obj.id}", code="permission_denied")


# -- grantees exist and are visible -------------------------------------------------------------------


def _read_grantees(
    access: Access, grantees: list[Ref], *extra: tuple[Ref, Ref]
) -> tuple[dict[tuple[Ref, Ref], dict[str, Any]], dict[Ref, dict[str, Any]]]:
    """In one BatchGetItem (none when there is nothing to read): the grantees' items, the caller's
    grants on team grantees, the caller's own user item when a user grantee's tenant is to be checked
    (`authority.caller_keys`), and the `extra` (object, grantee) grants; as the grants found by
    (object, grantee) and the objects found by ref."""
    me = _me(access)
    pairs = [(g, me) for g in grantees if g.type == GranteeType.team]
    refs = list(grantees)
    if any(g.type == GranteeType.user for g in grantees):
        refs += authority.caller_keys(access)
    return grants.batch_get_with_objects([*pairs, *extra], refs)


def _require_grantees(
    access: Access,
    grantees: Iterable[Ref],
    granted: dict[tuple[Ref, Ref], dict[str, Any]],
    items: dict[Ref, dict[str, Any]],
) -> None:
    """404 unless every grantee exists and the caller may name it: a user of its tenant or itself (I1/I4,
    `authority.reaches`: another tenant's user is as missing as an unknown id), a team, topic or convo
    it can view.

    Teams inherit nothing, so the caller's view of a team is its own grant on it, read in the same
    BatchGetItem as the objects (`Access.require` would cost a call per team). A topic or convo is
    checked through `Access` (a Set Grantees body holds at most one: a convo's owning topic).
    """
    me = _me(access)
    for grantee in grantees:
        if grantee.type == GranteeType.user:
            if not authority.reaches(access, items.get(grantee), items.get(me)):
                raise authority.not_found(grantee.id)
            continue
        visible = grantee in items
        if visible and grantee.type == GranteeType.team:
            held = granted.get((grantee, me))
            role = Role(held["role"]) if held else None
            visible = Permission.can_view in permissions_of(ObjectType.team, role) and access.in_scope(
                grantee
            )
        elif visible:
            visible = access.can(grantee, Permission.can_view)
        if not visible:
            raise NotFound(f"{grantee.type} {grantee.id} not found")


# -- Query Grantees -----------------------------------------------------------------------------------


def query_grantees(
    access: Access, obj: Ref, *, limit: int = PAGE_LIMIT, next_token: str | None = None
) -> tuple[list[dict[str, str]], str | None]:
    """A page of the object's direct grants (structural ones, i.e. teams, topics and convos, first),
    for whoever can view the object, and the cursor of the next page."""
    access.require(obj)
    kind = f"grantees/{obj}"
    start = paging.position(next_token, kind=kind, principal=access.principal)
    page = grants.of_object(obj, limit=limit, start_key=start)
    return [_view_of(g) for g in page.items], paging.cursor(
        page.last_key, kind=kind, principal=access.principal
    )


# -- Add Grantee ----------------------------------------------------------------------------------------


def add_grantee(
    access: Access,
    obj: Ref,
    grantee: Grantee,
    *,
    invite_email: str | None = None,
    console_url: str | None = None,
) -> dict[str, str]:
    """Grant a role on an object (see the module's rules) and return the grantee `{id, type, role}`.

    A grantee that already holds another role gets the new one (which also needs the permission to
    remove the old one; an owner is changed only by Set Grantees); asking again for the role it
    holds changes nothing. A user grantee must be one the caller may name (I1/I4, see the module).

    With `invite_email` (objects of `policy.INVITABLE_TYPES`, a user grantee without id) an invitation
    is stored (or renewed) and returned (`{objectType, objectId, inviteEmail, role, createdBy,
    createdAt}`), the same whether or not someone has that address (I2: no oracle on who is
    registered). It becomes a grant when the owner of that verified address accepts it (Accept
    Invitation) or registers with it (`services.invitations`). With `console_url`, the invitee is then
    mailed a link that accepts it (`services.invitation_mail`: after the write; a mail failure is
    logged and counted, and never loses the invitation nor fails the request).

    A grant on a user object (admin) is a permission on that object only, never authority over the
    user (I1, `services.authority`).
    """
    if grantee.role == Role.owner:
        raise _owner_refused()
    needed = _check_grant(obj, grantee.type, grantee.role)
    if invite_email is None:
        target = _grantee_ref(grantee)
        held = access.require(obj, needed)
    else:
        _check_invitation(obj, grantee)
        access.require(obj, needed)
        return _invite(access, obj, invite_email, grantee.role, console_url)
    return _grant(access, obj, target, grantee.role, held)


def _check_invitation(obj: Ref, grantee: Grantee) -> None:
    if ObjectType(obj.type) not in INVITABLE_TYPES:
        kinds = ", ".join(sorted(t.value for t in INVITABLE_TYPES))
        raise BadRequest(f"invitations are for objects of type {kinds}", code="not_invitable")
    if grantee.type != GranteeType.user or grantee.id is not None:
        raise BadRequest(
            "an invitation's grantee is a user without id (the invitee has none yet)",
            code="invalid_invitation",
        )


def _grant(access: Access, obj: Ref, target: Ref, role: Role, held: frozenset[Permission]) -> dict[str, str]:
    """Write `target`'s grant of `role` once it proves to exist (and be visible), replacing the role it
    holds, if any, when the caller may remove that one."""
    granted, items = _read_grantees(access, [target], (obj, target))
    current = granted.get((obj, target))
    if current is None:
        _require_grantees(access, [target], granted, items)
    else:
        if current["role"] == role:
            return view(target, role)
        if current["role"] == Role.owner:
            raise _owner_refused()
        if current["role"] == Role.dependent:
            raise _link_refused(obj)
        _needs(held, remove_permission(Role(current["role"])), obj)
    item = grants.item(
        obj, target, role.value, created_by=access.principal.user_id or "", created_at=now_iso()
    )
    # Grants can outlive a deleted object until the purge worker runs: the check proves it exists.
    with absent_as_not_found(obj):
        grants.put_while_object_exists(item)
    return view(target, role)


def _invite(access: Access, obj: Ref, email: str, role: Role, console_url: str | None) -> dict[str, Any]:
    """Store (or renew) the invitation of `email` to `obj`; it expires after the configured days. With
    `console_url`, mail it (once stored).

    I9 (outbound mail at a bounded rate): an invitation that will be mailed is first counted against the
    inviting user's invitation emails of the day (`quotas.count_invitation_mail`); past the limit the
    request is refused (429 `invitation_mail_limit`) and nothing is stored, so the inviter knows the
    invitee was not told, rather than holding an invitation nobody heard of."""
    mail_console = console_url if invitation_mail.can_send() else None
    if mail_console is not None:
        quotas.count_invitation_mail(access.principal.user_id or "")
    moment = now()
    expires = moment + timedelta(days=get_settings().invitation_ttl_days)
    item = invitations.item(
        obj,
        email,
        role.value,
        created_by=access.principal.user_id or "",
        created_at=iso(moment),
        ttl=epoch_seconds(expires),
    )
    with absent_as_not_found(obj):
        grants.put_while_object_exists(item)
    fields = ("objectType", "objectId", "inviteEmail", "role", "createdBy", "createdAt")
    invitation = {name: item[name] for name in fields}
    if mail_console is not None:
        invitation_mail.send(invitation, console_url=mail_console, expires_at=item["ttl"])
    return invitation


# -- Set Grantees ---------------------------------------------------------------------------------------


def _wanted(obj: Ref, body: list[Grantee]) -> dict[Ref, Role]:
    """The body as grantee → role, after the input rules: ids given, no repeats, exactly one owner."""
    wanted: dict[Ref, Role] = {}
    for grantee in body:
        ref = _grantee_ref(grantee)
        _check_grant(obj, grantee.type, grantee.role)
        if ref in wanted:
            raise BadRequest(f"{ref.type} {ref.id} is listed twice", code="duplicate_grantee")
        wanted[ref] = grantee.role
    if sum(1 for role in wanted.values() if role == Role.owner) != 1:
        raise BadRequest("the grantees must include exactly one owner", code="exactly_one_owner")
    return wanted


def _owner_fields(
    obj: Ref, previous_owner: Ref | None, owner: Ref
) -> tuple[dict[str, Any] | None, list[str]]:
    """The object's fields to set and remove when it names its owner in a field and the owner changes:
    that field (and `updatedAt`); (None, []) when nothing on the object changes."""
    fields = _OWNER_FIELDS.get(obj.type)
    if not fields or previous_owner == owner:
        return None, []
    changes = {"updatedAt": now_iso()}
    if owner.type in fields:
        changes[fields[owner.type]] = owner.id
    return changes, [name for kind, name in fields.items() if kind != owner.type]


def set_grantees(access: Access, obj: Ref, body: list[Grantee]) -> list[dict[str, str]]:
    """Replace the object's direct grantees with `body` (exactly one owner) in one transaction, and
    return them: the body's, then the `dependent` links, which are kept (and may not be listed).
    Only whoever may add and remove owners (the owner) may do this.

    I5 (ownership moves): a new owner must also be one the caller could create the object under
    (`owned.require_can_own`, 404 / 403 on the new owner), so that no one moves its objects into a
    team (or a convo into a topic) it may not add to, or gives them to a user it does not act for.
    """
    # The object first: one the caller cannot see (or may not give away) says so whatever the body.
    held = access.require(obj, Permission.can_add_owner)
    _needs(held, Permission.can_remove_owner, obj)
    wanted = _wanted(obj, body)
    current = {grants.grantee_ref(g): Role(g["role"]) for g in grants.all_of_object(obj)}
    owner = next(ref for ref, role in wanted.items() if role == Role.owner)
    previous_owner = next((ref for ref, role in current.items() if role == Role.owner), None)
    links = [ref for ref, role in current.items() if role == Role.dependent]
    if any(ref in wanted for ref in links):
        raise _link_refused(obj)
    changed = [ref for ref, role in wanted.items() if current.get(ref) != role]
    removed = [ref for ref in current if ref not in wanted and ref not in links]
    # Counted before any further read: a replacement that cannot be one transaction is refused as is.
    writes = len(removed) + len(changed) + 1
    if writes > grants.REPLACE_LIMIT:
        raise BadRequest(
            f"this replacement takes {writes} writes and one request makes at most {grants.REPLACE_LIMIT}: "
            "add or remove some grantees one by one first",
            code="too_many_grantees",
        )
    if owner != previous_owner:
        require_can_own(access, owner, obj.type)
    # Only newcomers are vetted: who holds a grant already is listed by Query Grantees anyway.
    newcomers = [ref for ref in changed if ref not in current]
    _require_grantees(access, newcomers, *_read_grantees(access, newcomers))
    by, at = access.principal.user_id or "", now_iso()
    # A convo moved into a topic: its new owner grant carries the topic's edges (`chain_hint`, read by
    # the owner's check above), in the same transaction.
    written = [
        {
            **grants.item(obj, ref, wanted[ref].value, created_by=by, created_at=at),
            **(chain_hint(obj, ref) if ref == owner else {}),
        }
        for ref in changed
    ]
    set_fields, remove_fields = _owner_fields(obj, previous_owner, owner)
    with absent_as_not_found(obj):
        grants.replace(obj, removed, written, set_fields=set_fields, remove_fields=remove_fields)
    return [view(ref, role) for ref, role in wanted.items()] + [view(ref, Role.dependent) for ref in links]


# -- Remove Grantee -------------------------------------------------------------------------------------


def remove_grantee(access: Access, obj: Ref, grantee: Ref, role: Role) -> None:
    """Take a grantee's role on an object away: with `can_remove_<role>`, or when the grantee is the
    caller (leaving). 404 unless the grantee holds exactly that role."""
    if role == Role.owner:
        raise _owner_refused()
    if role == Role.dependent:
        raise _link_refused(obj)
    held = access.require(obj)
    if grantee.type == GranteeType.user:
        current = grants.get(obj, grantee)
    else:
        # A team, topic or convo grant is structural: the check has read them.
        current = next((g for g in access.structural_grants(obj) if grants.grantee_ref(g) == grantee), None)
    if current is None or current["role"] != role:
        raise NotFound(f"{grantee.type} {grantee.id} holds no {role.value} grant on {obj.type} {obj.id}")
    if grantee != _me(access):
        _needs(held, remove_permission(role), obj)
    grants.delete(obj, grantee)
