"""The one SQS consumer: partial batch failures, poison messages, side effects once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from crm.sqs_consumer import PoisonMessage, QueueMessage, consume
from crm_local.runtime import LambdaContext
from crm_local.sqs import sqs_event


def event(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    messages = [
        {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body,
         "Attributes": {"ApproximateReceiveCount": str(receive_count)}}
        for n, body in enumerate(bodies)
    ]  # fmt: skip
    return sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:q")


def test_one_bad_message_fails_alone_and_the_batch_side_effect_runs_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handled: list[str] = []
    batches: list[list[str]] = []

    def handle(message: QueueMessage) -> None:
        if message.body == "poison":
            raise PoisonMessage("field amount: not a number")
        handled.append(message.body)

    metrics = Metrics(namespace="Test", service="test")
    out = consume(
        event("a", "poison", "b"),
        LambdaContext("f"),  # type: ignore[arg-type]
        handle,
        after_batch=lambda: batches.append(list(handled)),
        metrics=metrics,
    )
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert batches == [["a", "b"]]
    metrics.flush_metrics()
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    values = {k: v for e in emitted for k, v in e.items() if k in ("MessagesProcessed",
              "MessagesFailed", "PoisonMessages")}  # fmt: skip
    assert values == {"MessagesProcessed": [2.0], "MessagesFailed": [1.0], "PoisonMessages": [1.0]}


def test_a_redelivered_message_says_so() -> None:
    seen: list[bool] = []
    consume(
        event("x", receive_count=2),
        LambdaContext("f"),  # type: ignore[arg-type]
        lambda m: seen.append(m.redelivered),
    )
    assert seen == [True]


def test_when_every_message_fails_the_invocation_fails_and_side_effects_still_run() -> None:
    ran: list[int] = []

    def handle(message: QueueMessage) -> None:
        raise RuntimeError("store unavailable")

    with pytest.raises(Exception, match="All records failed"):
        consume(event("a"), LambdaContext("f"), handle, after_batch=lambda: ran.append(1))  # type: ignore[arg-type]
    assert ran == [1]
