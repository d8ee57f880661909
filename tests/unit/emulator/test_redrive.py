"""Dead letters go back to their queue: bodies, attributes and FIFO groups kept (moto, in
memory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from crm_local.redrive import NoDeadLetterQueue, redrive


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def queue_pair(sqs: Any, name: str, fifo: bool = False) -> tuple[str, str]:
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    url = sqs.create_queue(
        QueueName=f"{name}{suffix}", Attributes={"RedrivePolicy": policy, **extra}
    )["QueueUrl"]
    return url, dlq


def fail_once(sqs: Any, url: str) -> None:
    """Receive everything and let it come back: past maxReceiveCount, SQS dead-letters it."""
    while sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages"
    ):
        pass


def everything(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(out.get("Messages", []))


def test_every_dead_letter_goes_back_with_its_attributes(sqs: Any) -> None:
    url, dlq = queue_pair(sqs, "events")
    for i in range(13):  # more than one batch of ten
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f"event-{i}",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "order_paid"}},
        )
    fail_once(sqs, url)
    assert everything(sqs, url) == []

    moved = redrive(sqs, url)

    assert (moved.count, moved.dead_letter_url) == (13, dlq)
    back: list[dict[str, Any]] = []
    while batch := everything(sqs, url):
        back += batch
    assert sorted(m["Body"] for m in back) == sorted(f"event-{i}" for i in range(13))
    assert {m["MessageAttributes"]["kind"]["StringValue"] for m in back} == {"order_paid"}
    assert everything(sqs, dlq) == []


def test_fifo_dead_letters_keep_their_group(sqs: Any) -> None:
    url, _ = queue_pair(sqs, "shards", fifo=True)
    sqs.send_message(
        QueueUrl=url, MessageBody="shard-3", MessageGroupId="run-1", MessageDeduplicationId="a"
    )
    fail_once(sqs, url)
    assert redrive(sqs, url).count == 1
    [message] = everything(sqs, url)
    assert (message["Body"], message["Attributes"]["MessageGroupId"]) == ("shard-3", "run-1")


def test_an_empty_dead_letter_queue_moves_nothing(sqs: Any) -> None:
    url, _ = queue_pair(sqs, "quiet")
    assert redrive(sqs, url).count == 0


def test_a_queue_without_a_dead_letter_queue_is_refused(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    with pytest.raises(NoDeadLetterQueue, match="plain has no dead-letter queue"):
        redrive(sqs, url)
