"""Topics (API.md, Schemas: topic, topicConfig), and the parts every owned object's models share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from kallo.models.common import ApiModel, Description, Id, Name, RefusedId, ResponseModel
from kallo.models.steps import StepConfig

# At most this many data sources linked to a topic (its `dataSourceIds`): 500 keeps the item small.
MAX_DATA_SOURCE_IDS = 500
# At most this many ids per Query Topics request: one BatchGetItem reads them all.
MAX_QUERY_IDS = 100


def _split_ids(value: Any) -> Any:
    """`topicIds=a,b` and `topicIds=a&topicIds=b` both arrive as a list of strings; empty entries
    (`topicIds=` or a trailing comma) are ignored."""
    parts = value if isinstance(value, list) else [value]
    if not all(isinstance(p, str) for p in parts):
        return value
    return [s for p in parts for s in (x.strip() for x in p.split(",")) if s]


def _dedupe(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _ids_of_objects(value: Any) -> Any:
    """The seed types Create's dataSourceIds as dataSource objects and Update's as ids: take both."""
    if isinstance(value, list):
        return [v["id"] if isinstance(v, dict) and "id" in v else v for v in value]
    return value


# I5/I6: a topic's `dataSourceIds` lists the data sources linked to it, in order, and only the link
# operations write it, each after checking the caller may view and link the data source. A create or
# update body cannot: an id written there would not be checked, and would list another tenant's data
# source on the topic (as its grounding defaults once did).
LINK_OPERATION = "PUT /topics/{topicId}/data-sources/{dataSourceId}"


_KEPT_BY_LINKS = (
    f"dataSourceIds is kept by linking data sources to the topic ({LINK_OPERATION}); it cannot be given here"
)


def _none_given(ids: list[str]) -> list[str]:
    if ids:
        raise ValueError(_KEPT_BY_LINKS)
    return ids


def _refused(ids: list[str]) -> list[str]:
    raise ValueError(_KEPT_BY_LINKS)


DataSourceIds = Annotated[
    list[Id],
    BeforeValidator(_ids_of_objects),
    Field(
        max_length=MAX_DATA_SOURCE_IDS,
        description="Kept by Add / Remove Topic Data Source "
        f"({LINK_OPERATION}): the topic's linked data sources, in the order they were linked. "
        "A create body may leave it out or give it empty, an update body must leave it out (422).",
    ),
    AfterValidator(_none_given),
]
# In an update body even an empty list is refused: it would drop the links from the topic's list.
RefusedDataSourceIds = Annotated[DataSourceIds, AfterValidator(_refused)]
TopicIds = Annotated[
    list[Id],
    BeforeValidator(_split_ids),
    Field(max_length=MAX_QUERY_IDS),
    AfterValidator(_dedupe),
]


class TopicConfig(ApiModel):
    """A topic's configuration. `defaults` is the stepConfig the steps of the topic's convos start from.
    It is the only key: any other is refused (422), so a misspelt key never passes silently; new keys
    will be added as the platform interprets them."""

    defaults: StepConfig = Field(default_factory=StepConfig)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class NewObject(ApiModel):
    """Fields a create request may carry besides its own: for compatibility with the seed's request
    samples, createdBy/createdAt, which the server sets. An `id` is refused (422): I4 (ids), the server
    makes every id."""

    id: RefusedId = Field(default=None, exclude=True)
    created_by: Id | None = Field(default=None, alias="createdBy")
    created_at: str | None = Field(default=None, alias="createdAt", max_length=64)


class Patch(ApiModel):
    """A PATCH body: at least one field, and none of them null (a field is changed, never unset)."""

    @model_validator(mode="after")
    def _some_change(self) -> Patch:
        if not self.model_fields_set:
            names = ", ".join(f.alias or n for n, f in type(self).model_fields.items())
            raise ValueError(f"give at least one of {names}")
        nulls = [n for n in self.model_fields_set if getattr(self, n) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields to set, by their API (stored) names."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class TopicCreate(NewObject):
    name: Name
    description: Description
    config: TopicConfig = Field(default_factory=TopicConfig)
    data_source_ids: DataSourceIds = Field(default_factory=list, alias="dataSourceIds")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 (JSON Merge Patch), section 2: an object patch merges key by key, a null removes the key,
    anything else (arrays included) replaces the value. The RFC's ten lines of pseudocode, here rather
    than a dependency."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


ConfigPatch = Annotated[
    dict[str, Any],
    Field(
        description="A JSON merge patch (RFC 7396) of the topic's config: keys given are changed, a null "
        'removes its key (`{"defaults": {"model": null}}` drops the default model), keys left out '
        "are kept, and arrays (`dataSourceIds`) are replaced whole. The config it makes must be valid "
        "(422 otherwise).",
        json_schema_extra={"examples": [{"defaults": {"temperature": 0.2, "model": None}}]},
    ),
]


class TopicUpdate(Patch):
    # The seed types `name` as a uuid: a slip, it is the topic's free-text name.
    name: Name | None = None
    description: Description | None = None
    config: ConfigPatch | None = None
    data_source_ids: RefusedDataSourceIds | None = Field(default=None, alias="dataSourceIds")

    def changes(self) -> dict[str, Any]:
        """The fields to set, but `config`: a merge patch, applied to the stored config by the service."""
        changes = super().changes()
        changes.pop("config", None)
        return changes


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class OwnedObject(ResponseModel):
    """What every topic and prompt returns; optional fields are left out rather than null."""

    id: str
    created_by: str = Field(alias="createdBy")
    created_at: str = Field(alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")
    team_id: str | None = Field(default=None, alias="teamId", description="The team that owns it, if any")

    # No return annotation: with one, pydantic would publish that type instead of the model's schema.
    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler):
        return _without_nulls(handler(self))


class Topic(OwnedObject):
    name: str
    description: str
    config: TopicConfig
    data_source_ids: list[str] = Field(default_factory=list, alias="dataSourceIds")
    prompt_id: str | None = Field(default=None, alias="promptId", description="The topic's prompt, if set")
