"""Create the template's storage and messaging resources in the embedded AWS services (moto), the way
CloudFormation would, and return their physical ids for `template.Resolver`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import boto3

from local.template import ACCOUNT, REGION, STACK_NAME, Resolver

_TABLE_ARGUMENTS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
_EMULATED = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::SecretsManager::Secret",
        "AWS::ApiGatewayV2::Api",
        "AWS::SES::EmailIdentity",
    }
)


def _creation_order(resource: dict[str, Any]) -> int:
    """Dead-letter queues first (the queues that redrive to them need their ARNs), then the other
    queues, then buckets (their notifications name queues), then the rest."""
    properties = resource.get("Properties") or {}
    if resource["Type"] == "AWS::SQS::Queue":
        return 1 if "RedrivePolicy" in properties else 0
    return 2 if resource["Type"] == "AWS::S3::Bucket" else 3


def provision(
    template: dict[str, Any],
    *,
    endpoint_url: str | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """`secret_values` (logical id → value) fills secrets the template creates without a value, as an
    operator would after deploying (`put-secret-value`)."""
    secret_values = secret_values or {}
    session = boto3.session.Session(region_name=REGION)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    physical: dict[str, dict[str, str]] = {}
    resolver = Resolver(template, physical)
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] in _EMULATED}
    ordered = sorted(resources.items(), key=lambda kv: _creation_order(kv[1]))
    for logical_id, resource in ordered:
        properties = resolver.resolve(resource.get("Properties") or {})
        kind = resource["Type"]
        name = f"{STACK_NAME}-{logical_id}"
        if kind == "AWS::DynamoDB::Table":
            arguments = {k: properties[k] for k in _TABLE_ARGUMENTS if k in properties}
            client("dynamodb").create_table(TableName=name, **arguments)
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            physical[logical_id] = {"Ref": name, "Arn": arn}
        elif kind == "AWS::S3::Bucket":
            bucket = name.lower()
            s3 = client("s3")
            s3.create_bucket(Bucket=bucket)
            if "CorsConfiguration" in properties:
                rules = [_cors_rule(r) for r in properties["CorsConfiguration"]["CorsRules"]]
                s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
            if "VersioningConfiguration" in properties:
                status = properties["VersioningConfiguration"]["Status"]
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            if "NotificationConfiguration" in properties:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration=_notifications(properties["NotificationConfiguration"]),
                )
            physical[logical_id] = {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"}
        elif kind == "AWS::SQS::Queue":
            physical[logical_id] = _create_queue(client("sqs"), name, properties)
        elif kind == "AWS::ApiGatewayV2::Api":
            # Served by the local stack's own WebSocket gateway, which also answers `@connections`.
            physical[logical_id] = {"Ref": f"{name}-local".lower()}
        elif kind == "AWS::SES::EmailIdentity":
            # Sending needs a verified sender; moto keeps what is sent (see `local.mailbox`).
            client("ses").verify_email_identity(EmailAddress=properties["EmailIdentity"])
            physical[logical_id] = {"Ref": properties["EmailIdentity"]}
        elif kind == "AWS::SecretsManager::Secret":
            physical[logical_id] = _create_secret(
                client("secretsmanager"), name, properties, secret_values.get(logical_id)
            )
    return physical


def _create_secret(
    secretsmanager: Any, name: str, properties: dict[str, Any], value: str | None
) -> dict[str, str]:
    """As CloudFormation creates it: a generated value (GenerateSecretString), the template's
    SecretString, or no value at all; `value` stands for what the operator puts in afterwards."""
    if value is None:
        if "GenerateSecretString" in properties:
            value = secrets.token_urlsafe(48)
        elif "SecretString" in properties:
            value = str(properties["SecretString"])
    arguments = {"SecretString": value} if value else {}
    arn = secretsmanager.create_secret(Name=name, **arguments)["ARN"]
    return {"Ref": arn, "Arn": arn}


def _create_queue(sqs: Any, name: str, properties: dict[str, Any]) -> dict[str, str]:
    fifo = bool(properties.get("FifoQueue"))
    queue_name = f"{name}.fifo" if fifo else name
    attributes = {"VisibilityTimeout": str(properties.get("VisibilityTimeout", 30))}
    if fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = str(
            bool(properties.get("ContentBasedDeduplication"))
        ).lower()
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
    return {"Ref": url, "Arn": arn, "QueueName": queue_name, "QueueUrl": url}


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation spells MaxAgeSeconds as MaxAge.
    converted = {k: v for k, v in rule.items() if k != "MaxAge"}
    if "MaxAge" in rule:
        converted["MaxAgeSeconds"] = int(rule["MaxAge"])
    return converted


def _notifications(configuration: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's bucket NotificationConfiguration in the S3 API's spelling (queues only)."""
    converted = []
    for queue in configuration.get("QueueConfigurations", []):
        rules = queue.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        entry: dict[str, Any] = {"QueueArn": queue["Queue"], "Events": [queue["Event"]]}
        if rules:
            entry["Filter"] = {"Key": {"FilterRules": rules}}
        converted.append(entry)
    return {"QueueConfigurations": converted}
