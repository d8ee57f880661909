"""Table rows to Parquet and back (pyarrow), with the schemas of crm.analytics.tables."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crm.analytics.tables import Table

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    # Milliseconds: Athena reads Parquet timestamps of millisecond (or microsecond) units.
    "timestamp": pa.timestamp("ms"),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
}


def schema(table: Table, partitions: bool = False) -> pa.Schema:
    fields = [pa.field(name, _TYPES[kind]) for name, kind in table.columns]
    if partitions:
        fields += [pa.field("type", pa.string()), pa.field("dt", pa.string())]
    return pa.schema(fields)


def arrow_table(table: Table, rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema(table))


def to_parquet(data: pa.Table) -> bytes:
    sink = io.BytesIO()
    # Snappy, one row group per file (a day of one type is small); statistics let Athena and
    # DuckDB skip what a filter rules out.
    pq.write_table(data, sink, compression="snappy")
    return sink.getvalue()


def from_parquet(body: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(body))


def with_partitions(data: pa.Table, event_type: str, day: str) -> pa.Table:
    """The Hive partition columns a query sees (Athena and DuckDB add them from the path)."""
    n = data.num_rows
    data = data.append_column("type", pa.array([event_type] * n, pa.string()))
    return data.append_column("dt", pa.array([day] * n, pa.string()))
