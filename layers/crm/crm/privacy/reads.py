"""Staff's unmasked PII reads on their way to the audit chain.

A read must not answer before it is recorded, but appending to the chain where it happens
costs the read three requests (head Query, conditional PutItem, archive PutObject) and makes
every agent contend for the one head. So the read queues one note (`QueuedPiiReads`: one
SendMessageBatch to AuditQueue, encrypted under PiiKey; ids, field names and a reason code)
and answers; `AuditReadsConsumer` appends a batch of notes at once
(`AuditLog.append_reads`). A note the queue refuses fails the read (503): no unrecorded read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crm.audit import PROFILE_VIEW
from crm.clock import Clock
from crm.errors import Unavailable
from crm.privacy.read_notes import PiiReadNote
from crm.queue import Queue
from crm.sqs_consumer import PoisonMessage, QueueMessage

if TYPE_CHECKING:
    # The API's reads load this module; the chain (and the privacy requests' models it
    # reports with) is the consumer's, built only where notes are appended.
    from crm.privacy.audit import AuditLog

logger = Logger(child=True)


class QueuedPiiReads:
    """`crm.audit.PiiReads` for a stack with the privacy family: one queued note a read."""

    def __init__(self, queue: Queue, clock: Clock, ids: Callable[[], str]) -> None:
        self._queue, self._clock, self._ids = queue, clock, ids

    def unmasked_read(
        self, actor: str, customer_id: str, fields: Sequence[str], why: str = PROFILE_VIEW
    ) -> None:
        note = PiiReadNote(
            read_id=self._ids(),
            actor=actor,
            customer_id=customer_id,
            fields=sorted(fields),
            why=why,
            at=self._clock(),
        )
        try:
            self._queue.send([note.model_dump_json()])
        except Exception as exc:
            # Named by type only; the read is refused rather than served unrecorded.
            logger.warning("pii read not recorded", extra={"error": type(exc).__name__})
            raise Unavailable("the audit trail is unavailable; try again shortly") from exc


class AuditReadsConsumer:
    """AuditQueue's batches: every valid note appended, in the batch's order; a note that can
    never be (not a note) is poison and goes to the DLQ, naming fields, never values."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def handle(self, messages: Sequence[QueueMessage]) -> Mapping[str, Exception]:
        failed: dict[str, Exception] = {}
        notes: dict[str, PiiReadNote] = {}
        for message in messages:
            try:
                notes[message.message_id] = PiiReadNote.model_validate_json(message.body)
            except ValidationError as exc:
                where = sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors()})
                failed[message.message_id] = PoisonMessage(
                    f"not a PII read note: {', '.join(where)}"
                )
        if notes:
            try:
                self._audit.append_reads(list(notes.values()))
            except Exception as exc:
                # Nothing of the batch is lost: SQS hands the notes back (one transaction
                # per 50 commits them all or none; committed ones are recognised then).
                failed.update(dict.fromkeys(notes, exc))
        return failed
