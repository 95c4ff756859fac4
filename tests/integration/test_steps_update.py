"""Update Step: PATCH /steps/{stepId} {isAlternate: false} → 200 step, broadcast as convoStepUpdate."""

from uuid import uuid4

from kallo.store import steps
from tests.support import ws
from tests.support.api import invoke
from tests.support.world import make_service_account, make_user

sockets = ws.sockets


def patch(principal, step_id: str, body=None):
    return invoke("steps.update_step", principal, path={"stepId": step_id}, body=body)


def test_an_alternate_becomes_the_primary(sockets, aws_calls):
    room = ws.room()
    ws.send(
        room.participant_connection, "convoNewStepGroup", {"steps": [{"content": {"text": t}} for t in "abc"]}
    )
    first, second, third = sockets.payloads(room.owner_connection, "convoNewStep")
    sockets.clear()
    aws_calls.reset()
    result = patch(room.participant, third["id"])  # the sample body: {"isAlternate": false}
    assert result.status == 200, result.body
    assert result.json["id"] == third["id"] and result.json["isAlternate"] is False
    assert result.json["groupId"] == first["groupId"] and result.json["updatedAt"] >= third["updatedAt"]
    # The step (GSI1), the check, the group, one transaction, the convo's latestStep, 2 broadcasts.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 5,
        "dynamodb:BatchGetItem": 2,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 1,
        "apigatewaymanagementapi:PostToConnection": 6,
    }
    assert sorted(
        sockets.payloads(room.viewer_connection, "convoStepUpdate"), key=lambda u: u["isAlternate"]
    ) == [
        {"id": third["id"], "isAlternate": False},
        {"id": first["id"], "isAlternate": True},
    ]
    assert all("requestId" not in m for _, m in sockets.frames)
    group = {s["id"]: s["isAlternate"] for s in steps.group(room.convo_id, first["groupId"])}
    assert group == {first["id"]: True, second["id"]: True, third["id"]: False}
    # Already the primary: 200, nothing broadcast.
    sockets.clear()
    assert patch(room.participant, third["id"]).json["isAlternate"] is False and sockets.frames == []


def test_refusals(sockets):
    room = ws.room()
    ws.send(
        room.participant_connection, "convoNewStepGroup", {"steps": [{"content": {"text": t}} for t in "ab"]}
    )
    _, second = sockets.payloads(room.owner_connection, "convoNewStep")
    true = patch(room.participant, second["id"], {"isAlternate": True})
    assert true.status == 400 and true.json["code"] == "cannot_set_alternate"
    assert patch(room.viewer, second["id"]).status == 403  # can view, cannot chat
    assert patch(make_user(), second["id"]).status == 404  # hidden
    assert patch(room.owner, str(uuid4())).status == 404
    assert patch(room.participant, "nope").status == 422
    for body in (
        {},
        {"isAlternate": "maybe"},
        {"isAlternate": None},
        {"isAlternate": False, "content": {"text": "x"}},
    ):
        result = patch(room.participant, second["id"], body)
        assert result.status == 422 and result.json["code"] == "validation_error", body
    bad = invoke("steps.update_step", room.participant, path={"stepId": second["id"]}, raw_body="{")
    assert bad.status == 400 and bad.json["code"] == "malformed_json"
    assert steps.get(second["id"])["isAlternate"] is True
    # The owner may choose among the participant's steps (can_delete_steps).
    assert patch(room.owner, second["id"]).status == 200


def test_another_tenants_step_is_told_as_missing(sockets):
    """I7 (errors): tenant B patching tenant A's step learns nothing, not even the id of its convo."""
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "tenant A's"}})
    (step,) = sockets.payloads(room.owner_connection, "convoNewStep")
    tenant_b, _ = make_service_account("tenant B")
    hidden = patch(tenant_b, step["id"])
    missing_id = str(uuid4())
    missing = patch(tenant_b, missing_id)
    assert hidden.status == missing.status == 404
    assert hidden.json == {"code": missing.json["code"], "message": f"step {step['id']} not found"}
    assert missing.json["message"] == f"step {missing_id} not found"
    assert room.convo_id not in hidden.body
    assert steps.get(step["id"])["content"] == {"text": "tenant A's"}
