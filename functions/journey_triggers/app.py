"""Enters customers into journeys and resumes waits for events (SQS: the bus's
CustomerProfileUpdated, CustomerSegmentChanged and AfterSalesStageChanged events, through an
EventBridge rule); TicketEscalated takes customers out of the journeys that exit on it."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.snapstart import before_snapshot
from crm.sqs_consumer import PoisonMessage, QueueMessage, consume

logger = Logger()
metrics = Metrics()
before_snapshot(lambda: root().prime("dynamodb", "sqs", "s3", parts=("journey_engine",)))


def _event(body: str) -> tuple[str, dict[str, Any]]:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise PoisonMessage("not an EventBridge event: body") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("detail"), dict):
        raise PoisonMessage("not an EventBridge event: detail")
    return str(envelope.get("detail-type", "")), envelope["detail"]


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    engine = root().journey_engine

    def trigger(message: QueueMessage) -> None:
        detail_type, detail = _event(message.body)
        entered = engine.on_bus_event(detail_type, detail)
        count = sum(1 for e in entered if e.instance is not None)
        metrics.add_metric("JourneyEntries", MetricUnit.Count, count)

    with engine.journeys_read_once():
        return consume(event, context, trigger, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
