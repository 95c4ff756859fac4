"""convoStepUpdate (ws.convo_step_update): content, annotations, and the primary of a group."""

from uuid import uuid4

from kallo.store import objects, search, steps
from kallo.store.keys import Ref
from tests.support import ws
from tests.support.world import make_object, make_service_account, make_user, ref_of

sockets = ws.sockets


def test_the_author_edits_the_content(sockets, aws_calls):
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "Plan Lisbon"}})
    (made,) = sockets.payloads(room.participant_connection, "convoNewStep")
    sockets.clear()
    before = objects.get(Ref("convo", room.convo_id))["updatedAt"]
    aws_calls.reset()
    # The sample message, naming the step the server made.
    sample = {"id": made["id"], "content": {"text": "Plan three days in Porto"}}
    assert ws.invoke("convo_step_update", room.participant_connection, payload=sample) == {"statusCode": 200}
    # The check (the connection's item is kept since its last message), the step, its update with the
    # convo's updatedAt (one transaction) and the convo's latestStep, its words, the broadcast.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 1 + 1,  # + the message counted against the sender's rate
        "dynamodb:BatchWriteItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    expected = sample
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStepUpdate", "payload": expected, "requestId": "req-6"}
    ]
    assert steps.get(made["id"])["content"] == expected["content"]
    convo = objects.get(Ref("convo", room.convo_id))
    assert convo["latestStep"]["content"] == expected["content"] and convo["updatedAt"] > before
    assert [p["stepId"] for p in search.postings("porto", limit=5).items] == [made["id"]]
    assert search.postings("lisbon", limit=5).items == []


def test_who_may_change_what(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "owner's"}})
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "participant's"}})
    owners, participants = (m["id"] for m in sockets.payloads(room.viewer_connection, "convoNewStep"))
    answer = ws.llm_step(room.convo_id, owners)
    sockets.clear()
    source = make_object("data_source", ref_of(room.participant)).id
    theirs = make_object("data_source", ref_of(make_user(admin=make_service_account("b")[0]))).id
    citation = {"type": "citation", "dataSourceId": source, "text": "Alfama", "start": 0, "end": 6}
    huge = [{"dataSourceId": source, "text": "x" * 4096}] * 100
    cases = [
        (room.participant_connection, {"id": owners, "content": {"text": "hijacked"}}, "permission_denied"),
        (room.viewer_connection, {"id": participants, "content": {"text": "x"}}, "permission_denied"),
        (room.owner_connection, {"id": answer["id"], "content": {"text": "better"}}, "not_editable"),
        (room.owner_connection, {"id": owners, "isAlternate": True}, "cannot_set_alternate"),
        (room.owner_connection, {"id": owners}, "validation_error"),
        (room.owner_connection, {"id": owners, "delta": "x"}, "validation_error"),
        (room.owner_connection, {"id": owners, "annotations": [{**citation, "end": -1}]}, "validation_error"),
        (room.owner_connection, {"id": str(uuid4()), "content": {"text": "x"}}, "not_found"),
        # I6: a citation names only a data source the writer can view (another tenant's: not found).
        (
            room.owner_connection,
            {"id": owners, "annotations": [{**citation, "dataSourceId": theirs}]},
            "not_found",
        ),
        # 400 KB of citations would make a step no frame can carry.
        (room.participant_connection, {"id": answer["id"], "annotations": huge}, "payload_too_large"),
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
    # The check (the connection's item is kept since its last message), the step, the group (Query +
    # BatchGetItem), one transaction, the convo's latestStep, two broadcasts (each a Query of the
    # connections and 3 posts).
    assert dict(aws_calls.calls) == {
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
