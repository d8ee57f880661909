"""SLA clocks by time travel: deadlines on business hours, holidays and make-up working days
(from the holidays package), pauses while waiting, warnings at 75% and breaches at 100% through
the real timer sweep, the SLA function and the bus, escalation on a breach."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.timers import WakeUp
from crm_local.template import ROOT
from tests.integration.tickets.conftest import Desk


def status(desk: Desk, ticket_id: str, to: str) -> dict[str, Any]:
    reply = desk.suite.call("POST", f"/tickets/{ticket_id}/status", {"status": to},
                            role="support_agent")  # fmt: skip
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def clock_entries(desk: Desk, ticket_id: str, metric: str) -> list[tuple[str, str]]:
    table = desk.suite.stack.refs["TicketsTable"]
    items = boto3.client("dynamodb").query(
        TableName=str(table), KeyConditionExpression="PK = :pk AND begins_with(SK, :c)",
        ExpressionAttributeValues={":pk": {"S": f"TICKET#{ticket_id}"},
                                   ":c": {"S": f"CLOCK#{metric}#"}},
    )["Items"]  # fmt: skip
    return [(i["move"]["S"], i["at"]["S"]) for i in items]


def test_business_hours_skip_the_evening_and_the_weekend(desk: Desk) -> None:
    # Friday 20:45 in Shanghai: 15 minutes today, the other 15 on Monday from 09:00.
    desk.clock.now = datetime(2026, 11, 27, 12, 45, tzinfo=UTC)
    cid = desk.customer()
    ticket = desk.open(cid, "where is my parcel").body
    first = next(d for d in ticket["deadlines"] if d["metric"] == "first_response")
    assert first["due_at"] == "2026-11-30T01:15:00Z"  # Monday 09:15 in Shanghai


def test_public_holidays_and_make_up_working_days_come_from_the_package(desk: Desk) -> None:
    cid = desk.customer()
    # Wednesday 30 September 2026, 20:50: National Day's week off follows (1-7 October).
    desk.clock.now = datetime(2026, 9, 30, 12, 50, tzinfo=UTC)
    before_holiday = desk.open(cid, "where is my parcel").body
    due = next(d for d in before_holiday["deadlines"] if d["metric"] == "first_response")
    assert due["due_at"] == "2026-10-08T01:20:00Z"  # Thursday 8 October, 09:20
    # Friday 9 October, 20:50: Saturday 10 October is a make-up working day (调休).
    desk.clock.now = datetime(2026, 10, 9, 12, 50, tzinfo=UTC)
    before_makeup = desk.open(cid, "where is my parcel").body
    due = next(d for d in before_makeup["deadlines"] if d["metric"] == "first_response")
    assert due["due_at"] == "2026-10-10T01:20:00Z"  # Saturday 10 October, 09:20


def test_resolution_pauses_while_waiting_and_two_waits_in_a_row_count_once(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "快递丢件了").body["ticket_id"]  # logistics: resolved in 24 h
    desk.clock.advance(minutes=60)
    waiting = status(desk, ticket_id, "waiting_third_party")
    resolution = next(d for d in waiting["deadlines"] if d["metric"] == "resolution")
    assert resolution["state"] == "paused"
    assert resolution["due_at"] is None
    assert resolution["elapsed_seconds"] == 3600
    desk.clock.advance(hours=2)
    status(desk, ticket_id, "waiting_customer")  # from one wait to the other
    desk.clock.advance(hours=3)
    assert desk.deadline(ticket_id, "resolution")["elapsed_seconds"] == 3600
    # First response never pauses: 10:00 to 16:00 in Shanghai, less the lunch break.
    first = desk.deadline(ticket_id, "first_response")
    assert first["state"] == "breached"
    assert first["elapsed_seconds"] == int(4.5 * 3600)
    back = status(desk, ticket_id, "open")
    resolution = next(d for d in back["deadlines"] if d["metric"] == "resolution")
    assert resolution["state"] == "running"
    assert resolution["seconds_left"] == 23 * 3600
    desk.clock.advance(minutes=30)
    assert desk.deadline(ticket_id, "resolution")["elapsed_seconds"] == 5400
    resolved = status(desk, ticket_id, "resolved")
    resolution = next(d for d in resolved["deadlines"] if d["metric"] == "resolution")
    assert resolution["state"] == "met"
    assert resolution["seconds_left"] is None
    # The ledger: one pause for two waits, one resume, appended and never rewritten.
    assert [move for move, _ in clock_entries(desk, ticket_id, "resolution")] == [
        "start", "pause", "resume", "met",
    ]  # fmt: skip


def test_a_warning_at_75_percent_then_a_breach_that_escalates(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "where is my parcel").body["ticket_id"]
    assert desk.travel(minutes=20) == 0
    assert desk.events() == []
    desk.travel(minutes=3)  # 23 of 30 minutes: past 75%
    warned = desk.events()
    assert [(e["detail-type"], e["detail"]["metric"]) for e in warned] == [
        ("TicketSlaWarning", "first_response")
    ]
    assert warned[0]["detail"]["ticket_id"] == ticket_id
    first = desk.deadline(ticket_id, "first_response")
    assert (first["state"], first["warned"]) == ("running", True)
    desk.travel(minutes=8)
    kinds = [(e["detail-type"], e["detail"].get("metric")) for e in desk.events()]
    assert kinds == [("TicketSlaBreached", "first_response"), ("TicketEscalated", None)]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{") and '"_aws"' in line]  # fmt: skip
    # What TicketSlaBreachAlarm watches: one warning, then one breach, by the SLA function.
    assert [m["TicketSlaWarned"] for m in emitted if "TicketSlaWarned" in m] == [[1.0]]
    assert [(m["service"], m["TicketSlaBreached"]) for m in emitted
            if "TicketSlaBreached" in m] == [("crm-ticket-sla", [1.0])]  # fmt: skip
    ticket = desk.ticket(ticket_id)
    assert next(d for d in ticket["deadlines"] if d["metric"] == "first_response")["state"] == (
        "breached"
    )
    assert ticket["priority"] == "urgent"
    escalation = ticket["escalation"]
    assert escalation["escalated"] is True
    assert [r["reason"] for r in escalation["reasons"]] == ["sla_breach"]
    assert escalation["senior_agent"] == "senior-agent-1"
    assert escalation["manager"] == "support-manager-1"
    assert ticket["assignee"] == "senior-agent-1"
    # Sweeping again later publishes nothing more: each stage is recorded once.
    desk.travel(minutes=30)
    assert desk.events() == []
    # A late reply meets first response too late to count as met (its breach is counted),
    # and logistics feedback (2 h) in time: the breach rate's denominator counts that one.
    capsys.readouterr()
    late = {"channel": "app", "text": "已为您催促"}
    reply = desk.suite.call("POST", f"/tickets/{ticket_id}/messages", late, role="support_agent")
    assert reply.status == 201
    assert met_counts(capsys.readouterr().out) == [("crm-tickets", [1.0])]


def met_counts(out: str) -> list[tuple[str, list[float]]]:
    """The TicketSlaMet values emitted (EMF lines): what TicketSlaBreachAlarm divides by."""
    lines = [json.loads(line) for line in out.splitlines() if '"TicketSlaMet"' in line]
    return [(m["service"], m["TicketSlaMet"]) for m in lines]


def test_a_clock_met_in_time_neither_warns_nor_breaches(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "where is my parcel").body["ticket_id"]
    desk.clock.advance(minutes=10)
    reply = desk.suite.call(
        "POST",
        f"/tickets/{ticket_id}/messages",
        {"channel": "app", "text": "正在为您查询"},
        role="support_agent",
    )
    assert reply.status == 201
    first = desk.deadline(ticket_id, "first_response")
    assert (first["state"], first["elapsed_seconds"]) == ("met", 600)
    # One reply met first response and logistics feedback, both in time.
    assert met_counts(capsys.readouterr().out) == [("crm-tickets", [2.0])]
    assert desk.ticket(ticket_id)["status"] == "open"
    desk.travel(minutes=40)
    assert [e for e in desk.events() if e["detail"].get("metric") == "first_response"] == []
    assert desk.ticket(ticket_id)["escalation"]["escalated"] is False


def test_a_paused_clock_does_not_breach_while_waiting(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "where is my parcel").body["ticket_id"]
    desk.suite.call("POST", f"/tickets/{ticket_id}/messages",
                    {"channel": "app", "text": "已联系快递"}, role="support_agent")  # fmt: skip
    status(desk, ticket_id, "waiting_third_party")
    # Far past the 24 business hours of resolution: paused, nothing fires.
    desk.travel(days=10)
    assert [e for e in desk.events() if e["detail"].get("metric") == "resolution"] == []
    assert desk.deadline(ticket_id, "resolution")["state"] == "paused"
    status(desk, ticket_id, "open")
    desk.travel(days=5)
    metrics = [e["detail"].get("metric") for e in desk.events()]
    assert "resolution" in metrics
    assert desk.deadline(ticket_id, "resolution")["state"] == "breached"


def test_a_wake_up_that_is_no_sla_timer_goes_to_the_dlq_and_a_duplicate_does_nothing(
    desk: Desk,
) -> None:
    sqs = boto3.client("sqs")
    queue = desk.suite.queue_url("TicketSlaQueue")
    sqs.send_message(QueueUrl=queue, MessageBody='{"kind": "sla", "timer_id": "x"}')
    bad_payload = {
        "kind": "sla",
        "timer_id": "t-1#nonsense#0#warn",
        "generation": "g",
        "due_at": "2026-11-23T02:00:00.000Z",
        "payload": {"ticket_id": "t-1", "metric": "nonsense", "stage": "warn"},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(bad_payload))  # fmt: skip
    response = desk.suite.deliver("TicketSlaFunction", "TicketSlaQueue",
                                  desk.suite.receive("TicketSlaQueue"))  # fmt: skip
    assert len(response["batchItemFailures"]) == 2
    # A breach's wake-up delivered twice records it and publishes once.
    cid = desk.customer()
    ticket_id = desk.open(cid, "where is my parcel").body["ticket_id"]
    desk.clock.advance(minutes=31)
    desk.sweep()
    first = [e["detail-type"] for e in desk.events()]
    assert first.count("TicketSlaBreached") == 1
    timer = root().timers.get("sla", f"{ticket_id}#first_response#0#breach")
    assert timer is not None
    assert timer.state == "fired"
    again = WakeUp(kind="sla", timer_id=timer.timer_id, generation=timer.generation,
                   due_at=timer.due_at, payload=timer.payload)  # fmt: skip
    assert root().tickets.sla_due(again) == "duplicate"
    assert desk.events() == []


def test_sla_policies_are_versioned_and_a_ticket_keeps_the_version_it_opened_with(
    desk: Desk,
) -> None:
    got = desk.suite.call("GET", "/tickets/sla-policies", role="support_agent")
    assert got.status == 200
    assert got.body["version"] == "sla-2026.12"
    assert got.body["policies"]["calendars"] == {"urgent": "24x7"}
    assert got.body["policies"]["categories"]["service_complaint"] == {
        "first_response": 30, "assigned": 60, "resolution": 1440, "closure": 2880,
    }  # fmt: skip
    assert {c["name"] for c in got.body["calendars"]} == {"business_hours", "24x7"}
    cid = desk.customer()
    before = desk.open(cid, "where is my parcel").body
    policies: dict[str, Any] = {
        "default": {"first_response": 10},
        "categories": {"logistics": {"first_response": 15, "resolution": 600}},
        "calendars": {"normal": "24x7"},
    }
    assert desk.suite.call("PUT", "/tickets/sla-policies", policies,
                           role="support_agent").status == 403  # fmt: skip
    put = desk.suite.call("PUT", "/tickets/sla-policies", policies, role="support_manager")
    assert put.status == 200, put.body
    assert put.body["version"] == "sla-v1"
    after = desk.open(cid, "where is my parcel").body
    assert (after["policy"], after["calendar"]) == ("sla-v1", "24x7")
    assert {d["metric"]: d["target_minutes"] for d in after["deadlines"]} == {
        "first_response": 15, "resolution": 600,
    }  # fmt: skip
    # The ticket opened before keeps the targets it pinned.
    kept = desk.ticket(before["ticket_id"])
    assert kept["policy"] == "sla-2026.12"
    assert {d["metric"] for d in kept["deadlines"]} == {"first_response", "feedback", "resolution"}
    assert desk.suite.call("PUT", "/tickets/sla-policies", policies,
                           role="support_manager").body["version"] == "sla-v2"  # fmt: skip
    for bad in (
        {"categories": policies["categories"]},  # no default targets
        {**policies, "default": {}},
        {**policies, "default": {"first_response": 0}},
        {**policies, "default": {"response": 10}},
        {**policies, "calendars": {"normal": "moon"}},
    ):
        assert desk.suite.call("PUT", "/tickets/sla-policies", bad,
                               role="support_manager").status == 400  # fmt: skip


def test_the_sample_wake_up_of_a_ticket_that_does_not_exist_is_claimed_and_dropped(
    desk: Desk,
) -> None:
    sample = json.loads((ROOT / "events" / "sqs_ticket_sla.json").read_text())
    assert desk.suite.invoke("TicketSlaFunction", sample) == {"batchItemFailures": []}
    assert desk.events() == []


def test_an_after_sales_stage_past_its_target_is_followed_up_once(desk: Desk) -> None:
    """A return request reviewed within 4 h, pickup arranged within 24 h of approval: a case
    still in its stage when the target passes publishes AfterSalesStageOverdue (through the
    timer sweep and the SLA function), once; a case that moved on in time publishes nothing."""
    tap = desk.suite.tap_bus("overdue-tap", {"detail-type": ["AfterSalesStageOverdue"]})
    cid = desk.customer()
    body = {"kind": "return", "order_id": "o-late", "customer_id": cid,
            "reason": "size_too_small", "amount": "399.00", "sku": "SKU-1"}  # fmt: skip
    opened = desk.suite.call("POST", "/aftersales", body, role="customer", customer_id=cid)
    assert opened.status == 201, opened.body
    case_id = opened.body["case_id"]
    desk.travel(hours=3, minutes=50)
    assert desk.suite.take_all(tap) == []
    desk.travel(minutes=15)  # 4 h 05 in review
    overdue = [e["detail"] for e in desk.suite.take_all(tap)]
    assert [(e["case_id"], e["stage"], e["customer_id"]) for e in overdue] == [
        (case_id, "submitted", cid)
    ]
    assert set(overdue[0]) == {"case_id", "customer_id", "order_id", "kind", "stage",
                               "due_at", "occurred_at"}  # fmt: skip
    desk.travel(hours=2)
    assert desk.suite.take_all(tap) == []  # once
    # Approved now, pickup arranged 23 h later: the approval's 24 h timer is cancelled.
    stages = f"/aftersales/{case_id}/stages"
    approve = {"event_id": "wms-1", "stage": "approved"}
    moved = desk.suite.call("POST", stages, approve, role="support_agent")
    assert moved.status == 200, moved.body
    desk.travel(hours=23)
    pickup = {"event_id": "wms-2", "stage": "pickup_scheduled"}
    moved = desk.suite.call("POST", stages, pickup, role="support_agent")
    assert moved.status == 200, moved.body
    desk.travel(hours=2)
    assert desk.suite.take_all(tap) == []
    case = desk.suite.call("GET", f"/aftersales/{case_id}", role="customer", customer_id=cid)
    assert [t["overdue"] for t in case.body["timeline"]] == [True, False, False]
