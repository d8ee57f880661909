"""Dispatch through the composition root against moto: policy, claim, exactly once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from crm.campaigns.dispatch_service import LEASE
from crm.campaigns.models import DispatchOutcome, MessageChannel
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


def _sweep_event() -> dict[str, Any]:
    import json

    from crm_local.template import ROOT

    data: dict[str, Any] = json.loads((ROOT / "events" / "schedule_timers_sweep.json").read_text())
    return data
