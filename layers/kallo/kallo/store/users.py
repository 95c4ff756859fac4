"""User items and their unique claims (access pattern 7).

I2 (identity): an OIDC user is claimed by (issuer, subject) (`IDENTITY#`); an email address globally
(`EMAIL#`) only when its issuer verified it, and the user item then carries `emailVerified: true`; the
email a service account gives a user it creates is claimed within that service account only
(`LOCALEMAIL#`). I1 (authority): a user created by a service account records it as `createdBy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table


def create(
    user: dict[str, Any], *, created_by: str | None = None, claims: Iterable[dict[str, str]] = ()
) -> None:
    """Write a user with its unique claims in one transaction (409 when one is taken).

    - `issuer` and `firebaseId` (an OIDC identity registering itself) claim the identity;
    - `emailAddress` with `emailVerified: true` (verified by that issuer) claims the address globally;
    - `created_by` (a service account creating the user) is recorded on the item as `createdBy`, which
      is what gives it authority over the user (`services.authority`), and receives the admin grant on
      the user object (what the role table evaluates: it lets the creator see the user's grantees). Its
      `emailAddress` is claimed within that service account only and is never verified;
    - `claims`: further unique keys the user claims (an end user's, `create_end_user`).
    """
    if created_by:
        user = {**user, "createdBy": created_by}
        user.pop("emailVerified", None)
    ref = Ref("user", user["id"])
    operations: list[dict[str, Any]] = [{"put": objects.item(ref, user), "new": True}]

    def claim(key: dict[str, str]) -> None:
        operations.append({"put": {**key, "userId": user["id"]}, "new": True})

    if user.get("firebaseId") and user.get("issuer"):
        claim(keys.identity_key(user["issuer"], user["firebaseId"]))
    email = user.get("emailAddress")
    if email and created_by:
        claim(keys.local_email_key(created_by, email))
    elif email and user.get("emailVerified") is True:
        claim(keys.email_key(email))
    for key in claims:
        claim(key)
    if created_by:
        grant = grants.item(
            ref, Ref("user", created_by), "admin", created_by=created_by, created_at=user["createdAt"]
        )
        operations.append({"put": grant})
    table().transact(operations)


def create_end_user(user: dict[str, Any], *, tenant_id: str, topic_id: str, user_hash: str) -> None:
    """Write an end user (`create`, created by the tenant `tenant_id`) with its claim, one per (topic,
    tenant, hashed `user` value) (`keys.end_user_key`, pattern 25): 409 when the claim is taken."""
    create(user, created_by=tenant_id, claims=[keys.end_user_key(topic_id, tenant_id, user_hash)])


def get(user_id: str) -> dict[str, Any] | None:
    return objects.get(Ref("user", user_id))


def _find(claim_key: dict[str, str]) -> dict[str, Any] | None:
    claim = table().get(claim_key)
    return get(claim["userId"]) if claim else None


def find_by_identity(issuer: str, subject: str) -> dict[str, Any] | None:
    """The user of the OIDC identity (issuer, subject)."""
    return _find(keys.identity_key(issuer, subject))


def find_by_email(email: str) -> dict[str, Any] | None:
    """The user whose VERIFIED email address this is (an OIDC user whose issuer verified it); users
    a service account created with an address are never found here."""
    return _find(keys.email_key(email))


def find_local(service_account_id: str, email: str) -> dict[str, Any] | None:
    """The user the service account created with this email address, if any."""
    return _find(keys.local_email_key(service_account_id, email))


def find_end_user(topic_id: str, tenant_id: str, user_hash: str) -> str | None:
    """The id of the end user of this (topic, tenant, hashed `user` value), if it was made already (its
    claim names it: one GetItem, the user item is not read)."""
    claim = table().get(keys.end_user_key(topic_id, tenant_id, user_hash), consistent=True)
    return str(claim["userId"]) if claim else None
