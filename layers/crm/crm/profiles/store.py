"""DynamoDB access for profiles, identities and the ledger (table `CustomersTable`).

Key design (docs/data-model.md):
  profile        PK=CUST#<id>                    SK=PROFILE
  identity       PK=ID#<channel>#<key>           SK=ID        -> customer_id
  ledger entry   PK=LEDGER#<idempotency key>     SK=LEDGER    TPK=<kind>#<id>  TSK=<time>#<key>
  merge suggestion PK=MERGE#<suggestion id>      SK=MERGE     TPK=MERGE#pending TSK=<time>#<id>
                 (TPK/TSK only while pending: the `timeline` index lists the open queue)
  scores         PK=CUST#<id>                    SK=SCORES    the latest run's scores and
                 run segments (tier:..., rfm:...), written by segment runs only; TIER=
                 <tier segment>#<k> and RFM=<rfm segment>#<k> (k = member shard) make it the
                 membership of the computed segments: the sparse, keys-only `tier_members` and
                 `rfm_members` indexes (sort key SPK) list each segment's members
Live profiles and scores items carry SPK=<customer id>: the sparse `scoring` index holds them
and nothing else (no ledger entries, identities or merged profiles), projecting only what
scoring and rule segments read.
Every change is one TransactWriteItems: the profile is replaced under a condition on its
revision, identities are claimed with conditions, ledger entries are put only if new. An
order's payment entry also keeps what the order's refunds asked back so far (`refunded`),
changed under a condition on its previous value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from crm import aws
from crm.clock import iso
from crm.dynamo import (
    MAX_TRANSACT_ITEMS,
    ShardedStart,
    attribute,
    batch_get,
    batch_write,
    decode_page_token,
    encode_page_token,
    from_item,
    item_bytes,
    plain,
    sharded_page,
    start_key,
    to_item,
)
from crm.errors import Unavailable
from crm.profiles.record_models import Aggregates, CustomerScores, OrderAggregates
from crm.profiles.records import (
    INDEX_MISSING,
    MEMBER_INDEXES,
    MEMBER_SHARDS,
    UNPROJECTED,
    LedgerEntry,
    LedgerKind,
    MergeSuggestionRecord,
    OrderPayment,
    ProfileRecord,
    ScoresWrite,
    ScoringProfile,
    is_run_segment,
    member_index,
    member_key,
    payment_key,
)

PROFILE_SK = "PROFILE"
SCORES_SK = "SCORES"
SCORING_INDEX = "scoring"
SCORING_KEY = "SPK"  # on live profiles and scores items only: what makes the index sparse
_SCORING_PAGE_KEYS = ("PK", "SK", SCORING_KEY)
_PAGE_KEYS = {"PK", "SK", "TPK", "TSK"}
PENDING_MERGES = "MERGE#pending"

logger = Logger(child=True)
# What DynamoDB answers a query of an index the table does not have, and of one it is still
# building (CREATING, backfilling), by error code: a stack upgraded from before the member
# indexes gets them over two deploys (docs/operations.md). moto names a missing index its way.
_INDEX_NOT_READABLE = {
    "ValidationException": ("does not have the specified index", "backfilling global secondary"),
    "ResourceNotFoundException": ("Invalid index",),
}


class StaleProfile(Exception):
    """The profile changed since it was read; read again and retry."""


class DuplicateEntry(Exception):
    """A ledger entry with this idempotency key exists: the change was already applied.

    `duplicates` holds every entry of the transaction that exists (key -> stored item), so a
    caller that wrote several entries at once can drop them all and commit the rest."""

    def __init__(
        self,
        key: str,
        existing: dict[str, Any],
        duplicates: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(key)
        self.existing = existing
        self.duplicates = duplicates if duplicates is not None else {key: existing}


class IdentityTaken(Exception):
    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.channel = channel


class SaveProfile(NamedTuple):
    record: ProfileRecord
    expected_rev: int | None  # None: the profile must not exist yet


class ClaimIdentity(NamedTuple):
    channel: str
    key: str
    customer_id: str
    taken_from: str | None = None  # re-point an identity that a merged profile owned


class ReleaseIdentity(NamedTuple):
    channel: str
    key: str
    customer_id: str


class AppendEntry(NamedTuple):
    entry: LedgerEntry
    refunded: Decimal | None = None  # an order's payment: what refunds asked back before it


class RecordRefund(NamedTuple):
    """Raise what an order's refunds asked back, on its payment's entry."""

    order_id: str
    before: Decimal
    after: Decimal


class DropScores(NamedTuple):
    """Delete a customer's scores item (a profile merged into another: the survivor is the
    member now), which takes it out of the computed segments' indexes."""

    customer_id: str


