"""convoStepDeletion (ws.convo_step_deletion)."""

from uuid import uuid4

from kallo.store import objects, search, steps
from kallo.store.keys import Ref
from tests.support import ws

sockets = ws.sockets


def test_own_step_deleted_and_broadcast(sockets, aws_calls):
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "delete me"}})
    (made,) = sockets.payloads(room.participant_connection, "convoNewStep")
    sockets.clear()
    aws_calls.reset()
    # The sample message, naming the step the server made.
    answer = ws.invoke("convo_step_deletion", room.participant_connection, payload={"id": made["id"]})
    assert answer == {"statusCode": 200}
    # The check (the connection's item is kept since its last message), the step (GSI1), its deletion,
    # the convo's new latestStep (a Query and a conditional UpdateItem), its words, the broadcast.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 4,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:TransactWriteItems": 1,  # the step and the convo's updatedAt
        "dynamodb:UpdateItem": 1 + 1,  # + the message counted against the sender's rate
        "dynamodb:BatchWriteItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    for connection in (room.owner_connection, room.viewer_connection, room.participant_connection):
        assert sockets.to(connection) == [
            {"type": "convoStepDeletion", "payload": {"id": made["id"]}, "requestId": "req-4"}
        ]
    assert steps.get(made["id"]) is None and search.postings("delete", limit=5).items == []
    assert "latestStep" not in objects.get(Ref("convo", room.convo_id))


def test_someone_elses_step_needs_can_delete_steps(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "owner's"}})
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "participant's"}})
    owners, participants = (m["id"] for m in sockets.payloads(room.viewer_connection, "convoNewStep"))
    sockets.clear()
    ws.send(room.participant_connection, "convoStepDeletion", {"id": owners}, "p1")
    ws.send(room.viewer_connection, "convoStepDeletion", {"id": participants}, "v1")
    assert sockets.errors(room.participant_connection)[0]["code"] == "permission_denied"
    assert sockets.errors(room.viewer_connection)[0]["code"] == "permission_denied"
    assert sockets.receivers == {room.participant_connection, room.viewer_connection}
    ws.send(room.owner_connection, "convoStepDeletion", {"id": participants}, "o1")
    assert sockets.payloads(room.viewer_connection, "convoStepDeletion") == [{"id": participants}]
    assert [s["id"] for s in steps.of_convo(room.convo_id).items] == [owners]


def test_unknown_foreign_and_bad_ids(sockets):
    room, other = ws.room(), ws.room()
    ws.send(other.owner_connection, "convoNewStep", {"content": {"text": "elsewhere"}})
    foreign = sockets.payloads(other.owner_connection, "convoNewStep")[0]["id"]
    for request_id, payload in (
        ("u", {"id": str(uuid4())}),
        ("f", {"id": foreign}),
        ("b", {"id": "x"}),
        ("m", {}),
    ):
        ws.send(room.owner_connection, "convoStepDeletion", payload, request_id)
    assert [(e["code"], e["requestId"]) for e in sockets.errors(room.owner_connection)] == [
        ("not_found", "u"),
        ("not_found", "f"),
        ("validation_error", "b"),
        ("validation_error", "m"),
    ]
    assert steps.get(foreign) is not None


def test_deleting_a_primary_promotes_the_oldest_alternate(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStepGroup", {"steps": [{"content": {"text": t}} for t in "abc"]})
    first, second, third = sockets.payloads(room.owner_connection, "convoNewStep")
    sockets.clear()
    ws.send(room.owner_connection, "convoStepDeletion", {"id": first["id"]}, "d")
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStepDeletion", "payload": {"id": first["id"]}, "requestId": "d"},
        {"type": "convoStepUpdate", "payload": {"id": second["id"], "isAlternate": False}, "requestId": "d"},
    ]
    assert [(s["id"], s["isAlternate"]) for s in steps.group(room.convo_id, first["groupId"])] == [
        (second["id"], False),
        (third["id"], True),
    ]
    assert objects.get(Ref("convo", room.convo_id))["latestStep"]["id"] == second["id"]
