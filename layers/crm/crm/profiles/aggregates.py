"""Folding events into a profile's aggregates: pure functions, no I/O.

Folds commute: events may arrive in any order (a refund before its payment, a late offline
order) and the aggregates come out the same. Refunds count against their order's payment and
never beyond it: the payment's ledger entry keeps what the order's refunds asked back so far,
and a refund that comes before its payment waits in the profile (`refunds_awaiting_payment`)
until the payment arrives. Whatever the order, an order's refunds count
min(paid, asked back) and the rest stays aside (`refunds_aside`), visible, never spent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from crm.profiles.customer_events import AfterSalesEvent, BrowseEvent, CustomerEvent, OrderEvent
from crm.profiles.record_models import Aggregates, BehaviourAggregates, OrderAggregates
from crm.profiles.records import OrderPayment


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


MONTHS_KEPT = 36
PRODUCTS_KEPT = 300
# Orders whose refunds wait for a payment, at most: past that (a feed that never sends
# payments) further orders' refunds stay aside without waiting for theirs.
WAITING_ORDERS_KEPT = 200
ZERO = Decimal("0.00")


def _add_products(products: dict[str, str], bought: dict[str, str]) -> dict[str, str]:
    merged = {**products, **bought}
    return dict(list(merged.items())[-PRODUCTS_KEPT:])


def _add_month(months: dict[str, int], moment: datetime, count: int = 1) -> dict[str, int]:
    key = moment.strftime("%Y-%m")
    merged = dict(months)
    merged[key] = merged.get(key, 0) + count
    return dict(sorted(merged.items())[-MONTHS_KEPT:])


def _fold_payment(orders: OrderAggregates, event: OrderEvent) -> tuple[OrderAggregates, Decimal]:
    waiting = dict(orders.refunds_awaiting_payment)
    asked = waiting.pop(event.order_id, ZERO)
    counted = min(event.amount, asked)
    categories = dict(orders.category_items)
    for item in event.items:
        categories[item.category] = categories.get(item.category, 0) + item.quantity
    paid = orders.model_copy(
        update={
            "orders_by_month": _add_month(orders.orders_by_month, event.occurred_at),
            "products": _add_products(orders.products, {i.sku: i.category for i in event.items}),
            "order_count": orders.order_count + 1,
            "total_spend": orders.total_spend + event.amount,
            "first_order_at": _earliest(orders.first_order_at, event.occurred_at),
            "last_order_at": _latest(orders.last_order_at, event.occurred_at),
            "category_items": categories,
            "refunded_amount": orders.refunded_amount + counted,
            "refunds_aside": orders.refunds_aside - counted,
            "refunds_awaiting_payment": waiting,
        }
    )
    return paid, asked


def _fold_refund(
    orders: OrderAggregates, event: OrderEvent, payment: OrderPayment | None
) -> tuple[OrderAggregates, Decimal | None]:
    update: dict[str, object] = {"refund_count": orders.refund_count + 1}
    if payment is None:
        waiting = dict(orders.refunds_awaiting_payment)
        if event.order_id in waiting or len(waiting) < WAITING_ORDERS_KEPT:
            waiting[event.order_id] = waiting.get(event.order_id, ZERO) + event.amount
        update |= {
            "refunds_aside": orders.refunds_aside + event.amount,
            "refunds_awaiting_payment": waiting,
        }
        return orders.model_copy(update=update), None
    asked = payment.refunded + event.amount
    counted = min(payment.amount, asked) - min(payment.amount, payment.refunded)
    update |= {
        "refunded_amount": orders.refunded_amount + counted,
        "refunds_aside": orders.refunds_aside + event.amount - counted,
    }
    return orders.model_copy(update=update), asked


def _fold_behaviour(behaviour: BehaviourAggregates, event: CustomerEvent) -> BehaviourAggregates:
    last = dict(behaviour.last_event_at)
    last[event.type] = _latest(last.get(event.type), event.occurred_at) or event.occurred_at
    update: dict[str, object] = {
        "last_seen_at": _latest(behaviour.last_seen_at, event.occurred_at),
        "last_event_at": last,
    }
    if isinstance(event, BrowseEvent):
        counter = {
            "product_viewed": "view_count",
            "search": "search_count",
            "cart_added": "cart_add_count",
        }[event.type]
        update[counter] = getattr(behaviour, counter) + 1
    elif isinstance(event, AfterSalesEvent) and event.status == "opened":
        # A case is counted when it opens; its closing is news (the bus says so), not a case.
        update["after_sales_count"] = behaviour.after_sales_count + 1
        if event.case == "return":
            update["return_count"] = behaviour.return_count + 1
        if event.case == "complaint":
            update["complaint_count"] = behaviour.complaint_count + 1
            update["last_complaint_at"] = _latest(behaviour.last_complaint_at, event.occurred_at)
    return behaviour.model_copy(update=update)


def fold_event(
    aggregates: Aggregates, event: CustomerEvent, payment: OrderPayment | None = None
) -> tuple[Aggregates, Decimal | None]:
    """The aggregates after one event, and, for a payment or for a refund of a known payment,
    what the order's refunds have asked back after it, for the payment's ledger entry.

    `payment`: for a refund, the order's payment if it was folded into this profile."""
    orders = aggregates.orders
    asked: Decimal | None = None
    if isinstance(event, OrderEvent) and event.type == "order_paid":
        orders, asked = _fold_payment(orders, event)
    elif isinstance(event, OrderEvent) and event.type == "order_refunded":
        orders, asked = _fold_refund(orders, event, payment)
    # A placed order counts once it is paid.
    folded = Aggregates(orders=orders, behaviour=_fold_behaviour(aggregates.behaviour, event))
    return folded, asked


