"""Tickets through API Gateway's event, the Chalice handler, the service and DynamoDB: opening
from any channel, reading with deadlines, one conversation across tickets and channels,
statuses, internal notes, merges, and message text sealed at rest."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.integration.tickets.conftest import Desk


def raw_items(desk: Desk) -> list[dict[str, Any]]:
    table = desk.suite.stack.refs["TicketsTable"]
    return list(boto3.client("dynamodb").scan(TableName=str(table))["Items"])


def test_a_customer_opens_a_ticket_and_reads_it_back(desk: Desk) -> None:
    cid = desk.customer()
    opened = desk.open(cid, "快递三天了还没收到，物流单号查不到", channel="mini_program",
                       order_id="o-1")  # fmt: skip
    assert opened.status == 201, opened.body
    ticket = opened.body
    assert ticket["customer_id"] == cid
    assert ticket["channel"] == "mini_program"
    assert ticket["category"] == "logistics"
    assert ticket["status"] == "new"
    assert ticket["priority"] == "normal"
    assert ticket["policy"] == "sla-2026.12"
    assert ticket["calendar"] == "business_hours"
    assert ticket["escalation"] == {"escalated": False, "reasons": [], "senior_agent": None,
                                    "manager": None, "escalated_at": None}  # fmt: skip
    metrics = {d["metric"]: d for d in ticket["deadlines"]}
    assert set(metrics) == {"first_response", "feedback", "resolution"}
    first = metrics["first_response"]
    assert first["state"] == "running"
    assert first["target_minutes"] == 30
    # Monday 10:00 in Shanghai: 30 business minutes later is 10:30 (02:30 UTC).
    assert first["due_at"] == "2026-11-23T02:30:00Z"
    assert first["seconds_left"] == 1800
    # The customer reads where their own ticket stands, not the team's workings (the
    # classifier's confidence, priority, assignee, SLA policy, escalation and its staff).
    again = desk.suite.call("GET", f"/tickets/{ticket['ticket_id']}", role="customer",
                            customer_id=cid)  # fmt: skip
    assert again.status == 200
    assert again.body == {
        "view": "customer", "ticket_id": ticket["ticket_id"], "customer_id": cid,
        "channel": "mini_program", "order_id": "o-1", "category": "logistics", "status": "new",
        "opened_at": ticket["opened_at"], "updated_at": ticket["updated_at"],
        "merged_into": None, "sku": None, "product_category": None,
    }  # fmt: skip
    assert ticket["view"] == "staff"


def test_a_customer_cannot_open_or_read_another_customers_ticket(desk: Desk) -> None:
    mine, theirs = desk.customer("u-1"), desk.customer("u-2")
    refused = desk.suite.call(
        "POST", "/tickets", {"customer_id": theirs, "channel": "app", "message": "hello"},
        role="customer", customer_id=mine,
    )  # fmt: skip
    assert refused.status == 403
    ticket_id = desk.open(theirs, "where is my parcel").body["ticket_id"]
    peek = desk.suite.call("GET", f"/tickets/{ticket_id}", role="customer", customer_id=mine)
    assert peek.status == 404
    marketer = desk.suite.call("GET", f"/tickets/{ticket_id}", role="marketer")
    assert marketer.status == 403


def test_an_agent_opens_for_a_customer_and_unknown_customers_get_404(desk: Desk) -> None:
    cid = desk.customer()
    by_agent = desk.open(cid, "电话投诉：客服态度很差", as_customer=False, channel="phone")
    assert by_agent.status == 201
    assert by_agent.body["category"] == "service_complaint"
    assert by_agent.body["priority"] == "high"
    missing = desk.open("no-such-customer", "hello", as_customer=False)
    assert missing.status == 404
    assert [i for i in raw_items(desk) if i["PK"]["S"].startswith("TICKET#")
            and i["SK"]["S"] == "#TICKET"] != []  # fmt: skip


def test_bad_input_is_a_400_that_writes_nothing(desk: Desk) -> None:
    cid = desk.customer()
    for body in (
        {"customer_id": cid, "channel": "fax", "message": "hi"},
        {"customer_id": cid, "channel": "app", "message": "   "},
        {"customer_id": cid, "channel": "app"},
        {"customer_id": cid, "channel": "app", "message": "x" * 4001},
        {"customer_id": cid, "channel": "app", "message": "hi", "order_amount": "12.345"},
    ):
        reply = desk.suite.call("POST", "/tickets", body, role="support_agent")
        assert reply.status == 400, body
    assert raw_items(desk) == []


def test_message_text_is_sealed_at_rest(desk: Desk) -> None:
    cid = desk.customer()
    desk.open(cid, "我的地址是西湖区文三路1号，电话13812345678")
    stored = repr(raw_items(desk))
    assert "文三路" not in stored
    assert "13812345678" not in stored


def test_one_conversation_across_tickets_and_channels_newest_first(desk: Desk) -> None:
    cid = desk.customer()
    first = desk.open(cid, "尺码偏小，能换大一号吗", channel="app").body["ticket_id"]
    desk.clock.advance(minutes=5)
    second = desk.open(cid, "群里说的退款什么时候到", channel="community_group").body["ticket_id"]
    desk.clock.advance(minutes=5)
    reply = desk.suite.call("POST", f"/tickets/{first}/messages",
                            {"channel": "app", "text": "可以换，已为您登记"},
                            role="support_agent")  # fmt: skip
    assert reply.status == 201, reply.body
    assert reply.body["kind"] == "reply"
    desk.clock.advance(minutes=1)
    note = desk.suite.call("POST", f"/tickets/{first}/messages",
                           {"channel": "app", "text": "客户第二次问尺码", "kind": "note"},
                           role="support_agent")  # fmt: skip
    assert note.body["kind"] == "note"
    desk.clock.advance(minutes=1)
    desk.suite.call("POST", f"/tickets/{second}/messages",
                    {"channel": "wechat", "text": "还有，发票也要"}, role="customer",
                    customer_id=cid)  # fmt: skip
    staff = desk.suite.call("GET", f"/customers/{cid}/conversation", role="support_agent").body
    assert [(m["ticket_id"], m["channel"], m["kind"], m["text"]) for m in staff["messages"]] == [
        (second, "wechat", "customer", "还有，发票也要"),
        (first, "app", "note", "客户第二次问尺码"),
        (first, "app", "reply", "可以换，已为您登记"),
        (second, "community_group", "customer", "群里说的退款什么时候到"),
        (first, "app", "customer", "尺码偏小，能换大一号吗"),
    ]
    own = desk.suite.call("GET", f"/customers/{cid}/conversation", role="customer",
                          customer_id=cid).body  # fmt: skip
    # Internal notes are never shown to the customer.
    assert [m["kind"] for m in own["messages"]] == ["customer", "reply", "customer", "customer"]
    page1 = desk.suite.call("GET", f"/customers/{cid}/conversation", role="support_agent",
                            query={"limit": "2"}).body  # fmt: skip
    assert len(page1["messages"]) == 2
    page2 = desk.suite.call(
        "GET",
        f"/customers/{cid}/conversation",
        role="support_agent",
        query={"limit": "2", "next_token": page1["next_token"]},
    ).body
    assert [m["message_id"] for m in page2["messages"]] == [
        m["message_id"] for m in staff["messages"][2:4]
    ]
    other = desk.customer("u-9")
    assert desk.suite.call("GET", f"/customers/{other}/conversation", role="customer",
                           customer_id=cid).status == 403  # fmt: skip


def test_customers_cannot_reply_or_note(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "hello").body["ticket_id"]
    reply = desk.suite.call("POST", f"/tickets/{ticket_id}/messages",
                            {"channel": "app", "text": "I am the agent", "kind": "reply"},
                            role="customer", customer_id=cid)  # fmt: skip
    assert reply.status == 403


def test_statuses_follow_the_allowed_transitions(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "where is my parcel").body["ticket_id"]

    def move(status: str) -> Any:
        return desk.suite.call("POST", f"/tickets/{ticket_id}/status", {"status": status},
                               role="support_agent")  # fmt: skip

    assert move("waiting_third_party").body["status"] == "waiting_third_party"
    assert move("waiting_customer").body["status"] == "waiting_customer"
    assert move("resolved").body["status"] == "resolved"
    assert move("waiting_customer").status == 409
    assert move("closed").body["status"] == "closed"
    assert move("open").status == 409
    closed_reply = desk.suite.call("POST", f"/tickets/{ticket_id}/messages",
                                   {"channel": "app", "text": "again"}, role="customer",
                                   customer_id=cid)  # fmt: skip
    assert closed_reply.status == 409
    assert desk.suite.call("POST", f"/tickets/{ticket_id}/status", {"status": "open"},
                           role="customer", customer_id=cid).status == 403  # fmt: skip


def test_a_merge_is_a_reversible_link_and_messages_reach_the_survivor(desk: Desk) -> None:
    cid = desk.customer()
    survivor = desk.open(cid, "parcel lost", channel="app").body["ticket_id"]
    duplicate = desk.open(cid, "parcel lost!!", channel="wechat").body["ticket_id"]
    merged = desk.suite.call("POST", f"/tickets/{duplicate}/merge", {"into": survivor},
                             role="support_agent")  # fmt: skip
    assert merged.status == 200, merged.body
    assert merged.body["merged_into"] == survivor
    assert desk.ticket(survivor)["merged_from"] == [duplicate]
    late = desk.suite.call("POST", f"/tickets/{duplicate}/messages",
                           {"channel": "wechat", "text": "any news?"}, role="customer",
                           customer_id=cid)  # fmt: skip
    assert late.status == 201
    assert late.body["ticket_id"] == survivor
    # Working on a merged ticket is refused; merging into itself or a chain back is too.
    assert desk.suite.call("POST", f"/tickets/{duplicate}/status", {"status": "open"},
                           role="support_agent").status == 409  # fmt: skip
    assert desk.suite.call("POST", f"/tickets/{survivor}/merge", {"into": duplicate},
                           role="support_agent").status == 409  # fmt: skip
    other = desk.open(desk.customer("u-2"), "parcel lost").body["ticket_id"]
    assert desk.suite.call("POST", f"/tickets/{other}/merge", {"into": survivor},
                           role="support_agent").status == 409  # fmt: skip
    # The duplicate's clocks pause while merged: its customer is answered on the survivor.
    assert {d["state"] for d in merged.body["deadlines"]} == {"paused"}
    desk.travel(minutes=40)
    breached = [e["detail"]["ticket_id"] for e in desk.events()
                if e["detail-type"] == "TicketSlaBreached"]  # fmt: skip
    assert sorted(breached) == sorted([survivor, other])  # never the duplicate
    undone = desk.suite.call("POST", f"/tickets/{duplicate}/unmerge", role="support_agent")
    assert undone.status == 200
    assert undone.body["merged_into"] is None
    first = next(d for d in undone.body["deadlines"] if d["metric"] == "first_response")
    assert (first["state"], first["elapsed_seconds"]) == ("running", 0)
    assert desk.ticket(survivor)["merged_from"] == []
    after = desk.suite.call("POST", f"/tickets/{duplicate}/messages",
                            {"channel": "wechat", "text": "thanks"}, role="customer",
                            customer_id=cid)  # fmt: skip
    assert after.body["ticket_id"] == duplicate


def test_assigning_meets_a_complaints_agent_clock(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "投诉：客服不理人").body["ticket_id"]
    desk.clock.advance(minutes=20)
    assigned = desk.suite.call("POST", f"/tickets/{ticket_id}/assign", {"agent_id": "agent-7"},
                               role="support_agent")  # fmt: skip
    assert assigned.body["assignee"] == "agent-7"
    metrics = {d["metric"]: d for d in assigned.body["deadlines"]}
    assert metrics["assigned"]["state"] == "met"
    assert metrics["assigned"]["met_at"] == "2026-11-23T02:20:00Z"
    assert metrics["first_response"]["state"] == "running"


def test_the_conversation_follows_profile_merges_and_forged_tokens_are_refused(
    desk: Desk,
) -> None:
    app = desk.customer("u-app")
    desk.clock.advance(minutes=1)  # the older profile survives the merge
    body = {"identities": [{"channel": "wechat", "external_id": "oa-openid-1"}]}
    wechat = desk.suite.call("POST", "/customers", body).body["customer_id"]
    desk.open(app, "尺码偏小", channel="app")
    desk.clock.advance(minutes=1)
    desk.open(wechat, "群里问过了，还没人回", channel="community_group")
    both = {"identities": [{"channel": "app", "external_id": "u-app"},
                           {"channel": "wechat", "external_id": "oa-openid-1"}]}  # fmt: skip
    merged = desk.suite.call("POST", "/customers", both)
    assert merged.body["merged"] == [wechat]
    history = desk.suite.call("GET", f"/customers/{app}/conversation", role="support_agent").body
    # One person, two profiles' messages, each opened with the key it was sealed under.
    assert [(m["customer_id"], m["text"]) for m in history["messages"]] == [
        (wechat, "群里问过了，还没人回"),
        (app, "尺码偏小"),
    ]
    first = desk.suite.call("GET", f"/customers/{app}/conversation", role="support_agent",
                            query={"limit": "1"}).body  # fmt: skip
    rest = desk.suite.call(
        "GET",
        f"/customers/{app}/conversation",
        role="support_agent",
        query={"limit": "1", "next_token": first["next_token"]},
    ).body
    assert [m["text"] for m in first["messages"] + rest["messages"]] == [
        "群里问过了，还没人回", "尺码偏小",
    ]  # fmt: skip
    assert rest["next_token"] is None
    forged = desk.suite.call("GET", f"/customers/{app}/conversation", role="support_agent",
                             query={"next_token": "bm90LWEtdG9rZW4="})  # fmt: skip
    assert forged.status == 400
    unknown = desk.suite.call("GET", "/customers/nobody/conversation", role="support_agent")
    assert unknown.status == 404
    # The absorbed profile's token (issued before the merge) still reads its tickets and its
    # whole conversation, now the surviving profile's.
    mine = desk.suite.call("GET", f"/customers/{wechat}/conversation", role="customer",
                           customer_id=wechat).body  # fmt: skip
    assert [m["text"] for m in mine["messages"]] == ["群里问过了，还没人回", "尺码偏小"]
    opened = desk.open(wechat, "还有一个问题").body
    assert opened["customer_id"] == app
    read = desk.suite.call("GET", f"/tickets/{opened['ticket_id']}", role="customer",
                           customer_id=wechat)  # fmt: skip
    assert read.status == 200


def test_an_agent_corrects_the_category_and_the_correction_is_kept_for_retraining(
    desk: Desk,
) -> None:
    from crm.composition import root

    cid = desk.customer()
    opened = desk.open(cid, "where is my parcel").body
    assert opened["category"] == "logistics"
    assert opened["classified_as"] is None
    ticket_id = opened["ticket_id"]
    path = f"/tickets/{ticket_id}/category"
    fixed = desk.suite.call("POST", path, {"category": "quality"}, role="support_agent")
    assert fixed.status == 200, fixed.body
    assert (fixed.body["category"], fixed.body["classified_as"]) == ("quality", "logistics")
    # Targets stay pinned: logistics feedback keeps its clock.
    assert "feedback" in {d["metric"] for d in fixed.body["deadlines"]}
    # Setting the same category again records nothing more; a second correction keeps the
    # classifier's first answer.
    again = desk.suite.call("POST", path, {"category": "quality"}, role="support_agent")
    assert again.status == 200
    third = desk.suite.call("POST", path, {"category": "size_fit"}, role="support_agent")
    assert (third.body["category"], third.body["classified_as"]) == ("size_fit", "logistics")
    rows = root().classification_corrections.export(root().clock().strftime("%Y-%m"))
    refs = [json.loads(line) for line in rows.splitlines() if ticket_id in line]
    assert sorted((r["predicted"], r["label"]) for r in refs) == [
        ("logistics", "quality"), ("logistics", "size_fit"),
    ]  # fmt: skip
    assert {r["text_ref"] for r in refs} == {
        f"ticket:{ticket_id}/message:{opening_message(desk, ticket_id)}"
    }
    assert "parcel" not in rows  # a reference, never the customer's words
    # Customers cannot, unknown tickets are 404, unknown categories 400.
    assert desk.suite.call("POST", path, {"category": "other"}, role="customer",
                           customer_id=cid).status == 403  # fmt: skip
    assert desk.suite.call("POST", "/tickets/t-nope/category", {"category": "other"},
                           role="support_agent").status == 404  # fmt: skip
    bad = desk.suite.call("POST", path, {"category": "teleport"}, role="support_agent")
    assert bad.status == 400


def opening_message(desk: Desk, ticket_id: str) -> str:
    """The id of the ticket's first message, as stored."""
    table = desk.suite.stack.refs["TicketsTable"]
    item = boto3.client("dynamodb").get_item(
        TableName=str(table), Key={"PK": {"S": f"TICKET#{ticket_id}"}, "SK": {"S": "#TICKET"}}
    )["Item"]
    return str(item["opening_message_id"]["S"])
