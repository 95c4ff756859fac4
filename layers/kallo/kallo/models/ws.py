"""Payloads of the WebSocket API's client messages (API.md, WebSocket and Schemas: step, stepGroup,
stepGroupAddition, stepDeletion, stepRegen, stepUpdate, convoSync), the envelope they travel in, the
payloads of the messages the server sends (`SERVER_MESSAGES`: among them the running step's snapshot
and convoDeleted), and the body of the Update Step REST operation. docs/asyncapi.json is generated
from this module (`python -m tools.asyncapi`): give every model a docstring and its fields descriptions.

A client may send a whole `step` object, as the seed's examples do: the fields the server sets
(`convoId`, `authorType`, `status`, `createdAt`, ...) are accepted and ignored, except that a `convoId`
must name the connection's convo, and `id` and `groupId` are refused (I4: the server makes every id, and
assigns groups).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kallo.models.common import ApiModel, Id, Line, Name, RefusedId, ResponseModel, Text, multi_line
from kallo.models.feedback import FeedbackCounts
from kallo.models.steps import STEP_TEXT_LIMIT, ConvoAnnotation, Step, StepConfig, StepUsage

MAX_GROUP_STEPS = 10
MAX_FILES = 20
# These bound what is parsed; what is stored is bounded as a whole: a step, as JSON, must fit one
# WebSocket frame (`STEP_JSON_LIMIT`, checked by `kallo.services.steps` before storing: 413).
MAX_ANNOTATIONS = 100
# The error type a too long step text gets; the WebSocket glue answers it with `payload_too_large`.
PAYLOAD_TOO_LARGE = "payload_too_large"


def _fits_a_frame(text: str) -> str:
    # The limit is in bytes, not characters: a whole step must fit in one 128 KB WebSocket frame.
    if len(text.encode()) > STEP_TEXT_LIMIT:
        raise PydanticCustomError(
            PAYLOAD_TOO_LARGE,
            "a step's text is limited to {limit} bytes (UTF-8)",
            {"limit": STEP_TEXT_LIMIT},
        )
    return text


# Several lines, without control or bidirectional formatting characters (I11), and fitting a frame.
StepText = Annotated[str, AfterValidator(multi_line), AfterValidator(_fits_a_frame)]
QuoteText = Text(4096)
MimeType = Line(255)


class StepContent(ApiModel):
    # The byte limit of StepText replaces the generic character limit of request strings, so that a
    # long text is reported as too large rather than as a generic validation error.
    model_config = ConfigDict(str_max_length=None)

    text: StepText = ""


# A step says something: text that is not only whitespace, or at least one attached file (422 otherwise,
# on the WebSocket and the REST surfaces alike; nothing is stored).
EMPTY_STEP = "a step needs text or files: content.text is empty and no file is attached"


def is_blank(text: str) -> bool:
    return not text.strip()


class Annotation(ApiModel):
    """A convoAnnotation: a citation of a data source."""

    type: Literal["citation"] = "citation"
    data_source_id: Id = Field(alias="dataSourceId")
    text: QuoteText
    start: NonNegativeInt | None = None
    end: NonNegativeInt | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Annotation:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class File(ApiModel):
    """A convoFile: a data source attached to a step."""

    data_source_id: Id = Field(alias="dataSourceId")
    name: Name
    mime_type: MimeType = Field(alias="mimeType")


# Fields of the step schema that only the server sets: accepted so a client can send a whole step
# object, never read.
_IGNORED = "Set by the server; ignored"


class NewStep(ApiModel):
    """A step a user writes (convoNewStep, and each step of convoNewStepGroup / convoStepGroupAddition)."""

    id: RefusedId = Field(default=None, exclude=True)
    content: StepContent
    config: StepConfig | None = Field(
        default=None, description="With `reply: true`, an LLM answers the step (a convoNewStep follows)"
    )
    files: Annotated[list[File], Field(max_length=MAX_FILES)] | None = None
    annotations: Annotated[list[Annotation], Field(max_length=MAX_ANNOTATIONS)] | None = None
    convo_id: Id | None = Field(
        default=None, alias="convoId", description="Set by the server; when given, the connection's convo"
    )
    group_id: Any = Field(default=None, alias="groupId", exclude=True, description="Refused")
    author_type: Any = Field(default=None, alias="authorType", exclude=True, description=_IGNORED)
    author_id: Any = Field(default=None, alias="authorId", exclude=True, description=_IGNORED)
    is_alternate: Any = Field(default=None, alias="isAlternate", exclude=True, description=_IGNORED)
    status: Any = Field(default=None, exclude=True, description=_IGNORED)
    error: Any = Field(default=None, exclude=True, description=_IGNORED)
    seq: Any = Field(default=None, exclude=True, description=_IGNORED)
    reply_to_step_id: Any = Field(default=None, alias="replyToStepId", exclude=True, description=_IGNORED)
    created_at: Any = Field(default=None, alias="createdAt", exclude=True, description=_IGNORED)
    updated_at: Any = Field(default=None, alias="updatedAt", exclude=True, description=_IGNORED)

    @model_validator(mode="after")
    def _not_empty(self) -> NewStep:
        if is_blank(self.content.text) and not self.files:
            raise ValueError(EMPTY_STEP)
        return self

    @field_validator("group_id")
    @classmethod
    def _no_group(cls, value: Any) -> Any:
        if value is not None:
            raise PydanticCustomError(
                "group_not_allowed",
                "groupId is assigned by the server: send convoNewStepGroup or convoStepGroupAddition",
            )
        return value

    @property
    def wants_reply(self) -> bool:
        return bool(self.config and self.config.reply)


class NewStepGroup(ApiModel):
    """stepGroup: the first step is the group's primary, the others its alternates."""

    steps: Annotated[list[NewStep], Field(min_length=1, max_length=MAX_GROUP_STEPS)]


