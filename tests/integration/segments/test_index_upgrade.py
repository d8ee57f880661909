"""The two-deploy upgrade to the tier and RFM member indexes (docs/operations.md), through the
real path on moto: a stack whose CustomersTable lacks `rfm_members` (the first deploy done, the
second not yet), or whose index is still being built. A segment run there keeps the legacy
layout and says why; a listing never queries an index the table cannot serve."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from crm.composition import root
from crm.profiles import member_shard
from crm.segments.records import MembershipChange
from crm.segments.transit import ShardTask
from crm_local.harness import Suite, count_requests, local_suite
from crm_local.template import Template, load_template
from tests.integration.segments.test_computed_members import (
    COMPUTED,
    computed_of,
    listed,
    moved,
    other_rfm,
    other_tier,
    scores_item,
    segment_items,
    where_listed,
)
from tests.integration.segments.test_segments import SCHEDULE, SHARDS, load_shop, run_segments

LAYOUT_KEY = {"PK": {"S": "LAYOUT"}, "SK": {"S": "computed-members"}}


def without_member_index(index: str, key: str) -> Template:
    """template.yaml as the first of the upgrade's two deploys leaves CustomersTable: without
    `index` (and its key attribute, which DynamoDB refuses to define unused)."""
    template = load_template()
    body = copy.deepcopy(template.body)
    table = body["Resources"]["CustomersTable"]["Properties"]
    found = [g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] == index]
    assert len(found) == 1
    table["GlobalSecondaryIndexes"] = [
        g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] != index
    ]
    table["AttributeDefinitions"] = [
        a for a in table["AttributeDefinitions"] if a["AttributeName"] != key
    ]
    return Template(body, template.base_dir)


def deploy_member_index(suite: Suite, index: str) -> None:
    """The second deploy: UpdateTable adds the index as template.yaml declares it."""
    table = load_template().resources["CustomersTable"]["Properties"]
    spec = next(g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] == index)
    key = next(k["AttributeName"] for k in spec["KeySchema"] if k["KeyType"] == "HASH")
    definitions = [a for a in table["AttributeDefinitions"] if a["AttributeName"] in (key, "SPK")]
    boto3.client("dynamodb").update_table(
        TableName=suite.stack.refs["CustomersTable"],
        AttributeDefinitions=definitions,
        GlobalSecondaryIndexUpdates=[{"Create": spec}],
    )


def set_index_status(suite: Suite, index: str, status: str) -> None:
    """What DescribeTable says of an index while DynamoDB builds and backfills it (moto builds
    a new index at once, so the test sets the state moto reports)."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[
        suite.stack.refs["CustomersTable"]
    ]
    found = [i for i in table.global_indexes if i.name == index]
    assert len(found) == 1
    found[0].status = status


@pytest.fixture
def half_upgraded() -> Iterator[Suite]:
    """A stack between the upgrade's two deploys: `tier_members` is there, `rfm_members` not."""
    with mock_aws(), local_suite(without_member_index("rfm_members", "RFM")) as deployed:
        yield deployed


def marker(suite: Suite) -> dict[str, Any] | None:
    out = boto3.client("dynamodb").get_item(
        TableName=suite.stack.refs["SegmentsTable"], Key=LAYOUT_KEY, ConsistentRead=True
    )
    item: dict[str, Any] | None = out.get("Item")
    return item


def plan_and_run(suite: Suite) -> tuple[dict[str, Any], list[ShardTask]]:
    """One nightly run, its shard tasks as queued, and the run as the API shows it."""
    plan: dict[str, Any] = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    messages = suite.receive(SHARDS)
    tasks = [ShardTask.model_validate_json(m["Body"]) for m in messages]
    suite.deliver("SegmentWorkerFunction", SHARDS, messages)
    handled = suite.drain("SegmentWorkerFunction", SHARDS, rounds=100)
    assert len(messages) + handled == plan["shards"]
    run = suite.call("GET", f"/segments/runs/{plan['run_id']}", role="analyst")
    assert run.status == 200, run.body
    assert run.body["status"] == "complete", run.body
    return run.body, tasks


