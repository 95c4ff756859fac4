"""Steps of a convo and the configuration that asks an LLM to answer them (API.md, Schemas)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from kallo.models.common import ApiModel, Id, ResponseModel
from kallo.models.feedback import FeedbackCounts

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A step's text is capped at 64 KB so a whole step always fits in one 128 KB WebSocket frame.
STEP_TEXT_LIMIT = 65536
# And a whole step, as JSON (text, annotations, files, config...), at 100 KB: with its envelope and a
# requestId it still fits the 128 KB frame API Gateway allows a WebSocket message.
STEP_JSON_LIMIT = 100 * 1024
WEBSOCKET_FRAME_LIMIT = 128 * 1024


def json_size(value: Any) -> int:
    """Bytes of `value` as the WebSocket envelope serialises it (compact, UTF-8 unescaped)."""
    return len(json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False).encode())


class StepConfig(ApiModel):
    model: ModelName | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=32768)] | None = Field(default=None, alias="maxTokens")
    reply: bool | None = None
    data_source_ids: Annotated[list[Id], Field(max_length=50)] | None = Field(
        default=None, alias="dataSourceIds"
    )


class StepContent(ApiModel):
    text: Annotated[str, StringConstraints(max_length=STEP_TEXT_LIMIT)] = ""


class ConvoAnnotation(ResponseModel):
    type: Literal["citation"] = "citation"
    data_source_id: str = Field(alias="dataSourceId")
    data_source_name: str | None = Field(
        default=None,
        alias="dataSourceName",
        description="Set by the server on the citations of an answer or a summary: the data source's "
        "display name when it was cited, so a reader who may not read the data source still sees "
        "what is cited (only ever the name of a data source the answer was allowed to use)",
    )
    text: str
    start: int | None = None
    end: int | None = None


class StepUsage(ResponseModel):
    input_tokens: int = Field(alias="inputTokens")
    output_tokens: int = Field(alias="outputTokens")
    model: str


class Step(ResponseModel):
    """A step of a convo: a user's message or a model's answer (`authorType`), as the REST API returns it
    and convoNewStep carries it."""

    id: str
    convo_id: str = Field(alias="convoId")
    group_id: str | None = Field(default=None, alias="groupId")
    is_alternate: bool = Field(default=False, alias="isAlternate")
    author_type: Literal["user", "llm"] = Field(alias="authorType")
    author_id: str | None = Field(default=None, alias="authorId")
    content: dict = Field(default_factory=lambda: {"text": ""})
    config: dict | None = None
    status: Literal["completed", "running", "failed", "stopped"] = "completed"
    error: dict | None = None
    usage: StepUsage | None = Field(
        default=None, description="An llm step's token counts, as its model's provider reported them"
    )
    annotations: list[dict] = Field(
        default_factory=list,
        description="Citations: `{type: citation, dataSourceId, dataSourceName?, text, start?, end?}`; an "
        "answer's carry `dataSourceName`, the cited data source's display name at answer time",
    )
    files: list[dict] = Field(default_factory=list)
    seq: int | None = Field(
        default=None,
        description=(
            "An LLM step's update count: while it runs, its text is exactly its deltas 1..seq (saved "
            "before each delta is broadcast); its final update takes the next seq"
        ),
    )
    reply_to_step_id: str | None = Field(
        default=None, alias="replyToStepId", description="The user step an LLM step answers"
    )
    feedback: FeedbackCounts | None = Field(
        default=None, description="An LLM step's ratings: how many users like and dislike it"
    )
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")

    def record(self) -> dict[str, Any]:
        """The step's fields as the store takes them (`kallo.store.steps.add`): API names, unset
        fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)

    @model_validator(mode="after")
    def _answers_have_counts(self) -> Step:
        # The counts are stored from an answer's first rating on; before it, they are zeros.
        if self.author_type == "llm" and self.feedback is None:
            self.feedback = FeedbackCounts()
        return self
