"""Business-hours calendars: the time an SLA clock counts.

A calendar is several working periods a day in the shop's time zone (Asia/Shanghai), on
working days: Monday to Friday, less China's public holidays, plus the make-up working days
(调休) the State Council announces with them, from the `holidays` package (maintained, with
each year's announced days). A 24x7 calendar counts every second.

`seconds_between` measures calendar time between two instants; `add` finds the instant a
number of calendar seconds after another. Both walk day by day, a bounded number of days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

SHOP_ZONE = "Asia/Shanghai"
MAX_DAYS = 3 * 366  # a target longer than this cannot be met in any calendar we keep


@cache
def _china(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """China's public holidays of a year and its make-up working days (weekend days worked)."""
    import holidays  # imported on first use: only the SLA clock needs it

    days = holidays.country_holidays("CN", years=year)
    return frozenset(days), frozenset(getattr(days, "weekend_workdays", ()))


def china_workday(day: date) -> bool:
    holidays_, makeup = _china(day.year)
    if day in makeup:
        return True
    return day.weekday() < 5 and day not in holidays_


@dataclass(frozen=True)
class Calendar:
    name: str
    zone: str = SHOP_ZONE
    # Working periods of a working day, local time, in order and not overlapping; none: 24x7.
    periods: tuple[tuple[time, time], ...] = ()
    workday: Callable[[date], bool] = field(default=china_workday, compare=False)

    @property
    def always(self) -> bool:
        return not self.periods

    def _windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working windows (UTC) from the local day of `start` on."""
        zone = ZoneInfo(self.zone)
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            if self.workday(day):
                for begin, end in self.periods:
                    yield (
                        datetime.combine(day, begin, zone).astimezone(UTC),
                        datetime.combine(day, end, zone).astimezone(UTC),
                    )
            day += timedelta(days=1)

    def seconds_between(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        if self.always:
            return (end - start).total_seconds()
        total = 0.0
        for begin, finish in self._windows(start):
            if begin >= end:
                break
            overlap = (min(finish, end) - max(begin, start)).total_seconds()
            total += max(0.0, overlap)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        if seconds <= 0:
            return start
        if self.always:
            return start + timedelta(seconds=seconds)
        left = seconds
        for begin, finish in self._windows(start):
            if finish <= start:
                continue
            opening = max(begin, start)
            length = (finish - opening).total_seconds()
            if left <= length:
                return opening + timedelta(seconds=left)
            left -= length
        raise ValueError(f"{seconds} s of {self.name} time do not fit in {MAX_DAYS} days")


BUSINESS_HOURS = Calendar(
    "business_hours", periods=((time(9, 0), time(12, 0)), (time(13, 30), time(21, 0)))
)
ALWAYS = Calendar("24x7")
CALENDARS = {c.name: c for c in (BUSINESS_HOURS, ALWAYS)}


def calendar_named(name: str) -> Calendar:
    return CALENDARS[name]
