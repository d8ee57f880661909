"""The customer's own time zone (the profile's `time_zone`, an IANA name) for quiet hours and
the caps' days, the shop's (the contact policy's) when the profile names none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.campaigns.policy import ContactPolicy
from crm.composition import root
from tests.integration.campaigns.conftest import Shop, _admin

BERLIN, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Nowhere", "../etc/passwd", "+08"])
def test_a_zone_the_database_does_not_know_is_a_400(shop: Shop, zone: str) -> None:
    body = {"identities": [{"channel": "app", "external_id": "tz-bad"}],
            "attributes": {"time_zone": zone}}  # fmt: skip
    out = shop.suite.call("POST", "/customers", body)
    assert out.status == 400, out.body
    assert "time_zone" in json_text(out.body)


def json_text(body: object) -> str:
    import json

    return json.dumps(body)


def test_a_customer_zone_is_stored_shown_and_edited(shop: Shop) -> None:
    cid = shop.customer(time_zone="Europe/Berlin")
    got = shop.suite.call("GET", f"/customers/{cid}", role="marketer")
    assert got.body["attributes"]["time_zone"] == "Europe/Berlin"
    edit = {"version": got.body["version"], "attributes": {"time_zone": "Asia/Shanghai"}}
    out = shop.suite.call("PATCH", f"/customers/{cid}", edit, role="support_agent")
    assert out.status == 200, out.body
    assert out.body["attributes"]["time_zone"] == "Asia/Shanghai"


def test_quiet_hours_are_the_customers_own(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    berlin = shop.customer("marketing_sms", time_zone="Europe/Berlin")
    shanghai = shop.customer("marketing_sms", time_zone="Asia/Shanghai")
    shop_zone = shop.customer("marketing_sms")  # none of its own: the shop's, Shanghai
    # 14:00 UTC: 15:00 in Berlin (CET), 22:00 in Shanghai (quiet from 21:00).
    shop.clock.now = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert dispatcher.dispatch(shop.request(berlin)).status == "sent"
    for cid in (shanghai, shop_zone):
        out = dispatcher.dispatch(shop.request(cid))
        assert (out.status, out.reason) == ("deferred", "quiet_hours")
        assert out.retry_at is not None
        local = out.retry_at.astimezone(SHANGHAI)
        assert (local.date().isoformat(), local.hour) == ("2026-11-25", 9)
    # 21:30 UTC: 22:30 in Berlin, quiet until 09:00 Berlin (08:00 UTC) plus the jitter.
    shop.clock.now = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
    late = dispatcher.dispatch(shop.request(berlin, step="s-2"))
    assert (late.status, late.reason) == ("deferred", "quiet_hours")
    assert late.retry_at is not None
    local = late.retry_at.astimezone(BERLIN)
    assert local.date().isoformat() == "2026-11-25"
    assert (
        timedelta(hours=9)
        <= local - local.replace(hour=0, minute=0, second=0)
        <= timedelta(hours=9, minutes=30)
    )


def test_the_daily_cap_counts_the_customers_calendar_day(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    root().campaign_dispatch.save_policy(_admin(), ContactPolicy(quiet_hours=None))
    berlin = shop.customer("marketing_sms", time_zone="Europe/Berlin")
    shanghai = shop.customer("marketing_sms", time_zone="Asia/Shanghai")
    # 15:30 UTC: Tuesday 16:30 in Berlin, Tuesday 23:30 in Shanghai.
    shop.clock.now = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    for cid in (berlin, shanghai):
        assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    # An hour later: still Tuesday in Berlin (the day's one SMS is taken), Wednesday in Shanghai.
    shop.clock.advance(hours=1)
    capped = dispatcher.dispatch(shop.request(berlin, step="b"))
    assert (capped.status, capped.reason) == ("capped", "daily_cap")
    assert dispatcher.dispatch(shop.request(shanghai, step="b")).status == "sent"
    assert set(shop.caps(berlin)["days"]) == {"2026-11-24"}
    assert set(shop.caps(shanghai)["days"]) == {"2026-11-25"}
    # Deferred instead: until Berlin's midnight (23:00 UTC), not Shanghai's.
    deferred = dispatcher.dispatch(shop.request(berlin, step="c", on_capped="defer"))
    assert deferred.status == "deferred"
    assert deferred.retry_at is not None
    assert deferred.retry_at.astimezone(BERLIN).date().isoformat() == "2026-11-25"
    assert deferred.retry_at < datetime(2026, 11, 24, 23, 0, tzinfo=UTC) + timedelta(minutes=31)