Write = SaveProfile | ClaimIdentity | ReleaseIdentity | AppendEntry | RecordRefund | DropScores


def _profile_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": PROFILE_SK}}


def _scores_item(write: ScoresWrite) -> dict[str, Any]:
    item = {
        "PK": {"S": f"CUST#{write.customer_id}"},
        "SK": {"S": SCORES_SK},
        SCORING_KEY: {"S": write.customer_id},
        "run_id": {"S": write.run_id},
        "scores": attribute(write.scores.model_dump(mode="json", exclude_none=True)),
        "segments": {"L": [{"S": s} for s in sorted(write.run_segments)]},
    }
    # The computed segments' membership: the item is in a family's index while it carries
    # that family's key, so a move costs this put (which the run writes anyway) and the
    # index's own delete + put, and nothing in SegmentsTable.
    for segment in write.run_segments:
        found = member_index(segment)
        if found is not None:
            item[found[1]] = {"S": member_key(segment, write.customer_id)}
    return item


def _scores_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": SCORES_SK}}


def _ledger_key(key: str) -> dict[str, Any]:
    return {"PK": {"S": f"LEDGER#{key}"}, "SK": {"S": "LEDGER"}}


def _identity_key(channel: str, key: str) -> dict[str, Any]:
    return {"PK": {"S": f"ID#{channel}#{key}"}, "SK": {"S": "ID"}}


def _suggestion_key(suggestion_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"MERGE#{suggestion_id}"}, "SK": {"S": "MERGE"}}


class SuggestionResolved(Exception):
    """The merge suggestion was approved or dismissed meanwhile."""


class ProfileStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------------ reads
    def get(self, customer_id: str) -> ProfileRecord | None:
        """The profile with its latest scores: one Query reads the profile item and the
        scores item beside it (the same read units as the profile alone, up to 4 KB)."""
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"CUST#{customer_id}"}},
            ConsistentRead=True,
        )
        items = {i["SK"]["S"]: i for i in out.get("Items", [])}
        item = items.get(PROFILE_SK)
        return _record(item, items.get(SCORES_SK)) if item else None

    def owners(self, identities: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Which customer each (channel, key) belongs to; unknown identities are left out."""
        items = batch_get(self._table, [_identity_key(c, k) for c, k in identities])
        found: dict[tuple[str, str], str] = {}
        for item in items:
            values = from_item(item)
            found[(values["channel"], values["key"])] = values["customer_id"]
        return found

    def entry_owners(self, keys: Sequence[str]) -> dict[str, str]:
        """The customer each ledger entry (by idempotency key) was recorded for; keys with no
        entry are left out. Reads only the key and the customer id, never the body."""
        items = batch_get(
            self._table,
            [_ledger_key(k) for k in keys],
            projection="#k, customer_id",
            names={"#k": "key"},
        )
        values = [from_item(item) for item in items]
        return {v["key"]: v["customer_id"] for v in values}

    def existing(self, customer_ids: Iterable[str]) -> set[str]:
        """Which of these ids name a profile, live or merged into another: a merged-away id
        still names a known customer, whose reads and events follow the merge. Keys only."""
        keys = [_profile_key(customer_id) for customer_id in customer_ids]
        items = batch_get(self._table, keys, projection="PK")
        return {item["PK"]["S"].removeprefix("CUST#") for item in items}

    def payment(self, order_id: str) -> OrderPayment | None:
        """The order's payment as its ledger entry holds it, if it was folded."""
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key=_ledger_key(payment_key(order_id)),
            ConsistentRead=True,
            ProjectionExpression="#customer, #body.#amount, #refunded",
            ExpressionAttributeNames={
                "#customer": "customer_id",
                "#body": "body",
                "#amount": "amount",
                "#refunded": "refunded",
            },
        )
        item = out.get("Item")
        return _payment(from_item(item)) if item else None

    def profiles_and_payments(
        self, customer_ids: Iterable[str], order_ids: Iterable[str] = (), scores: bool = True
    ) -> tuple[dict[str, ProfileRecord], dict[str, OrderPayment]]:
        """The profiles of these ids (merged ones as they are) and the payments of these
        orders that were folded, read together: one BatchGetItem per 100 keys. Whole items:
        a batch has one projection per table, and a payment's entry is small. `scores=False`
        leaves the scores items unread (half the keys): for a writer that neither evaluates
        rule segments nor shows the profile, since a save never writes scores back."""
        ids = list(customer_ids)
        keys = [_profile_key(customer_id) for customer_id in ids]
        if scores:
            keys += [_scores_key(customer_id) for customer_id in ids]
        keys += [_ledger_key(payment_key(order_id)) for order_id in order_ids]
        profiles: dict[str, dict[str, Any]] = {}
        scores_items: dict[str, dict[str, Any]] = {}
        payments: dict[str, OrderPayment] = {}
        for item in batch_get(self._table, keys):
            kind = item["SK"]["S"]
            if kind == PROFILE_SK:
                profiles[item["PK"]["S"]] = item
            elif kind == SCORES_SK:
                scores_items[item["PK"]["S"]] = item
            else:
                values = from_item(item)
                payments[values["body"]["order_id"]] = _payment(values)
        # A profile comes with its latest scores (the scores item beside it), as `get` reads it.
        records = {
            (record := _record(item, scores_items.get(pk))).customer_id: record
            for pk, item in profiles.items()
        }
        return records, payments

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
            partition = {"TPK": f"{kind}#{customer_id}"}
            params["ExclusiveStartKey"] = to_item(start_key(start, _PAGE_KEYS, partition))
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
        """One page of a parallel scan of live profiles, as records validated from what the
        `scoring` index projects (aggregates, attributes, tags, points, scores, segments):
        enough to score and sample, not a whole profile to save."""
        found, last = self.scan_scoring(segment, total_segments, start_key, limit)
        return [p.full_record() for p in found], last

    def scan_scoring(
        self,
        segment: int,
        total_segments: int,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> tuple[list[ScoringProfile], dict[str, Any] | None]:
        """One page of a parallel scan of the sparse `scoring` index: live profiles, each
        with its scores item (the index sorts it right after the profile), parsed lean.

        `limit` bounds the items a page reads. A page that ends on a profile item ends one
        item early instead, since that profile's scores item may open the next page: the next
        page reads it again. The returned key is where the next page starts (None: done)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SCORING_INDEX,
            "Segment": segment,
            "TotalSegments": total_segments,
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        if limit:
            params["Limit"] = limit
        out = aws.dynamodb_bulk().scan(**params)
        return scoring_page(out.get("Items", []), out.get("LastEvaluatedKey"))

    def computed_members(
        self, segment: str, limit: int, start: ShardedStart
    ) -> tuple[list[str], str | None]:
        """One page of a computed segment's members (a tier or RFM cell), from its family's
        sparse index, shard after shard, each in customer id order. The token holds the shard
        and the index's last key. The index is eventually consistent: a run's write shows in
        it a fraction of a second later."""
        found_index = member_index(segment)
        if found_index is None:
            raise ValueError(f"{segment} is not a computed segment")
        index, attr = found_index
        try:
            return sharded_page(
                self._table, MEMBER_SHARDS, lambda shard: (attr, f"{segment}#{shard:02d}"),
                {"PK", "SK", attr, SCORING_KEY}, lambda item: str(item[SCORING_KEY]["S"]),
                limit, start, index=index,
                start_fits=lambda key: (key["SK"], key["PK"]) == (SCORES_SK,
                                                                  f"CUST#{key[SCORING_KEY]}"),
            )  # fmt: skip
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if not any(m in message for m in _INDEX_NOT_READABLE.get(aws.error_code(exc), ())):
                raise
            # Only a stack whose upgrade deploy is unfinished gets here (a run switched the
            # listings over before the index was there): the operator's to fix, not the caller's.
            logger.warning("member index not readable", extra={"index": index})
            raise Unavailable(
                f"member index {index} is not ready: finish the upgrade deploy that adds it "
                "(docs/operations.md, upgrading a stack deployed before the tier and RFM member "
                "indexes)"
            ) from None

    def member_index_states(self) -> dict[str, str]:
        """Each member index's IndexStatus from one DescribeTable: ACTIVE once built and
        backfilled, CREATING meanwhile, MISSING before the deploy that adds it."""
        table = aws.dynamodb().describe_table(TableName=self._table)["Table"]
        found = {i["IndexName"]: str(i.get("IndexStatus", ""))
                 for i in table.get("GlobalSecondaryIndexes", [])}  # fmt: skip
        return {index: found.get(index, INDEX_MISSING) for index, _ in MEMBER_INDEXES.values()}

    # ------------------------------------------------------------------ segment runs' writes
    def put_scores(self, writes: Sequence[ScoresWrite]) -> int:
        """Replace the scores items of these customers: BatchWriteItem, 25 a call, no
        condition. Only segment runs write scores items and a customer is in one shard of a
        run, so no other writer races them; profile saves never touch them. Returns the
        number of calls."""
        requests = [{"PutRequest": {"Item": _scores_item(w)}} for w in writes]
        return batch_write(self._table, requests, bulk=True)

    def set_rule_segments(self, customer_id: str, segments: Sequence[str], read_rev: int) -> bool:
        """Replace a profile's rule segments if it is still at the revision the run read (one
        UpdateItem, no transaction). The revision moves on, so a save that read the profile
        before fails its condition and runs again on what this wrote. False when the profile
        changed meanwhile (the save that changed it evaluated its rule segments)."""
        try:
            aws.dynamodb().update_item(
                TableName=self._table,
                Key=_profile_key(customer_id),
                UpdateExpression="SET #segments = :segments, rev = :next",
                ConditionExpression="rev = :rev",
                ExpressionAttributeNames={"#segments": "segments"},
                ExpressionAttributeValues={
                    ":segments": {"L": [{"S": s} for s in sorted(segments)]},
                    ":next": {"N": str(read_rev + 1)},
                    ":rev": {"N": str(read_rev)},
                },
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # ------------------------------------------------------------------ merge suggestions
    def suggest_merge(self, record: MergeSuggestionRecord) -> MergeSuggestionRecord:
        """Open a suggestion; one still pending for the same profiles is kept as it is (a
        dismissed one opens again: staff linked the profiles once more)."""
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=self._suggestion_item(record),
                ConditionExpression="attribute_not_exists(PK) OR #s <> :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":pending": {"S": "pending"}},
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            pending = self.suggestion(record.suggestion_id)
            assert pending is not None, "a failed condition means the item exists"
            return pending
        return record

    def suggestion(self, suggestion_id: str) -> MergeSuggestionRecord | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=_suggestion_key(suggestion_id), ConsistentRead=True
        )
        item = out.get("Item")
        return _suggestion(item) if item else None

    def pending_suggestions(
        self, limit: int, page_token: str | None = None
    ) -> tuple[list[MergeSuggestionRecord], str | None]:
        """The open queue, oldest first: a sparse slice of the `timeline` index."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "timeline",
            "KeyConditionExpression": "TPK = :tpk",
            "ExpressionAttributeValues": {":tpk": {"S": PENDING_MERGES}},
            "Limit": limit,
        }
        start = decode_page_token(page_token, _PAGE_KEYS)
        if start:
            params["ExclusiveStartKey"] = to_item(start)
        out = aws.dynamodb().query(**params)
        found = [_suggestion(item) for item in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return found, encode_page_token(from_item(last) if last else None)

    def resolve_suggestion(self, record: MergeSuggestionRecord, only_pending: bool = True) -> None:
        """Close a suggestion (it leaves the queue); SuggestionResolved if it must be pending
        and another manager closed it first."""
        condition: dict[str, Any] = {}
        if only_pending:
            condition = {
                "ConditionExpression": "#s = :pending",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":pending": {"S": "pending"}},
            }
        try:
            aws.dynamodb().put_item(
                TableName=self._table, Item=self._suggestion_item(record), **condition
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise SuggestionResolved(record.suggestion_id) from None

    @staticmethod
    def _suggestion_item(record: MergeSuggestionRecord) -> dict[str, Any]:
        values: dict[str, Any] = {
            "PK": f"MERGE#{record.suggestion_id}",
            "SK": "MERGE",
            **record.model_dump(mode="json"),
        }
        if record.status == "pending":
            values["TPK"] = PENDING_MERGES
            values["TSK"] = f"{iso(record.requested_at)}#{record.suggestion_id}"
        return to_item(values)

    # ------------------------------------------------------------------ writes
    def write_bytes(self, write: Write) -> int:
        """An upper bound of what one write adds to a transaction's size (4 MB at most)."""
        return item_bytes(self._transact_item(write))

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
        failed = [
            (write, reason)
            for write, reason in zip(writes, reasons, strict=False)
            if reason.get("Code") == "ConditionalCheckFailed"
        ]
        # Every existing entry is named at once, so a caller that wrote several drops them all.
        duplicates = {
            write.entry.key: from_item(reason.get("Item", {}))
            for write, reason in failed
            if isinstance(write, AppendEntry)
        }
        for write, _ in failed:
            if isinstance(write, AppendEntry):
                existing = duplicates[write.entry.key]
                raise DuplicateEntry(write.entry.key, existing, duplicates) from None
            if isinstance(write, SaveProfile):
                raise StaleProfile(write.record.customer_id) from None
            if isinstance(write, ClaimIdentity):
                raise IdentityTaken(write.channel) from None
            if isinstance(write, ReleaseIdentity):
                raise StaleProfile(write.customer_id) from None
            if isinstance(write, RecordRefund):
                raise StaleProfile(f"refunds of order {write.order_id}") from None
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
        if isinstance(write, RecordRefund):
            return {"Update": self._record_refund(write)}
        if isinstance(write, DropScores):
            return {"Delete": {"TableName": self._table, "Key": _scores_key(write.customer_id)}}
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
                        "refunded": write.refunded,
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
            **record.model_dump(mode="json", exclude={"scores"}),
        }
        # Scores and run segments live on the scores item, which only runs write: a save
        # never carries them back, so it cannot undo what a run wrote meanwhile.
        values["segments"] = [s for s in record.segments if not is_run_segment(s)]
        if record.merged_into is None:
            values[SCORING_KEY] = record.customer_id
        if record.wrapped_key:
            values["wrapped_key"] = record.wrapped_key
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(values)}
        if write.expected_rev is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "rev = :rev"
            put["ExpressionAttributeValues"] = {":rev": {"N": str(write.expected_rev)}}
        return put

    def _record_refund(self, write: RecordRefund) -> dict[str, Any]:
        condition = "refunded = :before"
        if not write.before:  # a payment folded before refunds were recorded has none
            condition = (
                "attribute_exists(PK) AND (attribute_not_exists(refunded) OR refunded = :before)"
            )
        return {
            "TableName": self._table,
            "Key": _ledger_key(payment_key(write.order_id)),
            "UpdateExpression": "SET refunded = :after",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {
                ":before": {"N": str(write.before)},
                ":after": {"N": str(write.after)},
            },
        }


