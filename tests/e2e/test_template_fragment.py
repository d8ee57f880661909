"""A function added to template.yaml, with a schedule, a queue, a bus rule and a route, runs in
the emulator with no other wiring."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e

ECHO_APP = """
import json, os, uuid
import boto3

def handler(event, context):
    if "httpMethod" in event:
        kind = "api"
    elif "Records" in event:
        kind = "sqs"
    elif event.get("detail-type") == "Scheduled Event":
        kind = "schedule"
    else:
        kind = "bus"
    failures = []
    for record in event.get("Records", []):
        if record["body"] == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
    boto3.client("s3").put_object(
        Bucket=os.environ["LAKE_BUCKET"], Key=f"echo/{kind}/{uuid.uuid4().hex}.json",
        Body=json.dumps(event).encode(),
    )
    if kind == "api":
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"echo": event["pathParameters"]["word"]})}
    if kind == "sqs":
        return {"batchItemFailures": failures}
    return None
"""

FRAGMENT = """
  EchoQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt EchoDLQ.Arn
        maxReceiveCount: 2
  EchoDLQ:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: app.handler
      Events:
        Nightly:
          Type: Schedule
          Properties:
            Name: echo-nightly
            Schedule: cron(0 3 * * ? *)
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt EchoQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        ProfileChanges:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref CrmBus
            Pattern:
              detail-type: [CustomerProfileUpdated]
        Http:
          Type: Api
          Properties:
            RestApiId: !Ref CrmApi
            Path: /echo/{word}
            Method: GET
"""


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("fragment")
    for name in ("functions", "layers"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "echo").mkdir()
    (folder / "echo" / "app.py").write_text(ECHO_APP)
    text = (ROOT / "template.yaml").read_text()
    text = text.replace("\nResources:\n", "\nResources:\n" + FRAGMENT, 1)
    template = folder / "template.yaml"
    template.write_text(text)
    with start_emulator(template, folder / "state") as running:
        yield running


def echoes(emulator: Running, kind: str) -> list[dict[str, object]]:
    s3 = emulator.aws("s3")
    bucket = "crm-local-lakebucket"
    found = s3.list_objects_v2(Bucket=bucket, Prefix=f"echo/{kind}/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in found]


def test_its_route_is_served(extended: Running) -> None:
    word = urllib.parse.quote("你好")
    status, body = extended.http("GET", f"/echo/{word}", token=extended.token("analyst"))
    assert (status, body) == (200, {"echo": "你好"})


def test_its_schedule_fires_on_demand(extended: Running) -> None:
    assert "echo-nightly" in extended.cli("fire", "echo-nightly")
    [event] = wait_for(lambda: echoes(extended, "schedule"))
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/echo-nightly"]


def test_its_queue_is_pumped_and_failures_reach_its_dlq(extended: Running) -> None:
    sqs = extended.aws("sqs")
    url = sqs.get_queue_url(QueueName="crm-local-EchoQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    sqs.send_message(QueueUrl=url, MessageBody="fail")
    wait_for(lambda: echoes(extended, "sqs"))
    dlq = sqs.get_queue_url(QueueName="crm-local-EchoDLQ")["QueueUrl"]

    def dead() -> list[str]:
        out = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)
        return [m["Body"] for m in out.get("Messages", [])]

    assert wait_for(dead, timeout=30) == ["fail"]


def test_its_bus_rule_receives_what_the_crm_publishes(extended: Running) -> None:
    admin = extended.token("admin")
    _, created = extended.http(
        "POST", "/customers", {"identities": [{"channel": "app", "external_id": "bus"}]}, admin
    )
    cid = created["customer_id"]
    event = {"event_id": "bus-1", "type": "product_viewed", "sku": "s", "customer_id": cid,
             "occurred_at": "2026-11-21T08:00:00Z"}  # fmt: skip
    assert extended.http("POST", "/events", {"events": [event]}, admin)[0] == 202
    [published] = wait_for(lambda: echoes(extended, "bus"))
    assert published["detail-type"] == "CustomerProfileUpdated"
    assert published["detail"]["customer_id"] == created["customer_id"]


def test_the_fragment_is_what_runs(extended: Running) -> None:
    assert Path(extended.template).read_text().count("EchoFunction") == 1
