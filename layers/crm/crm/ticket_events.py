"""Contracts of the bus events of tickets and after-sales cases (the base: `crm.events`)."""

from datetime import datetime
from typing import ClassVar

from crm.events import BusEvent


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
