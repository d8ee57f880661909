"""Escalation that knows the business, through the API: order value (the profile's folded
payment, or the amount stated), repeat complaints, high-value tiers, risk keywords (zh+en),
negative sentiment, or an agent by hand (a reason code); each reason recorded, a senior agent
and a manager assigned together,
TicketEscalated on the bus with ids and reason codes only; rules edited by MANAGE_SLA."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crm.composition import root
from crm.profiles import CustomerScores, ScoresWrite
from tests.integration.tickets.conftest import Desk


def reasons(ticket: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in ticket["escalation"]["reasons"]]


def paid(desk: Desk, cid: str, order_id: str, amount: str) -> None:
    event = {"event_id": f"{order_id}-paid", "type": "order_paid", "customer_id": cid,
             "order_id": order_id, "amount": amount,
             "occurred_at": "2026-11-20T10:00:00Z"}  # fmt: skip
    assert desk.suite.call("POST", "/events", {"events": [event]}).status == 202
    desk.suite.drain()


def test_a_quiet_ticket_is_not_escalated(desk: Desk) -> None:
    cid = desk.customer()
    ticket = desk.open(cid, "请问这件外套什么时候补货").body
    assert ticket["category"] == "presale"
    assert ticket["escalation"]["escalated"] is False
    assert desk.events() == []


def test_risk_keywords_escalate_with_a_senior_agent_and_a_manager(desk: Desk) -> None:
    cid = desk.customer()
    ticket = desk.open(cid, "再不处理我就打12315，还要找媒体曝光", channel="mini_program").body
    assert ticket["escalation"]["escalated"] is True
    assert reasons(ticket) == ["risk_keywords"]
    assert ticket["escalation"]["reasons"][0]["detail"] == "12315, 媒体, 曝光"
    assert ticket["priority"] == "urgent"
    assert ticket["calendar"] == "24x7"  # urgent tickets' clocks run around the clock
    assert (ticket["escalation"]["senior_agent"], ticket["escalation"]["manager"]) == (
        "senior-agent-1", "support-manager-1",
    )  # fmt: skip
    (event,) = desk.events()
    assert event["detail-type"] == "TicketEscalated"
    assert event["detail"]["reasons"] == ["risk_keywords"]
    assert event["detail"]["ticket_id"] == ticket["ticket_id"]
    # Ids and codes only: the customer's words never reach the bus.
    assert "12315" not in str(event)
    english = desk.open(cid, "I will file a chargeback and call my lawyer").body
    assert reasons(english) == ["risk_keywords"]
    assert english["escalation"]["reasons"][0]["detail"] == "chargeback, lawyer"


def test_strong_negative_sentiment_escalates(desk: Desk) -> None:
    cid = desk.customer()
    mild = desk.open(cid, "有点失望").body  # one negative word: below the threshold
    assert mild["escalation"]["escalated"] is False
    angry = desk.open(cid, "太差了，垃圾商家，骗子！").body
    assert reasons(angry) == ["negative_sentiment"]


def test_the_orders_paid_amount_beats_what_the_ticket_states(desk: Desk) -> None:
    cid = desk.customer()
    paid(desk, cid, "o-big", "3999.00")
    paid(desk, cid, "o-small", "99.00")
    big = desk.open(cid, "衣服有瑕疵", order_id="o-big", order_amount="10.00").body
    assert reasons(big) == ["order_value"]
    # The folded payment says 99: a stated 5000 does not escalate an order the profile knows.
    small = desk.open(cid, "衣服有瑕疵", order_id="o-small", order_amount="5000").body
    assert small["escalation"]["escalated"] is False
    stated = desk.open(cid, "衣服有瑕疵", order_id="o-unknown", order_amount="2500.00").body
    assert reasons(stated) == ["order_value"]


def test_a_repeat_complaint_within_n_days_escalates(desk: Desk) -> None:
    cid = desk.customer()
    first = desk.open(cid, "投诉：客服态度差").body
    assert first["escalation"]["escalated"] is False
    desk.clock.advance(days=10)
    again = desk.open(cid, "投诉：还是没人回").body
    assert reasons(again) == ["repeat_complaint"]
    desk.clock.advance(days=40)  # past 30 days since both
    later = desk.open(cid, "投诉：态度").body
    assert "repeat_complaint" not in reasons(later)


def test_a_high_value_customer_is_escalated(desk: Desk) -> None:
    cid = desk.customer()
    scores = CustomerScores(
        recency_score=5, frequency_score=5, monetary_score=5, rfm_segment="champions",
        tier="high_value", clv_12m=Decimal("8000"), scored_at=datetime(2026, 11, 22, tzinfo=UTC),
    )  # fmt: skip
    root().profile_service.store.put_scores(
        [
            ScoresWrite(
                customer_id=cid, run_id="r-1", scores=scores, run_segments=("tier:high_value",)
            )
        ]
    )
    ticket = desk.open(cid, "积分没到账").body
    assert reasons(ticket) == ["high_value_tier"]
    assert ticket["escalation"]["reasons"][0]["detail"] == "tier high_value"


def test_a_later_message_with_risk_words_escalates_an_open_ticket(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "退款还没到").body["ticket_id"]
    assert desk.events() == []
    desk.clock.advance(minutes=5)
    said = desk.suite.call("POST", f"/tickets/{ticket_id}/messages",
                           {"channel": "wechat", "text": "我要投诉到平台"}, role="customer",
                           customer_id=cid)  # fmt: skip
    assert said.status == 201
    ticket = desk.ticket(ticket_id)
    assert reasons(ticket) == ["risk_keywords"]
    assert ticket["escalation"]["escalated_at"] == "2026-11-23T02:05:00Z"
    assert [e["detail-type"] for e in desk.events()] == ["TicketEscalated"]


def test_an_agent_escalates_by_hand_with_a_reason_code_once(desk: Desk) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "退款还没到").body["ticket_id"]
    desk.clock.advance(minutes=3)
    path = f"/tickets/{ticket_id}/escalate"
    up = desk.suite.call("POST", path, {"reason": "vip_complaint"}, role="support_agent")
    assert up.status == 200, up.body
    assert up.body["priority"] == "urgent"
    assert reasons(up.body) == ["agent"]
    assert up.body["escalation"]["reasons"][0]["detail"].endswith(": vip_complaint")
    assert up.body["escalation"]["senior_agent"] == "senior-agent-1"
    assert up.body["escalation"]["escalated_at"] == "2026-11-23T02:03:00Z"
    (event,) = desk.events()
    assert (event["detail-type"], event["detail"]["reasons"]) == ("TicketEscalated", ["agent"])
    # Once: again changes nothing and announces nothing.
    again = desk.suite.call("POST", path, {"reason": "vip_complaint"}, role="support_agent")
    assert (again.status, reasons(again.body)) == (200, ["agent"])
    assert desk.events() == []
    # A code, never the customer's words; staff only; a ticket that exists.
    words = desk.suite.call("POST", path, {"reason": "客户说要曝光"}, role="support_agent")
    assert words.status == 400
    assert words.body["error"]["fields"][0]["field"] == "reason"
    assert desk.suite.call("POST", path, {"reason": "x"}, role="customer",
                           customer_id=cid).status == 403  # fmt: skip
    assert desk.suite.call("POST", "/tickets/t-none/escalate", {"reason": "x"},
                           role="support_agent").status == 404  # fmt: skip


def test_rules_are_read_and_replaced_by_managers_only(desk: Desk) -> None:
    got = desk.suite.call("GET", "/tickets/escalation-rules", role="support_manager")
    assert got.status == 200
    assert got.body["rules"]["order_value_threshold"] == "2000"
    assert "12315" in got.body["rules"]["risk_keywords"]
    rules = {**got.body["rules"], "order_value_threshold": "100", "risk_keywords": ["退钱"],
             "senior_agents": ["senior-a", "senior-b"], "managers": ["boss"]}  # fmt: skip
    assert desk.suite.call("PUT", "/tickets/escalation-rules", rules,
                           role="support_agent").status == 403  # fmt: skip
    put = desk.suite.call("PUT", "/tickets/escalation-rules", rules, role="support_manager")
    assert put.status == 200, put.body
    assert put.body["updated_by"] == "manager-1"
    bad = desk.suite.call("PUT", "/tickets/escalation-rules", {**rules, "managers": []},
                          role="support_manager")  # fmt: skip
    assert bad.status == 400
    cid = desk.customer()
    ticket = desk.open(cid, "快点退钱", order_amount="150").body
    assert sorted(reasons(ticket)) == ["order_value", "risk_keywords"]
    assert ticket["escalation"]["senior_agent"] in ("senior-a", "senior-b")
    assert ticket["escalation"]["manager"] == "boss"
    # 12315 is no longer a risk keyword under the new rules.
    assert desk.open(cid, "12315").body["escalation"]["escalated"] is False
