"""Privacy requests: filing (with the deadline its regulation sets, duplicates joined to the
open request), the customer's confirmation of an agent-filed request, a privacy officer's
approval, rejection and extension, and reading them back.

A request freezes the customer's DataSubject and the policy when it is filed, so an erasure
and its proof still know every identifier after the profile is gone. Execution is the
worker's (crm.privacy.executor): one store per queued message, resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from crm.auth import Caller, Permission
from crm.bus import Bus
from crm.clock import Clock, IdFactory
from crm.config import DataRegion
from crm.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from crm.personal_data import DataSubject, PersonalDataStore
from crm.privacy import deadlines
from crm.privacy.audit import AuditLog
from crm.privacy.models import (
    OPEN_STATUSES,
    Decision,
    Extension,
    FileRequest,
    Regulation,
    RequestKind,
    RequestPage,
    RequestStatus,
    RequestView,
    StepView,
)
from crm.privacy.records import PrivacyRequestRecord, StepRecord
from crm.privacy.settings import PrivacyPolicy
from crm.privacy.store import PrivacyStore
from crm.privacy_events import PrivacyDeadlineExtended
from crm.timers import Timers

TIMER_KIND = "privacy"
PROFILE_STEP = "profiles"  # the one step of consent withdrawal, rectification and restriction
# The kinds carried out by the stores of the registry; the others act on the profile.
STORE_KINDS = frozenset({RequestKind.ACCESS, RequestKind.ERASURE})

REGULATION_OF_REGION = {
    DataRegion.CN: Regulation.PIPL,
    DataRegion.EU: Regulation.GDPR,
    DataRegion.US: Regulation.CCPA,
}


class WorkQueue(Protocol):
    def send(self, bodies: Sequence[str], delays: Sequence[int] | None = None) -> None: ...


class ChangeSealer(Protocol):
    """Seals a rectification's changes under the customer's data key before they are stored
    with the request (they may hold a new phone or name)."""

    def seal_changes(self, customer_id: str, changes: dict[str, object]) -> str: ...


def work_body(request_id: str, store: str | None = None, finish: bool = False) -> str:
    from crm.privacy.records import WorkMessage

    return WorkMessage(request_id=request_id, store=store, finish=finish).model_dump_json()


def view_of(record: PrivacyRequestRecord) -> RequestView:
    return RequestView(
        request_id=record.request_id,
        customer_id=record.customer_id,
        kind=record.kind,
        regulation=record.regulation,
        status=record.status,
        dry_run=record.dry_run,
        filed_at=record.filed_at,
        filed_by_staff=record.filed_by_staff,
        due_at=record.due_at,
        acknowledge_by=record.acknowledge_by,
        extended=record.extended,
        deadline_missed=record.deadline_missed,
        needs_approval=record.needs_approval,
        needs_confirmation=record.needs_confirmation,
        approved_by=record.approved_by,
        confirmed_at=record.confirmed_at,
        completed_at=record.completed_at,
        duplicate_of=record.duplicate_of,
        steps=[
            StepView(
                store=name,
                state=step.state,
                attempts=step.attempts,
                error=step.error,
                counts=step.counts,
                holdings=step.holdings,
            )
            for name, step in sorted(record.steps.items())
        ],
        proof=record.proof,
        export_ready=record.export_key is not None,
    )


class PrivacyRequests:
    def __init__(
        self,
        store: PrivacyStore,
        audit: AuditLog,
        stores: Callable[[], Sequence[PersonalDataStore]],
        collect_subject: Callable[[str], DataSubject],
        sealer: ChangeSealer,
        work: WorkQueue,
        timers: Timers,
        bus: Bus,
        policy: PrivacyPolicy,
        region: Callable[[], DataRegion],
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self._store, self._audit, self._stores = store, audit, stores
        self._collect, self._sealer, self._work = collect_subject, sealer, work
        self._timers, self._bus, self._policy = timers, bus, policy
        self._region, self._clock, self._ids = region, clock, ids

    # ------------------------------------------------------------ filing
    def file(self, caller: Caller, body: FileRequest) -> tuple[RequestView, bool]:
        """The request as filed (True), or the open request of the same customer and kind
        it duplicates (False), with `duplicate_of` naming it."""
        caller.require(Permission.FILE_PRIVACY_REQUESTS, body.customer_id)
        self._check(body)
        now = self._clock()
        if not body.dry_run:
            since = now - timedelta(days=self._policy.duplicate_window_days)
            for existing in self._store.open_for(body.customer_id, body.kind, since):
                if not existing.dry_run:
                    view = view_of(existing)
                    return view.model_copy(update={"duplicate_of": existing.request_id}), False
        subject = self._collect(body.customer_id)
        regulation = body.regulation or REGULATION_OF_REGION[self._region()]
        needs_confirmation = caller.is_staff and not body.dry_run
        needs_approval = body.kind in self._policy.approval_kinds and not body.dry_run
        changes = None
        if body.changes is not None:
            plain = body.changes.model_dump(mode="json", exclude_unset=True)
            changes = {"sealed": self._sealer.seal_changes(body.customer_id, plain)}
        status = (
            RequestStatus.AWAITING_CONFIRMATION
            if needs_confirmation
            else RequestStatus.AWAITING_APPROVAL
            if needs_approval
            else RequestStatus.RUNNING
        )
        record = PrivacyRequestRecord(
            request_id=self._ids(),
            customer_id=body.customer_id,
            kind=body.kind,
            regulation=regulation,
            status=status,
            dry_run=body.dry_run,
            filed_at=now,
            filed_by=caller.subject,
            filed_by_staff=caller.is_staff,
            reason=body.reason,
            due_at=deadlines.due_at(regulation, now),
            acknowledge_by=deadlines.acknowledge_by(regulation, now),
            needs_approval=needs_approval,
            needs_confirmation=needs_confirmation,
            subject=subject,
            purposes=[p.value for p in body.purposes],
            changes=changes,
            steps=self._initial_steps(body.kind, body.dry_run)
            if status is RequestStatus.RUNNING
            else {},
        )
        if not self._store.create(record):  # pragma: no cover - ids are unique
            raise Conflict("a request with this id exists")
        if not record.dry_run:
            self._set_deadline_timers(record)
        self._audit.append(
            caller.subject,
            "request_filed",
            customer_id=record.customer_id,
            request_id=record.request_id,
            why=body.reason,
            fields=sorted(body.changes.model_fields_set) if body.changes else (),
            detail={
                "kind": record.kind.value,
                "regulation": regulation.value,
                "dry_run": record.dry_run,
                "by_staff": caller.is_staff,
            },
        )
        if status is RequestStatus.RUNNING:
            self._queue_steps(record)
        return view_of(record), True

    def _check(self, body: FileRequest) -> None:
        problems = []
        if body.purposes and body.kind is not RequestKind.CONSENT_WITHDRAWAL:
            problems.append(FieldProblem("purposes", "only for a consent_withdrawal"))
        if body.kind is RequestKind.RECTIFICATION:
            if body.changes is None or not body.changes.model_fields_set:
                problems.append(FieldProblem("changes", "a rectification names its changes"))
        elif body.changes is not None:
            problems.append(FieldProblem("changes", "only for a rectification"))
        if problems:
            raise InvalidInput("the request does not fit its kind", problems)

    def _initial_steps(self, kind: RequestKind, dry_run: bool) -> dict[str, StepRecord]:
        if kind in STORE_KINDS or dry_run:
            return {store.name: StepRecord() for store in self._stores()}
        return {PROFILE_STEP: StepRecord()}

    def _queue_steps(self, record: PrivacyRequestRecord) -> None:
        """One message per store step not done yet: each store is erased (exported) on its
        own, and one that fails is retried alone."""
        todo = [name for name, step in sorted(record.steps.items()) if step.state != "done"]
        self._work.send([work_body(record.request_id, name) for name in todo])

    def _set_deadline_timers(self, record: PrivacyRequestRecord) -> None:
        payload = {"request_id": record.request_id}
        now = self._clock()
        near = record.due_at - deadlines.REMIND_BEFORE
        if near > now:
            self._timers.set(TIMER_KIND, f"{record.request_id}.near", near, payload)
        self._timers.set(TIMER_KIND, f"{record.request_id}.due", record.due_at, payload)

    def _cancel_deadline_timers(self, request_id: str) -> None:
        for what in ("near", "due"):
            self._timers.cancel(TIMER_KIND, f"{request_id}.{what}")

    # ------------------------------------------------------------ deciding
    def _load(self, request_id: str) -> PrivacyRequestRecord:
        record = self._store.get(request_id)
        if record is None:
            raise NotFound(f"no privacy request {request_id}")
        return record

    def _start(self, record: PrivacyRequestRecord, was: RequestStatus, **changes: object) -> None:
        steps = self._initial_steps(record.kind, record.dry_run)
        update = {
            **changes,
            "status": RequestStatus.RUNNING.value,
            "steps": {n: s.model_dump(mode="json") for n, s in steps.items()},
        }
        if not self._store.update(record.request_id, update, when=frozenset({was})):
            raise Conflict("the request changed meanwhile; read it again")
        self._queue_steps(record.model_copy(update={"steps": steps}))

    def approve(self, caller: Caller, request_id: str, body: Decision) -> RequestView:
        caller.require(Permission.APPROVE_PRIVACY_REQUESTS)
        record = self._load(request_id)
        if record.status is not RequestStatus.AWAITING_APPROVAL:
            raise Conflict(f"the request is {record.status.value}, not awaiting approval")
        self._start(record, RequestStatus.AWAITING_APPROVAL, approved_by=caller.subject)
        self._audit.append(
            caller.subject,
            "request_approved",
            customer_id=record.customer_id,
            request_id=request_id,
            why=body.reason,
        )
        return view_of(self._load(request_id))

    def reject(self, caller: Caller, request_id: str, body: Decision) -> RequestView:
        caller.require(Permission.APPROVE_PRIVACY_REQUESTS)
        record = self._load(request_id)
        waiting = frozenset({RequestStatus.AWAITING_APPROVAL, RequestStatus.AWAITING_CONFIRMATION})
        if record.status not in waiting:
            raise Conflict(f"the request is {record.status.value}; only a waiting one is rejected")
        now = self._clock()
        update = {"status": RequestStatus.REJECTED.value, "completed_at": now.isoformat()}
        if not self._store.update(request_id, update, when=waiting):
            raise Conflict("the request changed meanwhile; read it again")
        self._cancel_deadline_timers(request_id)
        self._audit.append(
            caller.subject,
            "request_rejected",
            customer_id=record.customer_id,
            request_id=request_id,
            why=body.reason,
        )
        return view_of(self._load(request_id))

    def confirm(self, caller: Caller, request_id: str) -> RequestView:
        """The customer confirms a request an agent filed for them (with their own token)."""
        record = self._load(request_id)
        if caller.is_staff or caller.customer_id != record.customer_id:
            raise Forbidden("only the customer the request is about confirms it")
        if record.status is not RequestStatus.AWAITING_CONFIRMATION:
            raise Conflict(f"the request is {record.status.value}, not awaiting confirmation")
        now = self._clock().isoformat()
        if record.needs_approval:
            update = {"status": RequestStatus.AWAITING_APPROVAL.value, "confirmed_at": now}
            if not self._store.update(
                request_id, update, when=frozenset({RequestStatus.AWAITING_CONFIRMATION})
            ):
                raise Conflict("the request changed meanwhile; read it again")
        else:
            self._start(record, RequestStatus.AWAITING_CONFIRMATION, confirmed_at=now)
        self._audit.append(
            caller.subject,
            "request_confirmed",
            customer_id=record.customer_id,
            request_id=request_id,
        )
        return view_of(self._load(request_id))

    def extend(self, caller: Caller, request_id: str, body: Extension) -> RequestView:
        caller.require(Permission.APPROVE_PRIVACY_REQUESTS)
        record = self._load(request_id)
        if record.status not in OPEN_STATUSES:
            raise Conflict(f"the request is {record.status.value}; only an open one is extended")
        if record.extended:
            raise Conflict("the request's deadline was extended already (once is allowed)")
        new_due = deadlines.extended(record.regulation, record.due_at)
        if new_due is None:
            raise InvalidInput(
                f"{record.regulation.value.upper()} allows no extension",
                [FieldProblem("regulation", "no extension")],
            )
        update = {"due_at": new_due.isoformat(), "extended": True}
        if not self._store.update(request_id, update, when=OPEN_STATUSES):
            raise Conflict("the request changed meanwhile; read it again")
        for what, due in (("near", new_due - deadlines.REMIND_BEFORE), ("due", new_due)):
            timer_id = f"{request_id}.{what}"
            if not self._reschedule(timer_id, due):
                self._timers.set(TIMER_KIND, timer_id, due, {"request_id": request_id})
        now = self._clock()
        self._bus.publish(
            [
                PrivacyDeadlineExtended(
                    request_id=request_id,
                    customer_id=record.customer_id,
                    reason=body.reason,
                    due_at=new_due,
                    occurred_at=now,
                )
            ]
        )
        self._audit.append(
            caller.subject,
            "deadline_extended",
            customer_id=record.customer_id,
            request_id=request_id,
            why=body.reason,
            detail={"due_at": new_due.isoformat()},
        )
        return view_of(self._load(request_id))

    def _reschedule(self, timer_id: str, due: datetime) -> bool:
        try:
            self._timers.reschedule(TIMER_KIND, timer_id, due)
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------ reading
    def get(self, caller: Caller, request_id: str) -> RequestView:
        record = self._load(request_id)
        caller.require(Permission.READ_PRIVACY_REQUESTS, record.customer_id)
        return view_of(record)

    def list(
        self, caller: Caller, status: RequestStatus, limit: int, token: str | None
    ) -> RequestPage:
        caller.require(Permission.APPROVE_PRIVACY_REQUESTS)
        records, next_token = self._store.by_status(status, limit, token)
        return RequestPage(requests=[view_of(r) for r in records], next_token=next_token)
