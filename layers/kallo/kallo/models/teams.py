"""Teams and team users (API.md, Schemas: team, teamUser)."""

from __future__ import annotations

from pydantic import Field

from kallo.models.common import ApiModel, Id, Name, ResponseModel


class TeamCreate(ApiModel):
    id: Id | None = None
    name: Name
    # Accepted for compatibility with the seed's request sample; the server sets both.
    created_by: Id | None = Field(default=None, alias="createdBy")
    created_at: str | None = Field(default=None, alias="createdAt", max_length=64)


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
