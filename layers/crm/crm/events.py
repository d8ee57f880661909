"""Contracts of the events the CRM publishes on its EventBridge bus."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

SOURCE = "crm"


class BusEvent(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    detail_type: ClassVar[str]


class PaidOrder(BaseModel):
    """An order paid in the batch a profile update announces: ids and amounts only; coupon
    codes are no PII."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    amount: str  # exact decimal text, as money is kept
    currency: str
    coupon_codes: list[str] = []
    paid_at: datetime


class CustomerProfileUpdated(BusEvent):
    """A batch of events (or a points change) changed a profile, or re-announces paid orders.
    Carries no PII: consumers read the profile if they need more.

    The fold publishes one entry per customer per batch (EventBridge bills per entry and takes
    10 a call), so the customer's paid orders of the batch travel here (`paid_orders`) for
    campaigns' attribution and coupon redemption. `orders_paid` counts them: rules match a
    scalar (`{"numeric": [">", 0]}`), as EventBridge's comparison operators work on leaf nodes
    only, not on an array of objects. A paid order is announced again when its message comes
    back after a failed attempt (that attempt may not have published); such an entry has no
    `rev`, no `changed` and no `event_types` when the batch changed nothing else of the
    profile, so journeys ignore it and conversions count each order once."""

    detail_type: ClassVar[str] = "CustomerProfileUpdated"

    customer_id: str
    rev: int | None  # the revision the batch wrote; None: only paid orders re-announced
    changed: list[str]
    event_types: list[str] = []
    paid_orders: list[PaidOrder] = []
    orders_paid: int = 0  # len(paid_orders)
    occurred_at: datetime


class CustomerSegmentChanged(BusEvent):
    """A customer entered or left a segment (nightly run, or a rule met by a new event)."""

    detail_type: ClassVar[str] = "CustomerSegmentChanged"

    customer_id: str
    segment: str
    change: Literal["entered", "left"]
    run_id: str | None = None
    occurred_at: datetime


class SegmentRunRequested(BusEvent):
    """Someone asked for a segment run now, outside the nightly schedule."""

    detail_type: ClassVar[str] = "SegmentRunRequested"

    run_id: str | None = None  # recorded as planned by whoever asked; the planner claims it
    requested_by: str
    occurred_at: datetime


class TicketEscalated(BusEvent):
    """A ticket was escalated (a senior agent and a manager put on it), with the reasons' codes
    (order_value, repeat_complaint, high_value_tier, risk_keywords, negative_sentiment,
    sla_breach). Ids and codes only: never the customer's words. Campaigns may answer it with
    a transactional message (an apology coupon)."""

    detail_type: ClassVar[str] = "TicketEscalated"

    ticket_id: str
    customer_id: str
    reasons: list[str]
    priority: str
    senior_agent: str | None = None
    manager: str | None = None
    occurred_at: datetime


class TicketSlaWarning(BusEvent):
    """An SLA clock of a ticket reached 75% of its target."""

    detail_type: ClassVar[str] = "TicketSlaWarning"

    ticket_id: str
    customer_id: str
    metric: str
    due_at: datetime | None = None
    occurred_at: datetime


class TicketSlaBreached(BusEvent):
    """An SLA clock of a ticket reached its target unmet."""

    detail_type: ClassVar[str] = "TicketSlaBreached"

    ticket_id: str
    customer_id: str
    metric: str
    due_at: datetime | None = None
    occurred_at: datetime


class AfterSalesStageChanged(BusEvent):
    """An after-sales case moved to a stage (or was opened). Ids and codes only, no text:
    campaigns notify the customer from it, journeys trigger on a closed case."""

    detail_type: ClassVar[str] = "AfterSalesStageChanged"

    case_id: str
    customer_id: str
    order_id: str
    kind: str
    stage: str
    previous_stage: str | None = None
    closed: bool
    occurred_at: datetime


class AfterSalesStageOverdue(BusEvent):
    """An after-sales case stayed in a stage past its target (return reviewed within 4 h,
    pickup arranged within 24 h of approval, ...): the desk follows it up, the customer's
    progress page shows it overdue. Ids and codes only."""

    detail_type: ClassVar[str] = "AfterSalesStageOverdue"

    case_id: str
    customer_id: str
    order_id: str
    kind: str
    stage: str
    due_at: datetime
    occurred_at: datetime


# ---- privacy
class PrivacyRequestCompleted(BusEvent):
    """A privacy request was carried out (an erasure verified, an export ready). Ids only."""

    detail_type: ClassVar[str] = "PrivacyRequestCompleted"

    request_id: str
    customer_id: str
    kind: str
    regulation: str
    clean: bool | None = None  # an erasure: every store verified without remnants
    occurred_at: datetime


class PrivacyDeadlineNear(BusEvent):
    """A privacy request's deadline is days away and it is still open."""

    detail_type: ClassVar[str] = "PrivacyDeadlineNear"

    request_id: str
    customer_id: str
    kind: str
    due_at: datetime
    occurred_at: datetime


class PrivacyDeadlineMissed(BusEvent):
    """A privacy request was still open at its deadline."""

    detail_type: ClassVar[str] = "PrivacyDeadlineMissed"

    request_id: str
    customer_id: str
    kind: str
    due_at: datetime
    occurred_at: datetime


class PrivacyDeadlineExtended(BusEvent):
    """A request's deadline was extended (GDPR, CCPA): the customer must be told, with the
    reason's code, before the original deadline."""

    detail_type: ClassVar[str] = "PrivacyDeadlineExtended"

    request_id: str
    customer_id: str
    reason: str
    due_at: datetime
    occurred_at: datetime


class ConsentWithdrawn(BusEvent):
    """A customer withdrew consent for these purposes through a privacy request."""

    detail_type: ClassVar[str] = "ConsentWithdrawn"

    request_id: str
    customer_id: str
    purposes: list[str]
    occurred_at: datetime