def combine(a: Aggregates, b: Aggregates) -> Aggregates:
    """Aggregates of one person known as two profiles, for a merge."""
    categories = dict(a.orders.category_items)
    for name, count in b.orders.category_items.items():
        categories[name] = categories.get(name, 0) + count
    months = dict(a.orders.orders_by_month)
    for month, count in b.orders.orders_by_month.items():
        months[month] = months.get(month, 0) + count
    waiting = dict(a.orders.refunds_awaiting_payment)
    for order_id, amount in b.orders.refunds_awaiting_payment.items():
        waiting[order_id] = waiting.get(order_id, ZERO) + amount
    last_event_at = dict(a.behaviour.last_event_at)
    for kind, moment in b.behaviour.last_event_at.items():
        last_event_at[kind] = _latest(last_event_at.get(kind), moment) or moment
    orders = OrderAggregates(
        order_count=a.orders.order_count + b.orders.order_count,
        total_spend=a.orders.total_spend + b.orders.total_spend,
        refund_count=a.orders.refund_count + b.orders.refund_count,
        refunded_amount=a.orders.refunded_amount + b.orders.refunded_amount,
        refunds_aside=a.orders.refunds_aside + b.orders.refunds_aside,
        refunds_awaiting_payment=waiting,
        first_order_at=_earliest(a.orders.first_order_at, b.orders.first_order_at),
        last_order_at=_latest(a.orders.last_order_at, b.orders.last_order_at),
        category_items=categories,
        orders_by_month=dict(sorted(months.items())[-MONTHS_KEPT:]),
        products=_add_products(a.orders.products, b.orders.products),
    )
    x, y = a.behaviour, b.behaviour
    behaviour = BehaviourAggregates(
        view_count=x.view_count + y.view_count,
        search_count=x.search_count + y.search_count,
        cart_add_count=x.cart_add_count + y.cart_add_count,
        last_seen_at=_latest(x.last_seen_at, y.last_seen_at),
        after_sales_count=x.after_sales_count + y.after_sales_count,
        return_count=x.return_count + y.return_count,
        complaint_count=x.complaint_count + y.complaint_count,
        last_complaint_at=_latest(x.last_complaint_at, y.last_complaint_at),
        last_event_at=last_event_at,
    )
    return Aggregates(orders=orders, behaviour=behaviour)
