"""Numbers and booleans must be JSON numbers and booleans on every route: "10" and true are
no count, no version and no consent. Strings still carry what JSON has no type for."""

from __future__ import annotations

from typing import Any

import pytest

from crm_local.harness import Suite


@pytest.fixture
def cid(suite: Suite) -> str:
    body = {"identities": [{"channel": "app", "external_id": "u-strict"}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def paid(cid: str, **fields: Any) -> dict[str, Any]:
    event = {"event_id": "e-1", "type": "order_paid", "customer_id": cid, "order_id": "o-1",
             "amount": "268.00", "occurred_at": "2026-11-20T12:00:00+08:00",
             "items": [{"sku": "milk-3", "category": "母婴", "quantity": 1,
                        "unit_price": "268.00"}]}  # fmt: skip
    return {"events": [{**event, **fields}]}


def requests(cid: str, wrong: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, the field that must be named) with `wrong` where an integer
    belongs."""
    item = {"sku": "milk-3", "category": "母婴", "quantity": wrong, "unit_price": "268.00"}
    return [
        ("POST", f"/customers/{cid}/points", {"txn_id": "t-1", "kind": "earn", "points": wrong},
         "points"),
        ("PATCH", f"/customers/{cid}", {"version": wrong, "attributes": {"city": "杭州"}},
         "version"),
        ("POST", "/events", paid(cid, items=[item]), "events.0.items.0.quantity"),
        ("POST", "/segments", {"name": "lapsed", "rule": {"all": [
            {"no_event": "order_paid", "days": wrong}]}}, "rule.all.0.days"),
    ]  # fmt: skip


@pytest.mark.parametrize("wrong", [True, "10", 10.5])
def test_a_string_a_boolean_or_a_fraction_is_refused_where_an_integer_belongs(
    suite: Suite, cid: str, wrong: Any
) -> None:
    for method, path, body, field in requests(cid, wrong):
        reply = suite.call(method, path, body)
        assert reply.status == 400, (method, path, reply.body)
        assert field in [f["field"] for f in reply.body["error"]["fields"]], reply.body


@pytest.mark.parametrize("wrong", ["true", 1])
def test_a_string_or_a_number_is_refused_where_a_boolean_belongs(
    suite: Suite, cid: str, wrong: Any
) -> None:
    change = {"purpose": "marketing_sms", "granted": wrong, "source": "app"}
    reply = suite.call("PUT", f"/customers/{cid}/consent", change)
    assert reply.status == 400
    assert reply.body["error"]["fields"][0]["field"] == "granted"
    assert suite.call("GET", f"/customers/{cid}").body["consent"] == {}


def test_what_json_has_no_type_for_still_comes_as_a_string(suite: Suite, cid: str) -> None:
    """Times, dates, enums and money as "268.00" (the documented form); money may also be a
    JSON number, read exactly, with at most two decimals."""
    assert suite.call("POST", "/events", paid(cid)).status == 202
    two = [{"sku": "m", "category": "母婴", "quantity": 2, "unit_price": 134}]
    as_number = paid(cid, event_id="e-2", order_id="o-2", amount=268, items=two)
    assert suite.call("POST", "/events", as_number).status == 202
    too_fine = paid(cid, event_id="e-3", order_id="o-3", amount=0.125, items=[])
    assert suite.call("POST", "/events", too_fine).status == 400
    edit = {"version": 1, "attributes": {"birthday": "1990-05-01", "gender": "female"}}
    assert suite.call("PATCH", f"/customers/{cid}", edit).status == 200
    suite.drain()
    assert suite.call("GET", f"/customers/{cid}").body["orders"]["total_spend"] == "536.00"


def test_a_query_parameter_the_route_does_not_take_is_refused_naming_it(
    suite: Suite, cid: str
) -> None:
    """As a body's unknown field is: a misspelt filter answered a 200 that ignored it."""
    misspelt = suite.call(
        "GET", "/analytics/metrics/funnel", role="analyst", query={"chanel": "app"}
    )
    assert misspelt.status == 400, misspelt.body
    assert misspelt.body["error"]["fields"] == [
        {"field": "chanel", "message": "not a parameter of this route (did you mean channel?)"}
    ]
    assert "this route takes" in misspelt.body["error"]["message"]
    extra = suite.call("GET", f"/customers/{cid}", role="admin", query={"fields": "all"})
    assert extra.status == 400, extra.body
    assert extra.body["error"]["message"] == (
        "unknown query parameter fields: this route takes none"
    )
    # Declared ones still pass, and the check comes after the token's (a 403 stays a 403).
    assert suite.call(
        "GET", "/analytics/metrics/funnel", role="analyst", query={"channel": "app"}
    ).status in (
        200,
        503,
    )
    assert suite.call("GET", f"/customers/{cid}", role="customer", query={"x": "1"},
                      customer_id="someone-else").status == 403  # fmt: skip
