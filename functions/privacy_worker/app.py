"""Privacy work (SQS, PrivacyQueue): one store's step of a request per message (export, erase
or inventory), the request's finish (verification, the bundle), and the deadline wake-ups of
timer kind `privacy` (reminders; a missed deadline counts PrivacyDeadlinesMissed)."""

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
    def work(message: QueueMessage) -> None:
        outcome = root().privacy_executor.handle(message.body)
        if outcome == "missed":
            metrics.add_metric("PrivacyDeadlinesMissed", MetricUnit.Count, 1)

    return consume(event, context, work, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
