"""Steps of a convo: what the WebSocket messages (convoNewStep, convoNewStepGroup, convoStepGroupAddition,
convoStepDeletion, convoStepRegen, convoStepUpdate) and the Step REST operations (Update Step,
Delete Step; Query Steps is `kallo.services.search`) do.

Every change moves the convo's `updatedAt`, in the write the change makes anyway (no call of its own).
Every change is broadcast to the convo's connections (`Actor.broadcast`, `kallo.realtime.broadcast` by
default) with the requester's `requestId`; a step asking for a reply (or a regen) becomes a `ReplyJob`
on the FIFO step queue, answered by the LLM step worker.

Who may do what (checked on every message, on grants read for it; a new step by the holder of a grant
that lets them write is checked by its own transaction, which fails if the grant is gone, `_chat_guard`):
- writing anything needs `can_chat` on the convo (a viewer watches and cannot write);
- deleting or updating a user step someone else wrote needs `can_delete_steps` (one's own: `can_chat`);
  LLM steps belong to the conversation: `can_chat` regenerates or deletes them, and their content
  is the model's (never edited);
- a step that cannot be seen (its convo is hidden, or it belongs to another convo than the
  connection's) is `not_found`;
- I6 (grounding): data sources named by a step (`config.dataSourceIds`, `files`, the `dataSourceId`
  of each citation in `annotations`) must be visible to the writer (404), so a reply is never grounded
  on, and a citation never names, someone else's data; the worker checks `dataSourceIds` again when it
  answers. I10 (cost): a config's model must be allowed and its `maxTokens` capped (422); both through
  `kallo.services.step_configs`.
- a whole step must fit one WebSocket frame: as JSON at most `STEP_JSON_LIMIT` (100 KB), refused with
  413 `payload_too_large` before anything is stored; a message that still outgrows the frame is not
  posted, and its sender gets that `error`.

Costs in AWS calls, for a convo its owner (a user) holds directly; a topic-owned convo adds one Query
to every check (see `kallo.authz.access`); `c` connections on the convo. A broadcast also re-checks
the connections it has not checked in the last few seconds (I8: Query + BatchGetItem for all of them,
their access-token and API-key records in the same BatchGetItem, and no Query when the chain was read
in the last second; `kallo.realtime.audience`). A step's words go in its transaction when they fit (up
to about 95 distinct words), else BatchWriteItem (25 per request):
- new step: the check (Query + BatchGetItem; none when its connection's Access was checked in the last
  3 s and the writer's own grant lets them write: the transaction checks that grant) +
  TransactWriteItems (the step, its marker, the convo's latestStep, its words) (+ PutItem the first
  time, the participant grant; the check read whether they hold one) + the broadcast (Query + c
  PostToConnection) + SendMessage when it asks for a reply, and then a BatchGetItem first (the token
  budgets, I10); data sources named by the step add their checks. No id is looked up: I4 (ids), the
  server makes step ids. With the message's own costs (`kallo.websocket`), a step without a reply on
  a connection checked in the last 3 s is 3 DynamoDB calls: UpdateItem (the rate),
  TransactWriteItems, Query (the connections); in a topic's convo too when the step leaves `reply`
  out: the topic's `defaults.reply` comes from the item read with the connection's check (`_replies`;
  else 1 GetItem, for a caller whose Access was not checked by `kallo.realtime.audience`).
- openings of a new convo (`add_openings`, n steps): the check + TransactWriteItems (their words in
  it when they fit) + n broadcasts.
- step group of n: as one new step (one transaction, with the words of all steps when they fit), n
  broadcasts, one SendMessage per step asking for a reply.
- group addition: the check + Query (the primary) + TransactWriteItems and a conditional UpdateItem
  of the convo's latestStep (a primary without a group gets one; + its broadcast) + the new step as
  above.
- deletion: the check + Query (the step) + TransactWriteItems (the step's deletion and the convo's
  `updatedAt`; + Query and BatchGetItem for a group's primary) + Query and UpdateItem (the convo's latestStep) +
  BatchWriteItem (its words) + the broadcast(s); an answer someone rated adds Query + BatchWriteItem
  (its feedback items, `kallo.store.feedback`).
- regen: the deletion's cost, with a convoStepRegen broadcast, + BatchGetItem (the token budgets) +
  SendMessage.
- update: the check + Query (the step) (+ the checks of the data sources new annotations cite) +
  TransactWriteItems (the step and the convo's `updatedAt`) (+ a conditional UpdateItem of the convo's
  latestStep for a primary step, + BatchWriteItem when the text changed) + the broadcast; a primary
  swap: Query + BatchGetItem (the group) + TransactWriteItems + a conditional UpdateItem (latestStep)
  + one broadcast per step that changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from kallo import quotas, realtime
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role, permissions_of
from kallo.clock import iso, now, now_iso
from kallo.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable
from kallo.jobs import ReplyJob, send
from kallo.models.steps import STEP_JSON_LIMIT, WEBSOCKET_FRAME_LIMIT, Step, StepConfig, json_size
from kallo.models.ws import (
    EMPTY_STEP,
    Annotation,
    NewStep,
    NewStepGroup,
    StepContent,
    StepGroupAddition,
    StepRegen,
    is_blank,
)
from kallo.services import step_configs
from kallo.store import convos as convo_store
from kallo.store import grants, objects, search
from kallo.store import steps as store
from kallo.store.keys import Ref

# Server → client message types (API.md, WebSocket).
NEW_STEP = "convoNewStep"
STEP_UPDATE = "convoStepUpdate"
STEP_DELETION = "convoStepDeletion"
STEP_REGEN = "convoStepRegen"
# Only an LLM step that has finished, one way or the other, can be generated again.
REGENERABLE = frozenset({"completed", "failed", "stopped"})

Broadcast = Callable[[str, str, Any, str | None], Any]


@dataclass(frozen=True)
class Actor:
    """Who acts on a convo's steps, the request to echo in the broadcasts, and how the convo's
    connections hear about it (`kallo.realtime.broadcast` unless a test gives its own)."""

    access: Access
    request_id: str | None = None
    broadcast: Broadcast | None = None

    @property
    def user_id(self) -> str:
        return self.access.principal.user_id or ""

    def publish(self, convo_id: str, message_type: str, payload: dict[str, Any]) -> None:
        # A message over the frame limit would fail on every connection, silently: the sender hears
        # of it instead (the steps' own bound keeps this from happening to what they store).
        if len(realtime.envelope(message_type, payload, self.request_id)) > WEBSOCKET_FRAME_LIMIT:
            raise PayloadTooLarge("the message is too large for a WebSocket frame (128 KB)")
        # Looked up at call time, so patching kallo.realtime reaches every caller.
        send = self.broadcast or realtime.broadcast
        send(convo_id, message_type, payload, self.request_id)


def _convo(convo_id: str) -> Ref:
    return Ref(ObjectType.convo.value, convo_id)


# -- checks -------------------------------------------------------------------------------------------


def _target(actor: Actor, step_id: str, convo_id: str | None) -> dict[str, Any]:
    """The step a request acts on, once the caller may chat in its convo. On a connection
    (`convo_id`), the convo is checked first and a step of another convo is not found; over REST the
    step's own convo is checked, and a hidden one makes the step not found."""
    if convo_id is not None:
        actor.access.require(_convo(convo_id), Permission.can_chat)
    step = store.get(step_id)
    if step is None or (convo_id is not None and step["convoId"] != convo_id):
        raise NotFound(f"step {step_id} not found")
    if convo_id is None:
        # I7 (errors): the convo was reached through the step, so a hidden one is told as the step.
        hidden_as = Ref("step", step_id)
        actor.access.require(_convo(step["convoId"]), Permission.can_chat, hidden_as=hidden_as)
    return step


