"""Folding a batch of queued customer events into profiles, exactly once, with PII-free side
effects.

A batch is read with one BatchGetItem (its customers' profiles and the payments its refunds
count against) and each customer's events of the batch are written in one transaction (more
only past DynamoDB's 100 items or 4 MB per transaction): the events' ledger entries are put
(only if new) in the same transaction that replaces the profile under a condition on the
revision read. A batch of ten events of ten customers costs one read and ten transactions; of
one customer, one read and one transaction.

- Exactly once: an entry that exists makes DynamoDB cancel the transaction, naming the entry
  in its CancellationReasons; the duplicate is dropped and the customer's other events commit
  in a new try. Duplicates inside one batch are dropped before anything is written.
- One customer's trouble is its own: a message that can never fold (poison), a customer that
  does not exist, a profile that keeps changing under the fold (optimistic concurrency: the
  customer alone is read again and retried with jittered backoff) fail that customer's
  messages only; the rest of the batch commits. An event that cannot fold in memory fails alone.
- Side effects (the lake rows, rule-segment shifts, the bus entries) follow the commits, once
  per batch: one bus entry per customer (its paid orders inside), so a batch of up to ten
  customers is one PutEvents. When a message comes back after a failed attempt its side
  effects may not have happened, so a redelivered duplicate repeats them (lake rows carry
  event_id, bus consumers are idempotent); a first-delivery duplicate, a client resending an
  event, does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from crm.bus import Bus
from crm.dynamo import MAX_ITEM_BYTES, MAX_TRANSACT_BYTES, MAX_TRANSACT_ITEMS
from crm.events import BusEvent, CustomerProfileUpdated, PaidOrder
from crm.lake import Lake
from crm.pii import BlindIndex
from crm.profiles.aggregates import fold_event
from crm.profiles.customer_events import (
    AFTER_SALES_CLOSED,
    AfterSalesEvent,
    BrowseEvent,
    CustomerEvent,
    OrderEvent,
)
from crm.profiles.identity import IdentityResolution
from crm.profiles.pii_codec import NOTE_FIELD, PiiCodec, note_field
from crm.profiles.records import LedgerEntry, OrderPayment, ProfileRecord, StoredIdentity
from crm.profiles.service import Loaded, ProfileService, SegmentShift
from crm.profiles.store import AppendEntry, DuplicateEntry, RecordRefund, Write
from crm.profiles.transit import EventTransit
from crm.sqs_consumer import QueueMessage

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
        if event.status != "opened":
            body["status"] = event.status
    return body


def lake_row(event: CustomerEvent, customer_id: str, index: BlindIndex) -> dict[str, Any]:
    """The event as the lake keeps it: a pseudonymous id, no identity, no free text."""
    row = event.model_dump(
        mode="json", exclude={"customer_id", "identity", "query", "note", "coupon_codes"}
    )
    row["customer_pid"] = index.pseudonym(customer_id)
    return row


@dataclass(frozen=True)
class Delivery:
    """A message's event, its customer named (an identity resolved)."""

    message_id: str
    event: CustomerEvent
    redelivered: bool


@dataclass
class BatchFolded:
    folded: list[Folded] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)  # message id -> why


def _order(event: CustomerEvent, kind: str) -> str | None:
    """The order of an order event of this kind."""
    if isinstance(event, OrderEvent) and event.type == kind:
        return event.order_id
    return None


def refunded_orders(deliveries: Iterable[Delivery]) -> set[str]:
    """Orders whose payment the batch must read: those its refunds count against."""
    return refunded_by(d.event for d in deliveries)


def refunded_by(events: Iterable[CustomerEvent]) -> set[str]:
    """The orders these events refund."""
    return {order for event in events if (order := _order(event, "order_refunded"))}


# What a transaction holds besides its ledger entries: the profile (up to DynamoDB's item size).
_ENTRY_BYTES_BUDGET = MAX_TRANSACT_BYTES - MAX_ITEM_BYTES
_REFUND_UPDATE_BYTES = 512  # an update of a payment's `refunded`: a key and two numbers


