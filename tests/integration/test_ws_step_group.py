"""convoNewStepGroup (ws.convo_new_step_group) and convoStepGroupAddition (ws.convo_step_group_addition)."""

import json
from uuid import uuid4

from kallo.store import steps
from tests.support import ws

sockets = ws.sockets


def test_a_group_is_broadcast_step_by_step_with_one_group_id(sockets, aws_calls):
    room = ws.room()
    aws_calls.reset()
    assert ws.invoke("convo_new_step_group", room.owner_connection) == {"statusCode": 200}  # the sample
    # As one new step (the words in its transaction), with one broadcast per step and one job per step
    # asking for a reply; the first broadcast checks the two other connections (their grants, the
    # chain's structural grants being those the sender's check read a moment before, I8), the second
    # does not.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 2 + 1,  # + the token budgets
        "dynamodb:UpdateItem": 1,  # the message counted against the sender's rate
        "dynamodb:TransactWriteItems": 1,
        "apigatewaymanagementapi:PostToConnection": 6,
        "sqs:SendMessage": 2,
    }
    primary, alternate = sockets.payloads(room.viewer_connection, "convoNewStep")
    assert primary["groupId"] == alternate["groupId"] and primary["groupId"]
    assert (primary["isAlternate"], alternate["isAlternate"]) == (False, True)
    assert all(m["requestId"] == "req-2" for m in sockets.to(room.viewer_connection))
    assert [s["id"] for s in steps.group(room.convo_id, primary["groupId"])] == [
        primary["id"],
        alternate["id"],
    ]
    jobs = ws.reply_jobs()
    assert [j["replyToStepId"] for j in jobs] == [primary["id"], alternate["id"]]
    assert {j["messageGroupId"] for j in jobs} == {room.convo_id}


def test_bad_groups(sockets):
    room = ws.room()
    cases = [
        {"steps": []},
        {"steps": [{"content": {"text": "x"}}] * 11},
        {"steps": [{"content": {"text": "x"}, "groupId": str(uuid4())}]},
        {"stepGroup": {"steps": [{"content": {"text": "x"}}]}},
    ]
    for position, payload in enumerate(cases):
        ws.send(room.owner_connection, "convoNewStepGroup", payload, f"g{position}")
    errors = sockets.errors(room.owner_connection)
    assert [(e["code"], e["requestId"]) for e in errors] == [("validation_error", f"g{p}") for p in range(4)]
    ws.send(room.viewer_connection, "convoNewStepGroup", {"steps": [{"content": {"text": "x"}}]}, "v")
    assert sockets.errors(room.viewer_connection)[0]["code"] == "permission_denied"
    assert steps.of_convo(room.convo_id).items == []


def test_an_addition_creates_the_group_then_joins_it(sockets, aws_calls):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "x"}})
    primary = sockets.payloads(room.owner_connection, "convoNewStep")[0]
    sockets.clear()
    aws_calls.reset()
    # The sample's step, added to the primary the server made.
    sample = json.loads(ws.sample_event("convo_step_group_addition")["body"])["payload"]
    addition = {**sample, "primaryStepId": primary["id"]}
    ws.invoke("convo_step_group_addition", room.participant_connection, payload=addition)
    # The connection, the check (which read the participant's own grant), the primary (GSI1), the group's
    # creation (+ the convo's latestStep, the primary being the latest), its broadcast, then the new
    # step as any other (its words in its transaction, its broadcast, its job).
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 4,
        "dynamodb:BatchGetItem": 1 + 1,  # + the token budgets
        "dynamodb:TransactWriteItems": 2,
        "dynamodb:UpdateItem": 1 + 1,  # + the message counted against the sender's rate
        "apigatewaymanagementapi:PostToConnection": 6,
        "sqs:SendMessage": 1,
    }
    update, new = sockets.to(room.viewer_connection)
    assert update["type"] == "convoStepUpdate" and update["requestId"] == "req-3"
    assert update["payload"] == {"id": primary["id"], "groupId": new["payload"]["groupId"]}
    assert new["type"] == "convoNewStep" and new["payload"]["isAlternate"] is True
    assert new["payload"]["content"] == {"text": "Plan four days in Lisbon"}
    group = steps.group(room.convo_id, update["payload"]["groupId"])
    assert [(s["id"], s["isAlternate"]) for s in group] == [
        (primary["id"], False),
        (new["payload"]["id"], True),
    ]
    assert [j["replyToStepId"] for j in ws.reply_jobs()] == [new["payload"]["id"]]
    # The second addition joins the group without a convoStepUpdate.
    sockets.clear()
    ws.send(
        room.owner_connection,
        "convoStepGroupAddition",
        {"primaryStepId": primary["id"], "step": {"content": {"text": "x"}}},
    )
    assert [m["type"] for m in sockets.to(room.viewer_connection)] == ["convoNewStep"]
    assert len(steps.group(room.convo_id, update["payload"]["groupId"])) == 3


def test_an_addition_to_an_unknown_or_foreign_primary_is_not_found(sockets):
    room, other = ws.room(), ws.room()
    ws.send(other.owner_connection, "convoNewStep", {"content": {"text": "elsewhere"}})
    foreign = sockets.payloads(other.owner_connection, "convoNewStep")[0]
    for position, primary_id in enumerate((str(uuid4()), foreign["id"])):
        ws.send(
            room.owner_connection,
            "convoStepGroupAddition",
            {"primaryStepId": primary_id, "step": {"content": {"text": "x"}}},
            f"a{position}",
        )
    assert [(e["code"], e["requestId"]) for e in sockets.errors(room.owner_connection)] == [
        ("not_found", "a0"),
        ("not_found", "a1"),
    ]
    assert "groupId" not in steps.get(foreign["id"])
