"""DynamoDB access for the timers (table `TimersTable`; keys in `crm.timers.records`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm import aws
from crm.clock import iso
from crm.dynamo import batch_get, batch_write, from_item, to_item
from crm.timers.records import (
    FIRED_RETENTION,
    SUBJECT_INDEX,
    Timer,
    WakeUp,
    due_partition,
    due_sort_key,
    due_upper_bound,
    shard_of,
    timer_key,
)


@dataclass(frozen=True)
class DueItem:
    """A pending due item, as the sweep reads it."""

    key: dict[str, Any]
    wake_up: WakeUp


def _timer(item: dict[str, Any]) -> Timer:
    v = from_item(item)
    fired = v.get("fired_at")
    return Timer(
        kind=v["kind"],
        timer_id=v["timer_id"],
        due_at=datetime.fromisoformat(v["due_at"]),
        state=v["state"],
        generation=v["generation"],
        payload=dict(v.get("payload") or {}),
        fired_at=datetime.fromisoformat(fired) if fired else None,
        subject=v.get("SUBJ"),
    )


_CONDITION_FAILED = ("TransactionCanceledException", "ConditionalCheckFailedException")


def _canceled(exc: ClientError) -> bool:
    return aws.error_code(exc) in _CONDITION_FAILED


class TimerStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------ one timer
    def get(self, kind: str, timer_id: str) -> Timer | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=to_item(timer_key(kind, timer_id)), ConsistentRead=True
        )
        return _timer(out["Item"]) if "Item" in out else None

    def _due_item(self, timer: Timer) -> dict[str, Any]:
        shard = shard_of(timer.kind, timer.timer_id)
        return to_item({
            "PK": due_partition(shard),
            "SK": due_sort_key(timer.due_at, timer.kind, timer.timer_id, timer.generation),
            "kind": timer.kind, "timer_id": timer.timer_id, "generation": timer.generation,
            "due_at": iso(timer.due_at), "payload": timer.payload or None,
        })  # fmt: skip

    def due_key(self, timer: Timer) -> dict[str, Any]:
        item = self._due_item(timer)
        return {"PK": item["PK"], "SK": item["SK"]}

    def create(self, timer: Timer, at: datetime) -> bool:
        """The timer and its due item; False when the timer exists (its due item is undone).

        Two plain writes (2 WRU) rather than a transaction (4 WRU): the due item goes first, so
        a crash between the two leaves a due item without its timer, whose wake-up claims
        nothing, never a timer that cannot fire."""
        pointer = to_item({
            **timer_key(timer.kind, timer.timer_id),
            "kind": timer.kind, "timer_id": timer.timer_id, "state": "pending",
            "due_at": iso(timer.due_at), "generation": timer.generation,
            "shard": shard_of(timer.kind, timer.timer_id), "payload": timer.payload or None,
            "set_at": iso(at),
            **({"SUBJ": timer.subject} if timer.subject else {}),
        })  # fmt: skip
        ddb = aws.dynamodb()
        ddb.put_item(TableName=self._table, Item=self._due_item(timer))
        try:
            ddb.put_item(
                TableName=self._table, Item=pointer, ConditionExpression="attribute_not_exists(PK)"
            )
        except ClientError as exc:
            if not _canceled(exc):
                raise
            self.delete_due([self.due_key(timer)])
            return False
        return True

    def move(self, timer: Timer, moved: Timer) -> bool:
        """A pending timer to a new due time and generation; False when it is no longer the
        setting `timer` describes (fired, cancelled, or moved by someone else meanwhile)."""
        return self._transact(
            [
                {"Update": {
                    "TableName": self._table,
                    "Key": to_item(timer_key(timer.kind, timer.timer_id)),
                    "UpdateExpression": "SET due_at = :due, generation = :new",
                    "ConditionExpression": "generation = :old AND #s = :pending",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": to_item({
                        ":due": iso(moved.due_at), ":new": moved.generation,
                        ":old": timer.generation, ":pending": "pending",
                    }),
                }},
                {"Delete": {"TableName": self._table, "Key": self.due_key(timer)}},
                {"Put": {"TableName": self._table, "Item": self._due_item(moved)}},
            ]
        )  # fmt: skip

    def delete(self, timer: Timer) -> bool:
        """Cancel a pending timer and its due item; False when it was no longer that setting."""
        return self._transact(
            [
                {"Delete": {
                    "TableName": self._table,
                    "Key": to_item(timer_key(timer.kind, timer.timer_id)),
                    "ConditionExpression": "generation = :g AND #s = :pending",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": to_item({
                        ":g": timer.generation, ":pending": "pending"}),
                }},
                {"Delete": {"TableName": self._table, "Key": self.due_key(timer)}},
            ]
        )  # fmt: skip

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """One TransactWriteItems; False when a condition cancelled it (another setting won)."""
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if not _canceled(exc):
                raise
            return False
        return True

    def delete_due(self, keys: Sequence[dict[str, Any]]) -> None:
        batch_write(self._table, [{"DeleteRequest": {"Key": key}} for key in keys])

    # ------------------------------------------------------------ a customer's timers
    def subject_timers(self, subjects: Sequence[str]) -> list[Timer]:
        """Every timer (pending or fired) set about one of these customer ids: a Query of the
        sparse `subject` index per id (keys only, paged), then the timers by key."""
        keys: list[dict[str, Any]] = []
        paginator = aws.dynamodb().get_paginator("query")
        for subject in subjects:
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=SUBJECT_INDEX,
                KeyConditionExpression="SUBJ = :s",
                ExpressionAttributeValues={":s": {"S": subject}},
            ):
                keys += [{"PK": i["PK"], "SK": i["SK"]} for i in page["Items"]]
        return [_timer(item) for item in batch_get(self._table, keys)]

    def delete_timers(self, timers: Sequence[Timer]) -> None:
        """Timers and their due items, whatever their state (erasure). Due items first: a
        sweep between the two finds no due item of a timer already gone."""
        self.delete_due([self.due_key(t) for t in timers if t.state == "pending"])
        batch_write(
            self._table,
            [{"DeleteRequest": {"Key": to_item(timer_key(t.kind, t.timer_id))}} for t in timers],
        )

    # ------------------------------------------------------------ claiming a wake-up
    def claim_operation(self, wake: WakeUp, at: datetime) -> dict[str, Any]:
        """pending -> fired for this generation, as one item of a TransactWriteItems."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_item(timer_key(wake.kind, wake.timer_id)),
                "UpdateExpression": "SET #s = :fired, fired_at = :at, expires_at = :expires",
                "ConditionExpression": "generation = :g AND #s = :pending",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": to_item({
                    ":fired": "fired", ":at": iso(at),
                    ":expires": int((at + FIRED_RETENTION).timestamp()),
                    ":g": wake.generation, ":pending": "pending",
                }),
            }
        }  # fmt: skip

    def claim(self, wake: WakeUp, at: datetime) -> bool:
        update = dict(self.claim_operation(wake, at)["Update"])
        try:
            aws.dynamodb().update_item(**update)
        except ClientError as exc:
            if not _canceled(exc):
                raise
            return False
        return True

    # ------------------------------------------------------------ the sweep
    def has_due(self, shard: int, horizon: datetime) -> bool:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND SK < :upper",
            ExpressionAttributeValues=to_item({
                ":pk": due_partition(shard), ":upper": due_upper_bound(horizon)}),
            ProjectionExpression="PK",
            Limit=1,
        )  # fmt: skip
        return bool(out.get("Items"))

    def due(
        self, shard: int, horizon: datetime, limit: int, start: dict[str, Any] | None = None
    ) -> tuple[list[DueItem], dict[str, Any] | None]:
        """One page of a shard's due items, earliest first, and where the next page starts."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK < :upper",
            "ExpressionAttributeValues": to_item({
                ":pk": due_partition(shard), ":upper": due_upper_bound(horizon)}),
            "Limit": limit,
            # Strong reads: a timer moved a moment ago must not come back from a stale replica.
            "ConsistentRead": True,
        }  # fmt: skip
        if start:
            request["ExclusiveStartKey"] = start
        out = aws.dynamodb_bulk().query(**request)
        found = []
        for item in out.get("Items", []):
            v = from_item(item)
            wake = WakeUp(
                kind=v["kind"], timer_id=v["timer_id"], generation=v["generation"],
                due_at=datetime.fromisoformat(v["due_at"]), payload=dict(v.get("payload") or {}),
            )  # fmt: skip
            found.append(DueItem({"PK": item["PK"], "SK": item["SK"]}, wake))
        return found, out.get("LastEvaluatedKey")
