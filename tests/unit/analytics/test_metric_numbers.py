"""Every metric on the hand-checked dataset (dataset.py), run by DuckDB: the expected numbers
are counted from the dataset's rows by hand, as each comment says."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from crm.analytics.engine import duckdb_rows
from crm.analytics.metrics import METRICS
from crm.analytics.service import metric_sql, parse_query, shape
from tests.unit.analytics.dataset import arrow_tables

TABLES = arrow_tables()
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30", "grain": "month"}
OCT_NOV = {"from": "2026-10-01", "to": "2026-11-30", "grain": "month"}


def run(name: str, **query: str) -> dict[str, dict[str, Any]]:
    """series -> x -> y"""
    metric = METRICS[name]
    parsed = parse_query(metric, query, date(2026, 12, 6))
    rows = duckdb_rows(TABLES, metric_sql(name, parsed))
    return {s.name: {p.x: p.y for p in s.points} for s in shape(metric, rows)}


def test_funnel_counts_each_step_within_a_week_of_the_one_before() -> None:
    # viewed: p1, p2, p3; carted within 7 days of viewing: p1, p3 (p2 after 9 days);
    # ordered after carting: p1, p3; paid after ordering: p1 (p4 paid but never viewed)
    assert run("funnel", **NOVEMBER) == {"all": {"view": 3, "cart": 2, "order": 2, "paid": 1}}
    # on WeChat only p3: viewed, carted, ordered, not paid
    wechat = run("funnel", **NOVEMBER, channel="wechat")
    assert wechat == {"all": {"view": 1, "cart": 1, "order": 1, "paid": 0}}
    # bags: p2 viewed bags; p4's bag order has no view before it
    assert run("funnel", **NOVEMBER, category="bags")["all"]["view"] == 1


def test_funnel_points_keep_the_steps_order() -> None:
    metric = METRICS["funnel"]
    rows = duckdb_rows(
        TABLES, metric_sql("funnel", parse_query(metric, NOVEMBER, date(2026, 12, 6)))
    )
    assert [p.x for p in shape(metric, rows)[0].points] == ["view", "cart", "order", "paid"]


def test_repurchase_30d_excludes_cohorts_younger_than_30_days() -> None:
    # October's first orders: p5 (again 15 days later) and p6 (never again): 1 of 2.
    # November's first orders (p1 on 11-02, p4 on 11-10) are < 30 days before the period's end.
    assert run("repurchase_30d", **OCT_NOV) == {"all": {"2026-10-01": 0.5}}


def test_repurchase_interval_buckets_days_between_a_customers_orders() -> None:
    # p1: 11-02 -> 11-05, 3 days; p5: 10-05 -> 10-20, 15 days, 10-20 -> 11-15, 26 days
    assert run("repurchase_interval", **OCT_NOV) == {"all": {"0-7": 1, "15-30": 2}}


def test_active_customers_count_anyone_with_an_event() -> None:
    # November: p1, p2, p3, p4, p5 (o9 on 11-15); p6 only in October
    assert run("active_customers", **NOVEMBER) == {"all": {"2026-11-01": 5}}
    # October: p5, p6
    assert run("active_customers", **OCT_NOV)["all"]["2026-10-01"] == 2


def test_new_vs_returning_by_each_buyers_first_order() -> None:
    # October buyers p5, p6: both first orders. November buyers: p1, p4 first; p5 returning.
    assert run("new_vs_returning", **OCT_NOV) == {
        "new": {"2026-10-01": 2, "2026-11-01": 2},
        "returning": {"2026-11-01": 1},
    }


def test_churn_rate_uses_the_shops_own_interval() -> None:
    # intervals 3, 15, 26 days: mean 14.67, twice that 29 -> at least 30 days.
    # November's last day with events is 11-15: p1 (11-05), p4 (11-10), p5 (11-15) are within
    # 30 days; p6 (last on 10-10, 36 days) churned: 1 of 4.
    assert run("churn_rate", **NOVEMBER) == {"all": {"2026-11-01": 0.25}}


def test_tier_shares_and_churn_warnings_of_each_periods_last_run() -> None:
    # November's last run (bbbbbb): gold p1, p2; silver p3, p4; warnings p3, p4
    assert run("tier_shares", **NOVEMBER) == {
        "gold": {"2026-11-01": 0.5},
        "silver": {"2026-11-01": 0.5},
    }
    assert run("churn_warnings", **NOVEMBER) == {"all": {"2026-11-01": 2}}
    # by day: 11-01's run: gold 1, silver 2, bronze 1 of 4, one warning
    daily = run("tier_shares", **{**NOVEMBER, "grain": "day"})
    assert daily["silver"]["2026-11-01"] == 0.5
    assert daily["bronze"] == {"2026-11-01": 0.25}


def test_tier_shares_add_up_to_exactly_one_whole() -> None:
    # Rounded one by one, 2/3, 1/6 and 1/6 came to 0.666667 + 0.166667 + 0.166667 = 1.000001:
    # a chart stacking them drew its axis to 120%. By largest remainder they make 1.
    metric = METRICS["tier_shares"]
    rows = [
        ("gold", "2026-11-01", 2 / 3),
        ("silver", "2026-11-01", 1 / 6),
        ("bronze", "2026-11-01", 1 / 6),
        ("gold", "2026-11-02", 0.29),
        ("silver", "2026-11-02", 0.71),
    ]
    series = shape(metric, rows)
    exact = {(name, x): y for name, x, y in rows}
    totals: dict[str, int] = {}
    for s in series:
        for p in s.points:
            assert p.y is not None
            assert abs(p.y - exact[s.name, p.x]) < 1e-6  # each still within a millionth
            totals[p.x] = totals.get(p.x, 0) + round(p.y * 10**6)
    assert totals == {"2026-11-01": 10**6, "2026-11-02": 10**6}
    assert sum(p.y or 0 for s in series for p in s.points if p.x == "2026-11-01") <= 1


def test_campaign_roi_columns_in_their_order_and_units() -> None:
    # Sorted by name, the table read conversions, revenue, ROI, sends, uplift; revenue, uplift
    # and ROI were formatted as counts (0.031 for 3.1%).
    names = ("roi", "uplift", "sends", "revenue", "conversions")
    series = shape(METRICS["campaign_roi"], [(name, "c1/A", 1.0) for name in names])
    assert [s.name for s in series] == ["sends", "conversions", "revenue", "uplift", "roi"]
    assert [s.unit for s in series] == [None, None, "currency", "ratio", "ratio"]


def test_channel_conversion_and_order_value() -> None:
    # app: viewers p1, p2; of them p1 paid on the app (p5 paid there without viewing: not a
    # conversion of the app's views) -> 1 / 2. WeChat: viewer p3, no buyer.
    assert run("channel_conversion", **NOVEMBER) == {"all": {"app": 0.5, "wechat": 0.0}}
    # app: o1 100, o5 60, o9 70 -> 76.666667; store: o4 50
    assert run("channel_aov", **NOVEMBER) == {"all": {"app": 76.666667, "offline_store": 50.0}}


def test_campaign_roi_against_the_holdout() -> None:
    # c1/A: 4 sends costing 0.1 each, 1 conversion (100). Holdout: 2 members, 1 converted (20).
    # uplift 1/4 - 1/2 = -0.25; incremental revenue 100 - 20/2 * 4 = 60; ROI (60 - 0.4) / 0.4
    assert run("campaign_roi", **NOVEMBER) == {
        "sends": {"c1/A": 4},
        "conversions": {"c1/A": 1},
        "revenue": {"c1/A": 100.0},
        "uplift": {"c1/A": -0.25},
        "roi": {"c1/A": 149.0},
    }
    assert run("campaign_roi", **NOVEMBER, campaign="other") == {}


def test_service_metrics() -> None:
    # t1 (high) breached nothing; t2 (normal) breached its first response
    assert run("sla_attainment", **NOVEMBER) == {
        "first_response": {"high": 1.0, "normal": 0.0},
        "resolution": {"high": 1.0, "normal": 1.0},
    }
    assert run("escalations", **NOVEMBER) == {"all": {"2026-11-01": 1}}
    # first responses 1800 s (<1h) and 7200 s (1-4h); t1 resolved in 20000 s (4-8h)
    assert run("response_times", **NOVEMBER) == {
        "first_response": {"<1h": 1, "1-4h": 1},
        "resolution": {"4-8h": 1},
    }
    assert run("sla_attainment", **NOVEMBER, category="refund") == {
        "first_response": {"normal": 0.0},
        "resolution": {"normal": 1.0},
    }


def test_product_feedback_metrics() -> None:
    # November's paid orders: shoes o1, o5, o9 (o1 returned); bags o4
    assert run("return_rate", **NOVEMBER) == {"all": {"bags": 0.0, "shoes": 0.333333}}
    # within shoes, by SKU: the one SKU, 1 of 3
    assert run("return_rate", **NOVEMBER, category="shoes") == {"all": {"SKU-shoes": 0.333333}}
    # o4 (bags) complained about for late delivery
    assert run("complaint_categories", **NOVEMBER) == {"bags": {"late_delivery": 1}}
    # paid at 10:11 (o1, o5: shoes), 12:00 (o9: shoes), 20:00 (o4: bags)
    assert run("purchase_hour", **NOVEMBER) == {
        "bags": {"20": 1},
        "shoes": {"10": 2, "12": 1},
    }


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_answers_on_an_empty_lake_and_the_dataset(name: str) -> None:
    from crm.analytics import parquet
    from crm.analytics.tables import TABLES as LAKE

    empty = {t.name: parquet.schema(t, partitions=True).empty_table() for t in LAKE}
    metric = METRICS[name]
    query = parse_query(metric, OCT_NOV, date(2026, 12, 6))
    rows = duckdb_rows(empty, metric_sql(name, query))
    assert all(y is None or y == 0 for _, _, y in rows)
    assert duckdb_rows(TABLES, metric_sql(name, query)), f"{name} is empty on the dataset"


def test_a_paid_order_is_the_order_step_where_a_shop_sends_no_placement() -> None:
    import pyarrow.compute as pc

    events = TABLES["events"]
    unplaced = {**TABLES, "events": events.filter(pc.not_equal(events["type"], "order_placed"))}
    metric = METRICS["funnel"]
    query = parse_query(metric, NOVEMBER, date(2026, 12, 6))
    rows = duckdb_rows(unplaced, metric_sql("funnel", query))
    # p1 viewed, carted and paid (the payment is the order); p3's order was only placed
    assert {p.x: p.y for p in shape(metric, rows)[0].points} == {
        "view": 3,
        "cart": 2,
        "order": 1,
        "paid": 1,
    }


def test_a_request_without_a_period_gets_the_metrics_default() -> None:
    today = date(2026, 12, 6)
    funnel = parse_query(METRICS["funnel"], {}, today)
    assert (funnel.start, funnel.end, funnel.grain) == (date(2026, 11, 7), today, "day")
    # cohorts need 30 days to be counted: the default looks back half a year
    assert parse_query(METRICS["repurchase_30d"], {}, today).start == date(2026, 6, 10)
