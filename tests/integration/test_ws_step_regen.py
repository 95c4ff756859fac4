"""convoStepRegen (ws.convo_step_regen)."""

from uuid import uuid4

from kallo.store import steps
from tests.support import ws

sockets = ws.sockets
SAMPLE_LLM_STEP = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"


def test_a_finished_answer_is_regenerated_in_its_place(sockets, aws_calls):
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "Plan three days in Lisbon"}})
    question = sockets.payloads(room.owner_connection, "convoNewStep")[0]
    answer = ws.llm_step(room.convo_id, question["id"], step_id=SAMPLE_LLM_STEP)  # the sample's
    sockets.clear()
    aws_calls.reset()
    assert ws.invoke("convo_step_regen", room.participant_connection) == {"statusCode": 200}
    # The check (the connection's item is kept since its last message), the step, its deletion and the
    # latestStep (Query + UpdateItem), its words, the broadcast, the job.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 4,
        "dynamodb:BatchGetItem": 1 + 1,  # + the token budgets
        "dynamodb:TransactWriteItems": 1,  # the step's deletion and the convo's updatedAt
        "dynamodb:UpdateItem": 1 + 1,  # + the message counted against the sender's rate
        "dynamodb:BatchWriteItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
        "sqs:SendMessage": 1,
    }
    config = {"model": "embedded:smollm2", "temperature": 0.2}
    assert sockets.to(room.viewer_connection) == [
        {"type": "convoStepRegen", "payload": {"id": SAMPLE_LLM_STEP, "config": config}, "requestId": "req-5"}
    ]
    assert steps.get(SAMPLE_LLM_STEP) is None
    (job,) = ws.reply_jobs()
    assert job["replyToStepId"] == question["id"] and job["createdAt"] == answer["createdAt"]
    assert job["config"] == config and job["messageGroupId"] == room.convo_id
    assert job["llmStepId"] != SAMPLE_LLM_STEP and job["jobId"] == job["deduplicationId"]
    assert job["requestedBy"] == room.participant.user_id


def test_what_cannot_be_regenerated(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "question"}})
    question = sockets.payloads(room.owner_connection, "convoNewStep")[0]
    running = ws.llm_step(room.convo_id, question["id"], status="running")
    failed = ws.llm_step(room.convo_id, question["id"], status="failed")
    sockets.clear()
    cases = [
        ("running", {"id": running["id"]}, "not_regenerable"),
        ("user", {"id": question["id"]}, "not_regenerable"),
        ("unknown", {"id": str(uuid4())}, "not_found"),
        ("bad", {"id": failed["id"], "config": {"maxTokens": 0}}, "validation_error"),
        # I10: a regen may not switch to a model off the allow-list or ask for more than the cap.
        (
            "opus",
            {"id": failed["id"], "config": {"model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}},
            "unknown_model",
        ),
        ("huge", {"id": failed["id"], "config": {"maxTokens": 32768}}, "max_tokens_too_large"),
        # I6: nor name a data source its requester cannot view.
        ("theirs", {"id": failed["id"], "config": {"dataSourceIds": [str(uuid4())]}}, "not_found"),
    ]
    for request_id, payload, _ in cases:
        ws.send(room.owner_connection, "convoStepRegen", payload, request_id)
    assert [(e["requestId"], e["code"]) for e in sockets.errors(room.owner_connection)] == [
        (r, c) for r, _, c in cases
    ]
    ws.send(room.viewer_connection, "convoStepRegen", {"id": failed["id"]}, "v")
    assert sockets.errors(room.viewer_connection)[0]["code"] == "permission_denied"
    assert ws.reply_jobs() == [] and steps.get(failed["id"]) is not None
    ws.send(room.owner_connection, "convoStepRegen", {"id": failed["id"]}, "ok")
    assert [j["replyToStepId"] for j in ws.reply_jobs()] == [question["id"]]
