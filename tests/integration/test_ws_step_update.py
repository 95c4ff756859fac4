"""convoStepUpdate (ws.convo_step_update): content, annotations, and the primary of a group."""

from uuid import uuid4

from kallo.store import objects, search, steps
from kallo.store.keys import Ref
from tests.support import ws

sockets = ws.sockets
SAMPLE_STEP = "c3f1a2b4-5d6e-4f70-8a91-b2c3d4e5f607"


def test_the_author_edits_the_content(sockets, aws_calls):
    room = ws.room()
    ws.send(
        room.participant_connection, "convoNewStep", {"id": SAMPLE_STEP, "content": {"text": "Plan Lisbon"}}
    )
    sockets.clear()
    aws_calls.reset()
    assert ws.invoke("convo_step_update", room.participant_connection) == {"statusCode": 200}  # the sample
    # The connection, the check, the step, its update and the convo's latestStep, its words, the broadcast.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:UpdateItem": 2 + 1,  # + the message counted against the sender's rate
        "dynamodb:BatchWriteItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    expected = {"id": SAMPLE_STEP, "content": {"text": "Plan three days in Porto"}}
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStepUpdate", "payload": expected, "requestId": "req-6"}
    ]
    assert steps.get(SAMPLE_STEP)["content"] == expected["content"]
    assert objects.get(Ref("convo", room.convo_id))["latestStep"]["content"] == expected["content"]
    assert [p["stepId"] for p in search.postings("porto", limit=5).items] == [SAMPLE_STEP]
    assert search.postings("lisbon", limit=5).items == []


def test_who_may_change_what(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "owner's"}})
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "participant's"}})
    owners, participants = (m["id"] for m in sockets.payloads(room.viewer_connection, "convoNewStep"))
    answer = ws.llm_step(room.convo_id, owners)
    sockets.clear()
    source = str(uuid4())
    citation = {"type": "citation", "dataSourceId": source, "text": "Alfama", "start": 0, "end": 6}
    cases = [
        (room.participant_connection, {"id": owners, "content": {"text": "hijacked"}}, "permission_denied"),
        (room.viewer_connection, {"id": participants, "content": {"text": "x"}}, "permission_denied"),
        (room.owner_connection, {"id": answer["id"], "content": {"text": "better"}}, "not_editable"),
        (room.owner_connection, {"id": owners, "isAlternate": True}, "cannot_set_alternate"),
        (room.owner_connection, {"id": owners}, "validation_error"),
        (room.owner_connection, {"id": owners, "delta": "x"}, "validation_error"),
        (room.owner_connection, {"id": owners, "annotations": [{**citation, "end": -1}]}, "validation_error"),
        (room.owner_connection, {"id": str(uuid4()), "content": {"text": "x"}}, "not_found"),
    ]
    for position, (connection, payload, code) in enumerate(cases):
        ws.send(connection, "convoStepUpdate", payload, f"u{position}")
        error = sockets.errors(connection)[-1]
        assert (error["code"], error["requestId"]) == (code, f"u{position}"), payload
    assert sockets.receivers == {room.owner_connection, room.participant_connection, room.viewer_connection}
    assert not any(m["type"] == "convoStepUpdate" for _, m in sockets.frames)
    # The owner moderates the participant's step; anyone who chats annotates an answer.
    sockets.clear()
    ws.send(room.owner_connection, "convoStepUpdate", {"id": participants, "content": {"text": "[removed]"}})
    ws.send(room.participant_connection, "convoStepUpdate", {"id": answer["id"], "annotations": [citation]})
    assert sockets.payloads(room.viewer_connection, "convoStepUpdate") == [
        {"id": participants, "content": {"text": "[removed]"}},
        {"id": answer["id"], "annotations": [citation]},
    ]
    assert steps.get(answer["id"])["annotations"] == [citation]


def test_is_alternate_false_swaps_the_primary(sockets, aws_calls):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStepGroup", {"steps": [{"content": {"text": t}} for t in "abc"]})
    first, second, third = sockets.payloads(room.owner_connection, "convoNewStep")
    sockets.clear()
    aws_calls.reset()
    ws.send(room.owner_connection, "convoStepUpdate", {"id": second["id"], "isAlternate": False}, "s")
    # The connection, the check, the step, the group (Query + BatchGetItem), one transaction, the
    # convo's latestStep, two broadcasts (each a Query of the connections and 3 posts).
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 5,
        "dynamodb:BatchGetItem": 2,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 1 + 1,  # + the message counted against the sender's rate
        "apigatewaymanagementapi:PostToConnection": 6,
    }
    updates = sockets.payloads(room.viewer_connection, "convoStepUpdate")
    assert sorted(updates, key=lambda u: u["isAlternate"]) == [
        {"id": second["id"], "isAlternate": False},
        {"id": first["id"], "isAlternate": True},
    ]
    group = {s["id"]: s["isAlternate"] for s in steps.group(room.convo_id, first["groupId"])}
    assert group == {first["id"]: True, second["id"]: False, third["id"]: True}
    assert objects.get(Ref("convo", room.convo_id))["latestStep"]["id"] == second["id"]
