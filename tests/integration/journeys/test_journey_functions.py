"""The journey functions with the sample events of events/: a wake-up or a trigger for
someone unknown is done (not retried), a body that is not an event is a poison message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from crm_local.harness import Suite
from crm_local.template import ROOT
from tests.integration.journeys.conftest import Shop


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return data


def test_a_wake_up_of_an_unknown_instance_is_done(shop: Shop) -> None:
    out = shop.suite.invoke("JourneyStepsFunction", sample("sqs_journey_steps.json"))
    assert out == {"batchItemFailures": []}


def test_a_trigger_for_an_unknown_customer_is_done(shop: Shop) -> None:
    shop.journey({"name": "any", "trigger": {"type": "event", "event_type": "cart_added"},
                  "start": "s", "steps": [{"id": "s", "type": "send", "channel": "sms",
                                           "template_id": "t"}]})  # fmt: skip
    out = shop.suite.invoke("JourneyTriggersFunction", sample("sqs_journey_triggers.json"))
    assert out == {"batchItemFailures": []}
    assert shop.dispatcher.sent == {}


def test_a_body_that_is_no_event_is_poison(suite: Suite) -> None:
    for function, name in (("JourneyTriggersFunction", "sqs_journey_triggers.json"),
                           ("JourneyStepsFunction", "sqs_journey_steps.json")):  # fmt: skip
        event = sample(name)
        event["Records"][0]["body"] = json.dumps({"detail-type": "Nope", "detail": {}})
        # The whole batch failed: the runtime hands every message back (to the DLQ in time).
        with pytest.raises(BatchProcessingError, match="All records failed"):
            suite.invoke(function, event)


def test_the_journeys_are_read_once_per_batch_of_triggers(shop: Shop) -> None:
    from crm import aws

    shop.journey({"name": "any", "trigger": {"type": "event", "event_type": "cart_added"},
                  "start": "s", "steps": [{"id": "s", "type": "send", "channel": "sms",
                                           "template_id": "t"}]})  # fmt: skip
    customers = [shop.customer(f"batch-{n}") for n in range(3)]
    template = sample("sqs_journey_triggers.json")
    records = []
    for n, cid in enumerate(customers):
        envelope = json.loads(template["Records"][0]["body"])
        envelope["detail"]["customer_id"] = cid
        records.append({**template["Records"][0], "messageId": f"m-{n}",
                        "body": json.dumps(envelope)})  # fmt: skip
    heads: list[str] = []

    def watch(params: dict[str, Any], **_: Any) -> None:
        value = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S")
        if value == "JOURNEYS":
            heads.append(value)

    client = aws.client_for("dynamodb", False)
    client.meta.events.register("provide-client-params.dynamodb.Query", watch, unique_id="heads")
    try:
        out = shop.suite.invoke("JourneyTriggersFunction", {"Records": records})
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.Query", unique_id="heads")
    assert out == {"batchItemFailures": []}
    assert len(heads) == 1
    assert shop.dispatcher.steps() == sorted((cid, "s") for cid in customers)
