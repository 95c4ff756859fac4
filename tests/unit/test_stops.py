"""Stop Step (kallo.services.stops.stop_step) against moto: who may stop what, what each state answers,
and the races between the request and the answer's own end."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Conflict, Forbidden, NotFound
from kallo.models.convos import ConvoCreate
from kallo.services import convos, stops
from kallo.store import steps
from kallo.store.keys import Ref
from tests.support.world import grant, make_object, make_user, ref_of
from tests.support.ws import llm_step


@dataclass
class World:
    owner: Principal
    participant: Principal
    viewer: Principal
    outsider: Principal
    convo: str
    question: str


@pytest.fixture
def world(aws) -> World:
    owner, participant, viewer, outsider = make_user(), make_user(), make_user(), make_user()
    convo = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo), participant, "participant")
    grant(Ref("convo", convo), viewer, "viewer")
    question = llm_step(convo, "none")  # any step to answer: only the id is named
    return World(owner, participant, viewer, outsider, convo, question["id"])


def running(world: World) -> dict:
    return llm_step(world.convo, world.question, status="running")


def test_a_running_answer_is_marked_for_a_stop_and_nothing_else_changes(world):
    answer = running(world)
    stopped = stops.stop_step(Access(world.participant), answer["id"])
    assert stopped["id"] == answer["id"] and stopped["status"] == "running"
    stored = steps.current(answer)
    assert stored["stopRequestedAt"] >= answer["updatedAt"]
    # The writer ends it: the request only marks it (content, status and updatedAt untouched).
    assert {k: v for k, v in stored.items() if k != "stopRequestedAt"} == answer


def test_asking_twice_is_the_same_request_and_a_stopped_step_answers_the_same(world):
    answer = running(world)
    first = stops.stop_step(Access(world.owner), answer["id"])
    again = stops.stop_step(Access(world.owner), answer["id"])
    assert again["stopRequestedAt"] == first["stopRequestedAt"]
    ended = steps.update(answer, {"status": "stopped"})
    assert stops.stop_step(Access(world.owner), answer["id"])["status"] == ended["status"] == "stopped"


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_an_answer_that_ended_is_not_running(world, status):
    answer = llm_step(world.convo, world.question, status=status)
    with pytest.raises(Conflict) as raised:
        stops.stop_step(Access(world.owner), answer["id"])
    assert raised.value.code == "not_running"
    assert "stopRequestedAt" not in steps.current(answer)


def test_a_user_step_is_not_running(world):
    user_step = steps.update(running(world), {"authorType": "user", "authorId": world.owner.user_id})
    with pytest.raises(Conflict) as raised:
        stops.stop_step(Access(world.owner), user_step["id"])
    assert raised.value.code == "not_running"


def test_a_viewer_may_not_stop_and_an_outsider_does_not_see_the_step(world):
    answer = running(world)
    with pytest.raises(Forbidden):
        stops.stop_step(Access(world.viewer), answer["id"])
    with pytest.raises(NotFound) as hidden:
        stops.stop_step(Access(world.outsider), answer["id"])
    with pytest.raises(NotFound) as missing:
        stops.stop_step(Access(world.outsider), "00000000-0000-4000-8000-000000000000")
    assert hidden.value.message.replace(answer["id"], "X") == missing.value.message.replace(
        "00000000-0000-4000-8000-000000000000", "X"
    )
    assert "stopRequestedAt" not in steps.current(answer)


def test_on_a_connection_a_step_of_another_convo_is_not_found(world):
    answer = running(world)
    other = make_object("convo", ref_of(world.owner))
    with pytest.raises(NotFound):
        stops.stop_step(Access(world.owner), answer["id"], convo_id=other.id)
    assert stops.stop_step(Access(world.owner), answer["id"], convo_id=world.convo)["id"] == answer["id"]


def test_an_answer_that_completes_between_the_read_and_the_mark_is_not_running(world, monkeypatch):
    answer = running(world)
    mark = steps.request_stop

    def completing_first(step):
        steps.update(step, {"status": "completed"})
        return mark(step)

    monkeypatch.setattr(steps, "request_stop", completing_first)
    with pytest.raises(Conflict) as raised:
        stops.stop_step(Access(world.owner), answer["id"])
    assert raised.value.code == "not_running"


def test_an_answer_stopped_or_deleted_between_the_read_and_the_mark(world, monkeypatch):
    answer = running(world)
    mark = steps.request_stop

    def stopped_first(step):
        steps.update(step, {"status": "stopped"})
        return mark(step)

    monkeypatch.setattr(steps, "request_stop", stopped_first)
    assert stops.stop_step(Access(world.owner), answer["id"])["status"] == "stopped"

    gone = running(world)

    def deleted_first(step):
        steps.delete(step)
        return mark(step)

    monkeypatch.setattr(steps, "request_stop", deleted_first)
    with pytest.raises(NotFound):
        stops.stop_step(Access(world.owner), gone["id"])
