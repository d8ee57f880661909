"""The Athena engine's use of the Athena API (moto's Athena is not served to this botocore, so a
stand-in client answers as Athena documents): started in the workgroup with the Glue database,
polled until it ends, result rows less the header; a failed query says why, a slow one is
answered 503 and left running, so that the caller's retry finds it by its token."""

from __future__ import annotations

from typing import Any

import pytest

from crm import aws
from crm.analytics import AnalyticsSettings, AthenaQueries
from crm.errors import Unavailable


class FakeAthena:
    def __init__(self, states: list[str], rows: list[list[str]]) -> None:
        self.states = states
        self.rows = rows
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.executions: dict[str, str] = {}  # ClientRequestToken -> QueryExecutionId

    def start_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        # As Athena documents: a token seen before returns the same execution.
        self.started.append(kwargs)
        token = kwargs["ClientRequestToken"]
        assert 32 <= len(token) <= 128
        query_id = self.executions.setdefault(token, f"q-{len(self.executions) + 1}")
        return {"QueryExecutionId": query_id}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"QueryExecution": {"Status": {"State": state, "StateChangeReason": "syntax"}}}

    def stop_query_execution(self, QueryExecutionId: str) -> None:
        self.stopped.append(QueryExecutionId)

    def get_paginator(self, name: str) -> Any:
        assert name == "get_query_results"
        rows = [{"Data": [{"VarCharValue": v} for v in r]} for r in self.rows]

        class Pages:
            def paginate(self, QueryExecutionId: str) -> list[dict[str, Any]]:
                # two pages: the header only on the first
                return [{"ResultSet": {"Rows": rows[:2]}}, {"ResultSet": {"Rows": rows[2:]}}]

        return Pages()


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> AthenaQueries:
    monkeypatch.setattr(AthenaQueries, "POLL_S", 0.0)
    return AthenaQueries("crm-analytics-dev", "crm_lake_dev", timeout_s=0.2)


def test_rows_come_back_without_the_header(
    queries: AthenaQueries, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, view, cart = ["series", "x", "y"], ["all", "view", "3.0"], ["all", "cart", "2.0"]
    fake = FakeAthena(["QUEUED", "RUNNING", "SUCCEEDED"], [header, view, cart])
    monkeypatch.setattr(aws, "athena", lambda: fake)
    assert queries.rows("SELECT 1", "2026-01-01") == [
        ("all", "view", "3.0"),
        ("all", "cart", "2.0"),
    ]
    token = fake.started[0]["ClientRequestToken"]
    assert fake.started == [{
        "QueryString": "SELECT 1", "WorkGroup": "crm-analytics-dev",
        "QueryExecutionContext": {"Database": "crm_lake_dev"}, "ClientRequestToken": token,
    }]  # fmt: skip


def test_a_failed_query_says_why(queries: AthenaQueries, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = FakeAthena(["FAILED"], [])
    monkeypatch.setattr(aws, "athena", lambda: failed)
    with pytest.raises(RuntimeError, match="syntax"):
        queries.rows("SELECT", "2026-01-01")


def test_a_slow_query_keeps_running_and_the_retry_finds_it(
    queries: AthenaQueries, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, row = ["series", "x", "y"], ["all", "view", "3.0"]
    slow = FakeAthena(["RUNNING"], [header, row])
    monkeypatch.setattr(aws, "athena", lambda: slow)
    with pytest.raises(Unavailable, match="still being computed"):
        queries.rows("SELECT 1", "2026-01-01")
    assert slow.stopped == []
    # The retry (API Gateway cut the first request at 29 s) starts no second query.
    slow.states = ["SUCCEEDED"]
    assert queries.rows("SELECT 1", "2026-01-01") == [("all", "view", "3.0")]
    assert len(slow.executions) == 1
    assert [s["ClientRequestToken"] for s in slow.started] == [
        slow.started[0]["ClientRequestToken"]
    ] * 2
    # Another query, or the same one in the next window, is its own execution.
    queries.rows("SELECT 2", "2026-01-01")
    monkeypatch.setattr(AthenaQueries, "RETRY_WINDOW_S", 1e-9)
    queries.rows("SELECT 1", "2026-01-01")
    assert len(slow.executions) == 3


def test_the_engine_is_athena_only_when_the_stack_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_BUCKET", "lake")
    monkeypatch.setenv("ANALYTICS_ENGINE", "athena")
    monkeypatch.setenv("ATHENA_WORKGROUP", "wg")
    monkeypatch.setenv("GLUE_DATABASE", "db")
    settings = AnalyticsSettings.from_env()
    assert (settings.engine, settings.workgroup, settings.database) == ("athena", "wg", "db")
    monkeypatch.setenv("ANALYTICS_ENGINE", "duckdb")
    assert AnalyticsSettings.from_env().engine == "duckdb"
