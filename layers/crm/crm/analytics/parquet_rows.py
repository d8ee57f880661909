"""The lake's compacted Parquet as one of the privacy registry's object formats
(`crm.lake_personal_data.ObjectFormat`): its rows read to find and export a customer's, and a
file rewritten without them in its own schema. The JSON Lines the Parquet is compacted from are
erased by the same lake store, so a later compaction cannot bring the rows back.

pyarrow is imported on first use: the registry is built in functions that never read Parquet
(the API files requests); the privacy worker, which erases, carries the SQL layer."""

from __future__ import annotations

from collections.abc import Set
from datetime import date, datetime
from typing import Any

PREFIX = "parquet/"


class ParquetRows:
    content_type = "application/vnd.apache.parquet"

    def handles(self, key: str) -> bool:
        return key.startswith(PREFIX) and key.endswith(".parquet")

    def rows(self, body: bytes) -> list[dict[str, Any]]:
        from crm.analytics.parquet import from_parquet

        return [
            {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in row.items()}
            for row in from_parquet(body).to_pylist()
        ]

    def without(self, body: bytes, drop: Set[int]) -> bytes:
        import pyarrow as pa

        from crm.analytics.parquet import from_parquet, to_parquet

        data = from_parquet(body)
        keep = pa.array([n not in drop for n in range(data.num_rows)], type=pa.bool_())
        return to_parquet(data.filter(keep))
