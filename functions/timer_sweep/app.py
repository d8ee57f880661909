"""Every minute: hands each shard with timers due to a worker (one SQS message per shard), so
a million timers due in one minute are swept by many workers, not one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"shards": root().timer_sweep.plan()}


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
