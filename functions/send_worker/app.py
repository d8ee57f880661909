"""Sends one page of a segment send, lists the next members, or starts a scheduled send (SQS:
SendShardsQueue and the `send` timer kind's queue, one message at a time)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def handle(message: QueueMessage) -> None:
        done = root().sends.handle(message.body, context.get_remaining_time_in_millis)
        logger.info("send task", extra={"result": done})

    return consume(event, context, handle, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
