"""Tiers and RFM cells listed from the scores items' sparse member indexes (`tier_members`,
`rfm_members` on CustomersTable), through the real path: runs, the API, merges, privacy, and the
upgrade of a deployment that still holds legacy SEG# items for them."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm import aws
from crm.composition import root
from crm.dynamo import from_item
from crm.personal_data import DataSubject
from crm.privacy.registry import collect_subject, personal_data_stores
from crm.profiles import MEMBER_SHARDS, ScoresWrite, member_shard
from crm.profiles.models import CustomerScores
from crm.segments.fields import RFM_SEGMENTS, TIERS
from crm.segments.transit import ShardTask
from crm_local.harness import Suite, count_requests
from tests.integration.segments.test_segments import (
    SCHEDULE,
    SHARDS,
    drain_tap,
    load_shop,
    run_segments,
    tap_bus,
)

COMPUTED = [*(f"tier:{t}" for t in TIERS), *(f"rfm:{s}" for s in RFM_SEGMENTS)]


@pytest.fixture
def shop(suite: Suite) -> dict[str, str]:
    return load_shop(suite, customers=24)


def listed(suite: Suite, segment: str, limit: int = 100) -> tuple[list[str], int]:
    """Every member through the API, a page at a time; and how many pages it took."""
    members: list[str] = []
    token, pages = None, 0
    while True:
        query = {"limit": str(limit), **({"next_token": token} if token else {})}
        out = suite.call("GET", f"/segments/{segment}/members", role="marketer", query=query)
        assert out.status == 200, out.body
        members += out.body["customer_ids"]
        pages += 1
        token = out.body["next_token"]
        if not token:
            return members, pages


def where_listed(suite: Suite, customer_id: str) -> set[str]:
    return {s for s in COMPUTED if customer_id in listed(suite, s)[0]}


def computed_of(customer_id: str) -> set[str]:
    """The tier and RFM cell the customer's stored scores give them."""
    scores = root().profile_service.load(customer_id).scores
    return set() if scores is None else {f"tier:{scores.tier}", f"rfm:{scores.rfm_segment}"}


def segment_items(suite: Suite, prefixes: tuple[str, ...] = ("SEG#tier:", "SEG#rfm:")) -> set[str]:
    """SegmentsTable's membership items of these prefixes, as 'segment/customer'."""
    client = boto3.client("dynamodb")
    out = client.scan(TableName=suite.stack.refs["SegmentsTable"])
    return {
        f"{i['PK']['S'].removeprefix('SEG#').rsplit('#', 1)[0]}/{i['SK']['S']}"
        for i in out["Items"]
        if i["PK"]["S"].startswith(prefixes)
    }


def scores_item(suite: Suite, customer_id: str) -> dict[str, Any] | None:
    out = boto3.client("dynamodb").get_item(
        TableName=suite.stack.refs["CustomersTable"],
        Key={"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": "SCORES"}},
    )
    item: dict[str, Any] | None = out.get("Item")
    return item


def moved(customer_id: str, tier: str, rfm: str) -> ScoresWrite:
    scores = root().profile_service.load(customer_id).scores
    assert scores is not None
    changed = scores.model_copy(update={"tier": tier, "rfm_segment": rfm})
    return ScoresWrite(customer_id, "run-before", changed, (f"rfm:{rfm}", f"tier:{tier}"))


def other_tier(tier: str) -> str:
    return next(t for t in TIERS if t != tier)


def other_rfm(rfm: str) -> str:
    return next(s for s in RFM_SEGMENTS if s != rfm)


@contextmanager
def batch_write_tables() -> Iterator[list[str]]:
    """The table of every BatchWriteItem call through crm.aws's DynamoDB clients."""
    tables: list[str] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        tables.extend(params["RequestItems"])

    clients = [aws.dynamodb(), aws.dynamodb_bulk()]
    for client in clients:
        client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", before,
                                    unique_id="batch-tables")  # fmt: skip
    try:
        yield tables
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem",
                                          unique_id="batch-tables")  # fmt: skip


def token(key: dict[str, Any] | None, shard: int = 0) -> str:
    return base64.urlsafe_b64encode(json.dumps({"shard": shard, "key": key}).encode()).decode()


