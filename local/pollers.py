"""SQS event sources, as Lambda's event source mappings run them: for every function of the template
with an `SQS` event, a thread long-polls the queue in the embedded SQS, invokes the function with a
batch of up to `BatchSize` records, deletes the messages that succeeded and leaves the others to come
back after the queue's visibility timeout (and to its dead-letter queue after `maxReceiveCount`).

With `FunctionResponseTypes: [ReportBatchItemFailures]` the function names the failed messages in
`batchItemFailures`; without it, or when the function raises, the batch succeeds or fails as a whole.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3

from local.runtime import LocalFunction
from local.template import REGION, Resolver, functions

logger = logging.getLogger(__name__)

# Each receive waits at most this long for messages, so stopping the stack never waits longer.
RECEIVE_WAIT_SECONDS = 1
_MAX_MESSAGES_PER_CALL = 10  # SQS's limit for ReceiveMessage and DeleteMessageBatch


@dataclass(frozen=True)
class SqsSource:
    function: str  # logical id
    queue_url: str
    queue_arn: str
    batch_size: int
    report_item_failures: bool


def sqs_sources(template: dict[str, Any], physical: dict[str, dict[str, str]]) -> list[SqsSource]:
    """The `SQS` events of the template's functions, with their queues' physical ids."""
    resolver = Resolver(template, physical)
    urls_by_arn = {ids["Arn"]: ids["QueueUrl"] for ids in physical.values() if "QueueUrl" in ids}
    sources = []
    for logical_id, resource in functions(template).items():
        for name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] != "SQS":
                continue
            properties = resolver.resolve(event["Properties"])
            arn = properties["Queue"]
            if arn not in urls_by_arn:
                logger.warning(
                    "%s event %s: queue %s is not in the template, not polled", logical_id, name, arn
                )
                continue
            sources.append(
                SqsSource(
                    function=logical_id,
                    queue_url=urls_by_arn[arn],
                    queue_arn=arn,
                    batch_size=int(properties.get("BatchSize", 10)),  # Lambda's default
                    report_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or []),
                )
            )
    return sources


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def sqs_record(message: dict[str, Any], source: SqsSource) -> dict[str, Any]:
    """One record of a Lambda SQS event, from a ReceiveMessage message."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(result: Any, message_ids: Iterable[str]) -> set[str]:
    """The messages of a batch that Lambda would leave on the queue, given the function's result under
    ReportBatchItemFailures: no result or no failures is a full success; an answer Lambda cannot
    read, or one naming an unknown message, fails the whole batch."""
    every = set(message_ids)
    if result is None:
        return set()
    if not isinstance(result, dict):
        return every
    failures = result.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return every
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in every:
            return every
        failed.add(identifier)
    return failed


class SqsPoller:
    """Feeds one queue to one function."""

    def __init__(self, source: SqsSource, function: LocalFunction, sqs: Any) -> None:
        self.source = source
        self.function = function
        self.sqs = sqs

    def poll_once(self, wait_seconds: int = RECEIVE_WAIT_SECONDS) -> int:
        """Receive one batch (waiting up to `wait_seconds` for its first message) and process it;
        returns the number of messages received."""
        messages = self._receive(wait_seconds)
        if messages:
            self._process(messages)
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                # An SQS call failed (e.g. the embedded services are stopping): keep the thread alive.
                logger.exception("polling %s for %s failed", self.source.queue_url, self.source.function)
                stop.wait(RECEIVE_WAIT_SECONDS)

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.source.batch_size:
            received = self.sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(_MAX_MESSAGES_PER_CALL, self.source.batch_size - len(batch)),
                # Only the first call waits: a batch is whatever is there once something arrived.
                WaitTimeSeconds=0 if batch else wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            batch.extend(received)
        return batch

    def _process(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.source) for m in messages]}
        name = self.function.logical_id
        try:
            result = self.function.invoke(event)
        except ImportError:
            logger.exception("%s: its handler %s cannot be imported", name, self.function.handler_name)
            return
        except Exception:
            logger.exception("%s raised on a batch of %d: all of it will be redelivered", name, len(messages))
            return
        ids = [m["MessageId"] for m in messages]
        failed = failed_message_ids(result, ids) if self.source.report_item_failures else set()
        if failed:
            logger.warning(
                "%s: %d of %d messages failed and will be redelivered", name, len(failed), len(ids)
            )
        self._delete([m for m in messages if m["MessageId"] not in failed])

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _MAX_MESSAGES_PER_CALL):
            chunk = messages[start : start + _MAX_MESSAGES_PER_CALL]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            response = self.sqs.delete_message_batch(QueueUrl=self.source.queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.warning("could not delete a message from %s: %s", self.source.queue_url, failure)


class Pollers:
    """One daemon thread per SQS event source (daemon: a handler stuck in a long call must not keep
    the process alive once the stack is told to stop)."""

    def __init__(self, pollers: list[SqsPoller]) -> None:
        self.pollers = pollers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_template(
        cls,
        template: dict[str, Any],
        physical: dict[str, dict[str, str]],
        functions_: dict[str, LocalFunction],
        *,
        endpoint_url: str | None = None,
    ) -> Pollers:
        sources = sqs_sources(template, physical)
        sqs = (
            boto3.session.Session(region_name=REGION).client("sqs", endpoint_url=endpoint_url)
            if sources
            else None
        )
        return cls([SqsPoller(s, functions_[s.function], sqs) for s in sources])

    def start(self) -> None:
        for poller in self.pollers:
            thread = threading.Thread(
                target=poller.run, args=(self._stop,), name=f"poller-{poller.source.function}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; wait at most `timeout` seconds in all for the handlers still running."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s is still busy in its handler; leaving it behind", thread.name)
        self._threads.clear()
