"""Folding queued customer events into profiles, exactly once, with PII-free side effects.

State changes exactly once: the event's ledger entry is put (only if new) in the same
transaction that replaces the profile's aggregates. Side effects (the lake row and the bus
event) follow the commit. When a message comes back after a failed attempt its side effects
may not have happened, so a redelivered duplicate repeats them (lake rows carry event_id, bus
consumers are idempotent); a first-delivery duplicate, a client resending an event, does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crm.bus import Bus
from crm.clock import Clock, IdFactory, new_id, utc_now
from crm.config import settings
from crm.errors import validation_problems
from crm.events import CustomerProfileUpdated
from crm.keys import DataKeys, blind_index, data_keys
from crm.lake import Lake
from crm.pii import BlindIndex
from crm.profiles.activity import (
    CUSTOMER_EVENT,
    AfterSalesEvent,
    BrowseEvent,
    CustomerEvent,
    OrderEvent,
)
from crm.profiles.fold import fold_event
from crm.profiles.pii_codec import NOTE_FIELD, PiiCodec, note_field
from crm.profiles.record import LedgerEntry
from crm.profiles.service import ProfileService, profile_service, retry_on_stale
from crm.profiles.store import AppendEntry, DuplicateEntry
from crm.segments.catalog import SegmentCatalog, segment_catalog
from crm.segments.store import MembershipChange

logger = Logger(child=True)


class PoisonMessage(ValueError):
    """A queued message that can never be folded; it ends in the dead-letter queue."""


@dataclass(frozen=True)
class Folded:
    event: CustomerEvent
    customer_id: str
    rev: int | None  # None: a duplicate whose side effects are repeated
    segment_changes: tuple[MembershipChange, ...] = ()


def timeline_body(event: CustomerEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "channel": event.channel,
    }
    if isinstance(event, OrderEvent):
        body |= {"order_id": event.order_id, "amount": str(event.amount)}
        if event.items:
            body["category"] = event.items[0].category
    elif isinstance(event, BrowseEvent):
        body |= {"sku": event.sku, "category": event.category}
    elif isinstance(event, AfterSalesEvent):
        amount = None if event.amount is None else str(event.amount)
        body |= {"order_id": event.order_id, "case": event.case, "amount": amount}
    return body


def lake_row(event: CustomerEvent, customer_id: str, index: BlindIndex) -> dict[str, Any]:
    """The event as the lake keeps it: a pseudonymous id, no identity, no free text."""
    row = event.model_dump(mode="json", exclude={"customer_id", "identity", "query", "note"})
    row["customer_pid"] = index.pseudonym(customer_id)
    return row


@dataclass
class FoldBatch:
    """Collects what one SQS batch folded, for one round of side effects at its end."""

    folded: list[Folded] = field(default_factory=list)


class EventFolding:
    def __init__(
        self,
        profiles: ProfileService,
        lake: Lake,
        bus: Bus,
        segments: SegmentCatalog,
        keys: DataKeys,
        index: BlindIndex | None = None,
        clock: Clock = utc_now,
        ids: IdFactory = new_id,
    ) -> None:
        self._profiles = profiles
        self._lake = lake
        self._bus = bus
        self._segments = segments
        self._keys = keys
        self._index = index
        self._clock = clock
        self._ids = ids

    def parse(self, body: str) -> CustomerEvent:
        """Raises PoisonMessage naming the fields, never their values (they may hold PII)."""
        try:
            return CUSTOMER_EVENT.validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{p.field}: {p.message}" for p in validation_problems(exc))
            raise PoisonMessage(f"not a valid customer event ({problems})") from None

    def fold(self, event: CustomerEvent, redelivered: bool) -> Folded | None:
        """Apply one event; None when it was already applied and needs nothing more."""
        customer_id = event.customer_id
        if customer_id is None:
            assert event.identity is not None  # the model guarantees one of the two
            customer_id = self._profiles.resolve_identity(event.identity)

        def attempt() -> Folded | None:
            record = self._profiles.load(customer_id)
            record.aggregates = fold_event(record.aggregates, event)
            # Rule segments follow events within seconds, not at the next nightly run.
            before = set(record.segments)
            after = self._segments.with_rule_segments(record, self._clock())
            record.segments = sorted(after)
            body = timeline_body(event)
            if isinstance(event, AfterSalesEvent) and event.note:
                cipher = PiiCodec(self._keys).cipher(record)  # creates the key if none yet
                body[NOTE_FIELD] = cipher.seal(note_field(event.event_id), event.note)
            entry = LedgerEntry(
                key=event.dedup_key,
                kind="EVT",
                customer_id=record.customer_id,
                at=event.occurred_at,
                body=body,
            )
            try:
                self._profiles.save(record, AppendEntry(entry))
            except DuplicateEntry as duplicate:
                logger.info("duplicate event skipped", extra={"dedup_key": event.dedup_key})
                owner = str(duplicate.existing.get("customer_id", record.customer_id))
                return Folded(event, owner, None) if redelivered else None
            changes = self._segments.transitions(record.customer_id, before, after)
            return Folded(event, record.customer_id, record.rev, tuple(changes))

        return retry_on_stale(attempt)

    @contextmanager
    def batch(self) -> Iterator[FoldBatch]:
        batch = FoldBatch()
        yield batch
        self.publish(batch.folded)

    def publish(self, folded: list[Folded]) -> None:
        if not folded:
            return
        index = self._index or blind_index()
        rows = [lake_row(f.event, f.customer_id, index) for f in folded]
        self._lake.write_events(rows, batch_id=self._ids())
        latest: dict[str, Folded] = {}
        types: dict[str, set[str]] = {}
        for f in folded:
            if f.rev is None:
                continue
            if f.customer_id not in latest or f.rev > (latest[f.customer_id].rev or 0):
                latest[f.customer_id] = f
            types.setdefault(f.customer_id, set()).add(f.event.type)
        self._segments.apply([c for f in folded for c in f.segment_changes], run_id=None)
        now = self._clock()
        self._bus.publish(
            [
                CustomerProfileUpdated(
                    customer_id=customer_id,
                    rev=f.rev or 0,
                    changed=["aggregates", "timeline"],
                    event_types=sorted(types[customer_id]),
                    occurred_at=now,
                )
                for customer_id, f in latest.items()
            ]
        )


@cache
def event_folding() -> EventFolding:
    config = settings()
    return EventFolding(
        profile_service(),
        Lake(config.lake_bucket),
        Bus(config.event_bus_name),
        segment_catalog(),
        data_keys(),
    )
