"""The segments family's personal data (`SegmentsTable`) as the privacy registry sees it.

A customer's items: one membership item per rule segment they are in (`SEG#<name>#<k>` /
`<customer_id>`, k = the member write shard of their id, so each is one GetItem-sized key
found without a scan), and legacy items of tiers and RFM cells an older version wrote. The
segments to look in are the rule definitions and the segments of the latest complete runs
(tiers, RFM cells). The customer's computed memberships and scores live on the profile's scores
item (profiles erases it, which takes it out of the member indexes); this store exports them,
the scores with what each automated decision means.
Recommendations are computed when asked for and never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from crm import aws
from crm.dynamo import batch_get, from_item
from crm.erasure import delete_items, key_of, location
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
from crm.profiles import member_index, member_shard

# How many complete runs' segment names are searched: run segments (tiers, RFM cells) that
# none of the last 30 runs produced have had their members removed by those runs.
RECENT_RUNS = 30
ScoresSource = Callable[[str], Mapping[str, Any] | None]
SegmentsSource = Callable[[str], Iterable[str]]


def _none(_: str) -> Iterable[str]:
    return ()


def explain(scores: Mapping[str, Any]) -> dict[str, str]:
    """Each automated decision about the customer, in words, with the figures behind it."""
    found: dict[str, str] = {}
    if "tier" in scores:
        found["tier"] = (
            f"Your tier is {scores['tier']}: tiers rank customers by what they spent over the "
            "last 12 months (net of refunds) and how often they ordered; it decides which "
            "member offers you are shown."
        )
    if "rfm_segment" in scores:
        found["rfm"] = (
            f"Your RFM cell is {scores['rfm_segment']} (recency {scores.get('recency_score')}, "
            f"frequency {scores.get('frequency_score')}, monetary "
            f"{scores.get('monetary_score')}, each 1-5 among all customers): how recently, how "
            "often and how much you ordered. Marketing chooses campaigns by this cell."
        )
    if scores.get("p_alive") is not None:
        found["churn"] = (
            f"The probability that you are still an active customer is {scores['p_alive']} "
            "(BG/NBD model over your order dates); expected orders in the next 90 days: "
            f"{scores.get('expected_orders_90d')}. A churn warning "
            f"({'raised' if scores.get('churn_warning') else 'not raised'}) may bring you "
            "win-back offers."
        )
    if scores.get("clv_12m") is not None:
        found["clv"] = (
            f"Your expected value over the next 12 months is {scores['clv_12m']} (Gamma-Gamma "
            "model of your order values times the expected number of orders); it sets how much "
            "a campaign may spend to keep you."
        )
    return found


class SegmentsPersonalData:
    """Segment memberships of one customer; their scores for the export."""

    name = "segments"
    claims = ("SegmentsTable",)

    def __init__(
        self, table: str, scores: ScoresSource, segments_of: SegmentsSource = _none
    ) -> None:
        self._table = table
        self._scores = scores
        # The segments her profile lists: a run under way may have put her in a segment no
        # complete run has produced yet (the registry erases segments before profiles).
        self._segments_of = segments_of

    def _segment_names(self, subject: DataSubject) -> set[str]:
        names: set[str] = set()
        for customer_id in (subject.customer_id, *subject.merged_ids):
            names |= set(self._segments_of(customer_id))
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "DEF"}},
            ProjectionExpression="SK",
            ConsistentRead=True,
        )
        names |= {item["SK"]["S"] for item in out.get("Items", [])}
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "SIZES"}},
            ScanIndexForward=False,
            Limit=RECENT_RUNS,
            ConsistentRead=True,
        )
        for item in out.get("Items", []):
            names |= set(from_item(item).get("sizes", {}))
        return names

    def _memberships(self, subject: DataSubject) -> list[dict[str, Any]]:
        ids = (subject.customer_id, *subject.merged_ids)
        keys = [
            {"PK": {"S": f"SEG#{name}#{member_shard(cid):02d}"}, "SK": {"S": cid}}
            for name in sorted(self._segment_names(subject))
            for cid in ids
        ]
        return batch_get(self._table, keys)

    def inventory(self, subject: DataSubject) -> StoreInventory:
        count = len(self._memberships(subject))
        holdings = (Holding(kind="membership", count=count, erasure=ErasureMethod.DELETE),)
        return StoreInventory(store=self.name, holdings=holdings if count else ())

    def export(self, subject: DataSubject) -> StoreExport:
        names = {
            item["PK"]["S"].removeprefix("SEG#").rsplit("#", 1)[0]
            for item in self._memberships(subject)
        }
        # Tiers and RFM cells: the scores item lists them (it is their membership).
        names |= {s for s in self._segments_of(subject.customer_id) if member_index(s) is not None}
        members = [{"segment": name} for name in names]
        scores = self._scores(subject.customer_id)
        return StoreExport(
            store=self.name,
            sections={
                "segment_memberships": sorted(members, key=lambda m: m["segment"]),
                "scores": [dict(scores)] if scores else [],
            },
            explanations=explain(scores) if scores else {},
        )

    def erase(self, subject: DataSubject) -> StoreErasure:
        found = self._memberships(subject)
        delete_items(self._table, [key_of(item) for item in found])
        return StoreErasure(store=self.name, erased={"membership": len(found)} if found else {})

    def verify(self, subject: DataSubject) -> StoreVerification:
        found = self._memberships(subject)
        return StoreVerification(
            store=self.name,
            checked=len(self._segment_names(subject)),
            remnants=tuple(
                Remnant(
                    kind="membership",
                    location=location(self._table, item),
                    identifier_kind="customer_id",
                )
                for item in found
            ),
        )
