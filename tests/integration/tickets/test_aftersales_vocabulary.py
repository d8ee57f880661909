"""The after-sales event and POST /aftersales speak one vocabulary (crm.aftersales_codes):
each takes the other's spelling of a refund-only case, an event's reason code is stored as the
reason of the list it stands for, and the lake (which the dashboard charts) holds those."""

from __future__ import annotations

from typing import Any

from tests.integration.profiles.test_profile_events import lake_objects
from tests.integration.tickets.conftest import Desk


def after_sales(cid: str, n: int, case: str, reason_code: str | None) -> dict[str, Any]:
    event = {"event_id": f"as-{n}", "type": "after_sales", "customer_id": cid, "case": case,
             "order_id": f"o-{n}", "amount": "10.00",
             "occurred_at": "2026-11-22T09:30:00+08:00"}  # fmt: skip
    return event | ({"reason_code": reason_code} if reason_code else {})


def test_events_store_the_reason_their_code_stands_for_and_one_refund_spelling(
    desk: Desk,
) -> None:
    cid = desk.customer("voc-1")
    events = [after_sales(cid, 1, "return", "damaged"),  # the README's event
              after_sales(cid, 2, "refund", "damaged_in_transit"),
              after_sales(cid, 3, "refund_only", "size"),  # too small or too large? other
              after_sales(cid, 4, "complaint", "QUALITY"),
              after_sales(cid, 5, "complaint", None)]  # fmt: skip
    accepted = desk.suite.call("POST", "/events", {"events": events})
    assert accepted.status == 202, accepted.body
    desk.suite.drain()
    rows = {row["event_id"]: row for rows in lake_objects(desk.suite).values() for row in rows
            if row.get("type") == "after_sales"}  # fmt: skip
    assert {e: (r["case"], r["reason_code"]) for e, r in rows.items()} == {
        "as-1": ("return", "damaged_in_transit"),
        "as-2": ("refund_only", "damaged_in_transit"),
        "as-3": ("refund_only", "other"),
        "as-4": ("complaint", "defective"),
        "as-5": ("complaint", None),
    }
    # A reason code is still a code: text that is none is refused, naming the field.
    bad = desk.suite.call("POST", "/events", {"events": [after_sales(cid, 6, "return", "破损")]})
    assert bad.status == 400
    assert "reason_code" in str(bad.body)


def test_a_case_takes_the_events_refund_only_and_answers_its_own_spelling(desk: Desk) -> None:
    cid = desk.customer("voc-2")
    case = {"kind": "refund_only", "order_id": "o-9", "customer_id": cid,
            "reason": "damaged_in_transit", "amount": "30.00"}  # fmt: skip
    out = desk.suite.call("POST", "/aftersales", case, role="customer", customer_id=cid)
    assert out.status == 201, out.body
    assert out.body["kind"] == "refund"
    # The reasons are the list's: an event's short code is no reason of a case.
    for bad in ({**case, "reason": "damaged"}, {**case, "kind": "refund-only"}):
        refused = desk.suite.call("POST", "/aftersales", bad, role="customer", customer_id=cid)
        assert refused.status == 400, bad
