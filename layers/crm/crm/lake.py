"""The data lake: PII-free JSON Lines under Hive-style partitions, queryable by Athena."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from crm import aws


def partition_key(prefix: str, partitions: Mapping[str, str], name: str) -> str:
    parts = "/".join(f"{k}={v}" for k, v in partitions.items())
    return f"{prefix}/{parts}/{name}.jsonl"


class Lake:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def write_rows(self, key: str, rows: Iterable[Mapping[str, Any]]) -> None:
        body = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        aws.s3().put_object(
            Bucket=self._bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson"
        )

    def write_events(self, rows: Iterable[Mapping[str, Any]], batch_id: str) -> list[str]:
        """One object per (type, day) partition of the batch; returns the keys written."""
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            day = datetime.fromisoformat(str(row["occurred_at"])).date().isoformat()
            groups[(str(row["type"]), day)].append(row)
        keys = []
        for (event_type, day), group in sorted(groups.items()):
            key = partition_key("events", {"type": event_type, "dt": day}, f"part-{batch_id}")
            self.write_rows(key, group)
            keys.append(key)
        return keys
