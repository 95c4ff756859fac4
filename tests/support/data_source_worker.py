"""The data source worker (workers.data_source) as SQS drives it, for tests and bench/upload.py: the
messages waiting on its queue (S3's upload notifications, summary jobs) taken as SQS records, and one
batch run through the handler."""

from __future__ import annotations

import copy
import json
from typing import Any
from uuid import uuid4

from workers import data_source as worker

from kallo import aws
from kallo.settings import get_settings
from local.runtime import LambdaContext
from tests.support.api import EVENTS

SAMPLE = json.loads((EVENTS / "workers" / "data_source.json").read_text())["Records"][0]


def context(seconds: float = 300) -> LambdaContext:
    return LambdaContext.starting("DataSourceWorkerFunction", memory=1024, seconds=seconds)


def record(body: str) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLE), "messageId": str(uuid4()), "body": body}


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the worker with one batch; returns the ids of the messages it reports as failed."""
    response = worker.lambda_handler({"Records": list(records)}, context())
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def delivered() -> list[dict[str, Any]]:
    """What waits on the data source queue, taken off it as the worker would get it."""
    sqs, url, found = aws.client("sqs"), get_settings().data_source_queue_url, []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found.append(record(message["Body"]))
    return found
