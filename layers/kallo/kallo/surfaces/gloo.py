"""Gloo KaLLM message (seed 002) on Kallo's own data: `POST /gloo/ai/v1/message/kallm`.

A Gloo client sends `{chat_id?, query, character_limit?, sources_limit?, stream?, publishers?}` with the
query switches `intent`, `enable_sources`, `enable_suggestions` (and `chat_id`, which the seed also lists
as a query parameter), and gets `{query_id, message_id, chat_id, message, timestamp, sources?,
suggestions?}`, or with `stream: true` a `text/event-stream` of the same fields with `message` deltas,
ending with the whole object (docs/COMPATIBILITY.md, "Gloo KaLLM", says all of this for clients).

How it maps onto Kallo (it translates; every object is an ordinary Kallo one):
- a chat is a convo, `chat_id` its id; the question is a user step (`query_id`) and the answer the LLM
  step answering it (`message_id`), run in this process (`kallo.services.answering`), so the convo's
  WebSocket clients see it as it is written, and a stream leaves as fast as the WebSocket's does;
- the caller: `Authorization: Bearer <app key>` (an `app-` key, `kallo.auth.app_keys`) acts as an end
  user of the key's topic (`kallo.services.end_users`): the body's `user`, a Kallo extension, names one;
  without it, the key's own end user (`end_users.key_end_user`, a name no `user` may take). Any other
  Kallo credential (an access token, an OIDC ID token, `x-api-key`) acts as its user, and a new chat is
  a convo under the topic the token is scoped to (exactly one topic in its scope), else in the user's
  own space;
- `intent`: omitted or 1, the answer is grounded as any Kallo answer is (on the data sources linked to
  the convo and its topic, the passages that match the question); 0, not grounded at all;
- `publishers` (ids or names) narrow the grounding to those data sources: names and ids of the sources
  linked to the convo and its topic, and for a Kallo credential also ids of data sources its user may
  view. I6 (grounding) and I4 (ids): a publisher that names nothing the caller may use is ignored, the
  same whether it is missing or another tenant's; when none is left, nothing is narrowed;
- `sources` are the answer's citations (its annotations) with their data source's name, at most
  `sources_limit`; `enable_sources` 0 leaves them out, 1 (the default) gives them when there are any,
  2 always (an empty list too). `suggestions` are the step's follow-up questions
  (`kallo.services.suggestions`), unless `enable_suggestions` is 0;
- `character_limit` caps the answer: the step's `maxTokens` (4 characters a token, within the model's
  cap, I10) and a hard cut of `message` (the stored step keeps what the model wrote).

Security: I1/I4: a `chat_id` the caller cannot reach (another tenant's, another end user's, another
topic's) is 404, as a missing one; a `chat_id` that cannot be a Kallo id at all (the seed's example
sends the placeholder `"<string>"`, its default is `""`) starts a new chat, as none does; a new chat
whose first message is refused (403, 422, 429) is deleted again, so retries leave no empty convos. I7: a failed
answer tells only Kallo's own `{code, message}`. I10: every request is counted against the caller's
rate (the key's tenant for an app key), the answer against the token budgets.

Costs in AWS calls (tests/integration/test_gloo_surface.py counts them): a message in an app key's named
chat, its answer citing a source, suggestions made: 32, of which the surface's own are the request rate
(UpdateItem), the end user's claim (GetItem), the chat's check (2 Query + BatchGetItem, which reads the
convo too) and the cited sources' names (BatchGetItem); the rest is `answering.ask` (Add Step's 4),
`answering.run`
(the answer's 15) and `suggestions_for` (7). A new chat adds its TransactWriteItems; `publishers` add
the linked sources (1 Query per linked object + 1 BatchGetItem) and, for a Kallo credential naming ids,
their checks (1 Query each + 1 BatchGetItem).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticUseDefault
from starlette.requests import Request
from starlette.routing import Route

from kallo import surfaces
from kallo.auth import app_keys
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import now_iso
from kallo.errors import Unprocessable
from kallo.llm import registry
from kallo.models.common import Line, Name, Text
from kallo.models.convos import ConvoCreate
from kallo.models.steps import STEP_TEXT_LIMIT
from kallo.models.ws import NewStep
from kallo.services import answering, convos, end_users, grounding, steps, suggestions
from kallo.settings import get_settings
from kallo.store.keys import Ref

logger = Logger(child=True)

PATH = "/gloo/ai/v1/message/kallm"
CHARS_PER_TOKEN = 4
# Tokens beyond the character limit's worth, so an answer is rarely cut by the model before the limit.
MAX_TOKENS_MARGIN = 16
QUERY_LIMIT = 16000  # characters: at most 64 KB of UTF-8, a step's bound
MAX_PUBLISHERS = 50
MAX_SOURCES = 1000  # a bound on input only: an answer cites at most 3
# An answer run here ends (failed, with its text so far) after this long, or before the Lambda
# invocation does (`SAFETY_SECONDS` before its end).
ANSWER_SECONDS = 240.0
SAFETY_SECONDS = 5.0
# How long to wait for follow-up suggestions that another request is making.
SUGGESTIONS_WAIT_SECONDS = 10.0
SUGGESTIONS_POLL_SECONDS = 0.5
# A failed answer's status: the model's failure is upstream of us (502), a timeout 504.
FAILED_STATUS = {"answer_timeout": 504, "internal_error": 500}
DONE_EVENT = "done"
ERROR_EVENT = "error"


# -- the peer API's shapes ------------------------------------------------------------------------------


class KallmMessage(BaseModel):
    """The body of Post message KaLLM (seed 002), and `user` (a Kallo extension, app keys only). Fields
    the seed does not list are ignored, as a peer API's client may send more than we read."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    chat_id: Line(256, min_length=None) | None = None
    query: Text(QUERY_LIMIT, min_length=1)
    character_limit: Annotated[int, Field(ge=1, le=STEP_TEXT_LIMIT)] | None = None
    sources_limit: Annotated[int, Field(ge=0, le=MAX_SOURCES)] | None = None
    stream: bool | None = None
    publishers: Annotated[list[Line(256)], Field(max_length=MAX_PUBLISHERS)] | None = None
    user: Name | None = None

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("user")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.strip().startswith(end_users.RESERVED_PREFIX):
            raise ValueError(
                f"must not start with {end_users.RESERVED_PREFIX!r}: those name an app key's own end user"
            )
        return value


