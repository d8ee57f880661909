"""The contact-pressure policy's pure rules: quiet hours, caps, priorities, the control group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from crm.campaigns.models import MessageChannel
from crm.campaigns.policy import (
    CapState,
    ContactPolicy,
    QuietHours,
    check_caps,
    jitter,
    quiet_until,
    reserve,
)

SMS, EMAIL = MessageChannel.SMS, MessageChannel.EMAIL
# Tuesday 2026-11-24, 10:00 in Shanghai.
TUESDAY = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_quiet_hours_overnight_end_the_next_morning_in_the_shops_zone() -> None:
    policy = ContactPolicy()
    assert quiet_until(policy, shanghai(24, 20, 59)) is None
    assert quiet_until(policy, shanghai(24, 21, 0)) == shanghai(25, 9)
    assert quiet_until(policy, shanghai(24, 23, 30)) == shanghai(25, 9)
    assert quiet_until(policy, shanghai(25, 3, 0)) == shanghai(25, 9)
    assert quiet_until(policy, shanghai(25, 9, 0)) is None
    daytime = ContactPolicy(quiet_hours=QuietHours(start="12:00", end="14:00"))
    assert quiet_until(daytime, shanghai(24, 13)) == shanghai(24, 14)
    assert quiet_until(daytime, shanghai(24, 22)) is None
    assert quiet_until(ContactPolicy(quiet_hours=None), shanghai(24, 23)) is None
    same = ContactPolicy(quiet_hours=QuietHours(start="21:00", end="21:00"))
    assert quiet_until(same, shanghai(24, 23)) is None


def test_quiet_hours_follow_daylight_saving_time_in_the_zone() -> None:
    berlin = ContactPolicy(time_zone="Europe/Berlin")
    # The night the clocks go back (2026-10-25): 09:00 CET is 08:00 UTC.
    assert quiet_until(berlin, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )


def test_jitter_is_fixed_per_message_and_within_the_spread() -> None:
    spreads = {jitter(f"k-{i}", 1800) for i in range(500)}
    assert all(timedelta(0) <= s <= timedelta(seconds=1800) for s in spreads)
    assert len(spreads) > 300
    assert jitter("k-1", 1800) == jitter("k-1", 1800)
    assert jitter("k-1", 0) == timedelta(0)


def test_daily_caps_per_channel_weekly_across_channels() -> None:
    policy = ContactPolicy(rolling_cap=None, reserved_slots=0)
    state = CapState()
    assert check_caps(policy, state, SMS, 0, TUESDAY).allowed
    state = reserve(policy, state, SMS, TUESDAY)
    refused = check_caps(policy, state, SMS, 0, TUESDAY + timedelta(hours=5))
    assert (refused.allowed, refused.reason) == (False, "daily_cap")
    assert refused.free_at == shanghai(25, 0)
    assert check_caps(policy, state, EMAIL, 0, TUESDAY).allowed
    state = reserve(policy, state, EMAIL, TUESDAY)
    state = reserve(policy, state, SMS, TUESDAY + timedelta(days=1))
    weekly = check_caps(policy, state, EMAIL, 0, TUESDAY + timedelta(days=2))
    assert (weekly.reason, weekly.free_at) == ("weekly_cap", shanghai(30, 0))
    # A new week (Monday in Shanghai) starts afresh; the old periods are pruned.
    monday = shanghai(30, 10)
    assert check_caps(policy, state, EMAIL, 0, monday).allowed
    assert list(reserve(policy, state, EMAIL, monday).weeks) == ["2026-W49"]


def test_the_rolling_window_counts_the_last_hours_whatever_the_calendar() -> None:
    policy = ContactPolicy(weekly_cap=None, rolling_cap=2, rolling_window_h=48)
    state = reserve(policy, CapState(), SMS, TUESDAY)
    state = reserve(policy, state, EMAIL, TUESDAY + timedelta(days=1))
    refused = check_caps(
        policy, state, MessageChannel.PUSH, 0, TUESDAY + timedelta(days=1, hours=1)
    )
    assert (refused.reason, refused.free_at) == ("rolling_cap", TUESDAY + timedelta(hours=48))
    assert check_caps(policy, state, MessageChannel.PUSH, 0, TUESDAY + timedelta(hours=49)).allowed


def test_the_last_weekly_slot_is_kept_for_high_priority_messages() -> None:
    policy = ContactPolicy(rolling_cap=None)  # 3 a week, 1 kept for priority >= 50
    state = reserve(policy, CapState(), SMS, TUESDAY)
    state = reserve(policy, state, EMAIL, TUESDAY)
    push = MessageChannel.PUSH
    assert check_caps(policy, state, push, 0, TUESDAY).reason == "weekly_cap"
    assert check_caps(policy, state, push, 49, TUESDAY).reason == "weekly_cap"
    assert check_caps(policy, state, push, 50, TUESDAY).allowed
    state = reserve(policy, state, push, TUESDAY)
    assert check_caps(policy, state, MessageChannel.WECHAT, 100, TUESDAY).reason == "weekly_cap"


def test_the_global_control_group_is_deterministic_and_its_share_is_the_policys() -> None:
    five, ten = ContactPolicy(), ContactPolicy(global_control_pct=10)
    ids = [f"c-{i}" for i in range(20_000)]
    in_five = {c for c in ids if five.in_global_control(c)}
    in_ten = {c for c in ids if ten.in_global_control(c)}
    assert 0.045 < len(in_five) / len(ids) < 0.055
    assert 0.095 < len(in_ten) / len(ids) < 0.105
    assert in_five <= in_ten  # raising the share keeps the old control group in it
    salted = ContactPolicy(control_salt="other")
    assert {c for c in ids if salted.in_global_control(c)} != in_five


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"time_zone": "Mars/Olympus"}, "Input should be"),
        ({"time_zone": "Asia/Pyongyang"}, "literal_error|Input should be"),
        ({"global_control_pct": 20}, "less than or equal to 15"),
        ({"quiet_hours": {"start": "25:00", "end": "09:00"}}, "pattern"),
        ({"quiet_hours": {"start": "21:00"}}, "Field required"),
        ({"channels": {"sms": {"daily_cap": 1}}}, "Field required"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(change: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ContactPolicy.model_validate({**ContactPolicy().model_dump(), **change})
