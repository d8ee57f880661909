"""The tickets family's personal data (`TicketsTable`) as the privacy registry sees it.

A customer's items: their tickets (found through the `customer` index), each ticket's whole
partition (the ticket, its SLA ledger, its messages), their after-sales cases (found through
`CUST#<id>` / `AFTERSALES#...`) with each case's partition (stages, applied events) and the
orders' instant-refund markers and asked-back sums (`CUST#<id>` / `INSTANT_REFUND#<order>`,
`ASKED#<order>`). Erasure
deletes all of them. Message text and notes are sealed under the customer's data key, which the
profiles store destroys, so copies outside the table (backups) are unreadable too. Product
feedback counters and classification corrections hold no customer id and stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm.dynamo import from_item
from crm.erasure import delete_items, key_of, location, query_partition
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
from crm.pii import FieldCipher
from crm.tickets.aftersales import _note_field as note_field
from crm.tickets.aftersales_store import ASKED_PREFIX, INSTANT_REFUND_PREFIX
from crm.tickets.records import customer_pk, text_field
from crm.tickets.store import CUSTOMER_INDEX

OpeningCipher = Callable[[str], FieldCipher | None]


def _kind(item: dict[str, Any]) -> str:
    pk, sk = item["PK"]["S"], item["SK"]["S"]
    if pk.startswith("TICKET#"):
        if sk == "#TICKET":
            return "ticket"
        return "message" if sk.startswith("MSG#") else "sla_ledger"
    if pk.startswith("CUST#"):
        if sk.startswith(INSTANT_REFUND_PREFIX):
            return "aftersales_instant_refund"
        return "aftersales_asked" if sk.startswith(ASKED_PREFIX) else "aftersales_index"
    if sk == "CASE":
        return "aftersales_case"
    return "aftersales_stage" if sk.startswith("STAGE#") else "aftersales_event"


class TicketsPersonalData:
    """Tickets, messages, SLA ledgers and after-sales cases of one customer."""

    name = "tickets"
    claims = ("TicketsTable",)

    def __init__(self, table: str, ciphers: OpeningCipher) -> None:
        self._table = table
        self._ciphers = ciphers

    def ticket_ids(self, subject: DataSubject) -> set[str]:
        ids: set[str] = set()
        for customer_id in (subject.customer_id, *subject.merged_ids):
            for item in query_partition(
                self._table, customer_pk(customer_id), index=CUSTOMER_INDEX, hash_key="CPK"
            ):
                ids.add(item["PK"]["S"].removeprefix("TICKET#"))
        return ids

    def case_ids(self, subject: DataSubject) -> set[str]:
        return {item["SK"]["S"].rsplit("#", 1)[1] for item in self._case_index(subject)}

    def _case_index(self, subject: DataSubject) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for customer_id in (subject.customer_id, *subject.merged_ids):
            found += query_partition(self._table, f"CUST#{customer_id}", sk_prefix="AFTERSALES#")
        return found

    def _items(self, subject: DataSubject) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for ticket_id in sorted(self.ticket_ids(subject)):
            items += query_partition(self._table, f"TICKET#{ticket_id}")
        index = self._case_index(subject)
        for case_id in sorted({i["SK"]["S"].rsplit("#", 1)[1] for i in index}):
            items += query_partition(self._table, f"CASE#{case_id}")
        for customer_id in (subject.customer_id, *subject.merged_ids):
            for prefix in (INSTANT_REFUND_PREFIX, ASKED_PREFIX):  # the orders' markers, sums
                items += query_partition(self._table, f"CUST#{customer_id}", sk_prefix=prefix)
        return items + index

    def inventory(self, subject: DataSubject) -> StoreInventory:
        counts: dict[str, int] = {}
        for item in self._items(subject):
            counts[_kind(item)] = counts.get(_kind(item), 0) + 1
        holdings = tuple(
            Holding(
                kind=kind,
                count=n,
                erasure=ErasureMethod.CRYPTO_SHRED if kind == "message" else ErasureMethod.DELETE,
            )
            for kind, n in sorted(counts.items())
        )
        return StoreInventory(store=self.name, holdings=holdings)

    def export(self, subject: DataSubject) -> StoreExport:
        sections: dict[str, list[dict[str, Any]]] = {
            "tickets": [],
            "ticket_messages": [],
            "aftersales_cases": [],
        }
        ciphers: dict[str, FieldCipher | None] = {}
        for item in self._items(subject):
            kind = _kind(item)
            values = from_item(item)
            if kind == "ticket":
                sections["tickets"].append(
                    {
                        "ticket_id": values["PK"].removeprefix("TICKET#"),
                        **{
                            k: values.get(k)
                            for k in ("channel", "order_id", "category", "priority", "status")
                        },
                        "opened": values.get("CSK", "").removeprefix("TKT#").split("#")[0],
                    }
                )
            elif kind == "message":
                if values.get("kind") == "note":
                    continue  # staff's internal notes are not the customer's data to read
                owner = str(values.get("customer_id", subject.customer_id))
                if owner not in ciphers:
                    ciphers[owner] = self._ciphers(owner)
                cipher = ciphers[owner]
                message_id = values["SK"].rsplit("#", 1)[1]
                text = cipher.open(text_field(message_id), values["sealed"]) if cipher else None
                sections["ticket_messages"].append(
                    {
                        "ticket_id": values["PK"].removeprefix("TICKET#"),
                        "at": values["SK"].split("#")[1],
                        "channel": values.get("channel"),
                        "from": values.get("kind"),
                        "text": text,
                    }
                )
            elif kind == "aftersales_case":
                case_id = values["PK"].removeprefix("CASE#")
                owner = str(values.get("customer_id", subject.customer_id))
                if owner not in ciphers:
                    ciphers[owner] = self._ciphers(owner)
                cipher = ciphers[owner]
                note = values.get("note")
                sections["aftersales_cases"].append(
                    {
                        "case_id": case_id,
                        **{
                            k: None if values.get(k) is None else str(values[k])
                            for k in ("kind", "order_id", "reason", "amount", "stage")
                        },
                        "created_at": values.get("created_at"),
                        # Her own words, sealed under her key.
                        "note": cipher.open(note_field(case_id), note) if note and cipher else None,
                    }
                )
        return StoreExport(store=self.name, sections=sections)

    def erase(self, subject: DataSubject) -> StoreErasure:
        items = self._items(subject)
        delete_items(self._table, [key_of(item) for item in items])
        counts: dict[str, int] = {}
        for item in items:
            counts[_kind(item)] = counts.get(_kind(item), 0) + 1
        return StoreErasure(store=self.name, erased=counts)

    def verify(self, subject: DataSubject) -> StoreVerification:
        items = self._items(subject)
        return StoreVerification(
            store=self.name,
            checked=len(items) + 1 + len(subject.merged_ids),
            remnants=tuple(
                Remnant(
                    kind=_kind(item),
                    location=location(self._table, item),
                    identifier_kind="customer_id",
                )
                for item in items
            ),
        )
