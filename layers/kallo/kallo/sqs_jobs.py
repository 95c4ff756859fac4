"""What the SQS workers share: jobs made idempotent with Powertools, and dropping malformed jobs.

Idempotency records live in the single table (`IDEMPOTENCY#<worker>` partitions, expiring through its
`ttl`). A worker builds the guarded function per invocation (it is cheap): the table name and the DynamoDB
client are then the current ones, and the client is the shared one (its retries and timeouts, one
connection pool).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from pydantic import ValidationError

from kallo import aws
from kallo.settings import get_settings


def once(
    function: Callable[..., Any], *, worker: str, key_prefix: str, config: IdempotencyConfig
) -> Callable[..., Any]:
    """`function`, called with the keyword argument `job`, run at most once per job key."""
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
