"""Journeys react to the tickets family's events, through the bus and the triggers queue: an
escalated ticket takes the customer out of the journeys that exit on `ticket_escalated`, and an
after-sales case's stage enters customers into journeys triggered on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

import pytest

from crm.campaigns.journey_models import AFTER_SALES_STAGES, AfterSalesStage
from crm.tickets.aftersales_models import Stage
from tests.integration.journeys.conftest import Shop

DAY = 86400


def winback(**overrides: Any) -> dict[str, Any]:
    journey: dict[str, Any] = {
        "name": "win-back",
        "trigger": {"type": "event", "event_type": "cart_added"},
        "start": "wait",
        "steps": [{"id": "wait", "type": "wait", "seconds": DAY, "next": "coupon"},
                  {"id": "coupon", "type": "send", "channel": "push", "template_id": "t"}],
        "exit": [{"event": "ticket_escalated"}],
    }  # fmt: skip
    journey.update(overrides)
    return journey


def escalate(shop: Shop, customer_id: str) -> None:
    """The customer complains and mentions 12315: tickets escalate at once and publish
    TicketEscalated, which the rule carries to the journeys' triggers queue."""
    body = {"customer_id": customer_id, "channel": "app", "order_id": "o-9",
            "message": "客服一直不理人，再不处理我就打12315投诉"}  # fmt: skip
    out = shop.suite.call("POST", "/tickets", body, role="customer", customer_id=customer_id)
    assert out.status == 201, out.body
    ticket = shop.suite.call("GET", f"/tickets/{out.body['ticket_id']}", role="support_agent")
    assert ticket.body["escalation"]["escalated"] is True
    assert shop.triggers() == 1


def test_an_escalated_ticket_takes_the_customer_out_of_marketing(shop: Shop) -> None:
    journey_id = shop.journey(winback())
    plain = shop.journey(winback(name="no exit", exit=[]))
    cid = shop.customer("esc-1")
    calm = shop.customer("esc-2")
    for customer in (cid, calm):
        shop.event(customer, "cart_added")
    assert [i["state"] for i in shop.instances(journey_id, cid)] == ["waiting"]
    escalate(shop, cid)
    # Ended at once, not at the next step: the waiting instance has exited.
    [instance] = shop.instances(journey_id, cid)
    assert instance["state"] == "exited"
    shop.advance(seconds=DAY + 60)
    # The wait's timer fired and sent nothing for the escalated customer; the journey without
    # the exit, and the calm customer, went on.
    assert shop.dispatcher.steps() == sorted([(cid, "coupon"), (calm, "coupon"),
                                              (calm, "coupon")])  # fmt: skip
    sent = {(r.campaign_id, r.customer_id) for r in shop.dispatcher.sent.values()}
    assert (journey_id, cid) not in sent
    assert (plain, cid) in sent
    assert shop.report(journey_id)["exited_exit"] == 1
    # A redelivered TicketEscalated changes nothing more.
    assert shop.triggers() == 0


def test_a_customer_escalated_last_week_does_not_enter_a_marketing_journey(shop: Shop) -> None:
    cid = shop.customer("esc-3")
    escalate(shop, cid)
    journey_id = shop.journey(winback())
    shop.clock.now += timedelta(days=3)
    shop.event(cid, "cart_added")
    [instance] = shop.instances(journey_id, cid)
    assert instance["state"] == "exited"
    assert instance["history"] == []
    # Past the look-back (7 days), the customer is marketed to again (re-entry allowed).
    later = shop.journey(winback(name="later"))
    shop.clock.now += timedelta(days=8)
    shop.event(cid, "cart_added")
    assert [i["state"] for i in shop.instances(later, cid)] == ["waiting"]


def test_ticket_escalated_is_for_exits_only(shop: Shop) -> None:
    bad = winback(trigger={"type": "event", "event_type": "ticket_escalated"})
    out = shop.suite.call("POST", "/campaigns/journeys", bad, role="marketer")
    assert out.status == 400
    assert "ticket_escalated" in str(out.body)


def case(shop: Shop, customer_id: str, kind: str = "return") -> str:
    body = {"kind": kind, "order_id": f"o-{kind}", "customer_id": customer_id,
            "reason": "size_too_small", "amount": "399.00"}  # fmt: skip
    out = shop.suite.call("POST", "/aftersales", body, role="customer", customer_id=customer_id)
    assert out.status == 201, out.body
    return str(out.body["case_id"])


def advance(shop: Shop, case_id: str, event_id: str, stage: str) -> None:
    body = {"event_id": event_id, "stage": stage}
    out = shop.suite.call("POST", f"/aftersales/{case_id}/stages", body, role="support_agent")
    assert out.status == 200, out.body


