"""Feedback on answers (kallo.services.feedback, kallo.store.feedback): one rating per user and step,
counts on the step moved in the same transaction, broadcasts of each change, who may rate, and the
feedback items going with their step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest

from kallo import realtime
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Conflict, NotFound, Unprocessable
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos
from kallo.services import feedback as service
from kallo.store import feedback, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import add_user_step, grant, make_user
from tests.support.ws import llm_step


@dataclass
class World:
    owner: Principal
    viewer: Principal
    outsider: Principal
    convo: str
    question: dict[str, Any]
    answer: dict[str, Any]


@pytest.fixture
def world(aws) -> World:
    owner, viewer, outsider = make_user(), make_user(), make_user()
    convo = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo), viewer, "viewer")
    question = add_user_step(Ref("convo", convo), owner, "Plan three days in Lisbon")
    return World(owner, viewer, outsider, convo, question, llm_step(convo, question["id"]))


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    messages: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        realtime, "broadcast", lambda convo, kind, payload, *_: messages.append((convo, kind, payload))
    )
    return messages


def counts(step_id: str) -> dict[str, int]:
    return steps.get(step_id)["feedback"]


def rate(principal: Principal, step_id: str, rating: str, comment: str | None = None) -> dict[str, Any]:
    return service.set_feedback(Access(principal), step_id, rating, comment)


def test_a_new_answer_has_zero_counts_and_a_user_step_none(world):
    assert world.answer["feedback"] == {"likes": 0, "dislikes": 0}
    assert "feedback" not in world.question
    # Read back over REST, an answer stored before counts existed shows zeros too.
    legacy = Step.model_validate({k: v for k, v in world.answer.items() if k != "feedback"})
    assert legacy.model_dump(by_alias=True)["feedback"] == {"likes": 0, "dislikes": 0}


def test_ratings_move_the_counts_and_are_broadcast(world, heard):
    aid = world.answer["id"]
    liked = rate(world.viewer, aid, "like", "Clear.")
    assert liked["stepId"] == aid and liked["userId"] == world.viewer.user_id
    assert (liked["rating"], liked["comment"]) == ("like", "Clear.")
    assert liked["createdAt"] == liked["updatedAt"]
    assert counts(aid) == {"likes": 1, "dislikes": 0}
    assert heard == [(world.convo, "convoStepUpdate", {"id": aid, "feedback": {"likes": 1, "dislikes": 0}})]

    rate(world.owner, aid, "dislike")
    assert counts(aid) == {"likes": 1, "dislikes": 1}
    # A changed rating moves one count from the other.
    changed = rate(world.viewer, aid, "dislike")
    assert changed["createdAt"] == liked["createdAt"] and "comment" not in changed
    assert counts(aid) == {"likes": 0, "dislikes": 2}
    assert heard[-1][2] == {"id": aid, "feedback": {"likes": 0, "dislikes": 2}}
    # The same rating again (a new comment) moves nothing and says nothing.
    heard.clear()
    again = rate(world.viewer, aid, "dislike", "Too long.")
    assert again["comment"] == "Too long." and counts(aid) == {"likes": 0, "dislikes": 2} and heard == []
    assert feedback.get(aid, world.viewer.user_id)["comment"] == "Too long."

    service.remove_feedback(Access(world.viewer), aid)
    assert counts(aid) == {"likes": 0, "dislikes": 1}
    assert heard[-1][2] == {"id": aid, "feedback": {"likes": 0, "dislikes": 1}}
    with pytest.raises(NotFound, match="you have no feedback"):
        service.remove_feedback(Access(world.viewer), aid)
    assert service.ratings_of(world.owner.user_id, [aid, world.question["id"], aid]) == {aid: "dislike"}
    assert service.ratings_of(world.viewer.user_id, [aid]) == {}
    assert service.ratings_of(world.viewer.user_id, []) == {}


def test_who_may_rate_what(world, heard):
    aid = world.answer["id"]
    # I7: a step of a hidden convo is told exactly as a missing one, before anything else about it.
    with pytest.raises(NotFound) as hidden:
        rate(world.outsider, aid, "like")
    assert hidden.value.message == f"step {aid} not found" and world.convo not in hidden.value.message
    with pytest.raises(NotFound) as hidden_question:
        rate(world.outsider, world.question["id"], "like")  # not "not an answer": hidden first
    assert hidden_question.value.code == "not_found"
    with pytest.raises(NotFound):
        service.remove_feedback(Access(world.outsider), aid)
    missing = str(uuid4())
    with pytest.raises(NotFound, match=f"step {missing} not found"):
        rate(world.owner, missing, "like")
    with pytest.raises(Unprocessable) as user_step:
        rate(world.owner, world.question["id"], "like")
    assert user_step.value.code == "not_an_answer"
    with pytest.raises(Unprocessable):
        rate(world.owner, aid, "love")
    assert counts(aid) == {"likes": 0, "dislikes": 0} and heard == []


def test_a_stale_read_is_read_again(world, heard, monkeypatch):
    """The step as the GSI gave it lacks counts another request has just stored: the transaction's
    condition fails, the step is read again and the rating counts once."""
    aid = world.answer["id"]
    rate(world.owner, aid, "like")
    stale = {k: v for k, v in steps.get(aid).items() if k != "feedback"}
    monkeypatch.setattr(service.steps, "get", lambda step_id: stale)
    rate(world.viewer, aid, "like")
    monkeypatch.undo()
    assert counts(aid) == {"likes": 2, "dislikes": 0}
    assert heard[-1][2] == {"id": aid, "feedback": {"likes": 2, "dislikes": 0}}


def test_an_answer_without_stored_counts_gets_them_with_its_first_rating(world, heard):
    aid = world.answer["id"]
    table().update(steps.key(world.answer), {}, remove=("feedback",))
    rate(world.viewer, aid, "dislike")
    assert counts(aid) == {"likes": 0, "dislikes": 1}


def test_a_change_against_a_stale_previous_rating_is_refused(world):
    """The store's side of the retry: a transaction naming a rating that is no longer there fails and
    moves nothing."""
    aid = world.answer["id"]
    rate(world.viewer, aid, "like")
    record = {**feedback.get(aid, world.viewer.user_id), "rating": "dislike"}
    with pytest.raises(Conflict):
        feedback.put(steps.get(aid), {**record, "rating": "dislike"}, record)
    with pytest.raises(Conflict):
        feedback.put(steps.get(aid), None, record)  # "there was none": there is one
    assert counts(aid) == {"likes": 1, "dislikes": 0}


def test_a_conflict_every_time_ends_in_409(world, monkeypatch):
    def always_stale(*_: Any) -> Any:
        raise Conflict("changed", code="conflict")

    monkeypatch.setattr(feedback, "put", always_stale)
    with pytest.raises(Conflict, match="try again"):
        rate(world.viewer, world.answer["id"], "like")


def test_a_deleted_step_takes_its_feedback_along(world, heard):
    aid = world.answer["id"]
    rate(world.viewer, aid, "like")
    rate(world.owner, aid, "like")
    steps.delete(steps.get(aid))
    assert feedback.ratings(world.viewer.user_id, [aid]) == {}
    assert feedback.ratings(world.owner.user_id, [aid]) == {}
    with pytest.raises(NotFound):
        rate(world.viewer, aid, "like")


def test_a_purged_convo_takes_its_feedback_along(world, heard):
    aid = world.answer["id"]
    rate(world.viewer, aid, "dislike")
    other = llm_step(world.convo, world.question["id"])
    rate(world.viewer, other["id"], "like")
    service.remove_feedback(Access(world.viewer), other["id"])  # counts back to zero: nothing to delete
    deleted = steps.delete_all_of_convo(world.convo)
    assert deleted == 1 + 3 + 1  # the feedback item, the three steps, the contributor marker
    assert feedback.ratings(world.viewer.user_id, [aid, other["id"]]) == {}
