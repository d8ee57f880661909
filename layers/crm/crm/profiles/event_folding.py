"""Folding queued customer events into profiles, exactly once, with PII-free side effects.

State changes exactly once: the event's ledger entry is put (only if new) in the same
transaction that replaces the profile's aggregates. Side effects (the lake row and the bus
event) follow the commit. When a message comes back after a failed attempt its side effects
may not have happened, so a redelivered duplicate repeats them (lake rows carry event_id, bus
consumers are idempotent); a first-delivery duplicate, a client resending an event, does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from crm.bus import Bus
from crm.events import CustomerProfileUpdated
from crm.lake import Lake
from crm.pii import BlindIndex
from crm.profiles.aggregates import fold_event
from crm.profiles.customer_events import AfterSalesEvent, BrowseEvent, CustomerEvent, OrderEvent
from crm.profiles.identity import IdentityResolution
from crm.profiles.pii_codec import NOTE_FIELD, note_field
from crm.profiles.records import LedgerEntry, OrderPayment, ProfileRecord, StoredIdentity
from crm.profiles.service import ProfileService, SegmentShift
from crm.profiles.store import AppendEntry, DuplicateEntry, RecordRefund, Write
from crm.profiles.transit import Arrival, EventTransit

logger = Logger(child=True)


@dataclass(frozen=True)
class Folded:
    event: CustomerEvent
    customer_id: str
    rev: int | None  # None: a duplicate whose side effects are repeated
    shift: SegmentShift | None = None


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


class EventFolding:
    def __init__(
        self,
        profiles: ProfileService,
        identities: IdentityResolution,
        lake: Lake,
        bus: Bus,
        index: Callable[[], BlindIndex],
        transit: EventTransit,
    ) -> None:
        self._profiles = profiles
        self._identities = identities
        self._lake = lake
        self._bus = bus
        self._index = index
        self._transit = transit

    def parse(self, body: str) -> Arrival:
        """Raises PoisonMessage naming the fields, never their values (they may hold PII)."""
        return self._transit.unpack(body)

    def fold_message(self, body: str, redelivered: bool) -> Folded | None:
        arrival = self.parse(body)
        return self.fold(arrival.event, redelivered, arrival.identity)

    def fold(
        self, event: CustomerEvent, redelivered: bool, identity: StoredIdentity | None = None
    ) -> Folded | None:
        """Apply one event; None when it was already applied and needs nothing more.

        An event that names an identity instead of a customer id comes with it in stored form
        (queued events) or carries it itself (events queued before they travelled sealed)."""
        customer_id = event.customer_id
        if identity is not None:
            customer_id = self._identities.resolve_stored(identity)
            event = event.model_copy(update={"customer_id": customer_id})
        elif customer_id is None:
            assert event.identity is not None  # the model guarantees one of the two
            customer_id = self._identities.resolve_identity(event.identity)
        profiles = self._profiles

        def attempt() -> Folded | None:
            record = profiles.load(customer_id)
            payment = self._payment_refunded(record, event)
            record.aggregates, asked = fold_event(record.aggregates, event, payment)
            body = timeline_body(event)
            if isinstance(event, AfterSalesEvent) and event.note:
                cipher = profiles.codec().cipher(record)  # creates the key if none yet
                body[NOTE_FIELD] = cipher.seal(note_field(event.event_id), event.note)
            entry = LedgerEntry(
                key=event.dedup_key,
                kind="EVT",
                customer_id=record.customer_id,
                at=event.occurred_at,
                body=body,
            )
            try:
                # Rule segments follow events within seconds; who moved is announced once
                # per batch, with the batch's other side effects.
                shift = profiles.save(record, *self._ledger_writes(entry, event, payment, asked),
                                      announce=False)  # fmt: skip
            except DuplicateEntry as duplicate:
                logger.info("duplicate event skipped", extra={"dedup_key": event.dedup_key})
                owner = str(duplicate.existing.get("customer_id", record.customer_id))
                return Folded(event, owner, None) if redelivered else None
            return Folded(event, record.customer_id, record.rev, shift)

        return profiles.retry(attempt)

    def _payment_refunded(self, record: ProfileRecord, event: CustomerEvent) -> OrderPayment | None:
        """For a refund, the payment of its order if this customer's profile (or one merged
        into it) folded it; the refund waits for it otherwise."""
        if not (isinstance(event, OrderEvent) and event.type == "order_refunded"):
            return None
        payment = self._profiles.store.payment(event.order_id)
        if payment is None or payment.customer_id not in {record.customer_id, *record.merged_from}:
            return None
        return payment

    @staticmethod
    def _ledger_writes(
        entry: LedgerEntry,
        event: CustomerEvent,
        payment: OrderPayment | None,
        asked: Decimal | None,
    ) -> list[Write]:
        """The event's ledger entry; a payment's records what refunds asked back before it,
        and a refund of a known payment raises that figure on the payment's entry."""
        if isinstance(event, OrderEvent) and event.type == "order_paid":
            return [AppendEntry(entry, refunded=asked)]
        writes: list[Write] = [AppendEntry(entry)]
        if isinstance(event, OrderEvent) and payment is not None and asked is not None:
            writes.append(RecordRefund(event.order_id, before=payment.refunded, after=asked))
        return writes

    def publish(self, folded: list[Folded]) -> None:
        if not folded:
            return
        index = self._index()
        rows = [lake_row(f.event, f.customer_id, index) for f in folded]
        self._lake.write_events(rows, batch_id=self._profiles.ids())
        latest: dict[str, Folded] = {}
        types: dict[str, set[str]] = {}
        for f in folded:
            if f.rev is None:
                continue
            if f.customer_id not in latest or f.rev > (latest[f.customer_id].rev or 0):
                latest[f.customer_id] = f
            types.setdefault(f.customer_id, set()).add(f.event.type)
        self._profiles.rules.announce([f.shift for f in folded if f.shift is not None])
        now = self._profiles.clock()
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
