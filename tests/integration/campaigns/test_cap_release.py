"""A message the provider refused for good gives its slot under the caps back (versioned CAP#
update), so the retry or another message can reach the customer; one that may have gone out
keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from crm.campaigns.dispatch_service import LEASE
from crm.campaigns.models import MessageChannel
from crm.campaigns.providers import OutgoingMessage, ProviderRefused, Providers
from crm.composition import root
from tests.integration.campaigns.conftest import Shop


class Flaky:
    """Refuses the first `refusals` messages for good, then takes them."""

    idempotent = False
    needs_address = False

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.sent: list[str] = []

    def send(self, message: OutgoingMessage) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            raise ProviderRefused("invalid number")
        self.sent.append(message.dispatch_key)
        return f"p-{len(self.sent)}"


def use(monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    providers = Providers({MessageChannel.SMS: provider})
    monkeypatch.setattr(root().campaign_dispatch, "_providers", providers)


def test_a_refused_message_gives_its_slot_back_for_the_next_one(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    provider = Flaky(refusals=1)
    use(monkeypatch, provider)
    refused = dispatcher.dispatch(shop.request(cid, step="a"))
    assert (refused.status, refused.reason) == ("failed", "invalid number")
    caps = shop.caps(cid)
    # Claimed (version 1), then given back (version 2): nothing counts.
    assert caps["version"] == 2
    assert sum(caps["weeks"].values()) == 0
    assert sum(n for day in caps["days"].values() for n in day.values()) == 0
    assert caps["recent"] == []
    # The daily SMS cap is 1: the next message still reaches the customer ...
    later = dispatcher.dispatch(shop.request(cid, step="b"))
    assert later.status == "sent"
    assert provider.sent == [shop.request(cid, step="b").dispatch_key]
    # ... and takes the day's one slot, as it should.
    third = dispatcher.dispatch(shop.request(cid, step="c"))
    assert (third.status, third.reason) == ("capped", "daily_cap")
    # A redelivered refused request answers its outcome and gives nothing back twice.
    assert dispatcher.dispatch(shop.request(cid, step="a")) == refused
    assert sum(shop.caps(cid)["weeks"].values()) == 1
    counts = dispatcher.campaign_counts("camp-1")["-"]
    assert (counts.sent, counts.failed, counts.capped) == (1, 1, 1)


def test_the_release_waits_for_a_message_that_moved_the_caps_meanwhile(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another message of the customer takes a slot between the refused message's claim and
    its release: the release reads the caps again and keeps the other message's slot."""
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms", "marketing_email")
    other = shop.request(cid, step="other", channel="email")
    recording = dispatcher._providers

    class RacingRefusal:
        idempotent = False
        needs_address = False

        def send(self, message: OutgoingMessage) -> str:
            monkeypatch.setattr(dispatcher, "_providers", recording)
            assert dispatcher.dispatch(other).status == "sent"
            raise ProviderRefused("unknown device")

    use(monkeypatch, RacingRefusal())
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "failed"
    caps = shop.caps(cid)
    assert caps["version"] == 3  # the refused claim, the other message, the release
    assert sum(caps["weeks"].values()) == 1
    assert [day.get("email", 0) for day in caps["days"].values()] == [1]
    assert [day.get("sms", 0) for day in caps["days"].values()] == [0]
    assert len(caps["recent"]) == 1


class Crashing(Exception):
    pass


def test_a_message_that_may_have_gone_out_keeps_its_slot(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    provider = Flaky(refusals=0)
    use(monkeypatch, provider)
    original = dispatcher._finish
    monkeypatch.setattr(dispatcher, "_finish", lambda *a, **k: (_ for _ in ()).throw(Crashing()))
    with pytest.raises(Crashing):
        dispatcher.dispatch(shop.request(cid))
    monkeypatch.setattr(dispatcher, "_finish", original)
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    outcome = dispatcher.dispatch(shop.request(cid))
    assert outcome.reason == "unknown_after_interruption"
    assert sum(shop.caps(cid)["weeks"].values()) == 1


def test_a_transactional_refusal_touches_no_caps(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = root().campaign_dispatch
    cid = shop.customer("marketing_sms")
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    use(monkeypatch, Flaky(refusals=1))
    receipt = dispatcher.dispatch(shop.request(cid, step="r", transactional=True))
    assert receipt.status == "failed"
    caps = shop.caps(cid)
    assert (caps["version"], sum(caps["weeks"].values())) == (1, 1)
