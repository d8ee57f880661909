"""DynamoDB access for segment sends, coupons and conversions (table `CampaignsTable`).

offer            PK=COUPON#OFFER              SK=<offer_id>          the offer as defined
budget shard     PK=COUPON#BUDGET#<offer_id>  SK=<k>                 issued, cap (16 shards)
issue claim      PK=COUPON#ISSUED#<offer_id>  SK=<issued_by>         the code issued for it
code             PK=COUPON#CODE#<code>        SK=CODE                offer, customer, issued_by,
                                                                     expiry, redemption
send             PK=SEND                      SK=<send_id>           definition, status, progress
page             PK=SEND#<send_id>            SK=PAGE#<n>            members, cursor, state
assignments      PK=SENDSTAT#<send_id>#<k>    SK=<arm>#<variant>     members assigned (16 shards)
exposure         PK=EXPO#<customer_id>        SK=<campaign_id>       holdout/control, no message
conversion       PK=CONV#<campaign_id>        SK=<arm>#<variant>#<customer_id>  orders, revenue
order claim      PK=CONVORDER#<order_id>      SK=<campaign_id>       an order counts once
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from crm import aws
from crm.campaigns.records import member_partition, owned_by
from crm.clock import iso
from crm.dynamo import MAX_TRANSACT_ITEMS, batch_write, from_item, to_item

# A 1M-recipient send writes its assignment counters and a popular offer its issue counters
# from up to 100 workers at once: spread over 16 partitions each, not one hot key.
COUNTER_SHARDS = 16


def counter_shard(value: str) -> int:
    return int(hashlib.sha256(value.encode()).hexdigest()[:8], 16) % COUNTER_SHARDS


def shard_caps(budget: int) -> list[int]:
    """A budget split over the shards, summing to it exactly."""
    return [
        budget // COUNTER_SHARDS + (1 if k < budget % COUNTER_SHARDS else 0)
        for k in range(COUNTER_SHARDS)
    ]


class Cancelled(Exception):
    """A transaction a condition cancelled; `failed` are the positions of the failed checks."""

    def __init__(self, failed: set[int], items: list[dict[str, Any]]) -> None:
        super().__init__(f"conditions failed at {sorted(failed)}")
        self.failed = failed
        self.items = items


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


class SendStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------ plumbing
    def _transact(self, items: list[dict[str, Any]]) -> None:
        assert len(items) <= MAX_TRANSACT_ITEMS
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            failed = {n for n, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
            returned = [from_item(r.get("Item") or {}) for r in reasons]
            raise Cancelled(failed, returned) from None

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = aws.dynamodb().get_item(TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        return from_item(out["Item"]) if "Item" in out else None

    def _query(
        self, pk: str, *, prefix: str | None = None, forward: bool = True, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": forward,
        }
        if prefix is not None:
            params["KeyConditionExpression"] += " AND begins_with(SK, :p)"
            params["ExpressionAttributeValues"][":p"] = {"S": prefix}
        if limit is not None:
            params["Limit"] = limit
        seen = 0
        while True:
            out = aws.dynamodb().query(**params)
            for item in out.get("Items", []):
                yield from_item(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if "LastEvaluatedKey" not in out:
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _put_new(self, pk: str, sk: str, values: Mapping[str, Any]) -> bool:
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=to_item({"PK": pk, "SK": sk, **values}),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _update(
        self,
        pk: str,
        sk: str,
        update: str,
        values: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The item after the update, or None when the condition failed."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(pk, sk),
            "UpdateExpression": update,
            "ExpressionAttributeValues": to_item(values),
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            params["ConditionExpression"] = condition
        if names:
            params["ExpressionAttributeNames"] = dict(names)
        try:
            out = aws.dynamodb().update_item(**params)
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return from_item(out.get("Attributes", {}))

    # ------------------------------------------------------------ offers
    def create_offer(self, offer: Mapping[str, Any]) -> bool:
        offer_id = offer["offer_id"]
        if not self._put_new("COUPON#OFFER", offer_id, offer):
            return False
        caps = shard_caps(int(offer["budget"]))
        batch_write(
            self._table,
            [
                {
                    "PutRequest": {
                        "Item": to_item(
                            {
                                "PK": f"COUPON#BUDGET#{offer_id}",
                                "SK": f"{k:02d}",
                                "issued": 0,
                                "cap": cap,
                            }
                        )
                    }
                }
                for k, cap in enumerate(caps)
            ],
        )
        return True

    def offer(self, offer_id: str) -> dict[str, Any] | None:
        return self._get("COUPON#OFFER", offer_id)

    def offers(self) -> list[dict[str, Any]]:
        return list(self._query("COUPON#OFFER"))

    def issued_count(self, offer_id: str) -> int:
        return sum(int(i["issued"]) for i in self._query(f"COUPON#BUDGET#{offer_id}"))

    def issued_code(self, offer_id: str, issued_by: str) -> str | None:
        item = self._get(f"COUPON#ISSUED#{offer_id}", issued_by)
        return str(item["code"]) if item else None

    def issue(self, code: Mapping[str, Any], shard: int) -> None:
        """Claim (offer, issued_by), the code and one unit of a budget shard, or none of them:
        Cancelled names which failed (0 issued before, 1 code taken, 2 shard spent)."""
        offer_id, issued_by = code["offer_id"], code["issued_by"]
        owner = owned_by(code.get("customer_id"))
        claim = {"PK": f"COUPON#ISSUED#{offer_id}", "SK": issued_by, "code": code["code"], **owner}
        self._transact(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(claim),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(
                            {"PK": f"COUPON#CODE#{code['code']}", "SK": "CODE", **code, **owner}
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(f"COUPON#BUDGET#{offer_id}", f"{shard:02d}"),
                        "UpdateExpression": "ADD issued :one",
                        "ConditionExpression": "issued < cap",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    def code(self, code: str) -> dict[str, Any] | None:
        return self._get(f"COUPON#CODE#{code}", "CODE")

    def redeem(self, code: str, values: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        """Mark the code redeemed if it is issued and unexpired; None otherwise."""
        return self._update(
            f"COUPON#CODE#{code}",
            "CODE",
            "SET #s = :redeemed, redeemed_at = :now, redemption = :r",
            {":redeemed": "redeemed", ":issued": "issued", ":now": iso(now), ":r": values},
            condition="#s = :issued AND expires_at > :now",
            names={"#s": "state"},
        )

    # ------------------------------------------------------------ sends
    def create_send(self, send: Mapping[str, Any]) -> None:
        if not self._put_new("SEND", send["send_id"], send):
            raise RuntimeError("send id taken")  # ids are fresh: never expected

    def send(self, send_id: str) -> dict[str, Any] | None:
        return self._get("SEND", send_id)

    def sends(self, limit: int) -> list[dict[str, Any]]:
        return list(self._query("SEND", forward=False, limit=limit))

    def set_status(
        self, send_id: str, status: str, allowed_from: Sequence[str], extra: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Move a send to `status` if it is in one of `allowed_from`; the send after, or None."""
        sets = ["#s = :status"] + [f"{name} = :{name}" for name in extra]
        values: dict[str, Any] = {":status": status, **{f":{k}": v for k, v in extra.items()}}
        froms = []
        for n, state in enumerate(allowed_from):
            values[f":from{n}"] = state
            froms.append(f":from{n}")
        return self._update(
            "SEND",
            send_id,
            "SET " + ", ".join(sets),
            values,
            condition=f"#s IN ({', '.join(froms)})",
            names={"#s": "status"},
        )

    def note_listed(self, send_id: str, pages: int, members: int, done: bool) -> None:
        """`pages` listed so far in all (the listing is one chain, its page numbers rising):
        a listing retried after it queued its pages sets the same number, never a lower."""
        self._update(
            "SEND",
            send_id,
            "SET pages_listed = :p, listing_done = :d ADD recipients :m",
            {":p": pages, ":m": members, ":d": done},
            condition="attribute_not_exists(pages_listed) OR pages_listed <= :p",
        )

    def put_page(self, send_id: str, page: int, members: list[str]) -> bool:
        """A listed page, written once: a listing retried after a crash finds it there.
        Its member entries go first (rewriting them is harmless), so no page is ever stored
        whose members an erasure could not find by the customer index."""
        batch_write(
            self._table,
            [
                {"PutRequest": {"Item": to_item(
                    {"PK": member_partition(send_id, page), "SK": m, **owned_by(m)})}}
                for m in dict.fromkeys(members)
            ],
        )  # fmt: skip
        return self._put_new(
            f"SEND#{send_id}",
            f"PAGE#{page:06d}",
            {"members": members, "done": 0, "state": "listed"},
        )

    def page(self, send_id: str, page: int) -> dict[str, Any] | None:
        return self._get(f"SEND#{send_id}", f"PAGE#{page:06d}")

    def parked_pages(self, send_id: str) -> list[int]:
        return [
            int(i["SK"].split("#")[1])
            for i in self._query(f"SEND#{send_id}", prefix="PAGE#")
            if i.get("state") == "parked"
        ]

    def set_page_state(
        self, send_id: str, page: int, state: str, from_states: Sequence[str]
    ) -> bool:
        values = {":s": state, **{f":f{n}": s for n, s in enumerate(from_states)}}
        froms = ", ".join(f":f{n}" for n in range(len(from_states)))
        return (
            self._update(
                f"SEND#{send_id}",
                f"PAGE#{page:06d}",
                "SET #st = :s",
                values,
                condition=f"#st IN ({froms})",
                names={"#st": "state"},
            )
            is not None
        )

    def advance_page(
        self,
        send_id: str,
        page: int,
        done_before: int,
        done_after: int,
        counts: Mapping[tuple[str, str], Mapping[str, int]],
        exposures: Sequence[Mapping[str, Any]],
    ) -> bool:
        """Move the page's cursor from `done_before` to `done_after` and add what those
        recipients counted, in one transaction: False when another attempt moved it first."""
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(f"SEND#{send_id}", f"PAGE#{page:06d}"),
                    "UpdateExpression": "SET done = :after",
                    "ConditionExpression": "done = :before",
                    "ExpressionAttributeValues": {
                        ":before": {"N": str(done_before)},
                        ":after": {"N": str(done_after)},
                    },
                }
            },
        ]
        shard = page % COUNTER_SHARDS
        for (arm, variant), by_name in counts.items():
            names = sorted(by_name)
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(f"SENDSTAT#{send_id}#{shard:02d}", f"{arm}#{variant}"),
                        "UpdateExpression": "ADD " + ", ".join(f"{n} :{n}" for n in names),
                        "ExpressionAttributeValues": {
                            f":{n}": {"N": str(by_name[n])} for n in names
                        },
                    }
                }
            )
        for exposure in exposures:
            items.append({"Put": {"TableName": self._table, "Item": to_item(exposure)}})
        try:
            self._transact(items)
        except Cancelled as exc:
            if exc.failed == {0}:
                return False
            raise
        return True

    def finish_page(self, send_id: str) -> dict[str, Any] | None:
        return self._update("SEND", send_id, "ADD pages_done :one", {":one": 1})

    def assignments(self, send_id: str) -> dict[tuple[str, str], dict[str, int]]:
        """(arm, variant) -> counters, summed over the shards."""
        found: dict[tuple[str, str], dict[str, int]] = {}
        for k in range(COUNTER_SHARDS):
            for item in self._query(f"SENDSTAT#{send_id}#{k:02d}"):
                arm, _, variant = item["SK"].partition("#")
                into = found.setdefault((arm, variant), {})
                for name, value in item.items():
                    if name not in {"PK", "SK"}:
                        into[name] = into.get(name, 0) + int(value)
        return found

    # ------------------------------------------------------------ exposures and conversions
    def exposures(self, customer_id: str) -> list[dict[str, Any]]:
        return list(self._query(f"EXPO#{customer_id}"))

    def record_conversion(
        self,
        order_id: str,
        campaign_id: str,
        arm: str,
        variant: str,
        customer_id: str,
        revenue: Decimal,
        at: datetime,
        coupon: bool,
    ) -> bool:
        """The order counted for the campaign once; False when it was already."""
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(
                                {
                                    "PK": f"CONVORDER#{order_id}",
                                    "SK": campaign_id,
                                    "customer_id": customer_id,
                                    **owned_by(customer_id),
                                    "at": at.isoformat(),
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _key(f"CONV#{campaign_id}", f"{arm}#{variant}#{customer_id}"),
                            "UpdateExpression": "SET CUST = :cust "
                            "ADD orders :one, revenue :rev, coupons :c",
                            "ExpressionAttributeValues": to_item(
                                {
                                    ":one": 1,
                                    ":rev": revenue,
                                    ":c": 1 if coupon else 0,
                                    ":cust": customer_id,
                                }
                            ),
                        }
                    },
                ]
            )
        except Cancelled:
            return False
        return True

    def conversions(self, campaign_id: str) -> list[dict[str, Any]]:
        return list(self._query(f"CONV#{campaign_id}"))
