"""Time and ids come in as parameters so services are exact under test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]

# How far ahead of our clock a client's stated time may lie (a consent decided, an event that
# occurred) before it is refused as lying in the future: devices' clocks drift.
CLOCK_SKEW = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def iso(moment: datetime) -> str:
    """Sortable UTC timestamp with milliseconds, as stored in keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
