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
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(child=True)


class PoisonMessage(ValueError):
    """A message that can never be handled; its text names fields, never their values."""


class QueueMessage(NamedTuple):
    message_id: str
    body: str
    receive_count: int

    @property
    def redelivered(self) -> bool:
        """It came back after an attempt that may have stopped half way."""
        return self.receive_count > 1


def _message(record: Mapping[str, Any]) -> QueueMessage:
    # The record as Lambda hands it over (an SQS event source mapping's record shape).
    return QueueMessage(
        message_id=record["messageId"],
        body=record["body"],
        receive_count=int(record["attributes"]["ApproximateReceiveCount"]),
    )


def _records(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise ValueError("Invalid event format. Please ensure batch event is a valid SQS event.")
    return records


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
    messages = [_message(record) for record in _records(event)]
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
    """Handle every message of an SQS event; returns the partial batch response.

    What Powertools' BatchProcessor (SQS) answers, without importing its batch package: its
    data classes and parser models cost a cold start ~30-50 ms of CPU (docs/benchmarks.md) for
    a loop this short. A failed message is reported by id; when every message failed, the
    invocation fails with Powertools' BatchProcessingError (imported then), so the runtime hands
    the whole batch back."""
    records = _records(event)
    done = failed = poison = 0
    errors: list[Exception] = []
    failures: list[dict[str, str]] = []
    try:
        for record in records:
            message = _message(record)
            try:
                handle(message)
            except PoisonMessage as exc:
                poison += 1
                logger.warning(
                    "poison message",
                    extra={"message_id": message.message_id,
                           "receive_count": message.receive_count, "problem": str(exc)},
                )  # fmt: skip
                failed += 1
                errors.append(exc)
                failures.append({"itemIdentifier": message.message_id})
            except Exception as exc:
                # Named by its type and the message id only: its text may quote customer data.
                logger.warning(
                    "message failed",
                    extra={"message_id": message.message_id, "error": type(exc).__name__},
                )
                failed += 1
                errors.append(exc)
                failures.append({"itemIdentifier": message.message_id})
            else:
                done += 1
        if records and failed == len(records):
            _fail_whole_batch(errors)
        return {"batchItemFailures": failures}
    finally:
        if after_batch is not None:
            after_batch()
        if metrics is not None:
            metrics.add_metric("MessagesProcessed", MetricUnit.Count, done)
            metrics.add_metric("MessagesFailed", MetricUnit.Count, failed)
            metrics.add_metric("PoisonMessages", MetricUnit.Count, poison)


def _fail_whole_batch(errors: list[Exception]) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    raise BatchProcessingError(
        msg=f"All records failed processing. {len(errors)} individual errors logged separately "
        "below.",
        child_exceptions=[(type(e), e, e.__traceback__) for e in errors],
    )
