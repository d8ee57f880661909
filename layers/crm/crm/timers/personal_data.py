"""The timers' personal data (`TimersTable`) as the privacy registry sees it: a customer's
pending timers (a journey wait, a message deferred by quiet hours, an SLA wake-up of their
ticket) must not fire after they are erased.

Timer ids and payloads hold ids only. Some name the customer (journey instances,
`<journey>#<customer>#<seq>`); others name a thing of theirs (a ticket, a message's hash), which
the families tell this store through `related` (the registry wires it). Timers of every kind
are spread over `DUE#<shard>` partitions by a hash, so erasure reads the table once, whole, and
deletes every timer and due item naming one of those ids: the registry runs this store before
the stores whose items `related` reads (tickets, campaigns), so a retried erasure still knows
them. Cost: one Scan per erasure; pending timers are few next to customers (waits of days),
and fired ones expire after 30 days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from crm.erasure import (
    Identifiers,
    delete_items,
    key_of,
    location,
    mentioning,
    scan_items,
)
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

RelatedIds = Callable[[DataSubject], Iterable[str]]


def _no_related(_: DataSubject) -> Iterable[str]:
    return ()


def _kind(item: dict[str, Any]) -> str:
    return "timer" if item["PK"]["S"].startswith("TIMER#") else "due_item"


class TimersPersonalData:
    name = "timers"
    claims = ("TimersTable",)

    def __init__(self, table: str, related: RelatedIds = _no_related) -> None:
        self._table = table
        self._related = related

    def _identifiers(self, subject: DataSubject) -> Identifiers:
        own = Identifiers.of(subject, customer_ids_only=True).patterns
        related = Identifiers.named((i, "customer_id") for i in self._related(subject))
        return Identifiers(own + related.patterns)

    def _found(self, subject: DataSubject) -> list[tuple[dict[str, Any], str]]:
        return list(mentioning(scan_items(self._table), self._identifiers(subject)))

    def inventory(self, subject: DataSubject) -> StoreInventory:
        timers = [item for item, _ in self._found(subject) if _kind(item) == "timer"]
        holdings = (Holding(kind="timer", count=len(timers), erasure=ErasureMethod.DELETE),)
        return StoreInventory(store=self.name, holdings=holdings if timers else ())

    def export(self, subject: DataSubject) -> StoreExport:
        rows = [
            {
                "kind": item["kind"]["S"],
                "due_at": item["due_at"]["S"],
                "state": item["state"]["S"],
            }
            for item, _ in self._found(subject)
            if _kind(item) == "timer"
        ]
        return StoreExport(store=self.name, sections={"scheduled_actions": rows})

    def erase(self, subject: DataSubject) -> StoreErasure:
        found = [item for item, _ in self._found(subject)]
        # Due items first: a sweep between the two deletes finds no due item of a timer
        # already gone (it would queue a wake-up that the claim then refuses anyway).
        delete_items(self._table, [key_of(i) for i in found if _kind(i) == "due_item"])
        delete_items(self._table, [key_of(i) for i in found if _kind(i) == "timer"])
        timers = sum(1 for i in found if _kind(i) == "timer")
        return StoreErasure(store=self.name, erased={"timer": timers} if timers else {})

    def verify(self, subject: DataSubject) -> StoreVerification:
        checked = 0
        identifiers = self._identifiers(subject)

        def counted() -> Iterable[dict[str, Any]]:
            nonlocal checked
            for item in scan_items(self._table):
                checked += 1
                yield item

        found = list(mentioning(counted(), identifiers))
        return StoreVerification(
            store=self.name,
            checked=checked,
            remnants=tuple(
                Remnant(
                    kind=_kind(item), location=location(self._table, item), identifier_kind=ident
                )
                for item, ident in found
            ),
        )
