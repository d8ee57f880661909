"""The campaigns family's personal data (`CampaignsTable`) as the privacy registry sees it.

Every item that belongs to one customer carries their id as `CUST` (`records.owned_by`), the
key of the sparse, keys-only GSI `customer`: messages (`MSG#<hash of the dispatch key>`), caps,
last touches, outbox entries, exposures, journey instances (`LATEST` and `E#`), waits and the
last escalation, coupon codes and their issue claims, order claims, conversions, and one member
entry (`SENDMEM#<send>#<page>` / id) per member of a send page (a page holds 500 ids, which no
one index key can). So a store call is one Query of the index per id of the customer's (keys
only, paged), one consistent BatchGetItem per 100 keys (push endpoints, keyed by the app user
id, ride in the same batches), then batched writes:
- deleted: messages, caps, last touches, outbox entries, exposures, journey instances and
  waits, the last escalation journeys keep, coupon codes and issue claims, push endpoints,
  send pages' member entries;
- kept without the id: conversions (moved under a random anonymous id, so campaign reports
  keep their totals), order claims (the customer id removed: the order still counts once),
  send pages (the id replaced by `ERASED` in place, so a page's cursor keeps its meaning);
- counters (`STATS#`, `SENDSTAT#`, `JSTATS#`) hold no id.

Items written before the index existed carry no `CUST`: `backfill_customer_index` (run once
by `crm-local privacy backfill-campaigns`, docs/personal-data.md) gives them one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from crm import aws
from crm.campaigns.dispatch_store import MessageRecord
from crm.campaigns.records import CUSTOMER_ATTR, CUSTOMER_INDEX, member_partition, page_of_member
from crm.dynamo import batch_get, batch_write, from_item
from crm.erasure import delete_items, key_of, location, query_partition, scan_items
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

ERASED_MEMBER = "ERASED"
_KINDS = (
    ("MSG#", "message"),
    ("CAP#", "caps"),
    ("TOUCH#", "touch"),
    ("OUTBOX#", "outbox"),
    ("EXPO#", "exposure"),
    ("JINST#", "journey_instance"),
    ("JWAIT#", "journey_wait"),
    ("JESC#", "journey_escalation"),
    ("COUPON#CODE#", "coupon"),
    ("COUPON#ISSUED#", "coupon_claim"),
    ("CONVORDER#", "order_claim"),
    ("CONV#", "conversion"),
    ("SENDMEM#", "send_page"),
    ("PUSH#", "push_endpoint"),
)
KEPT = frozenset({"conversion", "order_claim", "send_page"})


def kind_of(item: dict[str, Any]) -> str:
    pk = item["PK"]["S"]
    for prefix, kind in _KINDS:
        if pk.startswith(prefix):
            return kind
    return "other"


def _push_keys(subject: DataSubject) -> list[dict[str, Any]]:
    # Push endpoints are keyed by the app's user id (an external id), not the customer's.
    return [{"PK": {"S": f"PUSH#{e}"}, "SK": {"S": "ENDPOINT"}} for e in subject.external_ids]


def _unique(keys: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({(k["PK"]["S"], k["SK"]["S"]): k for k in keys}.values())


class CampaignsPersonalData:
    """Messages, caps, touches, coupons, journey instances and send recipients of a customer."""

    name = "campaigns"
    claims = ("CampaignsTable",)

    def __init__(self, table: str) -> None:
        self._table = table

    def _index_keys(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The keys the `customer` index holds for these ids: one Query per id (paged)."""
        return [
            key_of(item)
            for customer_id in ids
            for item in query_partition(
                self._table, customer_id, index=CUSTOMER_INDEX, hash_key=CUSTOMER_ATTR
            )
        ]

    def _found(self, subject: DataSubject) -> list[tuple[dict[str, Any], str]]:
        """The customer's items as they are now (the index may lag a write or a delete: an
        item read by key counts only while it still names one of the customer's ids)."""
        ids = {subject.customer_id, *subject.merged_ids}
        keys = _unique([*self._index_keys(sorted(ids)), *_push_keys(subject)])
        found: list[tuple[dict[str, Any], str]] = []
        for item in batch_get(self._table, keys):
            if kind_of(item) == "push_endpoint":
                found.append((item, "external_id"))
            elif item.get(CUSTOMER_ATTR, {}).get("S") in ids:
                found.append((item, "customer_id"))
        return sorted(found, key=lambda pair: location(self._table, pair[0]))

    def inventory(self, subject: DataSubject) -> StoreInventory:
        counts: dict[str, int] = {}
        for item, _ in self._found(subject):
            counts[kind_of(item)] = counts.get(kind_of(item), 0) + 1
        holdings = tuple(
            Holding(
                kind=kind,
                count=n,
                erasure=ErasureMethod.ANONYMISE_RETAIN if kind in KEPT else ErasureMethod.DELETE,
                retained_because="campaign totals (no personal data once unlinked)"
                if kind in KEPT
                else None,
            )
            for kind, n in sorted(counts.items())
        )
        return StoreInventory(store=self.name, holdings=holdings)

    def export(self, subject: DataSubject) -> StoreExport:
        sections: dict[str, list[dict[str, Any]]] = {"campaign_messages": [], "coupons": []}
        for item, _ in self._found(subject):
            kind = kind_of(item)
            values = from_item(item)
            if kind == "message":
                # The ledger item holds the message record as JSON (`body`).
                message = MessageRecord.model_validate_json(values["body"])
                sections["campaign_messages"].append(
                    {
                        "campaign_id": message.request.campaign_id,
                        "source": message.request.source,
                        "step": message.request.step,
                        "channel": str(message.request.channel),
                        "state": message.state,
                        "at": message.updated_at.isoformat(),
                    }
                )
            elif kind == "coupon":
                sections["coupons"].append(
                    {
                        k: None if values.get(k) is None else str(values[k])
                        for k in ("code", "offer_id", "issued_at", "expires_at", "state")
                    }
                )
        return StoreExport(store=self.name, sections=sections)

    def erase(self, subject: DataSubject) -> StoreErasure:
        ids = {subject.customer_id, *subject.merged_ids}
        found = self._found(subject)
        deleted = [item for item, _ in found if kind_of(item) not in KEPT]
        erased: dict[str, int] = {}
        anonymised: dict[str, int] = {}
        for item in deleted:
            erased[kind_of(item)] = erased.get(kind_of(item), 0) + 1
        anonymous_id = f"anon-{uuid.uuid4().hex}"
        moved: list[dict[str, Any]] = []
        members = [item for item, _ in found if kind_of(item) == "send_page"]
        for item, _ in found:
            kind = kind_of(item)
            if kind == "conversion":
                # Kept for the report under an anonymous id, out of the customer index.
                sk = item["SK"]["S"].rsplit("#", 1)[0] + "#" + anonymous_id
                kept = {k: v for k, v in item.items() if k != CUSTOMER_ATTR}
                moved.append({"PutRequest": {"Item": {**kept, "SK": {"S": sk}}}})
                deleted.append(item)
            elif kind == "order_claim":
                aws.dynamodb().update_item(
                    TableName=self._table,
                    Key=key_of(item),
                    UpdateExpression="REMOVE customer_id, #c",
                    ExpressionAttributeNames={"#c": CUSTOMER_ATTR},
                )
            elif kind != "send_page":
                continue
            anonymised[kind] = anonymised.get(kind, 0) + 1
        self._erase_from_pages(members, ids)
        batch_write(self._table, moved)
        # Member entries go last: a failed page rewrite leaves them for the step's next run.
        delete_items(self._table, [key_of(item) for item in [*deleted, *members]])
        return StoreErasure(store=self.name, erased=erased, anonymised=anonymised)

    def _erase_from_pages(self, members: Sequence[dict[str, Any]], ids: set[str]) -> None:
        """`ERASED` in the customer's place on each page a member entry names."""
        pages = {page_key(item["PK"]["S"]) for item in members}
        keys = [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in sorted(pages)]
        for page in batch_get(self._table, keys):
            names = [m.get("S") for m in page.get("members", {}).get("L", [])]
            if not ids.intersection(n for n in names if n):
                continue  # a run before rewrote it
            aws.dynamodb().update_item(
                TableName=self._table,
                Key=key_of(page),
                UpdateExpression="SET members = :new",
                # The page's cursor moves meanwhile, never its members; should they have
                # changed, the condition fails and so does this erasure step, which the
                # requests workflow runs again on fresh reads.
                ConditionExpression="members = :old",
                ExpressionAttributeValues={
                    ":new": {"L": [{"S": ERASED_MEMBER if m in ids else m} for m in names]},
                    ":old": page["members"],
                },
            )

    def verify(self, subject: DataSubject) -> StoreVerification:
        found = self._found(subject)
        return StoreVerification(
            store=self.name,
            # One index Query per id, and the push endpoints looked up by key.
            checked=1 + len(subject.merged_ids) + len(subject.external_ids),
            remnants=tuple(
                Remnant(
                    kind=kind_of(item), location=location(self._table, item), identifier_kind=ident
                )
                for item, ident in found
            ),
        )


