"""Contracts of the bus events of privacy requests and consent (the base: `crm.events`)."""

from datetime import datetime
from typing import ClassVar

from crm.events import BusEvent


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
