"""A txn_id names one points change: a retry gets its result, a different change a 409."""

from __future__ import annotations

import pytest

from crm_local.harness import Suite


@pytest.mark.parametrize(
    "reuse",
    [
        {"kind": "earn", "points": 50},  # another amount
        {"kind": "redeem", "points": 100},  # another kind
    ],
)
def test_a_txn_id_reused_for_a_different_change_is_a_409(
    suite: Suite, reuse: dict[str, object]
) -> None:
    body = {"identities": [{"channel": "app", "external_id": "u-pts"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    first = {"txn_id": "pos-7", "kind": "earn", "points": 100, "reason": "purchase"}
    assert suite.call("POST", f"/customers/{cid}/points", first).body["balance"] == 100

    retried = suite.call("POST", f"/customers/{cid}/points", {**first, "reason": "retry"})
    assert (retried.status, retried.body["balance"]) == (200, 100)  # the first result, once

    conflict = suite.call("POST", f"/customers/{cid}/points", {**first, **reuse})
    assert conflict.status == 409
    assert "pos-7" in conflict.body["error"]["message"]
    assert conflict.body["error"]["fields"][0]["field"] == "txn_id"
    view = suite.call("GET", f"/customers/{cid}/points").body
    assert view["balance"] == 100
    assert [(e["txn_id"], e["kind"], e["points"]) for e in view["entries"]] == [
        ("pos-7", "earn", 100)
    ]
