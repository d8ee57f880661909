"""Every morning, plans the scan for date (birthday month) and inactivity triggers: one task
per shard of the customers, like a segment run (never one Lambda for millions)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"shards": root().journey_daily.plan()}


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
