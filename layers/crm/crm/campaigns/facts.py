"""Campaign outcomes as the lake's `campaign_facts` (analytics: sends, conversions, attributed
revenue, uplift against the holdout or the global control group, ROI by campaign and variant).

Ids, arms, amounts and reasons only. A fact names its customer by `customer_id`, which the
lake's writer (crm.lake.FactLog) replaces with the pseudonym, also in a fact id's `{pid}`; each
fact id is stable, so a redelivered message repeats it and compaction keeps one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from crm.campaigns.dispatch_store import MessageRecord

# Final dispatch states, as the fact's type (deferred is not final: its retry will be).
_FINAL = frozenset({"sent", "capped", "suppressed", "failed"})


def message_fact(message: MessageRecord) -> list[dict[str, Any]]:
    """A message's final outcome; a customer the global control group kept from it is an
    exposure of the control arm (the baseline of uplift)."""
    request, outcome = message.request, message.outcome
    reason = outcome.reason if outcome is not None else None
    if message.state not in _FINAL:
        return []
    control = message.state == "suppressed" and reason == "global_control"
    return [{
        "fact_id": f"msg#{request.source_id}#{request.step}#{request.channel}#{{pid}}",
        "type": "exposure" if control else message.state,
        "customer_id": request.customer_id, "occurred_at": message.updated_at.isoformat(),
        "campaign_id": request.campaign_id, "variant": request.variant,
        "arm": "control" if control else "treatment", "channel": str(request.channel),
        "reason": reason,
        "cost": message.cost_micros / 1_000_000 if message.state == "sent" else None,
    }]  # fmt: skip


def conversion_fact(
    order_id: str, campaign_id: str, arm: str, variant: str, customer_id: str,
    revenue: Decimal, at: datetime,
) -> list[dict[str, Any]]:  # fmt: skip
    return [{
        "fact_id": f"conv#{order_id}#{campaign_id}", "type": "conversion",
        "customer_id": customer_id, "occurred_at": at.isoformat(), "campaign_id": campaign_id,
        "variant": variant, "arm": arm, "revenue": float(revenue),
    }]  # fmt: skip


def exposure_facts(exposures: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A send's holdout and control members (its exposure items: PK EXPO#<customer>)."""
    return [{
        "fact_id": f"expo#{e['SK']}#{{pid}}", "type": "exposure",
        "customer_id": str(e["PK"]).removeprefix("EXPO#"), "occurred_at": str(e["at"]),
        "campaign_id": str(e["SK"]), "variant": str(e["variant"]), "arm": str(e["arm"]),
    } for e in exposures]  # fmt: skip