def _blank_as_default(value: Any) -> Any:
    # `?intent=` is the switch left out: its default (the seed's switches are nullable).
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticUseDefault
    return value


def Switch(highest: int) -> Any:
    return Annotated[int, BeforeValidator(_blank_as_default), Field(ge=0, le=highest)]


class Switches(BaseModel):
    """The query switches of the seed, with its defaults (`chat_id` may come this way too)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    intent: Switch(1) | None = None
    enable_sources: Switch(2) = 1
    enable_suggestions: Switch(1) = 1
    chat_id: Line(256, min_length=None) | None = None


# -- translation --------------------------------------------------------------------------------------


def chat_id_of(body: KallmMessage, switches: Switches) -> str | None:
    """The convo id the request continues (the body's `chat_id` before the query's), or None for a new
    chat: also for a value that cannot be a Kallo id (see the module docstring)."""
    given = body.chat_id if body.chat_id else switches.chat_id
    if not given:
        return None
    try:
        return str(UUID(given))
    except ValueError:
        return None


def max_tokens_for(character_limit: int, model: str) -> int:
    """The `maxTokens` that lets an answer reach `character_limit` characters, within the model's cap."""
    wanted = math.ceil(character_limit / CHARS_PER_TOKEN) + MAX_TOKENS_MARGIN
    return registry.capped(model, wanted)


def gloo_time(moment: str) -> str:
    """A Kallo time (`2026-11-22T10:00:00.123Z`) as Gloo writes it: UTC, microseconds, no offset."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.%f")


def sources_of(annotations: Iterable[dict[str, Any]], names: dict[str, str], limit: int | None) -> list[dict]:
    """Gloo's `sources` from an answer's citations, in their order, at most `limit`; a citation of a
    data source deleted since (no name) is left out."""
    found = [
        {"dataSourceId": a["dataSourceId"], "name": names[a["dataSourceId"]], "text": a.get("text", "")}
        for a in annotations
        if a.get("type", "citation") == "citation" and a.get("dataSourceId") in names
    ]
    return found if limit is None else found[:limit]


def matching_publishers(publishers: Iterable[str], linked: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of `linked` data sources that a publisher names, by id or by name (case-insensitive),
    in the order of `linked`."""
    wanted = {p.strip().casefold() for p in publishers}
    return [
        source["id"]
        for source in linked
        if source["id"].casefold() in wanted or (source.get("name") or "").strip().casefold() in wanted
    ]


def scoped_topic(principal: Principal) -> str | None:
    """The topic a new chat of a Kallo credential goes under: the one topic of an access token's scope
    (when the scope is not the whole user); otherwise None, the user's own space."""
    if principal.scope is None:
        return None
    if any(r.type == ObjectType.user and r.id == principal.user_id for r in principal.scope):
        return None
    topics = [r.id for r in principal.scope if r.type == ObjectType.topic]
    return topics[0] if len(topics) == 1 else None


