"""The stored shapes of tickets, messages and SLA clock entries, and their keys.

TicketsTable (docs/data-model.md):
  PK=TICKET#<ticket_id>  SK=#TICKET                the ticket (status, category, priority, the
                                                   pinned policy, escalation), `rev` guards it
  PK=TICKET#<ticket_id>  SK=CLOCK#<metric>#<seq>   one SLA clock entry (append-only)
  PK=TICKET#<ticket_id>  SK=MSG#<at>#<message_id>  one message, its text sealed
  PK=SETTINGS            SK=ESCALATION_RULES       the escalation rules
  PK=SETTINGS            SK=SLA_POLICIES           the SLA policies in force, their version
  PK=SETTINGS            SK=CALENDAR#<name>        a shop calendar's latest version (or its
                                                   deletion: `deleted`, the version kept)
GSI `customer` (CPK=CUST#<customer_id>, CSK):
  CSK=MSG#<at>#<message_id> the customer's whole conversation, newest first
  CSK=TKT#<opened_at>#<ticket_id> the customer's tickets (repeat complaints)
"""

from datetime import datetime
from typing import Literal

from pydantic import Field

from crm.clock import iso
from crm.models import Record
from crm.tickets.models import (
    CalendarDefinition,
    EscalationReason,
    MessageKind,
    Priority,
    SlaMetric,
    TicketCategory,
    TicketChannel,
    TicketStatus,
)

TICKET_SK = "#TICKET"  # sorts before CLOCK# and MSG#: one Query reads it with its clocks
RULES_PK, RULES_SK = "SETTINGS", "ESCALATION_RULES"
POLICIES_SK = "SLA_POLICIES"


def calendar_sk(name: str) -> str:
    return f"CALENDAR#{name}"


def ticket_pk(ticket_id: str) -> str:
    return f"TICKET#{ticket_id}"


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def message_sk(at: datetime, message_id: str) -> str:
    return f"MSG#{iso(at)}#{message_id}"


def ticket_csk(opened_at: datetime, ticket_id: str) -> str:
    return f"TKT#{iso(opened_at)}#{ticket_id}"


def clock_sk(metric: SlaMetric, seq: int) -> str:
    return f"CLOCK#{metric.value}#{seq:04d}"


class PinnedTarget(Record):
    """One metric's target as the policy said when the ticket opened."""

    metric: SlaMetric
    minutes: int
    pauses: bool


class EscalationEntry(Record):
    reason: EscalationReason
    detail: str
    at: datetime


class TicketRecord(Record):
    ticket_id: str
    customer_id: str = Field(description="the live customer; the messages' key is theirs")
    channel: TicketChannel
    order_id: str | None = None
    sku: str | None = None
    product_category: str | None = None
    category: TicketCategory
    category_confidence: float
    priority: Priority
    status: TicketStatus
    assignee: str | None = None
    opened_at: datetime
    updated_at: datetime
    rev: int = 0
    merged_into: str | None = None
    merged_from: list[str] = Field(default=[])
    policy: str
    calendar: str = Field(description="a built-in's name, or a shop calendar's <name>@v<n>")
    # A shop calendar's definition as it was when the ticket opened, copied: the clocks read
    # nothing but the ticket, and editing or deleting the calendar never moves them. None for
    # a built-in (and every ticket opened before shops had calendars).
    calendar_definition: CalendarDefinition | None = None
    targets: list[PinnedTarget]
    # Per metric: warned (75%) and breached (100%) once each, so a warning or a breach is
    # published once however often its wake-up arrives.
    warned: list[SlaMetric] = Field(default=[])
    breached: list[SlaMetric] = Field(default=[])
    escalated_at: datetime | None = None
    escalations: list[EscalationEntry] = Field(default=[])
    senior_agent: str | None = None
    manager: str | None = None
    first_replied_at: datetime | None = None
    # The customer's opening words (a message id, never the text): what a category correction
    # points a reviewer to (crm.tickets.corrections). None on tickets opened before it was kept.
    opening_message_id: str | None = None
    # What the classifier said, kept when an agent corrects `category`.
    classified_as: TicketCategory | None = None


ClockMove = Literal["start", "pause", "resume", "met"]


class ClockEntry(Record):
    """One entry of a metric's append-only clock ledger: the clock started, paused, resumed or
    was met at `at`. Running intervals run from a start or resume to the next entry."""

    ticket_id: str
    metric: SlaMetric
    seq: int
    move: ClockMove
    at: datetime
    reason: str = Field(description="what moved it: opened, a status, a reply")


class MessageRecord(Record):
    message_id: str
    ticket_id: str
    customer_id: str = Field(description="whose data key seals the text")
    channel: TicketChannel
    kind: MessageKind
    author: str
    at: datetime
    sealed: str = Field(description="the text, sealed under the customer's data key")


def text_field(message_id: str) -> str:
    """Associated data of a sealed message: bound to its message, not movable to another."""
    return f"ticket_message:{message_id}"
