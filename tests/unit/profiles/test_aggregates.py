from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from crm.profiles.aggregates import combine, fold_event
from crm.profiles.customer_events import CUSTOMER_EVENT, CustomerEvent, OrderEvent
from crm.profiles.models import Aggregates
from crm.profiles.records import OrderPayment


def event(**fields: Any) -> CustomerEvent:
    return CUSTOMER_EVENT.validate_python({"customer_id": "c", **fields})


def on(month: int, day: int = 1) -> str:
    return f"2026-{month:02d}-{day:02d}T00:00:00Z"


BABY = [{"sku": "a", "category": "母婴", "quantity": 2, "unit_price": "50"}]
EVENTS = [
    event(event_id="1", type="order_paid", order_id="o1", amount="100", occurred_at=on(1, 2),
          items=BABY),
    event(event_id="2", type="order_paid", order_id="o2", amount="50.50", occurred_at=on(3)),
    event(event_id="3", type="order_refunded", order_id="o1", amount="20", occurred_at=on(1, 5)),
    event(event_id="4", type="order_placed", order_id="o3", amount="9", occurred_at=on(4)),
    event(event_id="5", type="after_sales", case="complaint", occurred_at=on(2)),
    event(event_id="6", type="product_viewed", sku="x", occurred_at=on(5)),
]  # fmt: skip


def fold_all(events: list[CustomerEvent]) -> Aggregates:
    """Fold as the event folder does: a refund with its order's payment, once folded."""
    aggregates = Aggregates()
    payments: dict[str, OrderPayment] = {}
    for e in events:
        if not isinstance(e, OrderEvent):
            aggregates, _ = fold_event(aggregates, e)
            continue
        payment = payments.get(e.order_id)
        aggregates, asked = fold_event(aggregates, e, payment)
        if asked is None:
            continue
        if e.type == "order_paid":
            payments[e.order_id] = OrderPayment(customer_id="c", amount=e.amount, refunded=asked)
        else:
            assert payment is not None
            payments[e.order_id] = payment.model_copy(update={"refunded": asked})
    return aggregates


def test_folds_commute_whatever_the_arrival_order() -> None:
    expected = fold_all(EVENTS)
    for order in itertools.permutations(EVENTS):
        assert fold_all(list(order)) == expected


def test_order_aggregates() -> None:
    orders = fold_all(EVENTS).orders
    assert orders.order_count == 2  # a placed order counts when it is paid
    assert orders.total_spend == Decimal("150.50")
    assert orders.average_order_value == Decimal("75.25")
    assert orders.refunded_amount == Decimal(20)
    assert orders.category_items == {"母婴": 2}
    assert orders.first_order_at is not None
    assert orders.first_order_at.isoformat() == "2026-01-02T00:00:00+00:00"


def test_behaviour_aggregates() -> None:
    behaviour = fold_all(EVENTS).behaviour
    assert behaviour.complaint_count == 1
    assert behaviour.view_count == 1
    assert behaviour.last_seen_at is not None
    assert behaviour.last_seen_at.month == 5


def test_combining_two_profiles_equals_folding_all_their_events() -> None:
    left, right = EVENTS[:3], EVENTS[3:]
    assert combine(fold_all(left), fold_all(right)) == fold_all(EVENTS)


def test_dedup_key_of_orders_ignores_the_event_id() -> None:
    a = event(
        event_id="a",
        type="order_paid",
        order_id="o9",
        amount="1",
        occurred_at="2026-01-01T00:00:00Z",
    )
    b = event(
        event_id="b",
        type="order_paid",
        order_id="o9",
        amount="1",
        occurred_at="2026-01-01T00:00:00Z",
    )
    r1 = event(
        event_id="r1",
        type="order_refunded",
        order_id="o9",
        amount="1",
        occurred_at="2026-01-01T00:00:00Z",
    )
    r2 = event(
        event_id="r2",
        type="order_refunded",
        order_id="o9",
        amount="1",
        occurred_at="2026-01-01T00:00:00Z",
    )
    assert a.dedup_key == b.dedup_key
    assert r1.dedup_key != r2.dedup_key  # partial refunds are separate events
