"""Order, browsing and after-sales events that client apps and upstream systems send."""

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from crm.aftersales_codes import event_case, reason_of
from crm.config import DataRegion
from crm.models import (
    INTEGRAL,
    NOT_BLANK,
    Category,
    Integer,
    Output,
    StrictInput,
    UtcDatetime,
)
from crm.profiles.record_models import RESIDENCY, Channel, Identity, Key

MAX_EVENTS_PER_BATCH = 100
MAX_BATCH_BYTES = 256 * 1024

MAX_AMOUNT = Decimal("100000000")
# Money as text is written as people write prices: 268, 268.5 or 268.00, up to MAX_AMOUNT.
MONEY_TEXT = re.compile(r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$|^100000000(\.00?)?$")


def _money(value: Any) -> Any:
    """A JSON number or its text as a Decimal (the bounds and places are checked next); a
    validator before the type takes over the JSON parse, so both forms are read here."""
    if isinstance(value, str):
        if not MONEY_TEXT.fullmatch(value):
            raise ValueError(
                f"money is written as digits with at most two decimals (268.00), up to {MAX_AMOUNT}"
            )
        return Decimal(value)
    if isinstance(value, float):
        # The shortest text that reads back as this number; -0.0 (which JSON Schema's minimum
        # 0 admits) is 0, so that its text is never "-0.0".
        return Decimal(repr(value)) if value else Decimal("0.0")
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    Field(ge=0, le=MAX_AMOUNT, decimal_places=2),
    # What the validators accept, said to clients: a JSON number or the text form, both of
    # at most two decimals (pydantic's own schema says "any number or string").
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": int(MAX_AMOUNT), "multipleOf": 0.01},
                {"type": "string", "pattern": MONEY_TEXT.pattern},
            ],
            "description": "an amount: a number or its text (268.00), at most two decimals",
        }
    ),
]


class _Event(StrictInput):
    model_config = ConfigDict(
        json_schema_extra={
            # exactly one of them names the customer, the other is absent or null
            "oneOf": [
                {
                    "required": ["customer_id"],
                    "properties": {"customer_id": {"type": "string"}, "identity": {"type": "null"}},
                },
                {
                    "required": ["identity"],
                    "properties": {"identity": {"type": "object"}, "customer_id": {"type": "null"}},
                },
            ]
        }
    )

    event_id: Key = Field(
        description="unique per event; a resent event with the same id is folded once"
    )
    occurred_at: UtcDatetime
    customer_id: Key | None = None
    identity: Identity | None = Field(
        default=None, description="instead of customer_id: resolves (or creates) the profile"
    )
    channel: Channel | None = Field(default=None, description="channel the event happened on")
    residency: DataRegion | None = Field(default=None, description=RESIDENCY)

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        if (self.customer_id is None) == (self.identity is None):
            raise ValueError("give exactly one of customer_id or identity")
        return self

    @property
    def dedup_key(self) -> str:
        return f"event:{self.event_id}"


CouponCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9]{4,32}$")
]


class OrderItem(StrictInput):
    sku: Key
    category: Category
    quantity: Integer = Field(ge=1, le=10_000)
    unit_price: Money


class OrderEvent(_Event):
    type: Literal["order_placed", "order_paid", "order_refunded"]
    order_id: Key
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    items: list[OrderItem] = Field(default=[], max_length=200)
    discount: Money | None = Field(
        default=None, description="coupons and promotions taken off the items' total (满99减50)"
    )
    shipping_fee: Money | None = Field(default=None, description="added to the items' total")
    store_id: Key | None = None
    coupon_codes: list[CouponCode] = Field(
        default=[],
        max_length=10,
        description="codes the order redeemed (campaign coupons); an order_paid redeems them",
    )

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
    quantity: Annotated[int, Field(ge=1, le=10_000), INTEGRAL] | None = None


# An event's reason code, stored as the after-sales reason it stands for (crm.aftersales_codes).
ReasonCode = Annotated[Key, AfterValidator(lambda code: reason_of(code).value)]


class AfterSalesEvent(_Event):
    type: Literal["after_sales"]
    case: Annotated[
        Literal["return", "exchange", "refund_only", "refund", "complaint", "repair"],
        AfterValidator(event_case),
        Field(description="refund_only (仅退款: money back, goods kept) may be written refund, "
              "as after-sales cases write it; it is stored as refund_only"),
    ]  # fmt: skip
    status: Literal["opened", "closed"] = Field(
        default="opened",
        description="closed: the case was resolved (counted once, when opened; journeys "
        "trigger on after_sales_closed)",
    )
    order_id: Key | None = None
    amount: Money | None = None
    reason_code: ReasonCode | None = Field(
        default=None,
        description="why: one of the after-sales reasons (damaged_in_transit, defective, "
        "size_too_small, late_delivery, ... as POST /aftersales takes them, docs/tickets.md); "
        "a short code stands for its reason (damaged, quality, late), any other is stored as "
        "other",
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=NOT_BLANK,
                                           max_length=1000)] | None = Field(
        default=None,
        description="the customer's own words; sealed with the customer's key, shown to roles "
        "that may read PII, never written to the lake or the bus",
    )  # fmt: skip


CustomerEvent = Annotated[OrderEvent | BrowseEvent | AfterSalesEvent, Field(discriminator="type")]
# Built on first use, like the models (~35 ms of validators a function that never reads an event
# should not pay at cold start).
CUSTOMER_EVENT = TypeAdapter[CustomerEvent](CustomerEvent, config=ConfigDict(defer_build=True))

BROWSING_TYPES = frozenset({"product_viewed", "search", "cart_added"})
ORDER_TYPES = frozenset({"order_placed", "order_paid", "order_refunded"})
# Every event type a timeline can hold; rule segments name them ("no order_paid in 30 days").
EVENT_TYPES = BROWSING_TYPES | ORDER_TYPES | {"after_sales"}
# What the bus says when an after-sales case closes (CustomerProfileUpdated.event_types).
AFTER_SALES_CLOSED = "after_sales_closed"


class EventBatch(StrictInput):
    events: list[CustomerEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsAccepted(Output):
    accepted: int
    event_ids: list[str]
