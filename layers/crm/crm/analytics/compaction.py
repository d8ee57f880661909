"""The lake's JSON Lines of a day compacted into Parquet, one file per table, type and day:
`parquet/<table>/type=<type>/dt=<day>/part-0000.parquet` (what Athena's Glue tables and the
embedded engine read).

Idempotent: a day is rebuilt whole from its JSON Lines (which stay: they are the record the
Parquet is built from), duplicates kept once by each table's key, and the file written under the
same name; so it is safe to run twice, late, or again for a day whose late events arrived after
it ran. The nightly schedule compacts the two days before today and every day named by the
late-day markers the fold leaves (crm.lake.Lake.write_events), then deletes exactly the markers
it listed: one written while it runs stays for the next night. `days` in the event backfills
those days only (markers untouched).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from aws_lambda_powertools import Logger

from crm.analytics import parquet
from crm.analytics.tables import BY_NAME, SCORES_TYPE, normalize, run_day
from crm.lake import Lake, nightly_days

logger = Logger(child=True)

SOURCES = ("events", "campaign_facts", "ticket_facts")
PART = "part-0000.parquet"


def parquet_key(table: str, kind: str, day: str) -> str:
    return f"parquet/{table}/type={kind}/dt={day}/{PART}"


@dataclass
class Compacted:
    days: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    markers: int = 0  # late-day markers handled (and deleted) by a nightly run


class Compaction:
    def __init__(self, files: Lake) -> None:
        self._files = files

    def run(self, now: datetime, days: list[str] | None = None) -> Compacted:
        if days:
            return self._compact(days, Compacted())
        # Listed before anything is compacted: a marker written from now on (its rows perhaps
        # after a day was read) is not in this list, so it stays for the next night.
        markers = self._files.late_markers()
        late: set[str] = set()
        for marker in markers:
            if marker.days is None:
                # By key only (a batch id), never the body, whatever wrote it; removed below
                # with the others, or it would be logged every night.
                logger.warning(
                    "lake late-day marker unreadable, removed", extra={"key": marker.key}
                )
            else:
                late.update(marker.days)
        result = self._compact(sorted(late | set(nightly_days(now.date()))), Compacted())
        # Only once every day is compacted: a run that fails leaves them for the next one.
        self._files.delete_many([m.key for m in markers])
        result.markers = len(markers)
        return result

    def _compact(self, days: list[str], result: Compacted) -> Compacted:
        for day in days:
            date.fromisoformat(day)  # a day, or ValueError before anything is read
        for day in days:
            self.compact_day(day, result)
            result.days.append(day)
        return result

    def _rows(self, keys: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for key in keys:
            body = self._files.read(key) or b""
            rows += [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        return rows

    def _write(self, kind: str, day: str, source: str, keys: list[str], out: Compacted) -> None:
        for table, rows in normalize(source, self._rows(keys)).items():
            data = parquet.arrow_table(BY_NAME[table], rows)
            self._files.write(
                parquet_key(table, kind, day), parquet.to_parquet(data),
                "application/vnd.apache.parquet",
            )  # fmt: skip
            out.files += 1
            out.rows += len(rows)

    def compact_day(self, day: str, out: Compacted | None = None) -> Compacted:
        out = out if out is not None else Compacted()
        for source in SOURCES:
            for type_prefix in self._files.prefixes(f"{source}/"):
                kind = type_prefix.removeprefix(f"{source}/type=").rstrip("/")
                keys = [k for k in self._files.keys(f"{type_prefix}dt={day}/")
                        if k.endswith(".jsonl")]  # fmt: skip
                if keys:
                    self._write(kind, day, source, keys, out)
        runs = [
            p for p in self._files.prefixes("segment_scores/")
            if run_day(p.removeprefix("segment_scores/run=")) == day
        ]  # fmt: skip
        keys = [k for run in runs for k in self._files.keys(run) if k.endswith(".jsonl")]
        if keys:
            self._write(SCORES_TYPE, day, "segment_scores", keys, out)
        return out
