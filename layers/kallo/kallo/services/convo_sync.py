"""convoSync: a client's catch-up with its convo, on request (API Gateway cannot send on a connection
while `$connect` runs, so a new connection asks for the state it missed).

What the sender gets, in this order (to it alone, its requestId echoed):
1. for each running answer of the convo, oldest first, `convoStatus` `{convoId, status: "running",
   stepId}` then its snapshot, a `convoStepUpdate` `{id, convoId, content: {text}, seq, status:
   "running"}` whose text is exactly deltas 1..`seq` (the worker saves each delta before broadcasting
   it, `kallo.services.replies`, so a snapshot never lags what was broadcast); with no running answer,
   one `convoStatus` `{convoId, status: "idle"}`;
2. when `since.stepId` names an answer of THIS convo that is no longer running and `since.seq` is
   below its final `seq` (the client lacks its end), that step's final `convoStepUpdate` `{id, content,
   status, seq, usage?, annotations?, error?}`, as the worker broadcast it.

I8 (live access): the message glue re-checks the connection as a broadcast does, and this service
checks `can_view` on the convo again, so a connection whose principal lost the convo learns nothing.
I4 (ids): a `since.stepId` that names no step, a step of another convo (another tenant's included) or
a step the client is up to date on is ignored alike: the answer is the same as without `since`, so it
reveals nothing about other convos' steps.

Costs in AWS calls: the convo check (a Query per object of its ownership chain and a BatchGetItem,
`kallo.authz.access`) + 1 Query (the running steps, strongly consistent; 1 per MB of the convo's
steps) + with `since`, 1 Query (the step by id; + 1 GetItem when the index still shows it running
after the consistent read found it ended); the messages are `kallo.realtime.send` (1 PostToConnection
each), sent by the handler.
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.models.ws import StepSnapshot, SyncSince
from kallo.store import steps
from kallo.store.keys import Ref

Message = tuple[str, dict[str, Any]]
RUNNING = "running"
# What an answer's final convoStepUpdate carries besides its id, content, status and seq.
_FINAL_EXTRAS = ("usage", "annotations", "error")


def snapshot(step: dict[str, Any]) -> dict[str, Any]:
    """A running answer's snapshot: its saved text and the `seq` that text goes through."""
    return StepSnapshot(
        id=step["id"],
        convoId=step["convoId"],
        content={"text": (step.get("content") or {}).get("text", "")},
        seq=int(step.get("seq") or 0),
    ).model_dump(by_alias=True)


def final_update(step: dict[str, Any]) -> dict[str, Any]:
    """An ended answer's final convoStepUpdate, as the worker broadcast it."""
    update: dict[str, Any] = {
        "id": step["id"],
        "content": {"text": (step.get("content") or {}).get("text", "")},
        "status": step.get("status", "completed"),
        "seq": int(step.get("seq") or 0),
    }
    for name in _FINAL_EXTRAS:
        if step.get(name):
            update[name] = step[name]
    return update


def sync(access: Access, convo_id: str, since: SyncSince | None = None) -> list[Message]:
    """The messages that bring the caller's copy of the convo up to date (see the module)."""
    access.require(Ref(ObjectType.convo.value, convo_id), Permission.can_view)
    running = steps.running_of_convo(convo_id)
    messages: list[Message] = []
    for step in running:
        messages.append(("convoStatus", {"convoId": convo_id, "status": RUNNING, "stepId": step["id"]}))
        messages.append(("convoStepUpdate", snapshot(step)))
    if not running:
        messages.append(("convoStatus", {"convoId": convo_id, "status": "idle"}))
    if since is not None and since.step_id not in {s["id"] for s in running}:
        ended = _ended(convo_id, since)
        if ended is not None:
            messages.append(("convoStepUpdate", final_update(ended)))
    return messages


def _ended(convo_id: str, since: SyncSince) -> dict[str, Any] | None:
    """The answer `since` names when it belongs to this convo, has ended, and the client lacks its
    end; None otherwise (a missing step and another convo's step alike: I4)."""
    found = steps.get(since.step_id)
    if found is None or found.get("convoId") != convo_id or found.get("authorType") != "llm":
        return None
    if found.get("status") == RUNNING:
        # The index lags the table: the consistent read above found it no longer running.
        found = steps.current(found)
        if found is None or found.get("status") == RUNNING:
            return None
    return found if since.seq < int(found.get("seq") or 0) else None
