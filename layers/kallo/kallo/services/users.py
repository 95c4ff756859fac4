"""Users: Get/Create a User (registration on the fly), Update a User, Get Related Users and Get
Dashboard User Stats.

Who may see a user: the user itself, and callers with authority over it (`services.authority`: a
service account over the users it created and the members of teams it owns). Everyone else gets 404,
as if the user did not exist.

Costs in AWS calls (an authority check on another user: 1 BatchGetItem, plus, for a service account
that did not create the user, 1 Query for the user's teams and 1 BatchGetItem when it has any):
- Get/Create, `userId`: the authority check, then 1 GetItem;
- Get/Create, `firebaseId` / `email`: 1 GetItem for the unique claim; an existing user is 1 more
  GetItem and the authority check (free for oneself); a creation is 1 TransactWriteItems, and with an
  email address 1 Query for its invitations (+ 1 TransactWriteItems per 50 current ones);
- Update a User: 1 BatchGetItem (the permission check) and 1 UpdateItem;
- Get Related Users: 1 Query for the user's grants, 1 Query per shared object (at most
  MAX_RELATED_OBJECTS, run side by side), 1 BatchGetItem for the page's users (none when empty);
- Get Dashboard User Stats: 3 Queries with `Select=COUNT`.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pydantic import TypeAdapter, ValidationError

from kallo import paging
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.clock import now_iso
from kallo.errors import BadRequest, Conflict, Forbidden, NotFound
from kallo.models.common import Email
from kallo.models.topics import PAGE_LIMIT
from kallo.models.users import UserUpdate
from kallo.services import authority, invitations, owned
from kallo.store import grants, objects, users
from kallo.store.keys import Ref

# Get Related Users reads the user grants of at most this many of the user's teams, topics and convos
# (one Query each): teams first, then topics, then convos, each type's most recent grants first. It
# bounds the fan-out of one request; older shared objects of a very busy user are left out.
MAX_RELATED_OBJECTS = 200
# The per-object Queries run side by side on this many threads at most.
MAX_RELATED_THREADS = 8
# The object types whose grantees are "related" (seed: teams, topics and convos in common), in the
# order they are kept when a user has more than MAX_RELATED_OBJECTS of them.
_SHARED_TYPES = ("team", "topic", "convo")


_email = TypeAdapter(Email)


# -- Get/Create a User --------------------------------------------------------------------------------


def get_or_create_user(
    access: Access, *, user_id: str | None = None, firebase_id: str | None = None, email: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The user named by exactly one of `user_id`, `firebase_id` and `email`, and whether it was
    created by this call.

    Creation on the fly: an OpenID Connect identity that has no user yet registers itself with its
    own `firebase_id` (its verified email address comes along); a service account creates a user by
    Firebase id or by email address and gets authority over it (the admin grant).
    """
    given = [v for v in (user_id, firebase_id, email) if v is not None]
    if len(given) != 1:
        raise BadRequest("give exactly one of userId, firebaseId and email", code="one_filter_required")
    principal = access.principal
    if principal.user_id is None and (firebase_id is None or firebase_id != principal.firebase_id):
        raise Forbidden(
            "this identity has no Kallo user yet: create it with GET /users?firebaseId=<your id>",
            code="user_not_registered",
        )
    if user_id is not None:
        return _by_id(access, user_id), False
    if firebase_id is not None:
        return _by_firebase_id(access, firebase_id)
    # Exactly one was given, and it is neither of the others.
    return _by_email(access, given[0])


def _by_id(access: Access, user_id: str) -> dict[str, Any]:
    # The check comes first: it is free for oneself, and nobody else learns whether the id exists.
    if not authority.has_authority(access, user_id):
        raise NotFound(f"user {user_id} not found")
    found = users.get(user_id)
    if found is None:
        raise NotFound(f"user {user_id} not found")
    return found


def _by_firebase_id(access: Access, firebase_id: str) -> tuple[dict[str, Any], bool]:
    found = users.find_by_firebase_id(firebase_id)
    if found:
        return _visible(access, found, f"no user with firebaseId {firebase_id}"), False
    return _create_for_firebase_id(access, firebase_id)


def _by_email(access: Access, email: str) -> tuple[dict[str, Any], bool]:
    found = users.find_by_email(email)
    if found:
        return _visible(access, found, f"no user with email {email}"), False
    principal = access.principal
    if not principal.is_service_account or not principal.user_id:
        raise NotFound(f"no user with email {email}")
    return _create({"emailAddress": email}, admin_id=principal.user_id), True


def _is_own_identity(principal: Principal, user: dict[str, Any]) -> bool:
    """Whether `user` is the caller: by id, or by the Firebase id of its ID token (an API Gateway
    authorizer may have cached the principal from before the user was created)."""
    if user["id"] == principal.user_id:
        return True
    firebase_id = principal.firebase_id if principal.scheme == "oidc" else None
    return bool(firebase_id) and user.get("firebaseId") == firebase_id


def _visible(access: Access, user: dict[str, Any], missing: str) -> dict[str, Any]:
    if _is_own_identity(access.principal, user) or authority.has_authority(access, user["id"]):
        return user
    raise NotFound(missing)


