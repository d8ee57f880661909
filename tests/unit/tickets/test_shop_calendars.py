"""Shop calendars as data: a definition's validation (each mistake named by its field) and the
calendar time it counts (time zones, daylight saving, a country's holidays, the shop's dates)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from crm.errors import validation_problems
from crm.models import API_INPUT
from crm.tickets.calendars import Overrun, of_definition
from crm.tickets.models import (
    CalendarDefinition,
    Priority,
    SlaMetric,
    TicketCategory,
    TicketChannel,
    TicketStatus,
)
from crm.tickets.records import PinnedTarget, TicketRecord
from crm.tickets.sla import deadlines, opening_entries, plan_timers

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def definition(**changes: Any) -> CalendarDefinition:
    body: dict[str, Any] = {"time_zone": "Europe/Berlin", "hours": WEEKDAYS,
                            "holidays": {"country": "DE"}, **changes}  # fmt: skip
    return CalendarDefinition.model_validate_json(json.dumps(body), strict=True,
                                                  context=API_INPUT)  # fmt: skip


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_friday_afternoon_runs_into_monday_morning_in_berlin() -> None:
    cal = of_definition("berlin@v1", definition())
    assert cal.add(berlin(2026, 11, 27, 16, 30), 3600) == berlin(2026, 11, 30, 9, 30)
    # Across the end of daylight saving time (Sunday 25 October 2026): +02:00 then +01:00.
    due = cal.add(berlin(2026, 10, 23, 16, 30), 3600)
    assert due == datetime(2026, 10, 26, 8, 30, tzinfo=UTC)
    # German Unity Day (Friday 3 October 2025) is skipped.
    assert cal.add(berlin(2025, 10, 2, 16, 30), 3600) == berlin(2025, 10, 6, 9, 30)


def test_the_shops_own_dates_close_and_open_days() -> None:
    closed = of_definition("b", definition(closed_dates=["2026-11-30"]))
    assert closed.add(berlin(2026, 11, 27, 16, 30), 3600) == berlin(2026, 12, 1, 9, 30)
    # A Saturday worked has no hours of its own: it works Monday's.
    extra = of_definition("b", definition(extra_working_dates=["2026-11-28"]))
    assert extra.add(berlin(2026, 11, 27, 16, 30), 3600) == berlin(2026, 11, 28, 9, 30)


def test_a_subdivisions_holidays_count() -> None:
    # Epiphany (6 January) is a holiday in Bavaria, not in Berlin.
    bavaria = of_definition("by", definition(holidays={"country": "DE", "subdivision": "BY"}))
    federal = of_definition("de", definition())
    start = berlin(2026, 1, 5, 16, 30)  # a Monday
    assert bavaria.add(start, 3600) == berlin(2026, 1, 7, 9, 30)
    assert federal.add(start, 3600) == berlin(2026, 1, 6, 9, 30)


def test_a_calendar_too_sparse_for_the_time_asked_says_so() -> None:
    sparse = of_definition("s", definition(hours={"sat": ["10:00-10:01"]}, holidays=None))
    with pytest.raises(Overrun):
        sparse.add(berlin(2026, 11, 27, 16, 30), 90 * 24 * 3600)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),
        ({"time_zone": "../Europe/Berlin"}, "time_zone"),
        ({"holidays": {"country": "XX"}}, "holidays.country"),
        ({"holidays": {"country": "DE", "subdivision": "ZZ"}}, "holidays.subdivision"),
        ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "hours.mon"),
        ({"hours": {"mon": ["13:00-14:00", "09:00-12:00"]}}, "hours.mon"),
        ({"hours": {"mon": ["12:00-12:00"]}}, "hours.mon"),
        ({"hours": {"mon": ["09:00:30-12:00"]}}, "hours.mon.0"),
        ({"hours": {"mon": ["09:00-24:01"]}}, "hours.mon.0"),
        ({"hours": {"someday": ["09:00-12:00"]}}, "hours.someday.[key]"),
        ({"hours": {}}, "hours"),
        ({"hours": {"mon": [], "sat": []}}, "hours"),
        ({"closed_dates": ["1999-12-31"]}, "closed_dates.0"),
        ({"extra_working_dates": ["2100-01-01"]}, "extra_working_dates.0"),
        ({"closed_dates": ["2026-01-01"] * 367}, "closed_dates"),
        ({"closed_dates": ["2026-12-24"], "extra_working_dates": ["2026-12-24"]},
         "extra_working_dates"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_by_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        definition(**changes)
    assert field in [p.field for p in validation_problems(raised.value)]


@settings(max_examples=40, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                       timezones=st.just(UTC)),
    minutes=st.integers(min_value=1, max_value=5 * 24 * 60),
)  # fmt: skip
def test_adding_calendar_time_is_the_inverse_of_measuring_it(start: datetime, minutes: int) -> None:
    cal = of_definition("b", definition(hours={**WEEKDAYS, "sat": ["10:00-14:00"]}))
    end = cal.add(start, minutes * 60)
    assert cal.seconds_between(start, end) == pytest.approx(minutes * 60)
    assert end - start >= timedelta(minutes=minutes)


def test_a_target_the_calendar_cannot_reach_shows_no_due_time_and_sets_no_wake_up() -> None:
    sparse = definition(hours={"sat": ["10:00-10:01"]}, holidays=None)
    opened = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    ticket = TicketRecord(
        ticket_id="t-1", customer_id="c-1", channel=TicketChannel.APP,
        category=TicketCategory.OTHER, category_confidence=1.0, priority=Priority.NORMAL,
        status=TicketStatus.NEW, opened_at=opened, updated_at=opened, policy="sla-v1",
        calendar="sparse@v1", calendar_definition=sparse,
        targets=[PinnedTarget(metric=SlaMetric.RESOLUTION, minutes=60 * 24 * 90, pauses=True)],
    )  # fmt: skip
    entries = opening_entries(ticket)
    [deadline] = deadlines(ticket, entries, opened + timedelta(days=1))
    assert deadline.due_at is None
    assert deadline.state == "running"
    assert plan_timers(ticket, [], entries, opened).set == []
