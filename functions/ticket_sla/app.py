"""SLA wake-ups of tickets (SQS, kind `sla` of the timers): re-reads the ticket's clock and, when
it really reached 75% or 100% of its target, records it once, publishes TicketSlaWarning or
TicketSlaBreached, and escalates on a breach. The same queue brings after-sales stage
deadlines (kind `aftersales`): a case still in the stage publishes AfterSalesStageOverdue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume
from crm.tickets.aftersales import OVERDUE_KIND
from crm.timers import WakeUp

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def wake(message: QueueMessage) -> None:
        wake_up = WakeUp.parse(message.body)
        if wake_up.kind == OVERDUE_KIND:
            if root().aftersales.stage_due(wake_up) == "overdue":
                metrics.add_metric("AfterSalesStagesOverdue", MetricUnit.Count, 1)
            return
        outcome = root().tickets.sla_due(wake_up)
        if outcome in ("warned", "breached"):
            metrics.add_metric(f"TicketSla{outcome.capitalize()}", MetricUnit.Count, 1)

    return consume(event, context, wake, after_batch=root().flush_facts, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
