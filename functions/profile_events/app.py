"""Folds queued customer events into profiles (SQS, partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.profiles.folding import FoldBatch, event_folding

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def _fold_record(batch: FoldBatch, record: SQSRecord) -> None:
    folding = event_folding()
    event = folding.parse(record.body)
    redelivered = int(record.attributes.approximate_receive_count) > 1
    folded = folding.fold(event, redelivered)
    if folded is not None:
        batch.folded.append(folded)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with event_folding().batch() as batch:
        try:
            return dict(
                process_partial_response(
                    event=event,
                    record_handler=lambda record: _fold_record(batch, record),
                    processor=processor,
                    context=context,
                )
            )
        finally:
            metrics.add_metric("EventsFolded", MetricUnit.Count, len(batch.folded))
            metrics.add_metric("EventsFailed", MetricUnit.Count, len(processor.fail_messages))
