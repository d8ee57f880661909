"""The data lake: PII-free JSON Lines under Hive-style partitions, queryable by Athena."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger

from crm import aws, metrics
from crm.clock import Clock, utc_now

logger = Logger(child=True)

# The tables of facts other families append (crm.analytics.tables reads them).
FACT_TABLES = frozenset({"campaign_facts", "ticket_facts"})

# The nightly compaction (crm.analytics.compaction) rebuilds the days this many back from the
# day it runs; rows for an older day are "late" and a marker under LATE_PREFIX names their day
# for the next night (docs/analytics.md "Compaction"). Markers hold days and table names only.
NIGHTLY_DAYS_BACK = 2
LATE_PREFIX = "lake-late/"


def nightly_days(today: date) -> list[str]:
    """The days the nightly run of `today` compacts, oldest first."""
    return [(today - timedelta(days=n)).isoformat() for n in range(NIGHTLY_DAYS_BACK, 0, -1)]


def is_late(day: str, today: date) -> bool:
    """Whether rows written `today` for `day` would be missed by every nightly run to come: the
    next night's run (tomorrow's) covers the day before today and today, so anything older."""
    return day < (today - timedelta(days=NIGHTLY_DAYS_BACK - 1)).isoformat()


class LateMarker(NamedTuple):
    key: str
    days: list[str] | None  # None: the body is not a marker (logged and removed by compaction)


def partition_key(prefix: str, partitions: Mapping[str, str], name: str) -> str:
    parts = "/".join(f"{k}={v}" for k, v in partitions.items())
    return f"{prefix}/{parts}/{name}.jsonl"


class Lake:
    """The lake bucket's objects: what the families write, analytics reads and compacts, and
    the privacy registry rewrites."""

    def __init__(self, bucket: str, clock: Clock = utc_now) -> None:
        self.bucket = bucket
        self._clock = clock

    def keys(self, prefix: str = "") -> Iterator[str]:
        return aws.object_keys(self.bucket, prefix)

    def prefixes(self, prefix: str) -> list[str]:
        """The 'folders' right under `prefix` (which ends with '/')."""
        found: list[str] = []
        pages = (
            aws.s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        )
        for page in pages:
            found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return found

    def read(self, key: str) -> bytes | None:
        return aws.object_body(self.bucket, key)

    def write(self, key: str, body: bytes, content_type: str) -> None:
        aws.s3().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, key: str) -> None:
        aws.s3().delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: Sequence[str]) -> int:
        """Deletes `keys`; the number S3 did not delete (logged)."""
        failed = len(aws.delete_objects(self.bucket, keys))
        if failed:
            logger.warning("lake objects not deleted", extra={"failed": failed})
        return failed

    def write_rows(self, key: str, rows: Iterable[Mapping[str, Any]]) -> None:
        body = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        self.write(key, body.encode(), "application/x-ndjson")

    def write_events(self, rows: Iterable[Mapping[str, Any]], batch_id: str) -> list[str]:
        """One object per (type, day) partition of the batch; returns the keys written. A batch
        with rows for days no nightly compaction will cover again (history loaded through
        `POST /events`, a client's offline queue) also puts one marker naming those days, after
        the rows, so that a compaction that lists the marker finds the rows."""
        keys = self.write_partitioned("events", rows, batch_id)
        today = self._clock().date()
        late = sorted({day for day in (_day_of(k) for k in keys) if is_late(day, today)})
        if late:
            marker = {"days": late, "tables": ["events"], "batch": batch_id}
            self.write(f"{LATE_PREFIX}{batch_id}.json", json.dumps(marker).encode(),
                       "application/json")  # fmt: skip
        return keys

    def late_markers(self) -> list[LateMarker]:
        """The late-day markers now in the lake, each with its days (None if unreadable)."""
        keys = list(self.keys(LATE_PREFIX))
        # Read 16 at a time: a history load leaves a marker per batch of 10 events, and one
        # GET after another (~20 ms each) would take a night's run past its 15 minutes.
        with ThreadPoolExecutor(max_workers=16) as pool:
            bodies = list(pool.map(self.read, keys))
        return [LateMarker(key, _marker_days(body)) for key, body in zip(keys, bodies, strict=True)]

    def write_partitioned(
        self, prefix: str, rows: Iterable[Mapping[str, Any]], batch_id: str
    ) -> list[str]:
        """One object per (type, day) partition of the rows under `prefix`; the keys written."""
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            day = datetime.fromisoformat(str(row["occurred_at"])).date().isoformat()
            groups[(str(row["type"]), day)].append(row)
        keys = []
        for (event_type, day), group in sorted(groups.items()):
            key = partition_key(prefix, {"type": event_type, "dt": day}, f"part-{batch_id}")
            self.write_rows(key, group)
            keys.append(key)
        return keys


def _day_of(key: str) -> str:
    """The day of a partition key written by `write_partitioned` (`.../dt=<day>/part-...`)."""
    return key.rsplit("/dt=", 1)[1].split("/", 1)[0]


def _marker_days(body: bytes | None) -> list[str] | None:
    """The days a marker names, or None if its body is not a marker."""
    try:
        days = json.loads(body or b"")["days"]
        if not isinstance(days, list) or not days:
            return None
        return [date.fromisoformat(str(day)).isoformat() for day in days]
    except (ValueError, TypeError, KeyError):
        return None


class FactLog:
    """Outcomes of campaigns and tickets appended to the lake for the analytics family.

    A fact names its customer by `customer_id`, which never reaches the lake: this writer puts
    the pseudonym in its place (`customer_pid`, and `{pid}` in a fact id), so the families that
    record facts cannot leak an id.

    Facts are kept in memory and written once per batch or request (`flush`, which the functions
    call after each: crm.composition.Crm.flush_facts), one object per partition: a message costs
    no S3 request of its own. Writing is best effort after the business writes have committed:
    a lake that cannot be written is logged and counted (LakeFactWritesFailed), never an error
    of the sale, message or ticket (docs/analytics.md)."""

    MAX_BUFFERED = 1000  # written at once past this many, whoever flushes

    def __init__(self, lake: Lake, pseudonym: Callable[[str], str], ids: Callable[[], str]) -> None:
        self._lake = lake
        self._pseudonym = pseudonym
        self._ids = ids
        self._buffer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()

    def write(self, table: str, facts: Sequence[Mapping[str, Any]]) -> None:
        if not facts:
            return
        try:
            assert table in FACT_TABLES, table
            rows = [self._row(fact) for fact in facts]
        except Exception as exc:
            self._failed(table, len(facts), exc)
            return
        with self._lock:
            self._buffer[table] += rows
            full = sum(len(v) for v in self._buffer.values()) >= self.MAX_BUFFERED
        if full:
            self.flush()

    def _row(self, fact: Mapping[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in fact.items() if k != "customer_id"}
        customer_id = fact.get("customer_id")
        pid = self._pseudonym(str(customer_id)) if customer_id else None
        row["customer_pid"] = pid
        row["fact_id"] = str(row["fact_id"]).replace("{pid}", pid or "")
        return row

    def flush(self) -> None:
        with self._lock:
            buffered, self._buffer = self._buffer, defaultdict(list)
        for table, rows in buffered.items():
            try:
                self._lake.write_partitioned(table, rows, self._ids())
            except Exception as exc:
                self._failed(table, len(rows), exc)

    @staticmethod
    def _failed(table: str, count: int, exc: Exception) -> None:
        logger.warning(
            "lake fact write failed",
            extra={"table": table, "facts": count, "error": type(exc).__name__},
        )
        metrics.count("LakeFactWritesFailed", 1, {"table": table})
