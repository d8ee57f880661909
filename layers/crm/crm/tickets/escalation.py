"""Escalation that knows the business: which tickets are high risk, and what escalating does.

A ticket is escalated, with each reason recorded, when the order's value is above a threshold,
the customer complained before within N days, the customer is in a high-value tier, the text
carries risk keywords (12315, 律师, lawyer, ...) or strong negative sentiment (a lexicon,
crm.tickets.keywords), or one of its SLA clocks is breached. Escalating raises the priority to
urgent and puts a senior agent and a manager on it together (资深客服+经理双跟进); the service
publishes `TicketEscalated` (ids and reason codes, never text).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from crm.tickets.keywords import NEGATIVE_WORDS, hits
from crm.tickets.models import EscalationReason, EscalationRules, Priority
from crm.tickets.records import EscalationEntry, TicketRecord

R = EscalationReason


@dataclass(frozen=True)
class Signals:
    """What the rules look at, gathered by the service (the profile, earlier tickets)."""

    text: str
    order_amount: Decimal | None = None
    tier: str | None = None
    earlier_complaints: int = 0


def assess(rules: EscalationRules, signals: Signals, at: datetime) -> list[EscalationEntry]:
    found: list[EscalationEntry] = []

    def add(reason: EscalationReason, detail: str) -> None:
        found.append(EscalationEntry(reason=reason, detail=detail, at=at))

    amount = signals.order_amount
    if amount is not None and amount > rules.order_value_threshold:
        add(R.ORDER_VALUE, f"order amount above {rules.order_value_threshold}")
    if signals.earlier_complaints:
        add(
            R.REPEAT_COMPLAINT,
            f"{signals.earlier_complaints} earlier complaint(s) within "
            f"{rules.repeat_within_days} days",
        )
    if signals.tier is not None and signals.tier in rules.high_value_tiers:
        add(R.HIGH_VALUE_TIER, f"tier {signals.tier}")
    risky = hits(signals.text, rules.risk_keywords)
    if risky:
        # The keywords are the rules' own words, not the customer's text.
        add(R.RISK_KEYWORDS, ", ".join(risky))
    negative = hits(signals.text, NEGATIVE_WORDS)
    if len(negative) >= rules.negative_threshold:
        add(R.NEGATIVE_SENTIMENT, f"{len(negative)} strongly negative words")
    return found


def breach_reason(metric: str, at: datetime) -> EscalationEntry:
    return EscalationEntry(reason=R.SLA_BREACH, detail=f"{metric} breached", at=at)


def _pick(people: Sequence[str], ticket_id: str) -> str:
    """Spread tickets over the people deterministically (a retried escalation picks the same)."""
    digest = int(hashlib.sha256(ticket_id.encode()).hexdigest(), 16)
    return people[digest % len(people)]


def escalate(
    ticket: TicketRecord, reasons: Sequence[EscalationEntry], rules: EscalationRules
) -> list[EscalationEntry]:
    """Record the reasons the ticket had not recorded yet and escalate it if any; returns them."""
    known = {e.reason for e in ticket.escalations}
    new = [r for r in reasons if r.reason not in known]
    if not new:
        return []
    ticket.escalations.extend(new)
    ticket.priority = Priority.URGENT
    if ticket.escalated_at is None:
        ticket.escalated_at = new[0].at
        ticket.senior_agent = _pick(rules.senior_agents, ticket.ticket_id)
        ticket.manager = _pick(rules.managers, ticket.ticket_id)
        ticket.assignee = ticket.senior_agent
    return new
