"""The identifiers stream's WebSocket side through its handlers: `$connect` with
`?stream=conversation-identifiers` (ws.connect), the stream worker's first snapshot
(workers.streams), a message sent on a stream, and `$disconnect`."""

from __future__ import annotations

import json

from kallo import aws as kallo_aws
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.realtime import identifiers
from kallo.services import convos
from kallo.settings import get_settings
from kallo.store import connections
from tests.support import ws
from tests.support.api import LambdaContext
from tests.support.world import make_service_account

sockets = ws.sockets
STREAM = {"stream": "conversation-identifiers"}


def connect(connection_id: str, headers: dict[str, str], query: dict[str, str]) -> dict:
    return ws.invoke("connect", connection_id, headers={"Host": "localhost", **headers}, query=query)


def greeting_jobs() -> list[dict]:
    sqs, url = kallo_aws.client("sqs"), get_settings().stream_queue_url
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )
    return [{"body": m["Body"], "messageId": m["MessageId"]} for m in messages]


def run_worker(jobs: list[dict]) -> dict:
    from workers import streams

    records = [
        {
            "messageId": j["messageId"],
            "receiptHandle": "r",
            "body": j["body"],
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kallo-local-StreamQueue",
            "awsRegion": "us-east-1",
        }
        for j in jobs
    ]
    return streams.lambda_handler({"Records": records}, LambdaContext())


def test_a_stream_connects_and_is_greeted_with_its_snapshot(aws, sockets, aws_calls):
    account, key = make_service_account()
    mine = convos.create_convo(Access(account), ConvoCreate(name="mine"))["id"]
    other, _ = make_service_account("other")
    convos.create_convo(Access(other), ConvoCreate(name="another tenant's"))
    aws_calls.reset()
    assert connect("s1=", {"x-api-key": key}, STREAM) == {"statusCode": 200}
    # The key; the two connection items; the greeting job.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "sqs:SendMessage": 1,
    }
    stored = connections.get("s1=")
    assert stored["stream"] == identifiers.STREAM and stored["userId"] == account.user_id
    assert "convoId" not in stored and stored["apiKeyHash"]
    jobs = greeting_jobs()
    assert [json.loads(j["body"]) for j in jobs] == [{"type": "greet", "connectionId": "s1="}]
    assert run_worker(jobs) == {"batchItemFailures": []}
    assert ws.snapshots(sockets, "s1=") == [[mine]]
    # Later changes reach it too.
    newer = convos.create_convo(Access(account), ConvoCreate())["id"]
    assert ws.snapshots(sockets, "s1=")[-1] == [newer, mine]


def test_refusals(aws, sockets):
    _, key = make_service_account()
    no_credentials = connect("s2=", {}, STREAM)
    assert no_credentials["statusCode"] == 401
    for query in (
        {"stream": "everything"},
        {"stream": "conversation-identifiers", "convoId": "x"},
        {"stream": ""},
    ):
        refused = connect("s3=", {"x-api-key": key}, query)
        assert refused["statusCode"] == 400 and json.loads(refused["body"])["code"] == "invalid_stream", query
    assert connections.get("s2=") is None and connections.get("s3=") is None
    assert greeting_jobs() == []


def test_a_message_on_a_stream_is_refused_and_disconnect_forgets_it(aws, sockets):
    account, key = make_service_account()
    assert connect("s4=", {"x-api-key": key}, STREAM) == {"statusCode": 200}
    ws.send("s4=", "convoNewStep", {"content": {"text": "hello"}})
    [error] = [m for m in sockets.to("s4=") if m.get("type") == "error"]
    assert error["payload"]["code"] == "stream_takes_no_messages"
    assert connections.get("s4=") is not None
    assert ws.invoke("disconnect", "s4=") == {"statusCode": 200}
    assert connections.get("s4=") is None and connections.streams_of(account.user_id) == []


def test_a_malformed_job_fails_its_record_and_a_stale_one_is_done(aws, sockets):
    bad = [
        {"body": "{}", "messageId": "m1"},
        {"body": '{"type": "greet", "connectionId": "gone="}', "messageId": "m2"},
    ]
    # SQS delivers the malformed job again, then moves it to the dead-letter queue.
    assert run_worker(bad) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert sockets.frames == []
