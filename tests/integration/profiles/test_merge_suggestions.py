"""Only managers merge: an agent's upsert naming identities of two profiles changes nothing and
queues a merge suggestion, which a manager lists, approves or dismisses."""

from __future__ import annotations

from typing import Any

import boto3

from crm_local.harness import Suite


def upsert(suite: Suite, *identities: tuple[str, str], role: str = "admin", **attrs: Any) -> Any:
    body = {
        "identities": [{"channel": c, "external_id": x} for c, x in identities],
        "attributes": attrs,
    }
    return suite.call("POST", "/customers", body, role=role)


def profile_item(suite: Suite, customer_id: str) -> dict[str, Any]:
    table = suite.stack.refs["CustomersTable"]
    key = {"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": "PROFILE"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]
    return item


def two_profiles(suite: Suite) -> tuple[str, str]:
    old = upsert(suite, ("app", "ms-app"), name="李四").body["customer_id"]
    young = upsert(suite, ("wechat", "ms-openid"), phone="13811112222").body["customer_id"]
    return old, young


def test_an_agent_naming_two_profiles_merges_nothing_and_queues_a_suggestion(
    suite: Suite,
) -> None:
    old, young = two_profiles(suite)
    before = {cid: profile_item(suite, cid) for cid in (old, young)}
    out = upsert(
        suite, ("app", "ms-app"), ("phone", "13811112222"), ("douyin", "dy-1"),
        role="support_agent", city="杭州",
    )  # fmt: skip
    assert out.status == 202, out.body
    assert out.body["merged"] == []
    assert out.body["customer_id"] == old  # the profile a merge would keep
    suggestion = out.body["merge_suggestion"]
    assert suggestion["status"] == "pending"
    assert suggestion["reason"] == "upsert"
    assert suggestion["customer_ids"] == [old, young]
    assert suggestion["requested_by"] == "agent-1"
    linking = {(i["channel"], i["external_id"], i["customer_id"]) for i in suggestion["identities"]}
    assert linking == {("app", "ms-app", old), ("phone", "138****2222", young)}
    # Nothing was written to either profile: no merge, no new identity, no attribute.
    assert {cid: profile_item(suite, cid) for cid in (old, young)} == before
    assert suite.call("GET", f"/customers/{young}").body["customer_id"] == young
    assert upsert(suite, ("douyin", "dy-1"), role="support_agent").status == 201

    # Asked again, the same suggestion stands (one per set of profiles).
    again = upsert(suite, ("wechat", "ms-openid"), ("app", "ms-app"), role="support_agent")
    assert again.status == 202
    assert again.body["merge_suggestion"]["suggestion_id"] == suggestion["suggestion_id"]
    queue = suite.call("GET", "/merge-suggestions", role="support_manager")
    assert queue.status == 200
    assert [s["suggestion_id"] for s in queue.body["suggestions"]] == [suggestion["suggestion_id"]]


def test_a_manager_approves_a_suggestion_and_the_profiles_merge(suite: Suite) -> None:
    old, young = two_profiles(suite)
    sid = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_agent").body[
        "merge_suggestion"
    ]["suggestion_id"]
    # Agents may neither list nor decide.
    assert suite.call("GET", "/merge-suggestions", role="support_agent").status == 403
    denied = suite.call("POST", f"/merge-suggestions/{sid}/approve", role="support_agent")
    assert denied.status == 403

    approved = suite.call("POST", f"/merge-suggestions/{sid}/approve", role="support_manager")
    assert approved.status == 200, approved.body
    assert approved.body["status"] == "approved"
    assert approved.body["survivor_id"] == old
    assert approved.body["resolved_by"] == "manager-1"
    view = suite.call("GET", f"/customers/{young}").body
    assert view["customer_id"] == old
    assert view["merged_from"] == [young]
    assert view["attributes"]["phone"] == "+8613811112222"
    assert suite.call("GET", "/merge-suggestions", role="support_manager").body["suggestions"] == []
    # Approving twice answers the same; dismissing an approved one is a conflict.
    twice = suite.call("POST", f"/merge-suggestions/{sid}/approve", role="support_manager")
    assert twice.status == 200
    assert twice.body["survivor_id"] == old
    late = suite.call("POST", f"/merge-suggestions/{sid}/dismiss", role="support_manager")
    assert late.status == 409
    # Now one profile, the agent's upsert simply finds it.
    found = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_agent")
    assert found.status == 200
    assert found.body["merge_suggestion"] is None


