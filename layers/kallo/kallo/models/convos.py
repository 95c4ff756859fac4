"""Convos (API.md, Schemas: convo) and the parameters of the Convos operations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from kallo.models.common import ApiModel, Line, Name, ResponseModel
from kallo.models.steps import Step
from kallo.models.topics import NewObject, OwnedObject

# A convo may start without a name (one is generated later from its first steps).
ConvoName = Line(256, min_length=None)

# Seed flags such as `includeLatestStep=1`: any non-empty value turns them on.
Flag = Annotated[str, StringConstraints(max_length=64)]


class ConvoCreate(NewObject):
    name: ConvoName | None = Field(
        default=None, description="Optional: without one the convo starts with an empty name"
    )
    latest_step: dict[str, Any] | None = Field(
        default=None,
        alias="latestStep",
        description="Accepted for compatibility with the seed's request sample and ignored: steps are "
        "added over the WebSocket API, and latestStep always reflects them",
    )


class ConvoPatch(ApiModel):
    # The seed types `name` as a uuid: a slip, it is the convo's free-text name.
    name: Name


class Convo(OwnedObject):
    name: str
    topic_id: str | None = Field(default=None, alias="topicId", description="The topic that owns it, if any")
    latest_step: Step | None = Field(
        default=None,
        alias="latestStep",
        description="The newest primary step (Get a Convo; Query Convos with includeLatestStep)",
    )


class ConvoTopicConfig(ResponseModel):
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="The stepConfig the convo's steps start from: its topic's config.defaults, "
        "or {} when no topic owns the convo",
    )
