"""The one way a function consumes an SQS batch.

Each message is handled on its own and reported as a partial batch failure when it fails, so
one customer's bad data never holds up the others: a poison message (one that can never be
handled) comes back until maxReceiveCount sends it to the dead-letter queue, named by its
fields, never its values. Side effects that concern the whole batch (a lake object, one
PutEvents) run once, after every message was tried. Counts go to CloudWatch as metrics.

`consume` hands messages over one by one; `consume_batch` hands the whole batch over at once
(for a function that reads or writes for many messages together, as the event folder does)
and takes back which messages failed and why: the report is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(child=True)


class PoisonMessage(ValueError):
    """A message that can never be handled; its text names fields, never their values."""


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str
    receive_count: int

    @property
    def redelivered(self) -> bool:
        """It came back after an attempt that may have stopped half way."""
        return self.receive_count > 1


def _message(record: SQSRecord) -> QueueMessage:
    return QueueMessage(
        message_id=record.message_id,
        body=record.body,
        receive_count=int(record.attributes.approximate_receive_count),
    )


def consume_batch(
    event: dict[str, Any],
    context: LambdaContext,
    handle_batch: Callable[[Sequence[QueueMessage]], Mapping[str, Exception]],
    *,
    after_batch: Callable[[], None] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Handle an SQS event's messages together (one read, shared work); `handle_batch`
    returns why each failed message failed, by message id, and the batch is reported as
    `consume` reports it: partial failures, poison messages, metrics."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    messages = [_message(SQSRecord(record)) for record in event.get("Records", [])]
    failures: Mapping[str, Exception] = {}

    def settle(message: QueueMessage) -> None:
        failure = failures.get(message.message_id)
        if failure is not None:
            raise failure

    try:
        failures = handle_batch(messages)
    except Exception:
        if after_batch is not None:
            after_batch()  # what was committed before the failure still announces itself
        raise
    return consume(event, context, settle, after_batch=after_batch, metrics=metrics)


def consume(
    event: dict[str, Any],
    context: LambdaContext,
    handle: Callable[[QueueMessage], None],
    *,
    after_batch: Callable[[], None] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Handle every message of an SQS event; returns the partial batch response."""
    # Imported on first use (here and in consume_batch): Powertools' batch utility and data
    # classes load its parser's models (~100 ms), which the API (it imports PoisonMessage
    # through the event transit) never needs.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS)
    poison = 0

    def one(record: SQSRecord) -> None:
        nonlocal poison
        message = _message(record)
        try:
            handle(message)
        except PoisonMessage as exc:
            poison += 1
            logger.warning(
                "poison message",
                extra={"message_id": message.message_id, "receive_count": message.receive_count,
                       "problem": str(exc)},
            )  # fmt: skip
            raise

    try:
        return dict(process_partial_response(event, one, processor, context))
    finally:
        if after_batch is not None:
            after_batch()
        if metrics is not None:
            done, failed = len(processor.success_messages), len(processor.fail_messages)
            metrics.add_metric("MessagesProcessed", MetricUnit.Count, done)
            metrics.add_metric("MessagesFailed", MetricUnit.Count, failed)
            metrics.add_metric("PoisonMessages", MetricUnit.Count, poison)
