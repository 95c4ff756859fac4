"""Users, dashboard stats and invitations (API.md, Schemas: user, invitation)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, SerializerFunctionWrapHandler, StringConstraints, model_serializer

from kallo.authz.policy import Role
from kallo.models.common import Name, ResponseModel, Url
from kallo.models.topics import Patch

# An OpenID Connect `sub` is at most 255 ASCII characters (OIDC Core 1.0, 2); Firebase uids are
# shorter. Printable ASCII only, so the id is safe in keys, logs and URLs alike.
FirebaseId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]


class InvitableType(StrEnum):
    """The object types that can have invitations (seed: Get Invitations)."""

    convo = "convo"
    team = "team"


class User(ResponseModel):
    """A user; optional fields the user does not have are left out rather than null."""

    id: str
    firebase_id: str | None = Field(default=None, alias="firebaseId")
    is_service_account: bool = Field(alias="isServiceAccount")
    email_address: str | None = Field(default=None, alias="emailAddress")
    display_name: str | None = Field(default=None, alias="displayName")
    photo_url: str | None = Field(default=None, alias="photoUrl")
    created_at: str = Field(alias="createdAt")

    # No return annotation: with one, pydantic would publish that type instead of the model's schema.
    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler):
        return {k: v for k, v in handler(self).items() if v is not None}


class UserUpdate(Patch):
    """Update a User: at least one field; neither may be null."""

    display_name: Name | None = Field(default=None, alias="displayName")
    photo_url: Url | None = Field(default=None, alias="photoUrl", description="An http(s) URL")


class UserStats(ResponseModel):
    """Get Dashboard User Stats: how many convos, teams and data sources the user holds a grant on."""

    convos: int
    teams: int
    sources: int


class Invitation(ResponseModel):
    """A pending invitation of an email address to a team or convo; the owner of that verified address
    gets `role` on the object by accepting it (Accept Invitation) or by registering with it."""

    object_type: InvitableType = Field(alias="objectType")
    object_id: str = Field(alias="objectId")
    invite_email: str = Field(alias="inviteEmail")
    role: Role
    created_by: str = Field(alias="createdBy")
    created_at: str = Field(alias="createdAt")
