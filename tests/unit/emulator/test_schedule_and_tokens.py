from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from crm_local.schedule import Cron, Rate, UnsupportedSchedule, parse_schedule
from crm_local.tokens import STAFF_ISSUER, InvalidToken, issue_token, verify_token

SECRET = "a-development-secret-of-32-bytes!"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_rate_expressions() -> None:
    assert parse_schedule("rate(5 minutes)") == Rate(timedelta(minutes=5))
    assert parse_schedule("rate(1 day)") == Rate(timedelta(days=1))
    with pytest.raises(UnsupportedSchedule):
        parse_schedule("rate(0 minutes)")


def test_cron_nightly_at_two_utc() -> None:
    cron = parse_schedule("cron(0 2 * * ? *)")
    assert isinstance(cron, Cron)
    assert cron.matches(at("2026-11-23T02:00:00"))
    assert not cron.matches(at("2026-11-23T02:01:00"))
    assert not cron.matches(at("2026-11-23T03:00:00"))


def test_cron_weekdays_use_eventbridge_numbering() -> None:
    # 2 = Monday in EventBridge (1 = Sunday); 2026-11-23 is a Monday.
    cron = parse_schedule("cron(30 9 ? * MON-FRI *)")
    assert isinstance(cron, Cron)
    assert cron.matches(at("2026-11-23T09:30:00"))
    assert not cron.matches(at("2026-11-22T09:30:00"))  # Sunday
    assert parse_schedule("cron(30 9 ? * 2 *)") == parse_schedule("cron(30 9 ? * MON *)")


def test_cron_steps_lists_and_months() -> None:
    cron = parse_schedule("cron(0/15 8,20 1 JAN,JUL ? 2026-2027)")
    assert isinstance(cron, Cron)
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.matches(at("2026-07-01T20:45:00"))
    assert not cron.matches(at("2028-07-01T20:45:00"))


@pytest.mark.parametrize(
    "expression",
    ["cron(0 2 * * * *)", "cron(0 2 L * ? *)", "cron(0 2 * *)", "every day", "cron(61 2 * * ? *)"],
)
def test_schedules_the_clock_cannot_keep_are_refused(expression: str) -> None:
    with pytest.raises(UnsupportedSchedule):
        parse_schedule(expression)


def test_tokens_round_trip_as_rest_api_claims() -> None:
    token = issue_token(SECRET, "customer", customer_id="c-1")
    claims = verify_token(SECRET, f"Bearer {token}")
    assert claims["cognito:groups"] == "customer"
    assert claims["custom:customer_id"] == "c-1"
    assert all(isinstance(v, str) for v in claims.values())


def test_bad_tokens_are_refused() -> None:
    token = issue_token(SECRET, "admin")
    with pytest.raises(InvalidToken):
        verify_token(SECRET[::-1], f"Bearer {token}")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, None)
    expired = jwt.encode(
        {"sub": "x", "iss": STAFF_ISSUER, "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"
    )
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"Bearer {expired}")
    with pytest.raises(ValueError, match="customer"):
        issue_token(SECRET, "customer")
