"""The demo is not reported ready with events missing: events that reached the dead-letter
queue while it loaded fail it, loudly, in `crm-local status` and on the console."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
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


def test_a_log_file_shows_a_long_step_counting_forward(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run > log`: no progress bar is drawn, and the log said (0/2000) until the next
    step. Each step's start is printed, then its count every PRINT_EVERY_S and at its end."""
    from crm_local import cli

    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    writer = cli._StatusWriter(tmp_path, started=100.0)
    for done in range(0, 2001, 100):  # a chunk of 100 customers every 2 s
        writer.report("importing customers and their history", done, 2000)
        now[0] += 2.0
    writer.report("computing segments", 0, 0)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    counts = [line.split("(")[-1].split(")")[0] for line in lines if "importing" in line]
    assert counts[0] == "0/2000"
    assert counts[-1] == "2000/2000"
    assert 4 <= len(counts) <= 10  # every ~5 s of 40, not every chunk
    assert "computing segments" in lines[-1]
