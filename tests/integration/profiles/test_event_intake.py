"""POST /events refuses what would be lost or miscounted later, all or nothing, with one read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crm_local.harness import Suite, count_requests


def new_customer(suite: Suite, external_id: str) -> str:
    body = {"identities": [{"channel": "app", "external_id": external_id}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def viewed(cid: str, event_id: str, when: str = "2026-11-20T10:00:00Z") -> dict[str, Any]:
    return {"event_id": event_id, "type": "product_viewed", "customer_id": cid, "sku": "s-1",
            "occurred_at": when}  # fmt: skip


def order(cid: str, order_id: str, amount: str, kind: str = "order_paid",
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"event_id": f"{order_id}-{kind}", "type": kind, "customer_id": cid,
            "order_id": order_id, "amount": amount, "occurred_at": "2026-11-20T10:00:00Z",
            **extra}  # fmt: skip


def item(quantity: int, unit_price: str) -> dict[str, Any]:
    return {"sku": "milk-3", "category": "母婴", "quantity": quantity, "unit_price": unit_price}


def queued(suite: Suite) -> int:
    return len(suite.receive("ProfileEventsQueue"))


def test_an_event_for_an_unknown_customer_is_refused_and_nothing_is_queued(suite: Suite) -> None:
    cid = new_customer(suite, "u-1")
    events = [viewed(cid, "v-1"), viewed("ghost-1", "v-2"), viewed(cid, "v-3"),
              viewed("ghost-2", "v-4")]  # fmt: skip
    refused = suite.call("POST", "/events", {"events": events})
    assert refused.status == 404
    assert refused.body["error"]["code"] == "not_found"
    assert refused.body["error"]["fields"] == [
        {"field": "events.1.customer_id", "message": "no customer ghost-1"},
        {"field": "events.3.customer_id", "message": "no customer ghost-2"},
    ]
    assert queued(suite) == 0  # all or nothing: the good events were not queued either


def test_a_merged_away_customer_id_still_names_a_known_customer(suite: Suite) -> None:
    survivor = new_customer(suite, "u-2")
    source = new_customer(suite, "u-3")
    merge = {"source_customer_id": source}
    assert suite.call("POST", f"/customers/{survivor}/merge", merge).status == 200
    accepted = suite.call("POST", "/events", {"events": [order(source, "o-1", "10.00")]})
    assert accepted.status == 202
    suite.drain()
    assert suite.call("GET", f"/customers/{survivor}").body["orders"]["order_count"] == 1


def test_events_by_identity_still_create_their_customer(suite: Suite) -> None:
    event = {"event_id": "w-1", "type": "order_paid", "order_id": "o-w", "amount": "9.90",
             "identity": {"channel": "wechat", "external_id": "oWx-new"},
             "occurred_at": "2026-11-20T10:00:00Z"}  # fmt: skip
    with count_requests() as counts:
        assert suite.call("POST", "/events", {"events": [event]}).status == 202
    assert "dynamodb.BatchGetItem" not in counts  # nothing to check: the fold creates it
    suite.drain()
    found = suite.call("POST", "/customers", {"identities": [event["identity"]]})
    assert found.status == 200
    assert found.body["profile"]["orders"]["total_spend"] == "9.90"


def test_intake_checks_every_customer_of_a_batch_with_one_read(suite: Suite) -> None:
    customers = [new_customer(suite, f"u-{n}") for n in range(3)]
    survivor, source = new_customer(suite, "u-s"), new_customer(suite, "u-m")
    suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source})
    events = [viewed(customers[n % 3], f"v-{n}") for n in range(95)]
    events += [viewed(source, "v-merged"), viewed(survivor, "v-survivor")]
    events += [{"event_id": f"i-{n}", "type": "search", "query": "奶粉", "occurred_at":
                "2026-11-20T10:00:00Z", "identity": {"channel": "douyin", "external_id": f"d{n}"}}
               for n in range(3)]  # fmt: skip
    assert len(events) == 100
    with count_requests() as counts:
        accepted = suite.call("POST", "/events", {"events": events})
    assert accepted.status == 202
    assert dict(counts) == {"dynamodb.BatchGetItem": 1, "sqs.SendMessageBatch": 10}


def test_a_time_in_the_future_is_refused_beyond_a_small_skew(suite: Suite) -> None:
    cid = new_customer(suite, "u-4")
    now = datetime.now(UTC)
    soon = (now + timedelta(minutes=2)).isoformat()
    later = (now + timedelta(hours=1)).isoformat()
    refused = suite.call("POST", "/events", {"events": [viewed(cid, "v-1", soon),
                                                        viewed(cid, "v-2", later)]})  # fmt: skip
    assert refused.status == 400
    assert [f["field"] for f in refused.body["error"]["fields"]] == ["events.1.occurred_at"]
    assert "future" in refused.body["error"]["fields"][0]["message"]
    assert queued(suite) == 0
    assert suite.call("POST", "/events", {"events": [viewed(cid, "v-1", soon)]}).status == 202


def test_an_amount_must_agree_with_the_items_discount_and_shipping(suite: Suite) -> None:
    cid = new_customer(suite, "u-5")
    wrong = order(cid, "o-1", "100.00", items=[item(2, "60.00")])
    refused = suite.call("POST", "/events", {"events": [wrong]})
    assert refused.status == 400
    problem = refused.body["error"]["fields"][0]
    assert problem["field"] == "events.0.amount"
    assert "120.00" in problem["message"]
    assert queued(suite) == 0

    # 满99减50: two tins at 60, a 50 coupon, 8 shipping.
    coupon = order(cid, "o-2", "78.00", items=[item(2, "60.00")], discount="50.00",
                   shipping_fee="8.00")  # fmt: skip
    plain = order(cid, "o-3", "120.00", items=[item(2, "60.00")])
    no_items = order(cid, "o-4", "33.00")
    placed = order(cid, "o-5", "1.00", kind="order_placed", items=[item(1, "2.00")])
    ok = suite.call("POST", "/events", {"events": [coupon, plain, no_items]})
    assert ok.status == 202
    assert suite.call("POST", "/events", {"events": [placed]}).status == 400  # every order event
    suite.drain()
    orders = suite.call("GET", f"/customers/{cid}").body["orders"]
    assert orders["total_spend"] == "231.00"
