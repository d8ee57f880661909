"""Deadlines by regulation: PIPL's working days on China's calendar, GDPR's calendar month,
CCPA's 45 days and its acknowledgement within 10 business days, and the extensions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm.privacy.deadlines import acknowledge_by, add_months, due_at, extended
from crm.privacy.models import Regulation


def shanghai_day(moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def test_pipl_counts_fifteen_working_days_skipping_national_day_and_working_makeup_days() -> None:
    # Filed Friday 2026-09-25 (Shanghai). National Day and Mid-Autumn 2026: Oct 1-7 off (the
    # holidays package's calendar), with make-up working days around them.
    filed = datetime(2026, 9, 25, 2, 0, tzinfo=UTC)
    due = due_at(Regulation.PIPL, filed)
    plain_weekdays = datetime(2026, 10, 16, 15, 59, 59, tzinfo=UTC)  # 15 weekdays, no holiday
    assert due > plain_weekdays  # the Golden Week pushed it back
    assert shanghai_day(due).endswith("23:59:59")


def test_pipl_in_an_ordinary_fortnight_is_three_weeks_of_weekdays() -> None:
    filed = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday
    assert shanghai_day(due_at(Regulation.PIPL, filed)) == "2026-12-14 23:59:59"


def test_gdpr_is_one_calendar_month_and_a_short_month_ends_it_early() -> None:
    assert shanghai_day(due_at(Regulation.GDPR, datetime(2026, 1, 31, 2, tzinfo=UTC))) == (
        "2026-02-28 23:59:59"
    )
    assert shanghai_day(due_at(Regulation.GDPR, datetime(2026, 11, 23, 2, tzinfo=UTC))) == (
        "2026-12-23 23:59:59"
    )


def test_ccpa_is_45_days_acknowledged_within_10_business_days() -> None:
    filed = datetime(2026, 11, 23, 2, tzinfo=UTC)  # Monday
    assert shanghai_day(due_at(Regulation.CCPA, filed)) == "2027-01-07 23:59:59"
    ack = acknowledge_by(Regulation.CCPA, filed)
    assert ack is not None
    assert shanghai_day(ack) == "2026-12-07 23:59:59"
    assert acknowledge_by(Regulation.GDPR, filed) is None


@pytest.mark.parametrize(
    ("regulation", "expected"),
    [(Regulation.GDPR, "2027-02-23 23:59:59"), (Regulation.CCPA, "2027-02-06 23:59:59")],
)
def test_extensions(regulation: Regulation, expected: str) -> None:
    current = datetime(2026, 12, 23, 15, 59, 59, tzinfo=UTC)
    later = extended(regulation, current)
    assert later is not None
    assert shanghai_day(later) == expected


def test_pipl_allows_no_extension() -> None:
    assert extended(Regulation.PIPL, datetime(2026, 12, 14, 15, 59, 59, tzinfo=UTC)) is None


def test_add_months_keeps_the_day_or_the_months_last() -> None:
    from datetime import date

    assert add_months(date(2026, 12, 31), 2) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 5, 15), 1) == date(2026, 6, 15)
