"""Data source worker: the data source queue's messages, in SQS batches with partial batch failures.

- An S3 event notification (one or more `Records`) of objects created at a data source's `.../original`:
  each upload is processed (`kallo.services.ingest.process`); the `s3:TestEvent` S3 sends when the
  notification is configured is ignored.
- `{"type": "summarize", "dataSourceId"}`: the data source's pending summary is written
  (`kallo.services.summaries.summarize`).
- A body that is neither is logged and fails its record, as any other error does: SQS delivers it again
  (then to the dead-letter queue; `kallo.jobs`, "Malformed messages"); both services are idempotent.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kallo import jobs
from kallo.services import ingest, summaries

# Time kept back, out of what is left of the invocation, to store a summary (or its failure).
SAFETY_SECONDS = 30

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        message = json.loads(record.body)
        if isinstance(message, dict) and message.get("type") == jobs.SUMMARIZE:
            job: jobs.SummaryJob | None = jobs.SummaryJob.model_validate(message)
            uploads: list[ingest.Upload] = []
        else:
            job, uploads = None, ingest.uploads_of(message)
    except ValueError as error:  # not JSON, or not a message of this queue (pydantic's errors too)
        raise jobs.malformed(logger, "data source message", record, error) from error
    if job is not None:
        seconds = lambda_context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS
        status = summaries.summarize(job.data_source_id, seconds=seconds)
        logger.info("summary job done", extra={"dataSourceId": job.data_source_id, "status": status})
    for upload in uploads:
        status = ingest.process(upload.key, upload.version_id, size=upload.size)
        logger.info("upload processed", extra={"key": upload.key, "status": status})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
