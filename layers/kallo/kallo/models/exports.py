"""Export Data (API.md, Schemas: export): convos sent as an HTML email to up to five addresses, each
the verified email of a user who may view every convo (I9, `kallo.services.exports`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SerializerFunctionWrapHandler, model_serializer

from kallo.models.common import ApiModel, Email, Id, ResponseModel
from kallo.models.topics import NewObject

# One email carries at most this many convos, sent to at most this many addresses (SES takes 50
# recipients per message; I9: five keeps an export from becoming a mailing list).
MAX_EXPORT_CONVOS = 50
MAX_EXPORT_DESTINATIONS = 5

ExportFormat = Literal["html-email"]
ExportStatus = Literal["queued", "sent", "failed"]


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat an entry")
    return values


def _distinct_addresses(destinations: list[ExportDestination]) -> list[ExportDestination]:
    _distinct([d.address for d in destinations])
    return destinations


class ExportSources(ApiModel):
    convo_ids: Annotated[
        list[Id],
        Field(min_length=1, max_length=MAX_EXPORT_CONVOS, description="The convos to export, in this order"),
        AfterValidator(_distinct),
    ] = Field(alias="convoIds")


class ExportDestination(ApiModel):
    type: Literal["email"]
    address: Email = Field(
        description="The verified email address of a Kallo user who may view every convo of the export"
    )


class ExportCreate(NewObject):
    format: ExportFormat
    sources: ExportSources
    destinations: Annotated[
        list[ExportDestination],
        Field(min_length=1, max_length=MAX_EXPORT_DESTINATIONS),
        AfterValidator(_distinct_addresses),
    ]


class Export(ResponseModel):
    id: str
    format: ExportFormat
    sources: ExportSources
    destinations: list[ExportDestination]
    created_at: str = Field(alias="createdAt")
    created_by: str = Field(alias="createdBy")
    status: ExportStatus = Field(
        description="queued until the worker sends the email; sent, or failed with an error"
    )
    sent_at: str | None = Field(default=None, alias="sentAt")
    error: dict[str, str] | None = Field(default=None, description="`{code, message}` when failed")

    # No return annotation: with one, pydantic would publish that type instead of the model's schema.
    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler):
        return {k: v for k, v in handler(self).items() if v is not None}