def _create_for_firebase_id(access: Access, firebase_id: str) -> tuple[dict[str, Any], bool]:
    principal = access.principal
    if principal.is_service_account and principal.user_id:
        return _create({"firebaseId": firebase_id}, admin_id=principal.user_id), True
    if principal.scheme != "oidc" or principal.user_id is not None or principal.firebase_id != firebase_id:
        raise NotFound(f"no user with firebaseId {firebase_id}")
    fields: dict[str, Any] = {"firebaseId": firebase_id}
    email = _verified_email(principal)
    if email:
        fields["emailAddress"] = email
    try:
        return _create(fields), True
    except Conflict:
        # The same identity registering twice at once (an app's parallel first requests): the other
        # request created the user. Otherwise its email address belongs to another user.
        raced = users.find_by_firebase_id(firebase_id)
        if raced:
            return raced, False
        raise


def _verified_email(principal: Principal) -> str | None:
    """The ID token's email address, only when the issuer verified it (anyone can claim one), and
    only when it is a valid address (a broken claim must not block registration)."""
    if not principal.email or not principal.email_verified:
        return None
    try:
        return _email.validate_python(principal.email)
    except ValidationError:
        return None


def _create(fields: dict[str, Any], *, admin_id: str | None = None) -> dict[str, Any]:
    """Write a new user (409 when its Firebase id or email address belongs to another user), then
    accept the invitations sent to its email address."""
    user = {"id": str(uuid4()), "isServiceAccount": False, **fields, "createdAt": now_iso()}
    try:
        users.create(user, admin_id=admin_id)
    except Conflict as error:
        claims = " or ".join(
            f"{name} {user[name]}" for name in ("firebaseId", "emailAddress") if name in user
        )
        raise Conflict(f"another user already has {claims}", code="user_exists") from error
    if user.get("emailAddress"):
        invitations.accept_invitations(user["id"], user["emailAddress"])
    return user


# -- Update a User ------------------------------------------------------------------------------------


def update_user(access: Access, user_id: str, data: UserUpdate) -> dict[str, Any]:
    """Change a user's profile: the user itself (its owner) or the service account that created it
    (its admin) may; anyone else gets 404."""
    ref = Ref("user", user_id)
    # No role on a user grants can_view without can_edit, so this is 404 for everyone else.
    access.require(ref, Permission.can_edit)
    try:
        return objects.update(ref, data.changes())
    except Conflict as error:
        raise NotFound(f"user {user_id} not found") from error


# -- Get Related Users --------------------------------------------------------------------------------


def related_users(
    access: Access, user_id: str, *, limit: int = PAGE_LIMIT, next_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the users who are grantees of the same teams, topics or convos as `user_id` (direct
    grants on the same object), ordered by id, without the user itself.

    This is a fan-out by nature: one Query for the user's grants, then one Query per shared object
    for its user grants (run side by side, at most MAX_RELATED_THREADS at once, over at most
    MAX_RELATED_OBJECTS objects), then one BatchGetItem for the page. Every page recomputes the set;
    the cursor is the last id returned.
    """
    authority.acting_for(access, user_id)
    listing = f"related-users/{user_id}"
    after = (paging.position(next_token, kind=listing, principal=access.principal) or {}).get("after", "")
    if not isinstance(after, str):
        raise paging.invalid()
    me = Ref("user", user_id)
    rank = {kind: i for i, kind in enumerate(_SHARED_TYPES)}
    held = [g for g in grants.all_of_grantee(me) if g["objectType"] in rank]
    # Newest grants first, then (a stable sort) teams before topics before convos.
    held.sort(key=lambda g: g["createdAt"], reverse=True)
    held.sort(key=lambda g: rank[g["objectType"]])
    shared = [grants.object_ref(g) for g in held[:MAX_RELATED_OBJECTS]]
    per_object = owned.concurrently(
        lambda obj: grants.all_of_object(obj, grantee_type="user"), shared, threads=MAX_RELATED_THREADS
    )
    related = sorted({g["granteeId"] for found in per_object for g in found} - {user_id})
    remaining = [i for i in related if i > after]
    page = remaining[:limit]
    found = objects.batch_get([Ref("user", i) for i in page]) if page else {}
    page_users = [found[Ref("user", i)] for i in page if Ref("user", i) in found]
    position = {"after": page[-1]} if len(remaining) > limit else None
    return page_users, paging.cursor(position, kind=listing, principal=access.principal)


# -- Get Dashboard User Stats -------------------------------------------------------------------------


def user_stats(access: Access, user_id: str | None = None) -> dict[str, int]:
    """How many convos, teams and data sources the user (the caller by default) holds a direct grant
    on: one `Select=COUNT` Query each, so no item is read."""
    acting = authority.acting_for(access, user_id)
    me = Ref("user", acting.principal.user_id or "")
    return {
        "convos": grants.count_of_grantee(me, "convo"),
        "teams": grants.count_of_grantee(me, "team"),
        "sources": grants.count_of_grantee(me, "data_source"),
    }
