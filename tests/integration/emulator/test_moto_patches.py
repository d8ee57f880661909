"""The emulator's speed-ups of moto keep moto's behaviour: transactions stay all or nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from crm_local.moto_server import install_patches


@pytest.fixture
def table() -> Iterator[str]:
    install_patches()
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        yield "t"


def put(pk: str, value: str, condition: str | None = None) -> Any:
    op: dict[str, object] = {
        "TableName": "t",
        "Item": {"PK": {"S": pk}, "SK": {"S": "x"}, "v": {"S": value}},
    }
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def test_a_failed_transaction_leaves_every_item_as_it_was(table: str) -> None:
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName=table, Item={"PK": {"S": "a"}, "SK": {"S": "x"}, "v": {"S": "old"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                put("a", "new"),
                put("b", "new"),
                put("a2", "new", condition="attribute_exists(PK)"),  # fails
            ]
        )
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = {i["PK"]["S"]: i["v"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert items == {"a": "old"}


def test_a_successful_transaction_writes_every_item(table: str) -> None:
    ddb = boto3.client("dynamodb")
    ddb.transact_write_items(TransactItems=[put("a", "1"), put("b", "2")])
    assert ddb.scan(TableName=table)["Count"] == 2


def test_queue_counts_stay_right() -> None:
    install_patches()
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)
        time.sleep(0.15)  # past the counts' tenth of a second
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "3"
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "2"
