"""Stop Step (`POST /steps/{stepId}/stop`, WebSocket `convoStopStep`): ask a running answer to stop.

The request only marks the LLM step: `stopRequestedAt` is set on its item, on the condition that its
status is `running`. Whoever writes the answer (the LLM step worker, or a surface answering in process
through `kallo.services.answering`) sees the mark at its next save, which comes at least every half
second (`kallo.services.replies`), and ends the step `stopped` with its text so far: the final
`convoStepUpdate` `{id, content, status: "stopped", seq, usage?}`, then `convoStatus` idle. A stop is
not a deletion: the step and its text stay.

Answers:
- 202 with the step, when the mark is set, or when the step is stopped already or being stopped
  (asking twice is the same request);
- 409 `not_running` for a step that is not an answer being written: a completed or failed LLM step,
  or a user step;
- 404 for a step the caller cannot see (I4: the same answer as a missing one). Who may stop: whoever
  may chat in the convo (`can_chat`, the permission that asks for answers); a viewer gets 403.

Costs in AWS calls: the check (Query the step by id + Query and BatchGetItem for the convo's grants,
as every step operation; a topic-owned convo adds a Query) + 1 UpdateItem (the conditional mark);
a step that stopped meanwhile adds 1 GetItem (the re-read that tells why the condition failed).
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.errors import Conflict, NotFound
from kallo.services import steps
from kallo.store import steps as store

NOT_RUNNING = "not_running"


def _stoppable(step: dict[str, Any]) -> bool:
    """Stopped already, or marked for a stop: a stop request has nothing more to do."""
    return step.get("status") == "stopped" or (
        step.get("status") == "running" and bool(step.get("stopRequestedAt"))
    )


def _not_running(step: dict[str, Any]) -> Conflict:
    return Conflict(f"step {step['id']} is not an answer being written", code=NOT_RUNNING)


def stop_step(access: Access, step_id: str, *, convo_id: str | None = None) -> dict[str, Any]:
    """Mark a running LLM step for a stop; returns the step (see the module docstring). On a
    connection, `convo_id` is the connection's convo: a step of another convo is not found."""
    step = steps.target(steps.Actor(access), step_id, convo_id)
    if step.get("authorType") != "llm":
        raise _not_running(step)
    if _stoppable(step):
        return step
    if step.get("status") != "running":
        raise _not_running(step)
    try:
        return store.request_stop(step)
    except Conflict:
        # It ended (or was deleted) between the read and the mark: say which.
        found = store.current(step)
        if found is None:
            raise NotFound(f"step {step_id} not found") from None
        if _stoppable(found):
            return found
        raise _not_running(found) from None
