"""Ticket outcomes as the lake's `ticket_facts` (analytics: SLA attainment, escalations,
response times). Ids, categories, times and durations only: never a message's text.

Each fact has a stable id (a redelivered change or wake-up repeats it; compaction keeps one).
Durations are wall-clock seconds from opening; SLA attainment reads the breaches, which follow
the business-hours calendars."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm.tickets.models import SlaMetric
from crm.tickets.records import ClockEntry, EscalationEntry, TicketRecord

# The met clocks the dashboard charts, as the fact's type.
_MET = {SlaMetric.FIRST_RESPONSE: "first_response", SlaMetric.RESOLUTION: "resolved"}


def _fact(ticket: TicketRecord, kind: str, fact_id: str, at: datetime, **more: Any
          ) -> dict[str, Any]:  # fmt: skip
    return {
        "fact_id": f"{ticket.ticket_id}#{fact_id}", "type": kind, "ticket_id": ticket.ticket_id,
        "customer_id": ticket.customer_id,  # the lake's writer puts the pseudonym in its place
        "occurred_at": at.isoformat(), "category": str(ticket.category.value),
        "priority": str(ticket.priority.value), "channel": str(ticket.channel.value), **more,
    }  # fmt: skip


def ticket_facts(
    ticket: TicketRecord,
    before: list[ClockEntry],
    added: list[ClockEntry],
    reasons: list[EscalationEntry],
    breached: SlaMetric | None = None,
) -> list[dict[str, Any]]:
    facts = []
    if not before and added:  # the opening entries of a new ticket
        facts.append(_fact(ticket, "opened", "opened", ticket.opened_at))
    for entry in added:
        kind = _MET.get(entry.metric)
        if entry.move == "met" and kind is not None:
            seconds = (entry.at - ticket.opened_at).total_seconds()
            facts.append(_fact(ticket, kind, f"{kind}#{entry.seq}", entry.at,
                               metric=entry.metric.value, seconds=seconds))  # fmt: skip
    if breached is not None:
        facts.append(_fact(ticket, "breached", f"breached#{breached.value}", ticket.updated_at,
                           metric=breached.value))  # fmt: skip
    if reasons:
        at = reasons[0].at
        facts.append(_fact(ticket, "escalated", f"escalated#{at.isoformat()}", at))
    return facts
