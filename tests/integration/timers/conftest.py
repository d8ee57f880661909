"""The timers on moto, with a clock the test moves, and a test-only kind (`ping`) whose queue
(with a DLQ after two receives) and consumer stand for a family's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm import aws
from crm.composition import Crm, Settings, reset, root
from crm.sqs_consumer import QueueMessage, consume
from crm.timers import WakeUp
from crm_local.harness import Suite
from crm_local.runtime import LambdaContext
from crm_local.sqs import sqs_event
from crm_local.template import ROOT
from tests.fakes import TestClock

START = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return data


@dataclass
class Calls:
    """The parameters of AWS calls made through crm.aws's shared clients, by operation."""

    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def of(self, operation: str) -> list[dict[str, Any]]:
        return self.seen.get(operation, [])


@dataclass
class Kit:
    suite: Suite
    clock: TestClock
    ping_url: str
    ping_dlq_url: str
    calls: Calls
    fired: list[WakeUp] = field(default_factory=list)

    # ------------------------------------------------------------ the sweep, as AWS runs it
    def sweep(self) -> list[int]:
        """The schedule fires the sweep; SQS hands each shard task to the shard function."""
        planned: list[int] = self.suite.invoke(
            "TimerSweepFunction", sample("schedule_timers_sweep.json")
        )["shards"]
        self.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
        return planned

    # ------------------------------------------------------------ the kind's queue
    def pings(self) -> list[dict[str, Any]]:
        """Every wake-up the ping queue shows now, received (in flight for 30 s, as a consumer
        would hold them): hand them to `consume_pings`."""
        out: list[dict[str, Any]] = []
        sqs = boto3.client("sqs")
        while True:
            got = sqs.receive_message(
                QueueUrl=self.ping_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                VisibilityTimeout=30,
            ).get("Messages", [])  # fmt: skip
            if not got:
                return out
            out.extend(dict(m) for m in got)

    def consume_pings(self, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The test kind's consumer (the family's part): parse, claim, act once."""
        sqs = boto3.client("sqs")
        if messages is None:
            messages = self.pings()
        arn = sqs.get_queue_attributes(QueueUrl=self.ping_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

        def handle(message: QueueMessage) -> None:
            wake = WakeUp.parse(message.body)
            if root().timers.claim(wake):
                self.fired.append(wake)

        try:
            context: Any = LambdaContext("PingFunction")
            response = consume(sqs_event(messages, arn), context, handle)
        except Exception:  # every record failed: the batch comes back
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=self.ping_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=self.ping_url, ReceiptHandle=m["ReceiptHandle"])
        return response

    def delays(self) -> list[int]:
        """DelaySeconds of every wake-up sent to the ping queue so far."""
        return [
            entry["DelaySeconds"]
            for call in self.calls.of("sqs.SendMessageBatch")
            if call["QueueUrl"] == self.ping_url
            for entry in call["Entries"]
        ]

    def due_items(self) -> list[dict[str, Any]]:
        table = self.suite.stack.refs["TimersTable"]
        items = boto3.client("dynamodb").scan(TableName=str(table))["Items"]
        return [i for i in items if i["PK"]["S"].startswith("DUE#")]


def _watch(calls: Calls) -> None:
    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        calls.seen.setdefault(name, []).append(params)

    for service in ("dynamodb", "sqs"):
        for bulk in (False, True):
            client = aws.client_for(service, bulk)
            client.meta.events.register("provide-client-params", record, unique_id="kit-watch")


@pytest.fixture
def kit(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="timers-test-ping-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    ping = sqs.create_queue(QueueName="timers-test-ping", Attributes={"RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    # A family would write `TIMER_QUEUE_PING: !Ref PingQueue` in template.yaml's Globals.
    monkeypatch.setenv("TIMER_QUEUE_PING", ping)
    clock = TestClock(START)
    reset(Crm(Settings.from_env(), clock=clock))
    calls = Calls()
    _watch(calls)
    yield Kit(suite, clock, ping, dlq, calls)
    reset()


def ids(wakes: list[WakeUp]) -> list[str]:
    return sorted(w.timer_id for w in wakes)


def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]
