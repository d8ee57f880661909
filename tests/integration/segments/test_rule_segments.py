"""Rule segments through the API and the queues: bad rules refused naming the condition, a
stored rule this version cannot read never stops folding, and one segment read, paused,
resumed and deleted."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from crm.dynamo import to_item
from crm.profiles import MEMBER_SHARDS
from crm_local.apigw import match_route
from crm_local.harness import Suite
from tests.integration.segments.test_segments import SCHEDULE, SHARDS, drain_tap, tap_bus


def define(suite: Suite, name: str, *conditions: dict[str, Any], role: str = "marketer") -> Any:
    out = suite.call("POST", "/segments", {"name": name, "rule": {"all": list(conditions)}},
                     role=role)  # fmt: skip
    assert out.status == (201 if out.body["created"] else 200), out.body
    return out.body


def new_customer(suite: Suite, key: str) -> str:
    body = {"identities": [{"channel": "app", "external_id": key}]}
    return str(suite.call("POST", "/customers", body).body["customer_id"])


def tag(suite: Suite, customer_id: str, add: bool = True) -> None:
    change = {"add": [{"name": "vip"}]} if add else {"remove": ["vip"]}
    assert suite.call("POST", f"/customers/{customer_id}/tags", change).status == 200


def members(suite: Suite, name: str) -> list[str]:
    out = suite.call("GET", f"/segments/{name}/members", role="marketer")
    assert out.status == 200, out.body
    return sorted(out.body["customer_ids"])


def membership_items(suite: Suite, name: str) -> list[str]:
    dynamodb = boto3.client("dynamodb")
    found = []
    for shard in range(MEMBER_SHARDS):
        out = dynamodb.query(
            TableName=suite.stack.refs["SegmentsTable"],
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"SEG#{name}#{shard:02d}"}},
        )
        found += [i["SK"]["S"] for i in out["Items"]]
    return sorted(found)


def segments_of(suite: Suite, customer_id: str) -> list[str]:
    return list(suite.call("GET", f"/customers/{customer_id}").body["segments"])


def order(customer_id: str, n: int, amount: str = "120.00") -> dict[str, Any]:
    item = {"sku": "tea-1", "category": "tea", "quantity": 1, "unit_price": amount}
    return {"event_id": f"o-{customer_id}-{n}", "type": "order_paid",
            "order_id": f"{customer_id}-{n}", "customer_id": customer_id,
            "occurred_at": "2026-11-20T10:00:00Z", "amount": amount, "items": [item]}  # fmt: skip


def run_segments(suite: Suite) -> None:
    plan = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    assert suite.drain("SegmentWorkerFunction", SHARDS, rounds=100) == plan["shards"]


def dead_letters(suite: Suite, queue: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=suite.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


# ---------------------------------------------------------------------- bad rules
BAD_RULES = [
    ({"all": [{"field": "orders.categories", "op": "gt", "value": 1}]}, "rule.all.0.op",
     "op gt does not apply to orders.categories (a list of texts): use contains"),
    ({"all": [{"has_tag": "vip"}, {"field": "orders.total_spend", "op": "gte", "value": "lots"}]},
     "rule.all.1.value", "orders.total_spend is an amount of money: the value must be a number"),
    ({"any": [{"no_event": "teleported", "days": 30}]}, "rule.any.0.no_event",
     "no_event is one of: "),
    ({}, "rule", "a rule needs at least one condition in all or any"),
    ({"all": [{"field": "orders.total_spend", "op": "gte", "value": 1e-308}]}, "rule.all.0.value",
     "orders.total_spend is an amount of money: the value takes at most 2 decimal places"),
    ({"all": [{"field": "points_balance", "op": "gte", "value": 1e300}]}, "rule.all.0.value",
     "points_balance takes values from 0 to 1000000000000"),
    ({"all": [{"field": "points", "op": "gte", "value": 1}]}, "rule.all.0.field",
     "not a field a rule can name (did you mean points_balance?)"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "where", "message"), BAD_RULES)
def test_a_bad_rule_gets_a_400_naming_the_condition(
    suite: Suite, rule: dict[str, Any], where: str, message: str
) -> None:
    out = suite.call("POST", "/segments", {"name": "bad-one", "rule": rule}, role="marketer")
    assert out.status == 400
    fields = {f["field"]: f["message"] for f in out.body["error"]["fields"]}
    assert list(fields) == [where]
    assert fields[where].startswith(message)
    assert suite.call("GET", "/segments/bad-one", role="marketer").status == 404  # nothing stored


def test_a_number_beyond_dynamodb_range_in_raw_json_is_a_400(suite: Suite) -> None:
    for number in ("1e-308", "1e400", "-0.0000001", "123456789012345678901234567890"):
        raw = ('{"name": "tiny", "rule": {"all": [{"field": "scores.p_alive", "op": "gt", '
               f'"value": {number}}}]}}}}')  # fmt: skip
        out = suite.call("POST", "/segments", raw_body=raw, role="marketer")
        assert out.status == 400, (number, out.body)
        assert [f["field"] for f in out.body["error"]["fields"]] == ["rule.all.0.value"]


def test_a_rule_on_points_balance_follows_points(suite: Suite) -> None:
    define(suite, "points-rich", {"field": "points_balance", "op": "gte", "value": 1000})
    cid = new_customer(suite, "saver")
    earn = {"txn_id": "t1", "kind": "earn", "points": 1200}
    assert suite.call("POST", f"/customers/{cid}/points", earn).status == 200
    assert members(suite, "points-rich") == [cid]


# ---------------------------------------------------------------------- stored rules that fail
OLD_SHAPES = {
    "old-categories": {"all": [{"field": "orders.categories", "op": "gt", "value": 1}]},
    "old-teleported": {"any": [{"no_event": "teleported", "days": 30}]},
    "old-empty": {},
    "old-lots": {"all": [{"field": "orders.total_spend", "op": "gte", "value": "lots"}]},
    "old-garbage": "not a rule at all",
}


def store_old_definitions(suite: Suite) -> None:
    """As an older version (or a hand edit) could have left them in the table."""
    dynamodb = boto3.client("dynamodb")
    for name, rule in OLD_SHAPES.items():
        item = {"PK": "DEF", "SK": name, "name": name, "description": "", "rule": rule,
                "updated_at": "2026-01-01T00:00:00+00:00", "updated_by": "old-version"}  # fmt: skip
        dynamodb.put_item(TableName=suite.stack.refs["SegmentsTable"], Item=to_item(item))


def test_stored_rules_that_cannot_be_read_never_stop_events_or_runs(
    suite: Suite, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    define(suite, "tea-lovers", {"field": "orders.categories", "op": "contains", "value": "tea"})
    store_old_definitions(suite)
    tap = tap_bus(suite)
    buyers = [new_customer(suite, f"buyer-{n}") for n in range(3)]
    events = [order(cid, n) for cid in buyers for n in range(2)]
    assert suite.call("POST", "/events", {"events": events}).status == 202
    assert suite.drain() == len(events)

    assert dead_letters(suite, "ProfileEventsQueue") == 0
    assert dead_letters(suite, "ProfileEventsDLQ") == 0
    for cid in buyers:
        profile = suite.call("GET", f"/customers/{cid}").body
        assert profile["orders"]["order_count"] == 2
        assert profile["segments"] == ["tea-lovers"]
    assert members(suite, "tea-lovers") == sorted(buyers)
    changes = [e["detail"]["segment"] for e in drain_tap(tap)
               if e["detail-type"] == "CustomerSegmentChanged"]  # fmt: skip
    assert changes == ["tea-lovers"] * 3

    out = capsys.readouterr().out
    logs = [r for r in caplog.records if r.getMessage() == "rule segment skipped"]
    # Once each, not once per customer.
    assert sorted(getattr(r, "segment") for r in logs) == sorted(OLD_SHAPES)  # noqa: B009
    assert {getattr(r, "error") for r in logs} == {"UnreadableDefinition"}  # noqa: B009
    metrics = [json.loads(line) for line in out.splitlines() if "RuleSegmentFailed" in line]
    assert {m["Segment"] for m in metrics} == set(OLD_SHAPES)
    reported = caplog.text + json.dumps(metrics)
    assert not any(cid in reported for cid in buyers)  # never the customer

    # A run scores everyone and still keeps the broken segments out of the way.
    run_segments(suite)
    assert dead_letters(suite, "SegmentShardsDLQ") == 0
    assert "tea-lovers" in segments_of(suite, buyers[0])

    # Marketers see what is wrong, and can delete it.
    listed = {s["name"] for s in suite.call("GET", "/segments", role="marketer").body["segments"]}
    assert set(OLD_SHAPES) <= listed
    detail = suite.call("GET", "/segments/old-categories", role="marketer").body
    assert detail["definition"] is None
    assert detail["problem"] == (
        "the stored rule does not fit the rule grammar (rule.all.0.op: op gt does not apply to "
        "orders.categories (a list of texts): use contains): redefine or delete it"
    )
    assert suite.call("DELETE", "/segments/old-garbage", role="marketer").status == 200
    assert suite.call("GET", "/segments/old-garbage", role="marketer").status == 404


# ---------------------------------------------------------------------- read, pause, delete
def test_get_one_segment(suite: Suite) -> None:
    created = define(suite, "big-spenders",
                     {"field": "orders.total_spend", "op": "gte", "value": 1000})  # fmt: skip
    one = suite.call("GET", "/segments/big-spenders", role="analyst")
    assert one.status == 200
    # The answer is the stored definition, how its filling goes (status, run_id) and whether
    # it was created (201) or replaced.
    assert one.body["definition"] == {k: v for k, v in created.items()
                                      if k not in ("status", "run_id", "created")}  # fmt: skip
    assert created["created"] is True
    assert created["status"] == "filling"
    assert one.body["definition"]["rule"] == {
        "all": [{"field": "orders.total_spend", "op": "gte", "value": 1000}],
        "any": [],
    }
    assert (one.body["kind"], one.body["paused"], one.body["size"]) == ("rule", False, None)

    cid = new_customer(suite, "rich")
    suite.call("POST", "/events", {"events": [order(cid, 1, "1500.00")]})
    suite.drain()
    run_segments(suite)
    after = suite.call("GET", "/segments/big-spenders", role="analyst").body
    assert after["size"] == 1
    assert len(after["trend"]) == 1
    scored = suite.call("GET", f"/customers/{cid}").body["scores"]["tier"]
    tier = suite.call("GET", f"/segments/tier:{scored}", role="analyst").body
    assert (tier["kind"], tier["size"], tier["definition"], tier["paused"]) == (
        "tier", 1, None, False)  # fmt: skip
    assert suite.call("GET", "/segments/tier:new", role="analyst").body["label"] == "新客 new"
    assert suite.call("GET", "/segments/rfm:champions", role="analyst").body["kind"] == "rfm"
    assert suite.call("GET", "/segments/tier:nope", role="analyst").status == 404
    assert suite.call("GET", "/segments/nobody", role="analyst").status == 404
    assert suite.call("GET", "/segments/big-spenders", role="support_agent").status == 403


def test_a_paused_segment_keeps_its_members_until_resumed(suite: Suite) -> None:
    define(suite, "vips", {"has_tag": "vip"})
    first, second = new_customer(suite, "first"), new_customer(suite, "second")
    tag(suite, first)
    assert members(suite, "vips") == [first]
    tap = tap_bus(suite)

    assert suite.call("PATCH", "/segments/vips", {"paused": True}, role="analyst").status == 403
    paused = suite.call("PATCH", "/segments/vips", {"paused": True}, role="marketer")
    assert paused.status == 200
    assert paused.body["paused"] is True
    assert paused.body["definition"]["paused"] is True
    tag(suite, first, add=False)  # would leave
    tag(suite, second)  # would enter
    run_segments(suite)
    assert members(suite, "vips") == [first]
    assert segments_of(suite, first) == ["vips"]
    assert "vips" not in segments_of(suite, second)
    # Replacing the rule of a paused segment keeps it paused.
    assert define(suite, "vips", {"has_tag": "vip"})["paused"] is True
    assert drain_tap(tap) == []

    resumed = suite.call("PATCH", "/segments/vips", {"paused": False}, role="marketer")
    assert resumed.body["paused"] is False
    run_segments(suite)
    assert members(suite, "vips") == [second]
    moves = sorted((e["detail"]["customer_id"], e["detail"]["change"]) for e in drain_tap(tap)
                   if e["detail"].get("segment") == "vips")  # fmt: skip
    assert moves == sorted([(first, "left"), (second, "entered")])

    assert suite.call("PATCH", "/segments/nobody", {"paused": True}).status == 404
    assert suite.call("PATCH", "/segments/tier:new", {"paused": True}).status == 409
    assert suite.call("PATCH", "/segments/vips", {"paused": "soon"}).status == 400


def test_a_deleted_segment_is_gone_and_its_members_drop_out_unannounced(suite: Suite) -> None:
    define(suite, "vips", {"has_tag": "vip"})
    first, second = new_customer(suite, "first"), new_customer(suite, "second")
    tag(suite, first)
    tag(suite, second)
    assert membership_items(suite, "vips") == sorted([first, second])
    tap = tap_bus(suite)

    assert suite.call("DELETE", "/segments/vips", role="analyst").status == 403
    assert suite.call("DELETE", "/segments/tier:new", role="marketer").status == 409
    deleted = suite.call("DELETE", "/segments/vips", role="marketer")
    assert deleted.status == 200
    assert deleted.body["name"] == "vips"
    assert suite.call("DELETE", "/segments/vips", role="marketer").status == 404
    assert suite.call("GET", "/segments/vips", role="marketer").status == 404
    assert suite.call("GET", "/segments/vips/members", role="marketer").status == 404
    listed = suite.call("GET", "/segments", role="marketer").body["segments"]
    assert "vips" not in {s["name"] for s in listed}

    # The first member's next change drops the name and its membership item; a run does the rest.
    tag(suite, first, add=False)
    assert "vips" not in segments_of(suite, first)
    assert membership_items(suite, "vips") == [second]
    run_segments(suite)
    assert membership_items(suite, "vips") == []
    assert "vips" not in segments_of(suite, second)
    assert [e for e in drain_tap(tap) if e["detail"].get("segment") == "vips"] == []

    # The name can be used again, starting empty.
    define(suite, "vips", {"has_tag": "vip"})
    assert members(suite, "vips") == []


def test_names_no_segment_can_have_are_404s_and_the_number_of_rules_is_capped(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "runs" is reserved: API Gateway routes GET /segments/runs to the literal runs resource
    # (POST only), so only its members path reaches the function.
    assert match_route(suite.routes, "GET", "/segments/runs") is None
    assert suite.call("GET", "/segments/runs/members").status == 404
    for name in ("x" * 3000, "tier:" + "x" * 3000, "Upper"):
        assert suite.call("GET", f"/segments/{name}").status == 404
        assert suite.call("GET", f"/segments/{name}/members").status == 404
        assert suite.call("DELETE", f"/segments/{name}").status == 404
        assert suite.call("PATCH", f"/segments/{name}", {"paused": True}).status == 404
    reserved = suite.call(
        "POST", "/segments", {"name": "runs", "rule": {"all": [{"has_tag": "a"}]}}
    )
    assert reserved.status == 400
    assert [f["field"] for f in reserved.body["error"]["fields"]] == ["name"]

    monkeypatch.setattr("crm.segments.service.MAX_RULE_SEGMENTS", 2)
    define(suite, "one", {"has_tag": "a"})
    define(suite, "two", {"has_tag": "b"})
    more = suite.call("POST", "/segments", {"name": "three", "rule": {"all": [{"has_tag": "c"}]}})
    assert more.status == 409
    define(suite, "two", {"has_tag": "c"})  # replacing one is fine
    assert suite.call("PATCH", "/segments/two", {"paused": True}).status == 200
    listed = {s["name"]: s["paused"] for s in suite.call("GET", "/segments").body["segments"]}
    assert (listed["one"], listed["two"], listed["tier:new"]) == (False, True, False)
