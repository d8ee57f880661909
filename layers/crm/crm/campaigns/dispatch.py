"""What journeys and segment sends call to send one message: the contract dispatch keeps.

The contact-pressure policy (consent, caps, quiet hours), the exactly-once claim and the
providers sit behind it; callers hand over a request and act on the outcome (a journey moves
on, waits until `retry_at`, or records the cap)."""

from __future__ import annotations

from typing import Protocol

from crm.campaigns.models import DispatchOutcome, DispatchRequest, IssuedCoupon


class Dispatcher(Protocol):
    def dispatch(self, request: DispatchRequest) -> DispatchOutcome:
        """Send the request's message at most once, or say why not; safe to call again with
        the same request (it answers the first outcome)."""
        ...


class CouponIssuer(Protocol):
    """Issues one code of an offer to a customer for one message (segment sends implement it,
    `root().coupons`). Idempotent per (offer_id, issued_by): `issued_by` is the dispatch key,
    so a redelivered or retried message renders the same code."""

    def issue(self, offer_id: str, customer_id: str, issued_by: str) -> IssuedCoupon: ...