@dataclass
class Reply:
    """One answer as Gloo sees it, built from the messages `answering.run` yields: the deltas, cut at
    `character_limit`, and the final step update."""

    query_id: str
    message_id: str
    chat_id: str
    character_limit: int | None = None
    timestamp: str = field(default_factory=lambda: gloo_time(now_iso()))
    text: str = ""
    final: dict[str, Any] | None = None

    def feed(self, message_type: str, payload: dict[str, Any]) -> str:
        """Take one message of the answer; returns the text to send now ("" for none)."""
        if payload.get("id") != self.message_id:
            return ""
        if message_type == "convoNewStep" and payload.get("createdAt"):
            self.timestamp = gloo_time(payload["createdAt"])
        if message_type != "convoStepUpdate":
            return ""
        if "delta" in payload:
            room = None if self.character_limit is None else self.character_limit - len(self.text)
            delta = payload["delta"] if room is None else payload["delta"][: max(room, 0)]
            self.text += delta
            return delta
        if payload.get("status"):
            self.final = payload
        return ""

    @property
    def message(self) -> str:
        """The whole answer (the final update's text, which may hold what no delta carried), cut."""
        text = ((self.final or {}).get("content") or {}).get("text", self.text)
        return text if self.character_limit is None else text[: self.character_limit]

    def rest(self) -> str:
        """What the deltas have not carried of the whole answer (a quick model's last words come with
        the final update only), so that the deltas always add up to `message`."""
        return self.message[len(self.text) :] if self.message.startswith(self.text) else ""

    @property
    def error(self) -> dict[str, str] | None:
        """`{code, message}` of an answer that failed or never ended."""
        if self.final is None:
            return {"code": "internal_error", "message": "the answer ended without a result"}
        if self.final.get("status") == "failed":
            shown = self.final.get("error") or {}
            return {"code": shown.get("code", "model_error"), "message": shown.get("message", "")}
        return None

    def fields(self, message: str) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "message": message,
            "timestamp": self.timestamp,
        }


# -- the operation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who asks: a Kallo user, or an end user of an app key (`end_user` set)."""

    access: Access
    end_user: end_users.EndUser | None = None


def caller_of(request: Request, body: KallmMessage) -> Caller:
    """An app key (`Bearer app-...`) or any other Kallo credential; 401 without one (see the module)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip().startswith(app_keys.PREFIX):
        app_key = surfaces.app_key_of(request)
        end_user = end_users.resolve(app_key, body.user) if body.user else end_users.key_end_user(app_key)
        return Caller(end_user.access, end_user)
    access = surfaces.kallo_access(request)
    if body.user is not None:
        raise Unprocessable(
            "user: only an app key names end users; a Kallo credential acts as its own user",
            code="validation_error",
        )
    return Caller(access)


def _chat(caller: Caller, chat_id: str | None) -> dict[str, Any]:
    """The convo the message goes to: the caller's own `chat_id` (404 otherwise), or a new one."""
    if caller.end_user is not None:
        if chat_id:
            return end_users.own_convo(caller.end_user, chat_id)
        return end_users.start_convo(caller.end_user)
    if chat_id:
        return convos.get_convo(caller.access, chat_id)
    topic_id = scoped_topic(caller.access.principal)
    return convos.create_convo(caller.access, ConvoCreate(), topic_id=topic_id)


def _discard(caller: Caller, convo_id: str) -> None:
    """Delete a new chat whose first message was refused, so that a client retrying against a spent
    budget (429) or a refused request does not leave an empty convo behind each time. The refusal is
    what the client hears: a failure here is only logged."""
    try:
        if caller.end_user is not None:
            end_users.delete_convo(caller.end_user, convo_id)
        else:
            convos.delete_convo(caller.access, convo_id)
    except Exception:
        logger.exception("a refused new chat could not be deleted", extra={"convoId": convo_id})


def _grounding(
    caller: Caller, convo: dict[str, Any], intent: int | None, publishers: list[str] | None
) -> tuple[list[str] | None, list[str]]:
    """What the answer may be grounded on: (the data sources it is narrowed to, None for the usual
    ones; the ids to name in its config, which a Kallo credential's user may view but the convo does
    not link). See the module docstring for `intent` and `publishers`."""
    if intent == 0:
        return [], []
    if not publishers:
        return None, []
    topic = {"id": convo["topicId"]} if convo.get("topicId") else None
    chosen = matching_publishers(publishers, grounding.sources_for(convo, topic))
    named: list[str] = []
    if caller.end_user is None:
        ids = list(dict.fromkeys(i for i in (_as_id(p) for p in publishers) if i and i not in chosen))
        refs = [Ref(ObjectType.data_source.value, i) for i in ids]
        if refs:
            caller.access.preload(refs)
        named = [r.id for r in refs if caller.access.can(r, Permission.can_view)]
    only = chosen + named
    return (only or None), named


