"""Delete Step: DELETE /steps/{stepId} → 204, broadcast as convoStepDeletion."""

from uuid import uuid4

from kallo.store import objects, steps
from kallo.store.keys import Ref
from tests.support import ws
from tests.support.api import invoke
from tests.support.world import make_service_account, make_user

sockets = ws.sockets


def delete(principal, step_id: str):
    return invoke("steps.delete_step", principal, path={"stepId": step_id})


def test_delete_and_broadcast(sockets, aws_calls):
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "to be deleted"}})
    (step,) = sockets.payloads(room.owner_connection, "convoNewStep")
    sockets.clear()
    before = objects.get(Ref("convo", room.convo_id))["updatedAt"]
    aws_calls.reset()
    result = delete(room.participant, step["id"])
    assert result.status == 204 and result.body == ""
    # The step (GSI1), the check, its deletion with the convo's updatedAt (one transaction), the
    # convo's latestStep (Query + UpdateItem), its words, the broadcast.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 4,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 1,
        "dynamodb:BatchWriteItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStepDeletion", "payload": {"id": step["id"]}}
    ]
    assert steps.get(step["id"]) is None
    assert objects.get(Ref("convo", room.convo_id))["updatedAt"] > before
    assert delete(room.participant, step["id"]).status == 404  # gone


def test_permissions_and_probes(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "owner's"}})
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "participant's"}})
    owners, participants = (s["id"] for s in sockets.payloads(room.viewer_connection, "convoNewStep"))
    assert delete(make_user(), owners).status == 404  # a hidden step is not found
    assert delete(room.viewer, participants).status == 403
    refused = delete(room.participant, owners)
    assert refused.status == 403 and refused.json["code"] == "permission_denied"
    assert delete(room.owner, str(uuid4())).status == 404
    assert delete(room.owner, "x").status == 422
    assert delete(None, owners).status == 401
    assert delete(room.owner, participants).status == 204  # can_delete_steps
    assert [s["id"] for s in steps.of_convo(room.convo_id).items] == [owners]


def test_another_tenants_step_is_told_as_missing(sockets):
    """I7 (errors): tenant B deleting tenant A's step learns nothing, not even the id of its convo."""
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "tenant A's"}})
    (step,) = sockets.payloads(room.owner_connection, "convoNewStep")
    tenant_b, _ = make_service_account("tenant B")
    hidden = delete(tenant_b, step["id"])
    missing = delete(tenant_b, str(uuid4()))
    assert hidden.status == missing.status == 404
    assert hidden.json == {"code": missing.json["code"], "message": f"step {step['id']} not found"}
    assert room.convo_id not in hidden.body
    assert steps.get(step["id"]) is not None
