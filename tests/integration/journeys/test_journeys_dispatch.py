"""The shipped journeys sending through dispatch (part D) itself: what the recording
provider took is what the journey sent, once."""

from __future__ import annotations

from typing import Any

from crm.campaigns.policy import ContactPolicy
from tests.integration.journeys.conftest import RealShop


def sms(example: dict[str, Any]) -> dict[str, Any]:
    """The example with its sends on SMS (the demo customers consent to it)."""
    for step in example["steps"]:
        if step["type"] == "send":
            step["channel"] = "sms"
    return example


def test_abandoned_cart_reminder_reaches_the_outbox_once(real_shop: RealShop) -> None:
    shop = real_shop
    journey_id = shop.journey(sms(shop.example("abandoned cart")))
    cid = shop.consenting("cart")
    shop.event(cid, "cart_added")
    shop.advance(hours=2, minutes=1)
    shop.advance(hours=1)  # nothing more to wake
    sent = shop.outbox(cid)
    assert [(e["campaign_id"], e["channel"]) for e in sent] == [(journey_id, "sms")]
    report = shop.report(journey_id)
    assert report["steps"]["reminder"]["sent"] == 1
    assert report["completed"] == 1


def test_cross_sell_seven_days_after_the_first_order(real_shop: RealShop) -> None:
    shop = real_shop
    journey_id = shop.journey(sms(shop.example("7 days after the first order")))
    cid = shop.consenting("first")
    shop.event(cid, "order_paid")
    shop.advance(days=6)
    assert shop.outbox(cid) == []
    shop.advance(days=1, minutes=1)
    assert [e["campaign_id"] for e in shop.outbox(cid)] == [journey_id]


def test_no_consent_is_suppressed_and_the_journey_goes_on(real_shop: RealShop) -> None:
    shop = real_shop
    journey_id = shop.journey(sms(shop.example("abandoned cart")))
    cid = shop.customer("no-consent", phone="+8613700000001")
    shop.event(cid, "cart_added")
    shop.advance(hours=2, minutes=1)
    assert shop.outbox(cid) == []
    report = shop.report(journey_id)
    assert report["steps"]["reminder"]["suppressed"] == 1
    assert report["steps"]["reminder"]["suppressed_by"] == {"no_consent": 1}
    assert report["completed"] == 1


def test_push_without_an_app_identity_is_reported_as_no_address(real_shop: RealShop) -> None:
    """The shipped abandoned-cart journey sends push: a customer who consents to it but has
    only a mini-program identity is not reached, and the report says why."""
    shop = real_shop
    journey_id = shop.journey(shop.example("abandoned cart"))
    n, cid = 0, ""
    while not cid or ContactPolicy().in_global_control(cid):  # outside the control group
        n += 1
        body = {"identities": [{"channel": "mini_program", "external_id": f"oMini-push-{n}"}],
                "attributes": {"name": "赵六"}}  # fmt: skip
        out = shop.suite.call("POST", "/customers", body)
        assert out.status in (200, 201), out.body
        cid = str(out.body["customer_id"])
    change = {"purpose": "marketing_push", "granted": True, "source": "app"}
    assert shop.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    shop.event(cid, "cart_added")
    shop.advance(hours=2, minutes=1)
    assert shop.outbox(cid) == []
    reminder = shop.report(journey_id)["steps"]["reminder"]
    assert (reminder["sent"], reminder["suppressed"]) == (0, 1)
    assert reminder["suppressed_by"] == {"no_address": 1}
    assert reminder["capped_by"] == {}
