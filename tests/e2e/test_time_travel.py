"""Time travel on the emulator: a timer due in 30 days fires seconds after
`crm-local clock advance 30d`, through the real sweep (schedule -> TimerSweepFunction ->
TimerShardFunction -> the kind's queue) and a test kind's consumer added to the template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e

# The test kind's function: sets a 30-day timer over HTTP (with the emulator's clock, through
# the composition root) and, woken on its queue, claims it and records when.
PING_APP = """
import json, os
from datetime import timedelta

import boto3

from crm.composition import root
from crm.sqs_consumer import consume
from crm.timers import WakeUp


def handler(event, context):
    if "httpMethod" in event:
        now = root().clock()
        timer_id = event["pathParameters"]["timer_id"]
        timer = root().timers.set("ping", timer_id, now + timedelta(days=30))
        body = {"now": now.isoformat(), "due_at": timer.due_at.isoformat()}
        return {"statusCode": 201, "headers": {"Content-Type": "application/json"},
                "body": json.dumps(body)}

    def woken(message):
        wake = WakeUp.parse(message.body)
        if root().timers.claim(wake):
            boto3.client("s3").put_object(
                Bucket=os.environ["LAKE_BUCKET"], Key=f"fired/{wake.timer_id}.json",
                Body=json.dumps({"at": root().clock().isoformat(),
                                 "due_at": wake.due_at.isoformat()}).encode(),
            )

    return consume(event, context, woken)
"""

FRAGMENT = """
  PingQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 5
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt PingDLQ.Arn
        maxReceiveCount: 3
  PingDLQ:
    Type: AWS::SQS::Queue
  PingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ping
      Handler: app.handler
      Events:
        Wakes:
          Type: SQS
          Properties:
            Queue: !GetAtt PingQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
        Set:
          Type: Api
          Properties:
            RestApiId: !Ref CrmApi
            Path: /ping-timers/{timer_id}
            Method: POST
"""
# The kind and its queue, named where every family names its own: the Globals' variables.
KIND = "        TIMER_SWEEP_QUEUE_URL: !Ref TimerSweepQueue\n"


@pytest.fixture(scope="module")
def with_ping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("time-travel")
    for name in ("functions", "layers"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "ping").mkdir()
    (folder / "ping" / "app.py").write_text(PING_APP)
    text = (ROOT / "template.yaml").read_text()
    assert KIND in text
    text = text.replace(KIND, KIND + "        TIMER_QUEUE_PING: !Ref PingQueue\n", 1)
    text = text.replace("\nResources:\n", "\nResources:\n" + FRAGMENT, 1)
    template = folder / "template.yaml"
    template.write_text(text)
    with start_emulator(template, folder / "state") as running:
        yield running


def fired(emulator: Running, timer_id: str) -> dict[str, Any] | None:
    s3 = emulator.aws("s3")
    try:
        out = s3.get_object(Bucket="crm-local-lakebucket", Key=f"fired/{timer_id}.json")
    except s3.exceptions.NoSuchKey:
        return None
    data: dict[str, Any] = json.loads(out["Body"].read())
    return data


def test_a_30_day_timer_fires_after_the_clock_advances_30_days(with_ping: Running) -> None:
    status, body = with_ping.http("POST", "/ping-timers/e2e-30d", token=with_ping.token("admin"))
    assert status == 201
    due = datetime.fromisoformat(body["due_at"])
    wait = due - datetime.fromisoformat(body["now"])
    assert timedelta(days=30) - timedelta(milliseconds=1) < wait <= timedelta(days=30)
    assert with_ping.cli("clock").endswith("(real time +0d 00:00:00)")

    # The sweep runs now and finds nothing due.
    assert "crm-timers-sweep-dev" in with_ping.cli("fire", "crm-timers-sweep-dev")
    with pytest.raises(AssertionError, match="still not true"):
        wait_for(lambda: fired(with_ping, "e2e-30d"), timeout=4)

    shown = with_ping.cli("clock", "advance", "30d")
    assert "(real time +30d 00:00:00)" in shown
    # The scheduler sees the jump within a second and fires the sweep once; it and the
    # consumer read the advanced clock.
    record = wait_for(lambda: fired(with_ping, "e2e-30d"), timeout=60)
    assert datetime.fromisoformat(record["at"]) >= due
    assert datetime.fromisoformat(record["due_at"]) == due
    assert Path(with_ping.state_dir / "clock.json").stat().st_mode & 0o777 == 0o600
