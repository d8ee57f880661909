"""Moves journey instances on when their waits' timers fire (SQS, the `journey` timer kind's
wake-ups; each step runs at most once, a redelivered wake-up moves nothing)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume
from crm.timers import WakeUp

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def wake(message: QueueMessage) -> None:
        instance = root().journey_engine.wake(WakeUp.parse(message.body))
        if instance is not None:
            extra = {"journey_id": instance.journey_id, "state": instance.state}
            logger.info("journey woke", extra=extra)

    return consume(event, context, wake, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
