"""The timers' personal data (`TimersTable`) as the privacy registry sees it: a customer's
pending timers (a journey wait, a message deferred by quiet hours, an SLA wake-up of their
ticket, an after-sales stage target) must not fire after they are erased.

Timer ids and payloads hold ids only. Every family that sets a timer about a customer names
them (`Timers.set(..., subject=customer_id)`), which the timer item keeps as `SUBJ`, the key of
the sparse, keys-only GSI `subject`. So a customer's timers are one Query per id of theirs (the
customer and every profile merged into theirs; paged), then one BatchGetItem per 100 timers;
their due items are derived from the timers (`DUE#<shard>`, due time, generation), never
searched. No scan: the cost grows with the customer's own timers, not the table.

Timers set before the index existed carry no `SUBJ`: fired ones expire 30 days after firing,
pending ones (journey waits, SLA clocks) fire as they would have; a shop upgrading with pending
timers older than that re-sets them or runs an erasure again after they have fired.
"""

from __future__ import annotations

from crm.personal_data import (
    DataSubject,
    ErasureMethod,
    Holding,
    Remnant,
    StoreErasure,
    StoreExport,
    StoreInventory,
    StoreVerification,
)
from crm.timers.records import Timer, timer_key
from crm.timers.store import TimerStore


class TimersPersonalData:
    name = "timers"
    claims = ("TimersTable",)

    def __init__(self, table: str) -> None:
        self._table = table
        self._store = TimerStore(table)

    def _found(self, subject: DataSubject) -> list[Timer]:
        return self._store.subject_timers([subject.customer_id, *subject.merged_ids])

    def inventory(self, subject: DataSubject) -> StoreInventory:
        timers = self._found(subject)
        holdings = (Holding(kind="timer", count=len(timers), erasure=ErasureMethod.DELETE),)
        return StoreInventory(store=self.name, holdings=holdings if timers else ())

    def export(self, subject: DataSubject) -> StoreExport:
        rows = [
            {"kind": t.kind, "due_at": t.due_at.isoformat(), "state": t.state}
            for t in self._found(subject)
        ]
        return StoreExport(store=self.name, sections={"scheduled_actions": rows})

    def erase(self, subject: DataSubject) -> StoreErasure:
        timers = self._found(subject)
        self._store.delete_timers(timers)
        return StoreErasure(store=self.name, erased={"timer": len(timers)} if timers else {})

    def verify(self, subject: DataSubject) -> StoreVerification:
        timers = self._found(subject)
        return StoreVerification(
            store=self.name,
            # What the index holds for the customer's ids: each a Query of the sparse index.
            checked=1 + len(subject.merged_ids),
            remnants=tuple(
                Remnant(
                    kind="timer",
                    location=f"{self._table}/{timer_key(t.kind, t.timer_id)['PK']}/TIMER",
                    identifier_kind="customer_id",
                )
                for t in timers
            ),
        )
