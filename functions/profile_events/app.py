"""Folds queued customer events into profiles (SQS, partial batch failures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.profiles.event_folding import Folded
from crm.snapstart import before_snapshot
from crm.sqs_consumer import QueueMessage, consume_batch

logger = Logger()
metrics = Metrics()
# The snapshot holds what the first batch builds: the folding and the parts it uses.
before_snapshot(
    lambda: root().prime(
        "dynamodb", "s3", "events", "kms", "secretsmanager", parts=("event_folding",)
    )
)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    folding = root().event_folding
    folded: list[Folded] = []

    def fold(messages: Sequence[QueueMessage]) -> Mapping[str, Exception]:
        result = folding.fold_batch(messages)
        folded.extend(result.folded)
        return result.failed

    return consume_batch(
        event, context, fold, after_batch=lambda: folding.publish(folded), metrics=metrics
    )


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