def expected_items(customer_ids: list[str]) -> set[str]:
    """The legacy SEG# items of these customers' computed segments, as 'segment/customer'."""
    return {f"{s}/{c}" for c in customer_ids for s in computed_of(c)}


def test_a_run_between_the_two_deploys_keeps_the_legacy_layout_and_the_next_one_upgrades(
    half_upgraded: Suite,
) -> None:
    suite = half_upgraded
    shop = load_shop(suite, customers=24)

    run, tasks = plan_and_run(suite)
    assert tasks
    assert all(t.legacy and not t.upgrade for t in tasks)
    assert run["notice"] == (
        "member index rfm_members does not exist: computed segments kept in the legacy layout "
        "(finish the upgrade deploy, docs/operations.md)"
    )
    assert marker(suite) is None  # listings stay on the legacy items
    scored = sorted(c for c in shop.values() if computed_of(c))
    assert scored
    assert segment_items(suite) == expected_items(scored)
    for segment in COMPUTED:  # tier:* too, though tier_members exists
        members, _ = listed(suite, segment)
        assert set(members) == {c for c in scored if segment in computed_of(c)}, segment
    # The scores items carry the index keys all the same (DynamoDB ignores an attribute of an
    # index the table does not have, and backfills it once the index is added).
    item = scores_item(suite, scored[0])
    assert item is not None
    assert {"TIER", "RFM"} <= set(item)

    # A later legacy run moves a customer's SEG# items with them, as older versions did.
    cid = scored[0]
    was = computed_of(cid)
    tier = next(s for s in was if s.startswith("tier:")).removeprefix("tier:")
    rfm = next(s for s in was if s.startswith("rfm:")).removeprefix("rfm:")
    away = moved(cid, other_tier(tier), other_rfm(rfm))
    root().profile_service.store.put_scores([away])
    root().segment_store.apply(
        [
            *(MembershipChange(s, cid, False) for s in was),
            *(MembershipChange(s, cid, True) for s in away.run_segments),
        ]
    )
    assert where_listed(suite, cid) == set(away.run_segments)
    run, tasks = plan_and_run(suite)
    assert all(t.legacy for t in tasks)
    assert run["notice"] is not None
    assert where_listed(suite, cid) == was
    assert segment_items(suite) == expected_items(scored)

    # The second deploy adds rfm_members: the next run upgrades and listings use the indexes.
    deploy_member_index(suite, "rfm_members")
    run, tasks = plan_and_run(suite)
    assert all(t.upgrade and not t.legacy for t in tasks)
    assert run["notice"] is None
    assert marker(suite) is not None
    assert segment_items(suite) == set()  # the legacy items are gone: lists come from indexes
    for segment in COMPUTED:
        members, _ = listed(suite, segment)
        assert set(members) == {c for c in scored if segment in computed_of(c)}, segment
    shard = member_shard(cid)
    rfm_now = next(s for s in computed_of(cid) if s.startswith("rfm:"))
    out = boto3.client("dynamodb").query(
        TableName=suite.stack.refs["CustomersTable"], IndexName="rfm_members",
        KeyConditionExpression="RFM = :k",
        ExpressionAttributeValues={":k": {"S": f"{rfm_now}#{shard:02d}"}},
    )  # fmt: skip
    assert cid in {i["SPK"]["S"] for i in out["Items"]}


def test_an_index_still_being_built_keeps_the_legacy_layout(
    suite: Suite, shop_24: dict[str, str]
) -> None:
    set_index_status(suite, "tier_members", "CREATING")
    run, tasks = plan_and_run(suite)
    assert all(t.legacy for t in tasks)
    assert run["notice"] == (
        "member index tier_members is CREATING: computed segments kept in the legacy layout "
        "(finish the upgrade deploy, docs/operations.md)"
    )
    assert marker(suite) is None
    scored = sorted(c for c in shop_24.values() if computed_of(c))
    assert segment_items(suite) == expected_items(scored)

    set_index_status(suite, "tier_members", "ACTIVE")
    run, tasks = plan_and_run(suite)
    assert all(t.upgrade for t in tasks)
    assert run["notice"] is None
    assert marker(suite) is not None
    assert segment_items(suite) == set()


