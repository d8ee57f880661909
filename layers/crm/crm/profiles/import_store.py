"""Where a historical import lives while it runs: its status item in CustomersTable (the
profiles family's table, beside its other operational items, the merge suggestions) and the
validated body as one object in ImportsBucket (SSE-KMS under the PII key, deleted when the
import is done, expired by a lifecycle rule after 2 days in any case).

  import status  PK=IMPORT#<id>  SK=IMPORT   ids, counts and the shop's refs only, no PII
"""

from __future__ import annotations

from typing import Any

from crm import aws
from crm.dynamo import from_item, to_item
from crm.profiles.import_models import HistoryImport, ImportRecord

IMPORT_SK = "IMPORT"
STAGED_PREFIX = "imports/"


def _key(import_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"IMPORT#{import_id}"}, "SK": {"S": IMPORT_SK}}


class ImportStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def put(self, record: ImportRecord) -> None:
        """The whole status item (a few KB: counts and up to a failure per customer)."""
        values = {"PK": f"IMPORT#{record.import_id}", "SK": IMPORT_SK}
        values |= record.model_dump(mode="json")
        aws.dynamodb().put_item(TableName=self._table, Item=to_item(values))

    def get(self, import_id: str) -> ImportRecord | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=_key(import_id), ConsistentRead=True
        )
        item = out.get("Item")
        if not item:
            return None
        values = from_item(item)
        return ImportRecord.model_validate(
            {k: v for k, v in values.items() if k not in {"PK", "SK"}}
        )


class StagedImports:
    """The imports' bodies, one object each, read once by the import function."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    @staticmethod
    def key(import_id: str) -> str:
        return f"{STAGED_PREFIX}{import_id}.json"

    def put(self, import_id: str, body: HistoryImport) -> None:
        aws.s3().put_object(
            Bucket=self._bucket, Key=self.key(import_id),
            Body=body.model_dump_json(exclude_none=True).encode(), ContentType="application/json",
        )  # fmt: skip

    def get(self, import_id: str) -> bytes | None:
        return aws.object_body(self._bucket, self.key(import_id))

    def delete(self, import_id: str) -> None:
        aws.s3().delete_object(Bucket=self._bucket, Key=self.key(import_id))
