"""After-sales cases the customer can follow: opened by the customer or an agent, advanced by
upstream systems (warehouse, carrier, payment) one stage at a time, read as a timeline.

Rules kept here:
- a case moves only along its kind's stages (aftersales_models.next_stages); anything else is
  a 409 that names the stages it may move to, so an upstream system can tell "early" from
  "wrong";
- each upstream event id moves a case once: a redelivered event answers with the case as it
  is and changes nothing;
- a small dispute (a refund or return of at most `instant_refund_limit`) is refunded at once
  (先行赔付), recorded with who and why, instead of waiting for goods worth less than the
  handling;
- the customer's note and any rejection or cancellation reason are sealed under the
  customer's data key; the bus carries ids and codes only (AfterSalesStageChanged);
- a stage with a target (aftersales_models.TARGETS) sets a timer of kind `aftersales` when the
  case enters it; if the case is still there when it fires, AfterSalesStageOverdue is
  published once (the timer's claim), and leaving the stage cancels it.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from crm.aftersales_codes import ReturnReason
from crm.audit import AFTERSALES_CASE, NoPiiReads, PiiReads
from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock, IdFactory
from crm.errors import Conflict, FieldProblem, InvalidInput, NotFound
from crm.pii import FieldCipher
from crm.profiles import Loaded, OrderPayment
from crm.sqs_consumer import PoisonMessage
from crm.ticket_events import AfterSalesStageChanged, AfterSalesStageOverdue
from crm.tickets.aftersales_models import (
    CLOSED,
    NEEDS_REASON,
    STAGE_LABELS,
    TARGETS,
    AfterSalesCase,
    CaseKind,
    CaseList,
    CaseRequest,
    InstantRefund,
    Stage,
    StageAdvance,
    TimelineEntry,
    next_stages,
)
from crm.tickets.aftersales_store import (
    AfterSalesStore,
    CaseRecord,
    DuplicateEvent,
    FeedbackCount,
    InstantRefundTaken,
    OrderAskedOut,
    StageRecord,
    StaleCase,
)
from crm.tickets.feedback import feedback_counts, risk_keywords
from crm.timers import Timers, WakeUp

DEFAULT_INSTANT_REFUND_LIMIT = Decimal("50.00")
INSTANT_REFUND_KINDS = {CaseKind.REFUND, CaseKind.RETURN}
INSTANT_REFUND_BY = "policy:instant-refund"
MAX_ATTEMPTS = 5
OVERDUE_KIND = "aftersales"  # the timers' kind (TIMER_QUEUE_AFTERSALES in template.yaml)


def instant_refund_limit() -> Decimal:
    """The largest dispute refunded at once (AFTERSALES_INSTANT_REFUND_LIMIT, template.yaml's
    InstantRefundLimit); 0 turns 先行赔付 off."""
    raw = os.environ.get("AFTERSALES_INSTANT_REFUND_LIMIT")
    if not raw:
        return DEFAULT_INSTANT_REFUND_LIMIT
    try:
        limit = Decimal(raw)
    except InvalidOperation:
        raise RuntimeError("AFTERSALES_INSTANT_REFUND_LIMIT is not an amount") from None
    if not limit.is_finite() or limit < 0:
        raise RuntimeError("AFTERSALES_INSTANT_REFUND_LIMIT must be 0 or more")
    return limit


def _check_amount(request: CaseRequest, refundable: Decimal, asked: Decimal) -> None:
    """Money asked back on an order the CRM knows is at most what it has left to refund (what
    it paid less its folded refunds) less what its open and refunded cases ask already."""
    left = max(refundable - asked, Decimal("0.00"))
    if request.amount > left:
        raise InvalidInput(
            f"amount {request.amount} is more than order {request.order_id} has left to refund "
            f"({left}: {refundable} less {asked} its cases ask back already)",
            [FieldProblem("amount", f"at most {left}")],
        )


class CustomerOrders(Protocol):
    """The profiles family's read of customers with the folded payments of some orders."""

    def load_many(
        self, customer_ids: Collection[str], order_ids: Collection[str] = ()
    ) -> Loaded: ...

    def sealing_cipher_with_payments(
        self, customer_id: str, order_ids: Collection[str]
    ) -> tuple[FieldCipher, Loaded]: ...


