"""The local stack's embedded DynamoDB (`local.stack.tame_embedded_dynamodb`): requests one at a time, and
a failed transaction restores exactly the items it named, without copying whole tables."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.stack import tame_embedded_dynamodb


@pytest.fixture
def dynamodb(monkeypatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setitem(os.environ, name, value)
    monkeypatch.delitem(os.environ, "AWS_ENDPOINT_URL", raising=False)
    tame_embedded_dynamodb()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"PK": {"S": "p"}, "SK": {"S": "kept"}, "n": {"N": "1"}})
        client.put_item(TableName="t", Item={"PK": {"S": "p"}, "SK": {"S": "doomed"}, "n": {"N": "1"}})
        yield client


def items(client: Any) -> dict[str, str]:
    found = client.query(
        TableName="t", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "p"}}
    )["Items"]
    return {i["SK"]["S"]: i["n"]["N"] for i in found}


def key(sk: str) -> dict[str, Any]:
    return {"PK": {"S": "p"}, "SK": {"S": sk}}


def test_a_failed_transaction_leaves_every_item_as_it_was(dynamodb):
    operations = [
        {"Put": {"TableName": "t", "Item": {**key("new"), "n": {"N": "9"}}}},
        {
            "Update": {
                "TableName": "t",
                "Key": key("kept"),
                "UpdateExpression": "SET n = :n",
                "ExpressionAttributeValues": {":n": {"N": "2"}},
            }
        },
        {"Delete": {"TableName": "t", "Key": key("doomed")}},
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": key("absent"),
                "ConditionExpression": "attribute_exists(PK)",
            }
        },
    ]
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=operations)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert items(dynamodb) == {"doomed": "1", "kept": "1"}
    dynamodb.transact_write_items(TransactItems=operations[:3])
    assert items(dynamodb) == {"kept": "2", "new": "9"}


def test_writers_on_many_threads_never_fail(dynamodb):
    def write(n: int) -> None:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {**key(f"s{n}"), "n": {"N": str(n)}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": key("kept"),
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
        dynamodb.put_item(TableName="t", Item={**key(f"plain{n}"), "n": {"N": "0"}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(80)))
    found = items(dynamodb)
    assert found["kept"] == "81" and len(found) == 2 + 80 + 80