def target(actor: Actor, step_id: str, convo_id: str | None = None) -> dict[str, Any]:
    """The step a request acts on, checked as every step operation checks it (`can_chat`; hidden: 404),
    for the services that act on steps from outside this module (Stop Step)."""
    return _target(actor, step_id, convo_id)


def _require_token_budget(actor: Actor, convo_id: str) -> str | None:
    """I10 (cost): an answer is asked for only while the requester's token budget for the day, and
    that of the team whose topic owns the convo, are not used up (429 `quota_exceeded`); returns that
    team, which the answer is charged to as well. The convo's grants were read by its check: one
    BatchGetItem (the counters)."""
    team_id = quotas.team_paying_for(actor.access, _convo(convo_id))
    quotas.require_token_budget(actor.user_id, team_id)
    return team_id


def _replies(actor: Actor, convo_id: str, items: list[NewStep]) -> list[bool]:
    """Which new steps ask for an answer: a step's own `config.reply` when it gives one (`false`
    included), else the `config.defaults.reply` of the topic that owns the convo. The owner is known
    from the grants the convo's check read. The topic's item came with the connection's check
    (`kallo.realtime.audience`, `Access.item`), so it is as old as that verdict, at most 3 s: a change
    of the topic's defaults holds for every message from then on. That is no security decision (who
    may write, and the token budgets when an answer is asked, I10, are checked on their own); else the
    topic item costs one GetItem, read only when some step leaves `reply` out in a topic's convo."""
    own = [item.config.reply if item.config is not None else None for item in items]
    if all(reply is not None for reply in own):
        return [bool(reply) for reply in own]
    owner = grants.owner_of(actor.access.structural_grants(_convo(convo_id)))
    topic = None
    if owner is not None and owner.type == ObjectType.topic.value:
        topic = actor.access.item(owner) or objects.get(owner)
    default = ((topic or {}).get("config") or {}).get("defaults", {}).get("reply") is True
    return [default if reply is None else bool(reply) for reply in own]


