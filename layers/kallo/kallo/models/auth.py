"""Auth API models (API.md, Auth): access tokens, grantees and permission queries."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from kallo.authz.policy import GranteeType, ObjectType, Permission, Role
from kallo.models.common import ApiModel, DateTime, Id, ResponseModel

# ==== Access tokens: Create Access Token ==============================================================

# Scope objects per token: each is checked on creation, and the scope travels in the authorizer's
# context to every function, so it is kept small.
MAX_SCOPE_OBJECTS = 50
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    """`*`, or an origin `scheme://host[:port]` (no path, query or user info) put in the form browsers
    send it (lower case, no default port): access-control-allow-origin must match it exactly."""
    if value == "*":
        return value
    match = _ORIGIN.fullmatch(value.lower())
    if not match:
        raise ValueError("must be * or an origin scheme://host[:port], with no path")
    scheme, host, port = match.group("scheme", "host", "port")
    if port is None or _DEFAULT_PORTS.get(scheme) == int(port):
        return f"{scheme}://{host}"
    if not 0 < int(port) <= 65535:
        raise ValueError("the port must be 1 to 65535")
    return f"{scheme}://{host}:{int(port)}"


AllowOrigin = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_origin)]


class ScopeObject(ApiModel):
    """An object an access token is limited to (with what it owns); `{type: user, id: <the token's
    user>}` is everything the user may access."""

    type: ObjectType
    id: Id


class AccessTokenCreate(ApiModel):
    user_id: Id = Field(alias="userId", description="The user the token acts for")
    scope_objects: list[ScopeObject] = Field(
        alias="scopeObjects",
        min_length=1,
        max_length=MAX_SCOPE_OBJECTS,
        description="The objects the token is limited to; the user must be able to view each",
    )
    allow_origin: AllowOrigin | None = Field(
        default=None,
        alias="allowOrigin",
        description="The origin answered in access-control-allow-origin to requests made with the "
        "token (`*` for any); without it the header is omitted",
    )
    expires_at: DateTime = Field(
        alias="expiresAt",
        description="RFC 3339 with a time zone; in the future, and at most the configured maximum "
        "lifetime (30 days by default) ahead",
    )


class AccessToken(ResponseModel):
    id: str = Field(description="The token's id, for Revoke Access Token")
    jwt: str = Field(description="Send it as `Authorization: Bearer <jwt>`")


# ==== Grantees and permissions: Query / Add / Set / Remove Grantee, Query Permissions ===============
# (The request body of Add Grantee and the items of Set Grantees are `kallo.models.common.Grantee`;
# the invitation Add Grantee may answer is `kallo.models.users.Invitation`.)

# Set Grantees takes at most this many grantees, so that a replacement fits in one transaction
# (100 writes) together with the object's own write in the usual case.
MAX_GRANTEES = 99


class GranteeView(ResponseModel):
    """A direct grant on an object, as Query Grantees lists it."""

    id: str = Field(description="The UUID of the object granted the role")
    type: GranteeType
    role: Role


def _distinct(permissions: list[Permission]) -> list[Permission]:
    if len(set(permissions)) != len(permissions):
        raise ValueError("must not repeat a permission")
    return permissions


Permissions = Annotated[
    list[Permission], Field(min_length=1, max_length=len(Permission)), AfterValidator(_distinct)
]


class PermissionsQuery(ApiModel):
    user_id: Id | None = Field(
        default=None, alias="userId", description="Whose permissions (default: the caller's own)"
    )
    object_id: Id = Field(alias="objectId")
    object_type: ObjectType = Field(alias="objectType")
    permissions: Permissions


class PermissionsResult(ResponseModel):
    user_id: str = Field(alias="userId")
    object_id: str = Field(alias="objectId")
    object_type: ObjectType = Field(alias="objectType")
    permissions: list[Permission] = Field(
        description="The permissions asked for that the user holds, in order"
    )


# ==== end of grantees and permissions ===============================================================
