"""After-sales over the emulator's HTTP gateway: a customer opens a refund case with their own
token, staff (an agent, then the payment system's integration) move it through its stages,
the customer follows each stage with their token, and another customer reads nothing of it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def new_customer(emulator: Running, admin: str, external_id: str) -> str:
    status, created = emulator.http("POST", "/customers", {
        "identities": [{"channel": "mini_program", "external_id": external_id}],
    }, token=admin)  # fmt: skip
    assert status == 201, created
    return str(created["customer_id"])


def test_a_customer_follows_a_refund_through_its_stages(emulator: Running) -> None:
    admin = emulator.token("admin")
    cid = new_customer(emulator, admin, "openid-e2e-aftersales")
    other = new_customer(emulator, admin, "openid-e2e-aftersales-other")
    customer, stranger = emulator.token("customer", cid), emulator.token("customer", other)
    agent = emulator.token("support_agent")

    # Above the instant-refund limit (50.00): the case waits for review.
    status, case = emulator.http("POST", "/aftersales", {
        "kind": "refund", "order_id": "o-e2e-as-1", "customer_id": cid,
        "reason": "not_as_described", "amount": "299.00", "sku": "SKU-E2E-1",
        "product_category": "dresses", "note": "颜色和图片不一样，申请退款",
    }, token=customer)  # fmt: skip
    assert status == 201, case
    case_id = case["case_id"]
    assert (case["stage"], case["label"], case["closed"]) == ("submitted", "申请已提交", False)
    assert case["instant_refund"] is None
    assert case["next_stages"] == ["approved", "rejected", "cancelled"]

    def mine() -> dict[str, Any]:
        status, body = emulator.http("GET", f"/aftersales/{case_id}", token=customer)
        assert status == 200, body
        return dict(body)

    # The customer cannot move their own case; staff do.
    stage = {"event_id": "e2e-review-1", "stage": "approved"}
    assert emulator.http("POST", f"/aftersales/{case_id}/stages", stage, token=customer)[0] == 403
    status, moved = emulator.http("POST", f"/aftersales/{case_id}/stages", stage, token=agent)
    assert status == 200, moved
    seen = mine()
    assert [t["label"] for t in seen["timeline"]] == ["申请已提交", "审核通过"]
    assert seen["timeline"][0]["left_at"] is not None
    assert seen["note"] == "颜色和图片不一样，申请退款"  # their own words, in full

    # A redelivered upstream event changes nothing; a stage out of order is a 409.
    again = emulator.http("POST", f"/aftersales/{case_id}/stages", stage, token=agent)
    assert again == (200, moved)
    skip = {"event_id": "e2e-skip", "stage": "submitted"}
    assert emulator.http("POST", f"/aftersales/{case_id}/stages", skip, token=agent)[0] == 409

    refunded = {"event_id": "e2e-pay-1", "stage": "refunded"}
    status, done = emulator.http("POST", f"/aftersales/{case_id}/stages", refunded, token=agent)
    assert status == 200, done
    seen = mine()
    assert [t["stage"] for t in seen["timeline"]] == ["submitted", "approved", "refunded"]
    assert seen["timeline"][-1]["label"] == "退款到账"
    assert (seen["closed"], seen["next_stages"]) == (True, [])
    status, listing = emulator.http("GET", f"/customers/{cid}/aftersales", token=customer)
    assert status == 200
    assert [c["case_id"] for c in listing["cases"]] == [case_id]

    # Another customer: the case is as missing as one that does not exist, the list refused.
    assert emulator.http("GET", f"/aftersales/{case_id}", token=stranger)[0] == 404
    assert emulator.http("GET", f"/customers/{cid}/aftersales", token=stranger)[0] == 403
    status, theirs = emulator.http("GET", f"/customers/{other}/aftersales", token=stranger)
    assert (status, theirs["cases"]) == (200, [])
