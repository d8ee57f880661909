"""Journeys through the API, the bus, the timers and the journey functions on moto: definitions
refused when they make no sense, triggers entering customers, waits firing once, goals and
exits, re-entry, A/B splits, condition branches and the report."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from crm.campaigns.journey_engine import variant_of
from crm.campaigns.journey_models import SplitStep
from crm_local.template import ROOT
from tests.integration.journeys.conftest import SWEEP, Shop

HOUR, DAY = 3600, 86400


def send(step_id: str, template: str, next_step: str | None = None) -> dict[str, Any]:
    return {"id": step_id, "type": "send", "channel": "push", "template_id": template,
            "next": next_step}  # fmt: skip


def simple(**overrides: Any) -> dict[str, Any]:
    journey: dict[str, Any] = {
        "name": "cart reminder",
        "trigger": {"type": "event", "event_type": "cart_added"},
        "start": "wait",
        "steps": [{"id": "wait", "type": "wait", "seconds": HOUR, "next": "remind"},
                  send("remind", "cart_reminder")],
    }  # fmt: skip
    journey.update(overrides)
    return journey


# ---------------------------------------------------------------------- definitions
BAD = [
    (simple(start="nowhere"), "start", "no step nowhere"),
    (simple(steps=[{"id": "wait", "type": "wait", "seconds": 60, "next": "gone"}]), "steps.0",
     "unknown step gone"),
    (simple(trigger={"type": "event", "event_type": "order_shipped"}), "trigger.event_type",
     "unknown event type order_shipped"),
    (simple(start="a", steps=[
        {"id": "a", "type": "condition", "rule": {"all": [{"has_tag": "x"}]}, "then": "b",
         "otherwise": None},
        send("b", "t", "a")]), "steps", "a loop without a wait: a -> b -> a"),
    (simple(steps=[send("wait", "t"), send("remind", "t")]), "steps",
     "step remind is never reached"),
    (simple(trigger={"type": "event", "event_type": "cart_added", "first_order_only": True}),
     "trigger.first_order_only", "only for order_paid"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "where", "message"), BAD)
def test_a_journey_that_makes_no_sense_is_refused_naming_the_problem(
    shop: Shop, body: dict[str, Any], where: str, message: str
) -> None:
    out = shop.suite.call("POST", "/campaigns/journeys", body, role="marketer")
    assert out.status == 400, out.body
    fields = out.body["error"]["fields"]
    assert any(f["field"] == where and message in f["message"] for f in fields), fields


def test_a_send_naming_a_missing_template_or_channel_is_refused(shop: Shop) -> None:
    body = simple(steps=[{"id": "wait", "type": "wait", "seconds": 60, "next": "remind"},
                         send("remind", "no_such_template")])  # fmt: skip
    out = shop.suite.call("POST", "/campaigns/journeys", body, role="marketer")
    assert out.status == 400
    [problem] = out.body["error"]["fields"]
    assert problem["field"] == "steps.1.template_id"
    assert "no template no_such_template" in problem["message"]
    sms_only = {"channels": {"sms": {"zh": {"body": "你好"}, "en": {"body": "Hi"}}}}
    assert shop.suite.call("PUT", "/campaigns/templates/sms_only", sms_only,
                           role="marketer").status == 200  # fmt: skip
    body["steps"][1]["template_id"] = "sms_only"  # the step sends push
    out = shop.suite.call("POST", "/campaigns/journeys", body, role="marketer")
    assert out.status == 400
    assert "has no push body" in out.body["error"]["fields"][0]["message"]
    # A template that prints a coupon needs a step that issues one.
    coupon = {
        "channels": {"push": {"zh": {"body": "券 {{ coupon }}"}, "en": {"body": "{{ coupon }}"}}}
    }
    assert shop.suite.call("PUT", "/campaigns/templates/with_coupon", coupon,
                           role="marketer").status == 200  # fmt: skip
    body["steps"][1]["template_id"] = "with_coupon"
    out = shop.suite.call("POST", "/campaigns/journeys", body, role="marketer")
    assert out.status == 400
    assert out.body["error"]["fields"][0]["message"] == (
        "template with_coupon prints a coupon and no coupon_offer_id issues one"
    )
    # One that prints it only when there is one is fine.
    guarded = {"channels": {"push": {locale: {"body": "{% if coupon %}券 {{ coupon }}{% endif %}"}
                                     for locale in ("zh", "en")}}}  # fmt: skip
    assert shop.suite.call("PUT", "/campaigns/templates/with_coupon", guarded,
                           role="marketer").status == 200  # fmt: skip
    assert shop.suite.call("POST", "/campaigns/journeys", body, role="marketer").status == 201


def test_a_rule_the_segment_grammar_refuses_is_a_400(shop: Shop) -> None:
    body = simple(exit=[{"rule": {"all": [{"field": "orders.no_such", "op": "gt", "value": 1}]}}])
    out = shop.suite.call("POST", "/campaigns/journeys", body, role="marketer")
    assert out.status == 400
    assert any("exit" in f["field"] for f in out.body["error"]["fields"])


def test_create_read_edit_version_pause_delete(shop: Shop) -> None:
    journey_id = shop.journey(simple(), activate=False)
    got = shop.suite.call("GET", f"/campaigns/journeys/{journey_id}", role="analyst").body
    assert (got["status"], got["version"]) == ("draft", 1)
    # A draft is edited in place.
    edited = shop.suite.call("PUT", f"/campaigns/journeys/{journey_id}", simple(name="v1b"),
                             role="marketer").body  # fmt: skip
    assert (edited["version"], edited["definition"]["name"]) == (1, "v1b")
    assert shop.suite.call("POST", f"/campaigns/journeys/{journey_id}/activate",
                           role="marketer").body["status"] == "active"  # fmt: skip
    # Live: an edit is a new version.
    edited = shop.suite.call("PUT", f"/campaigns/journeys/{journey_id}", simple(name="v2"),
                             role="marketer").body  # fmt: skip
    assert edited["version"] == 2
    assert shop.suite.call("DELETE", f"/campaigns/journeys/{journey_id}",
                           role="marketer").status == 409  # fmt: skip
    listed = shop.suite.call("GET", "/campaigns/journeys", role="analyst").body["journeys"]
    assert [j["journey_id"] for j in listed] == [journey_id]
    assert shop.suite.call("POST", f"/campaigns/journeys/{journey_id}/pause",
                           role="marketer").body["status"] == "paused"  # fmt: skip
    assert shop.suite.call("DELETE", f"/campaigns/journeys/{journey_id}",
                           role="marketer").status == 200  # fmt: skip
    assert shop.suite.call("GET", f"/campaigns/journeys/{journey_id}", role="analyst").status == 404
    # Analysts read, they do not write.
    assert shop.suite.call("POST", "/campaigns/journeys", simple(), role="analyst").status == 403


def test_the_five_examples_are_valid_journeys(shop: Shop) -> None:
    examples = shop.suite.call("GET", "/campaigns/journeys/examples", role="marketer").body
    assert len(examples["examples"]) == 7
    for example in examples["examples"]:
        assert shop.suite.call("POST", "/campaigns/journeys", example,
                               role="marketer").status == 201  # fmt: skip


# ---------------------------------------------------------------------- running
def test_abandoned_cart_waits_two_hours_then_reminds_once(shop: Shop) -> None:
    journey_id = shop.journey(shop.example("abandoned cart"))
    cid = shop.customer("cart-1")
    shop.event(cid, "cart_added")
    [instance] = shop.instances(journey_id, cid)
    assert (instance["state"], instance["step"]) == ("waiting", "wait_2h")
    shop.advance(hours=1)
    assert shop.dispatcher.sent == {}
    shop.advance(hours=1, minutes=1)
    assert shop.dispatcher.steps() == [(cid, "reminder")]
    [instance] = shop.instances(journey_id, cid)
    assert instance["state"] == "completed"
    assert instance["history"] == ["wait_2h", "reminder"]
    report = shop.report(journey_id)
    assert (report["entered"], report["completed"]) == (1, 1)
    assert report["steps"]["reminder"]["sent"] == 1
    assert report["steps"]["wait_2h"]["timeout"] == 1


def test_paying_meanwhile_meets_the_goal_and_nothing_is_sent(shop: Shop) -> None:
    journey_id = shop.journey(shop.example("abandoned cart"))
    cid = shop.customer("cart-2")
    shop.event(cid, "cart_added")
    shop.clock.now += timedelta(minutes=30)
    shop.event(cid, "order_paid")
    [instance] = shop.instances(journey_id, cid)
    assert instance["state"] == "goal"
    shop.advance(hours=3)  # the cancelled timer wakes nobody
    assert shop.dispatcher.sent == {}
    assert shop.report(journey_id)["exited_goal"] == 1


def test_first_order_waits_seven_days_then_cross_sells_and_a_second_order_never_enters(
    shop: Shop,
) -> None:
    journey_id = shop.journey(shop.example("7 days after the first order"))
    cid = shop.customer("first-1")
    shop.event(cid, "order_paid")
    shop.advance(days=7, minutes=1)
    assert shop.dispatcher.steps() == [(cid, "cross_sell")]
    shop.event(cid, "order_paid")  # a second order: not a first order, no new entry
    assert len(shop.instances(journey_id, cid)) == 1


def test_exit_condition_is_checked_before_the_step(shop: Shop) -> None:
    journey_id = shop.journey(shop.example("7 days after the first order"))
    cid = shop.customer("first-2")
    shop.event(cid, "order_paid")
    shop.event(cid, "order_paid")  # two orders: the exit rule holds by the time the wait ends
    shop.advance(days=8)
    assert shop.dispatcher.sent == {}
    [instance] = shop.instances(journey_id, cid)
    assert instance["state"] == "exited"
    assert shop.report(journey_id)["exited_exit"] == 1


def test_reentry_once_and_after_a_set_time(shop: Shop) -> None:
    once = shop.journey(simple(name="once", reentry={"mode": "once"}))
    again = shop.journey(simple(name="again", reentry={"mode": "after", "after_seconds": DAY}))
    cid = shop.customer("re-1")
    shop.event(cid, "cart_added")
    shop.event(cid, "cart_added")  # still inside both: no second entry
    shop.advance(hours=2)
    assert [i["state"] for i in shop.instances(once, cid)] == ["completed"]
    shop.event(cid, "cart_added")  # ended less than a day ago
    assert len(shop.instances(again, cid)) == 1
    shop.advance(days=1)
    shop.event(cid, "cart_added")
    assert len(shop.instances(once, cid)) == 1
    assert [i["seq"] for i in shop.instances(again, cid)] == [1, 2]


def test_ab_split_is_deterministic_and_control_sends_nothing(shop: Shop) -> None:
    split = {"id": "split", "type": "split", "branches": [
        {"name": "a", "weight": 50, "next": "send_a"},
        {"name": "control", "weight": 50, "control": True}]}  # fmt: skip
    body = simple(start="split", steps=[split, send("send_a", "variant_a")],
                  reentry={"mode": "after", "after_seconds": 60})  # fmt: skip
    journey_id = shop.journey(body)
    step = SplitStep.model_validate(split)
    customers = [shop.customer(f"ab-{n}") for n in range(12)]
    for cid in customers:
        shop.event(cid, "cart_added")
    expected = {cid: step.branches[variant_of(journey_id, cid, step)].name for cid in customers}
    assert set(expected.values()) == {"a", "control"}  # 12 customers fall in both
    for cid in customers:
        [instance] = shop.instances(journey_id, cid)
        assert instance["variant"] == expected[cid]
    assert shop.dispatcher.steps() == sorted((c, "send_a") for c in customers
                                             if expected[c] == "a")  # fmt: skip
    # Entering again lands in the same branch.
    shop.advance(minutes=5)
    for cid in customers:
        shop.event(cid, "cart_added")
        assert shop.instances(journey_id, cid)[-1]["variant"] == expected[cid]
    report = shop.report(journey_id)
    controls = sum(1 for v in expected.values() if v == "control")
    assert report["steps"]["split"].get("control") == 2 * controls
    assert report["variants"] == {
        "a": {"entered": 2 * (12 - controls), "sent": 2 * (12 - controls)},
        "control": {"entered": 2 * controls},
    }


def test_condition_branch_follows_the_segment_rule(shop: Shop) -> None:
    cond = {"id": "buyer", "type": "condition",
            "rule": {"all": [{"field": "orders.order_count", "op": "gte", "value": 1}]},
            "then": "to_buyer", "otherwise": "to_browser"}  # fmt: skip
    body = simple(start="buyer", steps=[cond, send("to_buyer", "t_buyer"),
                                        send("to_browser", "t_browser")])  # fmt: skip
    shop.journey(body)
    buyer, browser = shop.customer("cond-1"), shop.customer("cond-2")
    shop.event(buyer, "order_paid")
    shop.event(buyer, "cart_added")
    shop.event(browser, "cart_added")
    assert shop.dispatcher.steps() == sorted([(buyer, "to_buyer"), (browser, "to_browser")])


def test_a_redelivered_wake_up_does_nothing_twice(shop: Shop) -> None:
    journey_id = shop.journey(simple())
    cid = shop.customer("wake-1")
    shop.event(cid, "cart_added")
    shop.clock.now += timedelta(hours=1, minutes=1)
    shop.suite.invoke("TimerSweepFunction", SWEEP)
    shop.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
    [message] = shop.suite.receive("JourneyStepsQueue")
    shop.suite.deliver("JourneyStepsFunction", "JourneyStepsQueue", [message])
    # The same wake-up again (SQS delivers at least once).
    sqs = boto3.client("sqs")
    sqs.send_message(
        QueueUrl=shop.suite.queue_url("JourneyStepsQueue"), MessageBody=message["Body"]
    )
    shop.suite.drain("JourneyStepsFunction", "JourneyStepsQueue")
    assert shop.dispatcher.steps() == [(cid, "remind")]
    assert shop.dispatcher.calls == 1
    [instance] = shop.instances(journey_id, cid)
    assert instance["history"] == ["wait", "remind"]
    assert shop.report(journey_id)["steps"]["remind"]["sent"] == 1


def test_a_paused_journey_enters_nobody(shop: Shop) -> None:
    journey_id = shop.journey(simple())
    shop.suite.call("POST", f"/campaigns/journeys/{journey_id}/pause", role="marketer")
    cid = shop.customer("paused-1")
    shop.event(cid, "cart_added")
    assert shop.instances(journey_id, cid) == []


def test_a_points_change_and_an_update_profile_step(shop: Shop) -> None:
    body = simple(
        trigger={"type": "event", "event_type": "points_changed"},
        start="tag",
        steps=[{"id": "tag", "type": "update_profile", "add_tag": "points_fan", "add_points": 5,
                "next": "thanks"}, send("thanks", "points_thanks")],
    )  # fmt: skip
    journey_id = shop.journey(body)
    cid = shop.customer("pts-j")
    change = {"txn_id": "pos-9", "kind": "earn", "points": 100}
    assert shop.suite.call("POST", f"/customers/{cid}/points", change).status == 200
    shop.triggers()
    # The step's own points change is announced too; re-entry `once` keeps it from looping.
    shop.triggers()
    assert shop.dispatcher.steps() == [(cid, "thanks")]
    profile = shop.suite.call("GET", f"/customers/{cid}").body
    assert "points_fan" in profile["tags"]
    assert shop.suite.call("GET", f"/customers/{cid}/points").body["balance"] == 105
    assert len(shop.instances(journey_id, cid)) == 1


DAILY = json.loads((ROOT / "events" / "schedule_journeys_daily.json").read_text())


def run_daily(shop: Shop) -> int:
    planned = shop.suite.invoke("JourneyDailyFunction", DAILY)["shards"]
    shop.suite.drain("JourneyDailyShardFunction", "JourneyDailyQueue", rounds=20)
    return int(planned)


def test_birthday_month_and_inactivity_enter_through_the_daily_scan(shop: Shop) -> None:
    assert run_daily(shop) == 0  # no journey needs the scan: nothing is planned
    birthday = shop.journey(shop.example("birthday month"))
    dormant = shop.journey(shop.example("dormant 30 days"))
    november = shop.customer("bday-1", birthday="1990-11-02")
    june = shop.customer("bday-2", birthday="1990-06-02")
    shop.clock.now -= timedelta(days=40)
    quiet = shop.customer("quiet-1")
    shop.event(quiet, "order_paid")  # 40 days ago
    shop.clock.now += timedelta(days=40)
    busy = shop.customer("busy-1")
    shop.event(busy, "order_paid")  # today
    assert run_daily(shop) == 16
    assert [i["state"] for i in shop.instances(birthday, november)] == ["waiting"]
    assert shop.instances(birthday, june) == []
    assert len(shop.instances(dormant, quiet)) == 1
    assert shop.instances(dormant, busy) == []
    assert shop.instances(dormant, november) != []  # never ordered: quiet too
    # The scan again the same day (a retry, a late run) enters nobody twice.
    run_daily(shop)
    assert len(shop.instances(birthday, november)) == 1
    assert len(shop.instances(dormant, quiet)) == 1
    # The birthday journey waits for 10:00 in the customer's zone (Shanghai: 02:00 UTC).
    shop.advance(hours=18)
    [instance] = shop.instances(birthday, november)
    assert instance["state"] == "completed"
    assert (november, "greeting") in shop.dispatcher.steps()
    profile = shop.suite.call("GET", f"/customers/{november}").body
    assert "birthday_double_points" in profile["tags"]


def test_a_segment_trigger_enters_on_entering_a_rule_segment(shop: Shop) -> None:
    rule = {"all": [{"field": "orders.total_spend", "op": "gte", "value": 500}]}
    out = shop.suite.call("POST", "/segments", {"name": "big-spenders", "rule": rule},
                          role="marketer")  # fmt: skip
    assert out.status == 201, out.body
    body = simple(trigger={"type": "segment", "segment": "big-spenders", "change": "entered"},
                  start="remind", steps=[send("remind", "vip_welcome")])  # fmt: skip
    journey_id = shop.journey(body)
    cid = shop.customer("seg-1")
    shop.event(cid, "order_paid", amount="600.00")
    shop.triggers()
    assert len(shop.instances(journey_id, cid)) == 1
    assert shop.dispatcher.steps() == [(cid, "remind")]


def test_an_after_sales_case_closed_enters_a_journey(shop: Shop) -> None:
    body = simple(trigger={"type": "event", "event_type": "after_sales_closed"},
                  start="survey", steps=[send("survey", "t")])  # fmt: skip
    journey_id = shop.journey(body)
    cid = shop.customer("as-j")
    shop.event(cid, "after_sales", case="return", status="opened")
    assert shop.instances(journey_id, cid) == []
    shop.event(cid, "after_sales", case="return", status="closed")
    assert [i["state"] for i in shop.instances(journey_id, cid)] == ["completed"]
    assert shop.dispatcher.steps() == [(cid, "survey")]


def test_an_edit_of_a_live_journey_leaves_running_instances_on_their_version(shop: Shop) -> None:
    journey_id = shop.journey(simple())
    early = shop.customer("ver-1")
    shop.event(early, "cart_added")  # enters version 1, waits an hour
    v2 = simple(steps=[{"id": "wait", "type": "wait", "seconds": HOUR, "next": "remind"},
                       send("remind", "variant_a")])  # fmt: skip
    out = shop.suite.call("PUT", f"/campaigns/journeys/{journey_id}", v2, role="marketer")
    assert out.body["version"] == 2
    late = shop.customer("ver-2")
    shop.event(late, "cart_added")  # enters version 2
    shop.advance(hours=1, minutes=1)
    templates = {r.customer_id: r.template_id for r in shop.dispatcher.sent.values()}
    assert templates == {early: "cart_reminder", late: "variant_a"}
    assert [i["version"] for i in shop.instances(journey_id, early)] == [1]


def test_a_wait_for_an_event_takes_the_event_branch_or_the_timeout_branch(shop: Shop) -> None:
    wait = {"id": "wait", "type": "wait", "until_event": "order_paid", "seconds": DAY,
            "next": "thanks", "timeout_next": "nudge"}  # fmt: skip
    journey_id = shop.journey(simple(steps=[wait, send("thanks", "t"), send("nudge", "t")]))
    paying, idle = shop.customer("ev-1"), shop.customer("ev-2")
    shop.event(paying, "cart_added")
    shop.event(idle, "cart_added")
    shop.event(paying, "order_paid")  # the event: on at once, its timer cancelled
    assert shop.dispatcher.steps() == [(paying, "thanks")]
    shop.advance(days=1, minutes=1)
    assert shop.dispatcher.steps() == sorted([(paying, "thanks"), (idle, "nudge")])
    report = shop.report(journey_id)["steps"]["wait"]
    assert (report["event"], report["timeout"]) == (1, 1)
