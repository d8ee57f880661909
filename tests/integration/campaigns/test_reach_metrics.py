"""Dispatch counts every message it settles, once, as the metrics CampaignReachRateAlarm reads
(EMF lines on stdout, with the fixed `service: crm-campaigns` dimension)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from crm.campaigns import reach
from crm.campaigns.models import MessageChannel
from crm.campaigns.providers import OutgoingMessage, ProviderRefused, Providers
from crm.composition import root
from tests.integration.campaigns.conftest import Shop
from tests.integration.campaigns.test_dispatch import _sweep_event


def emitted(capsys: pytest.CaptureFixture[str]) -> Counter[str]:
    """The campaign metrics printed since the last call, summed by name."""
    counts: Counter[str] = Counter()
    for line in capsys.readouterr().out.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        blob = json.loads(line)
        if blob.get("service") != reach.SERVICE:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Crm"
            assert directive["Dimensions"] == [["service"]]
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return counts


class Refusing:
    idempotent = False
    needs_address = False

    def send(self, message: OutgoingMessage) -> str:
        raise ProviderRefused("no such device")


def test_each_outcome_counts_once_under_its_reason(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = root().campaign_dispatch
    capsys.readouterr()
    sent = shop.customer("marketing_sms")
    assert dispatcher.dispatch(shop.request(sent)).status == "sent"
    assert dispatcher.dispatch(shop.request(sent)).status == "sent"  # redelivered: no count
    no_consent = shop.customer("marketing_email")
    assert dispatcher.dispatch(shop.request(no_consent)).reason == "no_consent"
    capped = dispatcher.dispatch(shop.request(sent, step="s-2"))  # the daily SMS cap
    assert capped.status == "capped"
    assert emitted(capsys) == {
        reach.ATTEMPTED: 3, reach.SENT: 1,
        "CampaignMessagesNoConsent": 1, "CampaignMessagesCapped": 1,
    }  # fmt: skip

    refused = shop.customer("marketing_push")
    monkeypatch.setattr(dispatcher, "_providers", Providers({MessageChannel.PUSH: Refusing()}))
    out = dispatcher.dispatch(shop.request(refused, channel="push"))
    assert out.status == "failed"
    assert emitted(capsys) == {reach.ATTEMPTED: 1, "CampaignMessagesProviderFailed": 1}


def test_a_quiet_hours_deferral_is_counted_as_deferred_and_attempted_when_it_goes(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    shop.clock.now = shop.clock.now.replace(hour=14)  # 22:00 in Shanghai
    capsys.readouterr()
    out = dispatcher.dispatch(shop.request(cid))
    assert out.reason == "quiet_hours"
    dispatcher.dispatch(shop.request(cid))  # redelivered while deferred: nothing more
    assert emitted(capsys) == {"CampaignMessagesQuietHoursDeferred": 1}
    assert out.retry_at is not None
    shop.clock.now = out.retry_at + timedelta(seconds=1)
    shop.suite.invoke("TimerSweepFunction", _sweep_event())
    shop.suite.drain("TimerShardFunction", "TimerSweepQueue", rounds=50)
    assert shop.suite.drain("CampaignDispatchFunction", "CampaignDispatchQueue") == 1
    assert len(shop.outbox(cid)) == 1
    assert emitted(capsys) == {reach.ATTEMPTED: 1, reach.SENT: 1}


@pytest.mark.parametrize(
    ("status", "reason", "provider", "names"),
    [
        ("sent", None, False, [reach.ATTEMPTED, reach.SENT]),
        ("suppressed", "global_control", False, [reach.ATTEMPTED, "CampaignMessagesControlGroup"]),
        ("suppressed", "no_address", False, [reach.ATTEMPTED, "CampaignMessagesUnreachable"]),
        ("failed", "unknown_after_interruption", False,
         [reach.ATTEMPTED, "CampaignMessagesProviderFailed"]),
        ("failed", "unknown template t", False, [reach.ATTEMPTED, "CampaignMessagesFailed"]),
        ("deferred", "weekly_cap", False, ["CampaignMessagesCapDeferred"]),
    ],
)  # fmt: skip
def test_the_mapping_of_outcomes_to_metrics(
    status: str, reason: str | None, provider: bool, names: list[str]
) -> None:
    assert reach.reach_metrics(status, reason, provider) == names