class StepGroupAddition(ApiModel):
    primary_step_id: Id = Field(alias="primaryStepId")
    step: NewStep


class StepDeletion(ApiModel):
    id: Id


class StopStep(ApiModel):
    """convoStopStep: the running answer to stop."""

    id: Id


class SyncSince(ApiModel):
    """Where the client's copy of a step stands: the step it was following, and the last `seq` it
    applied to that step's text."""

    step_id: Id = Field(alias="stepId", description="The step the client was following (an LLM answer)")
    seq: NonNegativeInt = Field(description="The last seq the client applied to that step's text")


class ConvoSync(ApiModel):
    """convoSync: ask for the convo's state now, to the sender only (the requestId is echoed), after
    connecting or on a `seq` gap: `convoStatus` (one per running answer, else `idle`), the snapshot of
    each running answer (a `convoStepUpdate` with its whole text so far and its `seq`), and, when
    `since` names a step of this convo that is no longer running and the client lacks its end, that
    step's final `convoStepUpdate`. A `since` naming no step of this convo is ignored."""

    since: SyncSince | None = Field(
        default=None, description="The step the client was following and the last seq it applied"
    )


class SnapshotText(ResponseModel):
    """The text of a running answer so far."""

    text: str = Field(description="Exactly the text of deltas 1..seq")


class StepSnapshot(ResponseModel):
    """convoStepUpdate (server → sender of convoSync) for a running answer: its whole text through
    `seq`. It REPLACES the client's text of the step; deltas with a higher `seq` follow."""

    id: str = Field(description="The running LLM step")
    convo_id: str = Field(alias="convoId", description="Its convo")
    content: SnapshotText = Field(description="The text so far")
    seq: NonNegativeInt = Field(description="The last delta the text includes (0: none yet)")
    status: Literal["running"] = Field(default="running", description="Always running")


class ConvoDeleted(ResponseModel):
    """convoDeleted (server → every connection on the convo that may view it): the convo was deleted.
    The server then closes the connection (close code 1000)."""

    id: str = Field(description="The deleted convo")


class StepRegen(ApiModel):
    id: Id
    config: StepConfig | None = Field(default=None, description="Merged over the regenerated step's config")


