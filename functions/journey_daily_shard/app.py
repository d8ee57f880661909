"""Scans one shard of the customers for date and inactivity triggers (SQS, one shard a
message; a shard not done in time hands the rest on as a new message)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def scan(message: QueueMessage) -> None:
        done = root().journey_daily.scan(message.body, context.get_remaining_time_in_millis)
        metrics.add_metric("JourneyEntries", MetricUnit.Count, done.entered)
        logger.info("daily shard scanned", extra={"shard": done.shard, "read": done.read,
                                                  "entered": done.entered,
                                                  "handed_on": done.handed_on})  # fmt: skip

    return consume(event, context, scan, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
