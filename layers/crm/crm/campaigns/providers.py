"""Where messages go: one interface, a provider per channel (docs/campaigns.md, "providers").

A provider either takes the message (its id back), refuses it for good (`ProviderRefused`:
bad address, unknown device; the message is `failed`), or provably does not take it now
(`ProviderBusy`: throttled, unavailable; the message may be sent by a later run). Anything else
(a timeout after the request left) leaves it unknown whether it was sent: dispatch then never
calls a provider again for that message unless the provider is `idempotent` (a second call
with the same key sends nothing).

Message bodies carry PII (a masked name, a coupon code): nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from crm.campaigns.dispatch_store import DispatchStore
from crm.campaigns.models import MessageChannel
from crm.clock import Clock, iso
from crm.models import Output


class OutgoingMessage(Output):
    dispatch_key: str
    digest: str = ""
    customer_id: str
    campaign_id: str
    channel: MessageChannel
    address: str | None = None  # the real address; None for providers that need none
    shown_address: str | None = None  # masked, for the outbox
    locale: str
    subject: str | None
    body: str


class ProviderRefused(Exception):
    """The provider will never take this message (its text names why, never the address)."""


class ProviderBusy(Exception):
    """The provider did not take the message now (throttled, unavailable): not sent."""


class Provider(Protocol):
    @property
    def idempotent(self) -> bool:
        """A second send with the same dispatch key sends nothing (and answers the first id)."""
        ...

    @property
    def needs_address(self) -> bool:
        """It needs the customer's real address (the service opens the sealed field)."""
        ...

    def send(self, message: OutgoingMessage) -> str: ...


# How long the recording provider keeps what it "sent": local/dev only, and the bodies hold
# masked names and coupon codes.
OUTBOX_RETENTION = timedelta(days=7)


class RecordingProvider:
    """Sends nothing: writes each message to the CampaignsTable (`OUTBOX#<customer_id>`), so
    `GET /campaigns/outbox` and `crm-local outbox` show what would have been sent. Used locally
    and wherever no real provider is configured. Idempotent: the entry is put only if absent."""

    idempotent = True
    needs_address = False

    def __init__(self, store: DispatchStore, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def send(self, message: OutgoingMessage) -> str:
        now = self._clock()
        entry = {
            "message_id": f"rec-{message.digest[:24]}",
            "dispatch_key": message.dispatch_key,
            "customer_id": message.customer_id,
            "campaign_id": message.campaign_id,
            "channel": str(message.channel),
            "to": message.shown_address,
            "locale": message.locale,
            "subject": message.subject,
            "body": message.body,
            "sent_at": iso(now),
        }
        stored = self._store.outbox_put(
            message.customer_id, message.digest, entry, now + OUTBOX_RETENTION
        )
        return str(stored["message_id"])


class Providers:
    """The provider of each channel (the recording one where none is configured)."""

    def __init__(
        self, by_channel: dict[MessageChannel, Provider], fallback: Provider | None = None
    ) -> None:
        self._by_channel, self._fallback = by_channel, fallback

    def for_channel(self, channel: MessageChannel) -> Provider:
        provider = self._by_channel.get(channel, self._fallback)
        if provider is None:
            raise ProviderRefused(f"no provider for channel {channel}")
        return provider


def recording_only(store: DispatchStore, clock: Clock) -> Providers:
    return Providers({}, RecordingProvider(store, clock))


Sleep = Callable[[float], Any]
Now = Callable[[], datetime]


def configured_providers(store: DispatchStore, clock: Clock, sleep: Sleep) -> Providers:
    """The providers the environment configures; the recording one for every other channel
    (and for all of them locally, where nothing is configured)."""
    return recording_only(store, clock)
