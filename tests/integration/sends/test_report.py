"""Conversions and the campaign report on moto, from the order event to the numbers: paid
orders folded by profiles reach the conversions function through the bus and its queue; an
order counts for the last touch within its window, for the send whose coupon it redeemed
(once), or for the holdout a customer was kept in; the report gives the uplift with its
intervals and the ROI."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import boto3
import pytest

from crm.campaigns.policy import ContactPolicy
from crm.campaigns.reports import Arm, newcombe, t_quantile, welch
from crm.campaigns.send_models import Variant
from crm.campaigns.sends import assign, wilson
from crm.composition import root
from tests.integration.campaigns.conftest import COUPON_TEMPLATE
from tests.integration.sends.conftest import COST_MICROS, Kit

CONVERSIONS = "ConversionsQueue"


def paid(cid: str, order: str, amount: str, when: str, codes: list[str] | None = None
         ) -> dict[str, Any]:  # fmt: skip
    return {"event_id": f"{order}-paid", "type": "order_paid", "customer_id": cid,
            "occurred_at": when, "order_id": order, "amount": amount, "channel": "app",
            "coupon_codes": codes or []}  # fmt: skip


def fold_and_attribute(kit: Kit, events: list[dict[str, Any]]) -> int:
    out = kit.suite.call("POST", "/events", {"events": events})
    assert out.status == 202, out.body
    kit.suite.drain()  # profiles fold them: one CustomerProfileUpdated per customer, orders inside
    return kit.suite.drain("CampaignConversionsFunction", CONVERSIONS)


def report(kit: Kit, campaign_id: str) -> dict[str, Any]:
    out = kit.suite.call("GET", f"/campaigns/{campaign_id}/report", role="analyst")
    assert out.status == 200, out.body
    body: dict[str, Any] = out.body
    return body


def customer(kit: Kit, n: int) -> str:
    body = {"identities": [{"channel": "app", "external_id": f"r-{n}"}],
            "attributes": {"name": "李四", "phone": f"+86139{n:08d}"}}  # fmt: skip
    cid: str = kit.suite.call("POST", "/customers", body).body["customer_id"]
    change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
    assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    return cid


# moto in-process applies two threads' updates of one counter without a lock (DynamoDB makes
# each request atomic): a page's concurrent dispatches once lost one here (23 sent of 24). One
# request at a time inside moto; the dispatches still run concurrently.
@pytest.mark.usefixtures("atomic_moto")
def test_orders_are_attributed_and_the_report_gives_uplift_and_roi(live: Kit) -> None:
    """Through the real dispatcher: its policy (a control group of 15%, SMS at 0.05), its
    coupon rendering (our CouponIssuer), its counters and last touches."""
    kit = live
    stored = kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    stored["global_control_pct"] = 15
    stored["channels"]["sms"]["cost_micros"] = COST_MICROS
    assert kit.suite.call("PUT", "/campaigns/policy", stored, role="marketer").status == 200
    policy = ContactPolicy.model_validate(stored)
    offer = {"offer_id": "dec-99-50", "description": "满99减50", "kind": "amount_off",
             "amount_off": "50.00", "min_order": "99.00", "expires_at": "2026-12-31T00:00:00Z",
             "budget": 100}  # fmt: skip
    assert kit.suite.call("POST", "/campaigns/coupons/offers", offer, role="marketer").status == 201
    customers = [customer(kit, n) for n in range(40)]
    while not any(policy.in_global_control(c) for c in customers):  # one at least, for sure
        customers.append(customer(kit, len(customers)))
    kit.members("rfm:champions", customers)
    # The message shows the coupon (a code is issued only for one that does).
    assert kit.suite.call("PUT", "/campaigns/templates/t-1", COUPON_TEMPLATE).status == 200
    send = kit.create_send(holdout_percent=30, coupon_offer_id="dec-99-50")
    send_id = send["send_id"]
    variants = [Variant(name="A", weight=100, template_id="t-1")]
    control = {c for c in customers if policy.in_global_control(c)}
    arms = {c: assign(send_id, c, 30, variants)[0] for c in customers}
    treated = [c for c in customers if arms[c] == "treatment" and c not in control]
    held = [c for c in customers if arms[c] == "holdout" and c not in control]
    assert len(held) >= 3
    assert len(treated) >= 6
    kit.act(send_id, "start")
    kit.run()
    assert kit.send(send_id)["status"] == "complete"

    key = f"send#{send_id}#A#{treated[0]}#sms"
    code = root().send_store.issued_code("dec-99-50", key)
    assert code is not None  # dispatch rendered a code of the offer with the message
    kit.clock.advance(hours=2)
    now = kit.clock.now.isoformat()
    buyer = sorted(control)[0]
    orders = [
        paid(treated[0], "o-1", "120.00", now, [code]),  # the send's coupon and its touch
        paid(treated[1], "o-2", "100.00", now),
        paid(treated[2], "o-3", "80.00", now),
        paid(held[0], "o-4", "100.00", now),  # held out: counts for the holdout
        paid(held[1], "o-5", "60.00", now),
        paid(buyer, "o-6", "90.00", now),  # in the global control group
    ]
    assert fold_and_attribute(kit, orders) == 6
    kit.clock.advance(hours=30)  # past the SMS window of 24 hours
    late = [paid(treated[3], "o-7", "500.00", kit.clock.now.isoformat())]
    assert fold_and_attribute(kit, late) == 1

    body = report(kit, send_id)
    assert body["attribution_hours"] == 24
    assert body["coupons_redeemed"] == 1
    [variant] = body["variants"]
    n_t, n_h = len(treated), len(held)
    assert variant["recipients"] == n_t
    assert variant["sent"] == n_t
    assert variant["converted"] == 3
    assert Decimal(variant["revenue"]) == Decimal("300.00")
    assert body["holdout"]["recipients"] == n_h
    assert body["holdout"]["converted"] == 2
    assert Decimal(body["holdout"]["revenue"]) == Decimal("160.00")
    assert body["global_control"]["recipients"] == len(control)
    assert body["global_control"]["converted"] == 1
    uplift = variant["uplift"]
    assert math.isclose(uplift["estimate"], 3 / n_t - 2 / n_h)
    assert uplift["low"] < uplift["estimate"] < uplift["high"]
    incremental = Decimal(variant["incremental_revenue"])
    expected = (Decimal("300.00") / n_t - Decimal("160.00") / n_h) * n_t
    assert incremental == expected.quantize(Decimal("0.01"))
    cost = Decimal(n_t * COST_MICROS) / 1_000_000
    assert Decimal(variant["cost"]) == cost
    assert math.isclose(variant["roi"], float((incremental * Decimal("0.3") - cost) / cost))
    assert "holdout" in body["detail"]

    # The coupon is spent: the till cannot take it again.
    till = kit.suite.call("POST", f"/campaigns/coupons/{code}/redeem", {}, role="support_agent")
    assert till.status == 409

    # The bus delivering an order again counts nothing twice: re-announced by a redelivered
    # batch (no revision), or as one order (a CustomerOrderPaid queued before the fold
    # announced once per customer).
    sqs = boto3.client("sqs")
    order = {"order_id": "o-1", "amount": "120.00", "currency": "CNY", "coupon_codes": [code],
             "paid_at": now}  # fmt: skip
    again = {"detail-type": "CustomerProfileUpdated", "source": "crm", "detail": {
        "customer_id": treated[0], "rev": None, "changed": [], "event_types": [],
        "paid_orders": [order], "orders_paid": 1, "occurred_at": now}}  # fmt: skip
    legacy = {"detail-type": "CustomerOrderPaid", "source": "crm", "detail": {
        "customer_id": treated[0], **order, "occurred_at": now}}  # fmt: skip
    for body_ in (again, legacy):
        sqs.send_message(QueueUrl=kit.suite.queue_url(CONVERSIONS), MessageBody=json.dumps(body_))
    assert kit.suite.drain("CampaignConversionsFunction", CONVERSIONS) == 2
    assert report(kit, send_id) == body


def test_only_profile_updates_with_paid_orders_reach_conversions(kit: Kit) -> None:
    """OrderPaidRule matches the count of paid orders (comparison operators work on leaf nodes
    only): a batch without a payment puts nothing on the conversions queue."""
    cid = customer(kit, 900)
    viewed = {"event_id": "v-900", "type": "product_viewed", "customer_id": cid,
              "sku": "sku-1", "occurred_at": "2026-11-01T10:00:00Z"}  # fmt: skip
    assert kit.suite.call("POST", "/events", {"events": [viewed]}).status == 202
    assert kit.suite.drain() == 1
    assert kit.suite.receive(CONVERSIONS) == []
    two = [paid(cid, "o-900", "10.00", "2026-11-01T11:00:00Z"),
           paid(cid, "o-901", "20.00", "2026-11-01T12:00:00Z")]  # fmt: skip
    assert kit.suite.call("POST", "/events", {"events": two}).status == 202
    assert kit.suite.drain() == 2
    (message,) = kit.suite.receive(CONVERSIONS)  # both orders in the customer's one entry
    detail = json.loads(message["Body"])["detail"]
    assert sorted(o["order_id"] for o in detail["paid_orders"]) == ["o-900", "o-901"]


def test_a_paid_order_that_is_not_one_is_dead_lettered(kit: Kit) -> None:
    sqs = boto3.client("sqs")
    url = kit.suite.queue_url(CONVERSIONS)
    sqs.send_message(QueueUrl=url, MessageBody='{"detail": {"order_id": "o-1"}}')
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {
        "customer_id": "c-1", "paid_orders": [{"order_id": "o-2"}]}}))  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {
        "customer_id": "c-1", "paid_orders": {"order_id": "o-3"}}}))  # fmt: skip
    messages = kit.suite.receive(CONVERSIONS)
    assert len(messages) == 3
    out = kit.suite.deliver("CampaignConversionsFunction", CONVERSIONS, messages)
    assert len(out["batchItemFailures"]) == 3


def test_an_unknown_campaign_is_a_404(kit: Kit) -> None:
    out = kit.suite.call("GET", "/campaigns/nothing-here/report", role="analyst")
    assert out.status == 404


def test_the_intervals_agree_with_their_textbook_values() -> None:
    # Wilson for 0/10: [0, 0.2775] (Newcombe 1998, table I, example g).
    _, low, high = wilson(0, 10)
    assert low == 0.0
    assert math.isclose(high, 0.2775, abs_tol=1e-4)
    # At no successes, or all, the bound is exactly 0 or 1 (a holdout of 68 showed 3.5e-18).
    assert {wilson(0, n)[1] for n in range(1, 500)} == {0.0}
    assert {wilson(n, n)[2] for n in range(1, 500)} == {1.0}
    # Newcombe's method 10 for 56/70 - 48/80: [0.0524, 0.3339] (Newcombe 1998b, example a).
    diff = newcombe(56, 70, 48, 80)
    assert math.isclose(diff.low, 0.0524, abs_tol=1e-4)
    assert math.isclose(diff.high, 0.3339, abs_tol=1e-4)
    # t(0.975): 2.571 at 5 degrees of freedom, 2.042 at 30.
    assert math.isclose(t_quantile(5), 2.5706, abs_tol=3e-3)
    assert math.isclose(t_quantile(30), 2.0423, abs_tol=1e-3)
    # Welch on two arms with equal variance and size reduces to the pooled t interval.
    a = Arm(n=10, converted=10, revenue=Decimal(55), revenue_sq=385.0)  # 1..10
    b = Arm(n=10, converted=10, revenue=Decimal(45), revenue_sq=285.0)  # 0..9
    interval = welch(a, b)
    assert interval is not None
    assert math.isclose(interval.estimate, 1.0)
    half = t_quantile(18) * math.sqrt(2 * (385 - 10 * 5.5**2) / 9 / 10)
    assert math.isclose(interval.high - 1.0, half)
