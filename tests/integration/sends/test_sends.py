"""Segment sends end to end on moto: the API defines and starts a send, the send worker lists
the segment's members into pages and sends each page through dispatch, pause and cancel take
effect between chunks, a redelivered page sends nothing twice, variants and the holdout are
deterministic, a scheduled send starts when its timer fires."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from crm.campaigns.policy import ContactPolicy
from crm.campaigns.send_models import Variant
from crm.campaigns.sends import CHUNK, EXACT_PREVIEW, PAGE_SIZE, PREVIEW_SAMPLE, assign
from crm.composition import root
from crm_local.template import ROOT
from tests.integration.campaigns.conftest import TEMPLATE
from tests.integration.sends.conftest import Kit

SWEEP = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())
AB = [{"name": "A", "weight": 1}, {"name": "B", "weight": 3, "template_id": "t-2"}]


def ids(n: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}-{k:05d}" for k in range(n)]


def test_a_send_to_a_segment_fans_out_pages_dispatches_each_member_once_and_completes(
    kit: Kit,
) -> None:
    members = ids(1234)
    kit.members("rfm:champions", members)
    kit.dispatch.control = {"c-00007", "c-00011"}
    send = kit.create_send(variants=AB, holdout_percent=10)
    assert send["status"] == "draft"
    assert [v["template_id"] for v in send["variants"]] == ["t-1", "t-2"]
    started = kit.act(send["send_id"], "start")
    assert started.status == 200
    assert started.body["status"] == "running"

    listing = kit.tasks()
    assert [json.loads(m["Body"])["kind"] for m in listing] == ["list"]
    kit.deliver(listing)
    pages = kit.tasks()
    bodies = [json.loads(m["Body"]) for m in pages]
    assert sorted(b["page"] for b in bodies) == [0, 1, 2]  # 1,234 members, 500 a page
    assert {b["kind"] for b in bodies} == {"page"}
    kit.deliver(pages)
    assert kit.run() == 0

    done = kit.send(send["send_id"])
    assert done["status"] == "complete"
    assert done["progress"] == {"pages_listed": 3, "pages_done": 3, "listing_done": True,
                                "recipients": 1234}  # fmt: skip
    variants = [Variant(name="A", weight=1, template_id="t-1"),
                Variant(name="B", weight=3, template_id="t-2")]  # fmt: skip
    expected = {c: assign(send["send_id"], c, 10, variants) for c in members}
    treated = {c for c, (arm, _) in expected.items() if arm == "treatment"}
    asked = Counter(r.customer_id for r in kit.dispatch.requests)
    assert set(asked) == treated  # the holdout gets nothing
    assert set(asked.values()) == {1}  # each member once
    assert 0.06 < 1 - len(treated) / len(members) < 0.14  # ~10% held out
    for request in kit.dispatch.requests:
        assert request.variant == expected[request.customer_id][1]
        assert request.template_id == {"A": "t-1", "B": "t-2"}[request.variant]
        assert request.dispatch_key == (f"send#{send['send_id']}#{request.variant}#"
                                        f"{request.customer_id}#sms")  # fmt: skip
    share_b = sum(1 for c in treated if expected[c][1] == "B") / len(treated)
    assert 0.68 < share_b < 0.82  # weights 1:3

    report = kit.suite.call("GET", f"/campaigns/{send['send_id']}/report", role="analyst").body
    by_variant = {v["variant"]: v for v in report["variants"]}
    control = kit.dispatch.control & treated
    assert sum(v["sent"] for v in by_variant.values()) == len(treated) - len(control)
    # The global control group is its own arm, whichever arm the hash put its members in.
    held_control = kit.dispatch.control - treated
    assert report["holdout"]["recipients"] == len(members) - len(treated) - len(held_control)
    assert report["global_control"]["recipients"] == len(kit.dispatch.control)


def test_variants_and_holdout_are_deterministic_and_independent() -> None:
    variants = [Variant(name="A", weight=50, template_id="t"),
                Variant(name="B", weight=50, template_id="t")]  # fmt: skip
    first = [assign("s-1", c, 20, variants) for c in ids(2000)]
    assert first == [assign("s-1", c, 20, variants) for c in ids(2000)]
    other = [assign("s-2", c, 20, variants) for c in ids(2000)]
    assert first != other  # another send splits the customers afresh
    held = sum(1 for arm, _ in first if arm == "holdout") / 2000
    assert 0.17 < held < 0.23
    none_held = [assign("s-1", c, 0, variants) for c in ids(2000)]
    assert all(arm == "treatment" for arm, _ in none_held)
    # The variant of a member not held out does not depend on the holdout share.
    for (arm, variant), (_, unheld) in zip(first, none_held, strict=True):
        if arm == "treatment":
            assert variant == unheld


def test_a_redelivered_page_sends_nothing_twice(kit: Kit) -> None:
    kit.members("rfm:champions", ids(PAGE_SIZE + 40))
    send = kit.create_send()
    kit.act(send["send_id"], "start")
    kit.deliver(kit.tasks())  # the listing
    pages = kit.tasks()
    first = next(m for m in pages if json.loads(m["Body"])["page"] == 0)
    rest = [m for m in pages if m is not first]
    kit.dispatch.fail_after = 2 * CHUNK + 5  # the worker dies in the page's third chunk
    kit.deliver([first])
    assert len(kit.dispatch.provider_calls) == 2 * CHUNK + 5
    kit.deliver(rest)
    assert kit.run() == 1  # page 0 came back once and finished
    calls = Counter(kit.dispatch.provider_calls)
    assert len(calls) == PAGE_SIZE + 40
    assert set(calls.values()) == {1}
    # The third chunk's first five were asked again (dispatch answered their first outcome),
    # and the sixth, whose call crashed, asked twice.
    assert len(kit.dispatch.requests) == PAGE_SIZE + 40 + 6
    # A page SQS delivers again after it finished, and a listing delivered again, do nothing.
    kit.requeue(json.loads(first["Body"]))
    kit.requeue({"send_id": send["send_id"], "kind": "list", "page": 0})
    kit.run()
    assert len(kit.dispatch.requests) == PAGE_SIZE + 40 + 6
    report = kit.suite.call("GET", f"/campaigns/{send['send_id']}/report", role="analyst").body
    assert report["variants"][0]["recipients"] == PAGE_SIZE + 40  # counted once per member
    assert kit.send(send["send_id"])["status"] == "complete"


def test_pause_parks_pages_resume_sends_them_and_cancel_stops_the_rest(kit: Kit) -> None:
    kit.members("rfm:champions", ids(3 * PAGE_SIZE))
    send = kit.create_send()
    send_id = send["send_id"]
    kit.act(send_id, "start")
    kit.deliver(kit.tasks())
    pages = kit.tasks()
    kit.deliver(pages[:1])
    assert len(kit.dispatch.requests) == PAGE_SIZE
    paused = kit.act(send_id, "pause")
    assert paused.body["status"] == "paused"
    assert kit.act(send_id, "pause").status == 409
    kit.deliver(pages[1:])
    assert len(kit.dispatch.requests) == PAGE_SIZE  # parked, not sent
    assert kit.send(send_id)["progress"]["pages_done"] == 1
    resumed = kit.act(send_id, "resume")
    assert resumed.body["status"] == "running"
    kit.run()
    assert len(kit.dispatch.requests) == 3 * PAGE_SIZE
    assert kit.send(send_id)["status"] == "complete"
    assert kit.act(send_id, "cancel").status == 409  # complete: nothing to cancel

    other = kit.create_send(name="second")
    kit.act(other["send_id"], "start")
    kit.deliver(kit.tasks())
    pages = kit.tasks()
    kit.deliver(pages[:1])
    cancelled = kit.act(other["send_id"], "cancel")
    assert cancelled.body["status"] == "cancelled"
    kit.deliver(pages[1:])
    assert kit.run() == 0
    sent_for_other = [r for r in kit.dispatch.requests if r.source_id == other["send_id"]]
    assert len(sent_for_other) == PAGE_SIZE
    assert kit.send(other["send_id"])["status"] == "cancelled"
    assert kit.act(other["send_id"], "resume").status == 409

    # Cancelled while paused: the parked pages are cancelled too, none is left parked.
    third = kit.create_send(name="third")
    kit.act(third["send_id"], "start")
    kit.deliver(kit.tasks())
    pages = kit.tasks()
    kit.act(third["send_id"], "pause")
    kit.deliver(pages)
    assert root().send_store.parked_pages(third["send_id"]) == [0, 1, 2]
    assert kit.act(third["send_id"], "cancel").body["status"] == "cancelled"
    assert root().send_store.parked_pages(third["send_id"]) == []
    states = {root().send_store.page(third["send_id"], n)["state"] for n in range(3)}  # type: ignore[index]
    assert states == {"cancelled"}
    assert not [r for r in kit.dispatch.requests if r.source_id == third["send_id"]]


def test_a_scheduled_send_starts_when_its_timer_fires(kit: Kit) -> None:
    kit.members("rfm:champions", ids(30))
    at = kit.clock.now.replace(hour=12).isoformat()
    send = kit.create_send(send_at=at)
    out = kit.act(send["send_id"], "start")
    assert out.body["status"] == "scheduled"
    assert kit.tasks() == []
    kit.suite.invoke("TimerSweepFunction", SWEEP)
    kit.suite.drain("TimerShardFunction", "TimerSweepQueue")
    assert kit.suite.receive("SendTimersQueue") == []  # not due yet
    kit.clock.advance(hours=11, minutes=1)
    kit.suite.invoke("TimerSweepFunction", SWEEP)
    kit.suite.drain("TimerShardFunction", "TimerSweepQueue")
    assert kit.suite.drain(WORKER_FN, "SendTimersQueue") == 1
    assert kit.send(send["send_id"])["status"] == "running"
    kit.run()
    assert kit.send(send["send_id"])["status"] == "complete"
    assert len(kit.dispatch.requests) == 30


def test_a_scheduled_send_started_again_starts_now_and_once(kit: Kit) -> None:
    kit.members("rfm:champions", ids(7))
    send = kit.create_send(send_at=kit.clock.now.replace(hour=12).isoformat())
    assert kit.act(send["send_id"], "start").body["status"] == "scheduled"
    assert kit.act(send["send_id"], "start").body["status"] == "running"
    assert kit.act(send["send_id"], "start").status == 409
    kit.run()
    kit.clock.advance(hours=12)
    kit.suite.invoke("TimerSweepFunction", SWEEP)
    kit.suite.drain("TimerShardFunction", "TimerSweepQueue")
    kit.suite.drain(WORKER_FN, "SendTimersQueue")
    kit.run()
    assert kit.send(send["send_id"])["status"] == "complete"
    assert len(kit.dispatch.requests) == 7


def test_a_cancelled_scheduled_send_never_starts(kit: Kit) -> None:
    kit.members("rfm:champions", ids(5))
    send = kit.create_send(send_at=kit.clock.now.replace(hour=12).isoformat())
    kit.act(send["send_id"], "start")
    assert kit.act(send["send_id"], "cancel").body["status"] == "cancelled"
    kit.clock.advance(hours=12)
    kit.suite.invoke("TimerSweepFunction", SWEEP)
    kit.suite.drain("TimerShardFunction", "TimerSweepQueue")
    kit.suite.drain(WORKER_FN, "SendTimersQueue")
    assert kit.tasks() == []
    assert kit.dispatch.requests == []


def test_preview_is_exact_for_a_small_segment(live: Kit) -> None:
    """The real policy decides: consent, an address on the channel, the global control group
    (15% here), the caps."""
    kit = live
    stored = kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    stored["global_control_pct"] = 15
    assert kit.suite.call("PUT", "/campaigns/policy", stored, role="marketer").status == 200
    policy = ContactPolicy.model_validate(stored)
    customers = []
    for n in range(12):
        body: dict[str, Any] = {"identities": [{"channel": "app", "external_id": f"p-{n}"}]}
        if n < 6:  # a phone: SMS reaches them; 6 and 7 consent but have none
            body["attributes"] = {"phone": f"+86137{n:08d}"}
        customers.append(kit.suite.call("POST", "/customers", body).body["customer_id"])
    for cid in customers[:8]:
        change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
        assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    kit.members("rfm:champions", [*customers, "ghost-1"])
    send = kit.create_send(holdout_percent=0)
    out = kit.suite.call("POST", f"/campaigns/sends/{send['send_id']}/preview", role="analyst")
    assert out.status == 200, out.body
    # As dispatch decides: consent first (the 5 without it and the ghost are no_consent, in
    # the control group or not), then the control group, then an address.
    control = {c for c in customers[:8] if policy.in_global_control(c)}
    reached = set(customers[:6]) - control
    unreached = set(customers[6:8]) - control
    assert out.body["method"] == "exact"
    assert out.body["segment_size"] == 13
    assert out.body["global_control"] == len(control)
    assert out.body["audience"] == len(reached)
    assert out.body["audience_low"] == out.body["audience_high"] == len(reached)
    assert out.body["no_address"] == len(unreached)
    assert out.body["no_consent"] == 5


def test_preview_counts_each_member_as_the_send_then_reports_them(live: Kit) -> None:
    """Members without consent in the global control group were `global_control` in the
    preview and `no_consent` in the report (dispatch asks consent first): the preview now
    decides in dispatch's order, and its counts are the report's."""
    kit = live
    stored = kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    stored["global_control_pct"] = 15
    assert kit.suite.call("PUT", "/campaigns/policy", stored, role="marketer").status == 200
    policy = ContactPolicy.model_validate(stored)
    customers: list[str] = []
    consenting: set[str] = set()

    def refuses_in_control() -> bool:  # a treated member in the control group, no consent
        return any(c not in consenting and policy.in_global_control(c) for c in customers)

    while len(customers) < 40 or not refuses_in_control():
        n = len(customers)
        body: dict[str, Any] = {"identities": [{"channel": "app", "external_id": f"pr-{n}"}]}
        if n % 4 != 1:  # 1 in 4 consents without a phone
            body["attributes"] = {"phone": f"+86139{n:08d}"}
        cid = kit.suite.call("POST", "/customers", body).body["customer_id"]
        customers.append(cid)
        if n % 4 != 0:  # 1 in 4 never consents
            change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
            assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
            consenting.add(cid)
    kit.members("rfm:champions", [*customers, "ghost-1"])
    send = kit.create_send(holdout_percent=20)
    preview = kit.suite.call("POST", f"/campaigns/sends/{send['send_id']}/preview", role="analyst")
    assert preview.status == 200, preview.body
    assert preview.body["method"] == "exact"

    kit.act(send["send_id"], "start")
    kit.run()
    assert kit.send(send["send_id"])["status"] == "complete"
    report = kit.suite.call("GET", f"/campaigns/{send['send_id']}/report", role="analyst").body
    [variant] = report["variants"]
    refused = {"no_consent", "processing_restricted", "unknown_customer"}
    assert preview.body["audience"] == variant["sent"] > 0
    assert preview.body["holdout"] == report["holdout"]["recipients"] > 0
    assert preview.body["global_control"] == report["global_control"]["recipients"] > 0
    assert preview.body["no_consent"] == sum(
        n for reason, n in variant["suppressed_by"].items() if reason in refused
    )
    assert preview.body["no_address"] == variant["suppressed_by"].get("no_address", 0) > 0
    assert preview.body["capped"] == variant["capped"] == 0


def test_preview_counts_who_the_channel_cannot_reach_as_dispatch_then_suppresses_them(
    live: Kit,
) -> None:
    """A customer whose phone staff removed, then who consents to SMS: the preview leaves them
    out of the audience (`no_address`), and the send's report says why it sent nothing."""
    kit = live
    policy = ContactPolicy.model_validate(
        kit.suite.call("GET", "/campaigns/policy", role="marketer").body["policy"]
    )
    n, cid = 0, ""
    while not cid or policy.in_global_control(cid):  # outside the control group
        n += 1
        body = {"identities": [{"channel": "app", "external_id": f"gone-phone-{n}"}],
                "attributes": {"name": "王五", "phone": f"+86137{n:08d}"}}  # fmt: skip
        cid = kit.suite.call("POST", "/customers", body).body["customer_id"]
    got = kit.suite.call("GET", f"/customers/{cid}", role="marketer").body
    edit = {"version": got["version"], "attributes": {"phone": None}}
    out = kit.suite.call("PATCH", f"/customers/{cid}", edit, role="support_agent")
    assert out.status == 200, out.body
    change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
    assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    # For push, the same customer is reached: an `app` identity is push's address.
    change = {"purpose": "marketing_push", "granted": True, "source": "app"}
    assert kit.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    kit.members("rfm:champions", [cid])

    sms = kit.create_send(holdout_percent=0)
    out = kit.suite.call("POST", f"/campaigns/sends/{sms['send_id']}/preview", role="analyst")
    assert out.status == 200, out.body
    assert (out.body["audience"], out.body["no_address"], out.body["no_consent"]) == (0, 1, 0)
    push = kit.create_send(holdout_percent=0, channel="push")
    out = kit.suite.call("POST", f"/campaigns/sends/{push['send_id']}/preview", role="analyst")
    assert (out.body["audience"], out.body["no_address"]) == (1, 0)

    kit.act(sms["send_id"], "start")
    kit.run()
    assert kit.send(sms["send_id"])["status"] == "complete"
    out = kit.suite.call("GET", f"/campaigns/{sms['send_id']}/report", role="analyst")
    assert out.status == 200, out.body
    [variant] = out.body["variants"]
    assert (variant["sent"], variant["suppressed"]) == (0, 1)
    assert variant["suppressed_by"] == {"no_address": 1}
    assert variant["capped_by"] == {}