def _require_authority_over(actor: Actor, step: dict[str, Any]) -> None:
    """Someone else's user step takes `can_delete_steps` (already read by the chat check: free)."""
    if step.get("authorType") == "user" and step.get("authorId") != actor.user_id:
        actor.access.require(_convo(step["convoId"]), Permission.can_delete_steps)


def _require_configs(access: Access, new: Iterable[NewStep | StepConfig | None]) -> None:
    """I6 and I10: the steps' configs (allowed model, capped maxTokens: 422) and every data source they
    name, to ground a reply on, attach or cite, visible to the writer (404); permissions read together."""
    configs: list[StepConfig | None] = []
    named: list[str] = []
    for item in new:
        configs.append(item.config if isinstance(item, NewStep) else item)
        if isinstance(item, NewStep):
            named += [f.data_source_id for f in item.files or []]
            named += [a.data_source_id for a in item.annotations or []]
    step_configs.require_writable(access, configs, also_data_sources=named)


def _require_fits(fields: dict[str, Any]) -> None:
    """A whole step must fit one WebSocket frame (see the module docstring): checked before storing."""
    size = json_size(fields)
    if size > STEP_JSON_LIMIT:
        raise PayloadTooLarge(
            f"the step would be {size} bytes as JSON: at most {STEP_JSON_LIMIT} (text, annotations and "
            "files together) fit one WebSocket frame"
        )


# -- new steps ----------------------------------------------------------------------------------------


def _step(
    actor: Actor,
    convo_id: str,
    data: NewStep,
    created_at: str,
    *,
    group_id: str | None = None,
    alternate: bool = False,
) -> Step:
    if data.convo_id is not None and data.convo_id != convo_id:
        raise Unprocessable(
            "convoId must be the convo of the connection (or be left out)", code="validation_error"
        )
    step = Step(
        id=str(uuid4()),
        convoId=convo_id,
        groupId=group_id,
        isAlternate=alternate,
        authorType="user",
        authorId=actor.user_id,
        content={"text": data.content.text},
        config=data.config.model_dump(by_alias=True, exclude_none=True) if data.config else None,
        status="completed",
        annotations=[a.model_dump(by_alias=True, exclude_none=True) for a in data.annotations or []],
        files=[f.model_dump(by_alias=True) for f in data.files or []],
        createdAt=created_at,
        updatedAt=created_at,
    )
    _require_fits(step.model_dump(by_alias=True, exclude_none=True))
    return step


def _join_convo(actor: Actor, convo_id: str) -> None:
    """A writer who holds no grant of their own on the convo (they chat through a team or topic)
    becomes a participant, so the convo is among theirs (Query Convos `userId`)."""
    convo, me = _convo(convo_id), Ref(ObjectType.user.value, actor.user_id)
    # The check that let them write read their own grant already, as a rule: no call then.
    held = actor.access.holds_grant(convo)
    if held is None:
        held = grants.get(convo, me) is not None
    if held:
        return
    grant = grants.item(convo, me, Role.participant.value, created_by=actor.user_id, created_at=now_iso())
    # Two first steps at once both find no grant: the second write finds the first one's.
    with contextlib.suppress(Conflict):
        convo_store.join(grant)


