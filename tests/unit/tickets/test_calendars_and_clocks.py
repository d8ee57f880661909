"""Calendars and SLA clocks as pure functions: business time across the lunch break, nights,
weekends, holidays and make-up working days; the ledger's pauses and resumes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.tickets.calendars import ALWAYS, BUSINESS_HOURS, china_workday
from crm.tickets.models import Priority, SlaMetric, TicketCategory, TicketChannel, TicketStatus
from crm.tickets.records import TicketRecord
from crm.tickets.sla import deadlines, moves, opening_entries, plan_timers, policy_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 23), True),  # a Monday
        (date(2026, 11, 28), False),  # a Saturday
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 10), True),  # a Saturday worked in exchange (调休)
        (date(2026, 2, 14), True),  # a Saturday worked before the Spring Festival
        (date(2026, 2, 17), False),  # the Spring Festival
    ],
)
def test_china_working_days(day: date, working: bool) -> None:
    assert china_workday(day) is working


def test_business_seconds_skip_lunch_nights_and_weekends() -> None:
    # 11:00 to 14:00 on a Monday: one hour before lunch, half an hour after.
    assert BUSINESS_HOURS.seconds_between(local(2026, 11, 23, 11), local(2026, 11, 23, 14)) == 5400
    # Friday 20:00 to Monday 10:00: one hour on Friday, one on Monday.
    assert BUSINESS_HOURS.seconds_between(local(2026, 11, 27, 20), local(2026, 11, 30, 10)) == 7200
    assert BUSINESS_HOURS.seconds_between(local(2026, 11, 30, 10), local(2026, 11, 30, 9)) == 0
    assert ALWAYS.seconds_between(local(2026, 11, 27, 20), local(2026, 11, 30, 10)) == 62 * 3600


def test_adding_business_time_is_the_inverse_of_measuring_it() -> None:
    start = local(2026, 9, 30, 20, 50)
    for seconds in (60, 600, 1800, 4 * 3600, 24 * 3600, 72 * 3600):
        end = BUSINESS_HOURS.add(start, seconds)
        assert BUSINESS_HOURS.seconds_between(start, end) == pytest.approx(seconds)
    # Starting at lunch, time counts from 13:30.
    assert BUSINESS_HOURS.add(local(2026, 11, 23, 12, 15), 600) == local(2026, 11, 23, 13, 40)
    assert ALWAYS.add(start, 90) == start + timedelta(seconds=90)


def ticket(category: TicketCategory = TicketCategory.LOGISTICS) -> TicketRecord:
    opened = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
    policy = policy_for(category, Priority.NORMAL)
    return TicketRecord(
        ticket_id="t-1", customer_id="c-1", channel=TicketChannel.APP, category=category,
        category_confidence=1.0, priority=Priority.NORMAL, status=TicketStatus.NEW,
        opened_at=opened, updated_at=opened, policy=policy.version,
        calendar=policy.calendar.name, targets=list(policy.targets),
    )  # fmt: skip


def test_two_waits_in_a_row_pause_once_and_resume_once() -> None:
    t = ticket()
    entries = opening_entries(t)
    at = t.opened_at + timedelta(hours=1)
    first = moves(t, entries, at, status=TicketStatus.WAITING_CUSTOMER)
    assert [(e.metric, e.move) for e in first] == [(SlaMetric.RESOLUTION, "pause")]
    entries += first
    second = moves(t, entries, at + timedelta(hours=1), status=TicketStatus.WAITING_THIRD_PARTY)
    assert second == []
    back = moves(t, entries, at + timedelta(hours=3), status=TicketStatus.OPEN)
    assert [(e.metric, e.move, e.seq) for e in back] == [(SlaMetric.RESOLUTION, "resume", 2)]
    entries += back
    now = at + timedelta(hours=4)
    resolution = next(d for d in deadlines(t, entries, now) if d.metric is SlaMetric.RESOLUTION)
    assert resolution.elapsed_seconds == 3600 + 3600  # 10-11 and 14-15 (after the resume)
    assert resolution.state.value == "running"


def test_a_reply_meets_response_metrics_and_plans_no_timers_for_them() -> None:
    t = ticket()
    entries = opening_entries(t)
    plan = plan_timers(t, [], entries, t.opened_at)
    assert sorted(timer_id for timer_id, _, _ in plan.set) == sorted(
        f"t-1#{m}#0#{stage}" for m in ("first_response", "feedback", "resolution")
        for stage in ("warn", "breach")
    )  # fmt: skip
    warn = next(due for timer_id, due, _ in plan.set if timer_id == "t-1#first_response#0#warn")
    assert warn == t.opened_at + timedelta(minutes=22, seconds=30)
    at = t.opened_at + timedelta(minutes=5)
    met = moves(t, entries, at, replied=True)
    assert {(e.metric, e.move) for e in met} == {
        (SlaMetric.FIRST_RESPONSE, "met"), (SlaMetric.FEEDBACK, "met"),
    }  # fmt: skip
    after = plan_timers(t, entries, met, at)
    assert after.set == []
    assert sorted(after.cancel) == sorted(
        f"t-1#{m}#0#{stage}" for m in ("first_response", "feedback") for stage in ("warn", "breach")
    )
