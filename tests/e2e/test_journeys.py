"""The shipped journeys on the emulator with time travel: the demo loader stores and
activates them, a customer's events enter them, `crm-local clock advance` moves their waits on,
and the recording provider's outbox shows what was sent. All seven examples run, then a segment
send (A/B variants, a holdout: previewed, started, reported; a second one paused and
cancelled), on one emulator whose clock only moves forward."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from crm.campaigns.policy import ContactPolicy
from crm_local.seed import ApiClient, load_journeys
from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("journeys")
    with start_emulator(ROOT / "template.yaml", folder / "state") as running:
        yield running


def journeys_by_name(emulator: Running, admin: str) -> dict[str, str]:
    status, listing = emulator.http("GET", "/campaigns/journeys", token=admin)
    assert status == 200, listing
    return {j["definition"]["name"]: j["journey_id"] for j in listing["journeys"]}


def customer(emulator: Running, admin: str, key: str) -> str:
    body: dict[str, Any] = {"identities": [{"channel": "app", "external_id": key}],
            "attributes": {"name": "李四", "email": f"{key}@shop.example.com"}}  # fmt: skip
    policy = ContactPolicy()
    for n in range(50):  # outside the global control group, which dispatch never sends to
        body["identities"][0]["external_id"] = f"{key}-{n}"
        # The email is an identity too: the same one would find the customer just made.
        body["attributes"]["email"] = f"{key}-{n}@shop.example.com"
        status, reply = emulator.http("POST", "/customers", body, token=admin)
        assert status == 201, reply
        cid = str(reply["customer_id"])
        if not policy.in_global_control(cid):
            break
    for purpose in ("marketing_push", "marketing_email"):
        change = {"purpose": purpose, "granted": True, "source": "app"}
        status, reply = emulator.http("PUT", f"/customers/{cid}/consent", change, token=admin)
        assert status == 200, reply
    return cid


def event(emulator: Running, admin: str, cid: str, kind: str, n: int) -> None:
    now = datetime.now(UTC)  # the emulator's clock is ahead, never behind: not in its future
    body: dict[str, Any] = {"event_id": f"{cid}-{n}", "type": kind, "customer_id": cid,
                            "occurred_at": now.isoformat().replace("+00:00", "Z")}  # fmt: skip
    if kind == "order_paid":
        body.update(order_id=f"{cid}-o{n}", amount="88.00")
    else:
        body.update(sku="tea-1")
    status, reply = emulator.http("POST", "/events", {"events": [body]}, token=admin)
    assert status == 202, reply


def instance(emulator: Running, admin: str, journey_id: str, cid: str) -> dict[str, Any] | None:
    status, reply = emulator.http(
        "GET", f"/campaigns/journeys/{journey_id}/customers/{cid}", token=admin
    )
    assert status == 200, reply
    return reply["instances"][-1] if reply["instances"] else None


def outbox(emulator: Running, admin: str, cid: str, journey_id: str) -> list[dict[str, Any]]:
    status, reply = emulator.http(
        "GET", f"/campaigns/outbox?customer_id={cid}&campaign_id={journey_id}", token=admin
    )
    assert status == 200, reply
    return list(reply["entries"])


def sent_after(emulator: Running, admin: str, cid: str, journey_id: str) -> list[dict[str, Any]]:
    """What the journey sent once its wait is over. Dispatch defers a message that falls in
    quiet hours (21:00-09:00 the customer's time) to the morning, so the clock moves on a few
    hours at a time until it went out."""
    wait_for(lambda: (instance(emulator, admin, journey_id, cid) or {}).get("state")
             == "completed", timeout=90)  # fmt: skip
    for _ in range(5):
        try:
            return list(wait_for(lambda: outbox(emulator, admin, cid, journey_id), timeout=20))
        except AssertionError:
            emulator.cli("clock", "advance", "4h")
    raise AssertionError(f"nothing sent: {report(emulator, admin, journey_id)}")


def report(emulator: Running, admin: str, journey_id: str) -> Any:
    return emulator.http("GET", f"/campaigns/journeys/{journey_id}/report", token=admin)[1]


def test_the_demo_loader_activates_the_seven_examples_once(emulator: Running) -> None:
    admin = emulator.token("admin")
    client = ApiClient(emulator.api, admin)
    assert load_journeys(client) == 7
    assert load_journeys(client) == 0  # seeding again loads nothing twice
    assert len(journeys_by_name(emulator, admin)) == 7


def test_abandoned_cart_two_hours_then_a_reminder(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["abandoned cart 2 h -> reminder"]
    cid = customer(emulator, admin, "e2e-cart")
    buyer = customer(emulator, admin, "e2e-cart-buyer")
    for who in (cid, buyer):
        event(emulator, admin, who, "cart_added", 1)
        wait_for(partial(is_in, emulator, admin, journey_id, who, "waiting"), timeout=60)
    paid(emulator, admin, buyer, 1)  # within the two hours: the goal, no reminder
    wait_for(lambda: state_of(emulator, admin, journey_id, buyer) == "goal", timeout=60)
    emulator.cli("clock", "advance", "2h")
    sent = sent_after(emulator, admin, cid, journey_id)
    assert [(m["channel"], "#reminder#" in m["dispatch_key"]) for m in sent] == [("push", True)]
    assert outbox(emulator, admin, buyer, journey_id) == []


def test_seven_days_after_the_first_order_a_cross_sell(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["7 days after the first order -> cross-sell"]
    cid = customer(emulator, admin, "e2e-first")
    again = customer(emulator, admin, "e2e-first-again")
    for who in (cid, again):
        event(emulator, admin, who, "order_paid", 1)
        wait_for(partial(is_in, emulator, admin, journey_id, who, "waiting"), timeout=60)
        assert instance(emulator, admin, journey_id, who)["step"] == "wait_7d"  # type: ignore[index]
    paid(emulator, admin, again, 2)  # a second order: the exit rule, checked before the send
    emulator.cli("clock", "advance", "7d")
    sent = sent_after(emulator, admin, cid, journey_id)
    assert [(m["channel"], "#cross_sell#" in m["dispatch_key"]) for m in sent] == [("email", True)]
    wait_for(lambda: state_of(emulator, admin, journey_id, again) == "exited", timeout=60)
    assert outbox(emulator, admin, again, journey_id) == []


# ------------------------------------------------------------------ the other five examples
def person(
    emulator: Running, admin: str, key: str, purposes: tuple[str, ...], **attributes: Any
) -> str:
    """A customer outside the global control group, with an app and a mini-program identity
    (push and WeChat addresses), a phone (SMS), and consent to `purposes`."""
    policy = ContactPolicy()
    for n in range(50):
        body: dict[str, Any] = {
            "identities": [{"channel": "app", "external_id": f"{key}-{n}"},
                           {"channel": "mini_program", "external_id": f"openid-{key}-{n}"}],
            "attributes": {"name": "王五", "phone": f"+8613{abs(hash((key, n))) % 10**9:09d}",
                           **attributes},
        }  # fmt: skip
        status, reply = emulator.http("POST", "/customers", body, token=admin)
        assert status == 201, reply
        cid = str(reply["customer_id"])
        if not policy.in_global_control(cid):
            break
    for purpose in purposes:
        change = {"purpose": purpose, "granted": True, "source": "app"}
        status, reply = emulator.http("PUT", f"/customers/{cid}/consent", change, token=admin)
        assert status == 200, reply
    return cid


def delivered(
    emulator: Running, admin: str, cid: str, journey_id: str, want: int = 1
) -> list[dict[str, Any]]:
    """The journey's messages to the customer once `want` of them are in the outbox. Quiet
    hours (21:00-09:00 Shanghai) defer a message to the morning: the clock moves 2 h at a
    time until it went out."""
    for _ in range(8):
        try:
            found = wait_for(lambda: len(got := outbox(emulator, admin, cid, journey_id)) >= want
                             and got, timeout=15)  # fmt: skip
            return sorted(found, key=lambda m: m["sent_at"])
        except AssertionError:
            emulator.cli("clock", "advance", "2h")
    raise AssertionError(f"not sent: {report(emulator, admin, journey_id)}")


def emulator_now(emulator: Running) -> datetime:
    # `crm-local clock` prints whole seconds: up to a second behind, so an order "paid now"
    # could predate an entry made a moment ago and miss the goal. The next second never does
    # (and is well within intake's allowance for clocks ahead).
    return datetime.fromisoformat(emulator.cli("clock").split()[0]) + timedelta(seconds=1)


def profile(emulator: Running, admin: str, cid: str) -> dict[str, Any]:
    status, view = emulator.http("GET", f"/customers/{cid}", token=admin)
    assert status == 200, view
    return dict(view)


def paid(emulator: Running, admin: str, cid: str, n: int) -> None:
    """An order paid now (the emulator's time), folded into the profile before returning."""
    before = profile(emulator, admin, cid)["orders"]["order_count"]
    body = {"event_id": f"{cid}-paid-{n}", "type": "order_paid", "customer_id": cid,
            "order_id": f"{cid}-o{n}", "amount": "188.00",
            "occurred_at": emulator_now(emulator).isoformat().replace("+00:00", "Z")}  # fmt: skip
    status, reply = emulator.http("POST", "/events", {"events": [body]}, token=admin)
    assert status == 202, reply
    wait_for(lambda: profile(emulator, admin, cid)["orders"]["order_count"] > before, timeout=60)


def state_of(emulator: Running, admin: str, journey_id: str, cid: str) -> str | None:
    found = instance(emulator, admin, journey_id, cid)
    return None if found is None else str(found["state"])


def is_in(emulator: Running, admin: str, journey_id: str, cid: str, state: str) -> bool:
    return state_of(emulator, admin, journey_id, cid) == state


def step_of(message: dict[str, Any], *steps: str) -> str | None:
    """Which of the journey's send steps a message came from (its dispatch key names it)."""
    return next((s for s in steps if f"#{s}#" in message["dispatch_key"]), None)


def test_dormant_30_days_an_exclusive_coupon_then_a_reminder_unless_they_bought(
    emulator: Running,
) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["dormant 30 days -> exclusive coupon"]
    purposes = ("marketing_sms", "marketing_push")
    quiet, buyer = (person(emulator, admin, f"e2e-dormant-{k}", purposes) for k in ("q", "b"))
    for n, cid in enumerate((quiet, buyer)):
        paid(emulator, admin, cid, n)
    emulator.cli("clock", "advance", "31d")
    emulator.cli("fire", "crm-journeys-daily-dev")  # the morning scan, whatever time it is now
    for cid in (quiet, buyer):
        [coupon] = delivered(emulator, admin, cid, journey_id)
        assert (coupon["channel"], "#coupon#" in coupon["dispatch_key"]) == ("sms", True)
        assert "券码" in coupon["body"]  # the exclusive offer's code, issued for this message
        # The message is recorded before the step moves the instance on to its wait.
        wait_for(partial(is_in, emulator, admin, journey_id, cid, "waiting"), timeout=60)
    paid(emulator, admin, buyer, 9)  # the goal, checked before the next step: no reminder
    emulator.cli("clock", "advance", "3d")
    sent = delivered(emulator, admin, quiet, journey_id, want=2)
    assert [(m["channel"], step_of(m, "coupon", "reminder")) for m in sent] == [
        ("sms", "coupon"), ("push", "reminder")]  # fmt: skip
    wait_for(lambda: state_of(emulator, admin, journey_id, quiet) == "completed", timeout=60)
    wait_for(lambda: state_of(emulator, admin, journey_id, buyer) == "goal", timeout=60)
    assert [m["channel"] for m in outbox(emulator, admin, buyer, journey_id)] == ["sms"]


def test_birthday_month_a_tag_for_double_points_and_a_greeting_at_ten(
    emulator: Running,
) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["birthday month -> double points"]
    month = emulator_now(emulator).astimezone(ContactPolicy().zone).month
    cid = person(emulator, admin, "e2e-birthday", ("marketing_wechat",),
                 birthday=f"1990-{month:02d}-15")  # fmt: skip
    other = person(emulator, admin, "e2e-not-birthday", ("marketing_wechat",),
                   birthday=f"1990-{month % 12 + 1:02d}-15")  # fmt: skip
    emulator.cli("fire", "crm-journeys-daily-dev")
    wait_for(lambda: state_of(emulator, admin, journey_id, cid) == "waiting", timeout=60)
    daytime(emulator, 10)  # the wait ends at 10:00 their time (the shop's zone here)
    [greeting] = delivered(emulator, admin, cid, journey_id)
    assert (greeting["channel"], "#greeting#" in greeting["dispatch_key"]) == ("wechat", True)
    sent_at = datetime.fromisoformat(greeting["sent_at"]).astimezone(ContactPolicy().zone)
    assert sent_at.hour >= 10
    assert "birthday_double_points" in profile(emulator, admin, cid)["tags"]
    assert state_of(emulator, admin, journey_id, other) is None


def test_churn_warning_wins_back_half_and_holds_out_the_other_half(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["churn warning -> win-back (我们想念您)"]
    customers = [person(emulator, admin, f"e2e-churn-{k}", ("marketing_sms",)) for k in range(6)]
    for n, cid in enumerate(customers):
        paid(emulator, admin, cid, n)  # the condition step: at least one order
    # An exit: a customer tagged do_not_winback leaves at entry, whatever the split.
    spared = person(emulator, admin, "e2e-churn-spared", ("marketing_sms",))
    tag = {"add": [{"name": "do_not_winback"}]}
    assert emulator.http("POST", f"/customers/{spared}/tags", tag, token=admin)[0] == 200
    # What the segment run publishes when a customer enters the churn-risk tier.
    now = emulator_now(emulator).isoformat().replace("+00:00", "Z")
    entries = [{"Source": "crm", "DetailType": "CustomerSegmentChanged", "EventBusName": "crm-dev",
                "Detail": json.dumps({"customer_id": cid, "segment": "tier:churn_risk",
                                      "change": "entered", "occurred_at": now})}
               for cid in [*customers, spared]]  # fmt: skip
    assert emulator.aws("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    wait_for(lambda: state_of(emulator, admin, journey_id, spared) == "exited", timeout=90)
    done = {"completed", "goal", "exited"}
    wait_for(lambda: all(state_of(emulator, admin, journey_id, c) in done for c in customers),
             timeout=120)  # fmt: skip
    variant = {c: instance(emulator, admin, journey_id, c)["variant"] for c in customers}  # type: ignore[index]
    assert set(variant.values()) <= {"winback", "control"}
    # Each winback customer gets exactly the 我们想念您 SMS with its coupon; the control
    # half nothing (the split is a hash of the instance: six customers all but surely fill
    # both halves, and the assertions hold whichever way they fell).
    for cid in (c for c, v in variant.items() if v == "winback"):
        [message] = delivered(emulator, admin, cid, journey_id)
        assert (message["channel"], "#winback#" in message["dispatch_key"]) == ("sms", True)
        assert "券码" in message["body"]
    for cid in [*(c for c, v in variant.items() if v == "control"), spared]:
        assert outbox(emulator, admin, cid, journey_id) == []
    entered = report(emulator, admin, journey_id)["variants"]
    for name in set(variant.values()):
        assert entered[name]["entered"] >= sum(1 for v in variant.values() if v == name)


def test_a_refund_that_arrived_is_notified_at_once(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["after-sales refund arrived -> notify"]
    cid = person(emulator, admin, "e2e-refund", ())  # a service message needs no consent
    paid(emulator, admin, cid, 1)  # 先行赔付 is for an order the CRM knows
    status, case = emulator.http("POST", "/aftersales", {
        "kind": "refund", "order_id": f"{cid}-o1", "customer_id": cid,
        "reason": "not_as_described", "amount": "30.00", "sku": "SKU-E2E-2",
        "product_category": "tea", "note": "破损",
    }, token=admin)  # fmt: skip
    assert status == 201, case
    assert case["stage"] == "refunded"  # within the instant-refund limit: 先行赔付
    [notice] = delivered(emulator, admin, cid, journey_id)
    assert (notice["channel"], "#notify#" in notice["dispatch_key"]) == ("push", True)
    wait_for(lambda: state_of(emulator, admin, journey_id, cid) == "completed", timeout=60)


def test_an_escalated_complaint_gets_an_apology_coupon(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["escalated complaint -> apology coupon"]
    cid = person(emulator, admin, "e2e-apology", ())
    big = {"event_id": f"{cid}-big", "type": "order_paid", "customer_id": cid,
           "order_id": f"{cid}-big", "amount": "3999.00",
           "occurred_at": emulator_now(emulator).isoformat().replace("+00:00", "Z")}  # fmt: skip
    assert emulator.http("POST", "/events", {"events": [big]}, token=admin)[0] == 202
    wait_for(lambda: profile(emulator, admin, cid)["orders"]["order_count"] == 1, timeout=60)
    status, ticket = emulator.http("POST", "/tickets", {
        "customer_id": cid, "channel": "mini_program", "order_id": f"{cid}-big",
        "message": "衣服质量问题，客服也不理人，再不处理我就打12315投诉",
    }, token=emulator.token("customer", cid))  # fmt: skip
    assert status == 201, ticket
    assert ticket["view"] == "customer"  # the team's workings are internal
    status, ticket = emulator.http("GET", f"/tickets/{ticket['ticket_id']}", token=admin)
    assert ticket["escalation"]["escalated"] is True
    [apology] = delivered(emulator, admin, cid, journey_id)
    assert (apology["channel"], "#apology#" in apology["dispatch_key"]) == ("sms", True)
    assert "券码" in apology["body"]


# ------------------------------------------------------------------ a segment send
SEND_TEMPLATE = {"description": "e2e send", "channels": {"sms": {
    "zh": {"body": "{{ name }}，双十二见！退订：{{ unsubscribe_url }}"},
    "en": {"body": "Hi {{ name }}! Unsubscribe: {{ unsubscribe_url }}"}}}}  # fmt: skip


def daytime(emulator: Running, hour: int = 11) -> None:
    """Move the clock on to the next `hour`:00 in Shanghai: outside quiet hours."""
    local = emulator_now(emulator).astimezone(ContactPolicy().zone)
    target = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    emulator.cli("clock", "advance", f"{int((target - local).total_seconds() // 60) + 1}m")


def send_of(emulator: Running, admin: str, send_id: str) -> dict[str, Any]:
    status, body = emulator.http("GET", f"/campaigns/sends/{send_id}", token=admin)
    assert status == 200, body
    return dict(body)


def settled_total(emulator: Running, admin: str, members: list[str], send_id: str) -> int:
    """How many of the send's messages went out, once a chunk that was in flight when the send
    was paused has finished: the count holds still over three looks two seconds apart."""
    counts: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts.append(sum(len(outbox(emulator, admin, c, send_id)) for c in members))
        if len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3]:
            return counts[-1]
        time.sleep(2)
    raise AssertionError(f"the send's messages kept going out after the cancel: {counts}")


def test_a_segment_send_with_variants_and_a_holdout_previewed_sent_and_reported(
    emulator: Running,
) -> None:
    admin = emulator.token("admin")
    for template_id in ("e2e-send-a", "e2e-send-b"):
        status, reply = emulator.http("PUT", f"/campaigns/templates/{template_id}",
                                      SEND_TEMPLATE, token=admin)  # fmt: skip
        assert status == 200, reply
    rule = {"name": "e2e-send-vip", "rule": {"all": [{"has_tag": "e2e_send"}]}}
    assert emulator.http("POST", "/segments", rule, token=admin)[0] == 201
    consenting = [person(emulator, admin, f"e2e-send-{k}", ("marketing_sms",)) for k in range(16)]
    silent = [person(emulator, admin, f"e2e-send-no-{k}", ()) for k in range(4)]
    members = consenting + silent
    for cid in members:
        change = {"add": [{"name": "e2e_send"}]}
        status, reply = emulator.http("POST", f"/customers/{cid}/tags", change, token=admin)
        assert status == 200, reply

    def listed() -> bool:
        status, body = emulator.http("GET", "/segments/e2e-send-vip/members?limit=100",
                                     token=admin)  # fmt: skip
        return status == 200 and set(body["customer_ids"]) == set(members)

    wait_for(listed, timeout=90)
    daytime(emulator)
    body = {"name": "双十二 e2e", "segment": "e2e-send-vip", "channel": "sms",
            "template_id": "e2e-send-a", "holdout_percent": 25,
            "variants": [{"name": "A", "weight": 1},
                         {"name": "B", "weight": 1, "template_id": "e2e-send-b"}]}  # fmt: skip
    status, send = emulator.http("POST", "/campaigns/sends", body, token=admin)
    assert status == 201, send
    send_id = send["send_id"]

    status, preview = emulator.http("POST", f"/campaigns/sends/{send_id}/preview", token=admin)
    assert status == 200, preview
    assert preview["method"] == "exact"
    assert preview["segment_size"] == len(members)
    parts = ("audience", "holdout", "no_consent", "no_address", "global_control", "capped")
    assert sum(preview[p] for p in parts) == len(members)
    assert preview["audience"] <= len(consenting)
    assert preview["global_control"] == 0  # person() keeps out of the global control group

    status, started = emulator.http("POST", f"/campaigns/sends/{send_id}/actions",
                                    {"action": "start"}, token=admin)  # fmt: skip
    assert status == 200, started
    wait_for(lambda: send_of(emulator, admin, send_id)["status"] == "complete", timeout=120)
    got = {c: outbox(emulator, admin, c, send_id) for c in members}
    reached = {c for c, entries in got.items() if entries}
    assert all(len(entries) <= 1 for entries in got.values())  # never twice
    assert reached <= set(consenting)  # no consent, no message
    assert len(reached) == preview["audience"]  # the preview said how many
    for cid in reached:
        assert got[cid][0]["channel"] == "sms"

    status, report = emulator.http("GET", f"/campaigns/{send_id}/report", token=admin)
    assert status == 200, report
    variants = {v["variant"]: v for v in report["variants"]}
    assert set(variants) <= {"A", "B"}
    assert sum(v["sent"] for v in variants.values()) == len(reached)
    suppressed = preview["no_consent"] + preview["no_address"]
    assert sum(v["suppressed"] for v in variants.values()) == suppressed
    reasons = [
        r for v in variants.values() for r, n in v["suppressed_by"].items() for _ in range(n)
    ]
    assert sorted(reasons) == sorted(
        ["no_consent"] * preview["no_consent"] + ["no_address"] * preview["no_address"]
    )
    assert report["holdout"]["recipients"] == preview["holdout"]
    assert sum(v["recipients"] for v in variants.values()) + preview["holdout"] == len(members)
    by_variant = dict.fromkeys(variants, 0)
    for cid in reached:
        by_variant[str(step_of(got[cid][0], "A", "B"))] += 1
    assert by_variant == {name: v["sent"] for name, v in variants.items()}

    # A second send, paused as it starts and then cancelled. Pause and cancel take effect
    # between chunks: a chunk already being dispatched finishes (and may finish the send, which
    # then completes even though paused). Once the pages settle, nothing more goes out.
    status, second = emulator.http("POST", "/campaigns/sends", {**body, "name": "second"},
                                   token=admin)  # fmt: skip
    assert status == 201, second
    second_id = second["send_id"]
    act = f"/campaigns/sends/{second_id}/actions"
    assert emulator.http("POST", act, {"action": "start"}, token=admin)[0] == 200
    status, paused = emulator.http("POST", act, {"action": "pause"}, token=admin)
    if status == 200:  # caught while running: its pages park between chunks
        assert paused["status"] == "paused"
        status, cancelled = emulator.http("POST", act, {"action": "cancel"}, token=admin)
        if status == 409:  # the chunk in flight was the last: the send completed meanwhile
            assert send_of(emulator, admin, second_id)["status"] == "complete", cancelled
        else:
            assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
        before = settled_total(emulator, admin, members, second_id)
        emulator.cli("clock", "advance", "10m")
        time.sleep(5)
        assert sum(len(outbox(emulator, admin, c, second_id)) for c in members) == before
        assert send_of(emulator, admin, second_id)["status"] in {"cancelled", "complete"}
    else:  # it finished first: a finished send cannot be paused
        assert status == 409, paused
        assert send_of(emulator, admin, second_id)["status"] == "complete"
