"""DynamoDB access for after-sales cases, classification corrections and product feedback
(table `TicketsTable`, shared with the tickets themselves; docs/data-model.md).

case            PK=CASE#<case_id>     SK=CASE            kind, order, customer, reason, amount,
                                                         sealed note, stage, version, 先行赔付
stage           PK=CASE#<case_id>     SK=STAGE#<nnn>     stage, at, by, sealed reason, event id
upstream event  PK=CASE#<case_id>     SK=EVENT#<id>      the stage it asked for (applied once)
customer's case PK=CUST#<customer_id> SK=AFTERSALES#<created_at>#<case_id>
instant refund  PK=CUST#<customer_id> SK=INSTANT_REFUND#<order_id>  case_id (one per order:
                the customer the order's payment was folded to, so merges keep it one)
asked back      PK=CUST#<customer_id> SK=ASKED#<order_id>  asked (ADD): what the customer's
                open and refunded cases of a known order ask back
correction      PK=CORRECTION#<yyyy-mm>  SK=<at>#<id>    text_ref, predicted, corrected, by
feedback        PK=FEEDBACK#<scope>#<value>#<yyyy-mm>#<k>  SK=<dimension>#<name>  n (ADD)
fed source      PK=FEEDBACK_SOURCE#<source_id>  SK=FEEDBACK   counted once
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from crm import aws
from crm.dynamo import MAX_TRANSACT_ITEMS, from_item, to_item

# A popular SKU in a promotion gets thousands of returns an hour: its counters are spread over
# this many partitions (1,000 writes/s each) by a hash of the source, and summed on reading.
FEEDBACK_SHARDS = 8
MAX_CUSTOMER_CASES = 100


def feedback_shard(source_id: str) -> int:
    return int(hashlib.sha256(source_id.encode()).hexdigest()[:8], 16) % FEEDBACK_SHARDS


def _case_pk(case_id: str) -> str:
    return f"CASE#{case_id}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


@dataclass
class StageRecord:
    seq: int
    stage: str
    at: datetime
    by: str
    reason: str | None = None  # sealed
    event_id: str | None = None


@dataclass
class CaseRecord:
    case_id: str
    kind: str
    order_id: str
    customer_id: str
    reason: str
    amount: Decimal
    stage: str
    created_at: datetime
    version: int = 0
    sku: str | None = None
    product_category: str | None = None
    note: str | None = None  # sealed
    instant_refund: dict[str, Any] | None = None
    # Its amount counts in its order's ASKED item (a refund or return of an order the CRM
    # knew): taken back out when the case is rejected or cancelled.
    counted: bool = False
    stages: list[StageRecord] = field(default_factory=list)


@dataclass(frozen=True)
class FeedbackCount:
    scope: str  # "sku" or "category"
    value: str
    period: str  # yyyy-mm
    dimension: str  # "category", "reason" or "risk"
    name: str


class StaleCase(Exception):
    """The case changed since it was read."""


class InstantRefundTaken(Exception):
    """The order had a case refunded at once (先行赔付) already."""


class OrderAskedOut(Exception):
    """The order's cases would ask back more than it has left to refund."""


INSTANT_REFUND_PREFIX = "INSTANT_REFUND#"
ASKED_PREFIX = "ASKED#"
DROPPED_STAGES = frozenset({"rejected", "cancelled"})  # a case that asks nothing back any more


def _asked_key(customer_id: str, order_id: str) -> dict[str, Any]:
    return _key(f"CUST#{customer_id}", f"{ASKED_PREFIX}{order_id}")


class DuplicateEvent(Exception):
    """The upstream event was applied before."""


def _case_item(case: CaseRecord) -> dict[str, Any]:
    return to_item(
        {
            "PK": _case_pk(case.case_id),
            "SK": "CASE",
            "case_id": case.case_id,
            "kind": case.kind,
            "order_id": case.order_id,
            "customer_id": case.customer_id,
            "reason": case.reason,
            "amount": case.amount,
            "stage": case.stage,
            "created_at": case.created_at.isoformat(),
            "version": case.version,
            "sku": case.sku,
            "product_category": case.product_category,
            "note": case.note,
            "instant_refund": case.instant_refund,
            "counted": case.counted,
        }
    )


def _stage_item(case_id: str, stage: StageRecord) -> dict[str, Any]:
    return to_item(
        {
            "PK": _case_pk(case_id),
            "SK": f"STAGE#{stage.seq:03d}",
            "stage": stage.stage,
            "at": stage.at.isoformat(),
            "by": stage.by,
            "reason": stage.reason,
            "event_id": stage.event_id,
        }
    )


