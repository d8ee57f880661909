"""Every night: compacts the lake's JSON Lines of the days before into Parquet for the
analytics metrics (Athena in AWS), and the days named by the fold's late-day markers (history
loaded late), deleting those markers. Idempotent; `{"days": ["2026-11-01", ...]}` backfills."""

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
    days = event.get("days") if isinstance(event, dict) else None
    crm = root()
    done = crm.lake_compaction.run(crm.clock(), days if isinstance(days, list) else None)
    metrics.add_metric("LakeRowsCompacted", MetricUnit.Count, done.rows)
    logger.info(
        "lake compacted", extra={"days": done.days, "files": done.files, "markers": done.markers}
    )
    return {"days": done.days, "files": done.files, "rows": done.rows, "markers": done.markers}


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
