"""Stop Step: POST /steps/{stepId}/stop → 202 (steps.stop_step) and convoStopStep (ws.convo_stop_step),
against the LLM step worker answering with a slow scripted model: the answer ends `stopped` with its
text, heard by every connection, and a redelivered job never resumes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from kallo.jobs import ReplyJob
from kallo.store import steps
from tests.integration.test_llm_step_worker import record, run
from tests.support import ws
from tests.support.api import invoke
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_service_account, make_user

sockets = ws.sockets


def stop(principal, step_id: str):
    return invoke("steps.stop_step", principal, path={"stepId": step_id})


@pytest.fixture
def slow() -> Iterator[tuple[ScriptedLLM, str]]:
    # A word at once, then one every 30 ms: 6 s of answer unless it is stopped.
    scripted = ScriptedLLM(Script.saying("word " * 200, size=5, delay=0.03))
    with installed(scripted) as model:
        yield scripted, model


def ask(room: ws.Room, model: str) -> ReplyJob:
    """The participant asks for an answer over the WebSocket; returns the job the step queue holds."""
    payload = {"content": {"text": "Tell me everything"}, "config": {"model": model, "reply": True}}
    assert ws.send(room.participant_connection, "convoNewStep", payload) == {"statusCode": 200}
    [job] = ws.reply_jobs()
    return ReplyJob.model_validate(job)


def in_background(job: ReplyJob) -> threading.Thread:
    """The worker answering one delivery of `job`."""
    worker = threading.Thread(target=run, args=(record(job),), daemon=True)
    worker.start()
    return worker


def first_delta(sockets: ws.Sockets, connection: str) -> None:
    limit = time.monotonic() + 10
    while not [p for p in sockets.payloads(connection, "convoStepUpdate") if "delta" in p]:
        assert time.monotonic() < limit, "no delta arrived"
        time.sleep(0.01)


def finals(sockets: ws.Sockets, connection: str) -> list[dict]:
    return [p for p in sockets.payloads(connection, "convoStepUpdate") if "delta" not in p]


def test_a_stop_ends_the_workers_answer_for_every_connection(sockets, slow):
    scripted, model = slow
    room = ws.room()
    job = ask(room, model)
    worker = in_background(job)
    first_delta(sockets, room.viewer_connection)
    stopped = stop(room.participant, job.llm_step_id)
    assert stopped.status == 202
    assert (stopped.json["id"], stopped.json["status"]) == (job.llm_step_id, "running")
    assert "stopRequestedAt" not in stopped.json  # the Step model only
    worker.join(10)
    assert not worker.is_alive()
    for connection in (room.owner_connection, room.participant_connection, room.viewer_connection):
        [final] = finals(sockets, connection)
        assert final["status"] == "stopped" and final["content"]["text"].startswith("word ")
        assert sockets.payloads(connection, "convoStatus")[-1] == {"convoId": room.convo_id, "status": "idle"}
    stored = steps.get(job.llm_step_id)
    assert stored["status"] == "stopped" and stored["content"] == final["content"]
    assert len(stored["content"]["text"]) < len("word " * 200)
    # Read over REST, the stopped step says so.
    [listed] = [
        s
        for s in invoke("convos.query_convo_steps", room.owner, path={"convoId": room.convo_id}).json
        if s["id"] == job.llm_step_id
    ]
    assert listed["status"] == "stopped" and listed["content"] == final["content"]
    # Asked again: the same answer; a redelivery of the job (same message, or a new job id for the
    # step after its idempotency record expired) never resumes it.
    assert stop(room.owner, job.llm_step_id).status == 202
    sockets.clear()
    calls = len(scripted.calls)  # the answer, and the name the nameless convo was given
    assert run(record(job)) == []
    assert run(record(job.model_copy(update={"job_id": str(uuid4())}))) == []
    assert sockets.frames == [] and len(scripted.calls) == calls
    assert steps.get(job.llm_step_id) == stored


def test_aws_calls_of_a_stop(sockets, aws_calls):
    room = ws.room()
    question = ws.llm_step(room.convo_id, "none")
    answer = ws.llm_step(room.convo_id, question["id"], status="running")
    aws_calls.reset()
    assert stop(room.participant, answer["id"]).status == 202
    # The step (GSI1), the check (the convo's grants: Query + BatchGetItem), the conditional mark.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:UpdateItem": 1,
    }
    aws_calls.reset()
    assert stop(room.participant, answer["id"]).status == 202  # marked already: nothing to write
    assert dict(aws_calls.calls) == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
    assert sockets.frames == []  # the writer of the answer announces its end, not the request


def test_what_may_not_be_stopped(sockets):
    room = ws.room()
    question = ws.llm_step(room.convo_id, "none")
    running = ws.llm_step(room.convo_id, question["id"], status="running")
    completed = ws.llm_step(room.convo_id, question["id"])
    refused = stop(room.owner, completed["id"])
    assert refused.status == 409 and refused.json["code"] == "not_running"
    assert stop(room.owner, question["id"]).status == 409  # not an answer being written either
    viewer = stop(room.viewer, running["id"])
    assert viewer.status == 403 and viewer.json["code"] == "permission_denied"
    assert stop(room.outsider, running["id"]).status == 404
    assert stop(room.owner, str(uuid4())).status == 404
    assert stop(room.owner, "x").status == 422
    assert stop(None, running["id"]).status == 401
    assert "stopRequestedAt" not in steps.get(running["id"])


def test_another_tenants_running_answer_is_told_as_missing(sockets):
    """I4/I7: tenant B stopping tenant A's answer learns nothing and stops nothing."""
    room = ws.room()
    question = ws.llm_step(room.convo_id, "none")
    running = ws.llm_step(room.convo_id, question["id"], status="running")
    tenant_b, _ = make_service_account("tenant B")
    hidden, missing = stop(tenant_b, running["id"]), stop(tenant_b, str(uuid4()))
    assert hidden.status == missing.status == 404
    assert hidden.json == {"code": missing.json["code"], "message": f"step {running['id']} not found"}
    assert room.convo_id not in hidden.body
    assert "stopRequestedAt" not in steps.get(running["id"])
    assert stop(make_user(), running["id"]).status == 404


