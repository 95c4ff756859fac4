"""Feedback on answers: Set Step Feedback (`PUT /steps/{stepId}/feedback`), Remove Step Feedback
(`DELETE /steps/{stepId}/feedback`), and the ratings the compatibility surfaces show (Dify's
`feedback` in a conversation's history).

Each user has at most one feedback per step, `{stepId, userId, rating: "like" | "dislike", comment?,
createdAt, updatedAt}`; a second Set replaces it. The step carries the counts `feedback {likes,
dislikes}` (zeros on a new answer), which move in the same transaction as the user's item
(`kallo.store.feedback`): a new rating adds one, a changed one moves one from the other count, the same
rating again (a new comment) moves none, a removal takes one off. Each change of the counts is
broadcast to the convo as `convoStepUpdate {id, feedback}`; an unchanged count is not.

Who may: anyone who may view the step's convo (`can_view`: a viewer rates too). I4/I7: a step whose
convo the caller cannot view is told exactly as a missing step (404 naming only the step), before
anything else is said about it; only LLM steps (answers) take feedback (422 `not_an_answer`).
Concurrent changes of one user's feedback are settled by conditions on what was read: a request
that finds its read stale reads again (at most `ATTEMPTS` times, then 409 `conflict`).

Costs in AWS calls (a convo its user holds directly; a topic-owned convo adds a Query to the check;
`c` connections on the convo, whose broadcast also re-checks the connections not checked in the last
few seconds, I8):
- Set Step Feedback: Query (the step, GSI1) + the check (Query + BatchGetItem) + GetItem (the caller's
  feedback) + TransactWriteItems; a changed count adds GetItem (the step's counts, read after the
  change) + the broadcast (Query + c PostToConnection). 7 calls for a first like without connections.
- Remove Step Feedback: the same (the broadcast always), 404 after the GetItem when there is none.
- `ratings_of`: one BatchGetItem per 100 steps.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from kallo import realtime
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound, Unprocessable
from kallo.store import feedback as store
from kallo.store import steps
from kallo.store.keys import Ref

logger = Logger(child=True)

STEP_UPDATE = "convoStepUpdate"
RATINGS = ("like", "dislike")
# Tries of a change whose read went stale meanwhile (another change of the same feedback or step).
ATTEMPTS = 3


def answer(access: Access, step_id: str) -> dict[str, Any]:
    """The LLM step `step_id`, once the caller may view its convo. I7: a hidden convo is told as a
    missing step (404 naming the step), before whether it is an answer (422 `not_an_answer`)."""
    step = steps.get(step_id)
    if step is None:
        raise NotFound(f"step {step_id} not found")
    convo = Ref(ObjectType.convo.value, step["convoId"])
    access.require(convo, Permission.can_view, hidden_as=Ref("step", step_id))
    if step.get("authorType") != "llm":
        raise Unprocessable(
            "only an answer (an llm step) takes feedback and suggestions", code="not_an_answer"
        )
    return step


def _fresh(step: dict[str, Any]) -> dict[str, Any]:
    """The step as stored now (strongly consistent), after a transaction found it changed or gone."""
    found = steps.current(step)
    if found is None:
        raise NotFound(f"step {step['id']} not found")
    return found


def set_feedback(access: Access, step_id: str, rating: str, comment: str | None = None) -> dict[str, Any]:
    """The caller's feedback on an answer, set (or replaced); returns it. See the module docstring."""
    if rating not in RATINGS:
        raise Unprocessable("rating must be like or dislike", code="validation_error")
    step = answer(access, step_id)
    user_id = access.principal.user_id or ""
    for _ in range(ATTEMPTS):
        previous = store.get(step_id, user_id)
        at = now_iso()
        record = {
            "stepId": step_id,
            "userId": user_id,
            "rating": rating,
            "comment": comment,
            "createdAt": previous["createdAt"] if previous else at,
            "updatedAt": at,
        }
        try:
            moves = store.put(step, previous, record)
        except Conflict:
            step = _fresh(step)
            continue
        if moves:
            _announce(step)
        return {k: v for k, v in record.items() if v is not None}
    raise Conflict("the feedback changed meanwhile: try again", code="conflict")


def remove_feedback(access: Access, step_id: str) -> None:
    """Remove the caller's feedback on an answer (404 when there is none)."""
    step = answer(access, step_id)
    user_id = access.principal.user_id or ""
    for _ in range(ATTEMPTS):
        previous = store.get(step_id, user_id)
        if previous is None:
            raise NotFound(f"you have no feedback on step {step_id}")
        try:
            store.delete(step, previous)
        except Conflict:
            step = _fresh(step)
            continue
        _announce(step)
        return
    raise Conflict("the feedback changed meanwhile: try again", code="conflict")


def ratings_of(user_id: str, step_ids: list[str]) -> dict[str, str]:
    """A user's ratings of steps, step id → "like" / "dislike" (steps without one are absent). No
    check here: the caller has read these steps through a checked operation, and only the user's own
    ratings are read."""
    return store.ratings(user_id, list(dict.fromkeys(step_ids)))


def _announce(step: dict[str, Any]) -> None:
    """Broadcast the step's counts as they are after the change (read again: other users may have
    moved them at the same time). The change is stored: a failed broadcast is logged, and a client
    repairs it by reading the step over REST."""
    try:
        stored = steps.current(step)
        if stored is None:  # deleted just now: its deletion is broadcast instead
            return
        counts = {name: stored.get("feedback", {}).get(name, 0) for name in store.COUNTS.values()}
        realtime.broadcast(step["convoId"], STEP_UPDATE, {"id": step["id"], "feedback": counts})
    except Exception:
        logger.warning("broadcasting a step's feedback failed", extra={"stepId": step["id"]}, exc_info=True)
