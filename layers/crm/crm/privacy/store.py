"""The privacy family's only boto3 code: requests and the audit chain in PrivacyTable, export
parts and bundles in ExportsBucket, the audit archive in AuditArchiveBucket (Object Lock)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from crm import aws
from crm.dynamo import (
    batch_get,
    decode_page_token,
    encode_page_token,
    from_item,
    start_key,
    to_item,
)
from crm.privacy.models import OPEN_STATUSES, RequestKind, RequestStatus
from crm.privacy.records import (
    AUDIT_PARTITION,
    AuditEntry,
    PrivacyRequestRecord,
    StepRecord,
    audit_read_key,
    audit_sort,
    customer_partition,
    customer_sort,
    request_key,
    status_partition,
    status_sort,
)

STATUS_INDEX = "status"
CUSTOMER_INDEX = "customer"
STATUS_PAGE_KEYS = {"PK", "SK", "SPK", "SSK"}


def _numbers(value: Any) -> Any:
    """DynamoDB hands numbers back as Decimal: as the ints (or floats) they were written as,
    so an audit entry read back hashes to what it hashed to when written."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _conditional_failed(exc: ClientError) -> bool:
    return aws.error_code(exc) == "ConditionalCheckFailedException"


class PrivacyStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------ requests
    def _item(self, record: PrivacyRequestRecord) -> dict[str, Any]:
        return to_item(
            {
                **record.model_dump(mode="json"),
                **request_key(record.request_id),
                "SPK": status_partition(record.status),
                "SSK": status_sort(record),
                "CPK": customer_partition(record.customer_id),
                "CSK": customer_sort(record.kind, record.filed_at),
            }
        )

    @staticmethod
    def _record(item: dict[str, Any]) -> PrivacyRequestRecord:
        values = _numbers(from_item(item))
        for key in ("PK", "SK", "SPK", "SSK", "CPK", "CSK"):
            values.pop(key, None)
        return PrivacyRequestRecord.model_validate(values)

    def create(self, record: PrivacyRequestRecord) -> bool:
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=self._item(record),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get(self, request_id: str) -> PrivacyRequestRecord | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=to_item(request_key(request_id)), ConsistentRead=True
        )
        item = out.get("Item")
        return self._record(item) if item else None

    def update(
        self,
        request_id: str,
        changes: dict[str, Any],
        *,
        when: frozenset[RequestStatus] | None = None,
    ) -> bool:
        """Set fields of a request (and its status index when the status changes), only while
        its status is one of `when`. False when it is not (or there is no such request)."""
        values = dict(changes)
        if "status" in values:
            values["SPK"] = status_partition(RequestStatus(values["status"]))
        names = {f"#f{n}": name for n, name in enumerate(values)}
        attrs = {f":v{n}": value for n, value in enumerate(values.values())}
        sets = ", ".join(f"#f{n} = :v{n}" for n in range(len(values)))
        condition = "attribute_exists(PK)"
        if when:
            names["#status"] = "status"
            allowed = []
            for n, status in enumerate(sorted(when)):
                attrs[f":s{n}"] = status.value
                allowed.append(f":s{n}")
            condition += f" AND #status IN ({', '.join(allowed)})"
        try:
            aws.dynamodb().update_item(
                TableName=self._table,
                Key=to_item(request_key(request_id)),
                UpdateExpression=f"SET {sets}",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(attrs),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def set_step(self, request_id: str, store: str, step: StepRecord) -> None:
        """One store's step, written alone: workers of other stores' steps of the same
        request write theirs at the same moment without overwriting each other."""
        aws.dynamodb().update_item(
            TableName=self._table,
            Key=to_item(request_key(request_id)),
            UpdateExpression="SET steps.#store = :step",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#store": store},
            ExpressionAttributeValues=to_item({":step": step.model_dump(mode="json")}),
        )

    def by_status(
        self, status: RequestStatus, limit: int, token: str | None
    ) -> tuple[list[PrivacyRequestRecord], str | None]:
        partition = status_partition(status)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "SPK = :p",
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "Limit": limit,
            "ScanIndexForward": False,
        }
        raw = decode_page_token(token, STATUS_PAGE_KEYS)
        if raw is not None:
            checked = start_key(raw, STATUS_PAGE_KEYS, {"SPK": partition})
            request["ExclusiveStartKey"] = {k: {"S": v} for k, v in checked.items()}
        out = aws.dynamodb().query(**request)
        last = out.get("LastEvaluatedKey")
        plain_last = {k: v["S"] for k, v in last.items()} if last else None
        return [self._record(i) for i in out.get("Items", [])], encode_page_token(plain_last)

    def open_for(
        self, customer_id: str, kind: RequestKind, since: datetime
    ) -> list[PrivacyRequestRecord]:
        """The customer's requests of this kind filed since `since` that are still open."""
        out = aws.dynamodb().query(
            TableName=self._table,
            IndexName=CUSTOMER_INDEX,
            KeyConditionExpression="CPK = :p AND CSK BETWEEN :a AND :b",
            ExpressionAttributeValues=to_item(
                {
                    ":p": customer_partition(customer_id),
                    ":a": customer_sort(kind, since),
                    ":b": f"{kind.value}#~",
                }
            ),
        )
        records = [self._record(i) for i in out.get("Items", [])]
        return [r for r in records if r.status in OPEN_STATUSES]

    def for_customer(self, customer_id: str) -> list[PrivacyRequestRecord]:
        records: list[PrivacyRequestRecord] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CUSTOMER_INDEX,
            "KeyConditionExpression": "CPK = :p",
            "ExpressionAttributeValues": {":p": {"S": customer_partition(customer_id)}},
        }
        while True:
            out = aws.dynamodb().query(**request)
            records.extend(self._record(i) for i in out.get("Items", []))
            if not out.get("LastEvaluatedKey"):
                return records
            request["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    # ------------------------------------------------------------ the audit chain
    def last_audit(self) -> AuditEntry | None:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :p AND begins_with(SK, :s)",
            ExpressionAttributeValues=to_item({":p": AUDIT_PARTITION, ":s": "SEQ#"}),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = out.get("Items", [])
        return self._entry(items[0]) if items else None

    @staticmethod
    def _entry(item: dict[str, Any]) -> AuditEntry:
        values = _numbers(from_item(item))
        values.pop("PK", None)
        values.pop("SK", None)
        return AuditEntry.model_validate(values)

    def put_audit(self, entry: AuditEntry) -> bool:
        """False when another writer took this sequence number first (the chain's head
        moved): the caller links to the new head and tries again."""
        item = {**entry.model_dump(mode="json"), "PK": AUDIT_PARTITION, "SK": audit_sort(entry.seq)}
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def put_audit_batch(
        self, entries: Sequence[AuditEntry], read_ids: Sequence[str], expires_at: int
    ) -> tuple[bool, set[str]] | None:
        """Appends linked entries and each read's marker in one TransactWriteItems (at most
        100 items: callers pass 50 reads): None when committed; else whether the head moved
        (a sequence number was taken) and which reads the chain holds already."""
        ops: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(PK)",
                     "Item": to_item({**e.model_dump(mode="json"), "PK": AUDIT_PARTITION,
                                      "SK": audit_sort(e.seq)})}}
            for e in entries
        ]  # fmt: skip
        ops += [
            {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(PK)",
                     "Item": to_item({**audit_read_key(read_id), "seq": e.seq,
                                      "expires_at": expires_at})}}
            for read_id, e in zip(read_ids, entries, strict=True)
        ]  # fmt: skip
        try:
            aws.dynamodb().transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])
            ]
            failed = {n for n, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
            if not failed:
                raise  # throttled or conflicting: the batch comes back from SQS
            moved = any(n < len(entries) for n in failed)
            seen = {read_ids[n - len(entries)] for n in failed if n >= len(entries)}
            return moved, seen
        return None

    def audited_reads(self, read_ids: Sequence[str]) -> dict[str, int]:
        """read id -> the sequence number of its entry, for the reads the chain holds."""
        found = batch_get(self._table, [to_item(audit_read_key(r)) for r in read_ids])
        return {
            from_item(i)["PK"].removeprefix("AUDITREAD#"): int(from_item(i)["seq"]) for i in found
        }

    def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :p AND SK > :s",
            ExpressionAttributeValues=to_item({":p": AUDIT_PARTITION, ":s": audit_sort(after_seq)}),
            Limit=limit,
            ConsistentRead=True,
        )
        return [self._entry(i) for i in out.get("Items", [])]


