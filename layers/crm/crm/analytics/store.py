"""The analytics family's only code that touches AWS: the lake's objects (JSON Lines, Parquet,
cached results) in S3 and queries on Athena, through crm.aws."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from crm import aws
from crm.errors import Unavailable


class LakeFiles:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def keys(self, prefix: str) -> Iterator[str]:
        pages = (
            aws.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

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
        try:
            return aws.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if aws.failed_call_code(exc) in {"NoSuchKey", "404"}:
                return None
            raise

    def write(self, key: str, body: bytes, content_type: str) -> None:
        aws.s3().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, key: str) -> None:
        aws.s3().delete_object(Bucket=self.bucket, Key=key)


class AthenaQueries:
    """Runs a metric's SQL in the stack's workgroup (its bytes-scanned limit and results
    location are the workgroup's) against the Glue database of the lake's tables."""

    POLL_S = 0.5

    def __init__(self, workgroup: str, database: str, timeout_s: float = 12.0) -> None:
        self._workgroup = workgroup
        self._database = database
        self._timeout_s = timeout_s

    def rows(self, sql: str, since: str) -> list[tuple[Any, ...]]:
        # Athena prunes partitions by the SQL's own dt conditions (partition projection): `since`
        # is the embedded engine's concern.
        athena = aws.athena()
        started = athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self._workgroup,
            QueryExecutionContext={"Database": self._database},
        )
        query_id = started["QueryExecutionId"]
        deadline = time.monotonic() + self._timeout_s
        while True:
            status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = status["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in {"FAILED", "CANCELLED"}:
                reason = status["Status"].get("StateChangeReason", state)
                raise RuntimeError(f"Athena query {query_id} {state}: {reason}")
            if time.monotonic() > deadline:
                athena.stop_query_execution(QueryExecutionId=query_id)
                raise Unavailable("the metric took too long to compute; try again shortly")
            time.sleep(self.POLL_S)
        out: list[tuple[Any, ...]] = []
        pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        first = True
        for page in pages:
            rows = page["ResultSet"]["Rows"]
            if first:
                rows, first = rows[1:], False  # the header row
            out += [tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in rows]
        return out
