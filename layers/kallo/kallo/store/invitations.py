"""Invitations by email for people who are not users yet (access patterns 8 and 9). They expire
through TTL; accepting one (when the invitee registers) turns it into a grant.

Their writes beside the object's existence are `grants.put_while_object_exists` (an invitation is a grant
pending its invitee); accepting one writes its grant and deletes it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import TRANSACT_LIMIT, table


def item(obj: Ref, email: str, role: str, *, created_by: str, created_at: str, ttl: int) -> dict[str, Any]:
    return {
        **keys.invitation_key(obj, email),
        "GSI1PK": keys.invitee_pk(email),
        "GSI1SK": str(obj),
        "entity": "invitation",
        "objectType": obj.type,
        "objectId": obj.id,
        "inviteEmail": email,
        "role": role,
        "createdBy": created_by,
        "createdAt": created_at,
        "ttl": ttl,
    }


def put(invitation: dict[str, Any]) -> None:
    table().put(invitation)


def get(obj: Ref, email: str) -> dict[str, Any] | None:
    return table().get(keys.invitation_key(obj, email))


def of_object(obj: Ref) -> list[dict[str, Any]]:
    return table().query_all(keys.object_pk(obj), prefix="INVITE#")


def for_email(email: str) -> list[dict[str, Any]]:
    return table().query_all(keys.invitee_pk(email), index="GSI1")


def delete(obj: Ref, email: str) -> None:
    table().delete(keys.invitation_key(obj, email))


def get_with_grant(obj: Ref, email: str, grantee: Ref) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The invitation of `email` to `obj` (its raw item, `ttl` included) and the grant `grantee` holds on
    `obj` (pattern 3), either None when absent: one BatchGetItem."""
    invitation_key, grant_key = keys.invitation_key(obj, email), keys.grant_key(obj, grantee)
    found = {(i["PK"], i["SK"]): i for i in table().batch_get([invitation_key, grant_key])}
    return (
        found.get((invitation_key["PK"], invitation_key["SK"])),
        found.get((grant_key["PK"], grant_key["SK"])),
    )


def use_up(obj: Ref, email: str) -> None:
    """Delete the invitation of `email` to `obj`, on condition it is still there (one TransactWriteItems):
    raises `Conflict` when it is gone (a concurrent accept won, or it was withdrawn)."""
    table().transact([{"delete": keys.invitation_key(obj, email), "exists": True}])


def accept(grant: dict[str, Any], email: str) -> None:
    """Accept the invitation of `email` to the grant's object: in one transaction, write `grant`
    (`grants.item`) on condition the grantee holds none yet, delete the invitation on condition it is
    still there, and check that the object exists. Raises `Conflict` when any fails (nothing written)."""
    obj = grants.object_ref(grant)
    table().transact(
        [
            {"put": grant, "new": True},
            {"delete": keys.invitation_key(obj, email), "exists": True},
            objects.exists_check(obj),
        ]
    )


def accept_all(accepted: Sequence[dict[str, Any]], email: str) -> None:
    """Accept the invitations of `email` that the grants `accepted` (`grants.item`) stand for: each grant
    written in the same transaction as its invitation's deletion, unconditionally, 50 pairs per
    transaction, so an interruption leaves every invitation either accepted or still pending."""
    per_transaction = TRANSACT_LIMIT // 2
    for start in range(0, len(accepted), per_transaction):
        operations: list[dict[str, Any]] = []
        for grant in accepted[start : start + per_transaction]:
            operations += [{"put": grant}, {"delete": keys.invitation_key(grants.object_ref(grant), email)}]
        table().transact(operations)


def is_current(invitation: dict[str, Any], now_epoch: int) -> bool:
    """DynamoDB deletes expired items only eventually (and the local stack never), so readers check."""
    return int(invitation.get("ttl", 0)) > now_epoch
