"""What the fold puts on the bus (against moto): one entry per customer per batch, its paid
orders inside; and PutEvents' limits (10 entries, 256 KiB a call) however many customers or
however large their entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crm.bus import MAX_BYTES_PER_CALL, entry_bytes
from crm.composition import root
from crm.events import SOURCE, CustomerProfileUpdated, PaidOrder
from crm.profiles.customer_events import AfterSalesEvent, BrowseEvent, OrderEvent
from crm.profiles.event_folding import Folded, announcements
from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_batch_folding import captured

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def order(cid: str, order_id: str, amount: str = "10.00", codes: list[str] | None = None,
          kind: str = "order_paid") -> OrderEvent:  # fmt: skip
    return OrderEvent.model_validate({
        "event_id": f"{order_id}-{kind}", "type": kind, "customer_id": cid,
        "order_id": order_id, "amount": amount, "coupon_codes": codes or [],
        "occurred_at": "2026-11-01T10:00:00Z"})  # fmt: skip


def viewed(cid: str, n: int) -> BrowseEvent:
    return BrowseEvent.model_validate({
        "event_id": f"v-{n}", "type": "product_viewed", "customer_id": cid, "sku": f"sku-{n}",
        "occurred_at": "2026-11-01T10:00:00Z"})  # fmt: skip


def details(events: list[Any]) -> dict[str, dict[str, Any]]:
    return {e.customer_id: json.loads(e.model_dump_json()) for e in events}


# ---------------------------------------------------------------------- one entry per customer
def test_a_customer_gets_one_entry_with_its_newest_revision_and_its_paid_orders() -> None:
    closed = AfterSalesEvent.model_validate({
        "event_id": "c-1", "type": "after_sales", "customer_id": "a", "case": "return",
        "order_id": "o-1", "status": "closed", "occurred_at": "2026-11-01T10:00:00Z"})  # fmt: skip
    folded = [
        Folded(order("a", "o-1", "12.50", ["CODE1"]), "a", 4),
        Folded(viewed("a", 1), "a", 4),
        Folded(order("a", "o-2", "7.00"), "a", 5),  # a second transaction of the customer
        Folded(closed, "a", 5),
        Folded(viewed("b", 2), "b", 9),
    ]
    out = details(announcements(folded, NOW))
    assert set(out) == {"a", "b"}
    a = out["a"]
    assert (a["rev"], a["changed"]) == (5, ["aggregates", "timeline"])
    assert a["event_types"] == ["after_sales", "after_sales_closed", "order_paid",
                                "product_viewed"]  # fmt: skip
    assert a["orders_paid"] == 2
    assert a["paid_orders"] == [
        {"order_id": "o-1", "amount": "12.50", "currency": "CNY", "coupon_codes": ["CODE1"],
         "paid_at": "2026-11-01T10:00:00Z"},
        {"order_id": "o-2", "amount": "7.00", "currency": "CNY", "coupon_codes": [],
         "paid_at": "2026-11-01T10:00:00Z"},
    ]  # fmt: skip
    assert (out["b"]["orders_paid"], out["b"]["paid_orders"]) == (0, [])


def test_redelivered_duplicates_announce_their_paid_orders_only() -> None:
    folded = [
        # A paid order an earlier attempt folded: announced again (that attempt may not have
        # published), each order once, without a revision journeys would act on.
        Folded(order("a", "o-1"), "a", None),
        Folded(order("a", "o-1").model_copy(update={"event_id": "resent"}), "a", None),
        Folded(viewed("b", 1), "b", None),  # a duplicate view: nothing to announce
        Folded(order("c", "o-3", kind="order_refunded"), "c", None),
        Folded(order("d", "o-4"), "d", None),  # with the customer's new events: one entry
        Folded(viewed("d", 2), "d", 3),
    ]
    out = details(announcements(folded, NOW))
    assert set(out) == {"a", "d"}
    assert (out["a"]["rev"], out["a"]["changed"], out["a"]["event_types"]) == (None, [], [])
    assert [o["order_id"] for o in out["a"]["paid_orders"]] == ["o-1"]
    assert out["a"]["orders_paid"] == 1
    assert (out["d"]["rev"], out["d"]["event_types"]) == (3, ["product_viewed"])
    assert [o["order_id"] for o in out["d"]["paid_orders"]] == ["o-4"]


# ---------------------------------------------------------------------- PutEvents' limits
def updated(cid: str, orders: int = 0, codes: int = 0) -> CustomerProfileUpdated:
    paid = [
        PaidOrder(order_id=f"{cid}-o-{n}", amount=str(Decimal(n)), currency="CNY",
                  coupon_codes=[f"{n:02d}{c:062d}" for c in range(codes)], paid_at=NOW)
        for n in range(orders)
    ]  # fmt: skip
    return CustomerProfileUpdated(
        customer_id=cid, rev=1, changed=["aggregates"], paid_orders=paid,
        orders_paid=len(paid), occurred_at=NOW,
    )  # fmt: skip


def test_more_than_ten_customers_split_into_calls_of_ten(suite: Suite) -> None:
    tap = suite.tap_bus("split-tap", {"source": [SOURCE]})
    with count_requests() as counts, captured("PutEvents", "events") as calls:
        root().bus.publish([updated(f"c-{n}") for n in range(23)])
    assert counts["events.PutEvents"] == 3
    assert [len(c["Entries"]) for c in calls] == [10, 10, 3]
    got = sorted(e["detail"]["customer_id"] for e in Suite.take_all(tap))
    assert got == sorted(f"c-{n}" for n in range(23))


def test_a_call_stays_within_256_kib(suite: Suite) -> None:
    # Each entry: ten orders of 50 coupon codes (~34 KB); ten of them would pass 256 KiB.
    events = [updated(f"c-{n}", orders=10, codes=50) for n in range(10)]
    with count_requests() as counts, captured("PutEvents", "events") as calls:
        root().bus.publish(events)
    sizes = [sum(entry_bytes(e) for e in c["Entries"]) for c in calls]
    assert sum(sizes) > MAX_BYTES_PER_CALL  # the case needs a split
    assert counts["events.PutEvents"] == len(calls) == 2
    assert all(size <= MAX_BYTES_PER_CALL for size in sizes)
    assert sum(len(c["Entries"]) for c in calls) == 10
