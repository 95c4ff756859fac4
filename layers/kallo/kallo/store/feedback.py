"""Feedback on steps (access patterns 26 and 27): one item per (step, user) holding the user's rating,
and the counts `feedback {likes, dislikes}` on the step's own item, always changed together in one
transaction so the counts are exactly the number of items of each rating."""

from __future__ import annotations

from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table

COUNTS = {"like": "likes", "dislike": "dislikes"}
_FIELDS = ("stepId", "userId", "rating", "comment", "createdAt", "updatedAt")


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in _FIELDS if k in item}


def get(step_id: str, user_id: str) -> dict[str, Any] | None:
    """A user's feedback on a step (strongly consistent: it decides how the counts move)."""
    found = table().get(keys.feedback_key(step_id, user_id), consistent=True)
    return _public(found) if found else None


def ratings(user_id: str, step_ids: list[str]) -> dict[str, str]:
    """A user's ratings of many steps, step id → "like" / "dislike" (unrated steps are absent): one
    BatchGetItem per 100 steps."""
    found = table().batch_get(keys.feedback_key(s, user_id) for s in step_ids) if step_ids else []
    return {f["stepId"]: f["rating"] for f in found}


def _step_key(step: dict[str, Any]) -> dict[str, str]:
    return {
        "PK": keys.object_pk(Ref("convo", step["convoId"])),
        "SK": keys.step_sk(step["createdAt"], step["id"]),
    }


def _counts_change(step: dict[str, Any], moves: dict[str, int]) -> dict[str, Any]:
    """The step's side of the transaction: the counts move by `moves`. A step without counts yet gets
    them, only if it still has none (another first rating may have come meanwhile: the transaction then
    fails and is tried again with the step as it is)."""
    key = _step_key(step)
    if not moves:
        return {"check": key, "exists": True}
    if "feedback" not in step:
        initial = {name: max(0, moves.get(name, 0)) for name in COUNTS.values()}
        return {"update": key, "set": {"feedback": initial}, "expect": (("feedback",), None)}
    return {"update": key, "add": {("feedback", name): amount for name, amount in moves.items()}}


def _previous_holds(previous: dict[str, Any] | None) -> dict[str, Any]:
    return {"new": True} if previous is None else {"expect": (("rating",), previous["rating"])}


def put(step: dict[str, Any], previous: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, int]:
    """Store `record` as the user's feedback on `step` in place of `previous` (as read), and move the
    step's counts: one count for a new rating, one from the other for a changed one, none for the same
    rating again. Raises `Conflict` when the step is gone or either item changed since it was read.
    Returns how the counts moved."""
    moves: dict[str, int] = {}
    if previous is None or previous["rating"] != record["rating"]:
        moves[COUNTS[record["rating"]]] = 1
        if previous is not None:
            moves[COUNTS[previous["rating"]]] = -1
    item = {
        **keys.feedback_key(record["stepId"], record["userId"]),
        "entity": "feedback",
        "convoId": step["convoId"],
        **record,
    }
    table().transact([{"put": item, **_previous_holds(previous)}, _counts_change(step, moves)])
    return moves


def delete(step: dict[str, Any], previous: dict[str, Any]) -> None:
    """Delete the user's feedback `previous` (as read) and take its count off the step, in one
    transaction. Raises `Conflict` when either changed since it was read, or the step is gone."""
    key = keys.feedback_key(previous["stepId"], previous["userId"])
    table().transact(
        [
            {"delete": key, "expect": (("rating",), previous["rating"])},
            _counts_change(step, {COUNTS[previous["rating"]]: -1}),
        ]
    )


def rated(step: dict[str, Any]) -> bool:
    """Whether a step has feedback items: its counts say how many (they move with the items)."""
    return any((step.get("feedback") or {}).values())


def delete_of_step(step_id: str) -> int:
    """Delete every feedback item of a step (the step is being deleted); returns how many."""
    return table().batch_delete(table().iter_keys(keys.feedback_pk(step_id)))
