"""Dispatch through the composition root against moto: policy, claim, exactly once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import boto3
import pytest

from crm.campaigns.dispatch_service import LEASE
from crm.campaigns.models import DispatchOutcome, MessageChannel
from crm.campaigns.policy import ContactPolicy
from crm.campaigns.providers import OutgoingMessage, Providers
from crm.composition import Crm, Settings, reset, root
from tests.integration.campaigns.conftest import Shop


def test_a_message_is_sent_once_and_recorded(shop: Shop) -> None:
    cid = shop.customer("marketing_sms")
    request = shop.request(cid)
    first = root().campaign_dispatch.dispatch(request)
    assert first.status == "sent", first
    assert first.message_id
    again = root().campaign_dispatch.dispatch(request)
    assert again == first
    [entry] = shop.outbox(cid)
    assert entry["body"].startswith("张*，欢迎")
    assert entry["to"] == "138****0001" or entry["to"].startswith("138")
    counts = root().campaign_dispatch.campaign_counts("camp-1")
    assert counts["-"].sent == 1


def sent_count(shop: Shop, cid: str) -> int:
    return sum(shop.caps(cid).get("weeks", {}).values())


def test_a_redelivered_request_and_a_retried_step_answer_the_first_outcome(shop: Shop) -> None:
    cid = shop.customer("marketing_sms")
    first = root().campaign_dispatch.dispatch(shop.request(cid))
    # The step is retried an hour later: a new request time, the same message.
    shop.clock.advance(hours=1)
    retried = root().campaign_dispatch.dispatch(shop.request(cid))
    assert retried == first
    assert len(shop.outbox(cid)) == 1
    assert sent_count(shop, cid) == 1
    assert root().campaign_dispatch.campaign_counts("camp-1")["-"].sent == 1


def test_two_workers_on_the_same_request_send_one_message(shop: Shop, atomic_moto: None) -> None:
    reset(Crm(Settings.from_env(), clock=shop.clock, sleep=time.sleep))
    cid = shop.customer("marketing_sms")
    request = shop.request(cid)
    dispatcher = root().campaign_dispatch
    outcomes: list[DispatchOutcome] = []
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        outcomes.append(dispatcher.dispatch(request))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 4
    assert {o.status for o in outcomes} == {"sent"}
    assert len({o.message_id for o in outcomes}) == 1
    assert len(shop.outbox(cid)) == 1
    assert sent_count(shop, cid) == 1
    assert dispatcher.campaign_counts("camp-1")["-"].sent == 1


class Crashing(Exception):
    pass


def test_a_crash_after_the_provider_call_resumes_without_a_second_message(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = shop.customer("marketing_sms")
    request = shop.request(cid)
    dispatcher = root().campaign_dispatch
    original = dispatcher._finish

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crashing("the Lambda timed out after the provider took the message")

    monkeypatch.setattr(dispatcher, "_finish", crash)
    with pytest.raises(Crashing):
        dispatcher.dispatch(request)
    monkeypatch.setattr(dispatcher, "_finish", original)
    assert len(shop.outbox(cid)) == 1  # the provider took it
    # Redelivered while the lease holds: another worker may still be sending it.
    with pytest.raises(Exception, match="being sent"):
        dispatcher.dispatch(request)
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    outcome = dispatcher.dispatch(request)
    assert outcome.status == "sent"
    [entry] = shop.outbox(cid)
    assert outcome.message_id == entry["message_id"]
    assert sent_count(shop, cid) == 1
    assert dispatcher.campaign_counts("camp-1")["-"].sent == 1


class OnceOnly:
    """A provider that cannot tell whether it sent a message (SES, SNS, WeChat)."""

    idempotent = False
    needs_address = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, message: OutgoingMessage) -> str:
        self.calls.append(message.dispatch_key)
        return f"p-{len(self.calls)}"


def test_a_crash_with_a_provider_that_cannot_dedupe_never_sends_twice(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = shop.customer("marketing_sms")
    request = shop.request(cid)
    dispatcher = root().campaign_dispatch
    provider = OnceOnly()
    monkeypatch.setattr(dispatcher, "_providers", Providers({MessageChannel.SMS: provider}))
    original = dispatcher._finish
    monkeypatch.setattr(dispatcher, "_finish", lambda *a, **k: (_ for _ in ()).throw(Crashing()))
    with pytest.raises(Crashing):
        dispatcher.dispatch(request)
    monkeypatch.setattr(dispatcher, "_finish", original)
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    outcome = dispatcher.dispatch(request)
    assert outcome.status == "failed"
    assert outcome.reason == "unknown_after_interruption"
    assert provider.calls == [request.dispatch_key]
    assert dispatcher.dispatch(request) == outcome
    assert provider.calls == [request.dispatch_key]
    assert sent_count(shop, cid) == 1  # the slot stays taken: it may have gone out


def test_consent_control_group_and_transactional(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    no_consent = shop.customer("marketing_email")
    out = dispatcher.dispatch(shop.request(no_consent))
    assert (out.status, out.reason) == ("suppressed", "no_consent")
    # Transactional messages need no marketing consent and count against no cap.
    service = dispatcher.dispatch(shop.request(no_consent, step="s-2", transactional=True))
    assert service.status == "sent"
    assert sent_count(shop, no_consent) == 0
    policy = dispatcher.policy()
    n = 0
    while True:
        n += 1
        cid = f"probe-{n}"
        if policy.in_global_control(cid):
            break
    # A control-group customer (by the same deterministic hash) gets no marketing.
    control = shop.customer("marketing_sms")
    assert not policy.in_global_control(control)
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.suppressed, counts.sent) == (1, 1)
    assert counts.suppressed_by == {"no_consent": 1}
    share = sum(policy.in_global_control(f"c-{i}") for i in range(20000)) / 20000
    assert 0.04 < share < 0.06


def test_the_daily_cap_caps_skips_or_defers(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms", "marketing_email")
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    capped = dispatcher.dispatch(shop.request(cid, step="b", on_capped="skip"))
    assert (capped.status, capped.reason) == ("capped", "daily_cap")
    # Another channel has its own daily cap; the week's cap is across channels.
    assert dispatcher.dispatch(shop.request(cid, step="c", channel="email")).status == "sent"
    deferred = dispatcher.dispatch(shop.request(cid, step="d", on_capped="defer"))
    assert deferred.status == "deferred"
    assert deferred.retry_at is not None
    # Two of the week's three are used, the third is kept for high priority: next Monday in
    # Shanghai, after quiet hours end at 09:00, within the jitter.
    local = deferred.retry_at.astimezone(dispatcher.policy().zone)
    assert local.date().isoformat() == "2026-11-30"
    assert 9 * 3600 <= local.hour * 3600 + local.minute * 60 + local.second <= 9 * 3600 + 1800
    assert dispatcher.dispatch(shop.request(cid, step="d", on_capped="defer")) == deferred
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.capped, counts.deferred) == (2, 1, 1)
    assert counts.capped_by == {"daily_cap": 1}  # the deferral is no cap's outcome yet
    assert counts.suppressed_by == {}


def test_quiet_hours_defer_and_the_timer_redispatches_rechecking_consent(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    other = shop.customer("marketing_sms")
    shop.clock.now = shop.clock.now.replace(hour=14)  # 22:00 in Shanghai
    out = dispatcher.dispatch(shop.request(cid))
    gone = dispatcher.dispatch(shop.request(other))
    assert out.status == gone.status == "deferred"
    assert out.reason == "quiet_hours"
    assert shop.outbox(cid) == []
    # The other customer withdraws consent meanwhile.
    change = {"purpose": "marketing_sms", "granted": False, "source": "app"}
    assert shop.suite.call("PUT", f"/customers/{other}/consent", change).status == 200
    assert out.retry_at is not None
    assert gone.retry_at is not None
    shop.clock.now = max(out.retry_at, gone.retry_at) + timedelta(seconds=1)
    shop.suite.invoke("TimerSweepFunction", _sweep_event())
    shop.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
    assert shop.suite.drain("CampaignDispatchFunction", "CampaignDispatchQueue") == 2
    later = dispatcher.dispatch(shop.request(cid))
    assert later.status == "sent"
    assert len(shop.outbox(cid)) == 1
    withdrawn = dispatcher.dispatch(shop.request(other))
    assert (withdrawn.status, withdrawn.reason) == ("suppressed", "no_consent")
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.suppressed, counts.deferred) == (1, 1, 0)
    # The deferred message's final outcome is counted by its reason, once.
    assert counts.suppressed_by == {"no_consent": 1}


def _sweep_event() -> dict[str, Any]:
    import json

    from crm_local.template import ROOT

    data: dict[str, Any] = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())
    return data


def test_priority_takes_the_reserved_slot_and_max_defer_bounds_a_wait(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms", "marketing_email", "marketing_push")
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    shop.clock.advance(days=2, hours=1)  # out of the 48-hour window, the same week
    assert dispatcher.dispatch(shop.request(cid, step="b", channel="email")).status == "sent"
    routine = dispatcher.dispatch(shop.request(cid, step="c", channel="push"))
    assert (routine.status, routine.reason) == ("capped", "weekly_cap")
    # A high-priority journey may take the week's last slot (the rolling window allows it:
    # the first message left it).
    urgent = dispatcher.dispatch(shop.request(cid, step="d", channel="push", priority=80))
    assert urgent.status == "sent"
    # Deferring to next Monday would wait longer than the step allows.
    short = dispatcher.dispatch(shop.request(cid, step="e", channel="webhook", priority=80,
                                             on_capped="defer", max_defer_s=3600))  # fmt: skip
    assert (short.status, short.reason) == ("capped", "weekly_cap_past_max_defer")
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.capped, counts.deferred) == (3, 2, 0)
    assert counts.capped_by == {"weekly_cap": 1, "weekly_cap_past_max_defer": 1}


def test_transactional_messages_ignore_quiet_hours_and_caps(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    shop.clock.now = shop.clock.now.replace(hour=15)  # 23:00 in Shanghai
    receipt = dispatcher.dispatch(shop.request(cid, step="receipt", transactional=True))
    assert receipt.status == "sent"
    assert [e["body"] for e in shop.outbox(cid)][1].startswith("张*")
    # Recorded (ledger, counters) but neither counted under the caps nor a touch.
    assert sent_count(shop, cid) == 1
    assert [t.dispatch_key for t in dispatcher.last_touches(cid)] == [
        shop.request(cid, step="a").dispatch_key
    ]
    assert dispatcher.campaign_counts("camp-1")["-"].sent == 2


def test_last_touches_keep_the_newest_per_channel_and_counts_split_by_variant(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms", "marketing_email")
    dispatcher.dispatch(shop.request(cid, campaign_id="c-a", variant="A"))
    shop.clock.advance(days=2, hours=1)  # past the rolling window; high priority for the week
    urgent = {"priority": 80, "campaign_id": "c-b"}
    assert (
        dispatcher.dispatch(shop.request(cid, step="s-2", variant="B", **urgent)).status == "sent"
    )
    assert (
        dispatcher.dispatch(shop.request(cid, step="s-3", channel="email", **urgent)).status
        == "sent"
    )
    touches = {t.channel: t for t in dispatcher.last_touches(cid)}
    assert (touches[MessageChannel.SMS].campaign_id, touches[MessageChannel.SMS].variant) == (
        "c-b", "B")  # fmt: skip
    assert touches[MessageChannel.SMS].sent_at == shop.clock.now
    assert touches[MessageChannel.EMAIL].variant is None
    counts = dispatcher.campaign_counts("c-b")
    assert (counts["B"].sent, counts["-"].sent, counts["B"].cost_micros) == (1, 1, 20_000)
    assert dispatcher.campaign_counts("c-a")["A"].sent == 1
    # The counters are spread over write shards: one campaign, many partitions.
    many = [shop.customer("marketing_sms") for _ in range(6)]
    for other in many:
        dispatcher.dispatch(shop.request(other, campaign_id="c-c"))
    shards = {i["PK"]["S"] for i in shop.items("STATS#c-c#")}
    assert len(shards) > 1
    assert dispatcher.campaign_counts("c-c")["-"].sent == 6


def test_a_duplicate_wake_up_sends_nothing_more(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    shop.clock.now = shop.clock.now.replace(hour=14)  # 22:00 in Shanghai
    out = dispatcher.dispatch(shop.request(cid))
    assert out.retry_at is not None
    shop.clock.now = out.retry_at + timedelta(seconds=1)
    shop.suite.invoke("TimerSweepFunction", _sweep_event())
    shop.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
    [wake] = shop.suite.receive("CampaignDispatchQueue")
    # SQS delivers it twice: the first dispatches, the second finds the message moved on.
    shop.suite.deliver("CampaignDispatchFunction", "CampaignDispatchQueue", [wake])
    shop.suite.deliver("CampaignDispatchFunction", "CampaignDispatchQueue", [wake])
    assert len(shop.outbox(cid)) == 1
    assert dispatcher.dispatch(shop.request(cid)).status == "sent"
    assert sent_count(shop, cid) == 1
    # A body that is no wake-up fails alone and goes back to the queue (its DLQ after five).
    boto3.client("sqs").send_message(
        QueueUrl=shop.suite.queue_url("CampaignDispatchQueue"), MessageBody="{}"
    )
    poison = shop.suite.receive("CampaignDispatchQueue")
    shop.suite.deliver("CampaignDispatchFunction", "CampaignDispatchQueue", poison)
    assert [m["Body"] for m in shop.suite.receive("CampaignDispatchQueue")] == ["{}"]


def test_a_merged_customer_is_reached_through_the_survivor_under_its_caps(shop: Shop) -> None:
    survivor = shop.customer("marketing_sms")
    source = shop.customer()  # no consent of its own
    merged = shop.suite.call("POST", f"/customers/{survivor}/merge",
                             {"source_customer_id": source}, role="support_manager")  # fmt: skip
    assert merged.status == 200, merged.body
    dispatcher = root().campaign_dispatch
    # A request made for the merged-away id: the survivor's consent and caps count.
    out = dispatcher.dispatch(shop.request(source, step="a"))
    assert out.status == "sent"
    assert sent_count(shop, survivor) == 1
    assert shop.caps(source) == {}
    # Its outbox entry and its touch (for attribution) are the survivor's.
    assert [e["dispatch_key"] for e in shop.outbox(survivor)] == [out.dispatch_key]
    assert [t.dispatch_key for t in dispatcher.last_touches(survivor)] == [out.dispatch_key]
    capped = dispatcher.dispatch(shop.request(survivor, step="b"))
    assert (capped.status, capped.reason) == ("capped", "daily_cap")


def _fire_due(shop: Shop) -> int:
    """The timer sweep as AWS runs it, then the dispatch consumer on what it queued."""
    shop.suite.invoke("TimerSweepFunction", _sweep_event())
    shop.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
    return shop.suite.drain("CampaignDispatchFunction", "CampaignDispatchQueue")


def test_a_message_still_capped_when_it_wakes_is_deferred_again(shop: Shop) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    first = dispatcher.dispatch(shop.request(cid, step="b", on_capped="defer"))
    assert (first.status, first.reason) == ("deferred", "daily_cap")
    assert first.retry_at is not None
    # Wednesday 09:00 in Shanghai, before b's jittered time: an urgent message takes the day.
    shop.clock.now = first.retry_at.replace(hour=1, minute=0, second=0, microsecond=0)
    assert dispatcher.dispatch(shop.request(cid, step="c", priority=80)).status == "sent"
    shop.clock.now = first.retry_at + timedelta(seconds=1)
    assert _fire_due(shop) == 1
    again = dispatcher.dispatch(shop.request(cid, step="b", on_capped="defer"))
    assert again.status == "deferred"
    assert again.retry_at is not None
    assert again.retry_at > first.retry_at
    assert root().timers.get("dispatch", f"{_digest(shop, cid, 'b')}.2") is not None
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.deferred) == (2, 1)
    # When that time comes, a slot is free: sent, and no longer counted as waiting.
    shop.clock.now = again.retry_at + timedelta(seconds=1)
    assert _fire_due(shop) == 1
    done = dispatcher.dispatch(shop.request(cid, step="b", on_capped="defer"))
    assert done.status == "sent"
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.deferred) == (3, 0)
    assert len(shop.outbox(cid)) == 3


def _digest(shop: Shop, cid: str, step: str) -> str:
    from crm.campaigns.records import dispatch_digest

    return dispatch_digest(shop.request(cid, step=step).dispatch_key)


def test_a_consenting_customer_the_channel_does_not_reach_is_suppressed_no_address(
    shop: Shop,
) -> None:
    """Push goes to an `app` identity: a customer known by the mini-program only consents to
    push in vain; the counts say why (addresses.shown_address decides, for dispatch and the
    preview alike)."""
    dispatcher = root().campaign_dispatch
    policy = ContactPolicy()
    n, cid = 0, ""
    while not cid or policy.in_global_control(cid):
        n += 1
        body = {"identities": [{"channel": "mini_program", "external_id": f"oMini-{n}"}]}
        cid = shop.suite.call("POST", "/customers", body).body["customer_id"]
    change = {"purpose": "marketing_push", "granted": True, "source": "mini_program"}
    assert shop.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    out = dispatcher.dispatch(shop.request(cid, channel="push", campaign_id="camp-addr"))
    assert (out.status, out.reason) == ("suppressed", "no_address")
    assert shop.outbox(cid) == []
    counts = dispatcher.campaign_counts("camp-addr")["-"]
    assert (counts.sent, counts.suppressed) == (0, 1)
    assert counts.suppressed_by == {"no_address": 1}
    # Asked again (a redelivery): the first outcome, counted once.
    assert dispatcher.dispatch(shop.request(cid, channel="push", campaign_id="camp-addr")) == out
    assert dispatcher.campaign_counts("camp-addr")["-"].suppressed_by == {"no_address": 1}