def test_preview_estimates_a_large_segment_with_its_interval(live: Kit) -> None:
    kit = live
    kit.members("rfm:champions", ids(EXACT_PREVIEW + 200))
    send = kit.create_send(holdout_percent=20)
    out = kit.suite.call("POST", f"/campaigns/sends/{send['send_id']}/preview", role="analyst")
    body: dict[str, Any] = out.body
    assert body["method"] == "estimate"
    assert body["sample_size"] == PREVIEW_SAMPLE
    assert body["segment_size"] == EXACT_PREVIEW + 1  # no run has sized it: what was read
    assert "lower bound" in body["detail"]
    assert body["audience"] == 0  # no profile has consent
    assert body["audience_low"] == 0
    assert 0 < body["audience_high"] < 20
    assert 0.10 < body["holdout"] / body["segment_size"] < 0.28
    assert 0 < body["global_control"] < body["segment_size"] * 0.12  # the policy's 5%
    assert "Wilson" in body["detail"]


def test_bad_sends_are_400s_and_unknown_ones_404s(kit: Kit) -> None:
    bad = {"name": "x", "segment": "rfm:nope", "channel": "sms", "template_id": "t"}
    out = kit.suite.call("POST", "/campaigns/sends", bad, role="marketer")
    assert out.status == 400
    assert "segment" in str(out.body)
    template = {**bad, "segment": "rfm:champions", "template_id": "nope"}
    out = kit.suite.call("POST", "/campaigns/sends", template, role="marketer")
    assert out.status == 400
    assert "no template nope" in out.body["error"]["message"]
    variant = {**template, "template_id": "t", "variants": [{"name": "A", "weight": 1,
                                                             "template_id": "gone"}]}  # fmt: skip
    assert kit.suite.call("POST", "/campaigns/sends", variant, role="marketer").status == 400
    coupon = {**bad, "segment": "rfm:champions", "coupon_offer_id": "none"}
    assert kit.suite.call("POST", "/campaigns/sends", coupon, role="marketer").status == 400
    # Caught when the send is defined, not as every message failing after it starts: a
    # channel the template has no body for, a coupon it prints that the send issues none of.
    sms_only = {"channels": {"sms": TEMPLATE["channels"]["sms"]}}
    assert kit.suite.call("PUT", "/campaigns/templates/sms-only", sms_only).status == 200
    email = {**template, "template_id": "sms-only", "channel": "email"}
    out = kit.suite.call("POST", "/campaigns/sends", email, role="marketer")
    assert out.status == 400, out.body
    assert out.body["error"]["fields"] == [
        {"field": "template_id", "message": "template sms-only has no email body"}
    ]
    printed = {"channels": {"sms": {locale: {"body": "券 {{ coupon.code }}"}
                                    for locale in ("zh", "en")}}}  # fmt: skip
    assert kit.suite.call("PUT", "/campaigns/templates/with-coupon", printed).status == 200
    no_offer = {
        **template,
        "template_id": "t",
        "variants": [
            {"name": "A", "weight": 1},
            {"name": "B", "weight": 1, "template_id": "with-coupon"},
        ],
    }
    out = kit.suite.call("POST", "/campaigns/sends", no_offer, role="marketer")
    assert out.status == 400, out.body
    assert out.body["error"]["fields"] == [{
        "field": "variants.1.template_id",
        "message": "template with-coupon prints a coupon and no coupon_offer_id issues one",
    }]  # fmt: skip
    twice = {**bad, "segment": "rfm:champions",
             "variants": [{"name": "A", "weight": 1}, {"name": "A", "weight": 2}]}  # fmt: skip
    assert kit.suite.call("POST", "/campaigns/sends", twice, role="marketer").status == 400
    assert kit.suite.call("GET", "/campaigns/sends/nope", role="analyst").status == 404
    assert kit.act("nope", "start").status == 404
    listed = kit.suite.call("GET", "/campaigns/sends", role="analyst", query={"limit": "5"})
    assert listed.status == 200
    assert listed.body["sends"] == []


WORKER_FN = "SendWorkerFunction"