def page_key(member_pk: str) -> tuple[str, str]:
    """The (PK, SK) of the send page a member entry belongs to."""
    send_id, page = page_of_member(member_pk)
    return f"SEND#{send_id}", f"PAGE#{page:06d}"


# ---- items written before the index ----------------------------------------------------------
def _owner(item: dict[str, Any], codes: dict[str, str]) -> str | None:
    """The customer an item written before the index belongs to (None: no one customer)."""
    pk: str = item["PK"]["S"]
    sk: str = item["SK"]["S"]
    values = from_item(item)
    kind = kind_of(item)
    if kind == "message":
        return MessageRecord.model_validate_json(values["body"]).request.customer_id
    if kind in ("caps", "touch", "outbox", "exposure", "journey_wait", "journey_escalation"):
        return pk.split("#", 1)[1]
    if kind == "journey_instance":  # JINST#<journey>#<customer>: journey ids hold no '#'
        return pk.split("#", 2)[2]
    if kind in ("coupon", "order_claim"):
        owner = values.get("customer_id")
        return str(owner) if owner else None
    if kind == "coupon_claim":
        return codes.get(str(values.get("code")))
    if kind == "conversion":
        owner = sk.rsplit("#", 1)[-1]
        return None if owner.startswith("anon-") else owner
    return None


