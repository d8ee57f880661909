"""The analytics family's only code that touches AWS: queries on Athena, through crm.aws. The
lake's objects (JSON Lines, Parquet, cached results) are read and written through crm.lake.Lake."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from crm import aws
from crm.errors import Unavailable


class AthenaQueries:
    """Runs a metric's SQL in the stack's workgroup (its bytes-scanned limit and results
    location are the workgroup's) against the Glue database of the lake's tables."""

    POLL_S = 0.5
    # A metric that outlives the request's wait keeps running: the caller's retry within this
    # window starts no second query but finds the first one, running or done, by its token.
    # The first view of a big lake can take longer than API Gateway's 29 s.
    RETRY_WINDOW_S = 900

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
            ClientRequestToken=self._token(sql),
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
                raise Unavailable("the metric is still being computed; ask again in a few seconds")
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

    def _token(self, sql: str) -> str:
        """StartQueryExecution's idempotency token (32-128 characters): the same query in the
        same workgroup within one retry window is one execution."""
        window = int(time.time() // self.RETRY_WINDOW_S)
        text = f"{self._workgroup}\n{self._database}\n{window}\n{sql}"
        return hashlib.sha256(text.encode()).hexdigest()
