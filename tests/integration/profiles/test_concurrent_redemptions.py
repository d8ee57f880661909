"""Twenty redemptions of one customer's points at once, through the API handler: each one is
applied exactly once or refused with a 409 to retry, never a 500, and nothing is lost."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm_local.harness import Reply, Suite
from crm_local.runtime import pool_for

CALLERS = 20
START = 1000
EACH = 10


def test_twenty_concurrent_redemptions_are_each_applied_once_or_refused_with_409(
    suite: Suite, atomic_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"identities": [{"channel": "app", "external_id": "u-burst"}]}
    cid = suite.call("POST", "/customers", body).body["customer_id"]
    earn = {"txn_id": "earn-0", "kind": "earn", "points": START}
    assert suite.call("POST", f"/customers/{cid}/points", earn).status == 200
    # As many warm containers as callers, as Lambda scales out for a burst.
    spec = suite.stack.template.function("ApiFunction")
    monkeypatch.setattr(pool_for(spec, suite.stack.environment(spec)), "concurrency", CALLERS)

    start = threading.Barrier(CALLERS)

    def redeem(n: int) -> Reply:
        change = {"txn_id": f"redeem-{n}", "kind": "redeem", "points": EACH}
        start.wait()
        return suite.call("POST", f"/customers/{cid}/points", change)

    with ThreadPoolExecutor(CALLERS) as threads:
        replies = list(threads.map(redeem, range(CALLERS)))

    statuses = Counter(r.status for r in replies)
    assert set(statuses) <= {200, 409}, statuses
    for reply in replies:
        if reply.status == 409:
            assert "changed by other requests" in reply.body["error"]["message"]
    succeeded = {f"redeem-{n}" for n, r in enumerate(replies) if r.status == 200}
    assert succeeded

    points = suite.call("GET", f"/customers/{cid}/points", query={"limit": "100"}).body
    assert points["balance"] == START - EACH * len(succeeded)
    redeemed = [e["txn_id"] for e in points["entries"] if e["kind"] == "redeem"]
    assert sorted(redeemed) == sorted(succeeded)
    assert suite.call("GET", f"/customers/{cid}").body["points_balance"] == points["balance"]
