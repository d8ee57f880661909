"""An after-sales case is counted once, when it opens; its closing is announced on the bus
(event type after_sales_closed), which journeys trigger on."""

from __future__ import annotations

from typing import Any

from crm_local.harness import Suite


def case(cid: str, n: int, status: str) -> dict[str, Any]:
    at = "2026-11-20T10:00:00Z"
    return {"event_id": f"as-{n}", "type": "after_sales", "case": "return", "status": status,
            "customer_id": cid, "order_id": "o-1", "occurred_at": at}  # fmt: skip


def test_a_closed_case_is_announced_and_not_counted_again(suite: Suite) -> None:
    tap = suite.tap_bus("after-sales-tap", {"detail-type": ["CustomerProfileUpdated"]})
    body = {"identities": [{"channel": "app", "external_id": "as-1"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    assert suite.call("POST", "/events", {"events": [case(cid, 1, "opened")]}).status == 202
    suite.drain()
    assert suite.call("POST", "/events", {"events": [case(cid, 2, "closed")]}).status == 202
    suite.drain()
    announced = [e["detail"]["event_types"] for e in Suite.take_all(tap)]
    assert announced == [["after_sales"], ["after_sales", "after_sales_closed"]]
    view = suite.call("GET", f"/customers/{cid}").body
    assert view["behaviour"]["after_sales_count"] == 1
    assert view["behaviour"]["return_count"] == 1


def test_a_status_that_is_neither_is_refused(suite: Suite) -> None:
    body = {"identities": [{"channel": "app", "external_id": "as-2"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    out = suite.call("POST", "/events", {"events": [case(cid, 3, "pending")]})
    assert out.status == 400
