"""POST /events -> SQS -> ProfileEventsFunction -> DynamoDB, the lake and the bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from crm_local.harness import Suite, count_requests


@pytest.fixture
def bus_tap(suite: Suite) -> str:
    """A queue subscribed to everything the CRM publishes on its bus."""
    return suite.tap_bus("bus-tap", {"source": ["crm"]})


_RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def recent(minutes: int = 0) -> str:
    """A moment `minutes` after two hours before the tests started (the same for every call): a
    real-time event (today's, or yesterday's just after midnight), which the next nightly
    compaction covers, so its batch leaves no late-day marker (crm.lake.Lake.write_events)."""
    return (_RECENT + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def tapped(url: str) -> list[dict[str, Any]]:
    return Suite.take_all(url)


def new_customer(suite: Suite, external_id: str = "u-1") -> str:
    body = {"identities": [{"channel": "app", "external_id": external_id}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def paid(cid: str, order: str, amount: str, when: str, category: str = "美妆") -> dict[str, Any]:
    return {
        "event_id": f"{order}-paid", "type": "order_paid", "customer_id": cid,
        "occurred_at": when, "order_id": order, "amount": amount, "channel": "app",
        "items": [{"sku": f"sku-{order}", "category": category, "quantity": 2,
                   "unit_price": str(Decimal(amount) / 2)}],
    }  # fmt: skip


def lake_objects(suite: Suite, prefix: str = "events/") -> dict[str, list[dict[str, Any]]]:
    s3 = boto3.client("s3")
    bucket = suite.stack.refs["LakeBucket"]
    found = {}
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        found[obj["Key"]] = [json.loads(line) for line in text.splitlines()]
    return found


def test_events_are_folded_into_the_360_view(suite: Suite, bus_tap: str) -> None:
    cid = new_customer(suite)
    events = [
        # A campaign's coupon code (campaigns: S): on the bus for attribution, not in the lake.
        {**paid(cid, "o-2", "300.00", "2026-11-10T12:00:00+08:00", "母婴"),
         "coupon_codes": ["ab12cd34ef56"]},
        paid(cid, "o-1", "100.00", "2026-10-01T12:00:00+08:00"),
        {"event_id": "r-1", "type": "order_refunded", "customer_id": cid, "order_id": "o-1",
         "amount": "30.00", "occurred_at": "2026-10-05T12:00:00+08:00"},
        {"event_id": "v-1", "type": "product_viewed", "customer_id": cid, "sku": "sku-9",
         "category": "生鲜", "occurred_at": "2026-11-11T08:00:00+08:00", "channel": "mini_program"},
        {"event_id": "q-1", "type": "search", "customer_id": cid, "query": "奶粉 三段",
         "occurred_at": "2026-11-11T08:01:00+08:00"},
        {"event_id": "c-1", "type": "after_sales", "customer_id": cid, "case": "complaint",
         "order_id": "o-2", "reason_code": "late_delivery",
         "occurred_at": "2026-11-12T09:00:00+08:00"},
    ]  # fmt: skip
    accepted = suite.call("POST", "/events", {"events": events})
    assert accepted.status == 202
    assert accepted.body["accepted"] == 6
    assert suite.drain() == 6

    view = suite.call("GET", f"/customers/{cid}").body
    orders = view["orders"]
    assert orders["order_count"] == 2
    assert orders["total_spend"] == "400.00"
    assert orders["average_order_value"] == "200.00"
    assert orders["refunded_amount"] == "30.00"
    assert orders["first_order_at"] == "2026-10-01T04:00:00Z"
    assert orders["last_order_at"] == "2026-11-10T04:00:00Z"
    assert orders["categories"] == ["母婴", "美妆"]
    behaviour = view["behaviour"]
    assert (behaviour["view_count"], behaviour["search_count"]) == (1, 1)
    assert behaviour["complaint_count"] == 1
    assert [e["event_id"] for e in view["timeline"]] == ["c-1", "q-1", "v-1", "o-2-paid", "r-1",
                                                        "o-1-paid"]  # fmt: skip

    lake = lake_objects(suite)
    assert any(k.startswith("events/type=order_paid/dt=2026-11-10/") for k in lake)
    rows = [row for rows in lake.values() for row in rows]
    assert len(rows) == 6
    assert all("customer_id" not in row and "query" not in row for row in rows)
    assert len({row["customer_pid"] for row in rows}) == 1
    assert cid not in json.dumps(rows)

    assert all("coupon_codes" not in row for row in rows)

    # One entry for the customer's batch: the revision, the types folded, the paid orders.
    (updated,) = tapped(bus_tap)
    assert updated["detail-type"] == "CustomerProfileUpdated"
    detail = updated["detail"]
    assert detail["customer_id"] == cid
    assert detail["changed"] == ["aggregates", "timeline"]
    assert detail["event_types"] == ["after_sales", "order_paid", "order_refunded",
                                     "product_viewed", "search"]  # fmt: skip
    assert detail["orders_paid"] == 2
    orders = {o["order_id"]: o for o in detail["paid_orders"]}
    assert orders["o-2"]["amount"] == "300.00"
    assert orders["o-2"]["currency"] == "CNY"
    assert orders["o-2"]["coupon_codes"] == ["AB12CD34EF56"]
    assert orders["o-2"]["paid_at"].startswith("2026-11-10T04:00:00")
    assert orders["o-1"]["coupon_codes"] == []
    # Ids, amounts and codes only: the search's words never travel on the bus.
    assert "奶粉" not in json.dumps(updated, ensure_ascii=False)


def test_redelivery_and_resent_events_change_nothing(suite: Suite, bus_tap: str) -> None:
    cid = new_customer(suite)
    event = paid(cid, "o-7", "88.00", "2026-11-01T10:00:00Z")
    suite.call("POST", "/events", {"events": [event]})
    messages = suite.receive("ProfileEventsQueue")
    suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    before = suite.call("GET", f"/customers/{cid}").body
    lake_before = lake_objects(suite)
    # One entry: the profile's revision, with the paid order.
    assert [p["detail"]["orders_paid"] for p in tapped(bus_tap)] == [1]

    # The same SQS message delivered again (at-least-once delivery) ...
    suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    # ... and the client resending the order's payment under a new event id.
    suite.call("POST", "/events", {"events": [{**event, "event_id": "o-7-paid-retry"}]})
    suite.drain()

    after = suite.call("GET", f"/customers/{cid}").body
    assert after["orders"] == before["orders"]
    assert after["updated_at"] == before["updated_at"]
    assert len(after["timeline"]) == 1
    assert lake_objects(suite) == lake_before
    assert tapped(bus_tap) == []


def test_a_redelivered_duplicate_repeats_its_side_effects_only(suite: Suite, bus_tap: str) -> None:
    """A message that failed after its commit comes back with a receive count above one: the
    profile stays as it is, and the lake row is written again (consumers dedupe on event_id)."""
    cid = new_customer(suite)
    suite.call("POST", "/events", {"events": [paid(cid, "o-8", "10.00", "2026-11-01T10:00:00Z")]})
    messages = suite.receive("ProfileEventsQueue")
    suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    before = suite.call("GET", f"/customers/{cid}").body
    retried = [{**m, "Attributes": {**m["Attributes"], "ApproximateReceiveCount": "2"}}
               for m in messages]  # fmt: skip
    suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", retried)
    assert suite.call("GET", f"/customers/{cid}").body == before
    rows = [r for rows in lake_objects(suite).values() for r in rows]
    assert [r["event_id"] for r in rows] == ["o-8-paid", "o-8-paid"]
    # No new profile revision to announce; the paid order is published again (its consumer
    # counts an order once), since the failed attempt may not have published it: an entry
    # without a revision or event types, which journeys ignore.
    published = tapped(bus_tap)
    assert len(published) == 2
    (first,) = [p for p in published if p["detail"]["rev"] is not None]
    (again,) = [p for p in published if p["detail"]["rev"] is None]
    assert first["detail"]["rev"] is not None
    assert first["detail"]["event_types"] == ["order_paid"]
    assert again["detail-type"] == "CustomerProfileUpdated"
    detail = again["detail"]
    assert (detail["rev"], detail["changed"], detail["event_types"]) == (None, [], [])
    assert again["detail"]["paid_orders"] == first["detail"]["paid_orders"]
    assert again["detail"]["orders_paid"] == 1


def test_a_poison_message_fails_alone_and_ends_in_the_dlq(suite: Suite) -> None:
    cid = new_customer(suite)
    sqs = boto3.client("sqs")
    url = suite.queue_url("ProfileEventsQueue")
    sqs.send_message(QueueUrl=url, MessageBody='{"type": "order_paid", "phone": "13812345678"')
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {**paid(cid, "o-9", "5.00", "2026-11-01T10:00:00Z"), "customer_id": "ghost"}))  # fmt: skip
    suite.call("POST", "/events", {"events": [paid(cid, "o-10", "5.00", "2026-11-01T10:00:00Z")]})

    messages = suite.receive("ProfileEventsQueue")
    assert len(messages) == 3
    response = suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    assert len(response["batchItemFailures"]) == 2
    assert suite.call("GET", f"/customers/{cid}").body["orders"]["order_count"] == 1

    # maxReceiveCount is 3 in the template: the third failure moves both to the DLQ.
    suite.drain(rounds=5)
    dlq = suite.queue_url("ProfileEventsDLQ")
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 2
    assert suite.receive("ProfileEventsQueue") == []


def test_an_event_by_identity_creates_or_finds_the_profile(suite: Suite) -> None:
    event = {
        "event_id": "store-1", "type": "order_paid", "order_id": "pos-1", "amount": "59.90",
        "identity": {"channel": "offline_store", "external_id": "card-77"},
        "occurred_at": "2026-11-02T15:00:00+08:00", "store_id": "hz-03",
    }  # fmt: skip
    suite.call("POST", "/events", {"events": [event]})
    suite.drain()
    card = {"identities": [{"channel": "offline_store", "external_id": "card-77"}]}
    found = suite.call("POST", "/customers", card).body
    assert found["created"] is False
    assert found["profile"]["orders"]["total_spend"] == "59.90"


def test_bad_event_batches_are_rejected_whole(suite: Suite) -> None:
    cid = new_customer(suite)
    good = paid(cid, "o-1", "1.00", "2026-11-01T10:00:00Z")
    cases = [
        ({"events": []}, 400, "events"),
        ({"events": [{**good, "type": "order_shipped"}]}, 400, "events.0"),
        ({"events": [{**good, "occurred_at": "2026-11-01T10:00:00"}]}, 400,
         "events.0.occurred_at"),
        ({"events": [{**good, "amount": "-1"}]}, 400, "events.0.amount"),
        ({"events": [{k: v for k, v in good.items() if k != "customer_id"}]}, 400,
         "events.0"),  # the event itself: give customer_id or identity
        ({"events": [good, good]}, 400, "events"),
        ({"events": [good] * 101}, 400, "events"),
    ]  # fmt: skip
    for body, status, field in cases:
        out = suite.call("POST", "/events", body)
        assert out.status == status, body
        assert field in [f["field"] for f in out.body["error"]["fields"]], out.body
    huge = {"events": [{**good, "event_id": f"e{i}", "items": good["items"] * 150}
                       for i in range(40)]}  # fmt: skip
    too_big = suite.call("POST", "/events", huge)
    assert too_big.status == 413
    assert suite.receive("ProfileEventsQueue") == []


def test_a_customer_app_sends_only_its_own_browsing(suite: Suite) -> None:
    me = new_customer(suite, "me")
    view = {"event_id": "v-1", "type": "product_viewed", "customer_id": me, "sku": "s",
            "occurred_at": "2026-11-01T10:00:00Z"}  # fmt: skip
    ok = suite.call("POST", "/events", {"events": [view]}, role="customer", customer_id=me)
    assert ok.status == 202
    order = paid(me, "o-1", "1.00", "2026-11-01T10:00:00Z")
    assert suite.call("POST", "/events", {"events": [order]}, role="customer",
                      customer_id=me).status == 403  # fmt: skip
    other = {**view, "event_id": "v-2", "customer_id": "someone-else"}
    assert suite.call("POST", "/events", {"events": [other]}, role="customer",
                      customer_id=me).status == 403  # fmt: skip
    assert suite.call("POST", "/events", {"events": [view]}, role="marketer").status == 403


def test_aws_requests_to_fold_one_event(suite: Suite) -> None:
    cid = new_customer(suite)
    suite.call("POST", "/events", {"events": [paid(cid, "o-0", "1.00", recent())]})
    suite.drain()  # warm: the blind-index key is fetched once per container
    suite.call("POST", "/events", {"events": [paid(cid, "o-1", "1.00", recent(1))]})
    messages = suite.receive("ProfileEventsQueue")
    with count_requests() as counts:
        suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "s3.PutObject": 1,
        "events.PutEvents": 1,
    }


def test_aws_requests_to_read_one_360_view(suite: Suite) -> None:
    body = {"identities": [{"channel": "app", "external_id": "u"}],
            "attributes": {"phone": "13812345678"}}  # fmt: skip
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    with count_requests() as masked:
        suite.call("GET", f"/customers/{cid}", role="marketer")
    assert dict(masked) == {"dynamodb.Query": 2}  # the profile with its scores; the timeline
    with count_requests() as full:
        suite.call("GET", f"/customers/{cid}", role="support_agent")
    # An unmasked read queues one note for the privacy audit trail (SendMessageBatch), which
    # PrivacyAuditFunction appends in batches: no contention for the chain's head.
    assert dict(full) == {"dynamodb.Query": 2, "kms.Decrypt": 1, "sqs.SendMessageBatch": 1}


def test_an_after_sales_note_is_sealed_and_shown_only_to_pii_roles(suite: Suite) -> None:
    cid = new_customer(suite)
    words = "奶粉罐有凹痕，联系客服三天没人回复 / tin dented, no reply for 3 days"
    complaint = {"event_id": "note-1", "type": "after_sales", "case": "complaint",
                 "customer_id": cid, "note": words, "reason_code": "damaged",
                 "occurred_at": "2026-11-20T10:00:00Z"}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [complaint]}).status == 202
    suite.drain()
    agent = suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent["timeline"][0]["note"] == words
    marketer = suite.call("GET", f"/customers/{cid}", role="marketer").body
    assert marketer["timeline"][0]["note"] == "****"
    table = boto3.client("dynamodb").scan(TableName=suite.stack.refs["CustomersTable"])
    assert "凹痕" not in repr(table["Items"])
    rows = [r for rows in lake_objects(suite).values() for r in rows]
    assert rows
    assert all("note" not in r for r in rows)
