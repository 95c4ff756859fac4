"""Queue jobs: every message a service puts on an SQS queue, one model each, and the one way to send
one (`send`) and to read one in a worker (`read`). No service touches boto3 for SQS.

| job            | queue                                   | sent by                                 | worker                   |
|----------------|-----------------------------------------|-----------------------------------------|--------------------------|
| `ReplyJob`     | step queue (FIFO, grouped by convo)     | `services.steps` (Add Step, Regen)      | `workers/llm_step.py`    |
| `SummaryJob`   | data source queue (with S3's events)    | `services.summaries.schedule`           | `workers/data_source.py` |
| `ExportJob`    | export queue                            | `services.exports.export_data`          | `workers/export.py`      |
| `PurgeJob`     | purge queue                             | `services.convos`, `services.topics` (Delete) | `workers/purge.py` |
| `GreetingJob`  | stream queue                            | `realtime.identifiers.request_greeting` | `workers/streams.py`     |

Malformed messages (one policy, every worker): a body that is not the queue's job (not JSON, a field
missing or invalid, an unknown field) is logged without its body (a job may carry people's words) and
fails its record (`MalformedJob`): SQS delivers it again up to the queue's `maxReceiveCount`, then
moves it to the queue's dead-letter queue, whose alarm fires. So a message is never lost (a job a
newer producer wrote during a deployment is read again by the newer worker, or kept in the
dead-letter queue to redrive after a fix) and never loops (the receive count bounds the retries). On
the FIFO step queue the failed record holds back the later jobs of its convo only, until it is
dead-lettered (docs/DEVELOPING.md, "Queued jobs").

Idempotency (`once`): the export and reply workers run each job at most once per job key, with
Powertools; the records live in the single table (`IDEMPOTENCY#<worker>` partitions, expiring through
its `ttl`). A worker builds the guarded function per invocation (it is cheap): the table name and the
DynamoDB client are then the current ones, and the client is the shared one.

Costs in AWS calls: `send` is one SQS SendMessage.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kallo import aws
from kallo.authz.policy import ObjectType
from kallo.models.common import Id
from kallo.settings import get_settings
from kallo.store.keys import Ref

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig


class ReplyJob(BaseModel):
    """A user step that asks for an answer (or a regen): one message on the FIFO step queue, grouped
    by convo so a convo's answers come in order; the LLM step worker consumes them."""

    job_id: str = Field(alias="jobId", description="Deduplication key: the same job twice is one answer")
    convo_id: str = Field(alias="convoId")
    reply_to_step_id: str = Field(alias="replyToStepId", description="The user step being answered")
    llm_step_id: str = Field(alias="llmStepId", description="The id the answer step will have")
    created_at: str | None = Field(
        default=None, alias="createdAt", description="Kept by a regen so the answer keeps its place"
    )
    config: dict = Field(default_factory=dict, description="The stepConfig of the request")
    requested_by: str = Field(alias="requestedBy")
    team_id: str | None = Field(
        default=None, alias="teamId", description="The team whose token budget the answer also uses"
    )
    only_data_source_ids: list[str] | None = Field(
        default=None,
        alias="onlyDataSourceIds",
        description="Grounding narrowed to these data sources (none: an ungrounded answer); unset: the "
        "usual ones. Set by a compatibility surface for an answer it runs itself (Gloo's publishers)",
    )

    model_config = {"populate_by_name": True}


SUMMARIZE = "summarize"


class SummaryJob(BaseModel):
    """The data source queue's message asking for a data source's summary."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["summarize"]
    data_source_id: Id = Field(alias="dataSourceId")


class ExportJob(BaseModel):
    """The message body of an export job."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    export_id: Id = Field(alias="exportId")


class PurgeJob(BaseModel):
    """The message body of a purge job: what is left of a deleted object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ObjectType
    id: Id

    @classmethod
    def of(cls, ref: Ref) -> PurgeJob:
        """The purge of a deleted object (sent by the Delete operations of convos and topics)."""
        return cls(type=ObjectType(ref.type), id=ref.id)

    @property
    def ref(self) -> Ref:
        return Ref(self.type.value, self.id)


class GreetingJob(BaseModel):
    """Send a new identifiers stream its first snapshot once API Gateway has opened it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: str = Field(pattern="^greet$")
    connection_id: str = Field(alias="connectionId", min_length=1, max_length=128)


J = TypeVar("J", bound=BaseModel)
Job = ReplyJob | SummaryJob | ExportJob | PurgeJob | GreetingJob

# The settings attribute of each job's queue URL.
_QUEUES: dict[type[BaseModel], str] = {
    ReplyJob: "step_queue_url",
    SummaryJob: "data_source_queue_url",
    ExportJob: "export_queue_url",
    PurgeJob: "purge_queue_url",
    GreetingJob: "stream_queue_url",
}


def send(job: Job) -> None:
    """Put a job on its queue (one SendMessage). A reply job is grouped by convo and deduplicated by
    its `jobId` (the step queue is FIFO)."""
    message: dict[str, Any] = {
        "QueueUrl": getattr(get_settings(), _QUEUES[type(job)]),
        "MessageBody": job.model_dump_json(by_alias=True),
    }
    if isinstance(job, ReplyJob):
        message |= {"MessageGroupId": job.convo_id, "MessageDeduplicationId": job.job_id}
    aws.client("sqs").send_message(**message)


class MalformedJob(Exception):
    """A message that is not its queue's job: its record fails, and SQS dead-letters it after the
    queue's `maxReceiveCount` (see the module docstring)."""


def malformed(logger: Logger, what: str, record: SQSRecord, error: Exception) -> MalformedJob:
    """Log a message that is not a job, without its body (a job may carry people's words), and give
    the error its worker raises."""
    details = (
        error.errors(include_url=False, include_input=False, include_context=False)
        if isinstance(error, ValidationError)
        else type(error).__name__
    )
    logger.error(f"malformed {what}", extra={"messageId": record.message_id, "errors": details})
    return MalformedJob(f"message {record.message_id} is not a {what}")


def read(model: type[J], record: SQSRecord, logger: Logger, what: str) -> J:
    """The job a record carries; raises `MalformedJob` (logged) for anything else."""
    try:
        return model.model_validate_json(record.body)
    except ValidationError as error:
        raise malformed(logger, what, record, error) from error


def idempotency_config(**options: Any) -> Callable[[], IdempotencyConfig]:
    """The worker's `IdempotencyConfig(**options)`, made on first call (then always the same one):
    Powertools' idempotency package imports boto3 (its DynamoDB layer), and any boto3 import loads
    s3transfer, so it loads with a worker's first job, not with the handler (cold start, issue 13)."""

    @cache
    def config() -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(**options)

    return config


def once(
    function: Callable[..., Any], *, worker: str, key_prefix: str, config: IdempotencyConfig
) -> Callable[..., Any]:
    """`function`, called with the keyword argument `job`, run at most once per job key."""
    # Imported here: only the workers that guard their jobs load Powertools' idempotency.
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value=f"IDEMPOTENCY#{worker}",
        expiry_attr="ttl",
        boto3_client=aws.client("dynamodb"),
    )
    # A fixed key prefix (not the function's name) keeps the records valid across deployments.
    return idempotent_function(
        data_keyword_argument="job", persistence_store=persistence, config=config, key_prefix=key_prefix
    )(function)
