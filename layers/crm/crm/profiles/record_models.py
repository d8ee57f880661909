"""The shapes a profile record is made of: identities, attributes, consent, tags, aggregates,
scores, merge reasons. The event folder and the stores need these and none of the API's
requests and views (`crm.profiles.models`, which re-exports them for the API's modules): a
class costs its field collection when it is defined, deferred or not (docs/architecture.md,
"Cold starts")."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    computed_field,
    field_validator,
    model_validator,
)

from crm.models import NOT_BLANK, Output, StrictInput
from crm.pii import normalize_phone

MAX_IDENTITIES = 20
MAX_TAGS = 100


class Channel(StrEnum):
    APP = "app"
    MINI_PROGRAM = "mini_program"
    WECHAT = "wechat"
    WECHAT_UNIONID = "wechat_unionid"
    DOUYIN = "douyin"
    OFFLINE_STORE = "offline_store"
    PHONE = "phone"
    EMAIL = "email"


PII_CHANNELS = frozenset({Channel.PHONE, Channel.EMAIL})
ContactField = Literal["phone", "email"]
CONTACT_CHANNELS: dict[ContactField, Channel] = {"phone": Channel.PHONE, "email": Channel.EMAIL}

ExternalId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=NOT_BLANK)
]

# What normalize_phone and normalize_email accept, for clients (and the property test) to know
# which values are valid; separators in phone numbers (spaces, dashes, dots, brackets) are
# also ignored, as the descriptions say.
PHONE_SCHEMA: dict[str, Any] = {
    "type": "string",
    # a mainland mobile, or + / 00 and a country code: +86 only before a mainland mobile
    "pattern": r"^(1[3-9][0-9]{9}|(\+|00)(861[3-9][0-9]{9}|[1-79][0-9]{7,14}"
    r"|8[0-57-9][0-9]{6,13}))$",
    "description": "E.164 (+8613812345678), or an 11-digit mainland China mobile",
}
MAX_EMAIL_LENGTH = 128  # an email is also an identity, whose external id is at most 128 long


# email-validator's special-use domains (RFC 6761), copied so that the API need not compile its
# regular expressions (~45 ms) before the first email arrives; a unit test checks the copy.
SPECIAL_USE_DOMAIN_NAMES = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


EMAIL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "email",
    "maxLength": MAX_EMAIL_LENGTH,
    # email-validator refuses the special-use domains (RFC 6761): user@shop.test, ...
    "not": {
        "pattern": "[.@]("
        + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
        + r")\.?$"
    },
}
Phone = Annotated[str, WithJsonSchema(PHONE_SCHEMA)]
Email = Annotated[str, StringConstraints(max_length=MAX_EMAIL_LENGTH), WithJsonSchema(EMAIL_SCHEMA)]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)
]
Key = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]


def normalize_email(raw: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


# What a client sends, stored and looked up in one normal form (the views show Phone/Email).
PhoneInput = Annotated[Phone, AfterValidator(normalize_phone)]
EmailInput = Annotated[Email, AfterValidator(normalize_email)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not a time zone of the IANA database: {value}") from None
    return value


# An IANA zone name (Europe/Berlin), checked against the zone database: the customer's days,
# weeks and quiet hours for the contact-pressure policy, and journeys' times of day.
TimeZoneName = Annotated[
    str,
    StringConstraints(pattern=r"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", max_length=40),
    AfterValidator(_known_zone),
]


def _external_id_by_channel(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"properties": {"channel": {"enum": [c.value for c in Channel if c not in PII_CHANNELS]}}},
        {"properties": {"channel": {"const": Channel.PHONE.value}, "external_id": PHONE_SCHEMA}},
        {"properties": {"channel": {"const": Channel.EMAIL.value}, "external_id": EMAIL_SCHEMA}},
    ]


class Identity(StrictInput):
    """One way a channel knows the customer: an app user id, an openid, a phone number, ..."""

    model_config = ConfigDict(json_schema_extra=_external_id_by_channel)

    channel: Channel
    external_id: ExternalId

    @model_validator(mode="after")
    def _normalize(self) -> Self:
        if self.channel is Channel.PHONE:
            self.external_id = normalize_phone(self.external_id)
        elif self.channel is Channel.EMAIL:
            self.external_id = normalize_email(self.external_id)
        return self


class Address(StrictInput):
    province: ShortText | None = None
    city: ShortText | None = None
    district: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 \-]{3,12}$")] | None = None
    line: (
        Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK)] | None
    ) = None


class ProfileAttributes(StrictInput):
    """Editable attributes. name, phone, email and address.line are PII, encrypted at rest."""

    name: ShortText | None = None
    phone: PhoneInput | None = None
    email: EmailInput | None = None
    gender: Literal["female", "male", "other", "undisclosed"] | None = None
    birthday: date | None = None
    city: ShortText | None = None
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] | None = None
    address: Address | None = None
    preferred_store_id: Key | None = None
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA zone, e.g. Europe/Berlin; none: the shop's zone"
    )

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("birthday must lie between 1900-01-01 and today")
        return value


RESIDENCY = (
    "where this customer's data must be kept (cn: mainland China, eu, us); a stack serves one "
    "data region and answers 421 naming the right one for another region's customer; "
    "default: this stack's region"
)


class ConsentPurpose(StrEnum):
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"
    MARKETING_PUSH = "marketing_push"
    MARKETING_WECHAT = "marketing_wechat"
    PROFILING = "profiling"


class ConsentState(Output):
    granted: bool
    decided_at: datetime
    source: str


class TagKind(StrEnum):
    MANUAL = "manual"
    SCENE = "scene"


class TagState(Output):
    kind: TagKind
    added_at: datetime
    added_by: str


class OrderAggregates(Output):
    order_count: int = 0
    total_spend: Decimal = Decimal("0.00")
    refund_count: int = Field(default=0, description="refund events")
    refunded_amount: Decimal = Field(
        default=Decimal("0.00"),
        description="refunds counted against their orders' payments, never more than an order paid",
    )
    refunds_aside: Decimal = Field(
        default=Decimal("0.00"),
        description="refunded amounts not counted against spend: refunds awaiting their "
        "order's payment, and refunds beyond what an order paid",
    )
    refunds_awaiting_payment: dict[str, Decimal] = Field(
        default={},
        description="refunds of orders whose payment has not arrived, by order id; counted "
        "when it arrives",
    )
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    category_items: dict[str, int] = Field(default={}, description="items bought per category")
    orders_by_month: dict[str, int] = Field(
        default={}, description="paid orders per UTC month (YYYY-MM), last 36 months"
    )
    products: dict[str, str] = Field(
        default={}, description="products bought (sku -> category), at most 300"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def average_order_value(self) -> Decimal:
        if not self.order_count:
            return Decimal(0)
        return (self.total_spend / self.order_count).quantize(Decimal("0.01"))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def net_spend(self) -> Decimal:
        """Spend after refunds; never negative, as no order refunds more than it paid."""
        return self.total_spend - self.refunded_amount

    @computed_field  # type: ignore[prop-decorator]
    @property
    def categories(self) -> list[str]:
        return sorted(self.category_items)


class BehaviourAggregates(Output):
    view_count: int = 0
    search_count: int = 0
    cart_add_count: int = 0
    last_seen_at: datetime | None = None
    after_sales_count: int = 0
    return_count: int = 0
    complaint_count: int = 0
    last_complaint_at: datetime | None = None
    last_event_at: dict[str, datetime] = Field(default={}, description="latest event of each type")


class Aggregates(Output):
    orders: OrderAggregates = Field(default_factory=OrderAggregates)
    behaviour: BehaviourAggregates = Field(default_factory=BehaviourAggregates)


class CustomerScores(Output):
    """What the nightly segment run computed for the customer (absent before the first run)."""

    recency_score: int
    frequency_score: int
    monetary_score: int
    rfm_segment: str
    tier: str
    p_alive: float | None = None
    expected_orders_90d: float | None = None
    clv_12m: Decimal | None = None
    churn_warning: bool = False
    scored_at: datetime


class MergeSuggestionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DISMISSED = "dismissed"


class MergeReason(StrEnum):
    UPSERT = "upsert"  # staff without the merge permission named identities of several profiles
    VERIFIED_CONTACT = "verified_contact"  # a customer verified a contact another profile holds


class LinkingIdentity(Output):
    channel: Channel
    external_id: str = Field(description="as staff without PII access see it (phone masked)")
    customer_id: str
