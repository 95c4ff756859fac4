"""Builders for test data, written through the same store the functions use."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.clock import now_iso
from kallo.services import credentials
from kallo.store import grants, objects, users
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.oidc import ISSUER


def make_user(
    *,
    email: str | None = None,
    firebase_id: str | None = None,
    admin: Principal | None = None,
    name: str = "Pat",
    issuer: str = ISSUER,
) -> Principal:
    """A registered user. Without `admin`: an OIDC user of `issuer` whose email its issuer verified.
    With `admin` (a service account): a user it created, which gives it authority over it; its email
    is then tenant-local and unverified. Returns its principal."""
    user: dict[str, Any] = {
        "id": str(uuid4()),
        "isServiceAccount": False,
        "displayName": name,
        "createdAt": now_iso(),
    }
    if email:
        user["emailAddress"] = email.lower()
        user["emailVerified"] = True
    if firebase_id:
        user["firebaseId"] = firebase_id
        user["issuer"] = issuer
    users.create(user, created_by=admin.user_id if admin else None)
    return Principal(
        user_id=user["id"],
        scheme="oidc",
        firebase_id=firebase_id,
        issuer=issuer if firebase_id else None,
        email=email,
        email_verified=bool(email) and admin is None,
    )


def make_service_account(name: str = "svc") -> tuple[Principal, str]:
    """A service account and one of its API keys."""
    account = credentials.create_service_account(name)
    key, _ = credentials.issue_api_key(account["id"])
    return Principal(user_id=account["id"], scheme="api_key", is_service_account=True), key


def make_object(kind: str, owner: Ref, **fields: Any) -> Ref:
    """Any object with its owner grant (for tests of areas that have no service yet)."""
    ref = Ref(kind, str(uuid4()))
    created_by = owner.id if owner.type == "user" else fields.get("createdBy", str(uuid4()))
    body = {"name": f"{kind} {ref.id[:8]}", "createdBy": created_by, "createdAt": now_iso(), **fields}
    grant = grants.item(ref, owner, "owner", created_by=created_by, created_at=body["createdAt"])
    table().transact([{"put": objects.item(ref, body), "new": True}, {"put": grant}])
    return ref


def make_data_source(owner: Ref, **fields: Any) -> tuple[Ref, str]:
    """A data source item as an upload creates it (its bytes not stored), and its location."""
    from kallo.store import blobs

    ref = make_object("data_source", owner, type="upload", **fields)
    location = blobs.location(owner, ref.id)
    objects.update(ref, {"location": location})
    return ref, location


def grant(obj: Ref, grantee: Ref | Principal, role: str) -> None:
    if isinstance(grantee, Principal):
        grantee = Ref("user", grantee.user_id or "")
    table().put(grants.item(obj, grantee, role, created_by=grantee.id, created_at=now_iso()))


def ref_of(principal: Principal) -> Ref:
    return Ref("user", principal.user_id or "")


def add_user_step(convo: Ref, author: Principal, text: str) -> dict[str, Any]:
    """A user's completed step in a convo, stored as the WebSocket side stores it."""
    from kallo.models.steps import Step
    from kallo.store import steps

    at = now_iso()
    step = Step(
        id=str(uuid4()),
        convoId=convo.id,
        authorType="user",
        authorId=author.user_id,
        content={"text": text},
        createdAt=at,
        updatedAt=at,
    )
    return steps.add(step.record())