def _as_id(value: str) -> str | None:
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


def _deadline(request: Request) -> float:
    """When the answer must end: `ANSWER_SECONDS` from now, or earlier when the Lambda invocation
    (Mangum hands its context to the app) ends sooner."""
    seconds = ANSWER_SECONDS
    context = request.scope.get("aws.context")
    if context is not None:
        seconds = min(seconds, context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS)
    return time.monotonic() + max(seconds, 1.0)


def _suggestions(access: Access, step_id: str) -> list[str] | None:
    """The answer's follow-up questions; None when they cannot be had in time. They are an extra:
    failing to make them never takes the answer away (logged)."""
    deadline = time.monotonic() + SUGGESTIONS_WAIT_SECONDS
    while True:
        try:
            found = suggestions.suggestions_for(access, step_id)
        except Exception:
            logger.exception(
                "follow-up suggestions failed: the answer goes without", extra={"stepId": step_id}
            )
            return None
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(SUGGESTIONS_POLL_SECONDS)


def whole(reply: Reply, caller: Caller, switches: Switches, sources_limit: int | None) -> dict[str, Any]:
    """The full Gloo object of an answer that ended (completed, or stopped with its text so far)."""
    result = reply.fields(reply.message)
    if switches.enable_sources:
        annotations = (reply.final or {}).get("annotations") or []
        names = grounding.names_of(a["dataSourceId"] for a in annotations if a.get("dataSourceId"))
        sources = sources_of(annotations, names, sources_limit)
        if sources or switches.enable_sources == 2:
            result["sources"] = sources
    if switches.enable_suggestions and (reply.final or {}).get("status") == "completed":
        found = _suggestions(caller.access, reply.message_id)
        if found is not None:
            result["suggestions"] = found
    return result


def _failure(reply: Reply, error: dict[str, str]) -> dict[str, Any]:
    status = FAILED_STATUS.get(error["code"], 502)
    return {
        **error,
        "status": status,
        "query_id": reply.query_id,
        "message_id": reply.message_id,
        "chat_id": reply.chat_id,
    }


def _events(
    reply: Reply,
    answer: Iterator[tuple[str, dict[str, Any]]],
    caller: Caller,
    switches: Switches,
    sources_limit: int | None,
) -> Iterator[dict[str, Any] | tuple[str, dict[str, Any]]]:
    """The event stream: one event per delta (Gloo's fields, `message` the delta; together they make
    the whole message), then `done` with the whole object, or `error` with `{code, message, status}`
    and the ids."""
    try:
        for message_type, payload in answer:
            delta = reply.feed(message_type, payload)
            if delta:
                yield reply.fields(delta)
    except Exception:
        # The response has started: the client hears of it as an event (I7: our words only).
        logger.exception("the answer broke off", extra={"stepId": reply.message_id})
        reply.final = None
    error = reply.error
    if error is not None:
        yield ERROR_EVENT, _failure(reply, error)
        return
    rest = reply.rest()
    if rest:
        yield reply.fields(rest)
    yield DONE_EVENT, whole(reply, caller, switches, sources_limit)


@surfaces.endpoint(body=KallmMessage)
def post_message(request: Request, body: KallmMessage) -> Any:
    """Post message KaLLM (see the module docstring)."""
    caller = caller_of(request, body)
    switches = surfaces.query_model(request, Switches)
    chat_id = chat_id_of(body, switches)
    convo = _chat(caller, chat_id)
    try:
        only, named = _grounding(caller, convo, switches.intent, body.publishers)
        config: dict[str, Any] = {"reply": True}
        if body.character_limit is not None:
            config["maxTokens"] = max_tokens_for(body.character_limit, get_settings().default_model)
        if named:
            config["dataSourceIds"] = named
        question = surfaces.parse_model(
            NewStep, {"content": {"text": body.query}, "config": config}, where="body"
        )
        step, job = answering.ask(steps.Actor(caller.access), convo["id"], question)
    except Exception:
        if chat_id is None:
            _discard(caller, convo["id"])
        raise
    if only is not None:
        job = job.model_copy(update={"only_data_source_ids": only})
    reply = Reply(step["id"], job.llm_step_id, convo["id"], body.character_limit)
    answer = answering.run(job, deadline=_deadline(request))
    if body.stream:
        return surfaces.sse(_events(reply, answer, caller, switches, body.sources_limit))
    for message_type, payload in answer:
        reply.feed(message_type, payload)
    error = reply.error
    if error is not None:
        failure = _failure(reply, error)
        return surfaces.JsonResponse(failure, failure["status"])
    return whole(reply, caller, switches, body.sources_limit)


routes = [Route(PATH, post_message, methods=["POST"])]
app = surfaces.create_surface(routes)