def test_a_dismissed_suggestion_keeps_the_profiles_apart(suite: Suite) -> None:
    old, young = two_profiles(suite)
    sid = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_agent").body[
        "merge_suggestion"
    ]["suggestion_id"]
    out = suite.call("POST", f"/merge-suggestions/{sid}/dismiss", role="support_manager")
    assert out.status == 200
    assert out.body["status"] == "dismissed"
    assert suite.call("GET", f"/customers/{young}").body["customer_id"] == young
    assert suite.call("GET", f"/customers/{old}").body["merged_from"] == []
    assert suite.call("GET", "/merge-suggestions", role="support_manager").body["suggestions"] == []
    assert suite.call("POST", f"/merge-suggestions/{sid}/approve").status == 409
    # Linked again by an agent, the suggestion opens anew.
    reopened = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_agent")
    assert reopened.body["merge_suggestion"]["status"] == "pending"
    assert suite.call("POST", "/merge-suggestions/m-unknown/approve").status == 404


def test_a_suggestion_already_merged_through_merge_is_approved_without_harm(suite: Suite) -> None:
    old, young = two_profiles(suite)
    sid = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_agent").body[
        "merge_suggestion"
    ]["suggestion_id"]
    merged = suite.call(
        "POST", f"/customers/{old}/merge", {"source_customer_id": young}, role="support_manager"
    )
    assert merged.status == 200
    approved = suite.call("POST", f"/merge-suggestions/{sid}/approve", role="support_manager")
    assert approved.status == 200
    assert approved.body["survivor_id"] == old
    assert suite.call("GET", f"/customers/{old}").body["merged_from"] == [young]


def test_managers_and_admins_still_merge_by_upsert(suite: Suite) -> None:
    old, young = two_profiles(suite)
    out = upsert(suite, ("app", "ms-app"), ("wechat", "ms-openid"), role="support_manager")
    assert out.status == 200
    assert out.body["customer_id"] == old
    assert out.body["merged"] == [young]
    assert out.body["merge_suggestion"] is None


def test_the_queue_pages_oldest_first(suite: Suite) -> None:
    ids = []
    for n in range(3):
        upsert(suite, ("app", f"pq-a{n}"))
        upsert(suite, ("app", f"pq-b{n}"))
        out = upsert(suite, ("app", f"pq-a{n}"), ("app", f"pq-b{n}"), role="support_agent")
        ids.append(out.body["merge_suggestion"]["suggestion_id"])
    first = suite.call("GET", "/merge-suggestions", query={"limit": "2"}, role="support_manager")
    assert [s["suggestion_id"] for s in first.body["suggestions"]] == ids[:2]
    assert first.body["next_token"]
    rest = suite.call(
        "GET", "/merge-suggestions", query={"limit": "2", "next_token": first.body["next_token"]},
        role="support_manager",
    )  # fmt: skip
    assert [s["suggestion_id"] for s in rest.body["suggestions"]] == ids[2:]


def test_an_event_by_identity_folds_into_its_one_profile_and_never_merges(suite: Suite) -> None:
    old, young = two_profiles(suite)
    event = {
        "event_id": "ms-view-1", "type": "product_viewed", "occurred_at": "2026-11-20T10:00:00Z",
        "identity": {"channel": "wechat", "external_id": "ms-openid"}, "sku": "s-1",
    }  # fmt: skip
    assert suite.call("POST", "/events", {"events": [event]}).status == 202
    suite.drain()
    young_view = suite.call("GET", f"/customers/{young}").body
    assert young_view["customer_id"] == young
    assert young_view["behaviour"]["view_count"] == 1
    assert young_view["merged_from"] == []
    assert suite.call("GET", f"/customers/{old}").body["behaviour"]["view_count"] == 0
