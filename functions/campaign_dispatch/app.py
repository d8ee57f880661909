"""Dispatches deferred campaign messages when their timer fires (SQS, the `dispatch` timer
kind): consent, caps and quiet hours are checked again; the message is sent at most once."""

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
        outcome = root().campaign_dispatch.wake(WakeUp.parse(message.body))
        # Ids and the status only: the message's body and address never reach the logs.
        logger.info("deferred message dispatched", extra={
            "status": outcome.status if outcome else "stale",
            "reason": outcome.reason if outcome else None,
        })  # fmt: skip

    return consume(event, context, wake, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