# -- convoStopStep ------------------------------------------------------------------------------------------


def test_convo_stop_step_stops_the_answer(sockets, slow, aws_calls):
    _, model = slow
    room = ws.room()
    job = ask(room, model)
    worker = in_background(job)
    first_delta(sockets, room.owner_connection)
    answer = ws.invoke("convo_stop_step", room.participant_connection, payload={"id": job.llm_step_id})
    assert answer == {"statusCode": 200}
    worker.join(10)
    [final] = finals(sockets, room.viewer_connection)
    assert final["status"] == "stopped" and final["id"] == job.llm_step_id
    assert sockets.errors(room.participant_connection) == []


def test_convo_stop_step_budget_and_refusals(sockets, aws_calls):
    room, other = ws.room(), ws.room()
    question = ws.llm_step(room.convo_id, "none")
    running = ws.llm_step(room.convo_id, question["id"], status="running")
    foreign = ws.llm_step(other.convo_id, "none", status="running")
    aws_calls.reset()
    assert ws.invoke("convo_stop_step", room.owner_connection, payload={"id": running["id"]}) == {
        "statusCode": 200
    }
    # The connection, the message counted against the sender's rate, the check, the step (GSI1), the mark.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:UpdateItem": 1 + 1,
    }
    assert sockets.frames == []
    ws.send(room.viewer_connection, "convoStopStep", {"id": running["id"]}, "v1")
    ws.send(room.owner_connection, "convoStopStep", {"id": foreign["id"]}, "o1")  # another convo's step
    ws.send(room.owner_connection, "convoStopStep", {"id": question["id"]}, "o2")
    ws.send(room.owner_connection, "convoStopStep", {"nope": 1}, "o3")
    assert [e["code"] for e in sockets.errors(room.viewer_connection)] == ["permission_denied"]
    assert [(e["code"], e["requestId"]) for e in sockets.errors(room.owner_connection)] == [
        ("not_found", "o1"),
        ("not_running", "o2"),
        ("validation_error", "o3"),
    ]
    assert "stopRequestedAt" not in steps.get(foreign["id"])


def test_an_answers_usage_is_on_the_rest_step(sockets):
    usage = {"inputTokens": 41, "outputTokens": 7, "model": "bedrock:amazon.nova-lite-v1:0"}
    room = ws.room()
    answer = steps.update(ws.llm_step(room.convo_id, "none"), {"usage": usage})
    listed = invoke("convos.query_convo_steps", room.owner, path={"convoId": room.convo_id}).json
    assert [s["usage"] for s in listed if s["id"] == answer["id"]] == [usage]