@dataclass
class _Transaction:
    """Events of one customer folded into a copy of its profile, to commit as one
    TransactWriteItems: the profile, each event's ledger entry, and for a payment stored before,
    what its refunds asked back."""

    record: ProfileRecord
    payments: dict[str, OrderPayment]  # as they are after these events
    entries: list[tuple[Delivery, LedgerEntry]] = field(default_factory=list)
    paid: set[str] = field(default_factory=set)  # orders whose payment entry is put here
    refunds: dict[str, Decimal] = field(default_factory=dict)  # stored payment -> refunded before
    items: int = 1  # the profile
    entry_bytes: int = 0

    def fits(self, items: int, size: int) -> bool:
        if not self.entries:
            return True
        return (
            self.items + items <= MAX_TRANSACT_ITEMS
            and self.entry_bytes + size <= _ENTRY_BYTES_BUDGET
        )

    def writes(self) -> list[Write]:
        writes: list[Write] = []
        for delivery, entry in self.entries:
            event = delivery.event
            if isinstance(event, OrderEvent) and event.type == "order_paid":
                writes.append(AppendEntry(entry, refunded=self.payments[event.order_id].refunded))
            else:
                writes.append(AppendEntry(entry))
        writes += [
            RecordRefund(order_id, before=before, after=self.payments[order_id].refunded)
            for order_id, before in self.refunds.items()
        ]
        return writes


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

    def fold_batch(self, messages: Sequence[QueueMessage]) -> BatchFolded:
        """Fold an SQS batch: what was applied (to publish) and why each failed message failed."""
        out = BatchFolded()
        self.fold_deliveries(self._deliveries(messages, out), out)
        return out

    def fold_deliveries(
        self,
        deliveries: Sequence[Delivery],
        out: BatchFolded,
        *,
        evaluate_rules: bool = True,
        codec: PiiCodec | None = None,
        new: Mapping[str, tuple[ProfileRecord, Sequence[Write]]] | None = None,
        read: Loaded | None = None,
    ) -> None:
        """The folding core the queue and the history import (crm.profiles.history_import)
        share: events whose customer is named, read with one BatchGetItem (per 100 keys) and
        written in a transaction per customer. `evaluate_rules=False` leaves rule segments to
        the next segment run (an import's history is not news); a `codec` that created or
        unwrapped the customers' data keys already saves unwrapping them again. `new` are
        customers not written yet (with the writes claiming their identities): nothing is read
        for them, and each is created by the transaction of its first events. `read` are
        profiles and payments the caller read already (an import reads its chunk's once, for
        resolution and folding): its customers are not read again, nor are payments (it holds
        those of the deliveries' refunds)."""
        if not deliveries:
            return
        new = new or {}
        known: Loaded = read or Loaded()
        unread = {
            c
            for d in deliveries
            if (c := str(d.event.customer_id)) not in new
            and c not in known.live
            and c not in known.missing
        }
        try:
            loaded = self._profiles.load_many(
                unread, refunded_orders(deliveries) if read is None else ()
            )
        except Exception as exc:  # the batch's one read failed: every message comes back
            out.failed |= {d.message_id: exc for d in deliveries}
            return
        loaded.live |= known.live
        loaded.missing |= known.missing
        loaded.payments |= known.payments
        loaded.live |= {customer_id: record for customer_id, (record, _) in new.items()}
        groups: dict[str, list[Delivery]] = {}
        records: dict[str, ProfileRecord] = {}
        for d in deliveries:
            asked = str(d.event.customer_id)
            record = loaded.live.get(asked)
            if record is None:
                out.failed[d.message_id] = loaded.missing[asked]
                continue
            # Events of a merged-away id land on the profile that absorbed it.
            records.setdefault(record.customer_id, record)
            groups.setdefault(record.customer_id, []).append(d)
        # One per batch: a customer's key is unwrapped once.
        codec = codec or self._profiles.codec()
        for customer_id, group in groups.items():
            left = self._first_of_each(group, customer_id, out)
            try:
                self.fold_customer(
                    records[customer_id], left, loaded.payments, codec, out,
                    evaluate_rules=evaluate_rules,
                    creating=new[customer_id][1] if customer_id in new else (),
                )  # fmt: skip
            except Exception as exc:
                logger.warning(
                    "a customer's events failed",
                    extra={"customer_id": customer_id, "events": len(left),
                           "error": type(exc).__name__},
                )  # fmt: skip
                out.failed |= {d.message_id: exc for d in left}

    def _deliveries(self, messages: Sequence[QueueMessage], out: BatchFolded) -> list[Delivery]:
        """Parse every message and name every event's customer: the identities the batch's
        events name are resolved together."""
        parsed: list[tuple[QueueMessage, CustomerEvent, StoredIdentity | None]] = []
        for message in messages:
            try:
                arrival = self._transit.unpack(message.body)  # PoisonMessage names fields only
                identity = arrival.identity
                if identity is None and arrival.event.customer_id is None:
                    # Queued before events travelled sealed: the identity as the client sent it.
                    assert arrival.event.identity is not None  # the model guarantees one
                    identity = self._profiles.stored_identity(arrival.event.identity)
            except Exception as exc:
                out.failed[message.message_id] = exc
                continue
            parsed.append((message, arrival.event, identity))
        named = [identity for _, _, identity in parsed if identity is not None]
        owners: dict[tuple[str, str], str | Exception] = {}
        if named:
            try:
                owners = self._identities.resolve_all(named)
            except Exception as exc:
                owners = {(i.channel.value, i.key): exc for i in named}
        deliveries = []
        for message, event, identity in parsed:
            if identity is not None:
                owner = owners[(identity.channel.value, identity.key)]
                if isinstance(owner, Exception):
                    out.failed[message.message_id] = owner
                    continue
                event = event.model_copy(update={"customer_id": owner})
            deliveries.append(Delivery(message.message_id, event, message.redelivered))
        return deliveries

    def _first_of_each(
        self, group: list[Delivery], customer_id: str, out: BatchFolded
    ) -> list[Delivery]:
        """A customer's events of the batch, each idempotency key once: a later copy is a
        duplicate of the first (one transaction cannot put an item twice)."""
        first: dict[str, Delivery] = {}
        for d in group:
            if d.event.dedup_key in first:
                self._skip(d, customer_id, out)
            else:
                first[d.event.dedup_key] = d
        return list(first.values())

    @staticmethod
    def _skip(delivery: Delivery, owner: str, out: BatchFolded) -> None:
        logger.info("duplicate event skipped", extra={"dedup_key": delivery.event.dedup_key})
        if delivery.redelivered:
            out.folded.append(Folded(delivery.event, owner, None))

    def fold_customer(
        self,
        record: ProfileRecord,
        left: list[Delivery],
        payments: dict[str, OrderPayment],
        codec: PiiCodec,
        out: BatchFolded,
        *,
        evaluate_rules: bool = True,
        creating: Sequence[Write] = (),
    ) -> None:
        """Fold one customer's events of the batch: one transaction unless AWS's limits need
        more. `left` loses each event as it is settled (committed, a duplicate, or failed on
        its own); what it still holds when this raises failed with it. With `creating` (the
        claims of a new customer's identities) the profile does not exist yet: the first
        transaction puts it with them."""
        profiles = self._profiles
        fresh = True
        claims = list(creating)

        def attempt() -> None:
            nonlocal record, payments, fresh, claims
            if not fresh:  # the profile changed since it was read: read it (and only it) again
                loaded = profiles.load_many([record.customer_id], refunded_orders(left))
                if record.customer_id not in loaded.live:
                    raise loaded.missing[record.customer_id]
                record, payments = loaded.live[record.customer_id], loaded.payments
            fresh = False
            while left:
                txn = self._transaction(record, left, payments, codec, out, reserved=len(claims))
                if not txn.entries:
                    continue  # every event it looked at was settled without a write
                try:
                    shift = profiles.save(
                        txn.record, *claims, *txn.writes(), evaluate_rules=evaluate_rules,
                        announce=False, create=bool(claims),
                    )  # fmt: skip
                except DuplicateEntry as duplicate:
                    dropped = self._drop_duplicates(txn, duplicate, left, out)
                    if not dropped:
                        raise
                    # A data key created for this try was never stored; the next try commits
                    # on the same revision, so it may store it.
                    record.wrapped_key = record.wrapped_key or txn.record.wrapped_key
                    continue
                record, payments, claims = txn.record, txn.payments, []
                for n, (delivery, _) in enumerate(txn.entries):
                    left.remove(delivery)
                    # Rule segments follow events within seconds; who moved is announced
                    # once per batch, with the batch's other side effects.
                    out.folded.append(
                        Folded(delivery.event, record.customer_id, record.rev,
                               shift if n == 0 else None)
                    )  # fmt: skip
            if claims:  # none of its events made a write: the customer is created alone
                profiles.save(record, *claims, evaluate_rules=evaluate_rules, announce=False,
                              create=True)  # fmt: skip
                claims = []

        profiles.retry(attempt)

    def _drop_duplicates(
        self, txn: _Transaction, duplicate: DuplicateEntry, left: list[Delivery], out: BatchFolded
    ) -> bool:
        """Settle the events whose ledger entry exists (DynamoDB named them); the others of
        the customer go in the next try."""
        dropped = False
        for delivery, entry in txn.entries:
            existing = duplicate.duplicates.get(entry.key)
            if existing is None:
                continue
            left.remove(delivery)
            self._skip(delivery, str(existing.get("customer_id", txn.record.customer_id)), out)
            dropped = True
        return dropped

    def _transaction(
        self,
        base: ProfileRecord,
        left: list[Delivery],
        payments: dict[str, OrderPayment],
        codec: PiiCodec,
        out: BatchFolded,
        reserved: int = 0,
    ) -> _Transaction:
        """Fold as many of `left` as one transaction holds into a copy of the profile. Events
        settled here (a payment already stored; one that cannot fold) leave `left`."""
        # `reserved`: items the transaction holds besides the profile and the events' writes.
        txn = _Transaction(base.model_copy(deep=True), dict(payments), items=1 + reserved)
        record = txn.record
        for delivery in list(left):
            event = delivery.event
            paid, refunded = _order(event, "order_paid"), _order(event, "order_refunded")
            if paid in payments:  # its entry exists: a duplicate, no need to ask DynamoDB
                left.remove(delivery)
                self._skip(delivery, payments[paid].customer_id, out)
                continue
            try:
                entry = self._entry(record, event, codec)
                payment = self._payment_refunded(record, refunded, txn.payments)
                updates_payment = (
                    payment is not None and refunded not in txn.paid and refunded not in txn.refunds
                )
                items = 1 + int(updates_payment)
                size = self._profiles.store.write_bytes(AppendEntry(entry, refunded=Decimal(0)))
                size += _REFUND_UPDATE_BYTES * int(updates_payment)
                if not txn.fits(items, size):
                    break
                record.aggregates, asked = fold_event(record.aggregates, event, payment)
            except Exception as exc:  # this event alone cannot fold; the others still do
                logger.warning("an event failed", extra={"error": type(exc).__name__})
                left.remove(delivery)
                out.failed[delivery.message_id] = exc
                continue
            txn.entries.append((delivery, entry))
            txn.items += items
            txn.entry_bytes += size
            if paid is not None and isinstance(event, OrderEvent):
                txn.paid.add(paid)
                refunds_before = asked if asked is not None else Decimal("0.00")
                txn.payments[paid] = OrderPayment(
                    customer_id=record.customer_id, amount=event.amount, refunded=refunds_before
                )
            elif refunded is not None and payment is not None and asked is not None:
                if updates_payment:
                    txn.refunds[refunded] = payment.refunded
                txn.payments[refunded] = payment.model_copy(update={"refunded": asked})
        return txn

    @staticmethod
    def _entry(record: ProfileRecord, event: CustomerEvent, codec: PiiCodec) -> LedgerEntry:
        body = timeline_body(event)
        if isinstance(event, AfterSalesEvent) and event.note:
            cipher = codec.cipher(record)  # creates the key if none yet
            body[NOTE_FIELD] = cipher.seal(note_field(event.event_id), event.note)
        return LedgerEntry(
            key=event.dedup_key,
            kind="EVT",
            customer_id=record.customer_id,
            at=event.occurred_at,
            body=body,
        )

    @staticmethod
    def _payment_refunded(
        record: ProfileRecord, refunded: str | None, payments: dict[str, OrderPayment]
    ) -> OrderPayment | None:
        """For a refund, the payment of its order if this customer's profile (or one merged
        into it) folded it; the refund waits for it otherwise."""
        if refunded is None:
            return None
        payment = payments.get(refunded)
        if payment is None or payment.customer_id not in {record.customer_id, *record.merged_from}:
            return None
        return payment

    def write_lake(self, folded: Sequence[Folded], batch_id: str) -> list[str]:
        """The folded events' lake rows: one object per (type, day), one late marker at most."""
        if not folded:
            return []
        index = self._index()
        rows = [lake_row(f.event, f.customer_id, index) for f in folded]
        return self._lake.write_events(rows, batch_id=batch_id)

    def publish(self, folded: list[Folded]) -> None:
        if not folded:
            return
        self.write_lake(folded, self._profiles.ids())
        self._profiles.rules.announce([f.shift for f in folded if f.shift is not None])
        self._bus.publish(announcements(folded, self._profiles.clock()))