@pytest.fixture
def shop_24(suite: Suite) -> dict[str, str]:
    return load_shop(suite, customers=24)


def test_the_planner_describes_the_table_once_per_run_until_the_layout_is_indexed(
    half_upgraded: Suite,
) -> None:
    suite = half_upgraded
    load_shop(suite, customers=8)
    for _ in range(2):
        with count_requests() as counts:
            suite.invoke("SegmentPlannerFunction", SCHEDULE)
        assert counts["dynamodb.DescribeTable"] == 1
        assert suite.drain("SegmentWorkerFunction", SHARDS, rounds=100)
    deploy_member_index(suite, "rfm_members")
    with count_requests() as counts:
        suite.invoke("SegmentPlannerFunction", SCHEDULE)  # the upgrade run
    assert counts["dynamodb.DescribeTable"] == 1
    assert suite.drain("SegmentWorkerFunction", SHARDS, rounds=100)
    assert marker(suite) is not None
    with count_requests() as counts:
        run_segments(suite)  # indexed: the marker says so, no DescribeTable
    assert counts["dynamodb.DescribeTable"] == 0


def test_a_marker_without_its_index_answers_503_not_500(half_upgraded: Suite) -> None:
    """A stack where a run switched the listings over before `rfm_members` existed (a version
    without this guard, or the index deleted by hand): the listing says what to do."""
    suite = half_upgraded
    shop = load_shop(suite, customers=12)
    run_segments(suite)
    root().segment_store.mark_computed_members_indexed("run-before-the-guard", datetime.now(UTC))
    cid = next(c for c in shop.values() if computed_of(c))
    rfm = next(s for s in computed_of(cid) if s.startswith("rfm:"))
    out = suite.call("GET", f"/segments/{rfm}/members", role="marketer")
    assert out.status == 503, out.body
    assert out.body["error"]["message"] == (
        "member index rfm_members is not ready: finish the upgrade deploy that adds it "
        "(docs/operations.md, upgrading a stack deployed before the tier and RFM member "
        "indexes)"
    )
    assert out.headers.get("Retry-After")
    tier = next(s for s in computed_of(cid) if s.startswith("tier:"))
    listed_tier = suite.call("GET", f"/segments/{tier}/members", role="marketer")
    assert listed_tier.status == 200, listed_tier.body  # tier_members exists: served

    deploy_member_index(suite, "rfm_members")  # moto builds it at once, with the run's keys
    members, _ = listed(suite, rfm)
    assert cid in members


def test_a_forged_token_still_is_a_400_after_one_decode(suite: Suite) -> None:
    out = suite.call("GET", "/segments/rfm:champions/members", role="marketer",
                     query={"next_token": "bm90IGpzb24"})  # fmt: skip
    assert out.status == 400, out.body
    legacy = json.dumps({"shard": 99, "key": {"PK": "SEG#rfm:champions#00", "SK": "c"}})
    token = base64.urlsafe_b64encode(legacy.encode()).decode()
    out = suite.call("GET", "/segments/rfm:champions/members", role="marketer",
                     query={"next_token": token})  # fmt: skip
    assert out.status == 400, out.body


def test_an_index_dynamodb_is_still_backfilling_is_a_503_and_other_errors_are_not(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB refuses reads of an index it is backfilling (moto builds one at once)."""
    root().segment_store.mark_computed_members_indexed("run-1", datetime.now(UTC))
    backfilling = "Cannot read from backfilling global secondary index: rfm_members"
    answer = {"Code": "ValidationException", "Message": backfilling}
    response: Any = {"Error": answer}

    def refused(*_: Any, **__: Any) -> Any:
        raise ClientError(response, "Query")

    monkeypatch.setattr("crm.profiles.store.sharded_page", refused)
    out = suite.call("GET", "/segments/rfm:champions/members", role="marketer")
    assert out.status == 503, out.body
    assert out.body["error"]["message"].startswith("member index rfm_members is not ready")
    answer["Message"] = "Query condition missed key schema element"  # a bug of ours: no 503
    assert suite.call("GET", "/segments/rfm:champions/members", role="marketer").status == 500
