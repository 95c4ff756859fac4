"""Users: Get/Create a User (registration on the fly), Update a User, Get Related Users and Get
Dashboard User Stats.

Who may see or act on a user: whoever has authority over it (`services.authority`, I1): the user
itself, and the service account that created it. Everyone else gets 404, as if the user did not
exist. An access token reaches its own user object only with the whole-user scope (I3): otherwise
that user is hidden from it as well (404), like any object outside its scope.

Identity (I2):
- an OpenID Connect identity is (issuer, sub): it registers itself with `firebaseId=<its sub>`; the
  same `sub` from another issuer is another user. Its email address is kept, and claimed for the
  whole deployment, only when the issuer says `email_verified` is exactly true; registering with such
  an address accepts the current invitations to it (at registration only: an address verified later
  accepts nothing, and its invitations stay pending until they expire);
- a service account cannot claim an identity: `firebaseId=` from a service account is always 403
  `identity_reserved` (whether or not the identity exists, so it learns nothing);
- a service account creates users by email address: such a user is its own (tenant-local), its address
  unverified and unique within that service account only; another service account asking for the same
  address gets a user of its own, and nobody's creation blocks the person's own registration. These
  users accept no invitations: their service account adds them to its teams itself.

Costs in AWS calls:
- Get/Create, `userId`: 1 GetItem;
- Get/Create, `firebaseId`: 1 GetItem for the identity's claim, and 1 GetItem for an existing user; a
  registration is 1 TransactWriteItems, and with a verified email address 1 Query for its invitations
  (+ 1 TransactWriteItems per 50 current ones); when that address is another identity's already, 1
  GetItem and 1 more TransactWriteItems (registered without it). An access token: 1 GetItem (its user);
- Get/Create, `email`: 1 GetItem for the claim (the service account's own, or the verified one), and 1
  GetItem for an existing user, or 1 TransactWriteItems for a creation;
- Update a User: the authority check (free for oneself, 1 GetItem otherwise) and 1 UpdateItem;
- Get Related Users: the authority check, 1 Query for the user's grants, 1 Query per shared object (at
  most MAX_RELATED_OBJECTS, run side by side), 1 BatchGetItem for the page's users (none when empty);
- Get Dashboard User Stats: the authority check and 3 Queries with `Select=COUNT`.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pydantic import TypeAdapter, ValidationError

from kallo import paging
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.errors import BadRequest, Conflict, Forbidden, NotFound
from kallo.models.common import Email
from kallo.models.users import UserUpdate
from kallo.paging import PAGE_LIMIT
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
    created by this call (see the module's rules)."""
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
    found = users.get(user_id)
    if found is None or not authority.over(access, found):
        raise authority.not_found(user_id)
    return found


def _by_firebase_id(access: Access, firebase_id: str) -> tuple[dict[str, Any], bool]:
    """I2: an identity registers (or finds) itself; a service account claims none."""
    principal = access.principal
    missing = NotFound(f"no user with firebaseId {firebase_id}")
    if principal.is_service_account:
        raise Forbidden(
            "an OpenID Connect identity registers itself: a service account cannot create or look up "
            "users by firebaseId (create yours by email address)",
            code="identity_reserved",
        )
    if principal.scheme == "oidc":
        if firebase_id != principal.firebase_id or not principal.issuer:
            raise missing
        found = users.find_by_identity(principal.issuer, firebase_id)
        return (found, False) if found else _register(principal)
    # An access token: only its own user, by its own firebaseId.
    own = users.get(principal.user_id) if principal.user_id else None
    if own is None or own.get("firebaseId") != firebase_id or not authority.over(access, own):
        raise missing
    return own, False


def _by_email(access: Access, email: str) -> tuple[dict[str, Any], bool]:
    principal = access.principal
    if principal.is_service_account and principal.user_id:
        # I2: the service account's own users only; nobody else's user, verified or not, is looked up
        # (so this says nothing about who else has the address).
        found = users.find_local(principal.user_id, email)
        return (found, False) if found else _create_local(principal.user_id, email)
    found = users.find_by_email(email)
    if found is None or not authority.over(access, found):
        raise NotFound(f"no user with email {email}")
    return found, False


def _new_user(fields: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid4()), "isServiceAccount": False, **fields, "createdAt": now_iso()}


def _create_local(service_account_id: str, email: str) -> tuple[dict[str, Any], bool]:
    """A user of the service account's own (I1: it has authority over it), its address unverified and
    unique within that service account (I2). It accepts no invitation."""
    user = _new_user({"emailAddress": email})
    try:
        users.create(user, created_by=service_account_id)
    except Conflict:
        # The same service account creating it twice at once: the other request's user.
        raced = users.find_local(service_account_id, email)
        if raced:
            return raced, False
        raise
    return {**user, "createdBy": service_account_id}, True


def _register(principal: Principal) -> tuple[dict[str, Any], bool]:
    """Register an OIDC identity as a new user (I2). With an address its issuer verified, the address
    is claimed and the invitations sent to it become the user's grants; when another identity holds
    that address already (the same person at another issuer, or someone else), the identity is
    registered without it: a registration is never refused for an address."""
    issuer, subject = principal.issuer or "", principal.firebase_id or ""
    fields: dict[str, Any] = {"firebaseId": subject, "issuer": issuer}
    email = _verified_email(principal)
    user = _new_user({**fields, "emailAddress": email, "emailVerified": True} if email else fields)
    try:
        users.create(user)
    except Conflict:
        # The same identity registering twice at once (an app's parallel first requests): the other
        # request created the user. Otherwise its email address is taken.
        raced = users.find_by_identity(issuer, subject)
        if raced:
            return raced, False
        if not email:
            raise
        user = _new_user(fields)
        users.create(user)
        return user, True
    if email:
        invitations.accept_invitations(user["id"], email)
    return user, True


def _verified_email(principal: Principal) -> str | None:
    """The ID token's email address, only when the issuer verified it (anyone can claim one), and
    only when it is a valid address (a broken claim must not block registration)."""
    if not principal.email or principal.email_verified is not True:
        return None
    try:
        return _email.validate_python(principal.email)
    except ValidationError:
        return None


# -- Update a User ------------------------------------------------------------------------------------


def update_user(access: Access, user_id: str, data: UserUpdate) -> dict[str, Any]:
    """Change a user's profile: whoever has authority over it (I1: the user itself, within a
    whole-user scope, I3, or the service account that created it); anyone else gets 404. A grant on
    the user object gives no such right: Add Grantee can make one."""
    ref = Ref("user", user_id)
    authority.acting_for(access, user_id)
    try:
        return objects.update(ref, data.changes())
    except Conflict as error:
        raise authority.not_found(user_id) from error


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
    # I1, I3: the user's own relations are the user object's: authority and a whole-user scope.
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
    on: one `Select=COUNT` Query each, so no item is read. The caller's own stats too are the user
    object's (I3): an access token needs the whole-user scope."""
    acting = authority.acting_for(access, user_id or access.principal.user_id or "")
    me = Ref("user", acting.principal.user_id or "")
    return {
        "convos": grants.count_of_grantee(me, "convo"),
        "teams": grants.count_of_grantee(me, "team"),
        "sources": grants.count_of_grantee(me, "data_source"),
    }