def backfill_customer_index(table: str) -> dict[str, int]:
    """Gives every item written before the `customer` index its `CUST`, and every send page
    its member entries: one read of the whole table, once, after the deploy that added the
    index (`crm-local privacy backfill-campaigns`; docs/personal-data.md). Safe to run again
    and beside live traffic: an item is only updated while it exists and has no `CUST`, and
    member entries are rewritten as they are. Returns how many items of each kind it indexed."""
    codes: dict[str, str] = {}
    pending: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for item in scan_items(table):
        pk = item["PK"]["S"]
        if pk.startswith("COUPON#CODE#") and "customer_id" in item:
            codes[pk.removeprefix("COUPON#CODE#")] = item["customer_id"]["S"]
        if pk.startswith("SEND#") and item["SK"]["S"].startswith("PAGE#"):
            members.append(item)
        elif CUSTOMER_ATTR not in item:
            pending.append(item)
    done: dict[str, int] = {}
    for item in pending:
        owner = _owner(item, codes)
        if not owner:
            continue
        try:
            aws.dynamodb_bulk().update_item(
                TableName=table,
                Key=key_of(item),
                UpdateExpression="SET #c = :c",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(#c)",
                ExpressionAttributeNames={"#c": CUSTOMER_ATTR},
                ExpressionAttributeValues={":c": {"S": owner}},
            )
        except Exception as exc:
            if aws.failed_call_code(exc) != "ConditionalCheckFailedException":
                raise
            continue  # deleted or indexed meanwhile
        done[kind_of(item)] = done.get(kind_of(item), 0) + 1
    for page in members:
        send_id = page["PK"]["S"].removeprefix("SEND#")
        number = int(page["SK"]["S"].removeprefix("PAGE#"))
        ids = {m["S"] for m in page.get("members", {}).get("L", [])} - {ERASED_MEMBER}
        entries = [
            {"PutRequest": {"Item": {"PK": {"S": member_partition(send_id, number)},
                                     "SK": {"S": m}, CUSTOMER_ATTR: {"S": m}}}}
            for m in sorted(ids)
        ]  # fmt: skip
        batch_write(table, entries, bulk=True)
        done["send_page"] = done.get("send_page", 0) + len(entries)
    return done