class TextCiphers(Protocol):
    """The customer's own data key's cipher (profiles' `sealing_cipher`), for text about them."""

    def __call__(self, customer_id: str) -> FieldCipher: ...


def _overdue_timer(case_id: str, seq: int) -> str:
    return f"{case_id}#{seq}"


def _note_field(case_id: str) -> str:
    return f"aftersales:{case_id}:note"


def _reason_field(case_id: str, seq: int) -> str:
    return f"aftersales:{case_id}:stage:{seq}"


class AfterSales:
    def __init__(
        self,
        store: AfterSalesStore,
        ciphers: TextCiphers,
        bus: Bus,
        clock: Clock,
        ids: IdFactory,
        instant_refund_limit: Decimal = DEFAULT_INSTANT_REFUND_LIMIT,
        timers: Timers | None = None,
        orders: CustomerOrders | None = None,
        pii_reads: PiiReads | None = None,
    ) -> None:
        # Staff reads of a case's sealed note and reasons go to the audit trail (crm.audit).
        self.pii_reads = pii_reads or NoPiiReads()
        self.timers = timers
        self.orders = orders
        self.store = store
        self.ciphers = ciphers
        self.bus = bus
        self.clock = clock
        self.ids = ids
        self.instant_refund_limit = instant_refund_limit

    # ------------------------------------------------------------ opening
    def open_case(self, caller: Caller, request: CaseRequest) -> AfterSalesCase:
        caller.require(Permission.OPEN_TICKET, request.customer_id)
        now = self.clock()
        case_id = self.ids()
        # Raises NotFound for an unknown customer before anything is written. The profile is
        # read once: its data key seals the note, the payment read with it checks the order.
        payment: OrderPayment | None = None
        if self.orders is None:
            cipher = self.ciphers(request.customer_id)
        else:
            cipher, loaded = self.orders.sealing_cipher_with_payments(
                request.customer_id, [request.order_id]
            )
            payment = self._check_order(request.customer_id, request.order_id, loaded)
        # What the order has left to refund, when the CRM knows it: what it paid less the
        # refunds folded from the shop's events. The cases opened here are held to it by
        # the order's ASKED item, in the case's own transaction.
        refundable = None
        if payment is not None and request.kind in INSTANT_REFUND_KINDS:
            refundable = max(payment.amount - payment.refunded, Decimal("0.00"))
            if request.amount > refundable:  # (the item's condition holds for a first case)
                asked = self.store.asked_back(request.customer_id, request.order_id)
                _check_amount(request, refundable, asked)
        case = CaseRecord(
            case_id=case_id,
            kind=request.kind.value,
            order_id=request.order_id,
            customer_id=request.customer_id,
            reason=request.reason.value,
            amount=request.amount,
            stage=Stage.SUBMITTED.value,
            created_at=now,
            sku=request.sku,
            product_category=request.product_category,
            note=cipher.seal(_note_field(case_id), request.note) if request.note else None,
            counted=refundable is not None,
        )
        case.stages.append(StageRecord(0, Stage.SUBMITTED.value, now, caller.subject))
        # 先行赔付 once per order, and only on an order the CRM knows is the customer's, for
        # no more than it has left to refund (a made-up order id waits for review).
        instant = (
            payment is not None
            and request.kind in INSTANT_REFUND_KINDS
            and (request.amount <= self.instant_refund_limit)
        )
        if instant:
            self._refund_at_once(case, cipher, now)
        counts = feedback_counts(
            sku=request.sku,
            product_category=request.product_category,
            at=now,
            reason=request.reason.value,
            risk=risk_keywords(request.note),
        )
        feedback = (f"aftersales:{case_id}", counts) if counts else None
        once = (payment.customer_id, request.order_id) if instant and payment else None
        if not self._create(case, feedback, once, refundable):
            assert refundable is not None
            _check_amount(
                request, refundable, self.store.asked_back(request.customer_id, request.order_id)
            )
            raise Conflict("the order's cases changed while this one was opened: try again")
        previous: str | None = None
        events = []
        for stage in case.stages:
            events.append(self._event(case, stage.stage, previous, now))
            previous = stage.stage
        self.bus.publish(events)
        self._time_stage(case, None)
        return self._view(case, cipher, now)

    def _create(
        self,
        case: CaseRecord,
        feedback: tuple[str, list[FeedbackCount]] | None,
        once: tuple[str, str] | None,
        refundable: Decimal | None,
    ) -> bool:
        """Writes the case; False when its order's cases would ask back more than it has
        left (nothing written)."""
        try:
            try:
                self.store.create(case, feedback, instant_refund_of=once, refundable=refundable)
            except InstantRefundTaken:
                # Another case of this order was refunded at once: this one waits for review.
                del case.stages[1:]
                case.stage, case.instant_refund = Stage.SUBMITTED.value, None
                self.store.create(case, feedback, refundable=refundable)
        except OrderAskedOut:
            return False
        return True

    def _refund_at_once(self, case: CaseRecord, cipher: FieldCipher, now: datetime) -> None:
        why = (
            f"先行赔付: amount {case.amount} is within the instant-refund limit "
            f"{self.instant_refund_limit}"
        )
        case.instant_refund = {
            "by": INSTANT_REFUND_BY,
            "why": why,
            "limit": str(self.instant_refund_limit),
            "at": now.isoformat(),
        }
        case.stages.append(
            StageRecord(1, Stage.REFUNDED.value, now, INSTANT_REFUND_BY,
                        cipher.seal(_reason_field(case.case_id, 1), why))
        )  # fmt: skip
        case.stage = Stage.REFUNDED.value

    # ------------------------------------------------------------ advancing
    def advance(self, caller: Caller, case_id: str, request: StageAdvance) -> AfterSalesCase:
        caller.require(Permission.ADVANCE_AFTERSALES)
        if request.stage in NEEDS_REASON and not request.reason:
            raise InvalidInput(
                f"moving a case to {request.stage.value} needs a reason",
                [FieldProblem("reason", "required for rejected and cancelled")],
            )
        for _ in range(MAX_ATTEMPTS):
            # Asked before the case is read: the event and its stage land in one transaction,
            # so a case read after seeing the event includes what it did.
            applied = self.store.applied_event(case_id, request.event_id)
            case = self._load(case_id)
            cipher = self.ciphers(case.customer_id)
            now = self.clock()
            if applied:
                earlier = next((s for s in case.stages if s.event_id == request.event_id), None)
                if earlier is not None and earlier.stage != request.stage.value:
                    # A redelivery answers as the case stands; another change under a used id
                    # is a mistake upstream, not the same event.
                    raise Conflict(
                        f"event {request.event_id} moved the case to {earlier.stage} already: an "
                        f"event id names one stage change",
                        [FieldProblem("event_id", f"used for {earlier.stage}")],
                    )
                self._audit_read(caller, case.customer_id, [case])
                return self._view(case, cipher, now)
            allowed = next_stages(CaseKind(case.kind), Stage(case.stage))
            if request.stage not in allowed:
                if self.store.applied_event(case_id, request.event_id):
                    continue  # applied by a concurrent delivery since we looked: answer as it is
                names = ", ".join(s.value for s in allowed) or "none: the case is closed"
                raise Conflict(
                    f"a {case.kind} case at {case.stage} cannot move to {request.stage.value}; "
                    f"it may move to: {names}",
                    [FieldProblem("stage", f"allowed next: {names}")],
                )
            seq = len(case.stages)
            reason = (
                cipher.seal(_reason_field(case_id, seq), request.reason) if request.reason else None
            )
            at = request.at or now
            stage = StageRecord(seq, request.stage.value, at, caller.subject, reason,
                                request.event_id)  # fmt: skip
            try:
                self.store.advance(case, stage, request.event_id)
            except DuplicateEvent:
                continue  # applied by a concurrent delivery: answer as it now stands
            except StaleCase:
                continue  # another stage landed first: check again against it
            previous = case.stage
            case.stage = stage.stage
            case.version += 1
            case.stages.append(stage)
            self.bus.publish([self._event(case, stage.stage, previous, now)])
            self._time_stage(case, seq - 1)
            self._audit_read(caller, case.customer_id, [case])
            return self._view(case, cipher, now)
        raise Conflict("the case was changed by other requests at the same moment; try again")

    # ------------------------------------------------------------ reading
    def case(self, caller: Caller, case_id: str) -> AfterSalesCase:
        case = self._load(case_id)
        # A customer reads their own cases only; to others a case id is as good as absent.
        if not caller.can(Permission.READ_TICKETS, case.customer_id):
            raise NotFound(f"no after-sales case {case_id}")
        self._audit_read(caller, case.customer_id, [case])
        return self._view(case, self.ciphers(case.customer_id), self.clock())

    def customer_cases(self, caller: Caller, customer_id: str) -> CaseList:
        caller.require(Permission.READ_TICKETS, customer_id)
        cases = self.store.customer_cases(customer_id)
        if not cases:
            return CaseList(cases=[])
        self._audit_read(caller, customer_id, cases)
        cipher = self.ciphers(customer_id)
        now = self.clock()
        return CaseList(cases=[self._view(c, cipher, now) for c in cases])

    def _audit_read(self, caller: Caller, customer_id: str, cases: list[CaseRecord]) -> None:
        """Staff opening the customer's sealed words (a note, a stage's reason): recorded."""
        if not caller.is_staff or caller.system:
            return
        fields = {"note" for c in cases if c.note} | {
            "stage_reason" for c in cases for s in c.stages if s.reason
        }
        if fields:
            self.pii_reads.unmasked_read(
                caller.subject, customer_id, sorted(fields), AFTERSALES_CASE
            )

    def _check_order(self, customer_id: str, order_id: str, loaded: Loaded) -> OrderPayment | None:
        """An order the CRM has folded must be the customer's (merges followed): a case on
        another customer's order is refused, with the same 404 as an order that is not theirs,
        so order ids cannot be probed. An order not folded yet (the events lag, or the shop's
        order system is the only record) is taken as given, but never refunded at once.
        `loaded`: the customer's profile with the order's payment. Returns the customer's
        payment of the order, if the CRM knows it."""
        assert self.orders is not None
        payment = loaded.payments.get(order_id)
        live = loaded.live.get(customer_id)
        if payment is None or live is None:
            return None
        if payment.customer_id == live.customer_id:
            return payment
        # Folded before a merge, the payment names the absorbed profile: follow it.
        owner = self.orders.load_many([payment.customer_id]).live.get(payment.customer_id)
        if owner is None or owner.customer_id != live.customer_id:
            raise NotFound(
                f"no order {order_id} among customer {customer_id}'s orders",
                [FieldProblem("order_id", "not one of the customer's orders")],
            )
        return payment

    # ------------------------------------------------------------ overdue stages
    def _time_stage(self, case: CaseRecord, left: int | None) -> None:
        """After a commit: cancel the timer of the stage the case left, set one for the stage
        it entered when that stage has a target. A failure here leaves the case right (its
        timeline shows overdue stages as it is read) and only the follow-up event missing."""
        if self.timers is None:
            return
        if left is not None:
            self.timers.cancel(OVERDUE_KIND, _overdue_timer(case.case_id, left))
        current = case.stages[-1]
        target = TARGETS.get(Stage(current.stage))
        if target is None or Stage(current.stage) in CLOSED:
            return
        self.timers.set(
            OVERDUE_KIND,
            _overdue_timer(case.case_id, current.seq),
            current.at + target,
            {"case_id": case.case_id, "seq": str(current.seq)},
            subject=case.customer_id,  # an erasure finds the case's timers by index
        )

    def stage_due(self, wake: WakeUp) -> str:
        """A stage's target passed: if the case is still in that stage, publish
        AfterSalesStageOverdue, once. What it did, for the log: overdue, moved, gone."""
        if self.timers is None:
            raise RuntimeError("after-sales stage timers need the timers")
        try:
            case_id, seq = wake.payload["case_id"], int(wake.payload["seq"])
        except (KeyError, ValueError):
            raise PoisonMessage("payload") from None
        case = self.store.get(case_id)
        if case is None or case.stages[-1].seq != seq:
            self.timers.claim(wake)
            return "gone" if case is None else "moved"
        stage = case.stages[-1]
        target = TARGETS.get(Stage(stage.stage))
        event = AfterSalesStageOverdue(
            case_id=case.case_id, customer_id=case.customer_id, order_id=case.order_id,
            kind=case.kind, stage=stage.stage,
            due_at=stage.at + target if target else wake.due_at, occurred_at=self.clock(),
        )  # fmt: skip
        # Published before the claim: a failure between the two repeats the event (consumers
        # see it at least once), never loses it; a claimed timer publishes nothing more.
        self.bus.publish([event])
        return "overdue" if self.timers.claim(wake) else "duplicate"

    # ------------------------------------------------------------ helpers
    def _load(self, case_id: str) -> CaseRecord:
        case = self.store.get(case_id)
        if case is None:
            raise NotFound(f"no after-sales case {case_id}")
        return case

    @staticmethod
    def _event(
        case: CaseRecord, stage: str, previous: str | None, now: datetime
    ) -> AfterSalesStageChanged:
        return AfterSalesStageChanged(
            case_id=case.case_id,
            customer_id=case.customer_id,
            order_id=case.order_id,
            kind=case.kind,
            stage=stage,
            previous_stage=previous,
            closed=Stage(stage) in CLOSED,
            occurred_at=now,
        )

    @staticmethod
    def _view(case: CaseRecord, cipher: FieldCipher, now: datetime) -> AfterSalesCase:
        timeline = []
        for n, stage in enumerate(case.stages):
            current = Stage(stage.stage)
            target = TARGETS.get(current)
            target_at = stage.at + target if target and current not in CLOSED else None
            left_at = case.stages[n + 1].at if n + 1 < len(case.stages) else None
            overdue = target_at is not None and (left_at or now) > target_at
            reason = cipher.open(_reason_field(case.case_id, stage.seq), stage.reason) if (
                stage.reason
            ) else None  # fmt: skip
            timeline.append(
                TimelineEntry(
                    stage=current,
                    label=STAGE_LABELS[current],
                    at=stage.at,
                    by=stage.by,
                    target_at=target_at,
                    left_at=left_at,
                    overdue=overdue,
                    reason=reason,
                )
            )
        now_at = Stage(case.stage)
        refund = case.instant_refund
        return AfterSalesCase(
            case_id=case.case_id,
            kind=CaseKind(case.kind),
            order_id=case.order_id,
            customer_id=case.customer_id,
            reason=ReturnReason(case.reason),
            amount=case.amount,
            sku=case.sku,
            product_category=case.product_category,
            note=cipher.open(_note_field(case.case_id), case.note) if case.note else None,
            stage=now_at,
            label=STAGE_LABELS[now_at],
            closed=now_at in CLOSED,
            next_stages=next_stages(CaseKind(case.kind), now_at),
            overdue=bool(timeline) and timeline[-1].overdue and timeline[-1].left_at is None,
            instant_refund=InstantRefund(
                by=refund["by"],
                why=refund["why"],
                limit=Decimal(refund["limit"]),
                at=datetime.fromisoformat(refund["at"]),
            )
            if refund
            else None,
            created_at=case.created_at,
            timeline=timeline,
        )
