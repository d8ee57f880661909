"""Plans a segment run: nightly schedule, or a SegmentRunRequested event on the bus (which
names the run the API recorded and answered)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.segments.runs import requested_run_id

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = root().segment_recompute.plan_run(requested=requested_run_id(event))
    if plan is None:
        return {"run_id": None}
    return {
        "run_id": plan.run_id,
        "shards": plan.shards,
        "sample_size": plan.sample_size,
        "estimated_profiles": plan.estimated_profiles,
    }


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
