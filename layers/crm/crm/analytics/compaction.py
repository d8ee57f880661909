"""The lake's JSON Lines of a day compacted into Parquet, one file per table, type and day:
`parquet/<table>/type=<type>/dt=<day>/part-0000.parquet` (what Athena's Glue tables and the
embedded engine read).

Idempotent: a day is rebuilt whole from its JSON Lines (which stay: they are the record the
Parquet is built from), duplicates kept once by each table's key, and the file written under the
same name; so it is safe to run twice, late, or again for a day whose late events arrived after
it ran. The nightly schedule compacts the two days before today; `days` in the event backfills.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from crm.analytics import parquet
from crm.analytics.tables import BY_NAME, SCORES_TYPE, normalize, run_day
from crm.lake import Lake

SOURCES = ("events", "campaign_facts", "ticket_facts")
PART = "part-0000.parquet"
DAYS_BACK = 2


def parquet_key(table: str, kind: str, day: str) -> str:
    return f"parquet/{table}/type={kind}/dt={day}/{PART}"


@dataclass
class Compacted:
    days: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0


class Compaction:
    def __init__(self, files: Lake) -> None:
        self._files = files

    def run(self, now: datetime, days: list[str] | None = None) -> Compacted:
        wanted = days or [(now.date() - timedelta(days=n)).isoformat()
                          for n in range(DAYS_BACK, 0, -1)]  # fmt: skip
        result = Compacted()
        for day in wanted:
            date.fromisoformat(day)  # a day, or ValueError before anything is read
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
