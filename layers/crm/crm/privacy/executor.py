"""Carrying requests out, as the privacy worker does (PrivacyQueue): one store's step per
message, then the request's finish.

- A step runs the store's `export` (access), `erase` (erasure) or `inventory` (a dry run)
  on the DataSubject frozen in the request; consent withdrawal, rectification and
  restriction are one step on the profile. Each step's outcome is recorded on its own
  (pending, done, failed with the error's class: never its text, which may quote data);
  a failed step raises, so SQS delivers its message again and only that store is retried.
- A done step is never run again, and a request no longer running does nothing: a message
  delivered twice, or a completed request queued again, changes nothing.
- When every step is done the request finishes: an erasure's verification pass runs every
  store's `verify` and the proof (per store: checked, clean, remnants' locations) is kept
  with the request; an access request's parts become one zip in ExportsBucket. Only the
  worker that moves the request to `completed` audits and announces it.
- Deadline wake-ups (timer kind `privacy`) re-read the request: still open near its deadline
  -> PrivacyDeadlineNear (and its unfinished steps are queued again, in case a queueing
  failed); still open at it -> marked missed, PrivacyDeadlineMissed, a metric and an alarm.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Literal, Protocol

from pydantic import ValidationError

from crm.auth import Caller
from crm.bus import Bus
from crm.clock import Clock
from crm.errors import Conflict, Forbidden, NotFound
from crm.personal_data import PersonalDataStore, StoreExport
from crm.privacy.audit import AuditLog
from crm.privacy.bundle import build_bundle
from crm.privacy.models import (
    OPEN_STATUSES,
    ExportLink,
    RequestKind,
    RequestStatus,
    StepState,
    StoreProof,
)
from crm.privacy.records import PrivacyRequestRecord, StepRecord, WorkMessage
from crm.privacy.service import PROFILE_STEP, WorkQueue, work_body
from crm.privacy.settings import PrivacyPolicy
from crm.privacy.store import PrivacyFiles, PrivacyStore
from crm.privacy_events import (
    ConsentWithdrawn,
    PrivacyDeadlineMissed,
    PrivacyDeadlineNear,
    PrivacyRequestCompleted,
)
from crm.sqs_consumer import PoisonMessage
from crm.timers import Timers, WakeUp

WORKER = "privacy-worker"  # the actor the audit trail names for the worker's own actions

StepOutcome = Literal["done", "skipped"]
DeadlineOutcome = Literal["near", "missed", "none"]


class ProfileActions(Protocol):
    """What the profile step does, through the profiles family's own use cases."""

    def withdraw_consent(
        self, customer_id: str, purposes: Sequence[str], source: str, request_id: str
    ) -> list[str]:
        """The purposes withdrawn (all marketing purposes when none are named); run again for
        the same request, it records no decision twice."""
        ...

    def rectify(self, customer_id: str, sealed_changes: str) -> list[str]:
        """The changed fields' names."""
        ...

    def restrict(self, customer_id: str) -> None: ...


def part_key(request_id: str, store: str) -> str:
    return f"exports/{request_id}/parts/{store}.json"


def bundle_key(request_id: str) -> str:
    return f"exports/{request_id}/bundle.zip"


