"""Invitations: pending grants for email addresses (Get Invitations, Delete Invitation), and their
acceptance by the person invited (Get My Invitations, Accept Invitation, registration).

I2 (identity): an invitation is accepted only by the person it was sent to, the owner of the VERIFIED
address: an OpenID Connect identity registering with that address verified by its issuer
(`services.users`), or a registered user whose item carries that address with `emailVerified: true`
accepting it explicitly (Accept Invitation; an access token only with the whole-user scope, I3).
Users a service account creates with an address never accept one (their address is unverified and
tenant-local). Anyone else sees no invitation at all (404, as if there were none). I1 (authority): an
accepted invitation is a grant like any other, never authority over the invitee.

Add Grantee (`inviteEmail`) creates them, always, whether or not someone has the address (so inviting
tells nothing about who is registered); they expire through DynamoDB's TTL, which deletes lazily (and
never on the local stack), so every reader keeps only the current ones.

Costs in AWS calls, besides the permission check on the object (a team: 1 BatchGetItem; a convo: a
Query per object of its ownership chain and 1 BatchGetItem, see `kallo.authz.access`):
- Get Invitations: 1 Query;
- Delete Invitation: 1 GetItem and 1 DeleteItem;
- Get My Invitations: 1 GetItem (the caller's user) + 1 Query;
- Accept Invitation: 1 GetItem (the caller's user) + 1 BatchGetItem (the invitation and the caller's
  current grant) + 1 TransactWriteItems;
- acceptance at registration: 1 Query, then 1 TransactWriteItems per 50 invitations (none when there are none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.clock import epoch_seconds, iso, now
from kallo.errors import BadRequest, Conflict, NotFound
from kallo.models.users import InvitableType
from kallo.store import grants, invitations, objects, users
from kallo.store.keys import Ref

# Reading or withdrawing an object's invitations takes the permission to invite to it: an invitation
# makes a member of a team and a participant of a convo.
MANAGE_PERMISSION: dict[InvitableType, Permission] = {
    InvitableType.team: Permission.can_add_member,
    InvitableType.convo: Permission.can_add_participant,
}


def _managed(access: Access, object_type: str, object_id: str) -> Ref:
    """The object, once the caller is known to hold the permission to invite to it (404 when it cannot
    view the object, 403 when it can but may not invite)."""
    try:
        kind = InvitableType(object_type)
    except ValueError as error:
        # The handlers' enum refuses it first (422); other callers get a domain error, not a 500.
        raise BadRequest(
            f"invitations are for objects of type {', '.join(t.value for t in InvitableType)}",
            code="not_invitable",
        ) from error
    ref = Ref(kind.value, object_id)
    access.require(ref, MANAGE_PERMISSION[kind])
    return ref


def get_invitations(access: Access, object_type: str, object_id: str) -> list[dict[str, Any]]:
    """The object's current invitations, ordered by email address."""
    ref = _managed(access, object_type, object_id)
    moment = epoch_seconds(now())
    return [objects.public(i) for i in invitations.of_object(ref) if invitations.is_current(i, moment)]


def delete_invitation(access: Access, object_type: str, object_id: str, email: str) -> None:
    """Withdraw an invitation; an expired one is as unknown as one that never existed (404)."""
    ref = _managed(access, object_type, object_id)
    found = invitations.get(ref, email)
    if not found or not invitations.is_current(found, epoch_seconds(now())):
        raise NotFound(f"no invitation for {email} on {ref.type} {ref.id}")
    invitations.delete(ref, email)


def _my_verified_email(access: Access) -> str | None:
    """The caller's own VERIFIED email address (I2), when it may act on its user (I3: a token needs the
    whole-user scope); None otherwise."""
    me = access.principal.user_id
    if not me or not access.in_scope(Ref("user", me)):
        return None
    user = users.get(me)
    if user is None or user.get("emailVerified") is not True:
        return None
    return user.get("emailAddress") or None


def my_invitations(access: Access) -> list[dict[str, Any]]:
    """The current invitations sent to the caller's verified email address, by object (none without
    one, see `_my_verified_email`)."""
    email = _my_verified_email(access)
    if email is None:
        return []
    moment = epoch_seconds(now())
    found = [objects.public(i) for i in invitations.for_email(email) if invitations.is_current(i, moment)]
    return sorted(found, key=lambda i: (i["objectType"], i["objectId"]))


def accept_invitation(access: Access, object_type: str, object_id: str) -> dict[str, str]:
    """Accept the caller's invitation to an object: its grant `{id, type, role}` (I2: only the owner of
    the invited verified address, see the module; anyone else 404 as if there were no invitation).

    A caller that already holds a role on the object keeps it (an invitation never demotes an owner,
    nor promotes past what the grantee endpoints check) and the invitation is used up. The grant and
    the invitation's deletion share one transaction, conditioned on the object still existing.
    """
    try:
        ref = Ref(InvitableType(object_type).value, object_id)
    except ValueError:
        ref = None
    email = _my_verified_email(access)
    missing = NotFound(f"no invitation to {object_type} {object_id}")
    if ref is None or email is None:
        raise missing
    me = Ref("user", access.principal.user_id or "")
    invitation, current = invitations.get_with_grant(ref, email, me)
    if invitation is None or not invitations.is_current(invitation, epoch_seconds(now())):
        raise missing
    if current is not None:
        with _gone_as(missing):
            invitations.use_up(ref, email)
        return {"id": me.id, "type": me.type, "role": current["role"]}
    # The grant is the inviter's, as at registration.
    grant = grants.item(
        ref, me, invitation["role"], created_by=invitation["createdBy"], created_at=iso(now())
    )
    with _gone_as(missing):
        invitations.accept(grant, email)
    return {"id": me.id, "type": me.type, "role": invitation["role"]}


@contextmanager
def _gone_as(error: NotFound) -> Iterator[None]:
    """A conditional write that fails here means the invitation or its object went away meanwhile (or a
    concurrent accept won): as if there were no invitation."""
    try:
        yield
    except Conflict as conflict:
        raise error from conflict


def accept_invitations(user_id: str, email: str) -> int:
    """Turn the current invitations sent to `email` into grants to the new user `user_id`, each grant
    written in the same transaction as its invitation's deletion; returns how many were accepted.
    Only for the owner of the verified address `email` (I2): an OIDC user registering with it.

    More than 50 invitations take several transactions: a grant and the deletion of its invitation
    always share one, so an interruption leaves every invitation either accepted or still pending.
    """
    moment = now()
    pending = [i for i in invitations.for_email(email) if invitations.is_current(i, epoch_seconds(moment))]
    grantee = Ref("user", user_id)
    # Each grant is the inviter's, made when the invitee arrives.
    accepted = [
        grants.item(
            grants.object_ref(invitation),
            grantee,
            invitation["role"],
            created_by=invitation["createdBy"],
            created_at=iso(moment),
        )
        for invitation in pending
    ]
    invitations.accept_all(accepted, email)
    return len(pending)
