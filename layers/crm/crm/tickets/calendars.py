"""Business-hours calendars: the time an SLA clock counts.

A calendar is working periods per weekday in a time zone, on the days its holidays leave
working: a country's public holidays (from the `holidays` package, maintained, with each
year's announced days) are closed and its make-up working days (China's 调休, the package's
`weekend_workdays`) worked; the shop's own `closed_dates` and `extra_working_dates` come on
top. A 24x7 calendar counts every second.

Two calendars are built in: `business_hours` (09:00-12:00 and 13:30-21:00 in Asia/Shanghai,
Monday to Friday, China's holidays) and `24x7`. Shops define their own as data
(`models.CalendarDefinition`, `PUT /tickets/calendars/{name}`); `of_definition` builds the
same `Calendar` from one, so built-in and shop calendars count time by the same code.

`seconds_between` measures calendar time between two instants; `add` finds the instant a
number of calendar seconds after another. Both walk day by day, a bounded number of days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from crm.tickets.holiday_days import country_days

if TYPE_CHECKING:
    from crm.tickets.models import CalendarDefinition

SHOP_ZONE = "Asia/Shanghai"
MAX_DAYS = 3 * 366  # a target longer than this cannot be met in any calendar we keep
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A working period: minutes after local midnight, [start, end), end up to 24 * 60.
Period = tuple[int, int]
Periods = tuple[Period, ...]


class Overrun(ValueError):
    """The calendar holds less working time than asked for within MAX_DAYS."""


def china_workday(day: date) -> bool:
    holidays_, makeup = country_days("CN", None, day.year)
    if day in makeup:
        return True
    return day.weekday() < 5 and day not in holidays_


def parse_period(text: str) -> Period:
    """'09:00-12:00' as minutes after midnight (the model's pattern has checked the shape)."""
    start, end = text.split("-")
    return _minutes(start), _minutes(end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def format_period(period: Period) -> str:
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in period)


@dataclass(frozen=True)
class Calendar:
    name: str  # as a ticket pins it: a built-in's name, or a shop's `<name>@v<version>`
    zone: str = SHOP_ZONE
    # Monday to Sunday, each day's periods in order and not overlapping; none at all: 24x7.
    weekly: tuple[Periods, ...] = ()
    country: str | None = None
    subdivision: str | None = None
    closed: frozenset[date] = frozenset()
    extra: frozenset[date] = frozenset()
    # The shop's definition it was built from (None: built in); a ticket pins it.
    definition: CalendarDefinition | None = field(default=None, compare=False)

    @property
    def always(self) -> bool:
        return not any(self.weekly)

    def hours(self, day: date) -> Periods:
        """The working periods of a local day."""
        if day in self.extra:
            return self._working_day(day)
        if day in self.closed:
            return ()
        if self.country is not None:
            public, makeup = country_days(self.country, self.subdivision, day.year)
            if day in makeup:
                return self._working_day(day)
            if day in public:
                return ()
        return self.weekly[day.weekday()]

    def _working_day(self, day: date) -> Periods:
        # A day worked by exception (a make-up or extra working day) on a weekday without
        # hours of its own works the hours of the first weekday that has some (Monday's, for
        # most shops): China's make-up Saturdays are ordinary working days.
        own = self.weekly[day.weekday()]
        return own or next(p for p in self.weekly if p)

    def _windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working windows (UTC) from the local day of `start` on."""
        zone = ZoneInfo(self.zone)
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            # Wall-clock arithmetic from local midnight: 09:00 is 09:00 on either side of a
            # daylight-saving change, and 24:00 is the next midnight.
            midnight = datetime.combine(day, time(0), zone)
            for begin, end in self.hours(day):
                yield (
                    (midnight + timedelta(minutes=begin)).astimezone(UTC),
                    _wall(midnight, end, zone).astimezone(UTC),
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
        raise Overrun(f"{seconds} s of {self.name} time do not fit in {MAX_DAYS} days")


def _wall(midnight: datetime, minutes: int, zone: ZoneInfo) -> datetime:
    if minutes < 24 * 60:
        return midnight + timedelta(minutes=minutes)
    return datetime.combine(midnight.date() + timedelta(days=1), time(0), zone)


_WEEKDAY_HOURS: Periods = ((9 * 60, 12 * 60), (13 * 60 + 30, 21 * 60))
BUSINESS_HOURS = Calendar("business_hours", weekly=(_WEEKDAY_HOURS,) * 5 + ((), ()), country="CN")
ALWAYS = Calendar("24x7")
CALENDARS = {c.name: c for c in (BUSINESS_HOURS, ALWAYS)}
BUILT_IN = frozenset(CALENDARS)


def calendar_named(name: str) -> Calendar:
    """A built-in calendar. A shop's calendars are read through the tickets service's lookup
    (`TicketService.calendar`); a ticket's through `pinned`."""
    return CALENDARS[name]


def of_definition(name: str, definition: CalendarDefinition) -> Calendar:
    holidays = definition.holidays
    hours = {str(day): periods for day, periods in definition.hours.items()}
    return Calendar(
        name=name,
        zone=definition.time_zone,
        weekly=tuple(tuple(parse_period(p) for p in hours.get(day, ())) for day in WEEKDAYS),
        country=holidays.country if holidays is not None else None,
        subdivision=holidays.subdivision if holidays is not None else None,
        closed=frozenset(definition.closed_dates),
        extra=frozenset(definition.extra_working_dates),
        definition=definition,
    )


def pinned(name: str, definition: CalendarDefinition | None) -> Calendar:
    """The calendar a ticket pinned when it opened: the shop calendar's definition copied onto
    it, or a built-in's name (tickets opened before shops had calendars pin only that)."""
    if definition is not None:
        return of_definition(name, definition)
    return calendar_named(name)


def describe(calendar: Calendar) -> dict[str, Any]:
    """A built-in calendar in the shape of a definition (what the API shows for it)."""
    return {
        "time_zone": calendar.zone,
        "hours": {
            day: [format_period(p) for p in periods] if not calendar.always else ["00:00-24:00"]
            for day, periods in zip(WEEKDAYS, calendar.weekly or ((),) * 7, strict=True)
            if periods or calendar.always
        },
        "holidays": {"country": calendar.country} if calendar.country else None,
    }
