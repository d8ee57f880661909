"""Coupon offers and their codes: issued once per message, redeemed once, online or at a till.

A code is 12 characters drawn by `secrets` from 31 letters and digits without look-alikes
(31^12 ~ 7.9e17: guessing one of a million issued codes takes ~8e11 tries), kept unique by a
conditional put. Issuing is idempotent per (offer_id, issued_by): dispatch passes its dispatch
key, so a redelivered message renders the code it rendered first. An offer's budget is split
over 16 counter shards (a million codes issued in minutes would otherwise queue on one
partition); a code is issued only with one unit of a shard in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from crm.auth import Caller, Permission
from crm.campaigns.models import IssuedCoupon
from crm.campaigns.send_models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CouponOffer,
    CouponOfferInput,
    CouponOfferList,
    CouponRedemption,
    RedeemInput,
)
from crm.campaigns.send_store import COUNTER_SHARDS, Cancelled, SendStore, counter_shard
from crm.clock import Clock, iso
from crm.errors import Conflict, FieldProblem, InvalidInput, NotFound

CODE_ATTEMPTS = 5  # a collision at 7.9e17 codes is all but impossible; retried all the same


def random_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def send_of(issued_by: str) -> str | None:
    """The send a dispatch key names (`send#<send_id>#<variant>#<customer>#<channel>`)."""
    parts = issued_by.split("#")
    return parts[1] if len(parts) >= 3 and parts[0] == "send" else None


def variant_of(issued_by: str) -> str | None:
    parts = issued_by.split("#")
    return parts[2] if len(parts) >= 3 and parts[0] == "send" else None


def _offer(item: dict[str, object]) -> CouponOffer:
    return CouponOffer.model_validate({k: v for k, v in item.items() if k not in {"PK", "SK"}})


class Coupons:
    """The CouponIssuer dispatch calls (`issue`), and the offers and redemptions of the API."""

    def __init__(
        self, store: SendStore, clock: Clock, codes: Callable[[], str] = random_code
    ) -> None:
        self._store = store
        self._clock = clock
        self._codes = codes

    # ------------------------------------------------------------ offers
    def create_offer(self, caller: Caller, body: CouponOfferInput) -> CouponOffer:
        caller.require(Permission.EDIT_CAMPAIGNS)
        now = self._clock()
        if body.expires_at <= now:
            raise InvalidInput(
                "the offer expires before it starts", [FieldProblem("expires_at", "in the past")]
            )
        offer = CouponOffer(**body.model_dump(), created_at=now, created_by=caller.subject)
        if not self._store.create_offer(offer.model_dump(mode="json", exclude={"issued"})):
            raise Conflict(f"offer {body.offer_id} exists; offers are not changed once made")
        return offer

    def offer(self, offer_id: str) -> CouponOffer:
        item = self._store.offer(offer_id)
        if item is None:
            raise NotFound(f"no coupon offer {offer_id}")
        return _offer(item).model_copy(update={"issued": self._store.issued_count(offer_id)})

    def read_offer(self, caller: Caller, offer_id: str) -> CouponOffer:
        caller.require(Permission.READ_CAMPAIGNS)
        return self.offer(offer_id)

    def list_offers(self, caller: Caller) -> CouponOfferList:
        """Each offer with its codes issued (a query of its budget's counters each: a shop has
        offers by the dozen, not by the thousand)."""
        caller.require(Permission.READ_CAMPAIGNS)
        return CouponOfferList(offers=[
            _offer(i).model_copy(update={"issued": self._store.issued_count(str(i["offer_id"]))})
            for i in self._store.offers()
        ])  # fmt: skip

    # ------------------------------------------------------------ issue (the CouponIssuer)
    def issue(self, offer_id: str, customer_id: str, issued_by: str) -> IssuedCoupon:
        item = self._store.offer(offer_id)
        if item is None:
            raise NotFound(f"no coupon offer {offer_id}")
        offer = _offer(item)
        existing = self._store.issued_code(offer_id, issued_by)
        if existing is not None:
            return self._issued(offer, existing)
        now = self._clock()
        if now >= offer.expires_at:
            raise Conflict(f"coupon offer {offer_id} has expired")
        expires_at = min(offer.expires_at, now + timedelta(days=offer.valid_days)).replace(
            microsecond=0
        )
        first = counter_shard(issued_by)
        shards = [(first + n) % COUNTER_SHARDS for n in range(COUNTER_SHARDS)]
        attempts = 0
        while shards:
            code = self._codes()
            try:
                self._store.issue(
                    {
                        "code": code,
                        "offer_id": offer_id,
                        "customer_id": customer_id,
                        "issued_by": issued_by,
                        "issued_at": iso(now),
                        "expires_at": iso(expires_at),
                        "state": "issued",
                    },
                    shards[0],
                )
            except Cancelled as exc:
                if 0 in exc.failed:  # issued meanwhile by another attempt: that code
                    again = self._store.issued_code(offer_id, issued_by)
                    if again is not None:
                        return self._issued(offer, again)
                if 1 in exc.failed:
                    attempts += 1
                    if attempts >= CODE_ATTEMPTS:
                        raise
                    continue
                if 2 in exc.failed:
                    shards.pop(0)
                    continue
                raise
            return IssuedCoupon(
                code=code, offer_id=offer_id, description=offer.description, expires_at=expires_at
            )
        raise Conflict(f"coupon offer {offer_id} has issued its whole budget of {offer.budget}")

    def _issued(self, offer: CouponOffer, code: str) -> IssuedCoupon:
        item = self._store.code(code)
        expires_at = datetime.fromisoformat(str(item["expires_at"])) if item else offer.expires_at
        return IssuedCoupon(
            code=code, offer_id=offer.offer_id, description=offer.description, expires_at=expires_at
        )

    # ------------------------------------------------------------ redeem
    def redeem_offline(self, caller: Caller, code: str, body: RedeemInput) -> CouponRedemption:
        caller.require(Permission.REDEEM_COUPONS)
        return self.redeem(code.strip().upper(), "offline", body.order_id, body.store_id)

    def redeem(
        self, code: str, channel: str, order_id: str | None, store_id: str | None = None
    ) -> CouponRedemption:
        """Redeem once: 404 for an unknown code, 409 for one redeemed or expired."""
        now = self._clock()
        known = self._store.code(code) if 4 <= len(code) <= 32 and code.isalnum() else None
        if known is None:
            raise NotFound("no such coupon code")
        done = self._store.redeem(
            code, {"channel": channel, "order_id": order_id, "store_id": store_id}, now
        )
        if done is None:
            current = self._store.code(code) or known
            if current.get("state") == "redeemed":
                raise Conflict(f"the code was redeemed already, at {current['redeemed_at']}")
            raise Conflict(f"the code expired at {current['expires_at']}")
        return CouponRedemption(
            code=code,
            offer_id=done["offer_id"],
            customer_id=done["customer_id"],
            redeemed_at=now,
            channel="online" if channel == "online" else "offline",
            order_id=order_id,
            send_id=send_of(str(done["issued_by"])),
        )

    def code_owner(self, code: str) -> dict[str, object] | None:
        return self._store.code(code)