def test_a_run_lists_tiers_and_rfm_cells_from_the_scores_items_not_membership_items(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    expected: dict[str, set[str]] = {s: set() for s in COMPUTED}
    for cid in shop.values():
        for segment in computed_of(cid):
            expected[segment].add(cid)
    assert sum(len(v) for v in expected.values()) > 0
    sizes = {s["name"]: s["size"] for s in suite.call("GET", "/segments").body["segments"]}
    for segment in COMPUTED:
        members, _ = listed(suite, segment)
        assert len(members) == len(set(members))
        assert set(members) == expected[segment], segment
        assert sizes[segment] == len(members)
        # Shard by shard, each in customer id order.
        shards = [member_shard(c) for c in members]
        assert shards == sorted(shards)
        for shard in set(shards):
            ids = [c for c in members if member_shard(c) == shard]
            assert ids == sorted(ids)
    assert segment_items(suite) == set()  # no SEG# item for a tier or an RFM cell

    # Small pages cross shards, and each token carries on where the last page stopped.
    biggest = max(COMPUTED, key=lambda s: len(expected[s]))
    members, pages = listed(suite, biggest, limit=2)
    assert sorted(members) == sorted(expected[biggest])
    assert pages >= math.ceil(len(expected[biggest]) / 2) > 1
    assert len({member_shard(c) for c in members}) > 1


def test_a_page_token_that_is_not_ours_is_a_400(suite: Suite, shop: dict[str, str]) -> None:
    run_segments(suite)
    cid = next(c for c in shop.values() if computed_of(c))
    tier = next(s for s in computed_of(cid) if s.startswith("tier:"))
    shard = member_shard(cid)
    good = {"PK": f"CUST#{cid}", "SK": "SCORES", "TIER": f"{tier}#{shard:02d}", "SPK": cid}
    page = suite.call("GET", f"/segments/{tier}/members", role="marketer",
                      query={"limit": "1", "next_token": token(good, shard)})  # fmt: skip
    assert page.status == 200, page.body
    assert cid not in page.body["customer_ids"]  # starts after it
    forged = [
        "not base64 json",
        token({**good, "TIER": f"tier:other#{shard:02d}"}, shard),  # another segment's key
        token({**good, "PK": "CUST#someone-else"}, shard),  # a key no item has
        token({k: v for k, v in good.items() if k != "SPK"}, shard),
        token(good, MEMBER_SHARDS),  # no such shard
        token({**good, "RFM": good["TIER"]}, shard),
    ]
    for bad in forged:
        out = suite.call("GET", f"/segments/{tier}/members", role="marketer",
                         query={"next_token": bad})  # fmt: skip
        assert out.status == 400, (bad, out.body)
        assert out.body["error"]["fields"][0]["field"] == "next_token"


def test_a_customer_who_moves_is_listed_under_the_new_segment_only(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    cid = next(c for c in shop.values() if computed_of(c))
    was = computed_of(cid)
    tier = next(s for s in was if s.startswith("tier:")).removeprefix("tier:")
    rfm = next(s for s in was if s.startswith("rfm:")).removeprefix("rfm:")
    # A customer without orders, whom an earlier run had put in a tier: the next run takes
    # them out of every computed segment.
    lapsed = suite.call("POST", "/customers", {"identities": [
        {"channel": "app", "external_id": "lapsed"}]}).body["customer_id"]  # fmt: skip
    root().profile_service.store.put_scores([moved_new(lapsed), moved(cid, other_tier(tier),
                                                                      other_rfm(rfm))])  # fmt: skip
    assert where_listed(suite, cid) == {f"tier:{other_tier(tier)}", f"rfm:{other_rfm(rfm)}"}
    assert where_listed(suite, lapsed) == {"tier:dormant", "rfm:lost"}

    tap = tap_bus(suite)
    run_segments(suite)
    assert where_listed(suite, cid) == was  # back where its orders put it, and only there
    assert where_listed(suite, lapsed) == set()
    assert computed_of(lapsed) <= {"tier:dormant", "rfm:lost"}  # scores kept, segments gone
    item = scores_item(suite, lapsed)
    assert item is not None
    assert not {"TIER", "RFM"} & set(item)
    changes = {(e["detail"]["customer_id"], e["detail"]["segment"], e["detail"]["change"])
               for e in drain_tap(tap) if e["detail-type"] == "CustomerSegmentChanged"}  # fmt: skip
    assert {(cid, s, "entered") for s in was} <= changes
    assert (cid, f"tier:{other_tier(tier)}", "left") in changes
    assert {(lapsed, "tier:dormant", "left"), (lapsed, "rfm:lost", "left")} <= changes
    assert segment_items(suite) == set()


def moved_new(customer_id: str) -> ScoresWrite:
    scores = CustomerScores(
        recency_score=1, frequency_score=1, monetary_score=1, rfm_segment="lost",
        tier="dormant", scored_at=datetime.now(UTC),
    )  # fmt: skip
    return ScoresWrite(customer_id, "run-before", scores, ("rfm:lost", "tier:dormant"))


def test_a_night_when_everyone_moves_writes_scores_items_only(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    scored = [c for c in shop.values() if computed_of(c)]
    writes = []
    for cid in scored:
        tier, rfm = sorted(computed_of(cid), reverse=True)  # tier:..., rfm:...
        writes.append(moved(cid, other_tier(tier.removeprefix("tier:")),
                            other_rfm(rfm.removeprefix("rfm:"))))  # fmt: skip
    root().profile_service.store.put_scores(writes)

    suite.invoke("SegmentPlannerFunction", SCHEDULE)
    tasks = []
    while batch := suite.receive(SHARDS):
        tasks += [ShardTask.model_validate_json(m["Body"]) for m in batch]
    assert tasks
    assert not any(t.upgrade for t in tasks)
    worker = root().segment_recompute
    with count_requests() as counts, batch_write_tables() as tables:
        results = [worker.score_shard(t) for t in tasks]
    assert sum(r.written for r in results) == len(scored)
    n, wrote = len(tasks), sum(1 for r in results if r.written)
    # Each shard's page is one BatchWriteItem of its scores items (fewer than 25 a shard
    # here), to CustomersTable: no membership item is written for a tier or RFM move.
    assert all(r.written <= 25 for r in results)
    assert tables == [suite.stack.refs["CustomersTable"]] * wrote
    events = counts.pop("events.PutEvents")
    assert wrote <= events <= sum(math.ceil(4 * r.written / 10) for r in results)
    assert dict(counts) == {
        "dynamodb.GetItem": 2 * n,
        "dynamodb.Scan": n,
        "s3.GetObject": 1,
        "s3.PutObject": sum(1 for r in results if r.scored),
        "dynamodb.BatchWriteItem": wrote,
        "dynamodb.PutItem": n,
        "dynamodb.UpdateItem": n,
        "dynamodb.Query": 2,  # the shards' results; the rules, read once for this run
        "dynamodb.TransactWriteItems": 1,
    }
    for cid in scored:
        assert where_listed(suite, cid) == computed_of(cid)


def _make_legacy(suite: Suite, customer_ids: list[str]) -> set[str]:
    """Put the deployment back as an older version left it: scores items without the index
    keys, SEG# items for tiers and RFM cells, no layout marker."""
    client = boto3.client("dynamodb")
    customers, segments = suite.stack.refs["CustomersTable"], suite.stack.refs["SegmentsTable"]
    legacy = set()
    for cid in customer_ids:
        item = scores_item(suite, cid)
        assert item is not None
        assert {"TIER", "RFM"} <= set(item)
        kept = {k: v for k, v in item.items() if k not in ("TIER", "RFM")}
        client.put_item(TableName=customers, Item=kept)
        for segment in from_item(item)["segments"]:
            key = f"SEG#{segment}#{member_shard(cid):02d}"
            client.put_item(TableName=segments, Item={"PK": {"S": key}, "SK": {"S": cid}})
            legacy.add(f"{segment}/{cid}")
    client.delete_item(TableName=segments,
                       Key={"PK": {"S": "LAYOUT"}, "SK": {"S": "computed-members"}})  # fmt: skip
    return legacy


def test_an_upgraded_deployment_moves_its_legacy_memberships_onto_the_scores_items(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    scored = sorted(c for c in shop.values() if computed_of(c))
    legacy = _make_legacy(suite, scored)
    assert segment_items(suite) == legacy
    # Until a run of this version completes, computed segments are listed from legacy items.
    for cid in scored[:3]:
        assert where_listed(suite, cid) == computed_of(cid)

    tap = tap_bus(suite)
    plan: dict[str, Any] = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    messages = suite.receive(SHARDS)
    assert all(json.loads(m["Body"])["upgrade"] for m in messages)
    suite.deliver("SegmentWorkerFunction", SHARDS, messages)
    suite.drain("SegmentWorkerFunction", SHARDS, rounds=100)
    run = suite.call("GET", f"/segments/runs/{plan['run_id']}", role="analyst").body
    assert run["status"] == "complete"
    # Every scored customer was written though nobody's scores changed, and nothing announced.
    assert run["progress"]["profiles_written"] >= len(scored)
    assert not [e for e in drain_tap(tap) if e["detail-type"] == "CustomerSegmentChanged"]
    assert segment_items(suite) == set()
    for cid in scored:
        item = scores_item(suite, cid)
        assert item is not None
        assert {"TIER", "RFM"} <= set(item)
        assert where_listed(suite, cid) == computed_of(cid)

    # The next run is an ordinary one again.
    suite.invoke("SegmentPlannerFunction", SCHEDULE)
    messages = suite.receive(SHARDS)
    assert messages
    assert not any(json.loads(m["Body"])["upgrade"] for m in messages)


def test_a_merge_takes_the_absorbed_customer_out_of_the_computed_segments(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    survivor, source = [c for c in shop.values() if computed_of(c)][:2]
    theirs = computed_of(source)
    # An older version's item for the absorbed customer goes as well.
    segments = suite.stack.refs["SegmentsTable"]
    tier = next(s for s in theirs if s.startswith("tier:"))
    boto3.client("dynamodb").put_item(TableName=segments, Item={
        "PK": {"S": f"SEG#{tier}#{member_shard(source):02d}"}, "SK": {"S": source}})  # fmt: skip
    tap = tap_bus(suite)
    out = suite.call("POST", f"/customers/{survivor}/merge", {"source_customer_id": source})
    assert out.status == 200, out.body
    assert where_listed(suite, source) == set()
    assert scores_item(suite, source) is None
    assert segment_items(suite) == set()
    assert where_listed(suite, survivor) == computed_of(survivor)
    left = {(e["detail"]["segment"], e["detail"]["change"]) for e in drain_tap(tap)
            if e["detail-type"] == "CustomerSegmentChanged"
            and e["detail"]["customer_id"] == source}  # fmt: skip
    assert left == {(s, "left") for s in theirs}

    run_segments(suite)  # the merged profile is scored as one
    assert where_listed(suite, source) == set()
    assert where_listed(suite, survivor) == computed_of(survivor)


def test_privacy_exports_computed_memberships_and_erasure_leaves_no_index_entry(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_segments(suite)
    cid = next(c for c in shop.values() if computed_of(c))
    theirs = computed_of(cid)
    legacy = "rfm:lost" if "rfm:lost" not in theirs else "rfm:loyal"
    segments = suite.stack.refs["SegmentsTable"]
    boto3.client("dynamodb").put_item(TableName=segments, Item={
        "PK": {"S": f"SEG#{legacy}#{member_shard(cid):02d}"}, "SK": {"S": cid}})  # fmt: skip
    subject: DataSubject = collect_subject(root(), cid)
    stores = personal_data_stores(root())
    export = next(s for s in stores if s.name == "segments").export(subject)
    exported = {m["segment"] for m in export.sections["segment_memberships"]}
    assert exported == theirs | {legacy}
    assert export.sections["scores"]

    for store in stores:
        store.erase(subject)
    assert all(store.verify(subject).clean for store in stores)
    assert where_listed(suite, cid) == set()
    assert segment_items(suite) == set()
