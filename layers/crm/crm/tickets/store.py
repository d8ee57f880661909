"""TicketsTable: the only code of the tickets family that touches DynamoDB (keys in records.py).

A ticket changes by one TransactWriteItems: the ticket item, put under a condition on the
revision it was read at, with the clock entries and messages the change appends (each put only
if absent: the ledger is append-only), and, for an SLA wake-up, the timer's claim. Either all
of it commits or none does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm import aws
from crm.dynamo import (
    MAX_TRANSACT_ITEMS,
    decode_page_token,
    encode_page_token,
    foreign_page_token,
    from_item,
    to_item,
)
from crm.tickets.aftersales_store import FeedbackCount, feedback_writes
from crm.tickets.calendar_store import CalendarStore
from crm.tickets.models import EscalationRules, SlaPolicies
from crm.tickets.records import (
    POLICIES_SK,
    RULES_PK,
    RULES_SK,
    TICKET_SK,
    ClockEntry,
    MessageRecord,
    TicketRecord,
    clock_sk,
    customer_pk,
    message_sk,
    ticket_csk,
    ticket_pk,
)

CUSTOMER_INDEX = "customer"
_INDEX_KEYS = {"PK", "SK", "CPK", "CSK"}


class StaleTicket(Exception):
    """The ticket changed since it was read: read it again and redo the change."""


class ClaimedAlready(Exception):
    """The SLA wake-up this change claims was claimed before (a duplicate delivery)."""


@dataclass
class TicketChange:
    ticket: TicketRecord
    expected_rev: int | None  # None: a new ticket
    entries: list[ClockEntry] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    claim: dict[str, Any] | None = None  # a timer's claim (crm.timers.claim_operation)
    # Product feedback the change counts once, with it: (source id, counters).
    feedback: tuple[str, list[FeedbackCount]] | None = None


@dataclass(frozen=True)
class MessagePage:
    messages: list[MessageRecord]
    next_token: str | None


def _ticket_item(ticket: TicketRecord) -> dict[str, Any]:
    values = ticket.model_dump(mode="json")
    return to_item({
        "PK": ticket_pk(ticket.ticket_id), "SK": TICKET_SK,
        "CPK": customer_pk(ticket.customer_id),
        "CSK": ticket_csk(ticket.opened_at, ticket.ticket_id),
        **values,
    })  # fmt: skip


def _entry_item(entry: ClockEntry) -> dict[str, Any]:
    return to_item({
        "PK": ticket_pk(entry.ticket_id), "SK": clock_sk(entry.metric, entry.seq),
        **entry.model_dump(mode="json"),
    })  # fmt: skip


def _message_item(message: MessageRecord) -> dict[str, Any]:
    return to_item({
        "PK": ticket_pk(message.ticket_id), "SK": message_sk(message.at, message.message_id),
        "CPK": customer_pk(message.customer_id), "CSK": message_sk(message.at, message.message_id),
        **message.model_dump(mode="json"),
    })  # fmt: skip


_NEWEST = "MSG#~"  # sorts after every message's sort key


def _before(token: str | None) -> str:
    """The position a conversation page token names, checked: a forged one is a 400."""
    key = decode_page_token(token, {"before"})
    if key is None:
        return _NEWEST
    before = key["before"]
    if not isinstance(before, str) or not before.startswith("MSG#") or len(before) > 300:
        raise foreign_page_token()
    return before


def _strip(item: Mapping[str, Any]) -> dict[str, Any]:
    values = from_item(item)
    for key in _INDEX_KEYS:
        values.pop(key, None)
    return values


class TicketStore:
    def __init__(self, table: str) -> None:
        self._table = table
        self.calendars = CalendarStore(table)

    # ------------------------------------------------------------ writing
    def commit(self, change: TicketChange) -> None:
        items: list[Any] = []
        if change.claim is not None:
            items.append(change.claim)
        ticket = {"TableName": self._table, "Item": _ticket_item(change.ticket)}
        if change.expected_rev is None:
            ticket["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            ticket["ConditionExpression"] = "rev = :rev"
            ticket["ExpressionAttributeValues"] = to_item({":rev": change.expected_rev})
        items.append({"Put": ticket})
        for item in [*map(_entry_item, change.entries), *map(_message_item, change.messages)]:
            items.append({
                "Put": {"TableName": self._table, "Item": item,
                        "ConditionExpression": "attribute_not_exists(PK)"}
            })  # fmt: skip
        if change.feedback is not None:
            items += feedback_writes(self._table, *change.feedback)
        if len(items) > MAX_TRANSACT_ITEMS:
            raise ValueError(f"a ticket change holds at most {MAX_TRANSACT_ITEMS} items")
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            if (
                change.claim is not None
                and reasons
                and reasons[0].get("Code")
                not in (
                    None,
                    "None",
                )
            ):
                raise ClaimedAlready() from None
            raise StaleTicket() from None

    def commit_pair(self, first: TicketChange, second: TicketChange) -> None:
        """Two tickets' items under their revisions, with the clock entries they append,
        together (a merge's two links)."""
        items: list[Any] = []
        for change in (first, second):
            assert change.expected_rev is not None
            items.append({
                "Put": {
                    "TableName": self._table, "Item": _ticket_item(change.ticket),
                    "ConditionExpression": "rev = :rev",
                    "ExpressionAttributeValues": to_item({":rev": change.expected_rev}),
                }
            })  # fmt: skip
            for entry in change.entries:
                items.append({
                    "Put": {"TableName": self._table, "Item": _entry_item(entry),
                            "ConditionExpression": "attribute_not_exists(PK)"}
                })  # fmt: skip
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            raise StaleTicket() from None

    def put_rules(self, rules: EscalationRules, at: datetime, by: str) -> None:
        aws.dynamodb().put_item(
            TableName=self._table,
            Item=to_item({
                "PK": RULES_PK, "SK": RULES_SK, "rules": rules.model_dump(mode="json"),
                "updated_at": at.isoformat(), "updated_by": by,
            }),
        )  # fmt: skip

    # ------------------------------------------------------------ reading
    def get(self, ticket_id: str) -> tuple[TicketRecord, list[ClockEntry]] | None:
        """The ticket and its clock entries: one Query (`#TICKET` and `CLOCK#...` sort before
        the messages, `MSG#...`, which it leaves alone)."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK < :msg",
            "ExpressionAttributeValues": to_item({":pk": ticket_pk(ticket_id), ":msg": "MSG#"}),
            "ConsistentRead": True,
        }
        while True:
            out = aws.dynamodb().query(**request)
            items.extend(out.get("Items", []))
            if not out.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        ticket = None
        entries = []
        for item in items:
            if item["SK"]["S"] == TICKET_SK:
                ticket = TicketRecord.model_validate(_strip(item))
            else:
                entries.append(ClockEntry.model_validate(_strip(item)))
        return None if ticket is None else (ticket, entries)

    def conversation(
        self, customer_ids: Sequence[str], limit: int, token: str | None, include_notes: bool
    ) -> MessagePage:
        """The messages of these customers (a live profile and those merged into it) across
        tickets and channels, newest first: each customer's partition of the `customer` index
        read backwards from the page token's position, merged by time. The token is the sort
        key of the last message handed out, so it is the same position in every partition."""
        before = _before(token)
        found: list[tuple[str, MessageRecord]] = []
        for customer_id in dict.fromkeys(customer_ids):
            found.extend(self._messages_before(customer_id, before, limit + 1, include_notes))
        found.sort(key=lambda pair: pair[0], reverse=True)
        page = found[:limit]
        more = len(found) > limit
        return MessagePage(
            messages=[m for _, m in page],
            next_token=encode_page_token({"before": page[-1][0]}) if more and page else None,
        )

    def _messages_before(
        self, customer_id: str, before: str, wanted: int, include_notes: bool
    ) -> list[tuple[str, MessageRecord]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CUSTOMER_INDEX,
            "KeyConditionExpression": "CPK = :c AND CSK BETWEEN :first AND :before",
            "ExpressionAttributeValues": to_item(
                {":c": customer_pk(customer_id), ":first": "MSG#", ":before": before}
            ),
            "ScanIndexForward": False,
            "Limit": wanted,
        }
        if not include_notes:
            # Filtered after the read: a page of notes returns nothing, so read on.
            request["FilterExpression"] = "kind <> :note"
            request["ExpressionAttributeValues"] |= to_item({":note": "note"})
        found: list[tuple[str, MessageRecord]] = []
        while len(found) < wanted:
            out = aws.dynamodb().query(**request)
            for item in out.get("Items", []):
                csk = item["CSK"]["S"]
                if csk != before:  # BETWEEN includes the last message handed out
                    found.append((csk, MessageRecord.model_validate(_strip(item))))
            if not out.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return found[:wanted]

    def tickets_since(self, customer_id: str, since: datetime) -> list[TicketRecord]:
        """The customer's tickets opened since a time (the customer index, TKT#<opened_at>)."""
        found: list[TicketRecord] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CUSTOMER_INDEX,
            "KeyConditionExpression": "CPK = :c AND CSK BETWEEN :from AND :to",
            "ExpressionAttributeValues": to_item({
                ":c": customer_pk(customer_id), ":from": ticket_csk(since, ""), ":to": "TKT#~",
            }),
        }  # fmt: skip
        while True:
            out = aws.dynamodb().query(**request)
            found.extend(TicketRecord.model_validate(_strip(i)) for i in out.get("Items", []))
            if not out.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def rules(self) -> tuple[EscalationRules, datetime | None, str | None] | None:
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key=to_item({"PK": RULES_PK, "SK": RULES_SK}),
            ConsistentRead=True,
        )
        item = out.get("Item")
        if not item:
            return None
        values = from_item(item)
        return (
            EscalationRules.model_validate(values["rules"]),
            datetime.fromisoformat(values["updated_at"]),
            values.get("updated_by"),
        )

    # ------------------------------------------------------------ SLA policies
    def policies(self) -> StoredPolicies | None:
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key=to_item({"PK": RULES_PK, "SK": POLICIES_SK}),
            ConsistentRead=True,
        )
        item = out.get("Item")
        if not item:
            return None
        values = from_item(item)
        return StoredPolicies(
            policies=SlaPolicies.model_validate(values["policies"]),
            seq=int(values["seq"]),
            updated_at=datetime.fromisoformat(values["updated_at"]),
            updated_by=values["updated_by"],
        )

    def put_policies(self, stored: StoredPolicies, calendars: Sequence[str] = ()) -> bool:
        """The next version, if the one it follows is still in force and the shop calendars it
        names still exist (False: another manager's version came first, or a calendar was
        deleted meanwhile)."""
        condition = "attribute_not_exists(PK)" if stored.seq == 1 else "seq = :previous"
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_item({
                "PK": RULES_PK, "SK": POLICIES_SK,
                "policies": stored.policies.model_dump(mode="json"), "seq": stored.seq,
                "updated_at": stored.updated_at.isoformat(), "updated_by": stored.updated_by,
            }),
            "ConditionExpression": condition,
        }  # fmt: skip
        if stored.seq > 1:
            request["ExpressionAttributeValues"] = to_item({":previous": stored.seq - 1})
        try:
            if calendars:
                items: list[Any] = [{"Put": request}, *self.calendars.exists_checks(calendars)]
                aws.dynamodb().transact_write_items(TransactItems=items)
            else:
                aws.dynamodb().put_item(**request)
        except ClientError as exc:
            if aws.error_code(exc) not in (
                "ConditionalCheckFailedException",
                "TransactionCanceledException",
            ):
                raise
            return False
        return True


@dataclass(frozen=True)
class StoredPolicies:
    policies: SlaPolicies
    seq: int
    updated_at: datetime
    updated_by: str

    @property
    def version(self) -> str:
        return f"sla-v{self.seq}"