def test_an_after_sales_stage_enters_a_journey_once_per_case(shop: Shop) -> None:
    journey_id = shop.journey({
        "name": "sorry for the hassle",
        "trigger": {"type": "after_sales", "stages": ["refunded"], "kinds": ["return"]},
        "start": "sorry",
        "steps": [{"id": "sorry", "type": "send", "channel": "push", "template_id": "t"}],
        "reentry": {"mode": "after", "after_seconds": 60},
    })  # fmt: skip
    cid = shop.customer("as-1")
    returned = case(shop, cid)
    shop.triggers()  # submitted: not the stage
    for n, stage in enumerate(["approved", "pickup_scheduled", "picked_up", "inspecting"]):
        advance(shop, returned, f"wms-{n}", stage)
    shop.triggers()
    assert shop.instances(journey_id, cid) == []
    advance(shop, returned, "pay-1", "refunded")
    assert shop.triggers() == 1
    [instance] = shop.instances(journey_id, cid)
    assert (instance["state"], instance["history"]) == ("completed", ["sorry"])
    # The same stage event again (a redelivery) enters nobody; another kind does not match.
    advance(shop, returned, "pay-1", "refunded")
    refund = case(shop, cid, kind="refund")
    advance(shop, refund, "pay-2", "approved")
    advance(shop, refund, "pay-3", "refunded")
    shop.triggers()
    assert len(shop.instances(journey_id, cid)) == 1
    assert shop.dispatcher.steps() == [(cid, "sorry")]


@pytest.mark.parametrize("trigger", [
    {"type": "after_sales", "stages": ["shipped"]},
    {"type": "after_sales", "kinds": ["swap"]},
])  # fmt: skip
def test_an_unknown_stage_or_kind_is_a_400(shop: Shop, trigger: dict[str, Any]) -> None:
    out = shop.suite.call("POST", "/campaigns/journeys", winback(trigger=trigger), role="marketer")
    assert out.status == 400, out.body


def test_journeys_know_the_stages_tickets_have() -> None:
    assert set(AFTER_SALES_STAGES) == {s.value for s in Stage}
    assert set(AFTER_SALES_STAGES) == set(get_args(AfterSalesStage))


def test_an_escalated_ticket_gets_one_service_apology_and_marketing_cannot_pose_as_service(
    shop: Shop,
) -> None:
    apology = shop.journey({
        "name": "apology",
        "trigger": {"type": "ticket_escalated"},
        "start": "sorry",
        "steps": [{"id": "sorry", "type": "send", "channel": "sms", "template_id": "t",
                   "purpose": "service"}],
        "reentry": {"mode": "after", "after_seconds": 30 * DAY},
    })  # fmt: skip
    cid = shop.customer("esc-apology")
    escalate(shop, cid)
    [instance] = shop.instances(apology, cid)
    assert (instance["state"], instance["history"]) == ("completed", ["sorry"])
    [sent] = [r for r in shop.dispatcher.sent.values() if r.campaign_id == apology]
    assert (sent.customer_id, sent.transactional) == (cid, True)
    # A redelivered TicketEscalated enters nobody again.
    assert shop.triggers() == 0
    assert len(shop.instances(apology, cid)) == 1
    # A marketing journey's sends stay marketing; a service send needs a service trigger.
    marketing = shop.journey(winback(name="plain"))
    shop.event(shop.customer("esc-plain"), "cart_added")
    shop.advance(seconds=DAY + 60)
    assert all(not r.transactional for r in shop.dispatcher.sent.values()
               if r.campaign_id == marketing)  # fmt: skip
    posing = winback(name="posing")
    posing["steps"][1]["purpose"] = "service"
    out = shop.suite.call("POST", "/campaigns/journeys", posing, role="marketer")
    assert out.status == 400
    assert out.body["error"]["fields"][0]["field"] == "steps.1.purpose"


def test_the_refund_notification_example_is_a_service_message(shop: Shop) -> None:
    from crm.campaigns.journey_examples import examples

    [example] = [e for e in examples() if e.trigger.type == "after_sales"]
    journey_id = shop.journey(example.model_dump(mode="json", exclude_defaults=False))
    cid = shop.customer("as-notify")
    refund = case(shop, cid, kind="refund")
    advance(shop, refund, "pay-9", "approved")
    advance(shop, refund, "pay-10", "refunded")
    shop.triggers()
    [sent] = [r for r in shop.dispatcher.sent.values() if r.campaign_id == journey_id]
    assert (sent.customer_id, sent.template_id, sent.transactional) == (
        cid, "aftersales_refunded", True,
    )  # fmt: skip


def test_the_escalation_journeys_keep_is_erased_with_the_customer(shop: Shop) -> None:
    from crm.campaigns import CampaignsPersonalData
    from crm.personal_data import DataSubject

    cid = shop.customer("esc-erase")
    escalate(shop, cid)
    store = CampaignsPersonalData(shop.suite.stack.refs["CampaignsTable"])
    subject = DataSubject(customer_id=cid, pseudonym="p" * 32, external_ids=("esc-erase",))
    held = {h.kind: h.count for h in store.inventory(subject).holdings}
    assert held.get("journey_escalation") == 1, held
    assert store.erase(subject).erased.get("journey_escalation") == 1
    assert store.verify(subject).clean