class ArchivedObject(NamedTuple):
    """One object of the audit archive: the entries `first`..`last` (one entry: first == last)."""

    key: str
    first: int
    last: int


class PrivacyFiles:
    """Export parts and bundles (ExportsBucket: SSE-KMS, expiring in days) and the audit
    archive (AuditArchiveBucket: Object Lock, objects cannot be changed or deleted)."""

    def __init__(self, exports_bucket: str, archive_bucket: str) -> None:
        self._exports = exports_bucket
        self._archive = archive_bucket

    def put_export(self, key: str, body: bytes, content_type: str) -> None:
        # Encrypted by the bucket's default (SSE-KMS under the stack's key).
        aws.s3().put_object(Bucket=self._exports, Key=key, Body=body, ContentType=content_type)

    def get_export(self, key: str) -> bytes | None:
        return aws.object_body(self._exports, key)

    def export_keys(self, prefix: str) -> list[str]:
        return list(aws.object_keys(self._exports, prefix))

    def delete_exports(self, keys: list[str]) -> list[str]:
        """Deletes export files; the keys S3 did not delete (verification finds them too)."""
        return aws.delete_objects(self._exports, keys)

    def presign(self, key: str, expires_s: int) -> str:
        return aws.s3_signer().generate_presigned_url(
            "get_object", Params={"Bucket": self._exports, "Key": key}, ExpiresIn=expires_s
        )

    def archive(self, entry: AuditEntry) -> None:
        """The entry as an object the bucket's Object Lock keeps unchanged for its retention."""
        aws.s3().put_object(
            Bucket=self._archive,
            Key=f"audit/{entry.seq:012d}.json",
            Body=entry.model_dump_json().encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",  # Object Lock buckets refuse puts without a checksum
        )

    def archive_batch(self, entries: Sequence[AuditEntry]) -> None:
        """Linked entries (a batch of reads) as one object, one entry a line, named by the
        first and last sequence numbers it holds."""
        aws.s3().put_object(
            Bucket=self._archive,
            Key=f"audit/{entries[0].seq:012d}-{entries[-1].seq:012d}.jsonl",
            Body="".join(e.model_dump_json() + "\n" for e in entries).encode(),
            ContentType="application/x-ndjson",
            ChecksumAlgorithm="SHA256",  # Object Lock buckets refuse puts without a checksum
        )

    def archive_objects(self) -> list[ArchivedObject]:
        """The archive's objects in sequence order, as listed (no object read): one LIST
        request per 1,000 objects."""
        found: list[ArchivedObject] = []
        for page in (
            aws.s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self._archive, Prefix="audit/")
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"].removeprefix("audit/").split(".")[0]
                first, _, last = name.partition("-")
                found.append(ArchivedObject(obj["Key"], int(first), int(last or first)))
        return sorted(found, key=lambda o: (o.first, o.last, o.key))

    def archived_lines(self, obj: ArchivedObject) -> list[bytes]:
        """The entries one archive object holds, one JSON document each."""
        body = aws.s3().get_object(Bucket=self._archive, Key=obj.key)["Body"].read()
        return list(filter(bytes.strip, body.splitlines()))

    def archived_copies(
        self, after: int = 0, objects: Sequence[ArchivedObject] | None = None
    ) -> list[bytes]:
        """Every archived copy of an entry after `after`, in key order, duplicates included (a
        batch redelivered before its copy was written is archived twice, and a copy put
        beside the genuine one must be seen by verification, not hidden by it)."""
        found: list[bytes] = []
        for obj in self.archive_objects() if objects is None else objects:
            if obj.last <= after:
                continue  # every entry of the object is at or before `after`
            found += [line for line in self.archived_lines(obj)
                      if int(json.loads(line)["seq"]) > after]  # fmt: skip
        return found

    def archived_after(
        self, seq: int, objects: Sequence[ArchivedObject] | None = None
    ) -> list[bytes]:
        """Every archived entry after `seq`, once each, in order (the archive outlives a
        table's restore: Object Lock keeps it, and no restore rewinds a bucket); from
        `objects` only when given."""
        found: dict[int, bytes] = {}
        for line in self.archived_copies(seq, objects):
            found.setdefault(int(json.loads(line)["seq"]), line)
        return [found[n] for n in sorted(found)]
