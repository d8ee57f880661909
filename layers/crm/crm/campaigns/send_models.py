"""API and stored shapes of segment sends, coupons, conversions and the campaign report."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema, model_validator

from crm.campaigns.models import MessageChannel
from crm.models import INTEGRAL, NOT_BLANK, Output, Record, StrictInput, UtcDatetime

Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:\-]{1,64}$")]
SegmentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:\-]{1,64}$")]
VariantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,16}$")]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)
]
# Coupon codes: 12 letters of an alphabet without look-alikes (no 0/O, 1/I/L), upper case.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
CodeText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Z0-9]{4,32}$"),
]
MAX_MONEY = Decimal("1000000")


def _decimal(value: object) -> object:
    """Money and rates as a JSON number or its text, kept exact."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            raise ValueError("not a number") from None
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    Field(gt=0, le=MAX_MONEY, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": int(MAX_MONEY),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,6})(\.[0-9]{1,2})?$"},
            ],
            "description": "an amount: a number or its text (99.00), at most two decimals",
        }
    ),
]
Rate = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    Field(ge=0, le=1, decimal_places=4),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.0001},
                {"type": "string", "pattern": r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$"},
            ],
            "description": "a share from 0 to 1, at most four decimals",
        }
    ),
]


# ------------------------------------------------------------------ coupons
class CouponOfferInput(StrictInput):
    """An offer: amount off (50 off), percent off (12% off), either above a threshold
    (满99减50: 50 off an order of 99 or more). Codes of it are valid `valid_days` from issue,
    never past `expires_at`; at most `budget` are issued."""

    offer_id: Id
    description: Label
    kind: Literal["amount_off", "percent_off"]
    amount_off: Amount | None = None
    percent_off: Annotated[int, Field(ge=1, le=90), INTEGRAL] | None = None
    min_order: Amount | None = Field(default=None, description="the threshold (满99): 99.00")
    valid_days: Annotated[int, Field(ge=1, le=366), INTEGRAL] = 30
    expires_at: UtcDatetime = Field(description="no code of the offer is valid past this")
    budget: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] = Field(
        description="how many codes may be issued in all"
    )

    @model_validator(mode="after")
    def _one_discount(self) -> Self:
        if self.kind == "amount_off" and (self.amount_off is None or self.percent_off is not None):
            raise ValueError("an amount_off offer gives amount_off and no percent_off")
        if self.kind == "percent_off" and (self.percent_off is None or self.amount_off is not None):
            raise ValueError("a percent_off offer gives percent_off and no amount_off")
        if (
            self.min_order is not None
            and self.amount_off is not None
            and self.amount_off >= self.min_order
        ):
            raise ValueError("amount_off must be below min_order (满99减50)")
        return self


class CouponOffer(Output):
    offer_id: str
    description: str
    kind: Literal["amount_off", "percent_off"]
    amount_off: Decimal | None = None
    percent_off: int | None = None
    min_order: Decimal | None = None
    valid_days: int
    expires_at: datetime
    budget: int
    issued: int = 0
    created_at: datetime
    created_by: str


class CouponOfferList(Output):
    offers: list[CouponOffer]


class RedeemInput(StrictInput):
    order_id: Id | None = Field(default=None, description="the till's receipt or order id")
    store_id: Id | None = None


class CouponRedemption(Output):
    code: str
    offer_id: str
    customer_id: str
    redeemed_at: datetime
    channel: Literal["online", "offline"]
    order_id: str | None = None
    send_id: str | None = Field(default=None, description="the send that issued the code")


# ------------------------------------------------------------------ sends
class VariantInput(StrictInput):
    name: VariantName
    weight: Annotated[int, Field(ge=1, le=100), INTEGRAL]
    template_id: Id | None = Field(default=None, description="instead of the send's template")


class SendInput(StrictInput):
    name: Label
    segment: SegmentName
    channel: MessageChannel
    template_id: Id
    coupon_offer_id: Id | None = None
    variants: list[VariantInput] = Field(
        default=[], max_length=5, description="A/B split; none: one variant, A"
    )
    holdout_percent: Annotated[int, Field(ge=0, le=50), INTEGRAL] = Field(
        default=0, description="members kept from the send to measure its uplift"
    )
    send_at: UtcDatetime | None = Field(default=None, description="when to start; none: at once")
    attribution_hours: Annotated[int, Field(ge=1, le=24 * 30), INTEGRAL] | None = Field(
        default=None, description="orders this long after a touch count (default per channel)"
    )
    margin_rate: Rate = Field(default=Decimal("0.3"), description="margin on revenue, for ROI")

    @model_validator(mode="after")
    def _distinct_variants(self) -> Self:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        return self


