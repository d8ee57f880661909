"""After-sales cases through API Gateway's event, the Chalice handler, the service and
DynamoDB (moto): opening, advancing by upstream events, the customer's timeline, 先行赔付, the
bus, product feedback and classification corrections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.tickets.aftersales_store import FEEDBACK_SHARDS
from crm_local.harness import Suite, count_requests

NOTE = "尺码偏小，穿不上，再不处理我就打12315"


def new_customer(suite: Suite, external_id: str) -> str:
    body = {"identities": [{"channel": "app", "external_id": external_id}], "attributes": {}}
    out = suite.call("POST", "/customers", body)
    assert out.status == 201
    return str(out.body["customer_id"])


def open_case(
    suite: Suite, customer_id: str, *, token_of: str | None = None, **overrides: Any
) -> Any:
    body = {
        "kind": "return",
        "order_id": "o-1001",
        "customer_id": customer_id,
        "reason": "size_too_small",
        "amount": "399.00",
        "sku": "SKU-DRESS-1",
        "product_category": "dresses",
        "note": NOTE,
        **overrides,
    }
    token = token_of or customer_id
    return suite.call("POST", "/aftersales", body, role="customer", customer_id=token)


def advance(suite: Suite, case_id: str, event_id: str, stage: str, **extra: Any) -> Any:
    body = {"event_id": event_id, "stage": stage, **extra}
    return suite.call("POST", f"/aftersales/{case_id}/stages", body, role="support_agent")


def table_items(suite: Suite) -> list[dict[str, Any]]:
    table = suite.stack.refs["TicketsTable"]
    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


@pytest.fixture
def customer(suite: Suite) -> str:
    return new_customer(suite, "as-1")


def test_a_customer_opens_a_return_and_follows_it_to_the_refund(
    suite: Suite, customer: str
) -> None:
    tap = suite.tap_bus("aftersales-tap", {"detail-type": ["AfterSalesStageChanged"]})
    opened = open_case(suite, customer)
    assert opened.status == 201, opened.body
    case = opened.body
    case_id = case["case_id"]
    assert case["stage"] == "submitted"
    assert case["label"] == "申请已提交"
    assert case["next_stages"] == ["approved", "rejected", "cancelled"]
    assert case["note"] == NOTE
    assert case["instant_refund"] is None
    assert case["timeline"][0]["target_at"] is not None  # reviewed within 4 h

    path = ["approved", "pickup_scheduled", "picked_up", "inspecting", "refunded"]
    for n, stage in enumerate(path):
        moved = advance(suite, case_id, f"wms-{n}", stage)
        assert moved.status == 200, moved.body
        assert moved.body["stage"] == stage
    mine = suite.call("GET", f"/aftersales/{case_id}", role="customer", customer_id=customer)
    assert mine.status == 200
    labels = [t["label"] for t in mine.body["timeline"]]
    assert labels == [
        "申请已提交",
        "审核通过",
        "上门取件已预约",
        "快递已揽收",
        "质检中",
        "退款到账",
    ]
    assert mine.body["closed"] is True
    assert mine.body["next_stages"] == []
    assert all(t["left_at"] for t in mine.body["timeline"][:-1])

    listing = suite.call("GET", f"/customers/{customer}/aftersales", role="customer",
                         customer_id=customer)  # fmt: skip
    assert [c["case_id"] for c in listing.body["cases"]] == [case_id]

    events = [e["detail"] for e in Suite.take_all(tap)]
    assert [e["stage"] for e in events] == ["submitted", *path]
    assert events[-1]["closed"] is True
    assert events[-1]["previous_stage"] == "inspecting"
    # Ids and codes only on the bus: no note, no reason text.
    assert all(set(e) == {"case_id", "customer_id", "order_id", "kind", "stage",
                          "previous_stage", "closed", "occurred_at"} for e in events)  # fmt: skip
    assert NOTE not in str(table_items(suite))  # sealed at rest


def test_an_upstream_event_moves_a_case_once(suite: Suite, customer: str) -> None:
    case_id = open_case(suite, customer).body["case_id"]
    first = advance(suite, case_id, "pay-7", "approved")
    again = advance(suite, case_id, "pay-7", "approved")
    assert first.status == again.status == 200
    assert again.body == first.body
    # The same id for another change is no redelivery: a 409, as a points txn_id's reuse is.
    reused = advance(suite, case_id, "pay-7", "pickup_scheduled")
    assert reused.status == 409, reused.body
    assert "moved the case to approved already" in reused.body["error"]["message"]
    stages = [i for i in table_items(suite) if i["SK"]["S"].startswith("STAGE#")]
    assert len(stages) == 2  # submitted, approved


def test_out_of_order_and_impossible_moves_are_409_naming_the_allowed_stages(
    suite: Suite, customer: str
) -> None:
    case_id = open_case(suite, customer).body["case_id"]
    early = advance(suite, case_id, "tms-1", "picked_up")
    assert early.status == 409
    assert "approved, rejected, cancelled" in early.body["error"]["message"]
    assert advance(suite, case_id, "x-1", "rejected").status == 400  # needs a reason
    rejected = advance(suite, case_id, "x-2", "rejected", reason="超过七天退货期")
    assert rejected.status == 200
    assert rejected.body["timeline"][-1]["reason"] == "超过七天退货期"
    closed = advance(suite, case_id, "x-3", "approved")
    assert closed.status == 409
    assert "the case is closed" in closed.body["error"]["message"]
    assert "超过七天退货期" not in str(table_items(suite))


def paid_order(suite: Suite, customer_id: str, order_id: str, amount: str) -> None:
    """The order's payment, folded into the customer's profile (the CRM knows the order)."""
    event = {"event_id": f"paid-{order_id}", "type": "order_paid", "order_id": order_id,
             "customer_id": customer_id, "amount": amount, "occurred_at": "2026-11-20T12:00:00Z",
             "items": [{"sku": "SKU-TEA-1", "category": "tea", "quantity": 1,
                        "unit_price": amount}]}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [event]}).status == 202
    assert suite.drain() >= 1


def test_a_small_dispute_is_refunded_at_once_and_recorded(suite: Suite, customer: str) -> None:
    paid_order(suite, customer, "o-1001", "30.00")
    tap = suite.tap_bus("aftersales-small", {"detail-type": ["AfterSalesStageChanged"]})
    out = open_case(suite, customer, kind="refund", amount="12.50", note=None)
    assert out.status == 201
    case = out.body
    assert case["stage"] == "refunded"
    assert case["closed"] is True
    refund = case["instant_refund"]
    assert refund["by"] == "policy:instant-refund"
    assert "先行赔付" in refund["why"]
    assert refund["limit"] == "50.00"
    assert [t["stage"] for t in case["timeline"]] == ["submitted", "refunded"]
    assert [e["detail"]["stage"] for e in Suite.take_all(tap)] == ["submitted", "refunded"]
    # An exchange is not money: it waits for review whatever its amount.
    exchange = open_case(suite, customer, kind="exchange", amount="12.50").body
    assert exchange["stage"] == "submitted"
    assert exchange["instant_refund"] is None


def test_an_order_is_refunded_at_once_once_and_only_if_the_crm_knows_it(
    suite: Suite, customer: str
) -> None:
    # A made-up (or not yet folded) order id is taken as given, but waits for review.
    unknown = open_case(suite, customer, kind="refund", order_id="made-up-7", amount="10.00")
    assert unknown.status == 201, unknown.body
    assert (unknown.body["stage"], unknown.body["instant_refund"]) == ("submitted", None)

    paid_order(suite, customer, "o-2001", "30.00")
    first = open_case(suite, customer, kind="refund", order_id="o-2001", amount="10.00")
    assert first.body["stage"] == "refunded"
    # The same order again: a second case is opened, and waits for review.
    again = open_case(suite, customer, kind="return", order_id="o-2001", amount="10.00")
    assert again.status == 201, again.body
    assert (again.body["stage"], again.body["instant_refund"]) == ("submitted", None)
    markers = [i for i in table_items(suite) if i["SK"]["S"].startswith("INSTANT_REFUND#")]
    assert [(m["SK"]["S"], m["case_id"]["S"]) for m in markers] == [
        ("INSTANT_REFUND#o-2001", first.body["case_id"])
    ]

    # Money asked back on a known order is at most what it paid less what its cases asked
    # already (10.00 refunded at once, 10.00 waiting): 10.00 left of 30.00.
    over = open_case(suite, customer, kind="refund", order_id="o-2001", amount="10.01")
    assert over.status == 400, over.body
    assert over.body["error"]["fields"] == [{"field": "amount", "message": "at most 10.00"}]
    # A case turned down asks nothing back any more.
    assert advance(suite, again.body["case_id"], "x-9", "rejected", reason="不符合").status == 200
    assert open_case(suite, customer, kind="return", order_id="o-2001",
                     amount="20.00").status == 201  # fmt: skip
    agent = suite.call("POST", "/aftersales", {
        "kind": "return", "order_id": "o-2001", "customer_id": customer,
        "reason": "defective", "amount": "9999.00"}, role="support_agent")  # fmt: skip
    assert agent.status == 400, agent.body
    assert agent.body["error"]["message"] == (
        "amount 9999.00 is more than order o-2001 has left to refund (0.00: 30.00 less 30.00 "
        "its cases ask back already)"  # 10.00 refunded at once, 20.00 open, 10.00 rejected
    )


def test_customers_see_only_their_own_cases(suite: Suite, customer: str) -> None:
    other = new_customer(suite, "as-2")
    case_id = open_case(suite, customer).body["case_id"]
    theirs = suite.call("GET", f"/aftersales/{case_id}", role="customer", customer_id=other)
    assert theirs.status == 404
    assert suite.call("GET", f"/customers/{customer}/aftersales", role="customer",
                      customer_id=other).status == 403  # fmt: skip
    assert open_case(suite, customer, token_of=other).status == 403
    # Customers do not advance cases; upstream systems and agents do.
    stage = {"event_id": "e-1", "stage": "approved"}
    assert suite.call("POST", f"/aftersales/{case_id}/stages", stage, role="customer",
                      customer_id=customer).status == 403  # fmt: skip
    assert suite.call("GET", f"/aftersales/{case_id}", role="support_agent").status == 200


def test_bad_requests_are_4xx_and_write_nothing(suite: Suite, customer: str) -> None:
    assert open_case(suite, customer, kind="swap").status == 400
    assert open_case(suite, customer, amount="-1").status == 400
    assert suite.call("POST", "/aftersales", {"kind": "return", "order_id": "o",
                      "customer_id": "nobody", "reason": "defective", "amount": "1.00"}
                      ).status == 404  # fmt: skip
    assert table_items(suite) == []
    assert suite.call("GET", "/aftersales/none").status == 404
    assert advance(suite, "none", "e", "approved").status == 404


def test_returns_feed_product_feedback_by_sku_and_category(suite: Suite, customer: str) -> None:
    for n in range(3):
        assert open_case(suite, customer, order_id=f"o-{n}").status == 201
    open_case(suite, customer, reason="defective", note=None, sku="SKU-DRESS-2")
    month = datetime.now(UTC).strftime("%Y-%m")
    by_sku = suite.call("GET", "/feedback/products", query={"sku": "SKU-DRESS-1"},
                        role="support_manager")  # fmt: skip
    assert by_sku.status == 200, by_sku.body
    assert by_sku.body["period"] == month
    assert by_sku.body["total"] == 3
    assert by_sku.body["return_reasons"] == [{"name": "size_too_small", "count": 3}]
    assert by_sku.body["risk_keywords"] == [{"name": "12315", "count": 3}]
    by_category = suite.call("GET", "/feedback/products",
                             query={"category": "dresses", "period": month})  # fmt: skip
    assert by_category.body["return_reasons"] == [
        {"name": "size_too_small", "count": 3}, {"name": "defective", "count": 1},
    ]  # fmt: skip
    # Counters spread over write shards; each source counted once.
    partitions = {i["PK"]["S"] for i in table_items(suite) if i["PK"]["S"].startswith("FEEDBACK#")}
    assert len(partitions) > 2
    assert all(int(p[-2:]) < FEEDBACK_SHARDS for p in partitions)
    book = root().product_feedback
    at = datetime.now(UTC)
    assert book.record_feedback("ticket:t-1", sku="SKU-DRESS-1", product_category="dresses",
                                at=at, category="size_fit") is True  # fmt: skip
    assert book.record_feedback("ticket:t-1", sku="SKU-DRESS-1", product_category="dresses",
                                at=at, category="size_fit") is False  # fmt: skip
    again = suite.call("GET", "/feedback/products", query={"sku": "SKU-DRESS-1"})
    assert again.body["complaint_categories"] == [{"name": "size_fit", "count": 1}]
    assert again.body["total"] == 4

    assert suite.call("GET", "/feedback/products", query={"sku": "a", "category": "b"}
                      ).status == 400  # fmt: skip
    assert suite.call("GET", "/feedback/products", query={"sku": "a", "period": "2026-13"}
                      ).status == 400  # fmt: skip
    empty = suite.call("GET", "/feedback/products", query={"sku": ""})  # given, not an id
    assert (empty.status, empty.body["error"]["fields"][0]["field"]) == (400, "sku")
    assert suite.call("GET", "/feedback/products", query={"sku": "a"}, role="customer",
                      customer_id=customer).status == 403  # fmt: skip
    assert suite.call("GET", "/feedback/products", query={"sku": "a"},
                      role="marketer").status == 403  # fmt: skip
    assert suite.call("GET", "/feedback/products", query={"sku": "SKU-DRESS-1"},
                      role="analyst").body["total"] == 4  # fmt: skip


def test_corrections_are_kept_by_reference_and_exported_for_retraining(suite: Suite) -> None:
    from crm.auth import Caller, Role

    agent = Caller(subject="agent-1", roles=frozenset({Role.SUPPORT_AGENT}))
    corrections = root().classification_corrections
    corrections.record_correction(agent, "ticket:t-9/message:m-1", "presale", "size_fit")
    corrections.record_correction(agent, "ticket:t-9/message:m-2", "other", "quality")
    with pytest.raises(Exception, match="not a ticket category"):
        corrections.record_correction(agent, "ticket:t-9/message:m-3", "other", "nonsense")
    rows = list(corrections.export(datetime.now(UTC).strftime("%Y-%m")).splitlines())
    import json

    parsed = [json.loads(r) for r in rows]
    assert [(p["text_ref"], p["label"]) for p in parsed] == [
        ("ticket:t-9/message:m-1", "size_fit"), ("ticket:t-9/message:m-2", "quality"),
    ]  # fmt: skip
    assert all("text" not in p for p in parsed)


@pytest.mark.usefixtures("atomic_moto")
def test_concurrent_deliveries_move_a_case_once(suite: Suite, customer: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from crm.auth import Caller, Role
    from crm.errors import Conflict
    from crm.tickets.aftersales_models import StageAdvance

    case_id = open_case(suite, customer).body["case_id"]
    system = Caller(subject="wms", roles=frozenset({Role.SUPPORT_AGENT}))
    service = root().aftersales

    def deliver(event_id: str) -> str:
        try:
            request = StageAdvance(event_id=event_id, stage="approved")
            return service.advance(system, case_id, request).stage.value
        except Conflict:
            return "conflict"

    # One event delivered four times at once, and two other events asking for the same move:
    # one event wins and every delivery of it answers "approved"; the losers learn the case
    # has moved on (409), whichever event that was.
    events = ["e-1"] * 4 + ["e-2", "e-3"]
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(deliver, events))
    by_event: dict[str, set[str]] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        by_event.setdefault(event, set()).add(outcome)
    winners = [e for e, seen in by_event.items() if seen == {"approved"}]
    assert len(winners) == 1, by_event
    assert all(seen == {"conflict"} for e, seen in by_event.items() if e not in winners)
    stages = [i for i in table_items(suite) if i["SK"]["S"].startswith("STAGE#")]
    assert len(stages) == 2
    case = suite.call("GET", f"/aftersales/{case_id}").body
    assert [t["stage"] for t in case["timeline"]] == ["submitted", "approved"]


def test_a_case_on_another_customers_order_is_refused_and_writes_nothing(
    suite: Suite, customer: str
) -> None:
    other = new_customer(suite, "as-other")
    paid = {"event_id": "o-theirs-paid", "type": "order_paid", "customer_id": other,
            "order_id": "o-theirs", "amount": "399.00",
            "occurred_at": "2026-11-20T10:00:00+08:00"}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [paid]}).status == 202
    suite.drain("ProfileEventsFunction", "ProfileEventsQueue")
    before = len(table_items(suite))
    refused = open_case(suite, customer, order_id="o-theirs")
    assert refused.status == 404, refused.body
    assert refused.body["error"]["fields"][0]["field"] == "order_id"
    assert len(table_items(suite)) == before
    # Their own order, and an order not folded yet, open as before.
    assert open_case(suite, other, order_id="o-theirs").status == 201
    assert open_case(suite, customer, order_id="o-not-folded-yet").status == 201


def test_opening_a_case_reads_the_profile_once(suite: Suite, customer: str) -> None:
    """The customer's profile (its data key seals the note) and the order's payment (whose
    order it is) come in one BatchGetItem; it was a Query for the profile and a BatchGetItem."""
    paid = {"event_id": "o-mine-paid", "type": "order_paid", "customer_id": customer,
            "order_id": "o-mine", "amount": "399.00",
            "occurred_at": "2026-11-20T10:00:00+08:00"}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [paid]}).status == 202
    suite.drain("ProfileEventsFunction", "ProfileEventsQueue")
    assert open_case(suite, customer, order_id="o-warm").status == 201  # the key's unwrap cached
    with count_requests() as counts:
        opened = open_case(suite, customer, order_id="o-mine")
    assert opened.status == 201, opened.body
    assert opened.body["note"] == NOTE  # sealed under the key read with the profile
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,  # the profile and the order's payment
        "kms.Decrypt": 1,  # the customer's data key, unwrapped once per request
        "dynamodb.TransactWriteItems": 1,  # the case and its feedback counts
        "events.PutEvents": 1,  # AfterSalesStageChanged
        # The stage's overdue timer (crm.timers.set: is it set already? then its writes).
        "dynamodb.GetItem": 1,
        "dynamodb.PutItem": 2,
    }


def test_a_first_case_creates_the_customers_data_key_once(suite: Suite) -> None:
    """A profile without a data key yet gets one, stored before the sealed note is: the note
    reads back under the key the profile keeps."""
    cid = new_customer(suite, "as-no-key")
    first = open_case(suite, cid, order_id="o-1")
    assert first.status == 201, first.body
    again = suite.call("GET", f"/aftersales/{first.body['case_id']}", role="customer",
                       customer_id=cid)  # fmt: skip
    assert again.body["note"] == NOTE
