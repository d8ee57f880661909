"""Contracts of the events the CRM publishes on its EventBridge bus."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

SOURCE = "crm"


class BusEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    detail_type: ClassVar[str]


class CustomerProfileUpdated(BusEvent):
    """A profile changed. Carries no PII: consumers read the profile if they need more."""

    detail_type: ClassVar[str] = "CustomerProfileUpdated"

    customer_id: str
    rev: int
    changed: list[str]
    event_types: list[str] = []
    occurred_at: datetime
