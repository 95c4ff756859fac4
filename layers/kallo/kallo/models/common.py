"""Field types and base classes shared by every API model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from kallo.authz.policy import GranteeType, Role

# -- text ---------------------------------------------------------------------------------------------
# I11 (hostile input): text a client gives (names, titles, descriptions, prompt and step text, file
# names) never holds control characters (NUL and the other C0 controls, DEL, the C1 controls; multi-line
# text keeps tab, line feed and carriage return), or bidirectional embeddings, overrides and isolates
# (an override makes `exe.pdf` display as `fdp.exe`). Each is refused with 422, never silently dropped.
# Lone surrogates (`"\ud800"` in JSON) are not Unicode text: pydantic refuses them already.
_EMBEDDINGS_AND_ISOLATES = "\u202a-\u202e\u2066-\u2069"
# The bidirectional marks (LRM, RLM, ALM) reorder nothing by themselves: ordinary Hebrew and Arabic text
# carries them around numbers and punctuation, so multi-line text keeps them. A name, shown inline
# among other text (a file name, a list), refuses them as well.
_MARKS = "\u200e\u200f\u061c"
_NOT_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_EMBEDDINGS_AND_ISOLATES}]")
# A single line also refuses line breaks, the Unicode line and paragraph separators included.
_NOT_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_EMBEDDINGS_AND_ISOLATES}{_MARKS}]")


def _refuse(pattern: re.Pattern[str], value: str, what: str) -> str:
    found = pattern.search(value)
    if found:
        raise ValueError(f"must not contain {what} (found U+{ord(found.group()):04X})")
    return value


def single_line(value: str) -> str:
    """A name-like text: refused when it holds a control, bidirectional or line-break character."""
    return _refuse(_NOT_IN_LINE, value, "control, line-break or bidirectional formatting characters")


def multi_line(value: str) -> str:
    """A text of several lines: refused when it holds a control (but tab and line breaks) or a
    bidirectional embedding, override or isolate; bidirectional marks are kept (see `_MARKS`)."""
    return _refuse(_NOT_IN_TEXT, value, "control or bidirectional formatting characters")


def Line(max_length: int, *, min_length: int | None = 1, **constraints: Any) -> Any:
    """A single-line text type, trimmed, of `min_length`..`max_length` characters."""
    bounds = StringConstraints(
        strip_whitespace=True, min_length=min_length, max_length=max_length, **constraints
    )
    return Annotated[str, bounds, AfterValidator(single_line)]


def Text(max_length: int, *, min_length: int | None = None, **constraints: Any) -> Any:
    """A multi-line text type, kept verbatim (whitespace can matter), of at most `max_length` characters."""
    bounds = StringConstraints(min_length=min_length, max_length=max_length, **constraints)
    return Annotated[str, bounds, AfterValidator(multi_line)]


# Free text names and descriptions, bounded so no item approaches DynamoDB's 400 KB.
Name = Line(256)
Description = Text(4096)
LongText = Text(65536)
Url = Line(2048, min_length=None, pattern=r"^https?://\S+$")

# -- dates --------------------------------------------------------------------------------------------
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_RFC3339_HINT = "must be an RFC 3339 date-time, e.g. 2026-11-22T10:00:00.000Z"


def _rfc3339(value: Any) -> datetime:
    """I11 (hostile input): an RFC 3339 date-time, in UTC. pydantic's own parsing also takes Unix
    timestamps and dates without a time or offset; and a date at the edge of the calendar with an
    offset (`0001-01-01T00:00:00+14:00`) has no UTC time: an OverflowError, a 5xx, unless refused here."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.isoformat()
    if not isinstance(value, str) or len(value) > 64 or not _RFC3339.fullmatch(value):
        raise ValueError(_RFC3339_HINT)
    try:
        return datetime.fromisoformat(value.upper().replace(" ", "T")).astimezone(UTC)
    except (ValueError, OverflowError) as error:  # month 13; no UTC time before year 1 or after 9999
        raise ValueError(_RFC3339_HINT + ", between years 1 and 9999 in UTC") from error


# Every date-time a client gives (query parameters and bodies).
DateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


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


def _email(value: str) -> str:
    # EmailStr's own check, but pydantic.networks (about 30 ms of CPU: importlib.metadata, the email
    # package) and email-validator are imported at the first address, not with the models.
    # Emails are compared case-insensitively, so they are stored lower-cased.
    from pydantic.networks import validate_email

    return validate_email(value)[1].lower()


Email = Annotated[str, AfterValidator(_email), Field(json_schema_extra={"format": "email"})]


# Every API model is built (its validator and serializer) when first used, not when its module is
# imported (`defer_build`): a function imports the models of its whole area but uses one or two, and
# building the others cost up to 100 ms of CPU per cold start.
class ApiModel(BaseModel):
    """Request models refuse unknown fields, so a typo is a 422 instead of a silent no-op."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=65536, defer_build=True)


class ResponseModel(BaseModel):
    """Response models drop whatever the store keeps beyond the documented fields."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class Grantee(ApiModel):
    id: Annotated[Id | None, Field(description="The UUID of the object granted the role")] = None
    type: GranteeType
    role: Role


__all__ = [
    "ApiModel",
    "DateTime",
    "Description",
    "Email",
    "Grantee",
    "Id",
    "Line",
    "LongText",
    "Name",
    "RefusedId",
    "ResponseModel",
    "Text",
    "Url",
    "multi_line",
    "single_line",
]
