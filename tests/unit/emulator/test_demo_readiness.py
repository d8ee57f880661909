"""The demo is not reported ready with events missing: events that reached the dead-letter
queue while it loaded fail it, loudly, in `crm-local status` and on the console."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from crm_local.cli import EventsDeadLettered, _DeadLetters
from crm_local.demo_status import DemoStatus
from crm_local.moto_server import COUNTS_TTL_S


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        url = sqs.create_queue(QueueName="events", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        yield sqs, url, dlq


def test_no_new_dead_letters_is_ready(queues: tuple[Any, str, str]) -> None:
    sqs, url, dlq = queues
    sqs.send_message(QueueUrl=dlq, MessageBody="from an earlier day")
    time.sleep(COUNTS_TTL_S * 1.5)  # queue counts are approximate (and kept a moment)
    letters = _DeadLetters(url)
    letters.check()  # the one that was there before the demo is not the demo's
    assert letters.before == 1


def test_dead_lettered_demo_events_fail_the_demo(queues: tuple[Any, str, str]) -> None:
    sqs, url, dlq = queues
    letters = _DeadLetters(url)
    for n in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"poison {n}")
    time.sleep(COUNTS_TTL_S * 1.5)
    with pytest.raises(EventsDeadLettered) as failed:
        letters.check()
    assert "2 demo event(s) were dead-lettered in events-dlq" in str(failed.value)
    assert "crm-local redrive events" in str(failed.value)
    line = DemoStatus("failed", "folding events", error=str(failed.value)).line()
    assert line.startswith("demo loading FAILED while folding events: 2 demo event(s)")
    assert "ready" not in line
