"""Invitations by email for people who are not users yet (access patterns 8 and 9). They expire
through TTL; accepting one (when the invitee registers) turns it into a grant."""

from __future__ import annotations

from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table


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


def is_current(invitation: dict[str, Any], now_epoch: int) -> bool:
    """DynamoDB deletes expired items only eventually (and the local stack never), so readers check."""
    return int(invitation.get("ttl", 0)) > now_epoch
