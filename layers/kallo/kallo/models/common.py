"""Field types and base classes shared by every API model."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from kallo.authz.policy import GranteeType, Role

# Free text names and descriptions: trimmed, bounded so no item approaches DynamoDB's 400 KB.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Description = Annotated[str, StringConstraints(max_length=4096)]
LongText = Annotated[str, StringConstraints(max_length=65536)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$")]


def _canonical_uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except (ValueError, AttributeError, TypeError) as error:
        raise ValueError("must be a UUID") from error


# Ids are UUID strings in canonical lower-case form.
Id = Annotated[str, StringConstraints(max_length=64), AfterValidator(_canonical_uuid)]


def _server_made(value: Any) -> Any:
    raise PydanticCustomError("id_not_allowed", "ids are assigned by the server: leave id out")


# I4 (ids): the server makes every id. A create body or message that names one is refused (422), never
# silently ignored: a client that believes it chose an id would go on using one that names nothing (or,
# were it accepted, could take over a deleted object's id or probe for another tenant's). The field is
# declared only to give that refusal a clear message; it is absent from the API documents.
RefusedId = Annotated[SkipJsonSchema[Any], AfterValidator(_server_made)]


def _lower(value: str) -> str:
    return value.lower()


# Emails are compared case-insensitively, so they are stored lower-cased.
Email = Annotated[EmailStr, AfterValidator(_lower)]


class ApiModel(BaseModel):
    """Request models refuse unknown fields, so a typo is a 422 instead of a silent no-op."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=65536)


class ResponseModel(BaseModel):
    """Response models drop whatever the store keeps beyond the documented fields."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Grantee(ApiModel):
    id: Annotated[Id | None, Field(description="The UUID of the object granted the role")] = None
    type: GranteeType
    role: Role


__all__ = [
    "ApiModel",
    "Description",
    "Email",
    "Grantee",
    "Id",
    "LongText",
    "Name",
    "RefusedId",
    "ResponseModel",
    "Url",
]
