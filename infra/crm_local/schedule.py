"""EventBridge schedule expressions: `rate(5 minutes)` and the six-field `cron(...)`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class UnsupportedSchedule(ValueError):
    pass


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step != 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise UnsupportedSchedule(f"{part} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise UnsupportedSchedule(f"the local clock does not understand {text!r} (L, W, # ...)")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: set[int]
    hours: set[int]
    days: set[int] | None  # None: '?' (day of week decides)
    months: set[int]
    weekdays: set[int] | None  # 1 = Sunday, as in EventBridge
    years: set[int]

    def matches(self, moment: datetime) -> bool:
        weekday = (moment.isoweekday() % 7) + 1
        day_ok = (self.days is None or moment.day in self.days) and (
            self.weekdays is None or weekday in self.weekdays
        )
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and moment.year in self.years
            and day_ok
        )


@dataclass(frozen=True)
class Rate:
    every: timedelta


def parse_schedule(expression: str) -> Cron | Rate:
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if count < 1:
            raise UnsupportedSchedule("a rate must be at least 1")
        return Rate(timedelta(seconds=count * _UNITS[unit]))
    cron = _CRON.match(expression)
    if not cron:
        raise UnsupportedSchedule(f"not a schedule expression: {expression}")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise UnsupportedSchedule("cron() takes six fields: min hour day month weekday year")
    minute, hour, day, month, weekday, year = fields
    if (day == "?") == (weekday == "?"):
        raise UnsupportedSchedule("cron() needs '?' in exactly one of day-of-month, day-of-week")
    return Cron(
        minutes=_field(minute, 0, 59),
        hours=_field(hour, 0, 23),
        days=None if day == "?" else _field(day, 1, 31),
        months=_field(month, 1, 12, _MONTHS),
        weekdays=None if weekday == "?" else _field(weekday, 1, 7, _DAYS),
        years=_field(year, 1970, 2199),
    )
