"""Refunds through the real path: each counts against its order's payment, never beyond it;
one before its payment waits aside, visible in the 360 view, and counts when it arrives."""

from __future__ import annotations

from typing import Any

from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_profile_events import recent


def new_customer(suite: Suite, external_id: str) -> str:
    body = {"identities": [{"channel": "app", "external_id": external_id}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def order(cid: str, order_id: str, amount: str, kind: str = "order_paid") -> dict[str, Any]:
    return {"event_id": f"{order_id}-{kind}", "type": kind, "customer_id": cid,
            "order_id": order_id, "amount": amount,
            "occurred_at": recent()}  # fmt: skip


def test_a_refund_before_its_payment_is_held_aside_then_counted(suite: Suite) -> None:
    cid = new_customer(suite, "u-6")
    early = order(cid, "o-1", "20.00", kind="order_refunded")
    assert suite.call("POST", "/events", {"events": [early]}).status == 202
    suite.drain()
    orders = suite.call("GET", f"/customers/{cid}").body["orders"]
    assert orders["refunded_amount"] == "0.00"
    assert orders["refunds_aside"] == "20.00"
    assert orders["refunds_awaiting_payment"] == {"o-1": "20.00"}
    assert orders["net_spend"] == "0.00"

    suite.call("POST", "/events", {"events": [order(cid, "o-1", "100.00")]})
    suite.drain()
    orders = suite.call("GET", f"/customers/{cid}").body["orders"]
    assert orders["refunded_amount"] == "20.00"
    assert orders["refunds_aside"] == "0.00"
    assert orders["refunds_awaiting_payment"] == {}
    assert orders["net_spend"] == "80.00"


def test_refunds_never_take_back_more_than_the_order_paid(suite: Suite) -> None:
    cid = new_customer(suite, "u-7")
    suite.call("POST", "/events", {"events": [order(cid, "o-1", "100.00")]})
    suite.drain()
    for n, amount in enumerate(("80.00", "50.00", "5.00")):
        refund = {**order(cid, "o-1", amount, kind="order_refunded"), "event_id": f"r-{n}"}
        suite.call("POST", "/events", {"events": [refund]})
        suite.drain()
    orders = suite.call("GET", f"/customers/{cid}").body["orders"]
    assert orders["refund_count"] == 3
    assert orders["refunded_amount"] == "100.00"
    assert orders["refunds_aside"] == "35.00"
    assert orders["net_spend"] == "0.00"


def test_a_refund_counts_against_a_payment_made_under_a_merged_profile(suite: Suite) -> None:
    survivor, source = new_customer(suite, "u-8"), new_customer(suite, "u-9")
    suite.call("POST", "/events", {"events": [order(source, "o-1", "100.00")]})
    suite.drain()
    suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source})
    refund = order(survivor, "o-1", "30.00", kind="order_refunded")
    suite.call("POST", "/events", {"events": [refund]})
    suite.drain()
    orders = suite.call("GET", f"/customers/{survivor}").body["orders"]
    assert (orders["refunded_amount"], orders["refunds_aside"]) == ("30.00", "0.00")


def test_a_refund_of_another_customers_order_is_kept_aside(suite: Suite) -> None:
    payer, other = new_customer(suite, "u-10"), new_customer(suite, "u-11")
    suite.call("POST", "/events", {"events": [order(payer, "o-1", "100.00")]})
    suite.drain()
    suite.call("POST", "/events", {"events": [order(other, "o-1", "30.00", "order_refunded")]})
    suite.drain()
    orders = suite.call("GET", f"/customers/{other}").body["orders"]
    assert (orders["refunded_amount"], orders["refunds_aside"]) == ("0.00", "30.00")


def test_aws_requests_to_fold_one_refund(suite: Suite) -> None:
    cid = new_customer(suite, "u-12")
    suite.call("POST", "/events", {"events": [order(cid, "o-1", "100.00")]})
    suite.drain()  # warm: the blind-index key is fetched once per container
    suite.call("POST", "/events", {"events": [order(cid, "o-1", "10.00", "order_refunded")]})
    messages = suite.receive("ProfileEventsQueue")
    with count_requests() as counts:
        suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,  # the profile, its scores item and the payment, together
        "dynamodb.TransactWriteItems": 1,
        "s3.PutObject": 1,
        "events.PutEvents": 1,
    }
