"""Support finds customers by phone, email, a channel's id or an order id, creating nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from crm_local.harness import Suite, count_requests


def upsert(suite: Suite, *identities: tuple[str, str], **attrs: Any) -> str:
    body = {
        "identities": [{"channel": c, "external_id": x} for c, x in identities],
        "attributes": attrs,
    }
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def search(suite: Suite, role: str = "support_agent", **criteria: Any) -> Any:
    return suite.call("POST", "/customers/search", criteria, role=role)


def items(suite: Suite) -> list[dict[str, Any]]:
    table = suite.stack.refs["CustomersTable"]
    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


@pytest.fixture
def shop(suite: Suite) -> dict[str, str]:
    zhang = upsert(suite, ("app", "fs-zhang"), name="张三", phone="13812345678",
                   email="Zhang.San@Example.com")  # fmt: skip
    li = upsert(suite, ("wechat", "fs-openid-li"), name="李四")
    order = {
        "event_id": "fs-o1-paid", "type": "order_paid", "customer_id": li,
        "occurred_at": "2026-11-01T10:00:00+08:00", "order_id": "SO-2026-0001", "amount": "99.00",
        "items": [{"sku": "s1", "category": "母婴", "quantity": 1, "unit_price": "99.00"}],
    }  # fmt: skip
    placed = {**order, "event_id": "fs-o2-placed", "type": "order_placed",
              "order_id": "SO-2026-0002", "customer_id": zhang}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [order, placed]}).status == 202
    suite.drain()
    return {"zhang": zhang, "li": li}


def only_match(out: Any) -> dict[str, Any]:
    assert out.status == 200, out.body
    assert len(out.body["matches"]) == 1, out.body
    match: dict[str, Any] = out.body["matches"][0]
    return match


def test_find_by_phone_normalised_as_an_upsert_does(suite: Suite, shop: dict[str, str]) -> None:
    match = only_match(search(suite, phone="+86 138-1234-5678"))
    assert match["customer_id"] == shop["zhang"]
    assert match["matched_by"] == ["phone"]
    assert match["profile"]["attributes"]["name"] == "张三"  # agents read PII in full


def test_find_by_email_any_case(suite: Suite, shop: dict[str, str]) -> None:
    match = only_match(search(suite, email="ZHANG.SAN@example.COM"))
    assert match["customer_id"] == shop["zhang"]
    assert match["matched_by"] == ["email"]


def test_find_by_a_channels_id(suite: Suite, shop: dict[str, str]) -> None:
    match = only_match(search(suite, identity={"channel": "wechat", "external_id": "fs-openid-li"}))
    assert match["customer_id"] == shop["li"]
    assert match["matched_by"] == ["identity"]
    by_phone_identity = search(suite, identity={"channel": "phone", "external_id": "13812345678"})
    assert only_match(by_phone_identity)["customer_id"] == shop["zhang"]


def test_find_by_a_paid_or_a_placed_order(suite: Suite, shop: dict[str, str]) -> None:
    paid = only_match(search(suite, order_id="SO-2026-0001"))
    assert paid["customer_id"] == shop["li"]
    assert paid["matched_by"] == ["order_id"]
    assert paid["profile"]["orders"]["order_count"] == 1
    placed = only_match(search(suite, order_id="SO-2026-0002", role="privacy_officer"))
    assert placed["customer_id"] == shop["zhang"]


def test_criteria_together_find_each_match_once(suite: Suite, shop: dict[str, str]) -> None:
    out = search(suite, phone="13812345678", email="zhang.san@example.com",
                 order_id="SO-2026-0001")  # fmt: skip
    assert out.status == 200
    found = {m["customer_id"]: m["matched_by"] for m in out.body["matches"]}
    assert found == {shop["zhang"]: ["phone", "email"], shop["li"]: ["order_id"]}


def test_a_merged_profile_is_found_as_its_survivor(suite: Suite, shop: dict[str, str]) -> None:
    merged = suite.call(
        "POST", f"/customers/{shop['zhang']}/merge", {"source_customer_id": shop["li"]},
        role="support_manager",
    )  # fmt: skip
    assert merged.status == 200
    out = search(suite, order_id="SO-2026-0001", identity={"channel": "wechat",
                 "external_id": "fs-openid-li"})  # fmt: skip
    match = only_match(out)
    assert match["customer_id"] == shop["zhang"]
    assert match["matched_by"] == ["identity", "order_id"]


def test_nothing_matching_is_an_empty_list_and_nothing_is_ever_created(
    suite: Suite, shop: dict[str, str]
) -> None:
    before = items(suite)
    with count_requests() as calls:
        for criteria in (
            {"phone": "13900000000"}, {"email": "nobody@example.com"},
            {"identity": {"channel": "douyin", "external_id": "dy-none"}},
            {"order_id": "SO-NONE"}, {"phone": "13812345678"},
        ):  # fmt: skip
            out = search(suite, **criteria)
            assert out.status == 200
    assert out.body["matches"]  # the last one matches, the others do not
    assert items(suite) == before
    assert not any(op.endswith(("TransactWriteItems", "GenerateDataKey")) for op in calls)
    # The only write: the one match shown unmasked, its note queued for the privacy audit
    # trail (appended in batches by PrivacyAuditFunction).
    assert calls["sqs.SendMessageBatch"] == 1, calls
    assert not any(op.endswith(("PutItem", "PutObject")) for op in calls), calls
    assert search(suite, phone="13900000000").body == {"matches": []}


def test_who_may_search(suite: Suite, shop: dict[str, str]) -> None:
    for role in ("support_agent", "support_manager", "privacy_officer", "admin"):
        assert search(suite, role=role, phone="13812345678").status == 200, role
    for role in ("marketer", "analyst"):
        denied = search(suite, role=role, phone="13812345678")
        assert denied.status == 403, role
        assert denied.body["error"]["code"] == "forbidden"
    customer = suite.call("POST", "/customers/search", {"phone": "13812345678"},
                          role="customer", customer_id=shop["zhang"])  # fmt: skip
    assert customer.status == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"phone": None}, "body"),
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"identity": {"channel": "fax", "external_id": "1"}}, "identity.channel"),
        ({"order_id": "has spaces"}, "order_id"),
        ({"phone": "13812345678", "name": "张三"}, "name"),
    ],
)
def test_bad_criteria_are_a_400_naming_the_field(suite: Suite, body: Any, field: str) -> None:
    out = suite.call("POST", "/customers/search", body, role="support_agent")
    assert out.status == 400
    assert field in [f["field"] for f in out.body["error"]["fields"]]


def test_aws_requests_to_find_by_phone_and_order(suite: Suite, shop: dict[str, str]) -> None:
    search(suite, phone="13812345678")  # the blind-index key, once per container
    with count_requests() as calls:
        out = search(suite, phone="13812345678", order_id="SO-2026-0001")
    assert len(out.body["matches"]) == 2
    assert dict(calls) == {
        "dynamodb.BatchGetItem": 2,  # the phone's identity item; the order's ledger entries
        # each matching profile (with its scores item), each one's timeline
        "dynamodb.Query": 4,
        "kms.Decrypt": 2,  # each one's data key, to show PII to the agent
        "sqs.SendMessageBatch": 2,  # one audit note per customer shown unmasked
    }
