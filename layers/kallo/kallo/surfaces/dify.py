"""The Dify-style service API (seed 004 and the real Dify service API's stop, suggested, parameters and
files/upload) at `/dify/v1`, on Kallo's own data. docs/COMPATIBILITY.md ("Dify") is its reference.

- Credential: `Authorization: Bearer <app key>` (`kallo.auth.app_keys`): the key stands for one topic,
  Dify's "app". Every request names its end user (`user`, in the body or the query): the first request
  with a new value makes a Kallo user for it (`kallo.services.end_users`), and each end user sees and
  changes only the conversations it started through the key's topic: any other conversation, message
  or file id answers 404, exactly like a missing one (I4).
- Conversations are Kallo convos owned by the topic (`conversation_id` = the convo id), messages are
  a question (a user step) and its answer (an LLM step): `message_id` = `task_id` = the answer's step
  id. Answers are made in this process (`kallo.services.answering`), so a streamed answer's first
  `message` event leaves as soon as the model's first words arrive; the same broadcasts reach the
  convo's WebSocket clients.
- `inputs` fill the topic prompt's `{{variables}}` (`kallo.services.prompt_variables`); as in Dify
  they are kept on the conversation when it starts, and ignored on later messages.
- Times are Unix seconds; errors are `{code, message, status}` (`kallo.surfaces`).

Costs in AWS calls, in a warm container (the key cached; a cold one adds `kallo.auth.app_keys`' 2
GetItem, and an UpdateItem at most once a minute): every request 1 UpdateItem (the tenant's request
rate) + 1 GetItem (the end user's claim; a new end user adds 1 TransactWriteItems); an own conversation
is checked with 2 Query + 1 BatchGetItem + 1 GetItem, a message is found with 1 Query first:
- conversations: + 1 Query + 1 BatchGetItem; parameters: + 2 GetItem (the topic, its prompt);
- messages: + the check + 1 Query per page of steps + 1 BatchGetItem (ratings) + 1 BatchGetItem when
  answers cite data sources;
- rename: + the check + 1 UpdateItem + 1 Query (its connections hear `convoUpdate`); delete: + the
  check + 2 Query (its connections, which hear `convoDeleted`; the user grants) + 1 TransactWriteItems
  + 1 SQS SendMessage; both are told to the identifiers streams (`convos.announce`: 1 Query per user of
  the convo, and 1 more to read them for a rename); feedbacks, suggested, stop: + the message's check +
  what Set / Remove Step Feedback, Get Step Suggestions and Stop Step cost;
- files/upload: + 2 UpdateItem + 1 TransactWriteItems + 1 S3 PutObject (Upload New File);
- chat-messages: + the check (or 1 TransactWriteItems for a new conversation) + what Add Step costs and
  what the answer costs (`kallo.services.answering`; no SQS message: the answer is made here).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kallo import surfaces
from kallo.errors import BadRequest, Conflict, DomainError, NotFound, PayloadTooLarge, Unprocessable
from kallo.models.common import Name
from kallo.models.steps import STEP_TEXT_LIMIT
from kallo.models.ws import NewStep
from kallo.services import (
    answering,
    data_sources,
    end_users,
    feedback,
    prompt_variables,
    steps,
    stops,
    suggestions,
)
from kallo.services.end_users import EndUser, Exchange
from kallo.services.naming import clean_name
from kallo.settings import get_settings

logger = Logger(child=True)
BASE = "/dify/v1"
SUCCESS = {"result": "success"}
# Dify's defaults and bounds for its paged lists.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# At most this many files per chat message, and this many inputs (each value at most INPUT_LIMIT long).
MAX_FILES = 10
MAX_INPUTS = 50
INPUT_LIMIT = 4096
# An answer made here ends (failed, `answer_timeout`, with its text so far) after this long, or before
# the Lambda invocation does (`SAFETY_SECONDS` before its end: the function's 29 s are API Gateway's).
ANSWER_SECONDS = 240.0
SAFETY_SECONDS = 5.0
# How long `suggested` waits for follow-ups another request is making (they are made once).
SUGGESTIONS_WAIT_SECONDS = 20.0


# -- shapes of the peer API ------------------------------------------------------------------------------


def _blank_as_none(value: Any) -> Any:
    # Dify clients send `conversation_id: ""` and `last_id=` for "none".
    return None if value == "" else value


OptionalId = Annotated[
    Annotated[str, StringConstraints(max_length=64)] | None, BeforeValidator(_blank_as_none)
]
InputName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
InputValue = Annotated[str, StringConstraints(max_length=INPUT_LIMIT)] | int | float | bool | None


class DifyModel(BaseModel):
    """Dify ignores fields it does not know (its clients send some, like `auto_generate_name`)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class UserOnly(DifyModel):
    user: Name


