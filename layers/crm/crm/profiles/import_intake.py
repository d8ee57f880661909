"""`POST /imports` and `GET /imports/{import_id}`: a historical import accepted whole or not at
all, staged, and queued for HistoryImportFunction (crm.profiles.history_import runs it). Kept
apart from the run so that the API never loads the folding core."""

from __future__ import annotations

import json
from collections import Counter

from crm.auth import Caller, Permission
from crm.clock import CLOCK_SKEW
from crm.errors import FieldProblem, InvalidInput, NotFound, PayloadTooLarge
from crm.profiles.event_intake import content_problems
from crm.profiles.import_models import (
    MAX_IMPORT_EVENTS,
    HistoryImport,
    ImportAccepted,
    ImportFailureView,
    ImportRecord,
    ImportStatusView,
)
from crm.profiles.import_store import ImportStore, StagedImports
from crm.profiles.service import ProfileService
from crm.queue import Queue


class ImportIntake:
    def __init__(
        self, profiles: ProfileService, store: ImportStore, staged: StagedImports, queue: Queue
    ) -> None:
        self._profiles = profiles
        self._store = store
        self._staged = staged
        self._queue = queue

    def accept(self, caller: Caller, body: HistoryImport) -> ImportAccepted:
        caller.require(Permission.IMPORT_HISTORY)
        events = self._check(body)
        profiles = self._profiles
        record = ImportRecord(
            import_id=profiles.ids(),
            requested_by=caller.subject,
            requested_at=profiles.clock(),
            customers=len(body.customers),
            events=events,
        )
        # The object first: a queued message always finds its body (or it expired).
        self._staged.put(record.import_id, body)
        self._store.put(record)
        self._queue.send([json.dumps({"import_id": record.import_id})])
        return ImportAccepted(
            import_id=record.import_id, status=record.status, customers=record.customers,
            events=events,
        )  # fmt: skip

    def status(self, caller: Caller, import_id: str) -> ImportStatusView:
        caller.require(Permission.IMPORT_HISTORY)
        record = self._store.get(import_id)
        if record is None:
            raise NotFound(f"no import {import_id}")
        return ImportStatusView(
            **record.model_dump(exclude={"counts", "failures", "requested_by"}),
            **record.counts.model_dump(),
            failures=[ImportFailureView(ref=f.ref, reason=f.reason) for f in record.failures],
        )

    def _check(self, body: HistoryImport) -> int:
        """Everything intake checks of events, for the whole import at once; the event count."""
        events = sum(len(c.events) for c in body.customers)
        if events > MAX_IMPORT_EVENTS:
            raise PayloadTooLarge(
                f"an import holds at most {MAX_IMPORT_EVENTS} events, this one {events}; "
                "split it (by customers) into several imports",
                [FieldProblem("customers", f"{events} events, at most {MAX_IMPORT_EVENTS}")],
            )
        problems: list[FieldProblem] = []
        seen: set[str] = set()
        ids = Counter(e.event_id for c in body.customers for e in c.events)
        for n, customer in enumerate(body.customers):
            if customer.ref in seen:
                problems.append(
                    FieldProblem(f"customers.{n}.ref", "names a customer listed before it")
                )
            seen.add(customer.ref)
            problems += [
                FieldProblem(f"customers.{n}.events.{m}.event_id",
                             f"event_id {e.event_id} appears more than once in the import")
                for m, e in enumerate(customer.events)
                if ids[e.event_id] > 1
            ]  # fmt: skip
        self._profiles.check_residency(
            [(f"customers.{n}.residency", c.residency) for n, c in enumerate(body.customers)]
            + [
                (f"customers.{n}.events.{m}.residency", e.residency)
                for n, c in enumerate(body.customers)
                for m, e in enumerate(c.events)
            ]
        )
        latest = self._profiles.clock() + CLOCK_SKEW
        for n, customer in enumerate(body.customers):
            problems += content_problems(
                enumerate(customer.events), latest, f"customers.{n}.events"
            )
        if problems:
            raise InvalidInput("the import was refused; nothing was accepted", problems)
        return events
