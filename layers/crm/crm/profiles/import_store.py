"""Where a historical import lives while it runs: its status item in CustomersTable (the
profiles family's table, beside its other operational items, the merge suggestions) and the
validated body as one object in ImportsBucket (SSE-KMS under the PII key, deleted when the
import is done, expired by a lifecycle rule after 2 days in any case).

  import status  PK=IMPORT#<id>  SK=IMPORT   ids, counts and the shop's refs only, no PII
  chunk outcomes PK=IMPORT#<id>  SK=DONE#<attempt>#<chunk>   per customer of a completed chunk:
                 its ref, created / matched / failed, its event counts, why it failed (a
                 retry's bookkeeping; deleted when the import is done)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm import aws
from crm.dynamo import batch_write, from_item, to_item
from crm.profiles.import_models import CustomerOutcome, HistoryImport, ImportRecord

IMPORT_SK = "IMPORT"
DONE_PREFIX = "DONE#"
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

    def put_outcomes(
        self, import_id: str, attempt: int, chunk: int, outcomes: Sequence[CustomerOutcome]
    ) -> str:
        """What a completed chunk did with the customers it counted: one item per chunk and
        attempt (100 customers: tens of KB at most, far below DynamoDB's 400 KB); its sort
        key."""
        sort_key = f"{DONE_PREFIX}{attempt:04d}#{chunk:05d}"
        values = {"PK": f"IMPORT#{import_id}", "SK": sort_key,
                  "outcomes": [o.model_dump(mode="json") for o in outcomes]}  # fmt: skip
        aws.dynamodb().put_item(TableName=self._table, Item=to_item(values))
        return sort_key

    def outcomes(self, import_id: str) -> tuple[dict[str, CustomerOutcome], list[str]]:
        """The outcomes the import's earlier attempts recorded, by ref, with the items' sort
        keys (to delete them)."""
        found: dict[str, CustomerOutcome] = {}
        keys: list[str] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :done)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"IMPORT#{import_id}"}, ":done": {"S": DONE_PREFIX}},
            "ConsistentRead": True,
        }  # fmt: skip
        while True:
            out = aws.dynamodb().query(**params)
            for item in out.get("Items", []):
                values = from_item(item)
                keys.append(str(values["SK"]))
                for outcome in values.get("outcomes", []):
                    found[outcome["ref"]] = CustomerOutcome.model_validate(outcome)
            if "LastEvaluatedKey" not in out:
                return found, keys
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def drop_outcomes(self, import_id: str, sort_keys: Sequence[str]) -> None:
        """Delete outcome items (an import done needs them no more): 25 per BatchWriteItem."""
        requests = [
            {"DeleteRequest": {"Key": {"PK": {"S": f"IMPORT#{import_id}"}, "SK": {"S": sk}}}}
            for sk in sort_keys
        ]
        batch_write(self._table, requests)


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
