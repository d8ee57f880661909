"""The restore drill: copy the emulator's tables and lake to a snapshot folder, and load a
snapshot into a fresh emulator (`crm-local backup DIR`, `crm-local up --fresh-data`,
`crm-local restore DIR`; docs/operations.md).

It plays what AWS Backup does for the deployed stack: table items and lake objects are copied
through the AWS APIs, as they are; the account's KMS keys and Secrets Manager secrets are not
in a backup (they live in the account, not in the tables), which is why a fresh emulator for a
restore keeps them (`--fresh-data`) and why a customer whose data key was destroyed stays
unreadable in anything restored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

MANIFEST = "manifest.json"
# DynamoDB's limit: at most 25 puts in one BatchWriteItem (moto accepts more; AWS refuses).
BATCH = 25
WRITE_ATTEMPTS = 8


class SnapshotError(Exception):
    """A snapshot that cannot be taken or restored here, with what to do about it."""


@dataclass(frozen=True)
class SnapshotSummary:
    folder: Path
    items: dict[str, int]
    objects: dict[str, int]

    def line(self) -> str:
        items = sum(self.items.values())
        objects = sum(self.objects.values())
        return (
            f"{items} items in {len(self.items)} tables, {objects} lake objects "
            f"in {len(self.objects)} buckets: {self.folder}"
        )


def _encode(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as JSON: binary (sealed PII, data keys) as base64, like AWS's own
    DynamoDB JSON export."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: _encode(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_encode(v) for v in inner]}
    return value


def _decode(value: dict[str, Any]) -> dict[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _decode(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_decode(v) for v in inner]}
    return value


def _scan(table: str) -> Iterator[dict[str, Any]]:
    client = boto3.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _objects(bucket: str) -> Iterator[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for entry in page.get("Contents", []):
            yield entry["Key"]


def take_snapshot(info: dict[str, Any], folder: Path) -> SnapshotSummary:
    """Every table's items (DynamoDB JSON, one item a line) and every lake object."""
    if folder.exists() and any(folder.iterdir()):
        raise SnapshotError(f"{folder} is not empty: a snapshot goes into a new folder")
    s3 = boto3.client("s3")
    items: dict[str, int] = {}
    for logical, table in sorted(info["tables"].items()):
        path = folder / "tables" / f"{logical}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            count = 0
            for item in _scan(table):
                encoded = {name: _encode(value) for name, value in item.items()}
                out.write(json.dumps(encoded, ensure_ascii=False) + "\n")
                count += 1
        items[logical] = count
    objects: dict[str, int] = {}
    for logical, bucket in sorted(info["buckets"].items()):
        count = 0
        for key in _objects(bucket):
            target = folder / "buckets" / logical / key
            if not target.resolve().is_relative_to((folder / "buckets" / logical).resolve()):
                raise SnapshotError(f"object key {key!r} would leave the snapshot folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            count += 1
        objects[logical] = count
    manifest = {
        "taken_at": datetime.now(UTC).isoformat(),
        "items": items,
        "objects": objects,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    folder.chmod(0o700)  # ciphertext and pseudonymous ids: the developer's eyes only
    return SnapshotSummary(folder, items, objects)


def _write_items(table: str, lines: Iterator[str]) -> int:
    client = boto3.client("dynamodb")
    written = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        for _ in range(WRITE_ATTEMPTS):
            left = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not left:
                return
            pending = left
        raise SnapshotError(f"{table} kept refusing writes; run the restore again")

    for line in lines:
        if not line.strip():
            continue
        batch.append({name: _decode(value) for name, value in json.loads(line).items()})
        if len(batch) == BATCH:
            flush()
            written += len(batch)
            batch = []
    if batch:
        flush()
        written += len(batch)
    return written


def _is_empty(table: str) -> bool:
    page = boto3.client("dynamodb").scan(TableName=table, Limit=1, Select="COUNT")
    return page["Count"] == 0 and "LastEvaluatedKey" not in page


def restore_snapshot(info: dict[str, Any], folder: Path) -> SnapshotSummary:
    """Load a snapshot into the running emulator, whose tables must be empty (a fresh one:
    `crm-local up --fresh-data`), as AWS restores a backup into new tables."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise SnapshotError(f"{folder} holds no snapshot ({MANIFEST} is missing)")
    manifest = json.loads(manifest_path.read_text())
    unknown = set(manifest["items"]) - set(info["tables"])
    if unknown:
        raise SnapshotError(f"the running stack has no table {', '.join(sorted(unknown))}")
    full = [logical for logical in manifest["items"] if not _is_empty(info["tables"][logical])]
    if full:
        raise SnapshotError(
            f"{', '.join(sorted(full))} already hold items: restore into a fresh emulator "
            "(`crm-local up --fresh-data`)"
        )
    items: dict[str, int] = {}
    for logical in sorted(manifest["items"]):
        with (folder / "tables" / f"{logical}.jsonl").open() as lines:
            items[logical] = _write_items(info["tables"][logical], lines)
        if items[logical] != manifest["items"][logical]:
            raise SnapshotError(
                f"{logical}: the snapshot lists {manifest['items'][logical]} items, "
                f"its file {items[logical]}"
            )
    s3 = boto3.client("s3")
    objects: dict[str, int] = {}
    for logical in sorted(manifest["objects"]):
        root = folder / "buckets" / logical
        count = 0
        for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []:
            key = path.relative_to(root).as_posix()
            s3.put_object(Bucket=info["buckets"][logical], Key=key, Body=path.read_bytes())
            count += 1
        objects[logical] = count
    return SnapshotSummary(folder, items, objects)
