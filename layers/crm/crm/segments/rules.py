"""Rule segments: whether a profile meets a rule. Fields are read only through the catalogue
(`crm.segments.fields`), and a value a profile holds in an unexpected shape makes its
condition false, never an error."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from crm.profiles import ProfileRecord
from crm.segments.fields import NUMERIC_KINDS, FieldKind, RuleField, exact_decimal

if TYPE_CHECKING:
    # Types only: a profile write runs the rules of definitions the store has read (and
    # validated), so the grammar is loaded by then and not before (`SegmentStore`).
    from crm.segments.models import Condition, Rule

_ORDERINGS: dict[str | None, Callable[[Decimal, Decimal], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt,
    "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}  # fmt: skip


def _compare(spec: RuleField, cond: Condition, record: ProfileRecord, now: datetime) -> bool:
    actual = spec.read(record, now)
    if actual is None:
        return False
    wanted = cond.value
    if spec.kind in NUMERIC_KINDS:
        number, target = exact_decimal(actual), exact_decimal(wanted)
        ordering = _ORDERINGS.get(cond.op)
        return (
            number is not None
            and target is not None
            and ordering is not None
            and ordering(number, target)
        )
    if spec.kind is FieldKind.TEXT_LIST:
        return isinstance(actual, list) and wanted in actual
    if spec.kind is FieldKind.FLAG:
        return isinstance(actual, bool) and (actual is wanted) == (cond.op == "eq")
    if cond.op == "in":
        return isinstance(wanted, list) and str(actual) in wanted
    return (str(actual) == wanted) if cond.op == "eq" else (str(actual) != wanted)


def holds(record: ProfileRecord, cond: Condition, now: datetime) -> bool:
    if cond.has_tag is not None:
        return cond.has_tag in record.tags
    if cond.no_event is not None and cond.days is not None:
        last = record.aggregates.behaviour.last_event_at.get(cond.no_event)
        return last is None or now - last > timedelta(days=cond.days)
    spec = cond.spec
    return spec is not None and _compare(spec, cond, record, now)


def matches(record: ProfileRecord, rule: Rule, now: datetime) -> bool:
    if not rule.all and not rule.any:
        return False
    every = all(holds(record, c, now) for c in rule.all)
    some = not rule.any or any(holds(record, c, now) for c in rule.any)
    return every and some
