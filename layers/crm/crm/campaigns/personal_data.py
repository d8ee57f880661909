"""The campaigns family's personal data (`CampaignsTable`) as the privacy registry sees it.

A customer's id sits in keys (`CAP#`, `TOUCH#`, `OUTBOX#`, `EXPO#`, `JWAIT#`, `JINST#<journey>#`,
`JESC#` (when a ticket of theirs was last escalated, for journeys' exits),
`CONV#<campaign>` / `<arm>#<variant>#<id>`) and in values that no key reaches: the dispatch
ledger (`MSG#<hash of the dispatch key>`, its request names the customer), coupon codes and
their issue claims, order claims and send pages (500 member ids each). So erasure reads the
table once, whole, and acts on every item that holds one of the customer's ids:
- deleted: messages, caps, last touches, outbox entries, exposures, journey instances and
  waits, the last escalation journeys keep, coupon codes and issue claims, push endpoints
  (keyed by the app user id);
- kept without the id: conversions (moved under a random anonymous id, so campaign reports
  keep their totals), order claims (the customer id removed: the order still counts once),
  send pages (the id replaced by `ERASED` in place, so a page's cursor keeps its meaning);
- counters (`STATS#`, `SENDSTAT#`, `JSTATS#`) hold no id.

Cost: one Scan of the whole table per erasure (read units for every item, ~1 RCU per 4 KB
read); at a few million messages that is minutes and dollars per request. A sparse global
secondary index keyed by customer id on the items that hold one (written by dispatch, coupons,
conversions) would make it a Query; the scan is kept until erasures are frequent enough to pay
for the index's writes.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm import aws
from crm.campaigns.dispatch_store import MessageRecord
from crm.dynamo import batch_get, batch_write, from_item
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
    ("SEND#", "send_page"),
    ("PUSH#", "push_endpoint"),
)
KEPT = frozenset({"conversion", "order_claim", "send_page"})


def kind_of(item: dict[str, Any]) -> str:
    pk = item["PK"]["S"]
    for prefix, kind in _KINDS:
        if pk.startswith(prefix):
            return kind
    return "other"


class CampaignsPersonalData:
    """Messages, caps, touches, coupons, journey instances and send recipients of a customer."""

    name = "campaigns"
    claims = ("CampaignsTable",)

    def __init__(self, table: str) -> None:
        self._table = table

    def _found(self, subject: DataSubject) -> list[tuple[dict[str, Any], str]]:
        ids = Identifiers.of(subject, customer_ids_only=True)
        found = list(mentioning(scan_items(self._table), ids))
        # Push endpoints are keyed by the app's user id (an external id), not the customer's.
        push = batch_get(
            self._table,
            [{"PK": {"S": f"PUSH#{e}"}, "SK": {"S": "ENDPOINT"}} for e in subject.external_ids],
        )
        seen = {location(self._table, item) for item, _ in found}
        found += [(i, "external_id") for i in push if location(self._table, i) not in seen]
        return found

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
        for item, _ in found:
            kind = kind_of(item)
            if kind == "conversion":
                sk = item["SK"]["S"].rsplit("#", 1)[0] + "#" + anonymous_id
                moved.append({"PutRequest": {"Item": {**item, "SK": {"S": sk}}}})
                deleted.append(item)
            elif kind == "order_claim":
                aws.dynamodb().update_item(
                    TableName=self._table,
                    Key=key_of(item),
                    UpdateExpression="REMOVE customer_id",
                )
            elif kind == "send_page":
                members = [m.get("S") for m in item.get("members", {}).get("L", [])]
                aws.dynamodb().update_item(
                    TableName=self._table,
                    Key=key_of(item),
                    UpdateExpression="SET members = :new",
                    # The page's cursor moves meanwhile, never its members; should they have
                    # changed, the condition fails and so does this erasure step, which the
                    # requests workflow runs again on fresh reads.
                    ConditionExpression="members = :old",
                    ExpressionAttributeValues={
                        ":new": {"L": [{"S": ERASED_MEMBER if m in ids else m} for m in members]},
                        ":old": item["members"],
                    },
                )
            else:
                continue
            anonymised[kind] = anonymised.get(kind, 0) + 1
        batch_write(self._table, moved)
        delete_items(self._table, [key_of(item) for item in deleted])
        return StoreErasure(store=self.name, erased=erased, anonymised=anonymised)

    def verify(self, subject: DataSubject) -> StoreVerification:
        checked = 0
        ids = Identifiers.of(subject, customer_ids_only=True)

        def counted() -> Any:
            nonlocal checked
            for item in scan_items(self._table):
                checked += 1
                yield item

        found = list(mentioning(counted(), ids))
        push = batch_get(
            self._table,
            [{"PK": {"S": f"PUSH#{e}"}, "SK": {"S": "ENDPOINT"}} for e in subject.external_ids],
        )
        found += [(item, "external_id") for item in push]
        return StoreVerification(
            store=self.name,
            checked=checked,
            remnants=tuple(
                Remnant(
                    kind=kind_of(item), location=location(self._table, item), identifier_kind=ident
                )
                for item, ident in found
            ),
        )
