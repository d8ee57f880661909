"""Folding events into a profile's aggregates: pure functions, no I/O.

Folds commute: events may arrive in any order (a refund before its payment, a late offline
order) and the aggregates come out the same.
"""

from __future__ import annotations

from datetime import datetime

from crm.profiles.customer_events import AfterSalesEvent, BrowseEvent, CustomerEvent, OrderEvent
from crm.profiles.models import Aggregates, BehaviourAggregates, OrderAggregates


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


MONTHS_KEPT = 36
PRODUCTS_KEPT = 300


def _add_products(products: dict[str, str], bought: dict[str, str]) -> dict[str, str]:
    merged = {**products, **bought}
    return dict(list(merged.items())[-PRODUCTS_KEPT:])


def _add_month(months: dict[str, int], moment: datetime, count: int = 1) -> dict[str, int]:
    key = moment.strftime("%Y-%m")
    merged = dict(months)
    merged[key] = merged.get(key, 0) + count
    return dict(sorted(merged.items())[-MONTHS_KEPT:])


def _fold_order(orders: OrderAggregates, event: OrderEvent) -> OrderAggregates:
    if event.type == "order_paid":
        categories = dict(orders.category_items)
        for item in event.items:
            categories[item.category] = categories.get(item.category, 0) + item.quantity
        return orders.model_copy(
            update={
                "orders_by_month": _add_month(orders.orders_by_month, event.occurred_at),
                "products": _add_products(
                    orders.products, {i.sku: i.category for i in event.items}
                ),
                "order_count": orders.order_count + 1,
                "total_spend": orders.total_spend + event.amount,
                "first_order_at": _earliest(orders.first_order_at, event.occurred_at),
                "last_order_at": _latest(orders.last_order_at, event.occurred_at),
                "category_items": categories,
            }
        )
    if event.type == "order_refunded":
        return orders.model_copy(
            update={
                "refund_count": orders.refund_count + 1,
                "refunded_amount": orders.refunded_amount + event.amount,
            }
        )
    return orders  # a placed order counts once it is paid


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
    elif isinstance(event, AfterSalesEvent):
        update["after_sales_count"] = behaviour.after_sales_count + 1
        if event.case == "return":
            update["return_count"] = behaviour.return_count + 1
        if event.case == "complaint":
            update["complaint_count"] = behaviour.complaint_count + 1
            update["last_complaint_at"] = _latest(behaviour.last_complaint_at, event.occurred_at)
    return behaviour.model_copy(update=update)


def fold_event(aggregates: Aggregates, event: CustomerEvent) -> Aggregates:
    orders = _fold_order(aggregates.orders, event) if isinstance(event, OrderEvent) else None
    return Aggregates(
        orders=orders or aggregates.orders,
        behaviour=_fold_behaviour(aggregates.behaviour, event),
    )


def combine(a: Aggregates, b: Aggregates) -> Aggregates:
    """Aggregates of one person known as two profiles, for a merge."""
    categories = dict(a.orders.category_items)
    for name, count in b.orders.category_items.items():
        categories[name] = categories.get(name, 0) + count
    months = dict(a.orders.orders_by_month)
    for month, count in b.orders.orders_by_month.items():
        months[month] = months.get(month, 0) + count
    last_event_at = dict(a.behaviour.last_event_at)
    for kind, moment in b.behaviour.last_event_at.items():
        last_event_at[kind] = _latest(last_event_at.get(kind), moment) or moment
    orders = OrderAggregates(
        order_count=a.orders.order_count + b.orders.order_count,
        total_spend=a.orders.total_spend + b.orders.total_spend,
        refund_count=a.orders.refund_count + b.orders.refund_count,
        refunded_amount=a.orders.refunded_amount + b.orders.refunded_amount,
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
