"""Contracts of the events the CRM publishes on its EventBridge bus: the base, and the events of
profiles and segments. The tickets' and after-sales' events are in `crm.ticket_events`, the
privacy family's in `crm.privacy_events`: the API and the event folder load this module on
every cold start, and define no class they never publish."""

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

    # Deferred like the events: every function that loads this module would otherwise build
    # its validator at import, and only the event folder publishes paid orders.
    model_config = ConfigDict(frozen=True, defer_build=True)

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