class DifyFile(DifyModel):
    type: Literal["document", "image", "audio", "video", "custom"] = "document"
    transfer_method: Literal["local_file", "remote_url"]
    upload_file_id: OptionalId = None
    url: str | None = Field(default=None, max_length=2048)

    @field_validator("transfer_method")
    @classmethod
    def _local_only(cls, value: str) -> str:
        if value != "local_file":
            raise ValueError("only local_file is supported: upload the file with POST /files/upload")
        return value


class ChatRequest(DifyModel):
    query: Annotated[str, StringConstraints(min_length=1, max_length=STEP_TEXT_LIMIT)]
    inputs: Annotated[dict[InputName, InputValue], Field(max_length=MAX_INPUTS)] | None = None
    response_mode: Literal["blocking", "streaming"] = "blocking"
    conversation_id: OptionalId = None
    user: Name
    files: Annotated[list[DifyFile], Field(max_length=MAX_FILES)] | None = None


class FeedbackRequest(DifyModel):
    rating: Literal["like", "dislike"] | None
    user: Name
    content: Annotated[str, StringConstraints(max_length=4096)] | None = None


class RenameRequest(DifyModel):
    name: Annotated[Name | None, BeforeValidator(_blank_as_none)] = None
    auto_generate: bool = False
    user: Name


class HistoryQuery(DifyModel):
    user: Name
    conversation_id: OptionalId = None
    first_id: OptionalId = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT


class ConversationsQuery(DifyModel):
    user: Name
    last_id: OptionalId = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT


# -- helpers ---------------------------------------------------------------------------------------------


def _end_user(request: Request, user: str) -> EndUser:
    return end_users.resolve(surfaces.app_key_of(request), user)


def _query_user(request: Request) -> EndUser:
    return _end_user(request, surfaces.query_model(request, UserOnly).user)


def unix(moment: str | None) -> int:
    """An RFC 3339 time as Unix seconds (Dify's times)."""
    return int(datetime.fromisoformat(moment).timestamp()) if moment else 0


def _text(step: dict[str, Any] | None) -> str:
    return str(((step or {}).get("content") or {}).get("text", ""))


def _id_of(value: str, what: str) -> str:
    """An id the client names: anything but a canonical id names nothing (404, as a missing one)."""
    try:
        if str(UUID(value)) == value.lower():
            return value.lower()
    except ValueError:
        pass
    raise NotFound(f"{what} {value} not found")


def usage_of(usage: dict[str, Any] | None, latency: float | None = None) -> dict[str, Any]:
    """Kallo's `usage {inputTokens, outputTokens, model}` in Dify's shape."""
    prompt_tokens = int((usage or {}).get("inputTokens") or 0)
    completion_tokens = int((usage or {}).get("outputTokens") or 0)
    shown: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if usage and usage.get("model"):
        shown["model"] = usage["model"]
    if latency is not None:
        shown["latency"] = round(latency, 3)
    return shown