SendStatus = Literal["draft", "scheduled", "running", "paused", "cancelled", "complete"]


class Variant(Output):
    name: str
    weight: int
    template_id: str


class SendProgress(Output):
    pages_listed: int = 0
    pages_done: int = 0
    listing_done: bool = False
    recipients: int = Field(default=0, description="members listed so far")


class Send(Output):
    send_id: str
    name: str
    segment: str
    channel: MessageChannel
    template_id: str
    coupon_offer_id: str | None = None
    variants: list[Variant]
    holdout_percent: int
    send_at: datetime | None = None
    attribution_hours: int
    margin_rate: Decimal
    status: SendStatus
    created_at: datetime
    created_by: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: SendProgress = SendProgress()


class SendList(Output):
    sends: list[Send]


class SendAction(StrictInput):
    action: Literal["start", "pause", "resume", "cancel"]


class Preview(Output):
    send_id: str
    segment_size: int
    method: Literal["exact", "estimate"]
    sample_size: int = Field(description="members read: all of them when exact")
    audience: int = Field(
        description="members a message would go to: consenting, reached by the channel (an "
        "address on it), outside the holdout and the global control group, under the caps as "
        "they stand now. Dispatch decides again when it sends: caps taken meanwhile and quiet "
        "hours (which defer, not drop) only it can know"
    )
    audience_low: int = Field(description="the 95% interval's low end (= audience when exact)")
    audience_high: int
    holdout: int
    no_consent: int = Field(
        description="no consent for the channel's purpose (or processing restricted by a "
        "privacy request, or no such customer any more)"
    )
    no_address: int = Field(
        description="consenting, but the channel does not reach them: no email (email), no "
        "phone (sms), no `app` identity (push), no `mini_program`/`wechat` identity (wechat); "
        "dispatch would suppress them (`no_address`)",
    )
    global_control: int = Field(
        description="in the global control group: the holdout's members in it, and the "
        "consenting others (dispatch asks consent first: one without it is `no_consent`), "
        "as the report counts them"
    )
    capped: int = Field(description="a frequency cap refuses them as the caps stand now")
    detail: str


# ------------------------------------------------------------------ report
class Interval(Output):
    estimate: float
    low: float
    high: float


class VariantReport(Output):
    variant: str
    sent: int
    capped: int
    deferred: int
    suppressed: int
    suppressed_by: dict[str, int] = Field(
        default={},
        description="`suppressed` by dispatch's reason: no_consent, no_address (the channel "
        "does not reach the customer: no phone for sms, no app identity for push...), "
        "processing_restricted, unknown_customer, channel_takes_no_marketing; they add up to "
        "`suppressed`",
    )
    capped_by: dict[str, int] = Field(
        default={},
        description="`capped` by reason: daily_cap, weekly_cap, rolling_cap, or "
        "<reason>_past_max_defer (quiet_hours_past_max_defer: quiet hours outlasted the "
        "step's max_defer_s); they add up to `capped`",
    )
    failed: int
    delivered: int = Field(description="sent, less what the provider failed afterwards")
    recipients: int = Field(description="members assigned to this variant")
    converted: int
    revenue: Decimal
    conversion_rate: Interval
    uplift: Interval | None = Field(description="conversion rate less the holdout's (Newcombe)")
    revenue_uplift: Interval | None = Field(
        description="revenue per recipient less the holdout's (Welch)"
    )
    incremental_revenue: Decimal | None
    cost: Decimal
    roi: float | None = Field(description="(incremental margin - cost) / cost")


class ControlReport(Output):
    recipients: int
    converted: int
    revenue: Decimal
    conversion_rate: Interval


class CampaignReport(Output):
    campaign_id: str
    attribution_hours: int | None
    variants: list[VariantReport]
    holdout: ControlReport | None
    global_control: ControlReport | None
    coupons_redeemed: int
    detail: str


# ------------------------------------------------------------------ queued and stored
class SendTask(Record):
    """A message of SendShardsQueue: list the next members, or send one listed page. Ids only."""

    send_id: str
    kind: Literal["list", "page"]
    page: int = Field(ge=0)
    token: str | None = None


class OrderPaid(Record):
    """What the conversions consumer needs of a paid order (the bus event's detail)."""

    customer_id: str
    order_id: str
    amount: Decimal
    coupon_codes: list[str] = Field(default=[])
    occurred_at: UtcDatetime