@dataclass
class _Announcement:
    rev: int | None = None
    types: set[str] = field(default_factory=set)
    paid: dict[str, PaidOrder] = field(default_factory=dict)  # order id -> the order


def announcements(folded: Sequence[Folded], now: datetime) -> list[BusEvent]:
    """One bus entry per customer of the batch, whatever its events: the profile's newest
    revision with the types of event folded, and the customer's paid orders (campaigns'
    attribution), so a batch of up to 10 customers is one PutEvents. A paid order folded by an
    earlier attempt (rev None) is announced again, since that attempt may not have published
    (conversions count an order once); other duplicates announce nothing."""
    per_customer: dict[str, _Announcement] = {}
    for f in folded:
        event = f.event
        paid = isinstance(event, OrderEvent) and event.type == "order_paid"
        if f.rev is None and not paid:
            continue
        a = per_customer.setdefault(f.customer_id, _Announcement())
        if f.rev is not None:
            a.rev = max(a.rev or 0, f.rev)
            a.types.add(event.type)
            if isinstance(event, AfterSalesEvent) and event.status == "closed":
                a.types.add(AFTER_SALES_CLOSED)
        if paid and isinstance(event, OrderEvent):
            a.paid.setdefault(
                event.order_id,
                PaidOrder(
                    order_id=event.order_id,
                    amount=str(event.amount),
                    currency=event.currency,
                    coupon_codes=list(event.coupon_codes),
                    paid_at=event.occurred_at,
                ),
            )
    return [
        CustomerProfileUpdated(
            customer_id=customer_id,
            rev=a.rev,
            changed=["aggregates", "timeline"] if a.rev is not None else [],
            event_types=sorted(a.types),
            paid_orders=list(a.paid.values()),
            orders_paid=len(a.paid),
            occurred_at=now,
        )
        for customer_id, a in per_customer.items()
    ]