def _store_new(
    actor: Actor,
    convo_id: str,
    new: list[tuple[Step, bool]],
    *,
    team_id: str | None = None,
    queue: Callable[[ReplyJob], None] | None = None,
    guard: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Store new user steps (one transaction, their words in it when they fit), make the writer a
    participant, broadcast them in order, then queue the replies they ask for (after the broadcast, so
    clients see the question before the answer starts): on the step queue, or to `queue` when given.
    A `guard` (`_chat_guard`) that fails means the writer's grant changed: the check is then made on
    grants read now (404 or 403 when the writer may no longer chat), and the write tried once more
    without it."""
    records = [step.record() for step, _ in new]
    try:
        stored = store.add_many(records, index=True, guard=guard)
    except Conflict:
        if guard is None:
            raise
        actor.access.require(_convo(convo_id), Permission.can_chat)  # read afresh: remembered
        stored = store.add_many(records, index=True)
    _join_convo(actor, convo_id)
    for step in stored:
        actor.publish(convo_id, NEW_STEP, step)
    for step, (_, reply) in zip(stored, new, strict=True):
        if reply:
            (queue or send)(
                ReplyJob(
                    jobId=step["id"],
                    convoId=convo_id,
                    replyToStepId=step["id"],
                    llmStepId=str(uuid4()),
                    config=step.get("config") or {},
                    requestedBy=actor.user_id,
                    teamId=team_id,
                )
            )
    return stored


def add_step(
    actor: Actor, convo_id: str, data: NewStep, *, queue: Callable[[ReplyJob], None] | None = None
) -> dict[str, Any]:
    """convoNewStep: a user step (the server sets everything but id, content, config, files and
    annotations); a reply is queued when its config asks for one (`queue`: given to the caller instead
    of the step queue, for an answer made in process)."""
    guard = _chat_guard(actor, convo_id)
    [reply] = _replies(actor, convo_id, [data])
    team_id = _require_token_budget(actor, convo_id) if reply else None
    _require_configs(actor.access, [data])
    step = _step(actor, convo_id, data, now_iso())
    return _store_new(actor, convo_id, [(step, reply)], team_id=team_id, queue=queue, guard=guard)[0]


# The roles whose grant on a convo alone lets one write in it.
_CHAT_ROLES = frozenset(r.value for r in Role if Permission.can_chat in permissions_of(ObjectType.convo, r))


def _chat_guard(actor: Actor, convo_id: str) -> dict[str, Any] | None:
    """`can_chat` on the convo, checked on every message. A connection's Access remembered from its
    last check (at most 3 s old, `kallo.realtime.audience`) whose own grant on the convo lets it write
    is not re-read: the write's transaction checks that grant instead (the returned condition), so a
    grant removed or lowered since refuses the message all the same, at no extra call. Anything else
    is checked now, on grants read for it (None: nothing to add to the write)."""
    convo = _convo(convo_id)
    access = actor.access
    if access.remembered and access.direct(convo, Permission.can_chat):
        return grants.role_check(convo, Ref(ObjectType.user.value, actor.user_id), _CHAT_ROLES)
    access.require(convo, Permission.can_chat)
    return None


@dataclass(frozen=True)
class Opening:
    """A message a new convo starts with: a user's (written by the caller) or the LLM's (a summary,
    an answer carried over from another system), with its citations."""

    author_type: str  # "user" | "llm"
    text: str
    annotations: tuple[dict[str, Any], ...] = ()


def add_openings(actor: Actor, convo_id: str, openings: list[Opening]) -> list[dict[str, Any]]:
    """The steps a convo starts with (a Pieces seed's messages, a data source's summary), completed,
    one millisecond apart, stored in one transaction and broadcast in order; nothing is answered.
    Needs `can_chat`. I6 (grounding): the caller vouches for the citations it passes (a summary's,
    which cite only the data source it summarises, one the caller may link)."""
    actor.access.require(_convo(convo_id), Permission.can_chat)
    start = now()
    new: list[dict[str, Any]] = []
    for n, opening in enumerate(openings):
        at = iso(start + timedelta(milliseconds=n))
        step = Step(
            id=str(uuid4()),
            convoId=convo_id,
            authorType="user" if opening.author_type == "user" else "llm",
            authorId=actor.user_id if opening.author_type == "user" else None,
            content={"text": opening.text},
            status="completed",
            annotations=list(opening.annotations),
            createdAt=at,
            updatedAt=at,
        )
        record = step.record()
        _require_fits(record)
        new.append(record)
    if not new:
        return []
    stored = store.add_many(new, index=True)
    for step in stored:
        actor.publish(convo_id, NEW_STEP, step)
    return stored


def add_step_group(actor: Actor, convo_id: str, data: NewStepGroup) -> list[dict[str, Any]]:
    """convoNewStepGroup: the steps share one server-made groupId; the first is the primary, the rest
    its alternates. They are one millisecond apart, so the group reads back in the order it was sent."""
    actor.access.require(_convo(convo_id), Permission.can_chat)
    replies = _replies(actor, convo_id, data.steps)
    team_id = _require_token_budget(actor, convo_id) if any(replies) else None
    _require_configs(actor.access, data.steps)
    group_id, start = str(uuid4()), now()
    new = [
        (
            _step(
                actor,
                convo_id,
                item,
                iso(start + timedelta(milliseconds=position)),
                group_id=group_id,
                alternate=position > 0,
            ),
            reply,
        )
        for position, (item, reply) in enumerate(zip(data.steps, replies, strict=True))
    ]
    return _store_new(actor, convo_id, new, team_id=team_id)


def add_to_group(actor: Actor, convo_id: str, data: StepGroupAddition) -> dict[str, Any]:
    """convoStepGroupAddition: the step joins the group of `primaryStepId` as an alternate; a primary
    without a group gets one first (broadcast as a convoStepUpdate with its new groupId)."""
    primary = _target(actor, data.primary_step_id, convo_id)
    [reply] = _replies(actor, convo_id, [data.step])
    team_id = _require_token_budget(actor, convo_id) if reply else None
    _require_configs(actor.access, [data.step])
    group_id = primary.get("groupId")
    if not group_id:
        group_id = str(uuid4())
        try:
            store.join_group(primary, group_id)
        except Conflict as error:  # deleted meanwhile
            raise NotFound(f"step {primary['id']} not found") from error
        actor.publish(convo_id, STEP_UPDATE, {"id": primary["id"], "groupId": group_id})
    step = _step(actor, convo_id, data.step, now_iso(), group_id=group_id, alternate=True)
    return _store_new(actor, convo_id, [(step, reply)], team_id=team_id)[0]


# -- deletion and regen -------------------------------------------------------------------------------


def _remove(step: dict[str, Any]) -> dict[str, Any] | None:
    """Delete a step and its words. A group's primary hands over to the group's oldest alternate,
    in the same transaction; returns that alternate as promoted (the caller broadcasts it)."""
    promote = None
    if step.get("groupId") and not step.get("isAlternate"):
        others = [s for s in store.group(step["convoId"], step["groupId"]) if s["id"] != step["id"]]
        promote = next((s for s in others if s.get("isAlternate")), None)
    try:
        promoted = store.delete(step, promote=promote)
    except Conflict as error:
        if promote is None and not step.get("groupId"):  # only the convo's update can fail: it is gone
            raise NotFound(f"step {step['id']} not found") from error
        # the alternate went meanwhile
        raise Conflict("the step's group changed meanwhile: try again", code="conflict") from error
    search.unindex(step)
    return promoted


def delete_step(actor: Actor, step_id: str, *, convo_id: str | None = None) -> None:
    """convoStepDeletion and Delete Step: broadcast convoStepDeletion {id} (and the promotion of an
    alternate when a group's primary goes)."""
    step = _target(actor, step_id, convo_id)
    _require_authority_over(actor, step)
    promoted = _remove(step)
    actor.publish(step["convoId"], STEP_DELETION, {"id": step["id"]})
    if promoted is not None:
        actor.publish(step["convoId"], STEP_UPDATE, {"id": promoted["id"], "isAlternate": False})


def regen_step(actor: Actor, convo_id: str, data: StepRegen) -> ReplyJob:
    """convoStepRegen: an LLM step that completed or failed is deleted and answered again: same
    question (`replyToStepId`), same place (`createdAt`), its config with `config` merged over it.
    Broadcasts convoStepRegen {id, config} and queues the job."""
    step = _target(actor, data.id, convo_id)
    if step.get("authorType") != "llm" or step.get("status") not in REGENERABLE:
        raise Conflict(
            "only an LLM step that has completed or failed can be regenerated", code="not_regenerable"
        )
    if not step.get("replyToStepId"):
        raise Conflict("this step does not say which step it answers", code="not_regenerable")
    team_id = _require_token_budget(actor, convo_id)
    # Only what this request names is checked here; the stored config's data sources are checked
    # again when the worker answers (for the question's author and this requester), never trusted.
    _require_configs(actor.access, [data.config])
    config = {
        **(step.get("config") or {}),
        **(data.config.model_dump(by_alias=True, exclude_none=True) if data.config else {}),
    }
    promoted = _remove(step)
    actor.publish(convo_id, STEP_REGEN, {"id": step["id"], "config": config})
    if promoted is not None:
        actor.publish(convo_id, STEP_UPDATE, {"id": promoted["id"], "isAlternate": False})
    job = ReplyJob(
        jobId=str(uuid4()),
        convoId=convo_id,
        replyToStepId=step["replyToStepId"],
        llmStepId=str(uuid4()),
        createdAt=step["createdAt"],
        config=config,
        requestedBy=actor.user_id,
        teamId=team_id,
    )
    send(job)
    return job


# -- updates ------------------------------------------------------------------------------------------


def update_step(
    actor: Actor,
    step_id: str,
    *,
    content: StepContent | None = None,
    is_alternate: bool | None = None,
    annotations: list[Annotation] | None = None,
    convo_id: str | None = None,
) -> dict[str, Any]:
    """convoStepUpdate and Update Step. `content` (user steps only) and `annotations` change the step
    (one convoStepUpdate with what changed); `isAlternate: false` makes it its group's primary and every
    other step of the group an alternate (one convoStepUpdate per step that changed). Setting
    `isAlternate: true` is refused: a step stops being primary only when another one takes its place.
    Returns the step as updated."""
    if is_alternate:
        raise BadRequest(
            "isAlternate can only be set to false: make another step of the group its primary",
            code="cannot_set_alternate",
        )
    step = _target(actor, step_id, convo_id)
    _require_authority_over(actor, step)
    if content is not None and step.get("authorType") != "user":
        raise BadRequest("an LLM step's content is the model's: regenerate it instead", code="not_editable")
    if content is not None and is_blank(content.text) and not step.get("files"):
        raise Unprocessable(EMPTY_STEP, code="validation_error")
    changes: dict[str, Any] = {}
    if content is not None:
        changes["content"] = {"text": content.text}
    if annotations is not None:
        step_configs.require_viewable(actor.access, [a.data_source_id for a in annotations])
        changes["annotations"] = [a.model_dump(by_alias=True, exclude_none=True) for a in annotations]
    result = step
    if changes:
        _require_fits({**step, **changes})
        try:
            result = store.update(step, changes, touch_convo=True)
        except Conflict as error:  # deleted meanwhile
            raise NotFound(f"step {step_id} not found") from error
        if content is not None:
            search.reindex(step, result)
        actor.publish(step["convoId"], STEP_UPDATE, {"id": step["id"], **changes})
    if is_alternate is False and result.get("isAlternate"):
        result = _make_primary(actor, result)
    return result


def _make_primary(actor: Actor, step: dict[str, Any]) -> dict[str, Any]:
    members = store.group(step["convoId"], step["groupId"]) if step.get("groupId") else [step]
    if all(m["id"] != step["id"] for m in members):
        raise NotFound(f"step {step['id']} not found")  # deleted meanwhile
    try:
        changed = store.set_primary(members, step["id"])
    except Conflict as error:
        raise Conflict("the step's group changed meanwhile: try again", code="conflict") from error
    # The new primary first: a client that applies updates one by one never shows a group without one.
    for member in sorted(changed, key=lambda m: m["isAlternate"]):
        actor.publish(
            step["convoId"], STEP_UPDATE, {"id": member["id"], "isAlternate": member["isAlternate"]}
        )
    return next((m for m in changed if m["id"] == step["id"]), step)