def feedback_writes(
    table: str, source_id: str, counts: Iterable[FeedbackCount]
) -> list[dict[str, Any]]:
    """The transaction items that count `counts` once for `source_id`: a marker put only if
    absent, and one ADD per counter on the source's shard."""
    shard = feedback_shard(source_id)
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table,
                "Item": to_item({"PK": f"FEEDBACK_SOURCE#{source_id}", "SK": "FEEDBACK"}),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    ]
    for c in counts:
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": _key(
                        f"FEEDBACK#{c.scope}#{c.value}#{c.period}#{shard:02d}",
                        f"{c.dimension}#{c.name}",
                    ),
                    "UpdateExpression": "ADD n :one SET #d = :d, #v = :v",
                    "ExpressionAttributeNames": {"#d": "dimension", "#v": "name"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":d": {"S": c.dimension},
                        ":v": {"S": c.name},
                    },
                }
            }
        )
    return items


class AfterSalesStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------ cases
    def create(
        self,
        case: CaseRecord,
        feedback: tuple[str, list[FeedbackCount]] | None,
        instant_refund_of: tuple[str, str] | None = None,
        refundable: Decimal | None = None,
    ) -> None:
        """The case, its first stages, the customer's index entry and (once) its feedback
        counts, in one transaction: all or nothing. `instant_refund_of`: (the customer the
        order's payment names, the order), for a case refunded at once: the order's marker
        is written in the same transaction, and InstantRefundTaken raised if it exists.
        `refundable`: for a `counted` case, what its order has left to refund; its amount is
        added to the order's ASKED item on condition that the sum stays within, or
        OrderAskedOut is raised."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _case_item(case),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "PK": f"CUST#{case.customer_id}",
                            "SK": f"AFTERSALES#{case.created_at.isoformat()}#{case.case_id}",
                            "case_id": case.case_id,
                        }
                    ),
                }
            },
        ]
        items += [{"Put": {"TableName": self._table, "Item": _stage_item(case.case_id, s)}}
                  for s in case.stages]  # fmt: skip
        if refundable is not None:
            room = refundable - case.amount
            items.insert(0, {
                "Update": {
                    "TableName": self._table,
                    "Key": _asked_key(case.customer_id, case.order_id),
                    "UpdateExpression": "ADD asked :amount",
                    "ConditionExpression": "attribute_not_exists(asked) OR asked <= :room",
                    "ExpressionAttributeValues": to_item(
                        {":amount": case.amount, ":room": room}
                    ),
                }
            })  # fmt: skip
        if instant_refund_of is not None:
            owner, order_id = instant_refund_of
            items.insert(0, {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item({"PK": f"CUST#{owner}",
                                     "SK": f"{INSTANT_REFUND_PREFIX}{order_id}",
                                     "case_id": case.case_id}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            })  # fmt: skip
        if feedback is not None:
            items += feedback_writes(self._table, *feedback)
        assert len(items) <= MAX_TRANSACT_ITEMS
        client = aws.dynamodb()
        try:
            client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if instant_refund_of is not None and reasons[:1] == ["ConditionalCheckFailed"]:
                raise InstantRefundTaken(instant_refund_of[1]) from None
            at = 1 if instant_refund_of is not None else 0
            if refundable is not None and reasons[at : at + 1] == ["ConditionalCheckFailed"]:
                raise OrderAskedOut(case.order_id) from None
            raise

    def asked_back(self, customer_id: str, order_id: str) -> Decimal:
        """What the customer's counted cases of the order ask back now."""
        got = (
            aws.dynamodb()
            .get_item(
                TableName=self._table, Key=_asked_key(customer_id, order_id), ConsistentRead=True
            )
            .get("Item")
        )
        return Decimal(got["asked"]["N"]) if got else Decimal("0.00")

    def get(self, case_id: str) -> CaseRecord | None:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _case_pk(case_id)}},
            "ConsistentRead": True,
        }
        while True:
            out = aws.dynamodb().query(**query)
            items += out.get("Items", [])
            if "LastEvaluatedKey" not in out:
                break
            query["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        head = next((from_item(i) for i in items if i["SK"]["S"] == "CASE"), None)
        if head is None:
            return None
        case = _case(head)
        for raw in items:
            if raw["SK"]["S"].startswith("STAGE#"):
                case.stages.append(_stage(from_item(raw)))
        case.stages.sort(key=lambda s: s.seq)
        return case

    def advance(self, case: CaseRecord, stage: StageRecord, event_id: str) -> None:
        """Move a case read at `case.version` to `stage`, marking the upstream event applied.
        Raises DuplicateEvent when the event was applied before, StaleCase when the case moved
        meanwhile."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "PK": _case_pk(case.case_id),
                            "SK": f"EVENT#{event_id}",
                            "stage": stage.stage,
                            "at": stage.at.isoformat(),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(_case_pk(case.case_id), "CASE"),
                    "UpdateExpression": "SET stage = :stage, version = :next",
                    "ConditionExpression": "version = :version",
                    "ExpressionAttributeValues": {
                        ":stage": {"S": stage.stage},
                        ":next": {"N": str(case.version + 1)},
                        ":version": {"N": str(case.version)},
                    },
                }
            },
            {"Put": {"TableName": self._table, "Item": _stage_item(case.case_id, stage)}},
        ]
        if case.counted and stage.stage in DROPPED_STAGES:
            items.append({
                "Update": {
                    "TableName": self._table,
                    "Key": _asked_key(case.customer_id, case.order_id),
                    "UpdateExpression": "ADD asked :amount",
                    "ExpressionAttributeValues": to_item({":amount": -case.amount}),
                }
            })  # fmt: skip
        client = aws.dynamodb()
        try:
            client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateEvent(event_id) from None
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise StaleCase(case.case_id) from None
            raise

    def applied_event(self, case_id: str, event_id: str) -> bool:
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key=_key(_case_pk(case_id), f"EVENT#{event_id}"),
            ConsistentRead=True,
        )
        return "Item" in out

    def customer_cases(self, customer_id: str) -> list[CaseRecord]:
        """A customer's latest cases, newest first (at most MAX_CUSTOMER_CASES)."""
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": f"CUST#{customer_id}"},
                ":prefix": {"S": "AFTERSALES#"},
            },
            ScanIndexForward=False,
            Limit=MAX_CUSTOMER_CASES,
        )
        ids = [i["case_id"]["S"] for i in out.get("Items", [])]
        return [c for c in (self.get(case_id) for case_id in ids) if c is not None]

    # ------------------------------------------------------------ classification corrections
    def record_correction(
        self, correction_id: str, text_ref: str, predicted: str, corrected: str, by: str,
        at: datetime,
    ) -> None:  # fmt: skip
        aws.dynamodb().put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "PK": f"CORRECTION#{at:%Y-%m}",
                    "SK": f"{at.isoformat()}#{correction_id}",
                    "correction_id": correction_id,
                    "text_ref": text_ref,
                    "predicted": predicted,
                    "corrected": corrected,
                    "by": by,
                    "at": at.isoformat(),
                }
            ),
        )

    def corrections(self, month: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"CORRECTION#{month}"}},
        }
        while True:
            out = aws.dynamodb().query(**query)
            found += [from_item(i) for i in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                return found
            query["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    # ------------------------------------------------------------ product feedback
    def record_feedback(self, source_id: str, counts: Sequence[FeedbackCount]) -> bool:
        """Count a source's feedback once; False when it was counted before."""
        client = aws.dynamodb()
        try:
            client.transact_write_items(
                TransactItems=feedback_writes(self._table, source_id, counts)  # type: ignore[arg-type]
            )
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            raise
        return True

    def feedback(self, scope: str, value: str, period: str) -> dict[tuple[str, str], int]:
        """(dimension, name) -> count, summed over the write shards."""
        totals: dict[tuple[str, str], int] = {}
        for shard in range(FEEDBACK_SHARDS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": {
                    ":pk": {"S": f"FEEDBACK#{scope}#{value}#{period}#{shard:02d}"}
                },
            }
            while True:
                out = aws.dynamodb().query(**query)
                for raw in out.get("Items", []):
                    item = from_item(raw)
                    key = (str(item["dimension"]), str(item["name"]))
                    totals[key] = totals.get(key, 0) + int(item["n"])
                if "LastEvaluatedKey" not in out:
                    break
                query["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return totals


def _case(v: dict[str, Any]) -> CaseRecord:
    return CaseRecord(
        case_id=v["case_id"],
        kind=v["kind"],
        order_id=v["order_id"],
        customer_id=v["customer_id"],
        reason=v["reason"],
        amount=Decimal(v["amount"]),
        stage=v["stage"],
        created_at=datetime.fromisoformat(v["created_at"]),
        version=int(v["version"]),
        sku=v.get("sku"),
        product_category=v.get("product_category"),
        note=v.get("note"),
        instant_refund=v.get("instant_refund"),
        counted=bool(v.get("counted", False)),
    )


def _stage(v: dict[str, Any]) -> StageRecord:
    return StageRecord(
        seq=int(v["SK"].split("#", 1)[1]),
        stage=v["stage"],
        at=datetime.fromisoformat(v["at"]),
        by=v["by"],
        reason=v.get("reason"),
        event_id=v.get("event_id"),
    )
