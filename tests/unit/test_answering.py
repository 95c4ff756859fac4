"""Answers in process (kallo.services.answering) against moto with a scripted model: `ask` is Add Step
without the queue, `run` yields the answer's messages as they are broadcast, and a stop ends it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kallo import realtime
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Forbidden, NotFound, Unprocessable
from kallo.models.convos import ConvoCreate
from kallo.models.ws import NewStep
from kallo.services import answering, convos, replies, stops
from kallo.services import steps as service
from kallo.store import steps
from kallo.store.keys import Ref
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import grant, make_user
from tests.support.ws import reply_jobs


@pytest.fixture
def broadcasts(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def broadcast(
        convo_id: str, message_type: str, payload: Any, request_id: str | None = None, **_: Any
    ) -> None:
        with lock:
            sent.append((message_type, payload))

    monkeypatch.setattr(realtime, "broadcast", broadcast)
    return sent


@pytest.fixture
def owner(aws) -> Principal:
    return make_user()


@pytest.fixture
def convo(owner) -> str:
    return convos.create_convo(Access(owner), ConvoCreate(name="Talk"))["id"]


def asking(model: str, text: str = "Tell me a story") -> NewStep:
    return NewStep.model_validate({"content": {"text": text}, "config": {"model": model, "reply": True}})


@pytest.fixture
def slow() -> Iterator[str]:
    # The first word at once, then one every 40 ms: 4 s of text unless stopped.
    with installed(ScriptedLLM(Script.saying("w " * 100, size=2, delay=0.04))) as model:
        yield model


def test_ask_stores_and_broadcasts_the_question_and_returns_the_job_unqueued(owner, convo, broadcasts, slow):
    step, job = answering.ask(service.Actor(Access(owner), "r1"), convo, asking(slow))
    assert broadcasts == [("convoNewStep", step)]
    assert steps.get(step["id"]) == step and step["authorId"] == owner.user_id
    assert (job.convo_id, job.reply_to_step_id, job.requested_by) == (convo, step["id"], owner.user_id)
    assert job.config == {"model": slow, "reply": True} and job.llm_step_id != step["id"]
    assert reply_jobs() == []  # nothing on the step queue: the caller answers it


def test_ask_needs_a_reply_and_the_usual_permissions(owner, convo, broadcasts, slow):
    with pytest.raises(Unprocessable):
        answering.ask(
            service.Actor(Access(owner)), convo, NewStep.model_validate({"content": {"text": "No answer"}})
        )
    viewer, outsider = make_user(), make_user()
    grant(Ref("convo", convo), viewer, "viewer")
    with pytest.raises(Forbidden):
        answering.ask(service.Actor(Access(viewer)), convo, asking(slow))
    with pytest.raises(NotFound):
        answering.ask(service.Actor(Access(outsider)), convo, asking(slow))
    assert broadcasts == []


def test_run_yields_what_is_broadcast_as_it_happens_and_ends_after_idle(owner, convo, broadcasts):
    with installed(ScriptedLLM(Script(["Once", " upon", " a time"], delay=[0.0, 0.4, 0.4]))) as model:
        _, job = answering.ask(service.Actor(Access(owner)), convo, asking(model))
        broadcasts.clear()
        received: list[tuple[str, dict[str, Any]]] = []
        running_at_first_delta = None
        for message in answering.run(job):
            received.append(message)
            if message[0] == "convoStepUpdate" and "delta" in message[1] and running_at_first_delta is None:
                # The first delta reaches the consumer while the answer is still being written.
                running_at_first_delta = steps.get(job.llm_step_id)["status"] == "running"
    assert running_at_first_delta is True
    assert [t for t, _ in received][:3] == ["convoStatus", "convoNewStep", "convoStepUpdate"]
    assert received[-1] == ("convoStatus", {"convoId": convo, "status": "idle"})
    final = [p for t, p in received if t == "convoStepUpdate" and "delta" not in p]
    assert [(f["status"], f["content"]["text"]) for f in final] == [("completed", "Once upon a time")]
    # The listener hears each message just before it is broadcast: the answer's thread may still be
    # broadcasting the last one when the consumer has it.
    deadline = time.monotonic() + 5
    while len(broadcasts) < len(received) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert received == broadcasts  # the connections heard the same, in the same order


def test_a_stop_ends_an_answer_made_in_process(owner, convo, broadcasts, slow):
    _, job = answering.ask(service.Actor(Access(owner)), convo, asking(slow))
    received = []
    for message_type, payload in answering.run(job):
        received.append((message_type, payload))
        if message_type == "convoStepUpdate" and payload.get("seq") == 1:
            assert stops.stop_step(Access(owner), job.llm_step_id)["status"] == "running"
    final = [p for t, p in received if t == "convoStepUpdate" and "delta" not in p]
    assert [f["status"] for f in final] == ["stopped"]
    assert 0 < len(final[0]["content"]["text"]) < len("w " * 100)
    assert received[-1][1]["status"] == "idle"
    assert steps.get(job.llm_step_id)["status"] == "stopped"
    assert stops.stop_step(Access(owner), job.llm_step_id)["status"] == "stopped"  # asked again: the same


def test_a_consumer_that_leaves_early_does_not_end_the_answer(owner, convo, broadcasts):
    with installed(ScriptedLLM(Script(["a", "b", "c"], delay=[0.0, 0.2, 0.2]))) as model:
        _, job = answering.ask(service.Actor(Access(owner)), convo, asking(model))
        messages = answering.run(job)
        assert next(messages)[0] == "convoStatus"
        messages.close()
        limit = time.monotonic() + 10
        while not broadcasts or broadcasts[-1][0] != "convoStatus" or broadcasts[-1][1]["status"] != "idle":
            assert time.monotonic() < limit
            time.sleep(0.02)
    stored = steps.get(job.llm_step_id)
    assert (stored["status"], stored["content"]["text"]) == ("completed", "abc")


def test_an_error_before_the_answer_exists_is_raised_to_the_consumer(
    owner, convo, broadcasts, slow, monkeypatch
):
    _, job = answering.ask(service.Actor(Access(owner)), convo, asking(slow))

    def unreachable(step_id: str) -> None:
        raise RuntimeError("the table is unreachable")

    monkeypatch.setattr(replies.steps, "get", unreachable)
    with pytest.raises(RuntimeError, match="unreachable"):
        list(answering.run(job))
