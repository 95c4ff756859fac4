"""The Pieces conversations surface (seed 003): Pieces OS's `ConversationsApi` on Kallo's convos, at
`/pieces`, for any Kallo credential (x-api-key, or Authorization: Bearer access token / OIDC ID token).

A Pieces conversation is a Kallo convo, and a message a step; there is no second store. Shapes are
those of the `pieces-os-client` package (`Conversation`, `Conversations`, `FlattenedConversations`,
`SeededConversation`, `ConversationsCreateFromAssetOutput`), built by the `conversation` family of
functions below, which its models accept:
- a convo → `Conversation`: `id`, `name` (left out while the convo has none), `created`/`updated`
  (`GroupedTimestamp` `{value, readable}`), `type` "COPILOT", `messages` (its primary steps, the first
  100, as `{iterable: [{id, reference}], indices}`), `assets` (its linked data sources);
- a step → `FlattenedConversationMessage`: `role` "USER" for a user's step, "ASSISTANT" for the LLM's,
  `fragment.string.raw` its text (left out with `transferables=false`), `conversation {id}`;
- an asset is a Kallo data source.

Operations:
- `POST /pieces/conversations/create[?transferables=]` (`SeededConversation`): a convo in the caller's
  own space, or in a topic when `application.descriptor` is `kallo-topic:<topicId>` (the caller needs
  `can_chat` there, as for Create Convo); `name` and `messages` (USER → the caller's steps, any other
  role → the LLM's) become the convo's; `assets.iterable[].id` name data sources to link (each needs
  what Add Convo Data Source needs). Nothing is answered. → `Conversation`.
- `POST /pieces/conversations/create/from_asset/{asset}`: a convo named after the data source, linked
  to it (so its answers are grounded on it), whose first message is the data source's summary (an LLM
  step with the summary's citations). The summary is asked for (Generate Summary: it counts against
  the daily allowance of summaries once, and is kept) and awaited for at most `SUMMARY_WAIT_SECONDS`;
  still not ready (being written, or the upload still being processed) → 409 `summary_pending` with
  `Retry-After` and nothing made: ask again. A data source that failed to process is 409
  `not_processable`. → `ConversationsCreateFromAssetOutput`.
- `POST /pieces/conversations/{conversation}/delete` → 204 (Delete Convo).
- `GET /pieces/conversations/identifiers` → `FlattenedConversations` (ids), and `GET
  /pieces/conversations[?transferables=]` → `Conversations`: the caller's newest convos (at most
  `convos.LISTING_LIMIT`, Pieces has no paging; `GET /convos` pages through all).
- `GET /pieces/conversation/{conversation}[?transferables=]` → `Conversation` (Get a Convo; Pieces'
  `ConversationApi`, which the SDK's stream cache calls for each identifier it hears).
- The identifiers stream is a WebSocket (`kallo.realtime.identifiers`), not a route of this app.

Security: every object goes through the services' checks: a data source or convo the caller cannot
see is 404 (I4), a malformed id too; 403 when it can see but lacks the permission (linking a data source
it only views, I5). Listings are Query Convos', so never another tenant's convo, and a token's scope
bounds them (I3).

AWS calls: create: the owner's check (a topic's) + 1 TransactWriteItems + 1 Query (the creator's
streams) (+ per message: the check, 1 TransactWriteItems with their words and a broadcast Query,
messages together; + per asset, Add Convo Data Source's). From asset: the data source's check (Query +
BatchGetItem) + 1 Query (summary; again each second while waited for) + 1 GetItem (its name) + create
+ the link (Query + BatchGetItem + TransactWriteItems) + the opening (Query + BatchGetItem +
TransactWriteItems + Query). Identifiers: 1 Query + 1 BatchGetItem. Conversations:
that + 2 Queries per convo (steps, links), in parallel. Delete: Delete Convo's.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.errors import NotFound, Unprocessable
from kallo.models.common import Name
from kallo.models.convos import ConvoCreate
from kallo.models.steps import STEP_TEXT_LIMIT
from kallo.services import convos, data_source_links, data_sources, steps, summaries
from kallo.store.keys import Ref
from kallo.surfaces import create_surface, endpoint, error_response, kallo_access, parse_model, query_model

PREFIX = "/pieces"
TOPIC_DESCRIPTOR = "kallo-topic:"
CONVERSATION_TYPE = "COPILOT"
USER, ASSISTANT = "USER", "ASSISTANT"
MAX_MESSAGES = 20
MAX_ASSETS = 10
# How long create-from-asset waits for a summary being written before answering 409.
SUMMARY_WAIT_SECONDS = 5.0
SUMMARY_POLL_SECONDS = 1.0


# -- Pieces' input shapes (what is read of them; anything else a client sends is ignored) ------------------


class _Seed(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class TransferableString(_Seed):
    raw: Annotated[str, StringConstraints(max_length=STEP_TEXT_LIMIT)] | None = None


class FragmentFormat(_Seed):
    string: TransferableString | None = None


class SeededConversationMessage(_Seed):
    fragment: FragmentFormat
    # Pieces reads an unknown role as UNKNOWN; here anything but USER is the LLM's.
    role: Annotated[str, StringConstraints(max_length=64)]


class ReferencedAsset(_Seed):
    id: Annotated[str, StringConstraints(max_length=64)]


class FlattenedAssets(_Seed):
    iterable: Annotated[list[ReferencedAsset], Field(max_length=MAX_ASSETS)] | None = None


class Application(_Seed):
    descriptor: Annotated[str, StringConstraints(max_length=256)] | None = None


class SeededConversation(_Seed):
    """Pieces' `SeededConversation`: `type` is required (as in the client's model)."""

    type: Annotated[str, StringConstraints(max_length=64)]
    name: Name | None = None
    messages: Annotated[list[SeededConversationMessage], Field(max_length=MAX_MESSAGES)] | None = None
    assets: FlattenedAssets | None = None
    application: Application | None = None


class Transferables(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    transferables: bool = True


# -- Kallo → Pieces -----------------------------------------------------------------------------------


def timestamp(value: str) -> dict[str, str]:
    """A `GroupedTimestamp`: Kallo's RFC 3339 time, and a readable form of it."""
    return {"value": value, "readable": value.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC"}


def _flat(ids: list[str], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pieces' plural shape: `iterable`, and `indices` (id → position)."""
    return {"iterable": items, "indices": {i: n for n, i in enumerate(ids)}}


def message(step: dict[str, Any], *, transferables: bool = True) -> dict[str, Any]:
    """A step as a `FlattenedConversationMessage`."""
    found: dict[str, Any] = {
        "id": step["id"],
        "conversation": {"id": step["convoId"]},
        "created": timestamp(step["createdAt"]),
        "updated": timestamp(step.get("updatedAt") or step["createdAt"]),
        "role": USER if step.get("authorType") == "user" else ASSISTANT,
    }
    if transferables:
        found["fragment"] = {"string": {"raw": (step.get("content") or {}).get("text", "")}}
    return found


def conversation(
    convo: dict[str, Any],
    convo_steps: list[dict[str, Any]],
    data_source_ids: list[str],
    *,
    transferables: bool = True,
) -> dict[str, Any]:
    """A convo, its primary steps and its linked data sources as a Pieces `Conversation`."""
    shown = [s for s in convo_steps if not s.get("isAlternate")]
    found: dict[str, Any] = {
        "id": convo["id"],
        "created": timestamp(convo["createdAt"]),
        "updated": timestamp(convo.get("updatedAt") or convo["createdAt"]),
        "type": CONVERSATION_TYPE,
        "messages": _flat(
            [s["id"] for s in shown],
            [{"id": s["id"], "reference": message(s, transferables=transferables)} for s in shown],
        ),
    }
    if convo.get("name"):
        found["name"] = convo["name"]
    if data_source_ids:
        found["assets"] = _flat(data_source_ids, [{"id": i} for i in data_source_ids])
    return found


def identifiers(convo_ids: list[str]) -> dict[str, Any]:
    """`FlattenedConversations`: the ids alone."""
    return _flat(convo_ids, [{"id": i} for i in convo_ids])


# -- helpers ----------------------------------------------------------------------------------------


def _id(value: str, what: str) -> str:
    """An id in its canonical form; anything that is not a UUID names nothing (404, as a hidden one, I4)."""
    if len(value) <= 64:
        try:
            return str(UUID(value))
        except ValueError:
            pass
    raise NotFound(f"{what} {value[:64]} not found")


def _topic_of(seed: SeededConversation) -> str | None:
    descriptor = (seed.application.descriptor if seed.application else None) or ""
    if not descriptor.startswith(TOPIC_DESCRIPTOR):
        return None
    return _id(descriptor.removeprefix(TOPIC_DESCRIPTOR), "topic")


def _require_linkable(access: Access, data_source_ids: list[str]) -> None:
    """Before anything is made: each data source visible (404) and one the caller may link (403),
    so a refused asset never leaves a half-made conversation behind."""
    refs = [Ref(ObjectType.data_source.value, i) for i in data_source_ids]
    access.preload(refs)
    for ref in refs:
        access.require(ref)
    for ref in refs:
        access.require(ref, Permission.can_add_dependent)


def _summary(access: Access, data_source_id: str) -> dict[str, Any] | None:
    """The data source's summary, waited for a few seconds when it is being written (or its upload
    is still being processed); None when it is not ready by then."""
    deadline = time.monotonic() + SUMMARY_WAIT_SECONDS
    while True:
        found, status = summaries.request(access, data_source_id)
        if status == 200:
            return found
        if time.monotonic() + SUMMARY_POLL_SECONDS > deadline:
            return None
        time.sleep(SUMMARY_POLL_SECONDS)


def _convo_fields(name: str | None) -> ConvoCreate:
    return parse_model(ConvoCreate, {"name": name} if name else {})


def _named_after(source: dict[str, Any]) -> ConvoCreate:
    """A convo named after a data source (spaces folded, cut to fit); nameless when its name would not
    do as a convo's."""
    try:
        return _convo_fields(" ".join(str(source.get("name") or "").split())[:256])
    except Unprocessable:
        return ConvoCreate()


# -- endpoints --------------------------------------------------------------------------------------


@endpoint(body=SeededConversation)
def create_conversation(request: Request, seed: SeededConversation | None) -> dict[str, Any]:
    assert seed is not None
    access = kallo_access(request)
    options = query_model(request, Transferables)
    topic_id = _topic_of(seed)
    assets = (
        list(dict.fromkeys(_id(a.id, "data_source") for a in (seed.assets.iterable or [])))
        if seed.assets
        else []
    )
    if assets:
        _require_linkable(access, assets)
    convo = convos.create_convo(access, _convo_fields(seed.name), topic_id=topic_id)
    for data_source_id in assets:
        data_source_links.add_convo_data_source(access, convo["id"], data_source_id)
    openings = [
        steps.Opening("user" if m.role == USER else "llm", m.fragment.string.raw or "")
        for m in seed.messages or []
        if m.fragment.string is not None and m.fragment.string.raw
    ]
    stored = steps.add_openings(steps.Actor(access), convo["id"], openings) if openings else []
    return conversation(_touched(convo, stored), stored, assets, transferables=options.transferables)


@endpoint()
def create_from_asset(request: Request, _: None) -> dict[str, Any] | Response:
    access = kallo_access(request)
    data_source_id = _id(request.path_params["asset"], "data_source")
    _require_linkable(access, [data_source_id])
    summary = _summary(access, data_source_id)
    if summary is None:
        return error_response(
            409,
            "summary_pending",
            "the data source's summary is being written: ask again in a few seconds",
            headers={"Retry-After": str(summaries.RETRY_AFTER_SECONDS)},
        )
    source = data_sources.get_data_source(access, data_source_id)
    # A data source's name is one line of text already; spaces are folded, and it is cut to fit.
    convo = convos.create_convo(access, _named_after(source))
    data_source_links.add_convo_data_source(access, convo["id"], data_source_id)
    opening = steps.Opening("llm", summary["content"]["text"], tuple(summary.get("annotations") or ()))
    stored = steps.add_openings(steps.Actor(access), convo["id"], [opening])
    reference = conversation(_touched(convo, stored), stored, [data_source_id])
    return {"conversation": {"id": convo["id"], "reference": reference}}


def _touched(convo: dict[str, Any], stored: list[dict[str, Any]]) -> dict[str, Any]:
    """The convo as its openings left it: its updatedAt is its newest step's (`store.steps.add_many`)."""
    return {**convo, "updatedAt": max([convo["updatedAt"], *(s["updatedAt"] for s in stored)])}


@endpoint()
def delete_conversation(request: Request, _: None) -> Response:
    access = kallo_access(request)
    convos.delete_convo(access, _id(request.path_params["conversation"], "convo"))
    return Response(status_code=204)


@endpoint()
def identifiers_snapshot(request: Request, _: None) -> dict[str, Any]:
    return identifiers(convos.identifiers(kallo_access(request)))


@endpoint()
def get_conversation(request: Request, _: None) -> dict[str, Any]:
    access = kallo_access(request)
    options = query_model(request, Transferables)
    convo = convos.get_convo(access, _id(request.path_params["conversation"], "convo"))
    held = convos.contents([convo["id"]])[convo["id"]]
    return conversation(convo, *held, transferables=options.transferables)


@endpoint()
def conversations_snapshot(request: Request, _: None) -> dict[str, Any]:
    access = kallo_access(request)
    options = query_model(request, Transferables)
    listed, _ = convos.query_convos(access, limit=convos.LISTING_LIMIT, paged=False)
    held = convos.contents([c["id"] for c in listed])
    items = [conversation(c, *held[c["id"]], transferables=options.transferables) for c in listed]
    return _flat([c["id"] for c in listed], items)


routes = [
    Route(f"{PREFIX}/conversations/create", create_conversation, methods=["POST"]),
    Route(f"{PREFIX}/conversations/create/from_asset/{{asset}}", create_from_asset, methods=["POST"]),
    Route(f"{PREFIX}/conversations/{{conversation}}/delete", delete_conversation, methods=["POST"]),
    Route(f"{PREFIX}/conversations/identifiers", identifiers_snapshot, methods=["GET"]),
    Route(f"{PREFIX}/conversations", conversations_snapshot, methods=["GET"]),
    Route(f"{PREFIX}/conversation/{{conversation}}", get_conversation, methods=["GET"]),
]
app = create_surface(routes)
