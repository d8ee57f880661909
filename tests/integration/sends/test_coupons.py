"""Coupon offers and codes through the API, the CouponIssuer and the store on moto: codes are
unique and issued once per (offer, issued_by), a budget is kept, a code is redeemed once and
never after it expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crm.campaigns.coupons import send_of
from crm.campaigns.send_models import CODE_ALPHABET, CODE_LENGTH
from crm.composition import root
from crm.errors import Conflict
from tests.integration.sends.conftest import START, Kit


def offer(**overrides: Any) -> dict[str, Any]:
    return {"offer_id": "dec-99-50", "description": "满99减50", "kind": "amount_off",
            "amount_off": "50.00", "min_order": "99.00", "valid_days": 7,
            "expires_at": "2026-12-31T23:59:59+08:00", "budget": 1000, **overrides}  # fmt: skip


def test_offers_are_defined_once_and_listed(kit: Kit) -> None:
    out = kit.suite.call("POST", "/campaigns/coupons/offers", offer(), role="marketer")
    assert out.status == 201, out.body
    assert out.body["amount_off"] == "50.00"
    assert out.body["created_by"]
    again = kit.suite.call("POST", "/campaigns/coupons/offers", offer(budget=5), role="marketer")
    assert again.status == 409
    pct = offer(offer_id="pct-12", kind="percent_off", amount_off=None, percent_off=12)
    assert kit.suite.call("POST", "/campaigns/coupons/offers", pct, role="marketer").status == 201
    listed = kit.suite.call("GET", "/campaigns/coupons/offers", role="analyst").body
    assert sorted(o["offer_id"] for o in listed["offers"]) == ["dec-99-50", "pct-12"]
    assert kit.suite.call("GET", "/campaigns/coupons/offers", role="customer",
                          customer_id="c-1").status == 403  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_off": "120.00"}, "amount_off must be below min_order"),
        ({"percent_off": 10}, "no percent_off"),
        ({"kind": "percent_off"}, "gives percent_off"),
        ({"budget": 0}, "budget"),
        ({"amount_off": "5.001"}, "amount_off"),
    ],
)
def test_a_bad_offer_is_a_400_naming_the_problem(kit: Kit, change: dict[str, Any], field: str
                                                 ) -> None:  # fmt: skip
    out = kit.suite.call("POST", "/campaigns/coupons/offers", offer(**change), role="marketer")
    assert out.status == 400
    assert field in str(out.body)


def test_an_offer_that_expired_already_is_refused(kit: Kit) -> None:
    body = offer(expires_at="2026-11-01T00:00:00Z")
    out = kit.suite.call("POST", "/campaigns/coupons/offers", body, role="marketer")
    assert out.status == 400


def test_issue_is_idempotent_per_issuer_codes_are_unique_and_the_budget_holds(kit: Kit) -> None:
    kit.suite.call("POST", "/campaigns/coupons/offers", offer(budget=20), role="marketer")
    coupons = root().coupons
    first = coupons.issue("dec-99-50", "c-1", "send#s1#A#c-1#sms")
    assert coupons.issue("dec-99-50", "c-1", "send#s1#A#c-1#sms") == first
    assert len(first.code) == CODE_LENGTH
    assert set(first.code) <= set(CODE_ALPHABET)
    assert first.description == "满99减50"
    assert first.expires_at == START + timedelta(days=7)
    codes = {coupons.issue("dec-99-50", f"c-{n}", f"send#s1#A#c-{n}#sms").code
             for n in range(2, 21)}  # fmt: skip
    assert len(codes) == 19
    assert first.code not in codes
    with pytest.raises(Conflict, match="whole budget of 20"):
        coupons.issue("dec-99-50", "c-99", "send#s1#A#c-99#sms")
    assert coupons.offer("dec-99-50").issued == 20
    # What a marketer reads: the list said issued 0 after codes went out.
    listed = kit.suite.call("GET", "/campaigns/coupons/offers", role="analyst").body["offers"]
    assert [(o["offer_id"], o["issued"]) for o in listed] == [("dec-99-50", 20)]
    one = kit.suite.call("GET", "/campaigns/coupons/offers/dec-99-50", role="analyst")
    assert (one.status, one.body["issued"], one.body["budget"]) == (200, 20, 20)
    missing = kit.suite.call("GET", "/campaigns/coupons/offers/nope", role="analyst")
    assert (missing.status, missing.body["error"]["message"]) == (404, "no coupon offer nope")


def test_a_code_collision_draws_another_code(kit: Kit) -> None:
    kit.suite.call("POST", "/campaigns/coupons/offers", offer(), role="marketer")
    drawn = iter(["AAAABBBBCCCC", "AAAABBBBCCCC", "DDDDEEEEFFFF"])
    coupons = root().coupons
    coupons._codes = lambda: next(drawn)
    assert coupons.issue("dec-99-50", "c-1", "k-1").code == "AAAABBBBCCCC"
    assert coupons.issue("dec-99-50", "c-2", "k-2").code == "DDDDEEEEFFFF"


def test_offline_redemption_once_then_409_and_an_expired_code_is_409(kit: Kit) -> None:
    kit.suite.call("POST", "/campaigns/coupons/offers", offer(), role="marketer")
    issued = root().coupons.issue("dec-99-50", "c-1", "send#s-42#B#c-1#sms")
    path = f"/campaigns/coupons/{issued.code.lower()}/redeem"
    till = {"order_id": "pos-1", "store_id": "sh-001"}
    out = kit.suite.call("POST", path, till, role="support_agent")
    assert out.status == 200, out.body
    assert out.body["channel"] == "offline"
    assert out.body["send_id"] == "s-42"  # attributed to the send that issued it
    assert out.body["customer_id"] == "c-1"
    again = kit.suite.call("POST", path, till, role="support_agent")
    assert again.status == 409
    assert "redeemed already" in again.body["error"]["message"]

    late = root().coupons.issue("dec-99-50", "c-2", "send#s-42#B#c-2#sms")
    kit.clock.advance(days=8)  # valid for 7 days from issue
    out = kit.suite.call("POST", f"/campaigns/coupons/{late.code}/redeem", {}, role="marketer")
    assert out.status == 409
    assert "expired" in out.body["error"]["message"]
    unknown = kit.suite.call("POST", "/campaigns/coupons/ZZZZZZZZZZZZ/redeem", {},
                             role="marketer")  # fmt: skip
    assert unknown.status == 404
    assert kit.suite.call("POST", path, {}, role="analyst").status == 403


def test_send_of_reads_the_dispatch_key() -> None:
    assert send_of("send#20261123T010000Z-ab#A#c-1#sms") == "20261123T010000Z-ab"
    assert send_of("journey#j-1#step#c-1#sms") is None