class StepUpdate(ApiModel):
    """stepUpdate from a client: the step's id and at least one patchable property (`delta` is sent by
    the server only)."""

    id: Id
    content: StepContent | None = None
    is_alternate: bool | None = Field(
        default=None, alias="isAlternate", description="Only false: the step becomes its group's primary"
    )
    annotations: Annotated[list[Annotation], Field(max_length=MAX_ANNOTATIONS)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> StepUpdate:
        if self.content is None and self.is_alternate is None and self.annotations is None:
            raise ValueError("give at least one of content, isAlternate and annotations")
        return self


# Query Steps `searchTerm`: words separated by anything that is not a letter or digit.
SearchTerm = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StepPatch(ApiModel):
    """Update Step (REST) body."""

    is_alternate: bool = Field(
        alias="isAlternate", description="Only false: the step becomes its group's primary"
    )


class Envelope(BaseModel):
    """`{type, payload, requestId?}`, both ways. Unknown envelope fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    payload: Any = None
    request_id: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, alias="requestId"
    )


# -- what the server sends ------------------------------------------------------------------------------
# The payloads below describe the JSON the services build; every frame the WebSocket integration tests
# see posted is checked against them (tests/support/ws.py), so the published document cannot drift
# from the wire.


class ServerMessage(BaseModel):
    """A payload the server sends: only the fields documented here, absent rather than null."""

    # Built when first used (the API documents, the tests' frame check), never by a function.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class StepChange(ServerMessage):
    """convoStepUpdate from the server: what changed in a step, by `id`. A running answer streams as
    `delta`s numbered by `seq` (1, 2, ...: append each in order); its final update carries the whole
    `content`, `status`, `seq`, and `usage` and `annotations` when known. Other updates carry one
    change: new `content` or `annotations` (an edit), `isAlternate` (a group's primary changed),
    `groupId` (a step became a group's primary), or `feedback` (likes and dislikes)."""

    id: str = Field(description="The step's id")
    delta: str | None = Field(default=None, description="Text to append to a running answer")
    seq: int | None = Field(
        default=None,
        description="The answer's sequence number: a delta with seq = last + 1 appends, an update with "
        "`content` replaces the text as of this seq",
    )
    content: StepContent | None = Field(default=None, description="The step's whole content")
    status: Literal["completed", "running", "failed", "stopped"] | None = Field(
        default=None, description="An answer's status; the final update says how it ended"
    )
    error: dict[str, str] | None = Field(
        default=None, description="A failed answer's `{code, message}` (no provider detail: I7)"
    )
    usage: StepUsage | None = Field(default=None, description="The tokens the answer read and wrote")
    annotations: list[ConvoAnnotation] | None = Field(default=None, description="The answer's citations")
    is_alternate: bool | None = Field(
        default=None, alias="isAlternate", description="Whether the step is an alternate of its group"
    )
    group_id: str | None = Field(default=None, alias="groupId", description="The step's new group")
    feedback: FeedbackCounts | None = Field(default=None, description="An answer's likes and dislikes")


class StepRemoved(ServerMessage):
    """convoStepDeletion from the server: the step is gone (when it was its group's primary, a
    convoStepUpdate `isAlternate: false` names the one that takes its place)."""

    id: str = Field(description="The deleted step's id")


class StepRegenerated(ServerMessage):
    """convoStepRegen from the server: the answer `id` is deleted and answered again (a convoNewStep
    and its updates follow)."""

    id: str = Field(description="The id of the answer that is regenerated")
    config: StepConfig = Field(description="The config of the new answer")


class ConvoStatus(ServerMessage):
    """convoStatus: whether an answer is being written in the convo (`running`, with its `stepId`) or
    not (`idle`)."""

    convo_id: str = Field(alias="convoId", description="The convo's id")
    status: Literal["running", "idle"] = Field(description="`running` while an answer is written")
    step_id: str | None = Field(default=None, alias="stepId", description="The running answer's id")


class ConvoUpdate(ServerMessage):
    """convoUpdate: the convo's properties changed (its name, given after the first answer or by a
    rename)."""

    id: str = Field(description="The convo's id")
    name: str | None = Field(default=None, description="The convo's new name")
    updated_at: str | None = Field(default=None, alias="updatedAt", description="When it changed (ISO 8601)")


class ErrorMessage(ServerMessage):
    """error: a message could not be carried out; sent to its sender only, echoing its `requestId`.
    The socket stays open, except after `unauthorized` (the caller may no longer view the convo: I8)."""

    code: str = Field(description="A snake_case code, e.g. `validation_error`, `not_found`, `throttled`")
    message: str = Field(description="What went wrong, for a person")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="For `validation_error`, one `{loc, type, msg}` per invalid field"
    )
    retry_after: int | None = Field(
        default=None, alias="retryAfter", description="Seconds to wait, when a rate or quota is used up (I10)"
    )
    request_id: str | None = Field(
        default=None, alias="requestId", description="The failed message's requestId"
    )


# Every message type the server sends, with its payload's model; a type sent in several shapes lists
# each (the document gives its payload `oneOf` them). A convoNewStep carries the whole step, as the REST
# API returns it.
SERVER_MESSAGES: dict[str, tuple[type[BaseModel], ...]] = {
    "convoNewStep": (Step,),
    "convoStepUpdate": (StepChange, StepSnapshot),
    "convoStepDeletion": (StepRemoved,),
    "convoStepRegen": (StepRegenerated,),
    "convoStatus": (ConvoStatus,),
    "convoUpdate": (ConvoUpdate,),
    "convoDeleted": (ConvoDeleted,),
    "error": (ErrorMessage,),
}
