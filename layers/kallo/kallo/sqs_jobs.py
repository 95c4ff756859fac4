"""What the SQS workers share: jobs made idempotent with Powertools, and dropping malformed jobs.

Idempotency records live in the single table (`IDEMPOTENCY#<worker>` partitions, expiring through its
`ttl`). A worker builds the guarded function per invocation (it is cheap): the table name and the DynamoDB
client are then the current ones, and the client is the shared one (its retries and timeouts, one
connection pool).

Powertools' idempotency package imports boto3 (its DynamoDB layer), and any boto3 import loads
s3transfer: it is imported on a worker's first job, when the job's own AWS calls import boto3 anyway,
not with the handler (cold start, issue 13).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from kallo import aws
from kallo.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig


def idempotency_config(**options: Any) -> Callable[[], IdempotencyConfig]:
    """The worker's `IdempotencyConfig(**options)`, made on first call (then always the same one)."""

    @cache
    def config() -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(**options)

    return config


def once(
    function: Callable[..., Any], *, worker: str, key_prefix: str, config: IdempotencyConfig
) -> Callable[..., Any]:
    """`function`, called with the keyword argument `job`, run at most once per job key."""
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


def drop_malformed(logger: Logger, what: str, record: SQSRecord, error: ValidationError) -> None:
    """Log a job that can never succeed, without its input: a job may carry people's words."""
    logger.error(
        f"malformed {what} dropped",
        extra={
            "messageId": record.message_id,
            "errors": error.errors(include_url=False, include_input=False, include_context=False),
        },
    )
