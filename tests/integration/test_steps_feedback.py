"""Set Step Feedback (PUT /steps/{stepId}/feedback) and Remove Step Feedback (DELETE ...): the caller's
feedback, the answer's counts over REST and in convoStepUpdate, the refusals, and their AWS calls."""

from uuid import uuid4

from kallo.store import feedback
from tests.support import ws
from tests.support.api import invoke
from tests.support.world import make_service_account, make_user

sockets = ws.sockets


def put(principal, step_id: str, body=None):
    return invoke("steps.set_step_feedback", principal, path={"stepId": step_id}, body=body)


def delete(principal, step_id: str):
    return invoke("steps.remove_step_feedback", principal, path={"stepId": step_id})


def steps_of(room: ws.Room):
    listed = invoke("convos.query_convo_steps", room.owner, path={"convoId": room.convo_id})
    assert listed.status == 200, listed.body
    return {s["id"]: s for s in listed.json}


def scene():
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "Plan three days in Lisbon"}})
    question = steps_of(room).popitem()[1]
    return room, question, ws.llm_step(room.convo_id, question["id"])


def test_a_like_its_replacement_and_its_removal(sockets, aws_calls):
    room, question, answer = scene()
    sockets.clear()
    aws_calls.reset()
    # The sample body: {"rating": "like", "comment": "Clear and to the point."}; a viewer may rate.
    liked = put(room.viewer, answer["id"])
    assert liked.status == 200, liked.body
    assert {k: liked.json[k] for k in ("stepId", "userId", "rating", "comment")} == {
        "stepId": answer["id"],
        "userId": room.viewer.user_id,
        "rating": "like",
        "comment": "Clear and to the point.",
    }
    assert liked.json["createdAt"] == liked.json["updatedAt"]
    # The step (GSI1), the check, the caller's feedback, one transaction, the counts read back, and the
    # broadcast to 3 connections (checked for the question's broadcast already, I8).
    budget = {
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:GetItem": 2,
        "dynamodb:TransactWriteItems": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    assert dict(aws_calls.calls) == budget
    update = {"id": answer["id"], "feedback": {"likes": 1, "dislikes": 0}}
    for connection in (room.owner_connection, room.participant_connection, room.viewer_connection):
        assert sockets.payloads(connection, "convoStepUpdate") == [update]
    listed = steps_of(room)
    assert listed[answer["id"]]["feedback"] == {"likes": 1, "dislikes": 0}
    assert listed[question["id"]]["feedback"] is None  # a user step takes no feedback

    sockets.clear()
    aws_calls.reset()
    replaced = put(room.viewer, answer["id"], {"rating": "dislike"})
    assert (
        replaced.status == 200 and replaced.json["rating"] == "dislike" and replaced.json["comment"] is None
    )
    assert replaced.json["createdAt"] == liked.json["createdAt"]
    assert dict(aws_calls.calls) == budget
    assert sockets.payloads(room.viewer_connection, "convoStepUpdate") == [
        {"id": answer["id"], "feedback": {"likes": 0, "dislikes": 1}}
    ]
    put(room.owner, answer["id"], {"rating": "dislike"})
    assert steps_of(room)[answer["id"]]["feedback"] == {"likes": 0, "dislikes": 2}

    sockets.clear()
    aws_calls.reset()
    removed = delete(room.viewer, answer["id"])
    assert removed.status == 204 and removed.body == ""
    assert dict(aws_calls.calls) == budget
    assert sockets.payloads(room.owner_connection, "convoStepUpdate") == [
        {"id": answer["id"], "feedback": {"likes": 0, "dislikes": 1}}
    ]
    aws_calls.reset()
    again = delete(room.viewer, answer["id"])
    assert again.status == 404 and again.json["code"] == "not_found"
    # The step, the check, the caller's feedback: nothing written.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1, "dynamodb:GetItem": 1}


def test_refusals(sockets):
    room, question, answer = scene()
    user_step = put(room.owner, question["id"], {"rating": "like"})
    assert user_step.status == 422 and user_step.json["code"] == "not_an_answer"
    assert delete(room.owner, question["id"]).json["code"] == "not_an_answer"
    assert put(room.outsider, answer["id"], {"rating": "like"}).status == 404  # hidden
    assert put(room.owner, str(uuid4()), {"rating": "like"}).status == 404
    assert put(room.owner, "nope", {"rating": "like"}).status == 422
    for body in (
        {},
        {"rating": "love"},
        {"rating": None},
        {"rating": "like", "comment": "x" * 2001},
        {"rating": "like", "comment": "bell\u0007"},
        {"rating": "like", "stepId": answer["id"]},
        [],
    ):
        result = put(room.owner, answer["id"], body)
        assert result.status == 422 and result.json["code"] == "validation_error", body
    bad = invoke("steps.set_step_feedback", room.owner, path={"stepId": answer["id"]}, raw_body="{")
    assert bad.status == 400 and bad.json["code"] == "malformed_json"
    assert steps_of(room)[answer["id"]]["feedback"] == {"likes": 0, "dislikes": 0}


def test_another_tenants_answer_is_told_as_missing(sockets):
    """I4/I7: tenant B rating tenant A's answer learns nothing, not even the id of its convo, and
    changes nothing."""
    room, _, answer = scene()
    tenant_b, _ = make_service_account("tenant B")
    for attacker in (tenant_b, make_user()):
        hidden = put(attacker, answer["id"], {"rating": "dislike"})
        missing_id = str(uuid4())
        missing = put(attacker, missing_id, {"rating": "dislike"})
        assert hidden.status == missing.status == 404
        assert hidden.json == {"code": "not_found", "message": f"step {answer['id']} not found"}
        assert room.convo_id not in hidden.body
        removed = delete(attacker, answer["id"])
        assert removed.status == 404 and room.convo_id not in removed.body
    assert steps_of(room)[answer["id"]]["feedback"] == {"likes": 0, "dislikes": 0}


def test_deleting_a_rated_answer_deletes_its_feedback(sockets, aws_calls):
    """Delete Step of an answer someone rated costs one Query and one BatchWriteItem more than of one
    nobody rated (its feedback items); a new answer's ratings start from nothing."""
    room, question, rated = scene()
    unrated = ws.llm_step(room.convo_id, question["id"])
    assert put(room.viewer, rated["id"], {"rating": "like"}).status == 200
    costs = []
    for answer in (unrated, rated):
        aws_calls.reset()
        deleted = invoke("steps.delete_step", room.owner, path={"stepId": answer["id"]})
        assert deleted.status == 204, deleted.body
        costs.append(dict(aws_calls.calls))
    extra = {k: costs[1].get(k, 0) - costs[0].get(k, 0) for k in {*costs[0], *costs[1]}}
    assert {k: v for k, v in extra.items() if v} == {"dynamodb:Query": 1, "dynamodb:BatchWriteItem": 1}
    assert feedback.ratings(room.viewer.user_id, [rated["id"]]) == {}
    assert delete(room.viewer, rated["id"]).status == 404
