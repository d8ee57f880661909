"""Scores one shard of a segment run (SQS, one shard a message; a failed shard retries alone)."""

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
    def score(message: QueueMessage) -> None:
        result = root().segment_recompute.score_message(
            message.body, message.receive_count, context.get_remaining_time_in_millis
        )
        counts = {"scored": result.scored, "written": result.written, "skipped": result.skipped}
        logger.info("shard scored", extra={"run_id": result.run_id, "shard": result.shard,
                                           "run_over": result.run_over, **counts})  # fmt: skip

    return consume(event, context, score, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
