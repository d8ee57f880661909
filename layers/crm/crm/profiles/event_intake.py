"""Accepting event batches from client apps and upstream systems: validate, then queue."""

from __future__ import annotations

from collections import Counter

from crm.auth import Caller, Permission, Role
from crm.errors import FieldProblem, Forbidden, InvalidInput
from crm.profiles.customer_events import BROWSING_TYPES, EventBatch, EventsAccepted
from crm.profiles.transit import EventTransit
from crm.queue import Queue


class EventIntake:
    def __init__(self, queue: Queue, transit: EventTransit) -> None:
        self._queue = queue
        self._transit = transit

    def accept_events(self, caller: Caller, batch: EventBatch) -> EventsAccepted:
        caller.require(Permission.SEND_EVENTS, caller.customer_id)
        if Role.CUSTOMER in caller.roles and not caller.is_staff:
            self._check_customer_events(caller, batch)
        repeated = [i for i, n in Counter(e.event_id for e in batch.events).items() if n > 1]
        if repeated:
            raise InvalidInput(
                "event_id must be unique within a batch",
                [FieldProblem("events", f"event_id {i} appears more than once") for i in repeated],
            )
        # One message per event, so that a poison event fails alone; free text and phone or
        # email identities are queued sealed or in blind-index form only.
        self._queue.send(self._transit.pack(batch.events))
        return EventsAccepted(
            accepted=len(batch.events), event_ids=[e.event_id for e in batch.events]
        )

    @staticmethod
    def _check_customer_events(caller: Caller, batch: EventBatch) -> None:
        """A customer's app reports the customer's own browsing; orders come from the shop."""
        for n, event in enumerate(batch.events):
            if event.type not in BROWSING_TYPES:
                raise Forbidden(
                    f"a customer app may send browsing events only, not {event.type}",
                    [FieldProblem(f"events.{n}.type", "not a browsing event")],
                )
            if event.customer_id != caller.customer_id:
                raise Forbidden(
                    "a customer app may send events about its own customer only",
                    [FieldProblem(f"events.{n}.customer_id", "not the caller's customer id")],
                )
