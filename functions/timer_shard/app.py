"""Sweeps one shard of the timers (SQS, one shard a message): queues the wake-ups of the
timers due within the lead on their kinds' queues, then deletes their due items."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume
from crm.timers import shard_task

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def sweep(message: QueueMessage) -> None:
        shard = shard_task(message.body)
        remaining_s = context.get_remaining_time_in_millis() / 1000
        swept = root().timer_sweep.sweep(shard, remaining_s)
        metrics.add_metric("TimerWakeUpsQueued", MetricUnit.Count, swept.queued)
        if swept.unknown_kind:
            metrics.add_metric("TimersOfUnknownKind", MetricUnit.Count, swept.unknown_kind)
        logger.info("shard swept", extra={"shard": swept.shard, "queued": swept.queued,
                                          "more": swept.more})  # fmt: skip

    return consume(event, context, sweep, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
