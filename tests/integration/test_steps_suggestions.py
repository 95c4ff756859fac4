"""Get Step Suggestions (GET /steps/{stepId}/suggestions): made by the step's model for the first
caller and kept, 202 while another caller makes them, the refusals, and the AWS calls of each case."""

from uuid import uuid4

import pytest

from kallo.clock import epoch_seconds, now
from kallo.llm import Usage
from kallo.services import suggestions
from kallo.store import steps
from kallo.store.table import table
from tests.support import ws
from tests.support.api import invoke
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_service_account, make_user

sockets = ws.sockets
QUESTIONS = ["Which day suits the castle?", "Where is the best pastry?", "Is Sintra far?"]


@pytest.fixture
def llm():
    said = ["1. Which day suits the castle?\n2. Where is the best ", "pastry?\n3. Is Sintra far?"]
    scripted = ScriptedLLM(Script(said, usage=Usage(input_tokens=80, output_tokens=20)))
    with installed(scripted) as model:
        yield scripted, model


def get(principal, step_id: str):
    return invoke("steps.get_step_suggestions", principal, path={"stepId": step_id})


def scene(model: str, **options):
    """A room whose participant asked a question, and an answer to it by `model`."""
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "Plan three days in Lisbon"}})
    listed = invoke("convos.query_convo_steps", room.owner, path={"convoId": room.convo_id}).json
    return room, ws.llm_step(room.convo_id, listed[0]["id"], config={"model": model}, **options)


def test_the_first_caller_makes_them_and_the_next_reads_them(sockets, aws_calls, llm):
    scripted, model = llm
    room, answer = scene(model)
    aws_calls.reset()
    made = get(room.viewer, answer["id"])  # a viewer may ask
    assert made.status == 200, made.body
    assert made.json == {"suggestions": QUESTIONS}
    # The step (GSI1), the check, the token budgets, the lease, the question, the charge, kept.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 2,
        "dynamodb:UpdateItem": 3,
    }
    assert "Plan three days in Lisbon" in scripted.calls[0][0][1].content
    aws_calls.reset()
    kept = get(room.owner, answer["id"])
    assert kept.status == 200 and kept.json == {"suggestions": QUESTIONS}
    assert dict(aws_calls.calls) == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}
    assert len(scripted.calls) == 1


def test_while_another_caller_makes_them_202(sockets, aws_calls, llm):
    scripted, model = llm
    room, answer = scene(model)
    table().update(steps.key(answer), {suggestions.LEASE: epoch_seconds(now()) + 30})
    aws_calls.reset()
    pending = get(room.owner, answer["id"])
    assert pending.status == 202, pending.body
    assert pending.headers["retry-after"] == str(suggestions.RETRY_AFTER_SECONDS)
    assert pending.json["retryAfter"] > now().isoformat()[:19]
    # As a first caller's, until the lease is refused; then the step read again.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 2,
        "dynamodb:UpdateItem": 1,
        "dynamodb:GetItem": 1,
    }
    assert scripted.calls == []


def test_refusals(sockets, llm):
    _, model = llm
    room, answer = scene(model)
    question = answer["replyToStepId"]
    user_step = get(room.owner, question)
    assert user_step.status == 422 and user_step.json["code"] == "not_an_answer"
    _, running = scene(model, status="running")
    unfinished = get(room.owner, running["id"])
    assert unfinished.status == 404  # another room's: hidden from this room's owner
    room_b, running = scene(model, status="running")
    unfinished = get(room_b.owner, running["id"])
    assert unfinished.status == 409 and unfinished.json["code"] == "not_completed"
    assert get(room.outsider, answer["id"]).status == 404
    assert get(room.owner, str(uuid4())).status == 404
    assert get(room.owner, "nope").status == 422


def test_another_tenants_answer_is_told_as_missing(sockets, llm):
    """I4/I7: tenant B asking for tenant A's suggestions learns nothing and makes nothing (no model
    call, no tokens spent on A's step)."""
    scripted, model = llm
    room, answer = scene(model)
    tenant_b, _ = make_service_account("tenant B")
    for attacker in (tenant_b, make_user()):
        hidden = get(attacker, answer["id"])
        assert hidden.status == 404
        assert hidden.json == {"code": "not_found", "message": f"step {answer['id']} not found"}
        assert room.convo_id not in hidden.body
    assert scripted.calls == []
    assert "suggestions" not in table().get(steps.key(answer), consistent=True)
