"""The catalogue of profile fields a rule segment can name: each with its kind, which decides
the operators and values a condition on it may use, and how to read it from a profile.

One catalogue serves validation (a rule naming anything else is refused with a 400) and
evaluation (a rule is evaluated only through these readers), so a stored rule can never ask
for something a profile does not have.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from crm.profiles import ProfileRecord

# The runs' vocabulary: tiers (with the labels marketers know them by) and RFM segments.
TIERS = {
    "high_value": "高价值",
    "potential": "潜力",
    "new": "新客",
    "dormant": "沉睡",
    "churn_risk": "流失预警",
    "regular": "普通",
}
RFM_SEGMENTS = (
    "champions", "loyal", "potential_loyalists", "new", "promising", "need_attention",
    "cant_lose", "at_risk", "hibernating", "lost",
)  # fmt: skip


class FieldKind(StrEnum):
    NUMBER = "number"
    MONEY = "money"
    COUNT = "count"
    DAYS = "days"
    TEXT = "text"
    TEXT_LIST = "text list"
    FLAG = "flag"


KIND_PHRASES = {
    FieldKind.NUMBER: "a number",
    FieldKind.MONEY: "an amount of money",
    FieldKind.COUNT: "a count",
    FieldKind.DAYS: "a number of days",
    FieldKind.TEXT: "a text",
    FieldKind.TEXT_LIST: "a list of texts",
    FieldKind.FLAG: "a flag",
}
NUMERIC_KINDS = frozenset({FieldKind.NUMBER, FieldKind.MONEY, FieldKind.COUNT, FieldKind.DAYS})
ORDERING_OPS = ("gt", "gte", "lt", "lte")
OPS_BY_KIND: dict[FieldKind, tuple[str, ...]] = {
    FieldKind.NUMBER: ("eq", "ne", *ORDERING_OPS),
    FieldKind.MONEY: ("eq", "ne", *ORDERING_OPS),
    FieldKind.COUNT: ("eq", "ne", *ORDERING_OPS),
    FieldKind.DAYS: ("eq", "ne", *ORDERING_OPS),
    FieldKind.TEXT: ("eq", "ne", "in"),
    FieldKind.TEXT_LIST: ("contains",),
    FieldKind.FLAG: ("eq", "ne"),
}

# Bounds keep every value well inside DynamoDB's number range (38 digits, 1E-130..9.9E+125) and
# exact through a JSON float (at most 15 significant digits).
MAX_MONEY = Decimal("1000000000000")  # 1e12, two decimal places
MAX_NUMBER = Decimal("1000000000")  # 1e9, six decimal places
MAX_COUNT = 10**12
MAX_DAYS = Decimal(36500)
# Every number a profile holds is zero or more.
_KIND_BOUNDS = {
    FieldKind.MONEY: (Decimal(0), MAX_MONEY),
    FieldKind.NUMBER: (Decimal(0), MAX_NUMBER),
    FieldKind.COUNT: (Decimal(0), Decimal(MAX_COUNT)),
    FieldKind.DAYS: (Decimal(0), MAX_DAYS),
}
DECIMAL_PLACES = {FieldKind.MONEY: 2, FieldKind.NUMBER: 6, FieldKind.DAYS: 2, FieldKind.COUNT: 0}


class RuleField(NamedTuple):
    name: str
    kind: FieldKind
    read: Callable[[ProfileRecord, datetime], Any]
    description: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    choices: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[Decimal, Decimal]:
        low, high = _KIND_BOUNDS.get(self.kind, (Decimal(0), Decimal(0)))
        return (
            low if self.minimum is None else self.minimum,
            high if self.maximum is None else self.maximum,
        )


def exact_decimal(value: object) -> Decimal | None:
    """A finite number as the Decimal a person would write (a float by its shortest text);
    None for anything else, booleans and NaN included."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return number if number.is_finite() else None


def _days_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (now - moment).total_seconds() / 86400


def _birthday_month(record: ProfileRecord, now: datetime) -> int | None:
    raw = record.attributes.get("birthday")
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw).month
    except ValueError:
        return None


def _attribute(name: str) -> Callable[[ProfileRecord, datetime], Any]:
    def read(record: ProfileRecord, now: datetime) -> Any:
        value = record.attributes.get(name)
        return value if isinstance(value, str) else None

    return read


def _order(name: str) -> Callable[[ProfileRecord, datetime], Any]:
    return lambda record, now: getattr(record.aggregates.orders, name)


def _behaviour(name: str) -> Callable[[ProfileRecord, datetime], Any]:
    return lambda record, now: getattr(record.aggregates.behaviour, name)


def _score(name: str) -> Callable[[ProfileRecord, datetime], Any]:
    return lambda record, now: None if record.scores is None else getattr(record.scores, name)


_ONE, _FIVE = Decimal(1), Decimal(5)

