"""Attributes paid orders to campaigns and redeems their coupon codes (SQS: the paid orders of
CustomerProfileUpdated events from the bus, through ConversionsQueue)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.campaigns.conversions import orders_paid
from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def handle(message: QueueMessage) -> None:
        counted = root().conversions.attribute_all(orders_paid(message.body))
        logger.info("orders attributed", extra={"campaigns": len(counted)})

    return consume(event, context, handle, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
