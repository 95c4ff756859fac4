"""App keys (API.md, "Beyond the seeds": Create / Query / Revoke App Keys)."""

from __future__ import annotations

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from kallo.models.common import Name, ResponseModel
from kallo.models.topics import NewObject


class AppKeyCreate(NewObject):
    name: Name


class AppKeySummary(ResponseModel):
    """An app key as listed: never the key itself, only its first characters."""

    id: str
    name: str
    topic_id: str = Field(alias="topicId")
    key_prefix: str = Field(alias="keyPrefix", description="`app-` and the key's next 4 characters")
    created_at: str = Field(alias="createdAt")
    created_by: str = Field(alias="createdBy")
    last_used_at: str | None = Field(
        default=None, alias="lastUsedAt", description="Recorded at most once a minute; absent until used"
    )

    # No return annotation: with one, pydantic would publish that type instead of the model's schema.
    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler):
        return {k: v for k, v in handler(self).items() if v is not None}


class NewAppKey(ResponseModel):
    """A key just made: the only time `key` is shown."""

    id: str
    name: str
    topic_id: str = Field(alias="topicId")
    key: str = Field(description="The secret, shown once: keep it (only its hash is stored)")
    key_prefix: str = Field(alias="keyPrefix")
    created_at: str = Field(alias="createdAt")
    created_by: str = Field(alias="createdBy")
