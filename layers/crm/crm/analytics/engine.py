"""The embedded engine that runs a metric's SQL: DuckDB (locally, small shops, benchmarks).
Like Athena's, it answers rows of (series, x, y).

Athena's engine is `crm.analytics.store.AthenaQueries` (no DuckDB or pyarrow in that function).

Locally the lake is the emulator's S3 bucket: `LakeTables` reads the partitions a period needs
into Arrow tables (a compacted day from its Parquet, a day not compacted yet from its JSON Lines,
normalized as compaction would), and DuckDB queries them in memory. Objects of JSON Lines never
change once written (each batch writes its own), so a process keeps what it has read of them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa

from crm.analytics import parquet
from crm.analytics.service import Row
from crm.analytics.tables import BY_NAME, SCORES_TYPE, TABLES, normalize, run_day
from crm.lake import Lake

READERS = 8
REUSE_S = 60.0  # the lake's listing is reused this long
_PART = re.compile(r"^(?P<source>[a-z_]+)/type=(?P<type>[^/]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/")
_RUN = re.compile(r"^segment_scores/run=(?P<run>[^/]+)/")
_PARQUET = re.compile(r"^parquet/(?P<table>[a-z_]+)/type=(?P<type>[^/]+)/dt=(?P<dt>[0-9-]+)/")


def duckdb_rows(tables: Mapping[str, pa.Table], sql: str) -> list[Row]:
    """Run `sql` on DuckDB with each Arrow table registered under its lake table's name."""
    con = duckdb.connect()
    try:
        for name, data in tables.items():
            con.register(name, data)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def duckdb_parquet_rows(root: str, sql: str) -> list[Row]:
    """Run `sql` on DuckDB over a directory laid out as the lake's `parquet/` prefix (bench)."""
    con = duckdb.connect()
    try:
        for table in TABLES:
            if table.name not in sql:
                continue  # a table the query does not name costs no listing of its files
            glob = f"{root}/{table.name}/*/*/*.parquet"
            empty = parquet.schema(table, partitions=True).empty_table()
            con.register(f"{table.name}_empty", empty)
            try:
                con.execute(
                    f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet('{glob}', "  # noqa: S608
                    "hive_partitioning = true, hive_types_autocast = false)"
                )
            except duckdb.IOException:
                con.execute(f"CREATE VIEW {table.name} AS SELECT * FROM {table.name}_empty")  # noqa: S608
        return con.execute(sql).fetchall()
    finally:
        con.close()


class LakeTables:
    """The lake's tables read from S3 into Arrow, for the embedded engine."""

    def __init__(self, files: Lake) -> None:
        self._files = files
        self._json: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        # One load at a time (a dashboard asks for every metric at once), and the tables of the
        # last load kept while the lake's keys are the same.
        self._loading = threading.Lock()
        self._last: tuple[frozenset[str], dict[str, pa.Table]] | None = None
        self._loaded_at: float | None = None

    def _json_rows(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            cached = self._json.get(key)
        if cached is not None:
            return cached
        body = self._files.read(key) or b""
        rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        with self._lock:
            self._json[key] = rows
        return rows

    def load(self, since: str) -> dict[str, pa.Table]:
        with self._loading:
            # A dashboard view asks for every metric at once: one listing of the lake serves
            # them all (what they show is cached for minutes anyway).
            recent = self._loaded_at is not None and time.monotonic() - self._loaded_at < REUSE_S
            if recent and self._last is not None and since in self._last[0]:
                return self._last[1]
            tables = self._load(since)
            self._loaded_at = time.monotonic()
            return tables

    def _load(self, since: str) -> dict[str, pa.Table]:
        parquet_keys = list(self._files.keys("parquet/"))
        json_keys = [
            key
            for source in ("events", "campaign_facts", "ticket_facts", "segment_scores")
            for key in self._files.keys(f"{source}/")
            if key.endswith(".jsonl")
        ]
        signature = frozenset([since, *parquet_keys, *json_keys])
        if self._last is not None and self._last[0] == signature:
            return self._last[1]
        tables = self._read(since, parquet_keys, json_keys)
        self._last = (signature, tables)
        return tables

    def _read(
        self, since: str, parquet_keys: list[str], json_keys: list[str]
    ) -> dict[str, pa.Table]:
        compacted: dict[tuple[str, str, str], list[str]] = {}
        for key in parquet_keys:
            match = _PARQUET.match(key)
            if match and match["dt"] >= since:
                compacted.setdefault((match["table"], match["type"], match["dt"]), []).append(key)
        pieces: dict[str, list[pa.Table]] = {t.name: [] for t in TABLES}
        for (table, kind, day), keys in compacted.items():
            for key in keys:
                body = self._files.read(key)
                if body is not None and table in pieces:
                    pieces[table].append(
                        parquet.with_partitions(parquet.from_parquet(body), kind, day)
                    )
        pending: dict[tuple[str, str, str], list[str]] = {}
        for key in json_keys:
            part = _partition_of(key)
            if part is None or part[2] < since:
                continue
            if (part[0], part[1], part[2]) not in compacted:
                pending.setdefault(part, []).append(key)
        # New objects are read in parallel (a dashboard's first view reads the whole lake).
        unread = [k for keys in pending.values() for k in keys if k not in self._json]
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            list(pool.map(self._json_rows, unread))
        for (source, kind, day), keys in sorted(pending.items()):
            rows = [row for key in keys for row in self._json_rows(key)]
            for name, table_rows in normalize(source, rows).items():
                data = parquet.arrow_table(BY_NAME[name], table_rows)
                pieces[name].append(parquet.with_partitions(data, kind, day))
        return {name: _concat(BY_NAME[name].name, parts) for name, parts in pieces.items()}


def _partition_of(key: str) -> tuple[str, str, str] | None:
    """(source, type, day) of a JSON Lines object of the lake."""
    match = _PART.match(key)
    if match:
        return match["source"], match["type"], match["dt"]
    run = _RUN.match(key)
    if run:
        return "segment_scores", SCORES_TYPE, run_day(run["run"])
    return None


def _concat(name: str, parts: Iterable[pa.Table]) -> pa.Table:
    schema = parquet.schema(BY_NAME[name], partitions=True)
    tables = [t.select(schema.names).cast(schema) for t in parts]
    return pa.concat_tables(tables) if tables else schema.empty_table()


class EmbeddedEngine:
    def __init__(self, tables: LakeTables) -> None:
        self._tables = tables

    def rows(self, sql: str, since: str) -> list[Row]:
        return duckdb_rows(self._tables.load(since), sql)