def _citations(annotations: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [a for a in annotations or () if a.get("type", "citation") == "citation"]


def cited_names(annotations: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    """The names of the data sources cited (one read for all of them; none without citations)."""
    ids = [a["dataSourceId"] for a in _citations(annotations)]
    return end_users.source_names(ids) if ids else {}


def retriever_resources(
    annotations: Iterable[dict[str, Any]] | None, names: dict[str, str]
) -> list[dict[str, Any]]:
    """An answer's citations as Dify's retriever resources: one per cited passage, in order."""
    cited = _citations(annotations)
    return [
        {
            "position": position,
            "document_id": a["dataSourceId"],
            "document_name": names.get(a["dataSourceId"], ""),
            "content": a.get("text", ""),
            **({"start": a["start"], "end": a["end"]} if "start" in a and "end" in a else {}),
        }
        for position, a in enumerate(cited, start=1)
    ]


# -- chat-messages ---------------------------------------------------------------------------------------


def _new_step(end_user: EndUser, body: ChatRequest) -> NewStep:
    """The question as a Kallo user step asking for an answer; uploaded files are attached and named
    for grounding (each must be the end user's own: another's is 404)."""
    files, source_ids = [], []
    for file in body.files or ():
        if not file.upload_file_id:
            raise Unprocessable("files: a local_file needs upload_file_id", code="validation_error")
        upload_id = _id_of(file.upload_file_id, "file")
        try:
            source = data_sources.get_data_source(end_user.access, upload_id)
        except NotFound as hidden:
            raise NotFound(f"file {upload_id} not found") from hidden
        files.append({"dataSourceId": source["id"], "name": source["name"], "mimeType": source["mimeType"]})
        source_ids.append(source["id"])
    config: dict[str, Any] = {"reply": True}
    if source_ids:
        config["dataSourceIds"] = list(dict.fromkeys(source_ids))
    step: dict[str, Any] = {"content": {"text": body.query}, "config": config}
    if files:
        step["files"] = files
    return surfaces.parse_model(NewStep, step)


class Answer:
    """What one answer's broadcasts say, in Dify's words (`message`, `message_end`, `error`)."""

    def __init__(self, conversation_id: str, started: float) -> None:
        self.conversation_id = conversation_id
        self.started = started
        self.step: dict[str, Any] = {}
        self.text: list[str] = []
        self.final: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.step.get("id", ""))

    def _ids(self) -> dict[str, Any]:
        return {
            "task_id": self.id,
            "id": self.id,
            "message_id": self.id,
            "conversation_id": self.conversation_id,
        }

    def created_at(self) -> int:
        return unix(self.step.get("createdAt"))

    def events(self, broadcasts: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        """Dify's events for the answer's broadcasts, as they come."""
        for kind, payload in broadcasts:
            if kind == "convoNewStep" and payload.get("authorType") == "llm":
                self.step = payload
            elif kind == "convoStepUpdate" and self.step and payload.get("id") == self.id:
                if payload.get("delta"):
                    self.text.append(payload["delta"])
                    yield {
                        "event": "message",
                        **self._ids(),
                        "answer": payload["delta"],
                        "created_at": self.created_at(),
                    }
                if payload.get("status") in ("completed", "failed", "stopped"):
                    self.final = payload
                    yield from self._rest_of_the_text()
                    yield self.end_event()

    def _rest_of_the_text(self) -> Iterator[dict[str, Any]]:
        """The text the deltas did not carry: the last words come with the final update (deltas are
        coalesced), so they go out as one more `message` event; should the final text not continue
        what was sent, Dify's `message_replace` gives the whole of it."""
        sent, whole = "".join(self.text), self.answer_text()
        if whole == sent:
            return
        if whole.startswith(sent):
            self.text.append(whole[len(sent) :])
            kind, answer = "message", whole[len(sent) :]
        else:
            self.text = [whole]
            kind, answer = "message_replace", whole
        yield {"event": kind, **self._ids(), "answer": answer, "created_at": self.created_at()}

    def answer_text(self) -> str:
        content = (self.final or {}).get("content")
        return _text({"content": content}) if content else "".join(self.text)

    def metadata(self) -> dict[str, Any]:
        final = self.final or {}
        annotations = final.get("annotations")
        return {
            "usage": usage_of(final.get("usage"), time.monotonic() - self.started),
            "retriever_resources": retriever_resources(annotations, cited_names(annotations)),
        }

    def failure(self) -> dict[str, str] | None:
        if self.final is None:
            return {"code": "internal_error", "message": "the answer ended without a result"}
        if self.final.get("status") == "failed":
            error = self.final.get("error") or {}
            return {"code": error.get("code", "model_error"), "message": error.get("message", "")}
        return None

    def end_event(self) -> dict[str, Any]:
        failure = self.failure()
        if failure is not None:
            return {"event": "error", **self._ids(), "status": 400, **failure}
        return {"event": "message_end", **self._ids(), "metadata": self.metadata()}

    def blocking(self) -> dict[str, Any]:
        failure = self.failure()
        if failure is not None:
            raise _AnswerFailed(failure["message"], code=failure["code"])
        return {
            "event": "message",
            **self._ids(),
            "mode": "chat",
            "answer": self.answer_text(),
            "metadata": self.metadata(),
            "created_at": self.created_at(),
        }


class _AnswerFailed(DomainError):
    """A blocking answer that failed: Dify answers 400 with the reason."""

    status, code = 400, "completion_request_error"


def _streamed(answer: Answer, broadcasts: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """The event stream of an answer; a failure half-way is the `error` event (the response has started:
    nothing else can tell the client), its cause logged only (I7)."""
    try:
        ended = False
        for event in answer.events(broadcasts):
            ended = ended or event["event"] in ("message_end", "error")
            yield event
        if not ended:
            yield answer.end_event()
    except Exception as error:
        logger.exception("a streamed answer failed", extra={"convoId": answer.conversation_id})
        shown = error if isinstance(error, DomainError) else None
        yield {
            "event": "error",
            **answer._ids(),
            "status": shown.status if shown else 500,
            "code": shown.code if shown else "internal_error",
            "message": shown.message if shown else surfaces.INTERNAL,
        }


def _deadline(request: Request, started: float) -> float:
    """When the answer must end: `ANSWER_SECONDS` after the request, or sooner when the Lambda
    invocation (Mangum hands its context to the app) ends sooner."""
    seconds = ANSWER_SECONDS
    context = request.scope.get("aws.context")
    if context is not None:
        seconds = min(seconds, context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS)
    return started + max(seconds, 1.0)


@surfaces.endpoint(body=ChatRequest)
def chat_messages(request: Request, body: ChatRequest) -> dict | Response:
    started = time.monotonic()
    end_user = _end_user(request, body.user)
    new_step = _new_step(end_user, body)
    if body.conversation_id:
        convo = end_users.own_convo(end_user, _id_of(body.conversation_id, "conversation"))
        made = False
    else:
        convo = end_users.start_convo(end_user, extra={"inputs": body.inputs or {}})
        made = True
    try:
        _, job = answering.ask(steps.Actor(end_user.access), convo["id"], new_step)
    except DomainError:
        if made:  # nothing was said in it: the conversation was never started
            end_users.delete_convo(end_user, convo["id"])
        raise
    answer = Answer(convo["id"], started)
    broadcasts = answering.run(job, deadline=_deadline(request, started))
    if body.response_mode == "streaming":
        return surfaces.sse(_streamed(answer, broadcasts))
    for _ in answer.events(broadcasts):
        pass
    return answer.blocking()


@surfaces.endpoint(body=UserOnly)
def stop(request: Request, body: UserOnly) -> dict:
    """Stop an answer of the end user's (`task_id` = its message id). An answer that is over already is
    a success too, as in Dify."""
    end_user = _end_user(request, body.user)
    task_id = request.path_params["task_id"]
    step = end_users.own_step(end_user, _id_of(task_id, "task"))
    with contextlib.suppress(Conflict):
        stops.stop_step(end_user.access, step["id"])
    return SUCCESS


# -- messages --------------------------------------------------------------------------------------------


@surfaces.endpoint(body=FeedbackRequest)
def feedbacks(request: Request, body: FeedbackRequest) -> dict:
    """Like, dislike, or (rating null) undo the end user's rating of an answer."""
    end_user = _end_user(request, body.user)
    step = end_users.own_step(end_user, _id_of(request.path_params["message_id"], "message"))
    if body.rating is None:
        # Undoing a rating that is not there leaves things as asked.
        with contextlib.suppress(NotFound):
            feedback.remove_feedback(end_user.access, step["id"])
    else:
        feedback.set_feedback(end_user.access, step["id"], body.rating, body.content or None)
    return SUCCESS


@surfaces.endpoint()
def suggested(request: Request, _: None) -> dict:
    """Up to 3 follow-up questions for an answer, made once and kept (`kallo.services.suggestions`);
    while another request is making them, this one waits for them (none after a while, and none for
    an answer that did not complete)."""
    end_user = _query_user(request)
    step = end_users.own_step(end_user, _id_of(request.path_params["message_id"], "message"))
    give_up = time.monotonic() + SUGGESTIONS_WAIT_SECONDS
    while True:
        try:
            found = suggestions.suggestions_for(end_user.access, step["id"])
        except Conflict:  # an answer that is not complete (failed, stopped, running) suggests nothing
            return {"result": "success", "data": []}
        if found is not None:
            return {"result": "success", "data": found}
        if time.monotonic() > give_up:
            return {"result": "success", "data": []}
        time.sleep(0.5)


def _message(
    exchange: Exchange, convo: dict[str, Any], ratings: dict[str, str], names: dict[str, str]
) -> dict:
    answer = exchange.answer or {}
    return {
        "id": exchange.id,
        "conversation_id": convo["id"],
        "inputs": convo.get("inputs") or {},
        "query": _text(exchange.question),
        "answer": _text(answer),
        "message_files": [
            {"id": f["dataSourceId"], "type": "document", "belongs_to": "user", "filename": f.get("name", "")}
            for f in (exchange.question or {}).get("files") or ()
        ],
        "feedback": ratings.get(exchange.id),
        "retriever_resources": retriever_resources(answer.get("annotations"), names),
        "created_at": unix((exchange.question or answer).get("createdAt")),
    }


@surfaces.endpoint()
def messages(request: Request, _: None) -> dict:
    """A conversation's messages: the latest `limit` before `first_id`, oldest first. Without a
    conversation there are none."""
    query = surfaces.query_model(request, HistoryQuery)
    end_user = _end_user(request, query.user)
    if not query.conversation_id:
        return {"limit": query.limit, "has_more": False, "data": []}
    convo_id = _id_of(query.conversation_id, "conversation")
    before = _id_of(query.first_id, "message") if query.first_id else None
    convo, found, has_more = end_users.exchanges(end_user, convo_id, before=before, limit=query.limit)
    answered = [e.answer["id"] for e in found if e.answer]
    ratings = feedback.ratings_of(end_user.user_id, answered) if answered else {}
    names = cited_names([a for e in found for a in (e.answer or {}).get("annotations") or ()])
    return {
        "limit": query.limit,
        "has_more": has_more,
        "data": [_message(e, convo, ratings, names) for e in found],
    }


# -- conversations ---------------------------------------------------------------------------------------


def _conversation(convo: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": convo["id"],
        "name": convo.get("name") or "",
        "inputs": convo.get("inputs") or {},
        "status": "normal",
        "introduction": "",
        "created_at": unix(convo.get("createdAt")),
        "updated_at": unix(convo.get("updatedAt") or convo.get("createdAt")),
    }


@surfaces.endpoint()
def conversations(request: Request, _: None) -> dict:
    """The end user's conversations, newest first, `limit` after `last_id`."""
    query = surfaces.query_model(request, ConversationsQuery)
    end_user = _end_user(request, query.user)
    after = query.last_id
    if after is not None:
        after = _id_of(after, "conversation")
    found, has_more = end_users.list_convos(end_user, limit=query.limit, after=after)
    return {"limit": query.limit, "has_more": has_more, "data": [_conversation(c) for c in found]}


def _auto_name(end_user: EndUser, convo_id: str) -> str:
    """A name from the conversation itself: the first words of its first question (the title Kallo
    gives a convo when its model cannot name it)."""
    return clean_name(end_users.first_question(end_user, convo_id)) or "New chat"


@surfaces.endpoint(body=RenameRequest)
def rename(request: Request, body: RenameRequest) -> dict:
    end_user = _end_user(request, body.user)
    convo_id = _id_of(request.path_params["conversation_id"], "conversation")
    if body.auto_generate:
        name = _auto_name(end_user, convo_id)
    elif body.name is None:
        raise Unprocessable("name: give a name, or auto_generate: true", code="validation_error")
    else:
        name = body.name
    end_users.rename_convo(end_user, convo_id, name)
    return SUCCESS


@surfaces.endpoint(body=UserOnly)
def delete_conversation(request: Request, body: UserOnly) -> dict:
    end_user = _end_user(request, body.user)
    end_users.delete_convo(end_user, _id_of(request.path_params["conversation_id"], "conversation"))
    return SUCCESS


# -- parameters, files -----------------------------------------------------------------------------------


@surfaces.endpoint()
def parameters(request: Request, _: None) -> dict:
    """What the app (the key's topic) offers: its description as the opening statement, a text input
    per variable of its prompt, follow-up suggestions, citations and document uploads."""
    end_user = _query_user(request)
    topic, prompt = end_users.app_settings(end_user)
    settings = get_settings()
    upload_mb = settings.upload_max_bytes // (1024 * 1024)
    return {
        "opening_statement": topic.get("description") or "",
        "suggested_questions": [],
        "suggested_questions_after_answer": {"enabled": True},
        "speech_to_text": {"enabled": False},
        "text_to_speech": {"enabled": False},
        "retriever_resource": {"enabled": True},
        "annotation_reply": {"enabled": False},
        "more_like_this": {"enabled": False},
        "sensitive_word_avoidance": {"enabled": False},
        "user_input_form": [
            {
                "text-input": {
                    "label": name,
                    "variable": name,
                    "required": False,
                    "max_length": INPUT_LIMIT,
                    "default": "",
                }
            }
            for name in prompt_variables.variables(prompt)
        ],
        "file_upload": {
            "enabled": True,
            "allowed_file_types": ["document"],
            "allowed_file_upload_methods": ["local_file"],
            "number_limits": MAX_FILES,
            "image": {"enabled": False, "number_limits": 0, "transfer_methods": []},
        },
        "system_parameters": {
            "file_size_limit": upload_mb,
            "image_file_size_limit": 0,
            "audio_file_size_limit": 0,
            "video_file_size_limit": 0,
        },
    }


# The form around the file: its other fields and multipart framing.
_FORM_OVERHEAD = 64 * 1024


async def upload(request: Request) -> Response:
    """A document of the end user's own (a Kallo data source it owns), usable in `files` of its chat
    messages: multipart `file` and `user`. The bytes are checked as any upload's (415 for a type Kallo
    does not read)."""
    limit = get_settings().upload_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"a file is at most {limit} bytes")
    raw = await request.body()
    if len(raw) > limit + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"a file is at most {limit} bytes")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise BadRequest("send multipart/form-data with a file and a user", code="invalid_param")
    form = await request.form(max_files=1, max_fields=8, max_part_size=limit)
    file, user = form.get("file"), form.get("user")
    if not isinstance(file, UploadFile):
        raise BadRequest("no file: send it in the `file` field", code="no_file_uploaded")
    data = await file.read()
    if len(data) > limit:
        raise PayloadTooLarge(f"a file is at most {limit} bytes")
    name, content_type = file.filename, file.content_type
    await form.close()
    user_value = surfaces.parse_model(UserOnly, {"user": user if isinstance(user, str) else None}).user
    return await run_in_threadpool(_store_upload, request, user_value, data, name, content_type)


def _store_upload(
    request: Request, user: str, data: bytes, name: str | None, content_type: str | None
) -> Response:
    end_user = _end_user(request, user)
    source = data_sources.upload_file(end_user.access, data, filename=name, declared_type=content_type)
    stored_name = source.get("name") or ""
    return surfaces.JsonResponse(
        {
            "id": source["id"],
            "name": stored_name,
            "size": int(source.get("size") or len(data)),
            "extension": stored_name.rsplit(".", 1)[-1].lower() if "." in stored_name else "",
            "mime_type": source.get("mimeType", ""),
            "created_by": end_user.user_id,
            "created_at": unix(source.get("createdAt")),
        },
        201,
    )


routes = [
    Route(f"{BASE}/chat-messages", chat_messages, methods=["POST"]),
    Route(f"{BASE}/chat-messages/{{task_id}}/stop", stop, methods=["POST"]),
    Route(f"{BASE}/messages", messages, methods=["GET"]),
    Route(f"{BASE}/messages/{{message_id}}/feedbacks", feedbacks, methods=["POST"]),
    Route(f"{BASE}/messages/{{message_id}}/suggested", suggested, methods=["GET"]),
    Route(f"{BASE}/conversations", conversations, methods=["GET"]),
    Route(f"{BASE}/conversations/{{conversation_id}}/name", rename, methods=["POST"]),
    Route(f"{BASE}/conversations/{{conversation_id}}", delete_conversation, methods=["DELETE"]),
    Route(f"{BASE}/parameters", parameters, methods=["GET"]),
    Route(f"{BASE}/files/upload", upload, methods=["POST"]),
]
app = surfaces.create_surface(routes)
