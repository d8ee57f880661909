"""Staff's unmasked PII reads (SQS, AuditQueue), appended to the privacy audit chain in
batches: one head read, one transaction of up to 50 linked entries, one archive object
(crm.privacy.reads, docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.coldstart import initialized
from crm.composition import root
from crm.sqs_consumer import QueueMessage, consume_batch

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def append(messages: Sequence[QueueMessage]) -> Mapping[str, Exception]:
        return root().audit_reads.handle(messages)

    return consume_batch(event, context, append, metrics=metrics)


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