def _record(item: dict[str, Any], scores_item: dict[str, Any] | None = None) -> ProfileRecord:
    values = from_item(item)
    wrapped = values.pop("wrapped_key", None)
    values.pop(SCORING_KEY, None)
    record = ProfileRecord.model_validate(values)
    if wrapped is not None:
        record.wrapped_key = bytes(wrapped)
    if scores_item is not None and record.merged_into is None:
        stored = from_item(scores_item)
        record.scores = CustomerScores.model_validate(stored["scores"])
        rules = [s for s in record.segments if not is_run_segment(s)]
        record.segments = sorted({*rules, *stored.get("segments", [])})
    return record


def _payment(values: dict[str, Any]) -> OrderPayment:
    return OrderPayment(
        customer_id=values["customer_id"],
        amount=Decimal(values["body"]["amount"]),
        refunded=values.get("refunded", Decimal("0.00")),
    )


def scoring_page(
    items: list[dict[str, Any]], last: dict[str, Any] | None
) -> tuple[list[ScoringProfile], dict[str, Any] | None]:
    """A page of the `scoring` index as profiles, each with its scores item; see
    ProfileStore.scan_scoring."""
    if last and len(items) > 1 and items[-1]["SK"]["S"] == PROFILE_SK:
        items = items[:-1]
        last = {k: items[-1][k] for k in _SCORING_PAGE_KEYS}
    found: list[ScoringProfile] = []
    waiting: dict[str, Any] | None = None  # a profile item; is its scores item next?
    for item in items:
        if item["SK"]["S"] == PROFILE_SK:
            if waiting is not None:
                found.append(_scoring(waiting, None))
            waiting = item
        elif waiting is not None and item[SCORING_KEY] == waiting[SCORING_KEY]:
            found.append(_scoring(waiting, item))
            waiting = None
        # else: the scores item of a profile merged into another: nothing to score
    if waiting is not None:
        found.append(_scoring(waiting, None))
    return found, last


