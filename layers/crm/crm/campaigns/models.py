"""Campaigns' shapes shared by its parts: what journeys and segment sends hand to dispatch,
and what dispatch answers. API shapes of each part live beside it (`journey_models.py`, ...)."""

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field

from crm.models import Output, Record, UtcDatetime


class MessageChannel(StrEnum):
    """Where a message goes. Each has its consent purpose and its provider."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WECHAT = "wechat"  # official-account / mini-program subscription messages
    WEBHOOK = "webhook"  # a signed POST to the shop's own endpoint, for anything else


class DispatchRequest(Record):
    """One message to one customer, as a journey step or a segment send asks for it.

    Its `dispatch_key` names the message: dispatch sends at most one message per key, however
    often the request is redelivered, retried or raced."""

    source: Literal["journey", "send"]
    source_id: str = Field(description="the journey instance id, or the segment send id")
    step: str = Field(description="the journey step id, or the send's name for its message")
    campaign_id: str = Field(description="the journey or send the report counts it under")
    variant: str | None = Field(default=None, description="the A/B variant, if split")
    customer_id: str
    channel: MessageChannel
    template_id: str
    coupon_offer_id: str | None = Field(
        default=None, description="issue one code of this offer with the message"
    )
    priority: int = Field(default=0, description="higher wins a scarce slot under a cap")
    on_capped: Literal["drop", "defer", "skip"] = "drop"
    max_defer_s: int | None = Field(default=None, ge=0, description="defer at most this long")
    transactional: bool = Field(
        default=False, description="service messages: exempt from caps, recorded all the same"
    )
    requested_at: UtcDatetime

    @property
    def dispatch_key(self) -> str:
        return f"{self.source}#{self.source_id}#{self.step}#{self.customer_id}#{self.channel}"


DispatchStatus = Literal[
    "sent",  # the provider took it (now, or before: a redelivery answers the first outcome)
    "capped",  # a frequency cap refused it and the step said drop or skip
    "deferred",  # quiet hours or a cap: try again at retry_at
    "suppressed",  # no consent for the channel's purpose, or no address on the channel
    "failed",  # the provider refused it for good (bad address, template error)
]


class DispatchOutcome(Output):
    dispatch_key: str
    status: DispatchStatus
    reason: str | None = None
    retry_at: UtcDatetime | None = None
    message_id: str | None = Field(default=None, description="the provider's id for it")


# ---- campaigns: D (dispatch) -- shapes journeys and sends read back from dispatch


class IssuedCoupon(Output):
    """One coupon code issued to one customer (by `CouponIssuer`, for one dispatch key)."""

    code: str
    offer_id: str
    description: str
    expires_at: UtcDatetime | None = None


class DispatchCounts(Output):
    """What dispatch did for one campaign (and variant): counted once per message.

    `deferred` counts the messages waiting now: a deferred message that is later sent,
    capped or suppressed moves from `deferred` to that count."""

    sent: int = 0
    capped: int = 0
    deferred: int = 0
    suppressed: int = 0
    failed: int = 0
    cost_micros: int = Field(default=0, description="what the providers charge, in 1e-6 units")
    suppressed_by: dict[str, int] = Field(
        default={},
        description="`suppressed` by reason: no_consent, no_address (the channel does not reach "
        "the customer), global_control, processing_restricted, unknown_customer, "
        "channel_takes_no_marketing",
    )
    capped_by: dict[str, int] = Field(
        default={},
        description="`capped` by reason: daily_cap, weekly_cap, rolling_cap, or <why it was "
        "deferred>_past_max_defer (quiet_hours_past_max_defer, ...)",
    )


class Touch(Output):
    """The last marketing message a customer received on one channel (for attribution)."""

    campaign_id: str
    variant: str | None = None
    channel: MessageChannel
    dispatch_key: str
    sent_at: UtcDatetime


# The final outcomes a report breaks down by reason, and what a reason may look like as a
# counter's name (dispatch's own tokens; anything else is counted as `other`).
BROKEN_DOWN: tuple[DispatchStatus, ...] = ("suppressed", "capped")
_REASON_TOKEN = re.compile(r"[a-z0-9_]{1,48}")


def reason_counter(status: str, reason: str | None) -> str | None:
    """The counter a final outcome adds 1 to beside its status's ('suppressed.no_address'),
    or None for a status not broken down by reason (sent, deferred, failed: a failure's reason
    is free text, a provider's or a template's)."""
    if status not in BROKEN_DOWN:
        return None
    token = reason if reason is not None and _REASON_TOKEN.fullmatch(reason) else "other"
    return f"{status}.{token}"