_FIELDS = (
    RuleField("attributes.city", FieldKind.TEXT, _attribute("city"), "the profile's city"),
    RuleField("attributes.gender", FieldKind.TEXT, _attribute("gender"), "the profile's gender",
              choices=("female", "male", "other", "undisclosed")),
    RuleField("attributes.locale", FieldKind.TEXT, _attribute("locale"),
              "language and region, e.g. zh-CN"),
    RuleField("attributes.preferred_store_id", FieldKind.TEXT, _attribute("preferred_store_id"),
              "the customer's preferred store"),
    RuleField("attributes.birthday_month", FieldKind.COUNT, _birthday_month,
              "month of the customer's birthday, 1 to 12", minimum=_ONE, maximum=Decimal(12)),
    RuleField("orders.order_count", FieldKind.COUNT, _order("order_count"), "orders paid"),
    RuleField("orders.total_spend", FieldKind.MONEY, _order("total_spend"), "money spent"),
    RuleField("orders.average_order_value", FieldKind.MONEY, _order("average_order_value"),
              "money spent per order"),
    RuleField("orders.refund_count", FieldKind.COUNT, _order("refund_count"), "refunds"),
    RuleField("orders.refunded_amount", FieldKind.MONEY, _order("refunded_amount"),
              "money refunded"),
    RuleField("orders.days_since_last_order", FieldKind.DAYS,
              lambda r, now: _days_since(r.aggregates.orders.last_order_at, now),
              "days since the latest order (no value before the first order)"),
    RuleField("orders.days_since_first_order", FieldKind.DAYS,
              lambda r, now: _days_since(r.aggregates.orders.first_order_at, now),
              "days since the first order (no value before it)"),
    RuleField("orders.categories", FieldKind.TEXT_LIST, _order("categories"),
              "categories the customer bought from"),
    RuleField("orders.products", FieldKind.TEXT_LIST,
              lambda r, now: sorted(r.aggregates.orders.products), "SKUs the customer bought"),
    RuleField("behaviour.view_count", FieldKind.COUNT, _behaviour("view_count"),
              "products viewed"),
    RuleField("behaviour.search_count", FieldKind.COUNT, _behaviour("search_count"), "searches"),
    RuleField("behaviour.cart_add_count", FieldKind.COUNT, _behaviour("cart_add_count"),
              "products added to the cart"),
    RuleField("behaviour.after_sales_count", FieldKind.COUNT, _behaviour("after_sales_count"),
              "after-sales cases"),
    RuleField("behaviour.return_count", FieldKind.COUNT, _behaviour("return_count"), "returns"),
    RuleField("behaviour.complaint_count", FieldKind.COUNT, _behaviour("complaint_count"),
              "complaints"),
    RuleField("behaviour.days_since_last_seen", FieldKind.DAYS,
              lambda r, now: _days_since(r.aggregates.behaviour.last_seen_at, now),
              "days since the customer was last seen browsing"),
    RuleField("behaviour.days_since_last_complaint", FieldKind.DAYS,
              lambda r, now: _days_since(r.aggregates.behaviour.last_complaint_at, now),
              "days since the latest complaint"),
    RuleField("scores.tier", FieldKind.TEXT, _score("tier"), "tier at the latest run",
              choices=tuple(TIERS)),
    RuleField("scores.rfm_segment", FieldKind.TEXT, _score("rfm_segment"),
              "RFM segment at the latest run", choices=RFM_SEGMENTS),
    RuleField("scores.recency_score", FieldKind.COUNT, _score("recency_score"), "R score, 1 to 5",
              minimum=_ONE, maximum=_FIVE),
    RuleField("scores.frequency_score", FieldKind.COUNT, _score("frequency_score"),
              "F score, 1 to 5", minimum=_ONE, maximum=_FIVE),
    RuleField("scores.monetary_score", FieldKind.COUNT, _score("monetary_score"),
              "M score, 1 to 5", minimum=_ONE, maximum=_FIVE),
    RuleField("scores.p_alive", FieldKind.NUMBER, _score("p_alive"),
              "probability the customer is still active (BG/NBD), 0 to 1",
              minimum=Decimal(0), maximum=_ONE),
    RuleField("scores.expected_orders_90d", FieldKind.NUMBER, _score("expected_orders_90d"),
              "orders expected in the next 90 days", minimum=Decimal(0)),
    RuleField("scores.clv_12m", FieldKind.MONEY, _score("clv_12m"),
              "lifetime value expected over 12 months"),
    RuleField("scores.churn_warning", FieldKind.FLAG, _score("churn_warning"),
              "buying much less often than the customer used to"),
    RuleField("points_balance", FieldKind.COUNT, lambda r, now: r.points_balance,
              "loyalty points held"),
    RuleField("tags", FieldKind.TEXT_LIST, lambda r, now: sorted(r.tags), "the profile's tags"),
)  # fmt: skip

FIELDS: dict[str, RuleField] = {f.name: f for f in _FIELDS}
