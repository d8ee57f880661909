"""Each metric's SQL is one text for both engines: it parses as DuckDB's and as Athena's
(Trino's) SQL, and transpiles between them without anything either cannot express."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from crm.analytics.metrics import METRICS
from crm.analytics.service import metric_sql, parse_query

DIALECTS = ("duckdb", "trino", "athena")


def _sql(name: str) -> str:
    metric = METRICS[name]
    query = {"from": "2026-11-01", "to": "2026-11-30", "grain": "week"}
    for f in metric.filters:
        query[f] = {"channel": "app", "category": "鞋's", "campaign": "c-1"}[f]
    return metric_sql(name, parse_query(metric, query, date(2026, 12, 1)))


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_metric_parses_in_each_dialect(name: str, dialect: str) -> None:
    tree = sqlglot.parse_one(_sql(name), read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Query)
    # the three columns the service shapes into series
    assert tree.named_selects == ["series", "x", "y"]


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize(("read", "write"), [("duckdb", "trino"), ("trino", "duckdb"),
                                             ("duckdb", "athena")])  # fmt: skip
def test_metric_transpiles_between_dialects(name: str, read: str, write: str) -> None:
    (out,) = sqlglot.transpile(
        _sql(name), read=read, write=write, unsupported_level=sqlglot.ErrorLevel.RAISE
    )
    # what came out is itself valid in the target dialect, and reads the same tables
    back = sqlglot.parse_one(out, read=write)
    tables = {t.name for t in back.find_all(exp.Table)} - {
        c.alias_or_name for c in back.find_all(exp.CTE)
    }
    original = sqlglot.parse_one(_sql(name), read=read)
    assert tables == {t.name for t in original.find_all(exp.Table)} - {
        c.alias_or_name for c in original.find_all(exp.CTE)
    }
    assert tables <= {"events", "order_items", "campaign_facts", "ticket_facts", "segment_scores"}


def test_filter_values_are_quoted_literals() -> None:
    # a quote in a category is doubled, never ends the literal
    sql = _sql("funnel")
    assert "category = '鞋''s'" in sql
    parsed = sqlglot.parse_one(sql, read="trino")
    literals = {lit.this for lit in parsed.find_all(exp.Literal) if lit.is_string}
    assert "鞋's" in literals
