"""The profiles family's personal data (`CustomersTable`) as the privacy registry sees it.

A customer's items: the profile (and the profiles merged into it, kept as tombstones), its
scores item, its identity items (keyed by external id or blind index), its ledger entries
(orders, other events, points, consent) and pending merge suggestions naming it. Erasure
deletes all of them except order ledger entries, which the law keeps (China's E-commerce Law:
transaction records 3 years; tax law: accounting records): those are rewritten without the
customer id, under a random anonymous id, and leave the `timeline` index. Deleting the profile
destroys the wrapped data key, so every copy sealed under it (PII fields, after-sales notes,
ticket messages, backups of any of them) becomes unreadable: crypto-shredding, complete once
the tables' point-in-time recovery window (35 days) no longer holds the wrapped key either
(docs/personal-data.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from crm.dynamo import batch_get, batch_write, from_item
from crm.erasure import Identifiers, delete_items, key_of, location, query_partition
from crm.keys import DataKeys
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
from crm.profiles.customer_events import ORDER_TYPES
from crm.profiles.pii_codec import NOTE_FIELD, PiiCodec
from crm.profiles.record_models import Channel
from crm.profiles.records import suggestion_id_for
from crm.profiles.store import PENDING_MERGES, ProfileStore

RETAINED_ORDERS = (
    "China E-commerce Law art. 31 (transaction records kept at least 3 years) and tax law "
    "(accounting records): amounts, dates and items kept, unlinked from the customer"
)
LEDGER_KINDS = ("EVT", "PTS", "CNS")
# What an order's ledger entry keeps once anonymised: no channel, no customer, no free text.
KEPT_ORDER_FIELDS = frozenset(
    {"type", "occurred_at", "order_id", "amount", "currency", "category", "items"}
)
_LEDGER_NAMES = {"EVT": "event", "PTS": "points", "CNS": "consent"}


def _is_order(item: dict[str, Any]) -> bool:
    body = item.get("body", {}).get("M", {})
    return item.get("kind", {}).get("S") == "EVT" and body.get("type", {}).get("S") in ORDER_TYPES


class ProfilesPersonalData:
    """Profiles, identities, ledger entries and merge suggestions of one customer.

    (A historical import's staged body is crm.profiles.import_personal_data's; the imports'
    status items in CustomersTable hold the shop's refs and counts, no customer data.)"""

    name = "profiles"
    claims = ("CustomersTable",)

    def __init__(self, table: str, data_keys: DataKeys) -> None:
        self._table = table
        self._keys = data_keys

    # --------------------------------------------------------------------- reading
    def _ids(self, subject: DataSubject) -> tuple[str, ...]:
        return (subject.customer_id, *subject.merged_ids)

    def _profile_items(self, subject: DataSubject) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for customer_id in self._ids(subject):
            items += query_partition(self._table, f"CUST#{customer_id}")
        return items

    def _identity_items(
        self, subject: DataSubject, profiles: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Identities named by the frozen subject (every channel: the subject holds keys, not
        channels) and those the profiles still list (added after the subject was frozen),
        kept only where they point at one of the customer's ids."""
        keys = {
            (str(channel), key)
            for key in (*subject.blind_indexes, *subject.external_ids)
            for channel in Channel
        }
        for item in profiles:
            for identity in from_item(item).get("identities", []):
                keys.add((identity["channel"], identity["key"]))
        found = batch_get(
            self._table, [{"PK": {"S": f"ID#{c}#{k}"}, "SK": {"S": "ID"}} for c, k in keys]
        )
        ids = set(self._ids(subject))
        return [item for item in found if item.get("customer_id", {}).get("S") in ids]

    def _ledger_items(self, subject: DataSubject) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for customer_id in self._ids(subject):
            for kind in LEDGER_KINDS:
                items += query_partition(
                    self._table, f"{kind}#{customer_id}", index="timeline", hash_key="TPK"
                )
        return items

    def _suggestion_items(self, subject: DataSubject) -> list[dict[str, Any]]:
        """Merge suggestions naming the customer: the pending ones (the `timeline` index lists
        them) and the approved ones that merged her profiles (a suggestion's id is a hash of
        the ids it names). A dismissed suggestion naming her and a profile never merged into
        hers is found by neither: its id names a partner this store cannot know (a gap the
        cross-store verification shows; see docs/personal-data.md)."""
        ids = set(self._ids(subject))
        found = {
            location(self._table, item): item
            for item in query_partition(
                self._table, PENDING_MERGES, index="timeline", hash_key="TPK"
            )
            if {v.get("S") for v in item.get("customer_ids", {}).get("L", [])} & ids
        }
        candidates = {suggestion_id_for([subject.customer_id, m]) for m in subject.merged_ids}
        if subject.merged_ids:
            candidates.add(suggestion_id_for(sorted(ids)))
        keys = [{"PK": {"S": f"MERGE#{c}"}, "SK": {"S": "MERGE"}} for c in sorted(candidates)]
        for item in batch_get(self._table, keys):
            found[location(self._table, item)] = item
        return list(found.values())

    def _still_there(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of items read from an index (eventually consistent), those the table still holds
        as they were indexed: a verification right after erasure must not report what the
        index has not caught up with."""
        if not items:
            return []
        current = batch_get(self._table, [key_of(item) for item in items])
        return [item for item in current if "TPK" in item or item["PK"]["S"].startswith("MERGE#")]

    # --------------------------------------------------------------------- contract
    def inventory(self, subject: DataSubject) -> StoreInventory:
        profiles = self._profile_items(subject)
        ledger = self._ledger_items(subject)
        orders = sum(1 for item in ledger if _is_order(item))
        holdings = [
            Holding(
                kind="profile",
                count=sum(1 for i in profiles if i["SK"]["S"] == "PROFILE"),
                erasure=ErasureMethod.CRYPTO_SHRED,
            ),
            Holding(
                kind="scores",
                count=sum(1 for i in profiles if i["SK"]["S"] != "PROFILE"),
                erasure=ErasureMethod.DELETE,
            ),
            Holding(
                kind="identity",
                count=len(self._identity_items(subject, profiles)),
                erasure=ErasureMethod.DELETE,
            ),
            Holding(
                kind="ledger",
                count=len(ledger) - orders,
                erasure=ErasureMethod.DELETE,
            ),
            Holding(
                kind="order",
                count=orders,
                erasure=ErasureMethod.ANONYMISE_RETAIN,
                retained_because=RETAINED_ORDERS,
            ),
            Holding(
                kind="merge_suggestion",
                count=len(self._suggestion_items(subject)),
                erasure=ErasureMethod.DELETE,
            ),
        ]
        return StoreInventory(store=self.name, holdings=tuple(h for h in holdings if h.count))

    def export(self, subject: DataSubject) -> StoreExport:
        store = ProfileStore(self._table)
        codec = PiiCodec(self._keys)
        profiles: list[dict[str, Any]] = []
        identities: list[dict[str, Any]] = []
        records = {}
        for customer_id in self._ids(subject):
            record = store.get(customer_id)
            if record is None:
                continue
            records[customer_id] = record
            pii = codec.open_all(record) if record.wrapped_key and record.sealed else {}
            profiles.append(
                {
                    "customer_id": record.customer_id,
                    "created_at": record.created_at.isoformat(),
                    "updated_at": record.updated_at.isoformat(),
                    "merged_into": record.merged_into,
                    **{f"attribute.{k}": v for k, v in sorted(record.attributes.items())},
                    **{f"pii.{k}": v for k, v in sorted(pii.items())},
                    **{
                        f"consent.{purpose}": state.model_dump_json()
                        for purpose, state in sorted(record.consent.items())
                    },
                    "tags": ",".join(sorted(record.tags)),
                    "points_balance": record.points_balance,
                }
            )
            identities += [
                {"customer_id": record.customer_id, "channel": i.channel, "shown_as": i.display}
                for i in record.identities
            ]
        sections: dict[str, list[dict[str, Any]]] = {"profile": profiles, "identities": identities}
        for item in self._ledger_items(subject):
            values = from_item(item)
            body = {k: _cell(v) for k, v in values["body"].items() if k != NOTE_FIELD}
            owner = records.get(values["customer_id"])
            if NOTE_FIELD in values["body"] and owner is not None and owner.wrapped_key:
                # Her own words (an after-sales note), sealed under the profile it was
                # recorded for: each profile's key opens its own notes.
                body["note"] = codec.open_note(
                    owner, {**values["body"], "customer_id": owner.customer_id}, full=True
                )
            section = _LEDGER_NAMES[values["kind"]]
            sections.setdefault(section, []).append(
                {"customer_id": values["customer_id"], "at": values["at"], **body}
            )
        return StoreExport(
            store=self.name,
            sections=sections,
            explanations={
                "consent": "Each decision you made about a purpose of contact (marketing by "
                "SMS, e-mail, push...), with when and through which channel.",
                "sources": "identities lists every channel through which we know you; "
                "contact details are shown in full only in this export.",
            },
        )

    def erase(self, subject: DataSubject) -> StoreErasure:
        profiles = self._profile_items(subject)
        identities = self._identity_items(subject, profiles)
        ledger = self._ledger_items(subject)
        suggestions = self._suggestion_items(subject)
        orders = [item for item in ledger if _is_order(item)]
        others = [item for item in ledger if not _is_order(item)]
        anonymous_id = f"anon-{uuid.uuid4().hex}"
        batch_write(
            self._table,
            [{"PutRequest": {"Item": anonymised_order(o, anonymous_id)}} for o in orders],
        )
        delete_items(self._table, [key_of(i) for i in (*identities, *others, *suggestions)])
        # The profile (with its wrapped data key) goes last: until then a retried erasure
        # still finds the identities it lists.
        delete_items(self._table, [key_of(i) for i in profiles])
        erased = {
            "profile": sum(1 for i in profiles if i["SK"]["S"] == "PROFILE"),
            "scores": sum(1 for i in profiles if i["SK"]["S"] != "PROFILE"),
            "identity": len(identities),
            "ledger": len(others),
            "merge_suggestion": len(suggestions),
        }
        return StoreErasure(
            store=self.name,
            erased={k: v for k, v in erased.items() if v},
            anonymised={"order": len(orders)} if orders else {},
        )

    def verify(self, subject: DataSubject) -> StoreVerification:
        profiles = self._profile_items(subject)
        identities = self._identity_items(subject, [])
        ledger = self._still_there(self._ledger_items(subject))
        suggestions = self._still_there(self._suggestion_items(subject))
        found = [
            *((i, "profile", "customer_id") for i in profiles),
            *((i, "identity", _identity_kind(i, subject)) for i in identities),
            *((i, "ledger", "customer_id") for i in ledger),
            *((i, "merge_suggestion", "customer_id") for i in suggestions),
        ]
        checked = len(found) + len(self._ids(subject)) + len(subject.blind_indexes)
        checked += len(subject.external_ids)
        return StoreVerification(
            store=self.name,
            checked=checked,
            remnants=tuple(
                Remnant(kind=kind, location=location(self._table, item), identifier_kind=ident)
                for item, kind, ident in found
            ),
        )


def _cell(value: Any) -> Any:
    """A JSON- and CSV-able value: DynamoDB's numbers as int or exact text, nested values as
    JSON-able structures."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _cell(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_cell(v) for v in value]
    return value


def _identity_kind(item: dict[str, Any], subject: DataSubject) -> str:
    found = Identifiers.of(subject).find(item["PK"]["S"])
    return found or "customer_id"


def anonymised_order(item: dict[str, Any], anonymous_id: str) -> dict[str, Any]:
    """An order's ledger entry without the customer: same key (the order's idempotency key,
    so a redelivered order event still changes nothing), out of the `timeline` index."""
    body = {k: v for k, v in item["body"]["M"].items() if k in KEPT_ORDER_FIELDS}
    kept = {k: v for k, v in item.items() if k in ("PK", "SK", "key", "kind", "at", "refunded")}
    return {
        **kept,
        "body": {"M": body},
        "customer_id": {"S": anonymous_id},
        "retained_because": {"S": RETAINED_ORDERS},
    }


def profiles_personal_data(table: str, key_id: str) -> ProfilesPersonalData:
    return ProfilesPersonalData(table, DataKeys(key_id))


__all__ = ["ProfilesPersonalData", "profiles_personal_data"]
