"""Every five minutes: fails segment runs that stopped making progress, naming what is missing
(a crashed worker or planner cannot report its own failure)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ended = root().segment_watchdog.check()
    # Every check reports, 0 included, so the alarm (SegmentRunStuckAlarm) sees a live watchdog.
    metrics.add_metric("SegmentRunsStuck", MetricUnit.Count, len(ended))
    return {"ended": [run.run_id for run in ended]}


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
