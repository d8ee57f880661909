"""A new or changed rule segment is filled over the whole base by a run started when it is
defined (profile changes only evaluate the customers who change), and its sizes start with
the first run that finished after it was created: no fake history of zeros. A resumed segment
is filled the same way (its members were frozen while it was paused)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from crm import composition
from crm_local.harness import Suite
from tests.integration.segments.test_rule_segments import members, new_customer
from tests.integration.segments.test_segments import SHARDS, run_segments

TAG = "宝妈-奶粉敏感期"
RULE = {"all": [{"field": "tags", "op": "contains", "value": TAG}]}


def requests_tap(suite: Suite) -> str:
    return suite.tap_bus("fill-requests", {"detail-type": ["SegmentRunRequested"]})


def post_segment(suite: Suite, name: str, rule: dict[str, Any], **more: Any) -> dict[str, Any]:
    out = suite.call("POST", "/segments", {"name": name, "rule": rule, **more}, role="marketer")
    assert out.status == (201 if out.body["created"] else 200), out.body
    body: dict[str, Any] = out.body
    return body


def segment(suite: Suite, name: str) -> dict[str, Any]:
    out = suite.call("GET", f"/segments/{name}", role="analyst")
    assert out.status == 200, out.body
    body: dict[str, Any] = out.body
    return body


def deliver_run(suite: Suite, request: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge and the shard queue's mapping do: the planner gets the request, the
    workers every shard."""
    planned: dict[str, Any] = suite.invoke("SegmentPlannerFunction", request)
    assert suite.drain("SegmentWorkerFunction", SHARDS, rounds=100) == planned["shards"]
    return planned


def test_a_new_rule_segment_is_filled_by_the_run_it_starts_and_has_no_earlier_sizes(
    suite: Suite,
) -> None:
    mom = new_customer(suite, "mom")
    other = new_customer(suite, "other")
    tagged = suite.call("POST", f"/customers/{mom}/tags", {"add": [{"name": TAG}]})
    assert tagged.status == 200, tagged.body
    before = run_segments(suite)  # a run that finished before the segment existed
    tap = requests_tap(suite)

    created = post_segment(suite, "baby-moms", RULE)
    assert created["status"] == "filling"
    run_id = created["run_id"]
    assert created["created_at"] == created["updated_at"]
    [request] = Suite.take_all(tap)
    assert request["detail"]["run_id"] == run_id
    run = suite.call("GET", f"/segments/runs/{run_id}", role="analyst").body
    assert run["status"] == "planned"
    # Nothing evaluated it yet: no size, and no trend from the run before it.
    fresh = segment(suite, "baby-moms")
    assert (fresh["size"], fresh["trend"]) == (None, [])
    listed = {s["name"]: s for s in suite.call("GET", "/segments", role="analyst").body["segments"]}
    assert (listed["baby-moms"]["size"], listed["baby-moms"]["trend"]) == (None, [])
    assert any(t["run_id"] == before["run_id"] for t in listed["tier:new"]["trend"])
    assert members(suite, "baby-moms") == []

    planned = deliver_run(suite, request)
    assert planned["run_id"] == run_id
    assert suite.call("GET", f"/segments/runs/{run_id}", role="analyst").body["status"] == (
        "complete"
    )
    assert members(suite, "baby-moms") == [mom]
    filled = segment(suite, "baby-moms")
    assert filled["size"] == 1
    assert [t["run_id"] for t in filled["trend"]] == [run_id]
    assert other not in members(suite, "baby-moms")


def test_an_unchanged_rule_starts_nothing_and_definitions_waiting_for_the_planner_share_a_run(
    suite: Suite,
) -> None:
    tap = requests_tap(suite)
    first = post_segment(suite, "baby-moms", RULE)
    again = post_segment(suite, "baby-moms", RULE, description="moms of babies")
    assert (again["status"], again["run_id"]) == ("unchanged", None)
    assert (first["created"], again["created"]) == (True, False)  # 201, then 200
    assert again["created_at"] == first["created_at"]  # a replacement keeps its creation
    # A second segment (or a changed rule) while the run is still planned joins that run: the
    # planner has not queued a shard yet, and every shard reads the rules afresh.
    second = post_segment(suite, "vip-moms", {"all": [{"has_tag": "vip"}]})
    changed = post_segment(suite, "baby-moms", {"any": [{"has_tag": TAG}]})
    assert second["status"] == changed["status"] == "filling"
    assert second["run_id"] == changed["run_id"] == first["run_id"]
    [request] = Suite.take_all(tap)  # one request reached the planner
    paused = post_segment(suite, "quiet-moms", RULE, paused=True)
    assert (paused["status"], paused["run_id"]) == ("paused", None)

    # Once the planner claimed it, a changed rule needs a run of its own.
    deliver_run(suite, request)
    later = post_segment(suite, "baby-moms", RULE)
    assert later["status"] == "filling"
    assert later["run_id"] != first["run_id"]


