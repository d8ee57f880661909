"""A journey's wait "until a time of day" is the customer's time of day: the profile's zone,
else the shop's (the contact policy's)."""

from __future__ import annotations

from typing import Any

from tests.integration.journeys.conftest import Shop


def until_ten() -> dict[str, Any]:
    return {
        "name": "morning nudge",
        "trigger": {"type": "event", "event_type": "cart_added"},
        "start": "wait",
        "steps": [{"id": "wait", "type": "wait", "until_time": "10:00", "next": "remind"},
                  {"id": "remind", "type": "send", "channel": "push",
                   "template_id": "cart_reminder", "next": None}],
    }  # fmt: skip


def test_until_ten_in_berlin_in_shanghai_and_in_the_shops_zone(shop: Shop) -> None:
    policy = shop.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    policy["time_zone"] = "Europe/London"
    assert shop.suite.call("PUT", "/campaigns/policy", policy, role="marketer").status == 200
    shop.journey(until_ten())
    berlin = shop.customer("tz-berlin", time_zone="Europe/Berlin")
    shanghai = shop.customer("tz-shanghai", time_zone="Asia/Shanghai")
    london = shop.customer("tz-shop")  # no zone of its own: the shop's, London
    # Monday 08:00 UTC: 09:00 in Berlin, 16:00 in Shanghai, 08:00 in London.
    for cid in (berlin, shanghai, london):
        shop.event(cid, "cart_added")
    assert shop.dispatcher.steps() == []
    shop.advance(hours=1, minutes=1)  # 10:01 in Berlin
    assert shop.dispatcher.steps() == [(berlin, "remind")]
    shop.advance(hours=1)  # 10:01 in London
    assert shop.dispatcher.steps() == sorted([(berlin, "remind"), (london, "remind")])
    shop.advance(hours=15)  # Tuesday 01:01 UTC: 09:01 in Shanghai
    assert (shanghai, "remind") not in shop.dispatcher.steps()
    shop.advance(hours=1)  # 10:01 in Shanghai
    assert (shanghai, "remind") in shop.dispatcher.steps()