class _Blanks(NamedTuple):
    orders: OrderAggregates
    aggregates: Aggregates
    record: ProfileRecord


@cache
def _blanks() -> _Blanks:
    """Lean records are shallow copies of these (pydantic's model_copy is ~50x cheaper than a
    validation, and several times cheaper than model_construct): read-only, never saved. Built
    by the first page that needs them, not at import: building them builds the records'
    schemas, which a function that never scores (the API's event intake) does not need."""
    return _Blanks(
        OrderAggregates(),
        Aggregates(),
        ProfileRecord(customer_id="-", created_at=UNPROJECTED, updated_at=UNPROJECTED),
    )


def _orders(values: dict[str, Any]) -> OrderAggregates:
    """The order aggregates scoring reads, built without validation from what a save wrote."""
    first, last = values.get("first_order_at"), values.get("last_order_at")
    return _blanks().orders.model_copy(
        update=dict(  # noqa: C408 - the fields, named
            order_count=int(values.get("order_count", 0)),
            total_spend=Decimal(values.get("total_spend", "0.00")),
            first_order_at=datetime.fromisoformat(first) if first else None,
            last_order_at=datetime.fromisoformat(last) if last else None,
            orders_by_month={k: int(v) for k, v in values.get("orders_by_month", {}).items()},
            products=values.get("products", {}),
        )
    )


