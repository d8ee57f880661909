"""The journeys' items in CampaignsTable: the only journey code that touches boto3.

JOURNEYS            JOURNEY#<id>        the journey's head: status, current version, definition
JOURNEY#<id>        V#<version>         each version's definition (kept: instances run on theirs)
JINST#<jid>#<cid>   LATEST              the customer's latest entry: seq, in/done, trigger key
JINST#<jid>#<cid>   E#<seq>             one instance (one customer's entry into the journey)
JWAIT#<cid>         <instance_id>       an instance waiting for an event of this customer
JSTATS#<jid>#<nn>   STATS               counters for the report, write-sharded
JESC#<cid>          ESCALATED           when a ticket of the customer was last escalated

Every step of an instance is one TransactWriteItems conditioned on the instance's `pos` (the
steps taken), with the report's counters (and a timer claim or a wait item) in the same
transaction: a redelivered trigger, wake-up or event moves nothing twice and counts nothing
twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm import aws
from crm.campaigns.journey_models import JourneyDefinition, JourneyInstance, StoredJourney
from crm.campaigns.records import owned_by
from crm.clock import iso
from crm.dynamo import batch_get, from_item, to_item

STATS_SHARDS = 16
LIST_PARTITION = "JOURNEYS"
# An instance that has ended stays readable for the report's drill-down, then expires.
ENDED_RETENTION_S = 180 * 86400
# A customer's last escalation is looked at by instances entered since (journeys last months).
ESCALATION_RETENTION_S = 365 * 86400
_CONDITION_FAILED = ("TransactionCanceledException", "ConditionalCheckFailedException")


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def head_key(journey_id: str) -> dict[str, Any]:
    return _key(LIST_PARTITION, f"JOURNEY#{journey_id}")


def version_key(journey_id: str, version: int) -> dict[str, Any]:
    return _key(f"JOURNEY#{journey_id}", f"V#{version:06d}")


def instance_partition(journey_id: str, customer_id: str) -> str:
    return f"JINST#{journey_id}#{customer_id}"


def instance_id_of(journey_id: str, customer_id: str, seq: int) -> str:
    return f"{journey_id}#{customer_id}#{seq}"


def parse_instance_id(instance_id: str) -> tuple[str, str, int]:
    journey_id, _, rest = instance_id.partition("#")
    customer_id, _, seq = rest.rpartition("#")
    if not journey_id or not customer_id or not seq.isdigit():
        raise ValueError("not an instance id")
    return journey_id, customer_id, int(seq)


def escalation_key(customer_id: str) -> dict[str, Any]:
    return _key(f"JESC#{customer_id}", "ESCALATED")


def instance_key(instance_id: str) -> dict[str, Any]:
    journey_id, customer_id, seq = parse_instance_id(instance_id)
    return _key(instance_partition(journey_id, customer_id), f"E#{seq:06d}")


def latest_key(journey_id: str, customer_id: str) -> dict[str, Any]:
    return _key(instance_partition(journey_id, customer_id), "LATEST")


def wait_key(customer_id: str, instance_id: str) -> dict[str, Any]:
    return _key(f"JWAIT#{customer_id}", instance_id)


def stats_shard(instance_id: str) -> int:
    digest = hashlib.blake2b(instance_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % STATS_SHARDS


def stats_key(journey_id: str, shard: int) -> dict[str, Any]:
    return _key(f"JSTATS#{journey_id}#{shard:02d}", "STATS")


@dataclass(frozen=True)
class Latest:
    seq: int
    inside: bool
    trigger_key: str | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Waiting:
    instance_id: str
    event_type: str
    pos: int


class JourneyStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------------ definitions
    def _head_item(self, journey: StoredJourney) -> dict[str, Any]:
        return {
            **head_key(journey.journey_id),
            **to_item({"journey": journey.model_dump_json(), "status": journey.status,
                       "version": journey.version, "updated_at": iso(journey.updated_at)}),
        }  # fmt: skip

    def _version_item(self, journey: StoredJourney) -> dict[str, Any]:
        return {
            **version_key(journey.journey_id, journey.version),
            **to_item({"definition": journey.definition.model_dump_json()}),
        }

    def save_journey(
        self, journey: StoredJourney, previous: StoredJourney | None, new_version: bool
    ) -> bool:
        """Put the head (and the version when it is new, or the draft's version rewritten);
        False when someone else changed the journey since `previous` was read."""
        head: dict[str, Any] = {"TableName": self._table, "Item": self._head_item(journey)}
        if previous is None:
            head["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            head["ConditionExpression"] = "updated_at = :u AND version = :v"
            head["ExpressionAttributeValues"] = to_item(
                {":u": iso(previous.updated_at), ":v": previous.version}
            )
        version: dict[str, Any] = {"TableName": self._table, "Item": self._version_item(journey)}
        if new_version:
            version["ConditionExpression"] = "attribute_not_exists(PK)"
        return self._transact([{"Put": head}, {"Put": version}])

    def head(self, journey_id: str) -> StoredJourney | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=head_key(journey_id), ConsistentRead=True
        )
        item = out.get("Item")
        return StoredJourney.model_validate_json(item["journey"]["S"]) if item else None

    def version(self, journey_id: str, version: int) -> JourneyDefinition | None:
        out = aws.dynamodb().get_item(TableName=self._table, Key=version_key(journey_id, version))
        item = out.get("Item")
        return JourneyDefinition.model_validate_json(item["definition"]["S"]) if item else None

    def heads(self) -> list[StoredJourney]:
        """Every journey's head: journeys are tens, not millions, so one partition holds them."""
        found: list[StoredJourney] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": LIST_PARTITION}},
        }
        while True:
            out = aws.dynamodb().query(**params)
            found += [StoredJourney.model_validate_json(i["journey"]["S"]) for i in out["Items"]]
            if not out.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def delete_journey(self, journey: StoredJourney) -> bool:
        """Delete the head (versions stay for instances still running on them)."""
        try:
            aws.dynamodb().delete_item(
                TableName=self._table,
                Key=head_key(journey.journey_id),
                ConditionExpression="updated_at = :u",
                ExpressionAttributeValues=to_item({":u": iso(journey.updated_at)}),
            )
        except ClientError as exc:
            if aws.error_code(exc) in _CONDITION_FAILED:
                return False
            raise
        return True

    # ------------------------------------------------------------------ instances
    def latest(self, journey_id: str, customer_id: str) -> Latest | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=latest_key(journey_id, customer_id), ConsistentRead=True
        )
        item = out.get("Item")
        if not item:
            return None
        values = from_item(item)
        ended = values.get("ended_at")
        return Latest(
            seq=int(values["seq"]),
            inside=bool(values["inside"]),
            trigger_key=values.get("trigger_key"),
            ended_at=datetime.fromisoformat(ended) if ended else None,
        )

    def instance(self, instance_id: str) -> JourneyInstance | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=instance_key(instance_id), ConsistentRead=True
        )
        item = out.get("Item")
        return JourneyInstance.model_validate_json(item["instance"]["S"]) if item else None

    def instances(self, journey_id: str, customer_id: str) -> list[JourneyInstance]:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :e)",
            ExpressionAttributeValues=to_item(
                {":pk": instance_partition(journey_id, customer_id), ":e": "E#"}
            ),
            ConsistentRead=True,
        )
        return [JourneyInstance.model_validate_json(i["instance"]["S"]) for i in out["Items"]]

    def _instance_item(self, instance: JourneyInstance) -> dict[str, Any]:
        values: dict[str, Any] = {
            "instance": instance.model_dump_json(), "pos": instance.pos, "state": instance.state,
            **owned_by(instance.customer_id),
        }  # fmt: skip
        if instance.state in ("completed", "goal", "exited"):
            values["expires_at"] = int(instance.updated_at.timestamp()) + ENDED_RETENTION_S
        return {**instance_key(instance.instance_id), **to_item(values)}

    def _counters(self, instance: JourneyInstance, counts: Mapping[str, int]) -> dict[str, Any]:
        names = {f"#c{n}": name for n, name in enumerate(counts)}
        values = {f":c{n}": value for n, value in enumerate(counts.values())}
        return {
            "Update": {
                "TableName": self._table,
                "Key": stats_key(instance.journey_id, stats_shard(instance.instance_id)),
                "UpdateExpression": "ADD " + ", ".join(f"{n} {v}" for n, v in
                                                       zip(names, values, strict=True)),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
            }
        }  # fmt: skip

    def enter(
        self,
        instance: JourneyInstance,
        previous: Latest | None,
        trigger_key: str,
        counts: Mapping[str, int],
    ) -> bool:
        """Record a customer's entry: the LATEST marker (unchanged since `previous` was read)
        and the instance, with the `entered` counter; False when another entry won."""
        latest: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                **latest_key(instance.journey_id, instance.customer_id),
                **to_item(
                    {
                        "seq": instance.seq,
                        "inside": True,
                        "trigger_key": trigger_key,
                        **owned_by(instance.customer_id),
                    }
                ),
            },
        }
        if previous is None:
            latest["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            latest["ConditionExpression"] = "seq = :s AND inside = :f"
            latest["ExpressionAttributeValues"] = to_item({":s": previous.seq, ":f": False})
        put = {
            "TableName": self._table,
            "Item": self._instance_item(instance),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
        return self._transact([{"Put": latest}, {"Put": put}, self._counters(instance, counts)])

    def advance(
        self,
        before: JourneyInstance,
        after: JourneyInstance,
        counts: Mapping[str, int],
        *,
        extra: Sequence[dict[str, Any]] = (),
        wait_for: str | None = None,
        clear_wait: bool = False,
    ) -> bool:
        """Write `after` if the instance is still at `before.pos`; False when another delivery
        moved it first. Ending it marks the customer's LATEST as done."""
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._instance_item(after),
                    "ConditionExpression": "pos = :p",
                    "ExpressionAttributeValues": to_item({":p": before.pos}),
                }
            }
        ]
        if counts:
            ops.append(self._counters(after, counts))
        if after.state in ("completed", "goal", "exited"):
            ops.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": latest_key(after.journey_id, after.customer_id),
                        "UpdateExpression": "SET inside = :f, ended_at = :e",
                        "ConditionExpression": "seq = :s",
                        "ExpressionAttributeValues": to_item(
                            {":f": False, ":e": after.updated_at.isoformat(), ":s": after.seq}
                        ),
                    }
                }
            )
        if wait_for is not None:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **wait_key(after.customer_id, after.instance_id),
                            **to_item(
                                {
                                    "event_type": wait_for,
                                    "pos": after.pos,
                                    **owned_by(after.customer_id),
                                }
                            ),
                        },
                    }
                }
            )
        if clear_wait:
            ops.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": wait_key(before.customer_id, before.instance_id),
                    }
                }
            )
        return self._transact([*ops, *extra])

    # ------------------------------------------------------------------ escalations
    def mark_escalated(self, customer_id: str, at: datetime) -> None:
        """Keep the latest time a ticket of the customer was escalated (an older or repeated
        event changes nothing); expires when no exit condition can look back that far."""
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=to_item({**from_item(escalation_key(customer_id)), "at": iso(at),
                              **owned_by(customer_id),
                              "expires_at": int(at.timestamp()) + ESCALATION_RETENTION_S}),
                ConditionExpression="attribute_not_exists(PK) OR #at < :at",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues=to_item({":at": iso(at)}),
            )  # fmt: skip
        except ClientError as exc:
            if aws.error_code(exc) not in _CONDITION_FAILED:
                raise

    def escalated_at(self, customer_id: str) -> datetime | None:
        item = (
            aws.dynamodb()
            .get_item(TableName=self._table, Key=escalation_key(customer_id), ConsistentRead=True)
            .get("Item")
        )
        return datetime.fromisoformat(from_item(item)["at"]) if item else None

    def waiting(self, customer_id: str) -> list[Waiting]:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": f"JWAIT#{customer_id}"}),
        )
        return [
            Waiting(
                instance_id=i["SK"]["S"], event_type=i["event_type"]["S"], pos=int(i["pos"]["N"])
            )
            for i in out["Items"]
        ]

    # ------------------------------------------------------------------ report
    def counts(self, journey_id: str) -> dict[str, int]:
        keys = [stats_key(journey_id, shard) for shard in range(STATS_SHARDS)]
        totals: dict[str, int] = {}
        for item in batch_get(self._table, keys):
            for name, value in from_item(item).items():
                if name not in ("PK", "SK"):
                    totals[name] = totals.get(name, 0) + int(value)
        return totals

    def _transact(self, ops: list[dict[str, Any]]) -> bool:
        try:
            aws.dynamodb().transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
        except ClientError as exc:
            if aws.error_code(exc) in _CONDITION_FAILED:
                return False
            raise
        return True
