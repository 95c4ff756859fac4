"""Purge worker: SQS batches of purge jobs (`kallo.services.purge`), with partial batch failures, so
one failing job is retried (then dead-lettered) without redoing the others; a body that is not a purge
job fails its record the same way (`kallo.jobs`, "Malformed messages")."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kallo import jobs
from kallo.services import purge

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> int:
    ref = jobs.read(jobs.PurgeJob, record, logger, "purge job").ref
    deleted = purge.purge(ref)
    logger.info("purged", extra={"objectType": ref.type, "objectId": ref.id, "deleted": deleted})
    return deleted


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: Any) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
