"""Profiles through API Gateway's event, the Chalice handler, the service and DynamoDB."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from crm_local.harness import Suite, count_requests


def upsert(suite: Suite, *identities: tuple[str, str], role: str = "admin", **attrs: Any) -> Any:
    body = {
        "identities": [{"channel": c, "external_id": x} for c, x in identities],
        "attributes": attrs,
    }
    return suite.call("POST", "/customers", body, role=role)


def raw_items(suite: Suite) -> list[dict[str, Any]]:
    table = suite.stack.refs["CustomersTable"]
    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


def test_upsert_creates_then_finds_the_same_profile(suite: Suite) -> None:
    first = upsert(suite, ("app", "u-1"), name="张三")
    assert first.status == 201
    assert first.body["created"] is True
    again = upsert(suite, ("app", "u-1"))
    assert again.status == 200
    assert again.body["created"] is False
    assert again.body["customer_id"] == first.body["customer_id"]
    assert again.body["profile"]["attributes"]["name"] == "张三"


def test_same_person_through_two_channels_is_one_profile(suite: Suite) -> None:
    app = upsert(suite, ("app", "u-2"), phone="138 1234 5678")
    mini = upsert(suite, ("mini_program", "openid-9"), ("phone", "+86 13812345678"))
    assert mini.status == 200
    assert mini.body["customer_id"] == app.body["customer_id"]
    channels = {i["channel"] for i in mini.body["profile"]["identities"]}
    assert channels == {"app", "phone", "mini_program"}


def test_upsert_with_identities_of_two_profiles_merges_them(suite: Suite) -> None:
    old = upsert(suite, ("app", "u-3"), name="李四").body["customer_id"]
    young = upsert(suite, ("wechat", "oa-openid-3"), email="Li.Si@Example.com").body["customer_id"]
    suite.call(
        "POST",
        f"/customers/{young}/points",
        {"txn_id": "t-young", "kind": "earn", "points": 40},
    )
    both = upsert(suite, ("app", "u-3"), ("wechat", "oa-openid-3"))
    assert both.body["customer_id"] == old
    assert both.body["merged"] == [young]
    profile = both.body["profile"]
    assert profile["points_balance"] == 40
    assert profile["attributes"]["email"] == "li.si@example.com"  # re-sealed under old's key
    assert profile["merged_from"] == [young]
    # The absorbed id still answers, with the surviving profile.
    assert suite.call("GET", f"/customers/{young}").body["customer_id"] == old


def test_read_is_masked_by_role(suite: Suite) -> None:
    cid = upsert(
        suite, ("app", "u-4"), name="王小明", phone="13812345678", email="xm@example.com",
        address={"province": "浙江", "city": "杭州", "line": "西湖区文三路 1 号"},
    ).body["customer_id"]  # fmt: skip
    marketer = suite.call("GET", f"/customers/{cid}", role="marketer").body
    assert marketer["pii"] == "masked"
    assert marketer["attributes"]["phone"] == "138****5678"
    assert marketer["attributes"]["name"] == "王**"
    assert marketer["attributes"]["email"] == "x***@example.com"
    assert marketer["attributes"]["address"] == {
        "province": "浙江", "city": "杭州", "district": None, "postal_code": None, "line": "****",
    }  # fmt: skip
    agent = suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent["pii"] == "full"
    assert agent["attributes"]["phone"] == "+8613812345678"
    assert agent["attributes"]["address"]["line"] == "西湖区文三路 1 号"
    analyst = suite.call("GET", f"/customers/{cid}", role="analyst").body
    assert analyst["attributes"]["phone"] == "138****5678"


def test_a_customer_sees_and_edits_only_their_own_profile(suite: Suite) -> None:
    mine = upsert(suite, ("app", "u-5"), phone="13900001111").body
    other = upsert(suite, ("app", "u-6")).body["customer_id"]
    me = mine["customer_id"]
    own = suite.call("GET", f"/customers/{me}", role="customer", customer_id=me)
    assert own.status == 200
    assert own.body["attributes"]["phone"] == "+8613900001111"
    edit = {"version": own.body["version"], "attributes": {"city": "上海"}}
    edited = suite.call("PATCH", f"/customers/{me}", edit, role="customer", customer_id=me)
    assert edited.status == 200
    denied = suite.call("GET", f"/customers/{other}", role="customer", customer_id=me)
    assert denied.status == 403
    assert denied.body["error"]["code"] == "forbidden"
    edit_other = suite.call(
        "PATCH", f"/customers/{other}", {"version": 1, "attributes": {"city": "x"}},
        role="customer", customer_id=me,
    )  # fmt: skip
    assert edit_other.status == 403


def test_pii_is_encrypted_at_rest_and_never_in_a_key(suite: Suite) -> None:
    upsert(suite, ("app", "u-7"), name="赵六", phone="13712345678", email="zl@example.com")
    dump = repr(raw_items(suite))
    for plaintext in ("赵六", "13712345678", "zl@example.com"):
        assert plaintext not in dump
    keys = [item["PK"]["S"] for item in raw_items(suite)]
    assert any(k.startswith("ID#phone#") for k in keys)
    assert any(k.startswith("ID#app#u-7") for k in keys)


def test_edit_with_a_stale_version_is_a_conflict(suite: Suite) -> None:
    cid = upsert(suite, ("app", "u-8")).body["customer_id"]
    v1 = suite.call("GET", f"/customers/{cid}").body["version"]
    ok = suite.call("PATCH", f"/customers/{cid}", {"version": v1, "attributes": {"city": "北京"}})
    assert ok.status == 200
    assert ok.body["version"] == v1 + 1
    assert ok.body["attributes"]["city"] == "北京"
    stale_edit = {"version": v1, "attributes": {"city": "天津"}}
    stale = suite.call("PATCH", f"/customers/{cid}", stale_edit)
    assert stale.status == 409
    assert "version" in stale.body["error"]["message"]
    assert suite.call("GET", f"/customers/{cid}").body["attributes"]["city"] == "北京"


def test_edit_can_clear_a_field_and_moves_the_phone_identity(suite: Suite) -> None:
    cid = upsert(suite, ("app", "u-9"), phone="13600000001", city="广州").body["customer_id"]
    edited = suite.call(
        "PATCH", f"/customers/{cid}",
        {"version": 1, "attributes": {"phone": "13600000002", "city": None}},
    ).body  # fmt: skip
    assert edited["attributes"]["city"] is None
    # The new number finds the customer, the old one no longer does.
    assert upsert(suite, ("phone", "13600000002")).body["customer_id"] == cid
    stranger = upsert(suite, ("phone", "13600000001"))
    assert stranger.status == 201
    assert stranger.body["customer_id"] != cid


def test_edit_to_a_phone_of_another_customer_is_a_conflict(suite: Suite) -> None:
    upsert(suite, ("app", "u-10"), phone="13500000010")
    cid = upsert(suite, ("app", "u-11")).body["customer_id"]
    taken = suite.call(
        "PATCH", f"/customers/{cid}", {"version": 1, "attributes": {"phone": "13500000010"}}
    )
    assert taken.status == 409
    assert "another customer" in taken.body["error"]["message"]
    assert suite.call("GET", f"/customers/{cid}").body["version"] == 1  # nothing half-written


def test_merge_keeps_both_histories(suite: Suite) -> None:
    survivor = upsert(suite, ("app", "u-12")).body["customer_id"]
    source = upsert(suite, ("offline_store", "card-12"), name="孙七").body["customer_id"]
    for cid, order in ((survivor, "o-a"), (source, "o-b")):
        suite.call("POST", "/events", {"events": [{
            "event_id": f"{order}-paid", "type": "order_paid", "customer_id": cid,
            "occurred_at": "2026-11-01T10:00:00+08:00", "order_id": order, "amount": "100.00",
            "items": [{"sku": "s1", "category": "母婴", "quantity": 1, "unit_price": "100.00"}],
        }]})  # fmt: skip
    suite.drain()
    denied = suite.call(
        "POST", f"/customers/{survivor}/merge", {"source_customer_id": source},
        role="support_agent",
    )  # fmt: skip
    assert denied.status == 403
    merged = suite.call(
        "POST", f"/customers/{survivor}/merge", {"source_customer_id": source},
        role="support_manager",
    )  # fmt: skip
    assert merged.status == 200
    view = merged.body
    assert view["orders"]["order_count"] == 2
    assert view["orders"]["total_spend"] == "200.00"
    assert {e["order_id"] for e in view["timeline"]} == {"o-a", "o-b"}
    assert view["attributes"]["name"] == "孙七"
    assert upsert(suite, ("offline_store", "card-12")).body["customer_id"] == survivor
    again = suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source})
    assert again.status == 409
    itself = suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": survivor})
    assert itself.status == 400


def test_consent_per_purpose_with_time_and_source(suite: Suite) -> None:
    cid = upsert(suite, ("app", "u-13")).body["customer_id"]
    change = {
        "purpose": "marketing_sms", "granted": True, "source": "store-0571",
        "decided_at": "2026-11-20T09:00:00+08:00",
    }  # fmt: skip
    out = suite.call("PUT", f"/customers/{cid}/consent", change, role="support_agent")
    assert out.status == 200
    assert out.body["consent"]["marketing_sms"]["granted"] is True
    withdrawn = {**change, "granted": False, "source": "app", "decided_at": "2026-11-21T09:00:00Z"}
    assert suite.call("PUT", f"/customers/{cid}/consent", withdrawn, role="customer",
                      customer_id=cid).status == 200  # fmt: skip
    older = {**change, "decided_at": "2026-11-19T09:00:00Z"}
    late = suite.call("PUT", f"/customers/{cid}/consent", older)
    assert late.status == 409
    view = suite.call("GET", f"/customers/{cid}").body
    assert view["consent"]["marketing_sms"] == {
        "granted": False, "decided_at": "2026-11-21T09:00:00Z", "source": "app",
    }  # fmt: skip
    assert suite.call("PUT", f"/customers/{cid}/consent", change, role="marketer").status == 403
    future = {**change, "decided_at": "2999-01-01T00:00:00Z"}
    ahead = suite.call("PUT", f"/customers/{cid}/consent", future)
    assert ahead.status == 400
    assert [f["field"] for f in ahead.body["error"]["fields"]] == ["decided_at"]


def test_tags_manual_and_scene(suite: Suite) -> None:
    cid = upsert(suite, ("app", "u-14")).body["customer_id"]
    out = suite.call(
        "POST", f"/customers/{cid}/tags",
        {"add": [{"name": "宝妈-奶粉敏感期", "kind": "scene"}, {"name": "vip-event"}]},
        role="marketer",
    )  # fmt: skip
    assert out.status == 200
    assert out.body["tags"]["宝妈-奶粉敏感期"]["kind"] == "scene"
    assert out.body["tags"]["vip-event"]["added_by"] == "marketer-1"
    removed = suite.call("POST", f"/customers/{cid}/tags", {"remove": ["vip-event"]})
    assert set(removed.body["tags"]) == {"宝妈-奶粉敏感期"}
    assert suite.call("POST", f"/customers/{cid}/tags", {}).status == 400
    assert suite.call("POST", f"/customers/{cid}/tags", {"add": [{"name": "x"}]},
                      role="analyst").status == 403  # fmt: skip


def test_points_earned_offline_are_visible_online(suite: Suite) -> None:
    app = upsert(suite, ("app", "u-15"), phone="13312345678").body["customer_id"]
    # The store's POS knows the member by card and phone; it resolves to the same profile.
    pos = upsert(suite, ("offline_store", "card-15"), ("phone", "13312345678"),
                 role="support_agent").body["customer_id"]  # fmt: skip
    assert pos == app
    earn = {"txn_id": "pos-1", "kind": "earn", "points": 300, "channel": "offline_store",
            "store_id": "sh-01", "reason": "purchase"}  # fmt: skip
    assert suite.call("POST", f"/customers/{pos}/points", earn, role="support_agent").status == 200
    online = suite.call("GET", f"/customers/{app}/points", role="customer", customer_id=app).body
    assert online["balance"] == 300
    assert online["entries"][0]["store_id"] == "sh-01"


def test_points_never_go_below_zero_and_retries_apply_once(suite: Suite) -> None:
    cid = upsert(suite, ("app", "u-16")).body["customer_id"]
    earn = {"txn_id": "e-1", "kind": "earn", "points": 100}
    assert suite.call("POST", f"/customers/{cid}/points", earn).body["balance"] == 100
    assert suite.call("POST", f"/customers/{cid}/points", earn).body["balance"] == 100
    too_much = suite.call(
        "POST", f"/customers/{cid}/points", {"txn_id": "r-1", "kind": "redeem", "points": 101}
    )
    assert too_much.status == 409
    assert "insufficient" in too_much.body["error"]["message"]
    ok = suite.call(
        "POST", f"/customers/{cid}/points", {"txn_id": "r-2", "kind": "redeem", "points": 60}
    )
    assert ok.body["balance"] == 40
    assert [e["balance_after"] for e in ok.body["entries"]] == [40, 100]
    page = suite.call("GET", f"/customers/{cid}/points", query={"limit": "1"}).body
    assert len(page["entries"]) == 1
    assert page["next_token"]
    rest = suite.call(
        "GET", f"/customers/{cid}/points", query={"limit": "1", "next_token": page["next_token"]}
    ).body
    assert rest["entries"][0]["txn_id"] == "e-1"
    other = upsert(suite, ("app", "u-17")).body["customer_id"]
    reused = suite.call("POST", f"/customers/{other}/points", earn)
    assert reused.status == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identities": []}, "identities"),
        ({"attributes": {"name": "x"}}, "identities"),
        ({"identities": [{"channel": "fax", "external_id": "1"}]}, "identities.0.channel"),
        ({"identities": [{"channel": "phone", "external_id": "12345"}]}, "identities.0"),
        ({"identities": [{"channel": "email", "external_id": "not-an-email"}]}, "identities.0"),
        ({"identities": [{"channel": "app", "external_id": "u"}], "nickname": "x"}, "nickname"),
        ({"identities": [{"channel": "app", "external_id": 42}]}, "identities.0.external_id"),
        (
            {"identities": [{"channel": "app", "external_id": "u"}],
             "attributes": {"phone": "555"}},
            "attributes.phone",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(suite: Suite, body: Any, field: str) -> None:
    out = suite.call("POST", "/customers", body)
    assert out.status == 400
    assert field in [f["field"] for f in out.body["error"]["fields"]]
    assert raw_items(suite) == []  # nothing written


def test_invalid_json_unknown_customer_and_missing_token(suite: Suite) -> None:
    bad = suite.call("POST", "/customers", raw_body="{not json")
    assert bad.status == 400
    assert bad.body["error"]["message"] == "the request body is not valid JSON"
    assert suite.call("POST", "/customers", raw_body="").status == 400
    missing = suite.call("GET", "/customers/nobody")
    assert missing.status == 404
    assert missing.body["error"]["code"] == "not_found"
    assert suite.call("GET", "/customers/nobody", role=None).status == 401
    assert suite.call("POST", "/customers/nobody/points",
                      {"txn_id": "t", "kind": "earn", "points": -5}).status == 400  # fmt: skip
    assert suite.call("GET", "/customers/x/points", query={"limit": "0"}).status == 400
    assert suite.call("GET", "/customers/x/points", query={"next_token": "zz"}).status in (400, 404)


def test_aws_requests_to_create_a_customer_with_pii(suite: Suite) -> None:
    upsert(suite, ("app", "warm"), phone="13000000000")  # the blind-index key, once per container
    with count_requests() as counts:
        created = upsert(suite, ("app", "new"), phone="13000000001", name="周九")
    assert created.status == 201
    assert dict(counts) == {
        "dynamodb.BatchGetItem": 1,  # who owns these identities?
        "kms.GenerateDataKey": 1,  # the customer's own data key
        "dynamodb.TransactWriteItems": 1,  # profile and identities, all or nothing
    }
