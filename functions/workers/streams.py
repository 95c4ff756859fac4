"""Stream worker: sends each new identifiers stream (`?stream=conversation-identifiers`) its first
snapshot once API Gateway has opened it (`kallo.realtime.identifiers.greet_when_open`). A job for a
connection that never opened, or is gone, is done: there is no one to greet. A body that is not a
greeting job fails its record, to be dead-lettered after the queue's receive count (`kallo.jobs`,
"Malformed messages")."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kallo import jobs
from kallo.realtime import identifiers
from kallo.services import convos

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> bool:
    job = jobs.read(jobs.GreetingJob, record, logger, "stream job")
    sent = identifiers.greet_when_open(job.connection_id, convos.identifiers)
    logger.info("stream greeted" if sent else "stream not greeted", extra={"connectionId": job.connection_id})
    return sent


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: Any) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
