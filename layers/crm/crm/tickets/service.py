"""The tickets family's use cases: open a ticket, add to its conversation, assign, change its
status, merge duplicates, read a customer's whole conversation, edit the escalation rules.

Every change reads the ticket with its clock ledger, computes the new ticket, the clock entries
and messages it appends, commits them in one transaction under the revision it read (a
concurrent change makes it run again on fresh data), then moves the SLA timers and publishes.
Message text is sealed under the customer's data key (the profiles family's), so it never sits
anywhere in plaintext and erasing the customer erases it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

from crm import metrics
from crm.audit import TICKET_CONVERSATION, NoPiiReads, PiiReads
from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock, IdFactory
from crm.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from crm.events import BusEvent
from crm.lake import FactLog
from crm.pii import FieldCipher, mask_text
from crm.profiles import Loaded, ProfileService
from crm.sqs_consumer import PoisonMessage
from crm.ticket_events import TicketEscalated, TicketSlaBreached, TicketSlaWarning
from crm.tickets import escalation, sla
from crm.tickets.calendar_store import StoredCalendar
from crm.tickets.calendars import BUILT_IN, CALENDARS, Calendar, describe, of_definition
from crm.tickets.corrections import Corrections
from crm.tickets.facts import ticket_facts
from crm.tickets.feedback import ticket_feedback
from crm.tickets.models import (
    CALENDAR_NAME,
    AddMessage,
    AssignTicket,
    CalendarDefinition,
    CalendarDeleted,
    CalendarList,
    CalendarView,
    ChangeStatus,
    Classifier,
    ConversationPage,
    CorrectCategory,
    EscalateTicket,
    EscalationReason,
    EscalationReasonView,
    EscalationRules,
    EscalationRulesView,
    EscalationView,
    MergeTicket,
    MessageKind,
    MessageView,
    OpenTicket,
    SlaMetric,
    SlaPolicies,
    SlaPoliciesView,
    TicketCategory,
    TicketChannel,
    TicketSelfView,
    TicketStatus,
    TicketView,
)
from crm.tickets.records import (
    ClockEntry,
    EscalationEntry,
    MessageRecord,
    TicketRecord,
    text_field,
)
from crm.tickets.store import (
    ClaimedAlready,
    StaleTicket,
    StoredPolicies,
    TicketChange,
    TicketStore,
)
from crm.timers import Timers, WakeUp

logger = Logger(child=True)
_CALENDAR_NAME = re.compile(CALENDAR_NAME)
T = TypeVar("T")

SLA_MET_SERVICE = "crm-tickets"  # TicketSlaMet's dimension; TicketSlaBreachAlarm reads it
MAX_ATTEMPTS = 6
BACKOFF_S = 0.02
MAX_MERGE_HOPS = 5
# Shop calendars: every list of them reads them all (GET /tickets/calendars, the policies).
MAX_CALENDARS = 50
MERGED = "merged"  # the reason of the pauses a merge appends to the duplicate's clocks
_CATEGORIES = frozenset(c.value for c in TicketCategory)

S = TicketStatus
# Where each status may go. A closed ticket stays closed (a new message opens a new ticket);
# a resolved one reopens when the customer writes again or an agent reopens it.
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.WAITING_CUSTOMER, S.WAITING_THIRD_PARTY, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.WAITING_CUSTOMER, S.WAITING_THIRD_PARTY, S.RESOLVED, S.CLOSED}),
    S.WAITING_CUSTOMER: frozenset({S.OPEN, S.WAITING_THIRD_PARTY, S.RESOLVED, S.CLOSED}),
    S.WAITING_THIRD_PARTY: frozenset({S.OPEN, S.WAITING_CUSTOMER, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class Linked:
    """A duplicate as a merge or unmerge left it, with the clock entries it appended."""

    dup: TicketRecord
    before: list[ClockEntry]
    added: list[ClockEntry]


class TicketService:
    def __init__(
        self,
        store: TicketStore,
        profiles: ProfileService,
        classifier: Classifier,
        timers: Timers,
        bus: Bus,
        clock: Clock,
        ids: IdFactory,
        sleep: Callable[[float], Any] = time.sleep,
        corrections: Corrections | None = None,
        facts: FactLog | None = None,  # analytics: ticket outcomes to the lake
        pii_reads: PiiReads | None = None,  # staff reads of message text (crm.audit)
    ) -> None:
        self.facts = facts
        self.pii_reads = pii_reads or NoPiiReads()
        self.store = store
        self.profiles = profiles
        self.classifier = classifier
        self.timers = timers
        self.bus = bus
        self.clock = clock
        self.ids = ids
        self._sleep = sleep
        self.corrections = corrections

    # ------------------------------------------------------------ reading
    def load(self, ticket_id: str) -> tuple[TicketRecord, list[ClockEntry]]:
        found = self.store.get(ticket_id)
        if found is None:
            raise NotFound(f"no ticket {ticket_id}")
        return found

    def _readable(self, caller: Caller, ticket: TicketRecord) -> None:
        # A customer's token reads only their own tickets; the same 404 as a missing one, so
        # ticket ids cannot be probed.
        if caller.can(Permission.READ_TICKETS, ticket.customer_id):
            return
        if caller.customer_id is not None and caller.can(
            Permission.READ_TICKETS, caller.customer_id
        ):
            # A token issued before the customer's profiles merged names the absorbed id;
            # the ticket belongs to the profile it was merged into.
            try:
                live = self.profiles.load(caller.customer_id).customer_id
            except NotFound:
                live = None
            if live == ticket.customer_id:
                return
        raise NotFound(f"no ticket {ticket.ticket_id}")

    def get(self, caller: Caller, ticket_id: str) -> TicketView | TicketSelfView:
        ticket, entries = self.load(ticket_id)
        self._readable(caller, ticket)
        return self.view_for(caller, ticket, entries)

    def view_for(
        self, caller: Caller, ticket: TicketRecord, entries: list[ClockEntry]
    ) -> TicketView | TicketSelfView:
        """The staff view for staff, the customer's own projection for a customer."""
        if caller.is_staff or caller.system:
            return self.view(ticket, entries)
        return TicketSelfView(
            ticket_id=ticket.ticket_id, customer_id=ticket.customer_id, channel=ticket.channel,
            order_id=ticket.order_id, category=ticket.category, status=ticket.status,
            opened_at=ticket.opened_at, updated_at=ticket.updated_at,
            merged_into=ticket.merged_into, sku=ticket.sku,
            product_category=ticket.product_category,
        )  # fmt: skip

    def view(self, ticket: TicketRecord, entries: list[ClockEntry]) -> TicketView:
        return TicketView(
            ticket_id=ticket.ticket_id,
            customer_id=ticket.customer_id,
            channel=ticket.channel,
            order_id=ticket.order_id,
            category=ticket.category,
            category_confidence=ticket.category_confidence,
            classified_as=ticket.classified_as,
            priority=ticket.priority,
            status=ticket.status,
            assignee=ticket.assignee,
            opened_at=ticket.opened_at,
            updated_at=ticket.updated_at,
            merged_into=ticket.merged_into,
            merged_from=ticket.merged_from,
            policy=ticket.policy,
            calendar=ticket.calendar,
            deadlines=sla.deadlines(ticket, entries, self.clock()),
            sku=ticket.sku,
            product_category=ticket.product_category,
            escalation=EscalationView(
                escalated=ticket.escalated_at is not None,
                reasons=[
                    EscalationReasonView(reason=e.reason, detail=e.detail, at=e.at)
                    for e in ticket.escalations
                ],
                senior_agent=ticket.senior_agent,
                manager=ticket.manager,
                escalated_at=ticket.escalated_at,
            ),
        )

    def conversation(
        self, caller: Caller, customer_id: str, limit: int, token: str | None
    ) -> ConversationPage:
        """The customer's whole conversation, the profiles merged into theirs included (the
        same person's WeChat and app histories), newest first; notes for staff only. Each
        message opens with the key of the profile it was written for."""
        profile = self.profiles.load(customer_id)
        ids = [profile.customer_id, *profile.merged_from]
        page = self.store.conversation(ids, limit, token, include_notes=caller.is_staff)
        ciphers: dict[str, FieldCipher | None] = {}
        messages = []
        for m in page.messages:
            if m.customer_id not in ciphers:
                ciphers[m.customer_id] = self.profiles.opening_cipher(m.customer_id)
            cipher = ciphers[m.customer_id]
            text = cipher.open(text_field(m.message_id), m.sealed) if cipher else mask_text("")
            messages.append(self._message_view(m, text))
        if caller.is_staff and not caller.system:
            # Staff read the customer's own words: recorded per profile whose messages opened.
            for opened in sorted({m.customer_id for m in page.messages if ciphers[m.customer_id]}):
                self.pii_reads.unmasked_read(
                    caller.subject, opened, ["message_text"], TICKET_CONVERSATION
                )
        return ConversationPage(customer_id=profile.customer_id, messages=messages,
                                next_token=page.next_token)  # fmt: skip

    @staticmethod
    def _message_view(m: MessageRecord, text: str) -> MessageView:
        return MessageView(
            message_id=m.message_id, ticket_id=m.ticket_id, customer_id=m.customer_id,
            channel=m.channel, kind=m.kind, author=m.author, at=m.at, text=text,
        )  # fmt: skip

    # ------------------------------------------------------------ opening
    def open(self, caller: Caller, body: OpenTicket) -> TicketView | TicketSelfView:
        caller.require(Permission.OPEN_TICKET, body.customer_id)
        now = self.clock()
        rules = self.rules()
        loaded = self.profiles.load_many(
            [body.customer_id], [body.order_id] if body.order_id else []
        )
        if body.customer_id in loaded.missing:
            raise loaded.missing[body.customer_id]
        profile = loaded.live[body.customer_id]
        customer_id, cipher = self.profiles.sealing_cipher(profile.customer_id)
        name, confidence = self.classifier.classify(body.message)
        category = TicketCategory(name) if name in _CATEGORIES else TicketCategory.OTHER
        signals = self._signals(body, rules, category, customer_id, loaded, now)
        ticket_id = "t-" + self.ids()
        ticket = TicketRecord(
            ticket_id=ticket_id, customer_id=customer_id, channel=body.channel,
            order_id=body.order_id, sku=body.sku, product_category=body.product_category,
            category=category, category_confidence=confidence,
            priority=sla.default_priority(category), status=S.NEW, opened_at=now, updated_at=now,
            policy="", calendar="", targets=[],
        )  # fmt: skip
        reasons = escalation.escalate(ticket, escalation.assess(rules, signals, now), rules)
        # The policy is chosen after escalation, so a high-risk ticket's clocks are urgent's.
        stored = self.store.policies()
        policy = (
            sla.policy_for(
                ticket.category,
                ticket.priority,
                stored.policies,
                stored.version,
                self._opening_calendar,
            )
            if stored is not None
            else sla.policy_for(ticket.category, ticket.priority)
        )
        ticket.policy, ticket.calendar = policy.version, policy.calendar.name
        ticket.calendar_definition = policy.calendar.definition
        ticket.targets = list(policy.targets)
        author = caller.subject
        kind = MessageKind.CUSTOMER
        message = self._seal(ticket, cipher, body.channel, kind, author, now, body.message)
        ticket.opening_message_id = message.message_id
        entries = sla.opening_entries(ticket)
        # A complaint or after-sales ticket about a product counts for it, once, with the ticket.
        counted = ticket_feedback(ticket, body.message)
        self.store.commit(TicketChange(ticket, None, entries, [message], feedback=counted))
        logger.info("ticket opened", extra={"ticket_id": ticket_id, "category": category.value,
                                            "escalated": bool(reasons)})  # fmt: skip
        self._after(ticket, [], entries, reasons)
        return self.view_for(caller, ticket, entries)

    def _signals(
        self,
        body: OpenTicket,
        rules: EscalationRules,
        category: TicketCategory,
        customer_id: str,
        loaded: Loaded,
        now: datetime,
    ) -> escalation.Signals:
        """What the escalation rules look at: the order's folded payment (or the amount the
        ticket states), the customer's tier, their earlier complaints, the text."""
        profile = loaded.live[body.customer_id]
        payment = loaded.payments.get(body.order_id) if body.order_id else None
        if payment is not None and payment.customer_id != customer_id:
            payment = None  # another customer's order: its amount is none of this ticket's
        earlier = []
        # Only when this ticket is itself a complaint: a question after a complaint is none.
        if category in rules.complaint_categories:
            since = now - timedelta(days=rules.repeat_within_days)
            earlier = [
                t for t in self.store.tickets_since(customer_id, since)
                if t.category in rules.complaint_categories
            ]  # fmt: skip
        return escalation.Signals(
            text=body.message,
            order_amount=payment.amount if payment is not None else body.order_amount,
            tier=profile.scores.tier if profile.scores is not None else None,
            earlier_complaints=len(earlier),
        )

    def _seal(
        self,
        ticket: TicketRecord,
        cipher: FieldCipher,
        channel: TicketChannel,
        kind: MessageKind,
        author: str,
        at: datetime,
        text: str,
    ) -> MessageRecord:
        message_id = "m-" + self.ids()
        return MessageRecord(
            message_id=message_id, ticket_id=ticket.ticket_id, customer_id=ticket.customer_id,
            channel=channel, kind=kind, author=author, at=at,
            sealed=cipher.seal(text_field(message_id), text),
        )  # fmt: skip

    # ------------------------------------------------------------ changing
    def _retry(self, attempt: Callable[[], T]) -> T:
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except StaleTicket:
                if n + 1 < MAX_ATTEMPTS:
                    self._sleep(random.uniform(0, BACKOFF_S * 2**n))  # noqa: S311 - jitter
        raise Conflict("the ticket was changed by other requests at the same moment; try again")

    def _survivor(self, ticket_id: str) -> tuple[TicketRecord, list[ClockEntry]]:
        """The ticket that takes a merged ticket's messages: merges are links, followed here."""
        ticket, entries = self.load(ticket_id)
        for _ in range(MAX_MERGE_HOPS):
            if ticket.merged_into is None:
                return ticket, entries
            ticket, entries = self.load(ticket.merged_into)
        raise Conflict(f"ticket {ticket_id} is in a merge chain too long to follow")

    def add_message(self, caller: Caller, ticket_id: str, body: AddMessage) -> MessageView:
        first, _ = self.load(ticket_id)
        self._readable(caller, first)
        if caller.is_staff:
            caller.require(Permission.WORK_TICKETS)
            kind = MessageKind.NOTE if body.kind == "note" else MessageKind.REPLY
            if body.kind == "customer":
                kind = MessageKind.CUSTOMER  # an agent typing what a customer said on the phone
        else:
            if body.kind not in (None, "customer"):
                raise Forbidden("a customer's message is the customer's own words")
            kind = MessageKind.CUSTOMER
        rules = self.rules() if kind is MessageKind.CUSTOMER else None

        def attempt() -> tuple[TicketRecord, list[ClockEntry], list[ClockEntry], MessageRecord,
                               list[EscalationEntry]]:  # fmt: skip
            ticket, entries = self._survivor(ticket_id)
            if ticket.status is S.CLOSED:
                raise Conflict(f"ticket {ticket.ticket_id} is closed; open a new one")
            now = self.clock()
            expected = ticket.rev
            _, cipher = self.profiles.sealing_cipher(ticket.customer_id)
            message = self._seal(ticket, cipher, body.channel, kind, caller.subject, now, body.text)
            added: list[ClockEntry] = []
            reasons: list[EscalationEntry] = []
            if kind is MessageKind.REPLY:
                status = S.OPEN if ticket.status is S.NEW else None
                added = sla.moves(ticket, entries, now, replied=True, status=status)
                ticket.first_replied_at = ticket.first_replied_at or now
                ticket.status = status or ticket.status
            elif kind is MessageKind.CUSTOMER:
                # The customer answered: a ticket waiting on them (or resolved) is open again.
                if ticket.status in (S.WAITING_CUSTOMER, S.RESOLVED):
                    added = sla.moves(ticket, entries, now, status=S.OPEN)
                    ticket.status = S.OPEN
                assert rules is not None
                found = escalation.assess(rules, escalation.Signals(text=body.text), now)
                reasons = escalation.escalate(ticket, found, rules)
            ticket.rev, ticket.updated_at = expected + 1, now
            self.store.commit(TicketChange(ticket, expected, added, [message]))
            return ticket, entries, added, message, reasons

        ticket, before, added, message, reasons = self._retry(attempt)
        self._after(ticket, before, added, reasons)
        return self._message_view(message, body.text)

    def assign(self, caller: Caller, ticket_id: str, body: AssignTicket) -> TicketView:
        caller.require(Permission.WORK_TICKETS)

        def change(
            ticket: TicketRecord, entries: list[ClockEntry], now: datetime
        ) -> list[ClockEntry]:
            ticket.assignee = body.agent_id
            return sla.moves(ticket, entries, now, assigned=True)

        return self._change(ticket_id, change)

    def escalate(self, caller: Caller, ticket_id: str, body: EscalateTicket) -> TicketView:
        """Escalate by hand, as the rules do (urgent, a senior agent and a manager, announced
        once); a second manual escalation changes nothing."""
        caller.require(Permission.WORK_TICKETS)
        rules = self.rules()
        reasons: list[EscalationEntry] = []

        def change(
            ticket: TicketRecord, entries: list[ClockEntry], now: datetime
        ) -> list[ClockEntry] | None:
            if ticket.status is S.CLOSED:
                raise Conflict(f"ticket {ticket_id} is closed; open a new one")
            entry = EscalationEntry(reason=EscalationReason.AGENT,
                                    detail=f"{caller.subject}: {body.reason}", at=now)  # fmt: skip
            reasons[:] = escalation.escalate(ticket, [entry], rules)
            return [] if reasons else None

        return self._change(ticket_id, change, reasons)

    def change_status(self, caller: Caller, ticket_id: str, body: ChangeStatus) -> TicketView:
        caller.require(Permission.WORK_TICKETS)

        def change(
            ticket: TicketRecord, entries: list[ClockEntry], now: datetime
        ) -> list[ClockEntry]:
            if body.status is ticket.status:
                return []
            if body.status not in TRANSITIONS[ticket.status]:
                raise Conflict(
                    f"{_a(ticket.status.value)} ticket cannot become {body.status.value}",
                    [FieldProblem("status", "not allowed from the ticket's status")],
                )
            ticket.status = body.status
            return sla.moves(ticket, entries, now, status=body.status)

        return self._change(ticket_id, change)

    def correct_category(self, caller: Caller, ticket_id: str, body: CorrectCategory) -> TicketView:
        """Set the category an agent reads in the customer's words. The classifier's answer is
        kept on the ticket (`classified_as`) and the correction recorded for retraining, once
        per change; the SLA targets stay pinned as they were when the ticket opened."""
        caller.require(Permission.WORK_TICKETS)
        corrected: list[tuple[str, str, str]] = []

        def change(
            ticket: TicketRecord, entries: list[ClockEntry], now: datetime
        ) -> list[ClockEntry]:
            corrected.clear()  # a retried attempt decides again on fresh data
            if body.category is ticket.category:
                return []
            ticket.classified_as = ticket.classified_as or ticket.category
            # Retraining pairs the words with the right label against what the model said.
            ref = f"ticket:{ticket_id}/message:{ticket.opening_message_id or 'unknown'}"
            corrected.append((ref, ticket.classified_as.value, body.category.value))
            ticket.category = body.category
            return []

        view = self._change(ticket_id, change)
        if corrected and self.corrections is not None:
            self.corrections.record_correction(caller, *corrected[0])
        return view

    def _change(
        self,
        ticket_id: str,
        change: Callable[[TicketRecord, list[ClockEntry], datetime], list[ClockEntry] | None],
        reasons: list[EscalationEntry] | None = None,
    ) -> TicketView:
        """Apply `change` to the ticket and commit it (retried on a concurrent change); a
        change that returns None changed nothing, and nothing is written. `reasons`: the
        escalations the change recorded, announced after the commit."""

        def attempt() -> tuple[TicketRecord, list[ClockEntry], list[ClockEntry]]:
            ticket, entries = self.load(ticket_id)
            if ticket.merged_into is not None:
                raise Conflict(
                    f"ticket {ticket_id} is merged into {ticket.merged_into}; work on that one"
                )
            now = self.clock()
            expected = ticket.rev
            added = change(ticket, entries, now)
            if added is None:
                return ticket, entries, []
            ticket.rev, ticket.updated_at = expected + 1, now
            self.store.commit(TicketChange(ticket, expected, added))
            return ticket, entries, added

        ticket, before, added = self._retry(attempt)
        self._after(ticket, before, added, reasons or [])
        return self.view(ticket, [*before, *added])

    # ------------------------------------------------------------ merging
    def merge(self, caller: Caller, ticket_id: str, body: MergeTicket) -> TicketView:
        """Merge a duplicate into a survivor: a link both ways, nothing moved or deleted, so
        unmerging restores both. The duplicate's running clocks pause (reason `merged`): its
        customer is answered on the survivor, whose clocks run; unmerging resumes them."""
        caller.require(Permission.WORK_TICKETS)
        if body.into == ticket_id:
            raise Conflict("a ticket cannot be merged into itself",
                           [FieldProblem("into", "the same ticket")])  # fmt: skip

        def attempt() -> Linked:
            dup, entries = self.load(ticket_id)
            survivor, _ = self._survivor(body.into)
            if dup.merged_into is not None:
                raise Conflict(f"ticket {ticket_id} is merged already; unmerge it first")
            if survivor.ticket_id == ticket_id:
                raise Conflict("the survivor is merged into this ticket; unmerge that first")
            if dup.customer_id != survivor.customer_id:
                raise Conflict("only one customer's tickets are duplicates of each other")
            return self._link(dup, entries, survivor, self.clock(), merge=True)

        return self._relinked(self._retry(attempt))

    def unmerge(self, caller: Caller, ticket_id: str) -> TicketView:
        caller.require(Permission.WORK_TICKETS)

        def attempt() -> Linked:
            dup, entries = self.load(ticket_id)
            if dup.merged_into is None:
                raise Conflict(f"ticket {ticket_id} is not merged")
            survivor, _ = self.load(dup.merged_into)
            return self._link(dup, entries, survivor, self.clock(), merge=False)

        return self._relinked(self._retry(attempt))

    def _link(
        self,
        dup: TicketRecord,
        entries: list[ClockEntry],
        survivor: TicketRecord,
        now: datetime,
        merge: bool,
    ) -> Linked:
        dup_rev, survivor_rev = dup.rev, survivor.rev
        if merge:
            dup.merged_into = survivor.ticket_id
            survivor.merged_from = sorted({*survivor.merged_from, dup.ticket_id})
            added = [c.move("pause", now, MERGED) for c in sla.clocks(dup, entries, now)
                     if c.running]  # fmt: skip
        else:
            dup.merged_into = None
            survivor.merged_from = [t for t in survivor.merged_from if t != dup.ticket_id]
            # Only what the merge paused: a clock paused by a wait stays paused.
            added = [
                c.move("resume", now, "unmerged") for c in sla.clocks(dup, entries, now)
                if c.paused and c.last is not None and c.last.reason == MERGED
            ]  # fmt: skip
        for t, rev in ((dup, dup_rev), (survivor, survivor_rev)):
            t.rev, t.updated_at = rev + 1, now
        # Two tickets, two conditions: both links change together or neither does.
        self.store.commit_pair(
            TicketChange(dup, dup_rev, added), TicketChange(survivor, survivor_rev)
        )
        return Linked(dup, entries, added)

    def _relinked(self, linked: Linked) -> TicketView:
        self._after(linked.dup, linked.before, linked.added, [])
        return self.view(linked.dup, [*linked.before, *linked.added])

    # ------------------------------------------------------------ rules
    def rules(self) -> EscalationRules:
        found = self.store.rules()
        return found[0] if found is not None else EscalationRules()

    def rules_view(self) -> EscalationRulesView:
        found = self.store.rules()
        if found is None:
            return EscalationRulesView(rules=EscalationRules())
        rules, at, by = found
        return EscalationRulesView(rules=rules, updated_at=at, updated_by=by)

    def put_rules(self, caller: Caller, rules: EscalationRules) -> EscalationRulesView:
        caller.require(Permission.MANAGE_SLA)
        now = self.clock()
        self.store.put_rules(rules, now, caller.subject)
        return EscalationRulesView(rules=rules, updated_at=now, updated_by=caller.subject)

    # ------------------------------------------------------------ SLA policies
    def policies_view(self) -> SlaPoliciesView:
        stored = self.store.policies()
        calendars = self.calendars_view().calendars
        if stored is None:
            return SlaPoliciesView(version=sla.POLICY_VERSION, policies=sla.default_policies(),
                                   calendars=calendars)  # fmt: skip
        return SlaPoliciesView(
            version=stored.version, policies=stored.policies, calendars=calendars,
            updated_at=stored.updated_at, updated_by=stored.updated_by,
        )  # fmt: skip

    def put_policies(self, caller: Caller, policies: SlaPolicies) -> SlaPoliciesView:
        """A new version; open tickets keep the version they pinned. Every calendar it names
        exists (a shop's is held by the same transaction: deleting it meanwhile fails this)."""
        caller.require(Permission.MANAGE_SLA)
        missing = [
            FieldProblem(f"calendars.{priority.value}", f"no calendar named {name}")
            for priority, name in policies.calendars.items()
            if name not in BUILT_IN and self._shop_calendar(name) is None
        ]
        if missing:
            raise InvalidInput("the policies name calendars that do not exist", missing)
        current = self.store.policies()
        stored = StoredPolicies(
            policies=policies, seq=current.seq + 1 if current else 1, updated_at=self.clock(),
            updated_by=caller.subject,
        )  # fmt: skip
        shop = [n for n in policies.calendars.values() if n not in BUILT_IN]
        if not self.store.put_policies(stored, shop):
            raise Conflict(
                "another version of the SLA policies was saved, or a calendar they name was "
                "deleted, meanwhile; read them"
            )
        return self.policies_view()

    # ------------------------------------------------------------ calendars
    def calendar(self, name: str) -> Calendar:
        """The one lookup of a calendar by name: a built-in, or the shop's latest version
        (named `<name>@v<n>`, its definition with it, which a ticket copies when it opens).
        Tickets already open read the calendar they pinned (`calendars.pinned`)."""
        if name in BUILT_IN:
            return CALENDARS[name]
        stored = self._shop_calendar(name)
        if stored is None or stored.definition is None:
            raise NotFound(f"no calendar {name}")
        return of_definition(stored.version, stored.definition)

    def _opening_calendar(self, name: str) -> Calendar:
        # The policies in force name only calendars that exist (put_policies and
        # delete_calendar hold each other off), so this is a table edited by hand: the ticket
        # still opens, counted in business hours, rather than failing the customer.
        try:
            return self.calendar(name)
        except NotFound:
            logger.error("the SLA policies name a missing calendar", extra={"calendar": name})
            return CALENDARS["business_hours"]

    def _shop_calendar(self, name: str) -> StoredCalendar | None:
        if not _CALENDAR_NAME.fullmatch(name):
            return None
        stored = self.store.calendars.get(name)
        return None if stored is None or stored.deleted else stored

    @staticmethod
    def _calendar_view(stored: StoredCalendar) -> CalendarView:
        assert stored.definition is not None
        return CalendarView(
            name=stored.name, built_in=False, version=stored.version,
            definition=stored.definition, updated_at=stored.updated_at,
            updated_by=stored.updated_by,
        )  # fmt: skip

    @staticmethod
    def _built_in_view(name: str) -> CalendarView:
        definition = CalendarDefinition.model_validate(describe(CALENDARS[name]))
        return CalendarView(name=name, built_in=True, version=None, definition=definition)

    def calendars_view(self) -> CalendarList:
        shop = sorted(
            (s for s in self.store.calendars.all() if not s.deleted), key=lambda s: s.name
        )
        return CalendarList(
            calendars=[*(self._built_in_view(n) for n in CALENDARS),
                       *(self._calendar_view(s) for s in shop)]
        )  # fmt: skip

    def calendar_view(self, name: str) -> CalendarView:
        if name in BUILT_IN:
            return self._built_in_view(name)
        stored = self._shop_calendar(name)
        if stored is None:
            raise NotFound(f"no calendar {name}")
        return self._calendar_view(stored)

    def _editable(self, caller: Caller, name: str, what: str) -> None:
        caller.require(Permission.MANAGE_SLA)
        if name in BUILT_IN:
            raise Conflict(f"the built-in calendar {name} cannot be {what}",
                           [FieldProblem("name", "a built-in calendar")])  # fmt: skip
        if not _CALENDAR_NAME.fullmatch(name):
            if what == "deleted":  # none can exist by that name
                raise NotFound(f"no calendar {name}")
            raise InvalidInput(
                "a calendar's name is a slug",
                [FieldProblem("name", "lower-case letters, digits, - and _, at most 40")],
            )

    def put_calendar(
        self, caller: Caller, name: str, definition: CalendarDefinition
    ) -> CalendarView:
        """Create or replace a shop calendar: a new version (conditional on the one it follows,
        so two managers saving at once get a 409, not a lost edit). Tickets open already keep
        the version they copied; tickets opened from now on copy this one."""
        self._editable(caller, name, "replaced")
        current = self.store.calendars.get(name)
        if current is None or current.deleted:
            live = [c for c in self.store.calendars.all() if not c.deleted]
            if len(live) >= MAX_CALENDARS:
                raise Conflict(
                    f"the shop has {len(live)} calendars, the most it keeps: delete one first"
                )
        stored = StoredCalendar(
            name=name, definition=definition, seq=current.seq + 1 if current else 1,
            updated_at=self.clock(), updated_by=caller.subject,
        )  # fmt: skip
        if not self.store.calendars.save(stored):
            raise Conflict(f"another version of calendar {name} was saved meanwhile; read it")
        return self._calendar_view(stored)

    def delete_calendar(self, caller: Caller, name: str) -> CalendarDeleted:
        """Delete a shop calendar the SLA policies in force do not use (409 while they do).
        Open tickets that copied it keep counting in it."""
        self._editable(caller, name, "deleted")
        current = self._shop_calendar(name)
        if current is None:
            raise NotFound(f"no calendar {name}")
        policies = self.store.policies()
        using = sorted(
            p.value for p, c in (policies.policies.calendars if policies else {}).items()
            if c == name
        )  # fmt: skip
        if policies is not None and using:
            raise Conflict(
                f"the SLA policies in force ({policies.version}) count {', '.join(using)} "
                f"tickets in calendar {name}: give them another calendar first",
                [FieldProblem("name", "used by the SLA policies in force")],
            )
        deleted = StoredCalendar(
            name=name, definition=None, seq=current.seq + 1, updated_at=self.clock(),
            updated_by=caller.subject,
        )  # fmt: skip
        if not self.store.calendars.delete(deleted, policies.seq if policies else None):
            raise Conflict(
                f"calendar {name} or the SLA policies changed meanwhile; read them and retry"
            )
        return CalendarDeleted(
            name=name,
            detail="new tickets cannot use it; open tickets keep counting in the version "
            "they copied",
        )

    # ------------------------------------------------------------ SLA wake-ups
    def sla_due(self, wake: WakeUp) -> str:
        """An SLA timer fell due: re-read the ticket and its clock, and if the clock really
        reached the stage (75% or 100% of its target, unmet), record it once, publish
        TicketSlaWarning or TicketSlaBreached, and escalate on a breach. What it did, for the
        log: warned, breached, stale (paused, met or moved since), duplicate, gone."""
        try:
            metric = SlaMetric(wake.payload.get("metric", ""))
            ticket_id = wake.payload["ticket_id"]
            stage = wake.payload["stage"]
        except (KeyError, ValueError):
            raise PoisonMessage("payload") from None
        if stage not in ("warn", "breach"):
            raise PoisonMessage("payload.stage")
        for n in range(MAX_ATTEMPTS):
            found = self.store.get(ticket_id)
            now = self.clock()
            clock = None
            if found is not None:
                ticket, entries = found
                clock = next((c for c in sla.clocks(ticket, entries, now) if c.metric is metric),
                             None)  # fmt: skip
            if found is None or clock is None:
                self.timers.claim(wake)
                return "gone"
            fraction = 1.0 if stage == "breach" else sla.WARN_AT
            # A second of slack: due times are kept to the millisecond, rounded down.
            reached = clock.elapsed_s + 1 >= fraction * clock.target_s
            done = ticket.breached if stage == "breach" else ticket.warned
            if not reached or metric in done:
                self.timers.claim(wake)
                return "stale" if not reached else "duplicate"
            expected = ticket.rev
            done.append(metric)
            event: BusEvent
            reasons: list[EscalationEntry] = []
            if stage == "breach":
                event = TicketSlaBreached(ticket_id=ticket_id, customer_id=ticket.customer_id,
                                          metric=metric.value, due_at=clock.due_at,
                                          occurred_at=now)  # fmt: skip
                rules = self.rules()
                if rules.escalate_on_breach:
                    reason = escalation.breach_reason(metric.value, now)
                    reasons = escalation.escalate(ticket, [reason], rules)
            else:
                event = TicketSlaWarning(ticket_id=ticket_id, customer_id=ticket.customer_id,
                                         metric=metric.value, due_at=clock.due_at,
                                         occurred_at=now)  # fmt: skip
            ticket.rev, ticket.updated_at = expected + 1, now
            # Published before the claim commits: a failure between the two repeats the event
            # (consumers see it at least once), never loses it.
            self.bus.publish([event, *([escalated_event(ticket, reasons)] if reasons else [])])
            try:
                claim = self.timers.claim_operation(wake)
                self.store.commit(TicketChange(ticket, expected, claim=claim))
            except ClaimedAlready:
                return "duplicate"
            except StaleTicket:
                if n + 1 < MAX_ATTEMPTS:
                    self._sleep(random.uniform(0, BACKOFF_S * 2**n))  # noqa: S311 - jitter
                continue
            if self.facts is not None and stage == "breach":  # analytics: best effort
                self.facts.write("ticket_facts", ticket_facts(ticket, [], [], reasons, metric))
            logger.info("sla stage reached", extra={"ticket_id": ticket_id, "stage": stage,
                                                    "metric": metric.value})  # fmt: skip
            return "breached" if stage == "breach" else "warned"
        raise Conflict(f"ticket {ticket_id} kept changing; the wake-up will come again")

    # ------------------------------------------------------------ after a commit
    def _after(
        self,
        ticket: TicketRecord,
        before: list[ClockEntry],
        added: list[ClockEntry],
        reasons: list[EscalationEntry],
    ) -> None:
        """Move the SLA timers the new entries call for, and announce an escalation. After the
        commit: a failure here leaves a ticket whose state is right (the wake-up re-reads it),
        and the timers a later change or a retry sets again (setting is idempotent)."""
        if added:
            met = sla.met_in_time(ticket, before, added, self.clock())
            if met:
                # Beside the SLA function's TicketSlaBreached: the breach-rate alarm divides
                # one by their sum. Named for the family, not the function: clocks are met by
                # whichever function changes the ticket.
                metrics.count("TicketSlaMet", len(met), {"service": SLA_MET_SERVICE})
            plan = sla.plan_timers(ticket, before, added, self.clock())
            for timer_id in plan.cancel:
                self.timers.cancel(sla.SLA_KIND, timer_id)
            for timer_id, due, payload in plan.set:
                # The customer named: an erasure finds the ticket's timers by index.
                self.timers.set(sla.SLA_KIND, timer_id, due, payload, ticket.customer_id)
        if reasons:
            self.bus.publish([escalated_event(ticket, reasons)])
        if self.facts is not None:  # analytics: best effort, never fails the change
            self.facts.write("ticket_facts", ticket_facts(ticket, before, added, reasons))


def escalated_event(ticket: TicketRecord, reasons: list[EscalationEntry]) -> TicketEscalated:
    return TicketEscalated(
        ticket_id=ticket.ticket_id,
        customer_id=ticket.customer_id,
        reasons=[r.reason.value for r in reasons],
        priority=ticket.priority.value,
        senior_agent=ticket.senior_agent,
        manager=ticket.manager,
        occurred_at=reasons[0].at,
    )


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"
