"""LLM step worker: answers the reply jobs of the FIFO step queue (`kallo.jobs.ReplyJob`), one
message group per convo, with `kallo.services.replies.answer`.

- Partial batch failures for FIFO: when a job fails, the jobs after it in the same message group (the
  same convo) are reported failed too, untouched, so a convo's answers never overtake each other;
  other convos' jobs go on.
- A body that is not a ReplyJob is logged and fails its record (with the jobs after it in its group),
  to be dead-lettered after the queue's receive count (`kallo.jobs`, "Malformed messages").
- Idempotency twice over: Powertools records each job id in the single table (`IDEMPOTENCY#llm_step`
  items, expiring through the table's TTL), so a redelivered job is not answered again; and the answer
  itself does nothing when its step is already completed, failed or stopped (a job id seen after its
  record expired, or two jobs for one step), and never starts over a step a stop was requested on: it
  ends it `stopped` (`kallo.services.replies`, "Stop").
- Time: a job that starts with less than `MIN_SECONDS_TO_START` left is failed before any work, to be
  retried by another invocation; one that runs out of time ends its step as failed (with the text so
  far) `SAFETY_SECONDS` before the Lambda timeout, so no step stays "running" forever.

AWS calls per job: the answer's (`kallo.services.replies`; 14 for a short answer on a named convo, its token charge included) +
PutItem and UpdateItem (the idempotency record); a duplicate costs the PutItem alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kallo import jobs, tracing
from kallo.jobs import ReplyJob
from kallo.services import replies

# Time kept back to store a failed step and report the batch before Lambda stops the function.
SAFETY_SECONDS = 20
# Starting an answer with less time left than this would likely end it cut short.
MIN_SECONDS_TO_START = 60
# Far longer than SQS redelivers a message (3 receives of 360 s visibility); TTL removes the records.
IDEMPOTENCY_SECONDS = 24 * 3600

logger = Logger()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
idempotency = jobs.idempotency_config(
    event_key_jmespath="job_id", raise_on_no_idempotency_key=True, expires_after_seconds=IDEMPOTENCY_SECONDS
)


class NotEnoughTime(Exception):
    """Too little of the invocation is left to start an answer; the job is retried later."""


def _answer(job: ReplyJob, deadline: float, queued_at: float | None = None) -> dict[str, str]:
    replies.answer(job, deadline=deadline, queued_at=queued_at)
    return {"stepId": job.llm_step_id}


def _queued_at(record: SQSRecord) -> float | None:
    """When the job was queued (SQS's SentTimestamp): an answer's latencies include its queue wait."""
    sent = (record.raw_event.get("attributes") or {}).get("SentTimestamp")
    return int(sent) / 1000 if sent and str(sent).isdigit() else None


def _answer_once() -> Callable[..., dict[str, str]]:
    return jobs.once(_answer, worker="llm_step", key_prefix="reply-job", config=idempotency())


def _handler(answer_once: Callable[..., dict[str, str]]) -> Callable[[SQSRecord, LambdaContext], Any]:
    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, str] | None:
        job = jobs.read(ReplyJob, record, logger, "reply job")
        remaining = lambda_context.get_remaining_time_in_millis() / 1000
        if remaining < MIN_SECONDS_TO_START:
            raise NotEnoughTime(f"{remaining:.0f} s left: job {job.job_id} waits for another invocation")
        logger.append_keys(convoId=job.convo_id, stepId=job.llm_step_id, jobId=job.job_id)
        try:
            return answer_once(
                job=job, deadline=time.monotonic() + remaining - SAFETY_SECONDS, queued_at=_queued_at(record)
            )
        finally:
            logger.remove_keys(["convoId", "stepId", "jobId"])

    return record_handler


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler()
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # In-progress idempotency records expire when this invocation would time out, so a job whose
    # worker crashed is answered by the next delivery instead of waiting for the record to expire.
    idempotency().register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=_handler(_answer_once()), processor=processor, context=context
    )
