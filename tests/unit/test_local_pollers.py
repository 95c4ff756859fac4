"""SQS pollers against the template's queues in moto, feeding a fake worker that records its batches
and fails the messages it is told to."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local import template
from local.pollers import Pollers, SqsPoller, SqsSource, failed_message_ids, sqs_sources
from local.runtime import LocalFunction

WORKER = "local_pollers_fake_worker"
WORKER_SOURCE = textwrap.dedent(
    '''
    """A fake SQS worker: records batches; a body "fail" is a failed item, "raise" fails the batch."""
    batches = []


    def handler(event, context):
        batches.append(event)
        bodies = [r["body"] for r in event["Records"]]
        if "raise" in bodies:
            raise RuntimeError("the whole batch fails")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]
        return {"batchItemFailures": failures}
    '''
)
TEMPLATE = template.load()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("workers")
    (directory / f"{WORKER}.py").write_text(WORKER_SOURCE)
    sys.path.insert(0, str(directory))
    module = __import__(WORKER)
    yield module
    sys.path.remove(str(directory))
    sys.modules.pop(WORKER, None)


@pytest.fixture
def sqs(aws: dict[str, dict[str, str]]) -> Any:
    return boto3.client("sqs", region_name=template.REGION)


@pytest.fixture
def source(aws: dict[str, dict[str, str]]) -> SqsSource:
    return next(s for s in sqs_sources(TEMPLATE, aws) if s.function == "PurgeWorkerFunction")


def poller_for(source: SqsSource, sqs: Any, worker: Any, **overrides: Any) -> SqsPoller:
    worker.batches.clear()
    function = LocalFunction("FakeWorker", f"{WORKER}.handler", timeout=10, memory=128)
    fields = {**source.__dict__, **overrides}
    return SqsPoller(SqsSource(**fields), function, sqs)


def send(sqs: Any, source: SqsSource, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(
            QueueUrl=source.queue_url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )


def counts(sqs: Any, source: SqsSource) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=source.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_sources_come_from_the_template(aws: dict[str, dict[str, str]]) -> None:
    assert sqs_sources(TEMPLATE, aws) == [
        SqsSource(
            function=function,
            queue_url=aws[queue]["QueueUrl"],
            queue_arn=aws[queue]["Arn"],
            batch_size=5,
            report_item_failures=True,
        )
        for function, queue in (
            ("StepWorkerFunction", "StepQueue"),
            ("DataSourceWorkerFunction", "DataSourceQueue"),
            ("ExportWorkerFunction", "ExportQueue"),
            ("PurgeWorkerFunction", "PurgeQueue"),
        )
    ] + [
        SqsSource(
            function="StreamWorkerFunction",
            queue_url=aws["StreamQueue"]["QueueUrl"],
            queue_arn=aws["StreamQueue"]["Arn"],
            batch_size=10,
            report_item_failures=True,
        )
    ]


def test_a_batch_is_a_lambda_sqs_event(sqs: Any, source: SqsSource, worker: Any) -> None:
    send(sqs, source, json.dumps({"purge": "convo"}))
    assert poller_for(source, sqs, worker).poll_once(wait_seconds=0) == 1
    (record,) = worker.batches[0]["Records"]
    assert record["body"] == '{"purge": "convo"}'
    assert record["messageId"] and record["receiptHandle"] and record["md5OfBody"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == source.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "test", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    assert counts(sqs, source) == (0, 0)


def test_failed_items_stay_and_the_rest_are_deleted(sqs: Any, source: SqsSource, worker: Any) -> None:
    send(sqs, source, "a", "fail", "b")
    poller_for(source, sqs, worker).poll_once(wait_seconds=0)
    assert sorted(r["body"] for r in worker.batches[0]["Records"]) == ["a", "b", "fail"]
    # The failed message waits out the queue's visibility timeout before it comes back.
    assert counts(sqs, source) == (0, 1)


def test_a_raising_handler_leaves_the_whole_batch(sqs: Any, source: SqsSource, worker: Any) -> None:
    send(sqs, source, "a", "raise")
    poller_for(source, sqs, worker).poll_once(wait_seconds=0)
    assert counts(sqs, source) == (0, 2)


def test_without_report_batch_item_failures_the_batch_succeeds_whole(
    sqs: Any, source: SqsSource, worker: Any
) -> None:
    send(sqs, source, "a", "fail")
    poller_for(source, sqs, worker, report_item_failures=False).poll_once(wait_seconds=0)
    assert counts(sqs, source) == (0, 0)


def test_batches_hold_at_most_batch_size(sqs: Any, source: SqsSource, worker: Any) -> None:
    send(sqs, source, *[f"m{i}" for i in range(7)])
    poller = poller_for(source, sqs, worker, batch_size=5)
    assert poller.poll_once(wait_seconds=0) == 5
    assert poller.poll_once(wait_seconds=0) == 2
    assert [len(b["Records"]) for b in worker.batches] == [5, 2]


def test_a_handler_that_cannot_be_imported_is_logged_not_fatal(
    sqs: Any, source: SqsSource, caplog: pytest.LogCaptureFixture
) -> None:
    send(sqs, source, "a")
    missing = LocalFunction("Missing", "no_such_worker_module.handler", timeout=10, memory=128)
    assert SqsPoller(source, missing, sqs).poll_once(wait_seconds=0) == 1
    assert "no_such_worker_module.handler cannot be imported" in caplog.text
    assert counts(sqs, source) == (0, 1)


def test_poller_threads_deliver_and_stop_quickly(sqs: Any, source: SqsSource, worker: Any) -> None:
    pollers = Pollers([poller_for(source, sqs, worker)])
    pollers.start()
    try:
        send(sqs, source, "a")
        deadline = time.monotonic() + 10
        while not worker.batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.batches
    finally:
        started = time.monotonic()
        pollers.stop()
    assert time.monotonic() - started < 3
    assert not [t for t in threading.enumerate() if t.name.startswith("poller-")]


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "2"}]}, {"2"}),
        ({"batchItemFailures": [{"itemIdentifier": "9"}]}, {"1", "2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"1", "2"}),
        ({"batchItemFailures": [{"id": "1"}]}, {"1", "2"}),
        ({"batchItemFailures": "1"}, {"1", "2"}),
        ("ok", {"1", "2"}),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(result: Any, failed: set[str]) -> None:
    assert failed_message_ids(result, ["1", "2"]) == failed
