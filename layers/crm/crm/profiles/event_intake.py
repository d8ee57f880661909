"""Accepting event batches from client apps and upstream systems: validate, then queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from crm.auth import Caller, Permission, Role
from crm.clock import CLOCK_SKEW
from crm.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from crm.profiles.customer_events import (
    BROWSING_TYPES,
    CustomerEvent,
    EventBatch,
    EventsAccepted,
    OrderEvent,
)
from crm.profiles.service import ProfileService
from crm.profiles.transit import EventTransit
from crm.queue import Queue


class EventIntake:
    def __init__(self, queue: Queue, profiles: ProfileService, transit: EventTransit) -> None:
        self._queue = queue
        self._profiles = profiles
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
        self._profiles.check_residency(
            (f"events.{n}.residency", e.residency) for n, e in enumerate(batch.events)
        )
        self._check_contents(batch)
        self._check_customers_exist(batch)
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

    def _check_contents(self, batch: EventBatch) -> None:
        """Times in the future and amounts that disagree with their items, all at once."""
        latest = self._profiles.clock() + CLOCK_SKEW
        problems = content_problems(enumerate(batch.events), latest, "events")
        if problems:
            raise InvalidInput("events were refused; none was accepted", problems)

    def _check_customers_exist(self, batch: EventBatch) -> None:
        """One batched read of the customers the events name: an event for a customer that
        does not exist is refused now, not lost in the dead-letter queue later. Events that
        name an identity instead create their customer when folded."""
        named = {e.customer_id for e in batch.events if e.customer_id is not None}
        if not named:
            return
        known = self._profiles.store.existing(named)
        unknown = [
            FieldProblem(f"events.{n}.customer_id", f"no customer {e.customer_id}")
            for n, e in enumerate(batch.events)
            if e.customer_id is not None and e.customer_id not in known
        ]
        if unknown:
            raise NotFound(
                f"{len(unknown)} event(s) name a customer that does not exist; none was accepted",
                unknown,
            )


def content_problems(
    events: Iterable[tuple[int, CustomerEvent]], latest: datetime, where: str
) -> list[FieldProblem]:
    """What intake refuses in events' contents (`where.N.<field>`): a time past `latest` (the
    server's clock plus the skew it allows) and an order amount that disagrees with its items.
    The history import checks its events with it too."""
    problems = []
    minutes = int(CLOCK_SKEW.total_seconds() // 60)
    for n, event in events:
        if event.occurred_at > latest:
            problems.append(
                FieldProblem(
                    f"{where}.{n}.occurred_at",
                    f"lies in the future (more than {minutes} minutes ahead of the server)",
                )
            )
        mismatch = event.amount_mismatch() if isinstance(event, OrderEvent) else None
        if mismatch:
            problems.append(FieldProblem(f"{where}.{n}.amount", mismatch))
    return problems