class PrivacyExecutor:
    def __init__(
        self,
        store: PrivacyStore,
        files: PrivacyFiles,
        audit: AuditLog,
        stores: Callable[[], Sequence[PersonalDataStore]],
        profile_actions: ProfileActions,
        work: WorkQueue,
        timers: Timers,
        bus: Bus,
        policy: PrivacyPolicy,
        clock: Clock,
    ) -> None:
        self._store, self._files, self._audit, self._stores = store, files, audit, stores
        self._profile, self._work, self._timers, self._bus = profile_actions, work, timers, bus
        self._policy, self._clock = policy, clock

    # ------------------------------------------------------------ the worker's messages
    def handle(self, body: str) -> str:
        """One PrivacyQueue message: a work message, or a deadline wake-up."""
        try:
            shape = json.loads(body)
        except ValueError:
            raise PoisonMessage("not JSON") from None
        if isinstance(shape, dict) and "timer_id" in shape:
            return self.deadline_due(WakeUp.parse(body))
        try:
            message = WorkMessage.model_validate_json(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            raise PoisonMessage(f"not a privacy work message: {', '.join(fields)}") from None
        if message.finish:
            return self.finish(message.request_id)
        if message.store is None:
            raise PoisonMessage("a work message names a store or asks to finish")
        return self.step(message.request_id, message.store)

    def _by_name(self) -> dict[str, PersonalDataStore]:
        return {store.name: store for store in self._stores()}

    def step(self, request_id: str, name: str) -> StepOutcome:
        record = self._store.get(request_id)
        if record is None or record.status is not RequestStatus.RUNNING:
            return "skipped"  # rejected, completed, or never there: nothing to do
        current = record.steps.get(name)
        if current is None:
            raise PoisonMessage("the request has no step of this store")
        if current.state is StepState.DONE:
            self._finish_when_done(request_id)
            return "skipped"
        attempt = current.attempts + 1
        try:
            done = self._run(record, name, attempt)
        except Exception as exc:
            failed = StepRecord(state=StepState.FAILED, attempts=attempt, error=type(exc).__name__)
            self._store.set_step(request_id, name, failed)
            raise
        self._store.set_step(request_id, name, done)
        self._finish_when_done(request_id)
        return "done"

    def _run(self, record: PrivacyRequestRecord, name: str, attempt: int) -> StepRecord:
        subject = record.subject
        if name == PROFILE_STEP and record.kind not in (RequestKind.ACCESS, RequestKind.ERASURE):
            return self._profile_step(record, attempt)
        store = self._by_name().get(name)
        if store is None:
            raise PoisonMessage("no store of this name in the registry")
        if record.dry_run:
            inventory = store.inventory(subject)
            return StepRecord(
                state=StepState.DONE, attempts=attempt, holdings=list(inventory.holdings)
            )
        if record.kind is RequestKind.ACCESS:
            export = store.export(subject)
            body = export.model_dump_json().encode()
            self._files.put_export(part_key(record.request_id, name), body, "application/json")
            counts = {section: len(rows) for section, rows in export.sections.items()}
            return StepRecord(state=StepState.DONE, attempts=attempt, counts=counts)
        erased = store.erase(subject)
        counts = {**erased.erased, **{f"anonymised:{k}": v for k, v in erased.anonymised.items()}}
        return StepRecord(state=StepState.DONE, attempts=attempt, counts=counts)

    def _profile_step(self, record: PrivacyRequestRecord, attempt: int) -> StepRecord:
        cid = record.customer_id
        if record.kind is RequestKind.CONSENT_WITHDRAWAL:
            withdrawn = self._profile.withdraw_consent(
                cid, record.purposes, "privacy_request", record.request_id
            )
            self._bus.publish(
                [
                    ConsentWithdrawn(
                        request_id=record.request_id,
                        customer_id=cid,
                        purposes=withdrawn,
                        occurred_at=self._clock(),
                    )
                ]
            )
            counts = dict.fromkeys(withdrawn, 1)
        elif record.kind is RequestKind.RECTIFICATION:
            sealed = (record.changes or {}).get("sealed")
            if not isinstance(sealed, str):
                raise PoisonMessage("a rectification without its changes")
            counts = dict.fromkeys(self._profile.rectify(cid, sealed), 1)
        else:
            self._profile.restrict(cid)
            counts = {"restricted": 1}
        return StepRecord(state=StepState.DONE, attempts=attempt, counts=counts)

    def _finish_when_done(self, request_id: str) -> None:
        record = self._store.get(request_id)
        if record is None or record.status is not RequestStatus.RUNNING:
            return
        if all(step.state is StepState.DONE for step in record.steps.values()):
            self.finish(request_id)

    # ------------------------------------------------------------ finishing
    def finish(self, request_id: str) -> StepOutcome:
        record = self._store.get(request_id)
        if record is None or record.status is not RequestStatus.RUNNING:
            return "skipped"
        if any(step.state is not StepState.DONE for step in record.steps.values()):
            self._work.send(
                [
                    work_body(request_id, name)
                    for name, step in record.steps.items()
                    if step.state is not StepState.DONE
                ]
            )
            return "skipped"
        now = self._clock()
        changes: dict[str, object] = {
            "status": RequestStatus.COMPLETED.value,
            "completed_at": now.isoformat(),
        }
        proof: list[StoreProof] | None = None
        if record.kind is RequestKind.ERASURE and not record.dry_run:
            proof = self._verify(record)
            changes["proof"] = [p.model_dump(mode="json") for p in proof]
        if record.kind is RequestKind.ACCESS and not record.dry_run:
            changes["export_key"] = self._bundle(record)
        if not self._store.update(request_id, changes, when=frozenset({RequestStatus.RUNNING})):
            return "skipped"  # another worker finished it first
        for what in ("near", "due"):
            self._timers.cancel("privacy", f"{request_id}.{what}")
        clean = None if proof is None else all(p.clean for p in proof)
        detail: dict[str, object] = {
            "kind": record.kind.value,
            "dry_run": record.dry_run,
            "steps": {n: s.counts for n, s in record.steps.items()},
        }
        if proof is not None:
            detail["proof"] = {
                p.store: {"checked": p.checked, "remnants": p.remnants_total} for p in proof
            }
        self._audit.append(
            WORKER,
            "request_completed",
            customer_id=record.customer_id,
            request_id=request_id,
            detail=detail,
        )
        self._bus.publish(
            [
                PrivacyRequestCompleted(
                    request_id=request_id,
                    customer_id=record.customer_id,
                    kind=record.kind.value,
                    regulation=record.regulation.value,
                    clean=clean,
                    occurred_at=now,
                )
            ]
        )
        return "done"

    def _verify(self, record: PrivacyRequestRecord) -> list[StoreProof]:
        shown = self._policy.max_remnants_shown
        proofs = []
        for store in self._stores():
            checked = store.verify(record.subject)
            proofs.append(
                StoreProof(
                    store=checked.store,
                    checked=checked.checked,
                    clean=checked.clean,
                    remnants=list(checked.remnants[:shown]),
                    remnants_total=len(checked.remnants),
                )
            )
        return proofs

    def _bundle(self, record: PrivacyRequestRecord) -> str:
        exports = []
        for name in sorted(record.steps):
            raw = self._files.get_export(part_key(record.request_id, name))
            if raw is None:
                raise NotFound(f"the export part of store {name} is missing")
            exports.append(StoreExport.model_validate_json(raw))
        key = bundle_key(record.request_id)
        self._files.put_export(key, build_bundle(exports), "application/zip")
        return key

    # ------------------------------------------------------------ deadlines
    def deadline_due(self, wake: WakeUp) -> DeadlineOutcome:
        request_id = wake.payload.get("request_id")
        if wake.kind != "privacy" or not request_id:
            raise PoisonMessage("not a privacy deadline wake-up")
        record = self._store.get(request_id)
        now = self._clock()
        outcome: DeadlineOutcome = "none"
        # Re-check on wake: a completed, rejected or extended request is not late.
        if record is not None and record.status in OPEN_STATUSES and now >= wake.due_at:
            if wake.timer_id.endswith(".due") and now >= record.due_at:
                if (
                    self._store.update(request_id, {"deadline_missed": True}, when=OPEN_STATUSES)
                    and not record.deadline_missed
                ):
                    self._bus.publish(
                        [
                            PrivacyDeadlineMissed(
                                request_id=request_id,
                                customer_id=record.customer_id,
                                kind=record.kind.value,
                                due_at=record.due_at,
                                occurred_at=now,
                            )
                        ]
                    )
                    self._audit.append(
                        WORKER,
                        "deadline_missed",
                        customer_id=record.customer_id,
                        request_id=request_id,
                    )
                    outcome = "missed"
            elif wake.timer_id.endswith(".near") and self._timers.claim(wake):
                self._bus.publish(
                    [
                        PrivacyDeadlineNear(
                            request_id=request_id,
                            customer_id=record.customer_id,
                            kind=record.kind.value,
                            due_at=record.due_at,
                            occurred_at=now,
                        )
                    ]
                )
                if record.status is RequestStatus.RUNNING:
                    self.finish(request_id)  # queues the steps not done yet again
                return "near"
        self._timers.claim(wake)
        return outcome

    # ------------------------------------------------------------ the export's link
    def export_link(self, caller: Caller, request_id: str) -> ExportLink:
        record = self._store.get(request_id)
        if record is None:
            raise NotFound(f"no privacy request {request_id}")
        if caller.is_staff or caller.customer_id != record.customer_id:
            raise Forbidden("only the customer the export is about downloads it")
        if record.kind is not RequestKind.ACCESS:
            raise NotFound(f"a {record.kind.value} request has no export: only an access one")
        if record.export_key is None:
            # Known, and the customer's: not ready is a state of the request, not a missing one.
            raise Conflict(
                f"the export is not ready: the request is {record.status.value} (GET "
                f"/privacy/requests/{request_id} says export_ready when it is)"
            )
        if record.export_key not in self._files.export_keys(record.export_key):
            # A link to nothing (the customer's erasure deleted the bundle, or someone did):
            # said here, not as the link's 404 from S3 after an audited "issued".
            raise NotFound(
                "the export is gone (an erasure deletes it with the customer's data): file a "
                "new access request"
            )
        ttl = self._policy.export_link_ttl_s
        url = self._files.presign(record.export_key, ttl)
        expires = self._clock() + timedelta(seconds=ttl)
        self._audit.append(
            caller.subject,
            "export_link_issued",
            customer_id=record.customer_id,
            request_id=request_id,
        )
        return ExportLink(request_id=request_id, url=url, expires_at=expires)
