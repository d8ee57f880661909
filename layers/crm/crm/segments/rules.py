"""Rule segments: conditions over a profile's attributes, aggregates, scores and tags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crm.profiles import ProfileRecord
from crm.segments.models import Compare, Condition, HasTag, NoEventWithin, Rule


def field_value(record: ProfileRecord, field: str, now: datetime) -> Any:
    group, name = field.split(".", 1)
    orders = record.aggregates.orders
    if group == "orders":
        if name == "days_since_last_order":
            last = orders.last_order_at
            return None if last is None else (now - last).total_seconds() / 86400
        return getattr(orders, name)
    if group == "behaviour":
        return getattr(record.aggregates.behaviour, name)
    if group == "attributes":
        return record.attributes.get(name)
    if group == "scores":
        return None if record.scores is None else getattr(record.scores, name)
    if field == "points_balance":
        return record.points_balance
    return None


def _compare(record: ProfileRecord, cond: Compare, now: datetime) -> bool:
    actual = field_value(record, cond.field, now)
    if actual is None:
        return False
    wanted = cond.value
    if cond.op == "contains":
        return isinstance(actual, list) and wanted in actual
    if cond.op == "in":
        return isinstance(wanted, list) and str(actual) in wanted
    if isinstance(wanted, list):
        return False
    if isinstance(wanted, str) or isinstance(actual, str):
        text, other = str(actual), str(wanted)
        return {"eq": text == other, "ne": text != other}.get(cond.op, False)
    number = float(actual)
    return {
        "eq": number == wanted, "ne": number != wanted, "gt": number > wanted,
        "gte": number >= wanted, "lt": number < wanted, "lte": number <= wanted,
    }[cond.op]  # fmt: skip


def holds(record: ProfileRecord, cond: Condition, now: datetime) -> bool:
    if isinstance(cond, HasTag):
        return cond.has_tag in record.tags
    if isinstance(cond, NoEventWithin):
        last = record.aggregates.behaviour.last_event_at.get(cond.no_event)
        return last is None or now - last > timedelta(days=cond.days)
    return _compare(record, cond, now)


def matches(record: ProfileRecord, rule: Rule, now: datetime) -> bool:
    if not rule.all and not rule.any:
        return False
    every = all(holds(record, c, now) for c in rule.all)
    some = not rule.any or any(holds(record, c, now) for c in rule.any)
    return every and some
