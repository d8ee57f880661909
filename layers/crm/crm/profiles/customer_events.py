"""Order, browsing and after-sales events that client apps and upstream systems send."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, TypeAdapter, model_validator

from crm.models import Output, StrictInput, UtcDatetime
from crm.profiles.models import Channel, Identity, Key

MAX_EVENTS_PER_BATCH = 100
MAX_BATCH_BYTES = 256 * 1024

Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("100000000"), decimal_places=2)]


class _Event(StrictInput):
    event_id: Key = Field(
        description="unique per event; a resent event with the same id is folded once"
    )
    occurred_at: UtcDatetime
    customer_id: Key | None = None
    identity: Identity | None = Field(
        default=None, description="instead of customer_id: resolves (or creates) the profile"
    )
    channel: Channel | None = Field(default=None, description="channel the event happened on")

    @model_validator(mode="after")
    def _one_customer_reference(self) -> _Event:
        if (self.customer_id is None) == (self.identity is None):
            raise ValueError("give exactly one of customer_id or identity")
        return self

    @property
    def dedup_key(self) -> str:
        return f"event:{self.event_id}"


class OrderItem(StrictInput):
    sku: Key
    category: Category
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Money


class OrderEvent(_Event):
    type: Literal["order_placed", "order_paid", "order_refunded"]
    order_id: Key
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    items: list[OrderItem] = Field(default_factory=list, max_length=200)
    discount: Money | None = Field(
        default=None, description="coupons and promotions taken off the items' total (满99减50)"
    )
    shipping_fee: Money | None = Field(default=None, description="added to the items' total")
    store_id: Key | None = None

    def amount_mismatch(self) -> str | None:
        """Why the amount disagrees with the items, if it does: with items, the amount is
        their total, less the discount, plus the shipping fee."""
        if not self.items:
            return None
        total = sum((i.unit_price * i.quantity for i in self.items), Decimal("0.00"))
        discount = self.discount or Decimal("0.00")
        shipping = self.shipping_fee or Decimal("0.00")
        expected = total - discount + shipping
        if self.amount == expected:
            return None
        return (
            f"amount {self.amount} disagrees with the items: {total} - discount {discount} "
            f"+ shipping_fee {shipping} = {expected}"
        )

    @property
    def dedup_key(self) -> str:
        # An order is placed and paid once, whatever event ids its retries carry; an order
        # may be refunded in several parts, each its own event.
        if self.type == "order_refunded":
            return f"event:{self.event_id}"
        return f"order:{self.order_id}:{self.type}"


class BrowseEvent(_Event):
    type: Literal["product_viewed", "search", "cart_added"]
    sku: Key | None = None
    category: Category | None = None
    query: Annotated[str, StringConstraints(max_length=200)] | None = None
    quantity: int | None = Field(default=None, ge=1, le=10_000)


class AfterSalesEvent(_Event):
    type: Literal["after_sales"]
    case: Literal["return", "exchange", "refund_only", "complaint", "repair"]
    order_id: Key | None = None
    amount: Money | None = None
    reason_code: Key | None = Field(
        default=None, description="structured reason (quality, late_delivery, ...)"
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=1000)] | None = Field(
        default=None,
        description="the customer's own words; sealed with the customer's key, shown to roles "
        "that may read PII, never written to the lake or the bus",
    )  # fmt: skip


CustomerEvent = Annotated[OrderEvent | BrowseEvent | AfterSalesEvent, Field(discriminator="type")]
CUSTOMER_EVENT = TypeAdapter[CustomerEvent](CustomerEvent)

BROWSING_TYPES = frozenset({"product_viewed", "search", "cart_added"})
ORDER_TYPES = frozenset({"order_placed", "order_paid", "order_refunded"})
# Every event type a timeline can hold; rule segments name them ("no order_paid in 30 days").
EVENT_TYPES = BROWSING_TYPES | ORDER_TYPES | {"after_sales"}


class EventBatch(StrictInput):
    events: list[CustomerEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsAccepted(Output):
    accepted: int
    event_ids: list[str]
