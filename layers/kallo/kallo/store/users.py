"""User items and their unique Firebase id / email claims (access pattern 7)."""

from __future__ import annotations

from typing import Any

from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table


def create(user: dict[str, Any], *, admin_id: str | None = None) -> None:
    """Write a user with its unique claims in one transaction; `admin_id` (a service account that
    creates the user) receives the admin grant that gives it authority over the user."""
    ref = Ref("user", user["id"])
    operations: list[dict[str, Any]] = [{"put": objects.item(ref, user), "new": True}]
    if user.get("firebaseId"):
        operations.append(
            {"put": {**keys.firebase_key(user["firebaseId"]), "userId": user["id"]}, "new": True}
        )
    if user.get("emailAddress"):
        operations.append(
            {"put": {**keys.email_key(user["emailAddress"]), "userId": user["id"]}, "new": True}
        )
    if admin_id:
        grant = grants.item(
            ref, Ref("user", admin_id), "admin", created_by=admin_id, created_at=user["createdAt"]
        )
        operations.append({"put": grant})
    table().transact(operations)


def get(user_id: str) -> dict[str, Any] | None:
    return objects.get(Ref("user", user_id))


def _find(claim_key: dict[str, str]) -> dict[str, Any] | None:
    claim = table().get(claim_key)
    return get(claim["userId"]) if claim else None


def find_by_firebase_id(firebase_id: str) -> dict[str, Any] | None:
    return _find(keys.firebase_key(firebase_id))


def find_by_email(email: str) -> dict[str, Any] | None:
    return _find(keys.email_key(email))
