"""The shop's calendars in TicketsTable (`PK=SETTINGS, SK=CALENDAR#<name>`): one item per
calendar, its latest version. Each save writes the next version under a condition on the one it
follows, so two managers saving at once cannot lose an edit; a deletion is the next version
marked `deleted` (so a calendar made again later keeps counting versions: `berlin@v3` never
names two definitions). Open tickets copy the definition they use, so old versions are not
kept here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm import aws
from crm.dynamo import from_item, to_item
from crm.tickets.models import CalendarDefinition
from crm.tickets.records import POLICIES_SK, RULES_PK, calendar_sk

_PREFIX = calendar_sk("")


@dataclass(frozen=True)
class StoredCalendar:
    name: str
    definition: CalendarDefinition | None  # None: deleted
    seq: int
    updated_at: datetime
    updated_by: str

    @property
    def version(self) -> str:
        return f"{self.name}@v{self.seq}"

    @property
    def deleted(self) -> bool:
        return self.definition is None


def _stored(item: dict[str, Any]) -> StoredCalendar:
    values = from_item(item)
    definition = values.get("definition")
    return StoredCalendar(
        name=values["name"],
        definition=None if definition is None else CalendarDefinition.model_validate(definition),
        seq=int(values["seq"]),
        updated_at=datetime.fromisoformat(values["updated_at"]),
        updated_by=values["updated_by"],
    )


class CalendarStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def get(self, name: str) -> StoredCalendar | None:
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key=to_item({"PK": RULES_PK, "SK": calendar_sk(name)}),
            ConsistentRead=True,
        )
        item = out.get("Item")
        return _stored(item) if item else None

    def all(self) -> list[StoredCalendar]:
        """Every calendar item, deleted ones included (the settings partition is small)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :cal)",
            "ExpressionAttributeValues": to_item({":pk": RULES_PK, ":cal": _PREFIX}),
            "ConsistentRead": True,
        }
        found: list[StoredCalendar] = []
        while True:
            out = aws.dynamodb().query(**request)
            found.extend(_stored(item) for item in out.get("Items", []))
            if not out.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _put(self, stored: StoredCalendar) -> dict[str, Any]:
        values: dict[str, Any] = {
            "PK": RULES_PK, "SK": calendar_sk(stored.name), "name": stored.name,
            "seq": stored.seq, "updated_at": stored.updated_at.isoformat(),
            "updated_by": stored.updated_by,
        }  # fmt: skip
        if stored.definition is not None:
            values["definition"] = stored.definition.model_dump(mode="json")
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(values)}
        if stored.seq == 1:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "seq = :previous"
            put["ExpressionAttributeValues"] = to_item({":previous": stored.seq - 1})
        return put

    def save(self, stored: StoredCalendar) -> bool:
        """The next version (or deletion), if the one it follows is still the latest (False:
        another manager's came first)."""
        client = aws.dynamodb()
        try:
            client.put_item(**self._put(stored))
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def delete(self, stored: StoredCalendar, policies_seq: int | None) -> bool:
        """Mark the calendar deleted, if it is still the version read and the SLA policies are
        still the version read (which does not use it): a policy saved meanwhile that names
        it makes this fail rather than leave the policy pointing at nothing."""
        policies: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item({"PK": RULES_PK, "SK": POLICIES_SK}),
        }
        if policies_seq is None:
            policies["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            policies["ConditionExpression"] = "seq = :seq"
            policies["ExpressionAttributeValues"] = to_item({":seq": policies_seq})
        items: list[Any] = [{"Put": self._put(stored)}, {"ConditionCheck": policies}]
        client = aws.dynamodb()
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException:
            return False
        return True

    def exists_checks(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Condition checks that these calendars exist, undeleted: a transaction saving the
        SLA policies that name them holds them (a calendar deleted meanwhile fails it)."""
        return [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": to_item({"PK": RULES_PK, "SK": calendar_sk(name)}),
                    "ConditionExpression": "attribute_exists(#definition)",
                    "ExpressionAttributeNames": {"#definition": "definition"},
                }
            }
            for name in sorted(set(names))
        ]
