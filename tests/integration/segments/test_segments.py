"""The segment run through its real path: schedule event -> planner -> shard queue -> workers
-> profiles, memberships, runs, lake, bus; and the routes that read them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from crm_local.harness import Suite, count_requests
from crm_local.seed import Shop
from crm_local.template import ROOT

SCHEDULE = json.loads((ROOT / "events" / "schedule_segments_nightly.json").read_text())
SHARDS = "SegmentShardsQueue"


def load_shop(suite: Suite, customers: int = 40) -> dict[str, str]:
    shop = Shop(seed=5).customers(customers)
    ids = {}
    for c in shop:
        out = suite.call("POST", "/customers", {"identities": c.identities,
                                                "attributes": c.attributes})  # fmt: skip
        ids[c.key] = out.body["customer_id"]
    events = [{**e, "customer_id": ids[e["customer_id"]]} for c in shop for e in c.events]
    for start in range(0, len(events), 100):
        assert suite.call("POST", "/events", {"events": events[start : start + 100]}).status == 202
    suite.drain(rounds=1000)
    return ids


def run_segments(suite: Suite) -> dict[str, Any]:
    plan: dict[str, Any] = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    handled = suite.drain("SegmentWorkerFunction", SHARDS, rounds=100)
    assert handled == plan["shards"]
    return plan


def tap_bus(suite: Suite) -> str:
    pattern = {"detail-type": ["CustomerSegmentChanged", "SegmentRunRequested"]}
    return suite.tap_bus("segment-tap", pattern)


def drain_tap(url: str) -> list[dict[str, Any]]:
    return Suite.take_all(url)


@pytest.fixture
def shop(suite: Suite) -> dict[str, str]:
    return load_shop(suite)


def test_a_nightly_run_scores_everyone_and_sizes_the_segments(
    suite: Suite, shop: dict[str, str]
) -> None:
    tap = tap_bus(suite)
    spent = {"field": "orders.total_spend", "op": "gte", "value": 1000}
    rule = {"name": "big-spenders", "description": "spent 1,000 or more",
            "rule": {"all": [spent]}}  # fmt: skip
    assert suite.call("POST", "/segments", rule, role="marketer").status == 201

    plan = run_segments(suite)
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == plan["run_id"]
    sizes = {s["name"]: s["size"] for s in listing["segments"]}
    tiers = sum(n for name, n in sizes.items() if name.startswith("tier:"))
    rfm = sum(n for name, n in sizes.items() if name.startswith("rfm:"))
    buyers = plan["sample_size"]  # every customer with an order, at this size
    assert tiers == rfm == buyers > 0
    assert sizes["big-spenders"] > 0
    assert len([n for n in sizes.values() if n]) >= 5  # the shop spreads over many segments

    # Members, a page at a time, add up to the size.
    members: list[str] = []
    token = None
    while True:
        query = {"limit": "7", **({"next_token": token} if token else {})}
        page = suite.call("GET", "/segments/big-spenders/members", role="marketer", query=query)
        members += page.body["customer_ids"]
        token = page.body["next_token"]
        if not token:
            break
    assert len(members) == len(set(members)) == sizes["big-spenders"]

    one = suite.call("GET", f"/customers/{members[0]}", role="marketer").body
    assert "big-spenders" in one["segments"]
    assert one["scores"]["tier"] in {"high_value", "potential", "new", "dormant", "churn_risk",
                                     "regular"}  # fmt: skip
    assert 0 <= one["scores"]["p_alive"] <= 1
    assert float(one["orders"]["total_spend"]) >= 1000

    entered = [e for e in drain_tap(tap) if e["detail-type"] == "CustomerSegmentChanged"]
    assert len(entered) == sum(n for n in sizes.values() if n)  # one per membership, all new
    assert {e["detail"]["change"] for e in entered} == {"entered"}

    recs = suite.call("GET", f"/customers/{members[0]}/recommendations", role="marketer",
                      query={"limit": "4"}).body  # fmt: skip
    assert recs["run_id"] == plan["run_id"]
    bought = set(one["orders"]["products"])
    suggested = [r["product"] for r in recs["recommendations"]]
    assert 0 < len(suggested) <= 4
    assert not bought & set(suggested)
    assert max(Counter(r["category"] for r in recs["recommendations"]).values()) <= 2

    lake = boto3.client("s3").list_objects_v2(
        Bucket=suite.stack.refs["LakeBucket"], Prefix=f"segment_scores/run={plan['run_id']}/"
    )
    # One object per shard that scored someone: customer ids are random, so over this small
    # shop a parallel-scan segment can be empty, and an empty shard writes nothing.
    assert 0 < lake["KeyCount"] <= plan["shards"]


def test_the_next_runs_write_back_only_what_changed_and_count_a_retried_shard_once(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    plan = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    messages = suite.receive(SHARDS)
    with count_requests() as counts:
        suite.invoke("SegmentWorkerFunction", _sqs(suite, messages))  # processed, not deleted
    # Nobody changed since last night: no profile is written, only the run's completion.
    assert counts["dynamodb.TransactWriteItems"] == 1
    assert counts["events.PutEvents"] == 0
    assert counts["dynamodb.Scan"] >= 1
    suite.deliver("SegmentWorkerFunction", SHARDS, messages)  # SQS delivers the shard again

    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == plan["run_id"]
    sizes = {s["name"]: s["size"] for s in listing["segments"]}
    assert sum(n for name, n in sizes.items() if name.startswith("tier:")) == plan["sample_size"]
    trend = next(s for s in listing["segments"] if s["name"] == "tier:regular")["trend"]
    assert len(trend) == 2
    assert trend[0]["size"] == trend[1]["size"]


def _sqs(suite: Suite, messages: list[dict[str, Any]]) -> dict[str, Any]:
    from crm_local.sqs import sqs_event

    return sqs_event(messages, suite.stack.attrs[SHARDS]["Arn"])


def test_a_customer_enters_a_rule_segment_when_the_event_arrives(suite: Suite) -> None:
    tap = tap_bus(suite)
    rule = {"name": "complainers", "rule": {"all": [
        {"field": "behaviour.complaint_count", "op": "gte", "value": 1}]}}  # fmt: skip
    assert suite.call("POST", "/segments", rule).status == 201
    cid = suite.call("POST", "/customers", {"identities": [{"channel": "app",
                                                            "external_id": "angry"}]}).body[
        "customer_id"
    ]  # fmt: skip
    complaint = {"event_id": "c-1", "type": "after_sales", "case": "complaint",
                 "customer_id": cid, "occurred_at": "2026-11-22T10:00:00Z"}  # fmt: skip
    suite.call("POST", "/events", {"events": [complaint]})
    suite.drain()
    members = suite.call("GET", "/segments/complainers/members").body["customer_ids"]
    assert members == [cid]
    changes = [e["detail"] for e in drain_tap(tap) if e["detail-type"] == "CustomerSegmentChanged"]
    assert changes == [{"customer_id": cid, "segment": "complainers", "change": "entered",
                        "run_id": None, "occurred_at": changes[0]["occurred_at"]}]  # fmt: skip


def test_a_run_can_be_requested_and_segments_are_guarded(suite: Suite) -> None:
    tap = tap_bus(suite)
    requested = suite.call("POST", "/segments/runs")
    assert requested.status == 202
    assert [e["detail-type"] for e in drain_tap(tap)] == ["SegmentRunRequested"]
    assert suite.call("POST", "/segments/runs", role="marketer").status == 403
    assert suite.call("GET", "/segments", role="support_agent").status == 403
    bad = {"name": "Bad Name!", "rule": {"all": [{"field": "nope", "op": "gte", "value": 1}]}}
    out = suite.call("POST", "/segments", bad)
    assert out.status == 400
    assert {"name", "rule.all.0.field"} <= {f["field"] for f in out.body["error"]["fields"]}
    assert suite.call("GET", "/segments/unknown/members").status == 404