def _scoring(item: dict[str, Any], scores_item: dict[str, Any] | None) -> ScoringProfile:
    """A page's profile, lean: a fast attribute decoder, then only order aggregates, scores
    and segments are built (unvalidated: a save validated them); the rest waits in
    `projected` until a rule segment asks (ScoringProfile.full_record)."""
    values = {k: plain(v) for k, v in item.items() if k not in _SCORING_PAGE_KEYS}
    customer_id = item[SCORING_KEY]["S"]
    segments = values.get("segments", [])
    rules = [s for s in segments if not is_run_segment(s)]
    if scores_item is not None:
        stored = plain(scores_item["scores"])
        scores: CustomerScores | None = CustomerScores.model_validate(stored)
        run = list(plain(scores_item["segments"])) if "segments" in scores_item else []
    else:  # never scored, or scored before scores had an item of their own
        legacy = values.get("scores")
        scores = CustomerScores.model_validate(legacy) if legacy else None
        run = [s for s in segments if is_run_segment(s)]
    orders = _orders(values.get("aggregates", {}).get("orders", {}))
    blanks = _blanks()
    lean = blanks.record.model_copy(update={
        "customer_id": customer_id,
        "aggregates": blanks.aggregates.model_copy(update={"orders": orders}),
        "scores": scores,
        "segments": sorted({*rules, *run}),
    })  # fmt: skip
    values["customer_id"] = customer_id
    return ScoringProfile(
        customer_id=customer_id,
        rev=int(values.get("rev", 0)),
        record=lean,
        scores=scores,
        run_segments=sorted(run),
        rule_segments=sorted(rules),
        scores_stored=scores_item is not None,
        projected=values,
    )


def _suggestion(item: dict[str, Any]) -> MergeSuggestionRecord:
    values = {k: v for k, v in from_item(item).items() if k not in _PAGE_KEYS}
    return MergeSuggestionRecord.model_validate(values)


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry.model_validate(from_item(item))
