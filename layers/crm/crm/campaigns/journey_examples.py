"""The five journeys the seed documents describe, and two service journeys (an after-sales
notification, an apology for an escalated ticket), shipped as data: a shop copies one
(`GET /campaigns/journeys/examples`), edits its templates and offers, and activates it. The
demo loads them (infra/crm_local, with their templates and coupon offers), and the e2e
tests run every one with time travel (tests/e2e/test_journeys.py)."""

from __future__ import annotations

from functools import cache
from typing import Any

from crm.campaigns.journey_models import JourneyDefinition

HOUR, DAY = 3600, 86400

_RAW: list[dict[str, Any]] = [
    {
        "name": "dormant 30 days -> exclusive coupon",
        "description": "A customer with no paid order for 30 days gets an exclusive coupon; "
        "a reminder follows after 3 days unless they bought.",
        "trigger": {"type": "inactivity", "event_type": "order_paid", "days": 30},
        "start": "coupon",
        "steps": [
            {"id": "coupon", "type": "send", "channel": "sms", "template_id": "dormant_coupon",
             "coupon_offer_id": "dormant_exclusive", "next": "wait_3d"},
            {"id": "wait_3d", "type": "wait", "seconds": 3 * DAY, "next": "reminder"},
            {"id": "reminder", "type": "send", "channel": "push",
             "template_id": "dormant_coupon_reminder"},
        ],
        "goal": {"event": "order_paid"},
        "reentry": {"mode": "after", "after_seconds": 90 * DAY},
    },
    {
        "name": "7 days after the first order -> cross-sell",
        "description": "Seven days after a customer's first paid order, recommend products "
        "bought together with theirs (co-purchase recommendations in the template).",
        "trigger": {"type": "event", "event_type": "order_paid", "first_order_only": True},
        "start": "wait_7d",
        "steps": [
            {"id": "wait_7d", "type": "wait", "seconds": 7 * DAY, "next": "cross_sell"},
            {"id": "cross_sell", "type": "send", "channel": "email",
             "template_id": "cross_sell_copurchase"},
        ],
        "exit": [{"rule": {"all": [{"field": "orders.order_count", "op": "gte", "value": 2}]}}],
        "reentry": {"mode": "once"},
    },
    {
        "name": "birthday month -> double points",
        "description": "In the customer's birthday month: a greeting at 10:00 their time and "
        "a tag that the points rules read to double points for the month.",
        "trigger": {"type": "date", "attribute": "birthday_month"},
        "start": "morning",
        "steps": [
            {"id": "morning", "type": "wait", "until_time": "10:00", "next": "tag"},
            {"id": "tag", "type": "update_profile", "add_tag": "birthday_double_points",
             "next": "greeting"},
            {"id": "greeting", "type": "send", "channel": "wechat",
             "template_id": "birthday_double_points"},
        ],
        "reentry": {"mode": "after", "after_seconds": 300 * DAY},
    },
    {
        "name": "abandoned cart 2 h -> reminder",
        "description": "Two hours after a customer adds to the cart without paying, remind "
        "them; paying ends the journey.",
        "trigger": {"type": "event", "event_type": "cart_added"},
        "start": "wait_2h",
        "steps": [
            {"id": "wait_2h", "type": "wait", "until_event": "order_paid", "seconds": 2 * HOUR,
             "next": None, "timeout_next": "reminder"},
            {"id": "reminder", "type": "send", "channel": "push", "template_id": "cart_reminder",
             "on_capped": "defer"},
        ],
        "goal": {"event": "order_paid"},
        "reentry": {"mode": "after", "after_seconds": DAY},
    },
    {
        "name": "churn warning -> win-back (我们想念您)",
        "description": "When a customer enters the churn-risk tier: half get a win-back "
        "message with a coupon, half are held out as control to measure it.",
        "trigger": {"type": "segment", "segment": "tier:churn_risk", "change": "entered"},
        "start": "split",
        "steps": [
            {"id": "split", "type": "split", "branches": [
                {"name": "winback", "weight": 50, "next": "consented"},
                {"name": "control", "weight": 50, "control": True},
            ]},
            {"id": "consented", "type": "condition",
             "rule": {"all": [{"field": "orders.order_count", "op": "gte", "value": 1}]},
             "then": "winback", "otherwise": None},
            {"id": "winback", "type": "send", "channel": "sms", "template_id": "winback_miss_you",
             "coupon_offer_id": "winback_10", "priority": 10},
        ],
        "goal": {"event": "order_paid"},
        # A customer whose complaint was escalated gets no win-back coupon meanwhile.
        "exit": [{"rule": {"all": [{"has_tag": "do_not_winback"}]}}, {"event": "ticket_escalated"}],
        "reentry": {"mode": "after", "after_seconds": 60 * DAY},
    },
    # Service messages (issue 10): about the customer's own case, so exempt from marketing
    # consent, caps and quiet hours; only journeys with these triggers may send them.
    {
        "name": "after-sales refund arrived -> notify",
        "description": "When a return or refund reaches 退款到账 the customer is told at once.",
        "trigger": {"type": "after_sales", "stages": ["refunded"]},
        "start": "notify",
        "steps": [
            {"id": "notify", "type": "send", "channel": "push",
             "template_id": "aftersales_refunded", "purpose": "service"},
        ],
        "reentry": {"mode": "after", "after_seconds": 60},  # every case of theirs
    },
    {
        "name": "escalated complaint -> apology coupon",
        "description": "A customer whose ticket was escalated gets an apology with a coupon "
        "(资深客服+经理 follow up the ticket itself).",
        "trigger": {"type": "ticket_escalated"},
        "start": "apology",
        "steps": [
            {"id": "apology", "type": "send", "channel": "sms", "template_id": "apology_coupon",
             "coupon_offer_id": "apology_20", "purpose": "service"},
        ],
        "reentry": {"mode": "after", "after_seconds": 30 * DAY},  # one apology a month
    },
]  # fmt: skip


@cache
def examples() -> tuple[JourneyDefinition, ...]:
    """Validated on first use: a function that never shows them pays nothing at cold start."""
    return tuple(JourneyDefinition.model_validate(raw) for raw in _RAW)
