"""Scores one shard of a segment run (SQS, one shard a message; a failed shard retries alone)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.segments.models import ShardTask
from crm.segments.recompute import segment_recompute

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def _score(record: SQSRecord) -> None:
    result = segment_recompute().score_shard(ShardTask.model_validate_json(record.body))
    counts = {"scored": result.scored, "written": result.written, "skipped": result.skipped}
    logger.info("shard scored", extra={"run_id": result.run_id, "shard": result.shard, **counts})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event, _score, processor, context))
