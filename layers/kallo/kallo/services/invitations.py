"""Invitations: pending grants for email addresses that have no user yet (Get Invitations, Delete
Invitation), and their acceptance by the person invited.

I2 (identity): an invitation is accepted only by the person it was sent to: an OpenID Connect identity
registering with that address, verified by its issuer (`services.users`). Users a service account
creates with an address never accept one (their address is unverified and tenant-local). I1
(authority): an accepted invitation is a grant like any other, never authority over the invitee.

Add Grantee (`inviteEmail`) creates them; they expire through DynamoDB's TTL, which deletes lazily
(and never on the local stack), so every reader keeps only the current ones.

Costs in AWS calls, besides the permission check on the object (a team: 1 BatchGetItem; a convo: a
Query per object of its ownership chain and 1 BatchGetItem, see `kallo.authz.access`):
- Get Invitations: 1 Query;
- Delete Invitation: 1 GetItem and 1 DeleteItem;
- acceptance: 1 Query, then 1 TransactWriteItems per 50 invitations (none when there are none).
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.clock import epoch_seconds, iso, now
from kallo.errors import BadRequest, NotFound
from kallo.models.users import InvitableType
from kallo.store import grants, invitations, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import TRANSACT_LIMIT, table

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
    pairs: list[list[dict[str, Any]]] = []
    for invitation in pending:
        obj = Ref(invitation["objectType"], invitation["objectId"])
        # The grant is the inviter's, made when the invitee arrives.
        grant = grants.item(
            obj, grantee, invitation["role"], created_by=invitation["createdBy"], created_at=iso(moment)
        )
        pairs.append([{"put": grant}, {"delete": keys.invitation_key(obj, email)}])
    per_transaction = TRANSACT_LIMIT // 2
    for start in range(0, len(pairs), per_transaction):
        table().transact([op for pair in pairs[start : start + per_transaction] for op in pair])
    return len(pending)
