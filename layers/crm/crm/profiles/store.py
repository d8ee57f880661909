"""DynamoDB access for profiles, identities and the ledger (table `CustomersTable`).

Key design (docs/data-model.md):
  profile        PK=CUST#<id>                    SK=PROFILE
  identity       PK=ID#<channel>#<key>           SK=ID        -> customer_id
  ledger entry   PK=LEDGER#<idempotency key>     SK=LEDGER    TPK=<kind>#<id>  TSK=<time>#<key>
Every change is one TransactWriteItems: the profile is replaced under a condition on its
revision, identities are claimed with conditions, ledger entries are put only if new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from crm import aws
from crm.clock import iso
from crm.dynamo import (
    MAX_BATCH_GET_KEYS,
    MAX_TRANSACT_ITEMS,
    decode_page_token,
    encode_page_token,
    from_item,
    to_item,
)
from crm.profiles.records import LedgerEntry, LedgerKind, ProfileRecord

PROFILE_SK = "PROFILE"
_PAGE_KEYS = {"PK", "SK", "TPK", "TSK"}


class StaleProfile(Exception):
    """The profile changed since it was read; read again and retry."""


class DuplicateEntry(Exception):
    """A ledger entry with this idempotency key exists: the change was already applied."""

    def __init__(self, key: str, existing: dict[str, Any]) -> None:
        super().__init__(key)
        self.existing = existing


class IdentityTaken(Exception):
    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.channel = channel


@dataclass(frozen=True)
class SaveProfile:
    record: ProfileRecord
    expected_rev: int | None  # None: the profile must not exist yet


@dataclass(frozen=True)
class ClaimIdentity:
    channel: str
    key: str
    customer_id: str
    taken_from: str | None = None  # re-point an identity that a merged profile owned


@dataclass(frozen=True)
class ReleaseIdentity:
    channel: str
    key: str
    customer_id: str


@dataclass(frozen=True)
class AppendEntry:
    entry: LedgerEntry


Write = SaveProfile | ClaimIdentity | ReleaseIdentity | AppendEntry


def _profile_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": PROFILE_SK}}


def _identity_key(channel: str, key: str) -> dict[str, Any]:
    return {"PK": {"S": f"ID#{channel}#{key}"}, "SK": {"S": "ID"}}


class ProfileStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------------ reads
    def get(self, customer_id: str) -> ProfileRecord | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=_profile_key(customer_id), ConsistentRead=True
        )
        item = out.get("Item")
        return _record(item) if item else None

    def owners(self, identities: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Which customer each (channel, key) belongs to; unknown identities are left out."""
        found: dict[tuple[str, str], str] = {}
        unique = list(dict.fromkeys(identities))
        for start in range(0, len(unique), MAX_BATCH_GET_KEYS):
            keys = [_identity_key(c, k) for c, k in unique[start : start + MAX_BATCH_GET_KEYS]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                out = aws.dynamodb().batch_get_item(RequestItems=request)
                for item in out["Responses"].get(self._table, []):
                    values = from_item(item)
                    found[(values["channel"], values["key"])] = values["customer_id"]
                request = dict(out.get("UnprocessedKeys") or {})
        return found

    def entries(
        self, kind: LedgerKind, customer_id: str, limit: int, page_token: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """Newest first, from the `timeline` index."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "timeline",
            "KeyConditionExpression": "TPK = :tpk",
            "ExpressionAttributeValues": {":tpk": {"S": f"{kind}#{customer_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        start = decode_page_token(page_token, _PAGE_KEYS)
        if start:
            params["ExclusiveStartKey"] = to_item(start)
        out = aws.dynamodb().query(**params)
        entries = [_entry(item) for item in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return entries, encode_page_token(from_item(last) if last else None)

    def scan_profiles(
        self,
        segment: int,
        total_segments: int,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> tuple[list[ProfileRecord], dict[str, Any] | None]:
        """One page of a parallel scan's segment: live profiles only (not merged ones).
        `limit` bounds the items the page evaluates (of every kind, before the filter)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "FilterExpression": "SK = :profile AND attribute_not_exists(merged_into)",
            "ExpressionAttributeValues": {":profile": {"S": PROFILE_SK}},
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        if limit:
            params["Limit"] = limit
        out = aws.dynamodb_bulk().scan(**params)
        return [_record(i) for i in out.get("Items", [])], out.get("LastEvaluatedKey")

    # ------------------------------------------------------------------ writes
    def commit(self, writes: Sequence[Write]) -> None:
        if len(writes) > MAX_TRANSACT_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_TRANSACT_ITEMS} items")
        items: list[Any] = [self._transact_item(w) for w in writes]
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            self._raise_cancelled(exc, writes)

    def _raise_cancelled(self, exc: ClientError, writes: Sequence[Write]) -> None:
        reasons = exc.response.get("CancellationReasons", [])
        for write, reason in zip(writes, reasons, strict=False):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            if isinstance(write, AppendEntry):
                existing = from_item(reason.get("Item", {}))
                raise DuplicateEntry(write.entry.key, existing) from None
            if isinstance(write, SaveProfile):
                raise StaleProfile(write.record.customer_id) from None
            if isinstance(write, ClaimIdentity):
                raise IdentityTaken(write.channel) from None
            if isinstance(write, ReleaseIdentity):
                raise StaleProfile(write.customer_id) from None
        if any(r.get("Code") == "TransactionConflict" for r in reasons):
            raise StaleProfile("concurrent transaction") from None
        raise exc

    def _transact_item(self, write: Write) -> dict[str, Any]:
        if isinstance(write, SaveProfile):
            return {"Put": self._put_profile(write)}
        if isinstance(write, ClaimIdentity):
            put: dict[str, Any] = {
                "TableName": self._table,
                "Item": {
                    **_identity_key(write.channel, write.key),
                    **to_item(
                        {
                            "channel": write.channel,
                            "key": write.key,
                            "customer_id": write.customer_id,
                        }
                    ),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            if write.taken_from:
                put["ConditionExpression"] = "customer_id = :from"
                put["ExpressionAttributeValues"] = {":from": {"S": write.taken_from}}
            else:
                # Claiming an identity one already owns is a no-op, not a conflict.
                put["ConditionExpression"] = "attribute_not_exists(PK) OR customer_id = :me"
                put["ExpressionAttributeValues"] = {":me": {"S": write.customer_id}}
            return {"Put": put}
        if isinstance(write, ReleaseIdentity):
            return {
                "Delete": {
                    "TableName": self._table,
                    "Key": _identity_key(write.channel, write.key),
                    "ConditionExpression": "customer_id = :me",
                    "ExpressionAttributeValues": {":me": {"S": write.customer_id}},
                }
            }
        entry = write.entry
        return {
            "Put": {
                "TableName": self._table,
                "Item": to_item(
                    {
                        "PK": f"LEDGER#{entry.key}",
                        "SK": "LEDGER",
                        "TPK": f"{entry.kind}#{entry.customer_id}",
                        "TSK": f"{iso(entry.at)}#{entry.key}",
                        **entry.model_dump(mode="json"),
                    }
                ),
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _put_profile(self, write: SaveProfile) -> dict[str, Any]:
        record = write.record
        values: dict[str, Any] = {
            "PK": f"CUST#{record.customer_id}",
            "SK": PROFILE_SK,
            **record.model_dump(mode="json"),
        }
        if record.wrapped_key:
            values["wrapped_key"] = record.wrapped_key
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(values)}
        if write.expected_rev is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "rev = :rev"
            put["ExpressionAttributeValues"] = {":rev": {"N": str(write.expected_rev)}}
        return put


def _record(item: dict[str, Any]) -> ProfileRecord:
    values = from_item(item)
    wrapped = values.pop("wrapped_key", None)
    record = ProfileRecord.model_validate(values)
    if wrapped is not None:
        record.wrapped_key = bytes(wrapped)
    return record


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry.model_validate(from_item(item))
