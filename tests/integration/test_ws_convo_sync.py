"""convoSync (ws.convo_sync): the convo's state, on request, to the sender only."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.realtime import audience
from kallo.services import convos
from kallo.store import keys, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
from tests.support.world import make_user

sockets = ws.sockets


def running_answer(convo_id: str, text: str, seq: int) -> dict:
    """An answer the worker is writing: its text through `seq` saved."""
    step = ws.llm_step(convo_id, "q-1", status="running")
    return steps.update(step, {"content": {"text": text}, "seq": seq})


def ended_answer(convo_id: str, text: str, seq: int, status: str = "completed") -> dict:
    step = ws.llm_step(convo_id, "q-1", status=status)
    usage = {"inputTokens": 12, "outputTokens": 5, "model": "embedded:smollm2"}
    return steps.update(step, {"content": {"text": text}, "seq": seq, "usage": usage})


def test_an_idle_convo_answers_idle_to_the_sender_only(sockets, aws_calls):
    room = ws.room()
    aws_calls.reset()
    answer = ws.invoke("convo_sync", room.viewer_connection, payload={}, request_id="s1")
    assert answer == {"statusCode": 200}
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStatus", "payload": {"convoId": room.convo_id, "status": "idle"}, "requestId": "s1"}
    ]
    assert sockets.receivers == {room.viewer_connection}
    # The connection (GetItem); its check (I8: the convo's grants, Query + BatchGetItem); the rate
    # (UpdateItem); the service's own check, on the grants already read; the running steps (Query).
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 1 + 1,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:UpdateItem": 1,
        "apigatewaymanagementapi:PostToConnection": 1,
    }


def test_a_running_answer_comes_as_its_status_and_its_snapshot(sockets, aws_calls):
    room = ws.room()
    ended_answer(room.convo_id, "an older answer", 3)
    step = running_answer(room.convo_id, "Day one: Alfa", 4)
    aws_calls.reset()
    ws.send(room.participant_connection, "convoSync", {}, "s2")
    assert sockets.to(room.participant_connection) == [
        {
            "type": "convoStatus",
            "payload": {"convoId": room.convo_id, "status": "running", "stepId": step["id"]},
            "requestId": "s2",
        },
        {
            "type": "convoStepUpdate",
            "payload": {
                "id": step["id"],
                "convoId": room.convo_id,
                "content": {"text": "Day one: Alfa"},
                "seq": 4,
                "status": "running",
            },
            "requestId": "s2",
        },
    ]
    assert sockets.receivers == {room.participant_connection}
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["apigatewaymanagementapi:PostToConnection"] == 2


def test_since_a_running_answer_gets_the_snapshot_alone(sockets, aws_calls):
    room = ws.room()
    step = running_answer(room.convo_id, "Day one", 2)
    aws_calls.reset()
    ws.send(room.owner_connection, "convoSync", {"since": {"stepId": step["id"], "seq": 1}}, "s3")
    assert [m["type"] for m in sockets.to(room.owner_connection)] == ["convoStatus", "convoStepUpdate"]
    assert sockets.payloads(room.owner_connection, "convoStepUpdate")[0]["seq"] == 2
    assert aws_calls["dynamodb:Query"] == 2  # no lookup of the since step: it is among the running


def test_since_an_ended_answer_gets_its_final_update(sockets, aws_calls):
    room = ws.room()
    step = ended_answer(room.convo_id, "Day one: Alfama and the castle", 9)
    aws_calls.reset()
    ws.send(room.owner_connection, "convoSync", {"since": {"stepId": step["id"], "seq": 6}}, "s4")
    assert sockets.to(room.owner_connection) == [
        {"type": "convoStatus", "payload": {"convoId": room.convo_id, "status": "idle"}, "requestId": "s4"},
        {
            "type": "convoStepUpdate",
            "payload": {
                "id": step["id"],
                "content": {"text": "Day one: Alfama and the castle"},
                "status": "completed",
                "seq": 9,
                "usage": {"inputTokens": 12, "outputTokens": 5, "model": "embedded:smollm2"},
            },
            "requestId": "s4",
        },
    ]
    # + the since step by id (GSI1 Query).
    assert aws_calls["dynamodb:Query"] == 1 + 1 + 1 and aws_calls["dynamodb:GetItem"] == 1


def test_a_failed_answer_ends_with_its_error_and_an_up_to_date_client_gets_nothing_more(sockets):
    room = ws.room()
    failed = ws.llm_step(room.convo_id, "q-1", status="failed")
    error = {"code": "model_error", "message": "the model could not answer"}
    failed = steps.update(failed, {"content": {"text": "Day"}, "seq": 2, "error": error})
    ws.send(room.owner_connection, "convoSync", {"since": {"stepId": failed["id"], "seq": 0}}, "a")
    ws.send(room.owner_connection, "convoSync", {"since": {"stepId": failed["id"], "seq": 2}}, "b")
    finals = sockets.to(room.owner_connection, "convoStepUpdate")
    assert [(m["requestId"], m["payload"]["status"], m["payload"].get("error")) for m in finals] == [
        ("a", "failed", error)
    ]


def test_since_a_missing_step_or_a_user_step_is_ignored(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "mine"}})
    (mine,) = sockets.payloads(room.owner_connection, "convoNewStep")
    sockets.clear()
    missing = "0b8a3c1e-7c55-4a59-9d67-6f0f4a1b9e21"
    for request_id, step_id in (("m", missing), ("u", mine["id"])):
        ws.send(room.owner_connection, "convoSync", {"since": {"stepId": step_id, "seq": 0}}, request_id)
    assert [(m["type"], m["requestId"]) for m in sockets.to(room.owner_connection)] == [
        ("convoStatus", "m"),
        ("convoStatus", "u"),
    ]


def test_bad_payloads_are_refused(sockets):
    room = ws.room()
    for request_id, payload in (
        ("neg", {"since": {"stepId": "0b8a3c1e-7c55-4a59-9d67-6f0f4a1b9e21", "seq": -1}}),
        ("id", {"since": {"stepId": "x", "seq": 1}}),
        ("extra", {"convoId": room.convo_id}),
    ):
        ws.send(room.owner_connection, "convoSync", payload, request_id)
    assert [(e["code"], e["requestId"]) for e in sockets.errors(room.owner_connection)] == [
        ("validation_error", "neg"),
        ("validation_error", "id"),
        ("validation_error", "extra"),
    ]
    assert sockets.to(room.owner_connection, "convoStatus") == []


# -- attacks from another tenant's side --------------------------------------------------------------------


def test_attack_since_naming_another_tenants_step_learns_nothing(sockets):
    """I4: a step of a convo the caller cannot see is ignored exactly like a missing one: neither its
    text nor its existence reaches the caller."""
    mine = ws.room()
    other_tenant = make_user()
    theirs = convos.create_convo(Access(other_tenant), ConvoCreate(name="their plans"))["id"]
    secret = ended_answer(theirs, "their secret plans", 5)
    their_running = running_answer(theirs, "their running secret", 3)
    for request_id, step in (("ended", secret), ("running", their_running)):
        ws.send(mine.owner_connection, "convoSync", {"since": {"stepId": step["id"], "seq": 0}}, request_id)
    ws.send(mine.owner_connection, "convoSync", {"since": {"stepId": str(uuid4()), "seq": 0}}, "missing")
    received = sockets.to(mine.owner_connection)
    assert [m["payload"] for m in received] == [{"convoId": mine.convo_id, "status": "idle"}] * 3
    assert "secret" not in str(received) and their_running["id"] not in str(received)


def test_attack_a_connection_that_lost_the_convo_hears_nothing_of_it(sockets):
    """I8: the viewer's grant is removed; its next convoSync is refused and its socket closed, even
    while an answer runs (no snapshot, no status)."""
    room = ws.room()
    running_answer(room.convo_id, "Day one", 2)
    table().delete(keys.grant_key(Ref("convo", room.convo_id), Ref("user", room.viewer.user_id or "")))
    audience.forget()
    ws.send(room.viewer_connection, "convoSync", {}, "gone")
    assert [m["type"] for m in sockets.to(room.viewer_connection)] == ["error"]
    assert sockets.errors(room.viewer_connection)[0]["code"] == "unauthorized"
    assert room.viewer_connection in sockets.closed


def test_attack_a_connection_of_another_tenant_on_my_convo_is_refused(sockets):
    """A connection item naming a convo its principal cannot view (stored by hand, as no `$connect`
    would) gets no state of it."""
    room = ws.room()
    running_answer(room.convo_id, "Day one", 2)
    intruder = ws.connect(make_user(), room.convo_id)
    ws.send(intruder, "convoSync", {}, "x")
    assert [m["payload"]["code"] for m in sockets.to(intruder)] == ["unauthorized"]
    assert intruder in sockets.closed
