"""Export worker: SQS batches of export jobs (`{"exportId": ...}`, `kallo.services.exports`), with
partial batch failures, so one failing job is retried (then dead-lettered) without redoing the others.

One email per export, twice over: Powertools records each export id in the single table
(`IDEMPOTENCY#export` items, expiring through the table's TTL), so a job delivered twice is sent once;
and the export item moves from `queued` to `sent` under a condition, so a job seen after its record
expired finds the export sent and does nothing. SES's permanent refusals fail the export (no retry);
throttling and SES errors fail the record, to be retried. A body that is not an export job fails its
record too, to be dead-lettered after the queue's receive count (`kallo.jobs`, "Malformed messages").

AWS calls per job: the send's (`kallo.services.exports`) + PutItem and UpdateItem (the idempotency
record); a duplicate costs the PutItem alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kallo import jobs
from kallo.jobs import ExportJob
from kallo.services import exports

# Far longer than SQS redelivers a message (3 receives of 180 s visibility); TTL removes the records.
IDEMPOTENCY_SECONDS = 24 * 3600

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
idempotency = jobs.idempotency_config(
    event_key_jmespath="export_id",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
)


def _send(job: ExportJob) -> dict[str, str]:
    return {"exportId": job.export_id, "status": exports.send_export(job.export_id)}


def _send_once() -> Callable[..., dict[str, str]]:
    return jobs.once(_send, worker="export", key_prefix="export-job", config=idempotency())


def _handler(send_once: Callable[..., dict[str, str]]) -> Callable[[SQSRecord], dict[str, str] | None]:
    def record_handler(record: SQSRecord) -> dict[str, str] | None:
        job = jobs.read(ExportJob, record, logger, "export job")
        logger.append_keys(exportId=job.export_id)
        try:
            outcome = send_once(job=job)
        finally:
            logger.remove_keys(["exportId"])
        logger.info("export job done", extra=outcome)
        return outcome

    return record_handler


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    # In-progress idempotency records expire when this invocation would time out, so a job whose
    # worker crashed is sent by the next delivery instead of waiting for the record to expire.
    idempotency().register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=_handler(_send_once()), processor=processor, context=context
    )
