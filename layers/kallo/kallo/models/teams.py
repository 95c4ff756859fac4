"""Teams and team users (API.md, Schemas: team, teamUser)."""

from __future__ import annotations

from pydantic import Field

from kallo.models.common import ApiModel, Name, ResponseModel
from kallo.models.topics import NewObject


class TeamCreate(NewObject):
    """Create a Team: `name` (createdBy/createdAt are accepted and set by the server; an id is refused)."""

    name: Name


class TeamUpdate(ApiModel):
    """Update a Team: `name` is the one patchable property, so it is required (an empty patch is 422)."""

    name: Name


class Team(ResponseModel):
    id: str
    name: str
    created_by: str = Field(alias="createdBy")
    created_at: str = Field(alias="createdAt")


class TeamUser(ResponseModel):
    """A user's membership of a team: `isOwner` tells the owner apart (roles: GET /auth/grantees)."""

    team_id: str = Field(alias="teamId")
    user_id: str = Field(alias="userId")
    is_owner: bool = Field(alias="isOwner")
    created_at: str = Field(alias="createdAt")
