"""Edges the property-based API test found, through the real API function on moto: each was
a 500 or a schema-valid request refused."""

from __future__ import annotations

from typing import Any

from crm_local.harness import Suite


def new_customer(suite: Suite, name: str) -> str:
    body = {"identities": [{"channel": "app", "external_id": name}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def test_integral_numbers_are_integers_on_every_route(suite: Suite) -> None:
    """10.0 is an integer to JSON Schema (and to the clients whose serialisers write it)."""
    cid = new_customer(suite, "ann")
    points = {"txn_id": "t-1", "kind": "earn", "points": 10.0}
    assert suite.call("POST", f"/customers/{cid}/points", points).body["balance"] == 10
    edit = {"version": 1.0, "attributes": {"city": "杭州"}}
    assert suite.call("PATCH", f"/customers/{cid}", edit).body["version"] == 2
    item = {"sku": "milk-3", "category": "母婴", "quantity": 2.0, "unit_price": "134.00"}
    event = {"event_id": "e-1", "type": "order_paid", "customer_id": cid, "order_id": "o-1",
             "amount": "268.00", "occurred_at": "2026-11-20T12:00:00+08:00",
             "items": [item]}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [event]}).status == 202
    lapsed = {"name": "lapsed", "rule": {"all": [{"no_event": "order_paid", "days": 30.0}]}}
    assert suite.call("POST", "/segments", lapsed).body["rule"]["all"][0]["days"] == 30


def test_a_time_datetime_cannot_hold_in_utc_is_a_400_naming_the_field(suite: Suite) -> None:
    cid = new_customer(suite, "bob")
    for decided_at in ("0001-01-01T01:00:01.684234+17:30", "9999-12-31T23:00:00-05:00"):
        change = {"purpose": "profiling", "granted": False, "source": "app",
                  "decided_at": decided_at}  # fmt: skip
        reply = suite.call("PUT", f"/customers/{cid}/consent", change)
        assert reply.status == 400, reply.body
        assert [f["field"] for f in reply.body["error"]["fields"]] == ["decided_at"]


def test_an_event_at_the_first_documented_moment_is_folded(suite: Suite) -> None:
    """1900-01-01T00:00+08:00 is 1899 in UTC, the form the event is queued in: the folder
    reads back what intake wrote, it does not hold it to the document again."""
    identity = {"channel": "wechat", "external_id": "oWx-old"}
    event: dict[str, Any] = {"event_id": "old-1", "type": "product_viewed", "sku": "s-1",
                             "identity": identity,
                             "occurred_at": "1900-01-01T00:00:00+08:00"}  # fmt: skip
    assert suite.call("POST", "/events", {"events": [event]}).status == 202
    suite.drain()
    found = suite.call("POST", "/customers", {"identities": [identity]})
    assert found.status == 200
    timeline = found.body["profile"]["timeline"]
    assert [(e["event_id"], e["occurred_at"]) for e in timeline] == [
        ("old-1", "1899-12-31T16:00:00Z")
    ]


def test_money_as_text_is_written_as_prices_are(suite: Suite) -> None:
    cid = new_customer(suite, "cat")
    for n, amount in enumerate(["", "00.5", "1e2", "1.100"]):
        event = {"event_id": f"m-{n}", "type": "order_paid", "customer_id": cid,
                 "order_id": f"o-{n}", "amount": amount,
                 "occurred_at": "2026-11-20T12:00:00+08:00"}  # fmt: skip
        reply = suite.call("POST", "/events", {"events": [event]})
        assert reply.status == 400, (amount, reply.body)
        assert [f["field"] for f in reply.body["error"]["fields"]] == ["events.0.amount"]


def test_what_the_property_test_steers_clear_of_is_refused(suite: Suite) -> None:
    """Rules JSON Schema cannot say, which the property test keeps in its valid cases: each
    is a 400 naming the field."""
    cid = new_customer(suite, "dan")
    later = {"purpose": "profiling", "granted": True, "source": "app",
             "decided_at": "2998-01-01T00:00:00Z"}  # fmt: skip
    reply = suite.call("PUT", f"/customers/{cid}/consent", later)
    assert reply.status == 400
    assert "future" in reply.body["error"]["message"]
    view = {"event_id": "v-1", "type": "product_viewed", "customer_id": cid, "sku": "s-1",
            "occurred_at": "2026-11-20T12:00:00+08:00"}  # fmt: skip
    reply = suite.call("POST", "/events", {"events": [view, view]})
    assert reply.status == 400
    assert [f["field"] for f in reply.body["error"]["fields"]] == ["events"]
