"""Refunds count against their order's payment, never beyond it, whatever the arrival order."""

from __future__ import annotations

import itertools
from decimal import Decimal

from crm.profiles.aggregates import WAITING_ORDERS_KEPT
from crm.profiles.customer_events import CustomerEvent
from crm.profiles.records import payment_key
from tests.unit.profiles.test_aggregates import event, fold_all, on


def paid(order: str, amount: str, day: int = 1) -> CustomerEvent:
    return event(event_id=f"{order}-paid", type="order_paid", order_id=order, amount=amount,
                 occurred_at=on(1, day))  # fmt: skip


def refund(event_id: str, order: str, amount: str, day: int = 5) -> CustomerEvent:
    return event(event_id=event_id, type="order_refunded", order_id=order, amount=amount,
                 occurred_at=on(1, day))  # fmt: skip


def test_a_refund_before_its_payment_waits_aside_then_counts_when_it_arrives() -> None:
    early = fold_all([refund("r1", "o1", "20.00")]).orders
    assert early.refunded_amount == 0
    assert early.refunds_aside == Decimal("20.00")
    assert early.refunds_awaiting_payment == {"o1": Decimal("20.00")}
    assert early.refund_count == 1
    assert early.net_spend == 0

    settled = fold_all([refund("r1", "o1", "20.00"), paid("o1", "100.00")]).orders
    assert settled.refunded_amount == Decimal("20.00")
    assert settled.refunds_aside == 0
    assert settled.refunds_awaiting_payment == {}
    assert settled.net_spend == Decimal("80.00")


def test_refunds_beyond_what_an_order_paid_stay_aside_and_spend_never_goes_negative() -> None:
    events = [paid("o1", "100.00"), refund("r1", "o1", "80.00"), refund("r2", "o1", "50.00"),
              paid("o2", "10.00", day=2)]  # fmt: skip
    for order in itertools.permutations(events):
        orders = fold_all(list(order)).orders
        assert orders.total_spend == Decimal("110.00")
        assert orders.refunded_amount == Decimal("100.00")  # o1 paid 100: no more comes back
        assert orders.refunds_aside == Decimal("30.00")
        assert orders.refunds_awaiting_payment == {}
        assert orders.net_spend == Decimal("10.00")  # o2 only, never below zero


def test_a_refund_of_an_order_never_paid_never_touches_spend() -> None:
    orders = fold_all([paid("o1", "50.00"), refund("r9", "ghost", "999.00")]).orders
    assert orders.total_spend == Decimal("50.00")
    assert orders.refunded_amount == 0
    assert orders.net_spend == Decimal("50.00")
    assert orders.refunds_awaiting_payment == {"ghost": Decimal("999.00")}


def test_refund_folds_commute_with_partial_and_early_refunds() -> None:
    events = [paid("o1", "100.00"), refund("r1", "o1", "30.00"), refund("r2", "o1", "30.00"),
              refund("r3", "o2", "5.00"), paid("o2", "8.00"),
              refund("r4", "o3", "1.00")]  # fmt: skip
    expected = fold_all(events)
    assert expected.orders.refunded_amount == Decimal("65.00")
    assert expected.orders.refunds_aside == Decimal("1.00")
    for order in itertools.permutations(events):
        assert fold_all(list(order)) == expected


def test_waiting_refunds_are_bounded_and_what_overflows_stays_aside() -> None:
    events = [refund(f"r{n}", f"o{n}", "1.00") for n in range(WAITING_ORDERS_KEPT + 5)]
    orders = fold_all(events).orders
    assert len(orders.refunds_awaiting_payment) == WAITING_ORDERS_KEPT
    assert orders.refunds_aside == Decimal(WAITING_ORDERS_KEPT + 5)


def test_the_payment_key_is_the_dedup_key_of_the_payment() -> None:
    assert payment_key("o1") == paid("o1", "1.00").dedup_key
