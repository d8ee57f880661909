"""A points change is announced on the bus (journeys trigger on it), once per applied
transaction: a retried txn_id announces nothing again."""

from __future__ import annotations

from crm_local.harness import Suite


def test_a_points_change_is_announced_once(suite: Suite) -> None:
    tap = suite.tap_bus("points-tap", {"detail-type": ["CustomerProfileUpdated"]})
    body = {"identities": [{"channel": "app", "external_id": "pts-1"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    change = {"txn_id": "pos-1", "kind": "earn", "points": 100, "reason": "purchase"}
    assert suite.call("POST", f"/customers/{cid}/points", change).status == 200
    assert suite.call("POST", f"/customers/{cid}/points", change).status == 200  # a retry
    events = [e["detail"] for e in Suite.take_all(tap)]
    assert [(e["customer_id"], e["changed"], e["event_types"]) for e in events] == [
        (cid, ["points"], ["points_changed"])
    ]
    redeem = {"txn_id": "pos-2", "kind": "redeem", "points": 30}
    assert suite.call("POST", f"/customers/{cid}/points", redeem).status == 200
    [again] = [e["detail"] for e in Suite.take_all(tap)]
    assert again["rev"] > events[0]["rev"]
