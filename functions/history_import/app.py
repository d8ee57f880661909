"""Runs historical imports (SQS, one import a message; crm.profiles.history_import)."""

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
    def run(message: QueueMessage) -> None:
        record = root().history_import.run_message(message.body, message.redelivered)
        logger.info("import finished", extra={"import_id": record.import_id,
                                              "status": record.status})  # fmt: skip

    return consume(event, context, run, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
