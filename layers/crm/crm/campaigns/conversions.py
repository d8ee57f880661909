"""Paid orders attributed to the campaigns that brought them (off the bus: the paid orders a
`CustomerProfileUpdated` carries, one entry per customer per folded batch).

An order counts for a campaign once (a claim item per order and campaign), however often the
bus or the queue delivers it:
- each coupon code it carries is redeemed (online) and the order counts for the send that
  issued the code;
- the customer's last touch (dispatch keeps the newest message per channel) counts when the
  order came within the touch's attribution window (the send's, or the channel's default);
- holdout and global-control exposures within their window count the order for their arm:
  the baseline the report measures uplift against.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crm.campaigns.coupons import Coupons, send_of, variant_of
from crm.campaigns.facts import conversion_fact
from crm.campaigns.models import DispatchCounts, Touch
from crm.campaigns.send_models import OrderPaid
from crm.campaigns.send_store import SendStore
from crm.campaigns.sends import ATTRIBUTION_HOURS
from crm.errors import Conflict, NotFound
from crm.lake import FactLog
from crm.sqs_consumer import PoisonMessage

logger = Logger(child=True)


class DispatchRecords(Protocol):
    """What dispatch records and the report and attribution read (dispatch's public methods)."""

    def campaign_counts(self, campaign_id: str) -> dict[str, DispatchCounts]: ...

    def last_touches(self, customer_id: str) -> list[Touch]: ...


def orders_paid(body: str) -> list[OrderPaid]:
    """The paid orders of a queued EventBridge event (`detail`), or PoisonMessage naming
    fields. A `CustomerProfileUpdated` carries its customer's orders in `paid_orders`; a
    detail that is one order (`CustomerOrderPaid`, as the fold published before it announced
    once per customer) may still sit in the queue from before a deploy, and still counts."""
    try:
        event = json.loads(body)
        detail = event["detail"] if isinstance(event, dict) and "detail" in event else event
        orders = detail.get("paid_orders", [detail])
        if not isinstance(orders, list):
            raise PoisonMessage("not a paid order: paid_orders")
        return [
            OrderPaid.model_validate(
                {
                    **order,
                    "customer_id": detail.get("customer_id"),
                    "amount": Decimal(str(order.get("amount"))),
                    "occurred_at": order.get("paid_at"),
                }
            )
            for order in orders
        ]
    except PoisonMessage:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
        if isinstance(exc, ValidationError):
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise PoisonMessage(f"not a paid order: {', '.join(fields)}") from None
        raise PoisonMessage("not a paid order event") from None


class Conversions:
    def __init__(
        self,
        store: SendStore,
        coupons: Coupons,
        records: Callable[[], DispatchRecords],
        facts: FactLog | None = None,  # analytics: conversions to the lake
    ) -> None:
        self._facts = facts
        self._store = store
        self._coupons = coupons
        self._records = records

    def _window(self, campaign_id: str, channel: str | None) -> timedelta:
        send = self._store.send(campaign_id)
        if send is not None:
            return timedelta(hours=int(send["attribution_hours"]))
        hours = ATTRIBUTION_HOURS.get(channel, 72) if channel else 72  # type: ignore[call-overload]
        return timedelta(hours=hours)

    def attribute_all(self, orders: list[OrderPaid]) -> list[str]:
        """Count each order of a bus entry (a customer's paid orders of a folded batch). An
        order that fails fails the message; its redelivery counts again only what was not
        counted (a claim per order and campaign)."""
        return [campaign_id for order in orders for campaign_id in self.attribute(order)]

    def attribute(self, order: OrderPaid) -> list[str]:
        """Count the order for the campaigns it converts for; the campaign ids it counted for
        now (an order counted before is not counted again)."""
        counted: list[str] = []
        at = order.occurred_at
        for code in order.coupon_codes:
            send_id = self._redeem(code, order)
            item = self._coupons.code_owner(code)
            if send_id is None or item is None:
                continue
            variant = variant_of(str(item["issued_by"])) or "A"
            if self._record_conversion(
                order.order_id,
                send_id,
                "treatment",
                variant,
                order.customer_id,
                order.amount,
                at,
                coupon=True,
            ):
                counted.append(send_id)
        touch = self._last_touch(order.customer_id, at)
        if touch is not None and self._record_conversion(
            order.order_id,
            touch.campaign_id,
            "treatment",
            touch.variant or "A",
            order.customer_id,
            order.amount,
            at,
            coupon=False,
        ):
            counted.append(touch.campaign_id)
        for exposure in self._store.exposures(order.customer_id):
            start = datetime.fromisoformat(str(exposure["at"]))
            if not start <= at <= start + timedelta(hours=int(exposure["hours"])):
                continue
            campaign_id = str(exposure["SK"])
            if self._record_conversion(
                order.order_id,
                campaign_id,
                str(exposure["arm"]),
                str(exposure["variant"]),
                order.customer_id,
                order.amount,
                at,
                coupon=False,
            ):
                counted.append(campaign_id)
        return counted

    def _record_conversion(
        self, order_id: str, campaign_id: str, arm: str, variant: str, customer_id: str,
        revenue: Decimal, at: datetime, coupon: bool,
    ) -> bool:  # fmt: skip
        """The store's record_conversion, and a new one's fact in the lake (best effort)."""
        counted = self._store.record_conversion(
            order_id, campaign_id, arm, variant, customer_id, revenue, at, coupon=coupon
        )
        if counted and self._facts is not None:
            self._facts.write("campaign_facts", conversion_fact(
                order_id, campaign_id, arm, variant, customer_id, revenue, at))  # fmt: skip
        return counted

    def _redeem(self, code: str, order: OrderPaid) -> str | None:
        """The send that issued the code, once the order redeemed it (or had before: a
        redelivered event finds its own redemption)."""
        try:
            return self._coupons.redeem(code, "online", order.order_id).send_id
        except NotFound:
            logger.warning("order names an unknown coupon code", extra={"order_id": order.order_id})
            return None
        except Conflict:
            item = self._coupons.code_owner(code) or {}
            redemption = item.get("redemption")
            if isinstance(redemption, dict) and redemption.get("order_id") == order.order_id:
                return send_of(str(item["issued_by"]))
            logger.warning("coupon code not redeemable", extra={"order_id": order.order_id})
            return None

    def _last_touch(self, customer_id: str, at: datetime) -> Touch | None:
        best: Touch | None = None
        for touch in self._records().last_touches(customer_id):
            if (
                not touch.sent_at
                <= at
                <= touch.sent_at + self._window(touch.campaign_id, touch.channel)
            ):
                continue
            if best is None or touch.sent_at > best.sent_at:
                best = touch
        return best