def test_a_fill_that_cannot_reach_the_planner_keeps_the_rule_and_says_so(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = composition.root().segments

    def unreachable(events: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://events.example")

    monkeypatch.setattr(catalog._bus, "publish", unreachable)
    out = post_segment(suite, "baby-moms", RULE)
    assert (out["status"], out["run_id"]) == ("waiting", None)
    assert segment(suite, "baby-moms")["definition"]["rule"]["all"] == RULE["all"]
    run = suite.call("GET", "/segments", role="analyst").body["current_run"]
    assert run["status"] == "failed"
    monkeypatch.undo()
    # Posting it again (unchanged) does not start what failed: POST /segments/runs does.
    assert post_segment(suite, "baby-moms", RULE)["status"] == "unchanged"


def pause(suite: Suite, name: str, paused: bool) -> dict[str, Any]:
    out = suite.call("PATCH", f"/segments/{name}", {"paused": paused}, role="marketer")
    assert out.status == 200, out.body
    body: dict[str, Any] = out.body
    return body


def test_a_resumed_segment_is_filled_with_the_changes_made_while_it_was_paused(
    suite: Suite,
) -> None:
    mom, later_mom = new_customer(suite, "mom"), new_customer(suite, "later-mom")
    assert suite.call("POST", f"/customers/{mom}/tags", {"add": [{"name": TAG}]}).status == 200
    tap = requests_tap(suite)
    post_segment(suite, "baby-moms", RULE)
    deliver_run(suite, Suite.take_all(tap)[0])
    assert members(suite, "baby-moms") == [mom]

    paused = pause(suite, "baby-moms", True)
    assert (paused["status"], paused["run_id"], paused["paused"]) == ("paused", None, True)
    tagged = suite.call("POST", f"/customers/{later_mom}/tags", {"add": [{"name": TAG}]})
    assert tagged.status == 200, tagged.body
    assert members(suite, "baby-moms") == [mom]  # frozen while paused
    assert Suite.take_all(tap) == []

    resumed = pause(suite, "baby-moms", False)
    assert (resumed["status"], resumed["paused"]) == ("filling", False)
    [request] = Suite.take_all(tap)
    assert request["detail"]["run_id"] == resumed["run_id"]
    deliver_run(suite, request)
    assert members(suite, "baby-moms") == sorted([mom, later_mom])

    # Resuming a segment that runs already starts nothing; redefining a paused one unchanged
    # but unpaused fills it as a resume does.
    again = pause(suite, "baby-moms", False)
    assert (again["status"], again["run_id"]) == ("active", None)
    assert Suite.take_all(tap) == []
    pause(suite, "baby-moms", True)
    redefined = post_segment(suite, "baby-moms", RULE, paused=False)
    assert redefined["status"] == "filling"
    assert [r["detail"]["run_id"] for r in Suite.take_all(tap)] == [redefined["run_id"]]


def test_a_segment_paused_before_it_was_ever_filled_shows_no_size_until_it_is(
    suite: Suite,
) -> None:
    """Paused one second after its definition, the run that was to fill it skipped it: its
    trend showed that run's 0 beside the real size, once resumed and filled."""
    mom = new_customer(suite, "mom")
    assert suite.call("POST", f"/customers/{mom}/tags", {"add": [{"name": TAG}]}).status == 200
    tap = requests_tap(suite)
    post_segment(suite, "baby-moms", RULE)
    pause(suite, "baby-moms", True)
    skipped = deliver_run(suite, Suite.take_all(tap)[0])
    frozen = segment(suite, "baby-moms")
    assert (frozen["size"], frozen["trend"]) == (None, [])
    listed = {s["name"]: s for s in suite.call("GET", "/segments", role="analyst").body["segments"]}
    assert listed["baby-moms"]["size"] is None
    resumed = pause(suite, "baby-moms", False)
    filled = deliver_run(suite, Suite.take_all(tap)[0])
    assert filled["run_id"] == resumed["run_id"] != skipped["run_id"]
    after = segment(suite, "baby-moms")
    assert (after["size"], [t["run_id"] for t in after["trend"]]) == (1, [filled["run_id"]])
    # An active rule no one meets is sized at 0, not left out.
    post_segment(suite, "nobody", {"all": [{"field": "tags", "op": "contains", "value": "无"}]})
    deliver_run(suite, Suite.take_all(tap)[0])
    assert segment(suite, "nobody")["size"] == 0
