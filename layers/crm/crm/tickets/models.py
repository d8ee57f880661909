"""Tickets: what clients send and what the API returns (strict inputs, frozen outputs)."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator

from crm.models import INTEGRAL, NOT_BLANK, Category, Output, StrictInput
from crm.profiles import Money

MAX_MESSAGE_CHARS = 4000


class TicketCategory(StrEnum):
    LOGISTICS = "logistics"
    QUALITY = "quality"
    SIZE_FIT = "size_fit"
    RETURN_REFUND = "return_refund"
    PAYMENT_INVOICE = "payment_invoice"
    ACCOUNT_POINTS = "account_points"
    PRESALE = "presale"
    SERVICE_COMPLAINT = "service_complaint"
    OTHER = "other"


class Classifier(Protocol):
    """What ticket creation asks for a category: the category's name (one of TicketCategory)
    and a confidence in [0, 1]. The composition root hands in the trained zh+en classifier
    (`crm.tickets.classifier`); tests may hand in their own."""

    def classify(self, text: str) -> tuple[str, float]: ...


class TicketChannel(StrEnum):
    APP = "app"
    MINI_PROGRAM = "mini_program"
    WECHAT = "wechat"
    DOUYIN = "douyin"
    PHONE = "phone"
    EMAIL = "email"
    STORE = "store"
    COMMUNITY_GROUP = "community_group"


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_THIRD_PARTY = "waiting_third_party"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


class MessageKind(StrEnum):
    CUSTOMER = "customer"  # the customer's words, from any channel
    REPLY = "reply"  # an agent's answer the customer reads
    NOTE = "note"  # an agent's internal note: never shown to the customer


class SlaMetric(StrEnum):
    FIRST_RESPONSE = "first_response"  # a human's first reply
    FEEDBACK = "feedback"  # logistics: feedback from the carrier or warehouse
    REVIEW = "review"  # after-sales: the return request reviewed
    ASSIGNED = "assigned"  # complaints: an agent on it
    RESOLUTION = "resolution"  # a solution: the ticket resolved
    CLOSURE = "closure"  # the ticket closed


class DeadlineState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"


class EscalationReason(StrEnum):
    ORDER_VALUE = "order_value"
    REPEAT_COMPLAINT = "repeat_complaint"
    HIGH_VALUE_TIER = "high_value_tier"
    RISK_KEYWORDS = "risk_keywords"
    NEGATIVE_SENTIMENT = "negative_sentiment"
    SLA_BREACH = "sla_breach"
    AGENT = "agent"  # an agent or a manager escalated it by hand, with a reason code


Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=NOT_BLANK
    ),
]
Id = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$"
    ),
]


# ---------------------------------------------------------------- requests
class OpenTicket(StrictInput):
    customer_id: Id
    channel: TicketChannel
    message: Text = Field(description="the customer's words (personal data: sealed at rest)")
    order_id: Id | None = None
    sku: Id | None = Field(default=None, description="the product the ticket is about")
    product_category: Category | None = Field(
        default=None, description="the product's category; with sku, product feedback counts it"
    )
    order_amount: Money | None = Field(
        default=None,
        description="the order's amount as the customer or agent states it; the order's "
        "folded payment, when the profile has it, is used instead",
    )
    subject: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="free text, sealed like the message"
    )


class AddMessage(StrictInput):
    channel: TicketChannel
    text: Text
    kind: Literal["customer", "reply", "note"] | None = Field(
        default=None,
        description="customer (a customer's token always), reply or note (agents); "
        "an agent's message is a reply unless it says note",
    )


class AssignTicket(StrictInput):
    agent_id: Id


class EscalateTicket(StrictInput):
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.\-]{1,64}$")] = Field(
        description="why, as a code the team agrees on (customer_threatens_media, "
        "vip_complaint, ...): kept on the ticket and announced, so never the customer's words"
    )


class ChangeStatus(StrictInput):
    status: TicketStatus


class CorrectCategory(StrictInput):
    """An agent's correction of the classifier: the ticket's category changes (its SLA targets
    stay those pinned when it opened) and the correction is kept for retraining."""

    category: TicketCategory


class MergeTicket(StrictInput):
    into: Id = Field(description="the surviving ticket")


class EscalationRules(StrictInput):
    """The rules that escalate a ticket (MANAGE_SLA edits them)."""

    order_value_threshold: Money = Decimal("2000")
    repeat_within_days: Annotated[int, Field(ge=1, le=365), INTEGRAL] = 30
    high_value_tiers: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        default_factory=lambda: ["high_value"], max_length=20
    )
    risk_keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=lambda: [
            "12315", "律师", "媒体", "曝光", "投诉到平台", "消协", "工商", "起诉", "报警",
            "chargeback", "lawyer", "attorney", "sue", "media", "press", "consumer protection",
        ],
        max_length=200,
    )  # fmt: skip
    complaint_categories: list[TicketCategory] = Field(
        default_factory=lambda: [TicketCategory.SERVICE_COMPLAINT],
        max_length=9,
        description="the categories an earlier ticket must have to count as a complaint",
    )
    negative_threshold: Annotated[int, Field(ge=1, le=20), INTEGRAL] = 2
    escalate_on_breach: bool = True
    senior_agents: list[Id] = Field(default_factory=lambda: ["senior-agent-1"], min_length=1)
    managers: list[Id] = Field(default_factory=lambda: ["support-manager-1"], min_length=1)


Minutes = Annotated[int, Field(ge=1, le=60 * 24 * 90), INTEGRAL]
Targets = Annotated[
    dict[SlaMetric, Minutes],
    Field(min_length=1, description="minutes of the policy's calendar time, by metric"),
]
CALENDAR_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
CalendarName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=CALENDAR_NAME),
    Field(description="a built-in calendar (business_hours, 24x7) or one of the shop's"),
]


class SlaPolicies(StrictInput):
    """SLA targets per category, and the calendar each priority's clocks count in. Resolution
    and closure pause while the ticket waits on the customer or a third party; the other
    metrics never pause. A ticket pins the version in force when it opens."""

    default: Targets = Field(description="the targets of every category without its own")
    categories: dict[TicketCategory, Targets] = Field(default={})
    calendars: dict[Priority, CalendarName] = Field(
        default={},
        description="the calendar of each priority (a built-in or one of the shop's, which "
        "must exist); a priority left out counts business hours",
    )


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


MAX_PERIODS_A_DAY = 8
MAX_DATES = 366
FIRST_CALENDAR_DATE, LAST_CALENDAR_DATE = date(2000, 1, 1), date(2099, 12, 31)
# A working period in local time, on the minute: 09:00-12:00; the end may be 24:00.
PERIOD = r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _in_order(periods: list[str]) -> list[str]:
    previous_end = -1
    for text in periods:
        start, end = (_minute(t) for t in text.split("-"))
        if end <= start:
            raise ValueError(f"{text}: a period ends after it starts")
        if start < previous_end:
            raise ValueError(f"{text}: periods are in order and do not overlap")
        previous_end = end
    return periods


def _in_range(day: date) -> date:
    if not FIRST_CALENDAR_DATE <= day <= LAST_CALENDAR_DATE:
        raise ValueError(f"a date from {FIRST_CALENDAR_DATE} to {LAST_CALENDAR_DATE}")
    return day


PeriodText = Annotated[str, StringConstraints(pattern=PERIOD)]
DayPeriods = Annotated[
    list[PeriodText], Field(max_length=MAX_PERIODS_A_DAY), AfterValidator(_in_order)
]
CalendarDate = Annotated[date, AfterValidator(_in_range)]
CalendarDates = Annotated[list[CalendarDate], Field(max_length=MAX_DATES)]


class HolidaySource(StrictInput):
    """Whose public holidays close the calendar (the `holidays` package's codes)."""

    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2: DE, US, CN, SG, ..."
    )
    subdivision: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = Field(
        default=None, description="a state or province the package knows: BY, CA, ..."
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if not _holidays_known(value, None):
            raise ValueError("a country the holidays package knows")
        return value

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is not None and country is not None and not _holidays_known(country, value):
            raise ValueError(f"a subdivision of {country} the holidays package knows")
        return value


def _holidays_known(country: str, subdivision: str | None) -> bool:
    from crm.tickets.holiday_days import country_days  # `holidays` loads on first use only

    try:
        country_days(country, subdivision, FIRST_CALENDAR_DATE.year + 26)
    except NotImplementedError:
        return False
    return True


class CalendarDefinition(StrictInput):
    """A shop's business-hours calendar: working periods per weekday in a time zone, less a
    country's public holidays (its make-up working days worked) and the shop's closed dates,
    plus its extra working dates."""

    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="an IANA time zone: Europe/Berlin, America/New_York, Asia/Singapore"
    )
    hours: dict[Weekday, DayPeriods] = Field(
        description="each weekday's working periods, local time, in order, not overlapping "
        '(e.g. {"mon": ["09:00-12:00", "13:00-18:00"], "sat": ["10:00-14:00"]}); a day left '
        "out is closed"
    )
    holidays: HolidaySource | None = None
    closed_dates: CalendarDates = Field(
        default=[], description="the shop's own days off (YYYY-MM-DD)"
    )
    extra_working_dates: CalendarDates = Field(
        default=[],
        description="days worked though the week or the holidays say otherwise; a day "
        "without hours of its own works the first weekday's that has some",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory
            raise ValueError("an IANA time zone such as Europe/Berlin") from None
        return value

    @field_validator("hours")
    @classmethod
    def _some_working_time(cls, value: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        # Without a single period an SLA clock would never fall due.
        if not any(value.values()):
            raise ValueError("at least one working period in the week")
        return value

    @field_validator("extra_working_dates")
    @classmethod
    def _not_closed(cls, value: list[date], info: ValidationInfo) -> list[date]:
        if set(value) & set(info.data.get("closed_dates", ())):
            raise ValueError("a date is either closed or an extra working date, not both")
        return value


# ---------------------------------------------------------------- responses
class Deadline(Output):
    metric: SlaMetric
    state: DeadlineState
    target_minutes: int = Field(description="the target, in the policy's calendar time")
    due_at: datetime | None = Field(description="when it falls due; null while paused or met")
    seconds_left: int | None = Field(
        description="calendar seconds left (negative once breached); null when met"
    )
    elapsed_seconds: int = Field(description="calendar seconds counted so far")
    warned: bool = False
    met_at: datetime | None = None


class EscalationReasonView(Output):
    reason: EscalationReason
    detail: str = Field(description="what triggered it: a threshold, a keyword, a metric")
    at: datetime


class EscalationView(Output):
    escalated: bool
    reasons: list[EscalationReasonView] = Field(default=[])
    senior_agent: str | None = None
    manager: str | None = None
    escalated_at: datetime | None = None


class TicketView(Output):
    """What staff read: the classifier's confidence, priority, assignee, SLA policy and
    deadlines, and the escalation with its reasons and the people it reached."""

    view: Literal["staff"] = "staff"
    ticket_id: str
    customer_id: str
    channel: TicketChannel
    order_id: str | None
    category: TicketCategory
    category_confidence: float
    classified_as: TicketCategory | None = Field(
        default=None, description="the classifier's category, when an agent corrected it"
    )
    priority: Priority
    status: TicketStatus
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    merged_into: str | None
    merged_from: list[str]
    policy: str = Field(description="the SLA policy version pinned when the ticket opened")
    calendar: str = Field(
        description="the calendar its clocks count in, pinned when it opened: a built-in's "
        "name, or a shop calendar's version (berlin@v2)"
    )
    deadlines: list[Deadline]
    escalation: EscalationView
    sku: str | None = None
    product_category: str | None = None


class TicketSelfView(Output):
    """What a customer reads of their own ticket: where it stands. The team's workings (the
    classifier's confidence, priority, assignee, SLA policy, escalation reasons with the words
    that triggered them and the staff they reached) are internal."""

    view: Literal["customer"] = "customer"
    ticket_id: str
    customer_id: str
    channel: TicketChannel
    order_id: str | None
    category: TicketCategory
    status: TicketStatus
    opened_at: datetime
    updated_at: datetime
    merged_into: str | None = Field(description="the ticket this one continues in, if merged")
    sku: str | None = None
    product_category: str | None = None


class MessageView(Output):
    message_id: str
    ticket_id: str
    customer_id: str
    channel: TicketChannel
    kind: MessageKind
    author: str
    at: datetime
    text: str


class ConversationPage(Output):
    customer_id: str
    messages: list[MessageView]
    next_token: str | None = None


class EscalationRulesView(Output):
    rules: EscalationRules
    updated_at: datetime | None = None
    updated_by: str | None = None


class CalendarView(Output):
    name: str
    built_in: bool = Field(description="business_hours and 24x7: neither replaced nor deleted")
    version: str | None = Field(
        description="what a ticket opened now pins (`<name>@v<n>`); null for a built-in"
    )
    definition: CalendarDefinition
    updated_at: datetime | None = None
    updated_by: str | None = None


class CalendarList(Output):
    calendars: list[CalendarView]


class CalendarDeleted(Output):
    name: str
    deleted: bool = True
    detail: str


class SlaPoliciesView(Output):
    version: str = Field(description="what a ticket opened now pins")
    policies: SlaPolicies
    calendars: list[CalendarView]
    updated_at: datetime | None = None
    updated_by: str | None = None
