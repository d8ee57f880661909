"""The Dispatcher: sends each message at most once, within the contact-pressure policy.

`dispatch(request)`, for journeys and segment sends (in-process), and `wake(wake_up)`, for the
`dispatch` timer kind's consumer (a deferred message whose time has come). Both run the same
steps (docs/campaigns.md):

1. Read the ledger item `MSG#<hash of the dispatch key>` and the customer's caps (one read).
   A final outcome is answered as it stands; a deferred message is answered `deferred`; a
   message another worker is sending is waited for; one whose sender died is resumed.
2. Decide: the profile (consent for the channel's purpose, the address), the global control
   group, quiet hours, the caps. Marketing only: transactional messages skip all of it and are
   recorded all the same.
3. Render the template (coupon, recommendations, masked name), before anything is claimed: a
   template that fails makes this message `failed`, and costs no slot.
4. Claim: one TransactWriteItems puts the ledger item (state `sending`, a lease) if it is absent
   (or still in the state it was read in) and writes the caps item under a condition on the
   version read, so no two workers can both send, nor both take the last slot.
5. Call the provider with the dispatch key as idempotency key, then record `sent` (ledger,
   counters), under a condition on the lease. A crash between 4 and 5 leaves `sending`: after
   the lease, a re-run calls the provider again only if the provider is idempotent (it then
   answers the first id); otherwise it cannot tell whether the message went out, and records
   `failed` (`unknown_after_interruption`) rather than risk a second message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from crm.auth import Caller, Permission, Role
from crm.campaigns.addresses import shown_address
from crm.campaigns.dispatch import CouponIssuer
from crm.campaigns.dispatch_store import (
    FINAL_STATES,
    CapsMoved,
    DispatchStore,
    MessageRecord,
    Prior,
)
from crm.campaigns.facts import message_fact
from crm.campaigns.models import (
    DispatchCounts,
    DispatchOutcome,
    DispatchRequest,
    DispatchStatus,
    MessageChannel,
    Touch,
    reason_counter,
)
from crm.campaigns.policy import (
    CapState,
    ContactPolicy,
    StoredPolicy,
    check_caps,
    jitter,
    quiet_until,
    release,
    reserve,
)
from crm.campaigns.providers import (
    OutgoingMessage,
    Provider,
    ProviderBusy,
    ProviderRefused,
    Providers,
    TokenBucket,
)
from crm.campaigns.reach import emit_reach
from crm.campaigns.records import dispatch_digest
from crm.campaigns.templates import (
    CouponValue,
    Locale,
    RenderFailed,
    Templates,
    render,
    variables_used,
)
from crm.clock import Clock, IdFactory
from crm.errors import CrmError, NotFound, Unavailable
from crm.lake import FactLog
from crm.profiles import ProfileRecord, ProfileService
from crm.segments import SegmentCatalog
from crm.timers import Timers, WakeUp

logger = Logger(child=True)

TIMER_KIND = "dispatch"
# How long a claim holds a message for its sender: longer than any provider call and the
# Lambda timeouts of the callers, after which a re-run may take the message over.
LEASE = timedelta(minutes=5)
# A worker that finds the message being sent by another waits this long for its outcome.
IN_FLIGHT_WAIT_S = 5.0
IN_FLIGHT_POLL_S = 0.05
# Attempts when the caps keep moving under us (the customer's other messages at that moment).
CAP_ATTEMPTS = 5
POLICY_CACHE_S = 60.0

Recommender = Callable[[str], list[dict[str, Any]]]
# Counts one recorded outcome (status, reason, whether the provider failed it): reach.py.
ReachCounter = Callable[[str, str | None, bool], None]

# Who dispatch is when it asks segments for a customer's recommendations.
_DISPATCH_CALLER = Caller(subject="campaign-dispatch", roles=frozenset({Role.ANALYST}))


class DispatchInProgress(Unavailable):
    """Another worker is sending this message now: ask again in a moment."""


def _locale(record: ProfileRecord, policy: ContactPolicy) -> Locale:
    locale = str(record.attributes.get("locale") or "")[:2]
    return "en" if locale == "en" else "zh" if locale == "zh" else policy.default_locale


class DispatchService:
    def __init__(
        self,
        store: DispatchStore,
        profiles: ProfileService,
        templates: Templates,
        providers: Providers,
        timers: Timers,
        clock: Clock,
        ids: IdFactory,
        coupons: CouponIssuer | None = None,
        recommender: Recommender | None = None,
        unsubscribe_token: Callable[[str, str], str] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        reach: ReachCounter = emit_reach,
        facts: FactLog | None = None,  # analytics: message outcomes to the lake
    ) -> None:
        self._facts = facts
        self._store, self._profiles, self._templates = store, profiles, templates
        self._providers, self._timers, self._clock, self._ids = providers, timers, clock, ids
        self._coupons, self._recommender, self._sleep = coupons, recommender, sleep
        self._unsubscribe_token = unsubscribe_token
        self._reach = reach
        self._policy: tuple[float, ContactPolicy] | None = None
        # Each channel's rate (policy) per worker: this process's share of the provider's limit.
        self._buckets = TokenBucket(sleep=sleep)

    # ------------------------------------------------------------------ the policy
    def policy(self) -> ContactPolicy:
        """The stored policy (or the defaults), as read within the last minute."""
        now = time.monotonic()
        if self._policy is None or now - self._policy[0] >= POLICY_CACHE_S:
            self._policy = (now, self._store.policy_or_default())
        return self._policy[1]

    def read_policy(self, caller: Caller) -> StoredPolicy:
        caller.require(Permission.READ_CAMPAIGNS)
        return self._store.policy() or StoredPolicy(policy=ContactPolicy())

    def save_policy(self, caller: Caller, policy: ContactPolicy) -> StoredPolicy:
        caller.require(Permission.EDIT_CAMPAIGNS)
        stored = StoredPolicy(policy=policy, updated_at=self._clock(), updated_by=caller.subject)
        self._store.save_policy(stored)
        self._policy = None
        return stored

    # ------------------------------------------------------------------ what S reads
    def campaign_counts(self, campaign_id: str) -> dict[str, DispatchCounts]:
        return self._store.campaign_counts(campaign_id)

    def last_touches(self, customer_id: str) -> list[Touch]:
        return self._store.last_touches(customer_id)

    def outbox(
        self, caller: Caller, customer_id: str, campaign_id: str | None
    ) -> list[dict[str, Any]]:
        caller.require(Permission.READ_CAMPAIGNS)
        entries = self._store.outbox(customer_id)
        if campaign_id is not None:
            entries = [e for e in entries if e.get("campaign_id") == campaign_id]
        return sorted(entries, key=lambda e: str(e.get("sent_at")))

    # ------------------------------------------------------------------ dispatching
    def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
        return self._run(request, None)

    def wake(self, wake: WakeUp) -> DispatchOutcome | None:
        """A deferred message's time has come: dispatch it again (consent, caps and quiet
        hours checked anew). None: the wake-up is stale (the message moved on)."""
        digest = wake.payload.get("msg", "")
        attempt = int(wake.payload.get("attempt", "0"))
        message = self._store.message(digest)
        if message is None or message.state != "deferred" or message.attempt != attempt:
            self._timers.claim(wake)
            return None
        return self._run(message.request, wake)

    def _run(self, request: DispatchRequest, wake: WakeUp | None) -> DispatchOutcome:
        digest = dispatch_digest(request.dispatch_key)
        waited = 0.0
        for _ in range(CAP_ATTEMPTS):
            while True:
                message, caps = self._store.read(digest, request.customer_id)
                if message is None or message.state != "sending":
                    break
                if message.lease_until is not None and message.lease_until <= self._clock():
                    break  # its sender died: resume below
                if waited >= IN_FLIGHT_WAIT_S:
                    raise DispatchInProgress(f"message {digest} is being sent by another worker")
                self._sleep(IN_FLIGHT_POLL_S)
                waited += IN_FLIGHT_POLL_S
            try:
                outcome = self._step(request, digest, message, caps, wake)
            except CapsMoved:
                continue
            if outcome is not None:
                return outcome
        raise Unavailable(f"message {digest} kept changing; try again")

    def _step(
        self,
        request: DispatchRequest,
        digest: str,
        message: MessageRecord | None,
        caps: CapState,
        wake: WakeUp | None,
    ) -> DispatchOutcome | None:
        """One attempt; None: the message moved meanwhile, read it again."""
        if message is not None:
            if message.state in FINAL_STATES and message.outcome is not None:
                if wake is not None:
                    self._timers.claim(wake)
                return message.outcome
            if message.state == "deferred":
                current = (
                    wake is not None and int(wake.payload.get("attempt", "0")) == message.attempt
                )
                if not current:
                    if wake is not None:
                        self._timers.claim(wake)
                    else:  # a redelivered request: make sure its timer is there
                        self._set_timer(message)
                    assert message.outcome is not None
                    return message.outcome
            if message.state in ("sending", "unsent"):
                return self._resume(message)
        return self._decide(request, digest, message, caps, wake)

    def _decide(
        self,
        request: DispatchRequest,
        digest: str,
        message: MessageRecord | None,
        caps: CapState,
        wake: WakeUp | None,
    ) -> DispatchOutcome | None:
        now = self._clock()
        policy = self.policy()
        prior = Prior("deferred", message.attempt) if message is not None else None
        waiting = {"deferred": -1} if prior is not None else {}
        extra = [self._timers.claim_operation(wake)] if wake is not None else []
        attempt = message.attempt if message is not None else 0

        def final(status: DispatchStatus, reason: str | None) -> DispatchOutcome | None:
            return self._final(request, digest, status, reason, prior, waiting, extra, attempt)

        try:
            record = self._profiles.load(request.customer_id)
        except NotFound:
            return final("suppressed", "unknown_customer")
        if record.customer_id != request.customer_id:
            # Merged into another profile since the request was made: the survivor's caps
            # count (one more read, for merged customers only).
            caps = self._store.read(digest, record.customer_id)[1]
        channel = policy.channel(request.channel)
        if not request.transactional:
            if channel.purpose is None:
                return final("suppressed", "channel_takes_no_marketing")
            if record.restricted:  # a privacy request restricted processing
                return final("suppressed", "processing_restricted")
            consent = record.consent.get(channel.purpose)
            if consent is None or not consent.granted:
                return final("suppressed", "no_consent")
            if policy.in_global_control(request.customer_id):
                return final("suppressed", "global_control")
        if shown_address(record, request.channel) is None:
            return final("suppressed", "no_address")
        new_caps = None
        # Days, weeks and quiet hours are the customer's own (the profile's zone, else the shop's).
        zone = policy.zone_for(record.attributes.get("time_zone"))
        if not request.transactional:
            quiet = quiet_until(policy, now, zone)
            if quiet is not None:
                return self._defer(request, digest, message, quiet, "quiet_hours", prior, extra)
            check = check_caps(policy, caps, request.channel, request.priority, now, zone)
            if not check.allowed:
                if request.on_capped != "defer" or check.free_at is None:
                    return final("capped", check.reason)
                free_at = quiet_until(policy, check.free_at, zone) or check.free_at
                return self._defer(request, digest, message, free_at, check.reason or "capped",
                                   prior, extra)  # fmt: skip
            new_caps = reserve(policy, caps, request.channel, now, zone)
        provider = self._providers.for_channel(request.channel)
        composed = self._compose(request, digest, record, policy, provider)
        if isinstance(composed, str):
            return final("failed", composed)
        claimed = MessageRecord(
            digest=digest, state="sending", request=request, attempt=attempt,
            lease=self._ids(), lease_until=now + LEASE, cost_micros=channel.cost_micros,
            slot_at=now if new_caps is not None else None, slot_zone=zone.key, updated_at=now,
        )  # fmt: skip
        if not self._store.claim(claimed, prior, new_caps, waiting, extra, record.customer_id):
            return None
        return self._send(claimed, composed, provider)

    def _compose(
        self,
        request: DispatchRequest,
        digest: str,
        record: ProfileRecord,
        policy: ContactPolicy,
        provider: Provider,
    ) -> OutgoingMessage | str:
        """The message as the provider takes it, or why it cannot be made (the reason)."""
        stored = self._templates.load(request.template_id)
        if stored is None:
            return f"unknown template {request.template_id}"
        used = variables_used(stored.template, request.channel)
        values: dict[str, Any] = {
            "name": record.masked.get("name", ""),
            "unsubscribe_url": self._unsubscribe_url(record.customer_id, request, policy),
            "coupon": None,
            "products": [],
        }
        if "products" in used and self._recommender is not None:
            try:
                values["products"] = self._recommender(record.customer_id)
            except Exception as exc:  # recommendations are a nicety: the message goes without
                logger.warning("no recommendations", extra={"error": type(exc).__name__})
        # A coupon is issued only for a message that shows it: a send's variant whose template
        # prints none took codes, and the offer's budget, for nothing.
        if request.coupon_offer_id is not None and "coupon" in used:
            if self._coupons is None:
                return "coupons are not available: no coupon issuer is configured"
            try:
                coupon = self._coupons.issue(
                    request.coupon_offer_id, request.customer_id, request.dispatch_key
                )
            except CrmError as exc:  # the issuer's own reason (an ended offer, ...)
                return f"coupon not issued: {exc}"[:300]
            except Exception as exc:  # one customer's coupon never stops the others
                return f"coupon not issued: {type(exc).__name__}"
            expires = coupon.expires_at.isoformat() if coupon.expires_at else None
            values["coupon"] = CouponValue(coupon.code, coupon.description, expires)
        try:
            rendered = render(stored.template, request.channel,
                              _locale(record, policy), values)  # fmt: skip
        except RenderFailed as exc:
            return str(exc)[:300]
        address = None
        if provider.needs_address:
            address = self._address(record, request.channel)
            if address is None:
                return "no address on the channel"
        return OutgoingMessage(
            dispatch_key=request.dispatch_key, digest=digest, customer_id=record.customer_id,
            campaign_id=request.campaign_id, channel=request.channel, address=address,
            shown_address=shown_address(record, request.channel), locale=rendered.locale,
            subject=rendered.subject, body=rendered.body,
        )  # fmt: skip

    def _unsubscribe_url(
        self, customer_id: str, request: DispatchRequest, policy: ContactPolicy
    ) -> str:
        """The shop's unsubscribe page, with what withdraws this channel's consent: the customer,
        the purpose and a keyed hash of the two (so a link cannot be forged for another)."""
        purpose = policy.channel(request.channel).purpose or "marketing_push"
        url = f"{policy.unsubscribe_url}?c={customer_id}&p={purpose}"
        if self._unsubscribe_token is not None:
            url += f"&t={self._unsubscribe_token(customer_id, purpose)}"
        return url

    def _address(self, record: ProfileRecord, channel: MessageChannel) -> str | None:
        if channel in (MessageChannel.EMAIL, MessageChannel.SMS):
            field = "email" if channel is MessageChannel.EMAIL else "phone"
            if field not in record.sealed:
                return None
            return self._profiles.codec().open_all(record).get(field)
        return shown_address(record, channel)

    def _send(
        self, claimed: MessageRecord, message: OutgoingMessage, provider: Provider
    ) -> DispatchOutcome | None:
        request = claimed.request
        holding = Prior("sending", lease=claimed.lease)
        if getattr(provider, "rate_limited", True):
            self._buckets.take(
                str(request.channel), self.policy().channel(request.channel).rate_per_s
            )
        try:
            message_id = provider.send(message)
        except ProviderRefused as exc:
            refused = self._finish(claimed, holding, "failed", str(exc)[:300], None,
                                   provider_failure=True)  # fmt: skip
            if refused is not None:  # recorded by us (the lease holder): give the slot back once
                self._release_slot(claimed, message.customer_id)
            return refused
        except ProviderBusy:
            # Provably not sent: the next run (the caller's retry) may send it.
            unsent = claimed.model_copy(update={"state": "unsent", "updated_at": self._clock()})
            self._store.record(unsent, holding, {})
            raise Unavailable(f"the {request.channel} provider is busy; try again") from None
        outcome = self._finish(claimed, holding, "sent", None, message_id)
        if outcome is not None and outcome.status == "sent" and not request.transactional:
            self._store.touch(message.customer_id, Touch(
                campaign_id=request.campaign_id, variant=request.variant,
                channel=request.channel, dispatch_key=request.dispatch_key,
                sent_at=claimed.updated_at,
            ))  # fmt: skip
        return outcome

    def _finish(
        self,
        claimed: MessageRecord,
        holding: Prior,
        status: DispatchStatus,
        reason: str | None,
        message_id: str | None,
        provider_failure: bool = False,
    ) -> DispatchOutcome | None:
        outcome = DispatchOutcome(dispatch_key=claimed.request.dispatch_key, status=status,
                                  reason=reason, message_id=message_id)  # fmt: skip
        done = claimed.model_copy(update={
            "state": status, "outcome": outcome, "lease": None, "lease_until": None,
            "updated_at": self._clock(),
        })  # fmt: skip
        stats: dict[str, int] = {status: 1}
        if (why := reason_counter(status, reason)) is not None:
            stats[why] = 1
        if status == "sent":
            stats["cost_micros"] = claimed.cost_micros
        if not self._store.record(done, holding, stats):
            return None  # taken over after our lease ran out: its outcome stands
        self._reach(status, reason, provider_failure)
        if self._facts is not None:  # analytics: best effort, never fails the message
            self._facts.write("campaign_facts", message_fact(done))
        return outcome

    def _release_slot(self, claimed: MessageRecord, owner: str) -> None:
        """Give back the slot a message took under the caps when the provider refused it for
        good: it never reached the customer, so the retry or another message may. A versioned
        update of `CAP#`, read again when another message moved it meanwhile. A crash before it
        leaves the slot taken (conservative: never more messages than the caps allow)."""
        if claimed.slot_at is None:
            return  # transactional: it took no slot
        policy = self.policy()
        for _ in range(CAP_ATTEMPTS):
            freed = release(policy, self._store.caps(owner), claimed.request.channel,
                            claimed.slot_at, policy.zone_for(claimed.slot_zone))  # fmt: skip
            if freed is None or self._store.put_caps(owner, freed, self._clock()):
                return
        logger.warning("cap slot not released: the caps kept moving")

    def _resume(self, message: MessageRecord) -> DispatchOutcome | None:
        """Take over a message whose sender died (lease over) or that provably was not sent."""
        now = self._clock()
        policy = self.policy()
        provider = self._providers.for_channel(message.request.channel)
        taken = message.model_copy(update={
            "state": "sending", "lease": self._ids(), "lease_until": now + LEASE, "updated_at": now,
        })  # fmt: skip
        if not self._store.record(taken, Prior(message.state, lease=message.lease), {}):
            return None
        holding = Prior("sending", lease=taken.lease)
        if message.state == "sending" and not provider.idempotent:
            # It may have gone out: at most once wins over at least once.
            return self._finish(taken, holding, "failed", "unknown_after_interruption", None)
        try:
            record = self._profiles.load(message.request.customer_id)
        except NotFound:
            return self._finish(taken, holding, "suppressed", "unknown_customer", None)
        composed = self._compose(message.request, message.digest, record, policy, provider)
        if isinstance(composed, str):
            return self._finish(taken, holding, "failed", composed, None)
        return self._send(taken, composed, provider)

    def _defer(
        self,
        request: DispatchRequest,
        digest: str,
        message: MessageRecord | None,
        until: datetime,
        reason: str,
        prior: Prior | None,
        extra: Sequence[dict[str, Any]],
    ) -> DispatchOutcome | None:
        policy = self.policy()
        attempt = (message.attempt if message is not None else 0) + 1
        retry_at = until + jitter(f"{request.dispatch_key}#{attempt}", policy.quiet_jitter_s)
        if request.max_defer_s is not None and retry_at > request.requested_at + timedelta(
            seconds=request.max_defer_s
        ):
            waiting = {"deferred": -1} if prior is not None else {}
            return self._final(request, digest, "capped", f"{reason}_past_max_defer", prior,
                               waiting, extra, attempt - 1)  # fmt: skip
        outcome = DispatchOutcome(dispatch_key=request.dispatch_key, status="deferred",
                                  reason=reason, retry_at=retry_at)  # fmt: skip
        deferred = MessageRecord(digest=digest, state="deferred", request=request, attempt=attempt,
                                 outcome=outcome, updated_at=self._clock())  # fmt: skip
        stats = {} if prior is not None else {"deferred": 1}  # still one waiting message
        if not self._store.record(deferred, prior, stats, extra):
            return None
        if prior is None:  # a message deferred again is still the one deferral
            self._reach("deferred", reason, False)
        self._set_timer(deferred)
        return outcome

    def _set_timer(self, message: MessageRecord) -> None:
        assert message.outcome is not None
        assert message.outcome.retry_at is not None
        self._timers.set(
            TIMER_KIND, f"{message.digest}.{message.attempt}", message.outcome.retry_at,
            {"msg": message.digest, "attempt": str(message.attempt)},
            message.request.customer_id,  # privacy: an erasure finds it by index
        )  # fmt: skip

    def _final(
        self,
        request: DispatchRequest,
        digest: str,
        status: DispatchStatus,
        reason: str | None,
        prior: Prior | None,
        waiting: Mapping[str, int],
        extra: Sequence[dict[str, Any]],
        attempt: int,
    ) -> DispatchOutcome | None:
        outcome = DispatchOutcome(dispatch_key=request.dispatch_key, status=status, reason=reason)
        record = MessageRecord(digest=digest, state=status, request=request, attempt=attempt,
                               outcome=outcome, updated_at=self._clock())  # fmt: skip
        stats = {**waiting}
        stats[status] = stats.get(status, 0) + 1
        if (why := reason_counter(status, reason)) is not None:
            stats[why] = 1  # the report's breakdown of the status by reason
        if not self._store.record(record, prior, stats, extra):
            return None
        self._reach(status, reason, False)
        if self._facts is not None:  # analytics: best effort, never fails the message
            self._facts.write("campaign_facts", message_fact(record))
        return outcome


def recommendations_from(segments: Callable[[], SegmentCatalog]) -> Recommender:
    """Segments' co-purchase recommendations for a customer, as templates show them (the
    catalog is built on first use: most templates show none)."""

    def recommend(customer_id: str) -> list[dict[str, Any]]:
        found = segments().recommendations(_DISPATCH_CALLER, customer_id, 3)
        return [
            {"product": r.product, "category": r.category, "reason": r.reason}
            for r in found.recommendations
        ]

    return recommend
