"""When a request must be answered, by regulation.

- PIPL (China): 15 working days (Art. 50 with the CAC's guidance), on China's calendar of
  public holidays and make-up working days (the tickets family's business calendar).
- GDPR: one calendar month (Art. 12(3)), extendable by two further months with a notice.
- CCPA: 45 calendar days, extendable once by 45 more; receipt acknowledged within 10
  business days.
Days count from the day after filing, in the shop's zone; the deadline is that day's end.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm.privacy.models import Regulation
from crm.tickets import SHOP_ZONE, china_workday

PIPL_WORKING_DAYS = 15
CCPA_DAYS = 45
CCPA_EXTENSION_DAYS = 45
CCPA_ACKNOWLEDGE_BUSINESS_DAYS = 10
GDPR_EXTENSION_MONTHS = 2
# The reminder (PrivacyDeadlineNear) comes this long before the deadline.
REMIND_BEFORE = timedelta(days=3)


def _zone() -> ZoneInfo:
    return ZoneInfo(SHOP_ZONE)


def _end_of(day: date) -> datetime:
    """The last moment of `day` in the shop's zone, in UTC."""
    return datetime.combine(day, time(23, 59, 59), _zone()).astimezone(UTC)


def _add_workdays(start: date, days: int, workday: Callable[[date], bool]) -> date:
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if workday(day):
            left -= 1
    return day


def _business_day(day: date) -> bool:
    return day.weekday() < 5


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_at(regulation: Regulation, filed_at: datetime) -> datetime:
    filed = filed_at.astimezone(_zone()).date()
    if regulation is Regulation.PIPL:
        return _end_of(_add_workdays(filed, PIPL_WORKING_DAYS, china_workday))
    if regulation is Regulation.GDPR:
        return _end_of(add_months(filed, 1))
    return _end_of(filed + timedelta(days=CCPA_DAYS))


def acknowledge_by(regulation: Regulation, filed_at: datetime) -> datetime | None:
    if regulation is not Regulation.CCPA:
        return None
    filed = filed_at.astimezone(_zone()).date()
    return _end_of(_add_workdays(filed, CCPA_ACKNOWLEDGE_BUSINESS_DAYS, _business_day))


def extended(regulation: Regulation, current_due: datetime) -> datetime | None:
    """The deadline after the one extension a regulation allows; None: it allows none."""
    day = current_due.astimezone(_zone()).date()
    if regulation is Regulation.GDPR:
        return _end_of(add_months(day, GDPR_EXTENSION_MONTHS))
    if regulation is Regulation.CCPA:
        return _end_of(day + timedelta(days=CCPA_EXTENSION_DAYS))
    return None  # PIPL sets no extension
