"""A small lake, small enough to count by hand: the expected numbers in test_metric_numbers.py
are counted from these rows (each test says how)."""

from __future__ import annotations

from typing import Any


def _order(pid: str, order_id: str, at: str, amount: str, category: str, channel: str = "app",
           kind: str = "order_paid") -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": f"{order_id}-{kind}", "type": kind, "occurred_at": at, "channel": channel,
        "customer_pid": pid, "order_id": order_id, "amount": amount, "currency": "CNY",
        "items": [{"sku": f"SKU-{category}", "category": category, "quantity": 1,
                   "unit_price": amount}],
    }  # fmt: skip


def _browse(pid: str, event_id: str, kind: str, at: str, category: str, channel: str = "app"
            ) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": event_id,
        "type": kind,
        "occurred_at": at,
        "channel": channel,
        "customer_pid": pid,
        "sku": f"SKU-{category}",
        "category": category,
    }


EVENTS: list[dict[str, Any]] = [
    # p1: the whole funnel on 11-02, and a second order three days later
    _browse("p1", "v1", "product_viewed", "2026-11-02T10:00:00+00:00", "shoes"),
    _browse("p1", "c1", "cart_added", "2026-11-02T10:05:00+00:00", "shoes"),
    _order("p1", "o1", "2026-11-02T10:10:00+00:00", "100.00", "shoes", kind="order_placed"),
    _order("p1", "o1", "2026-11-02T10:11:00+00:00", "100.00", "shoes"),
    _order("p1", "o5", "2026-11-05T10:11:00+00:00", "60.00", "shoes"),
    # p2: viewed, carted 9 days later (outside the funnel's 7-day window)
    _browse("p2", "v2", "product_viewed", "2026-11-03T09:00:00+00:00", "bags"),
    _browse("p2", "c2", "cart_added", "2026-11-12T09:00:00+00:00", "bags"),
    # p3: on WeChat, viewed, carted and ordered, never paid
    _browse("p3", "v3", "product_viewed", "2026-11-05T12:00:00+00:00", "shoes", "wechat"),
    _browse("p3", "c3", "cart_added", "2026-11-05T12:01:00+00:00", "shoes", "wechat"),
    _order("p3", "o3", "2026-11-05T12:02:00+00:00", "80.00", "shoes", "wechat", "order_placed"),
    # p4: paid in a store, no browsing
    _order("p4", "o4", "2026-11-10T20:00:00+00:00", "50.00", "bags", "offline_store"),
    # p5: first order in October, again 15 days later, and in November (26 days later)
    _order("p5", "o6", "2026-10-05T12:00:00+00:00", "80.00", "shoes"),
    _order("p5", "o7", "2026-10-20T12:00:00+00:00", "40.00", "shoes"),
    _order("p5", "o9", "2026-11-15T12:00:00+00:00", "70.00", "shoes"),
    # p6: one order in October
    _order("p6", "o8", "2026-10-10T09:00:00+00:00", "30.00", "bags"),
    # after-sales: o1 returned, o4 complained about
    {"event_id": "a1", "type": "after_sales", "occurred_at": "2026-11-08T08:00:00+00:00",
     "channel": "app", "customer_pid": "p1", "case": "return", "status": "opened",
     "order_id": "o1", "amount": "100.00", "reason_code": "size"},
    {"event_id": "a2", "type": "after_sales", "occurred_at": "2026-11-12T08:00:00+00:00",
     "channel": "offline_store", "customer_pid": "p4", "case": "complaint", "status": "opened",
     "order_id": "o4", "reason_code": "late_delivery"},
]  # fmt: skip


def _fact(fid: str, kind: str, pid: str, at: str, arm: str = "treatment", **more: Any
          ) -> dict[str, Any]:  # fmt: skip
    return {"fact_id": fid, "type": kind, "customer_pid": pid, "occurred_at": at,
            "campaign_id": "c1", "variant": "A", "arm": arm, "channel": "sms", **more}  # fmt: skip


CAMPAIGN_FACTS: list[dict[str, Any]] = [
    *[_fact(f"s{p}", "sent", p, "2026-11-01T09:00:00+00:00", cost=0.1)
      for p in ("p1", "p2", "p3", "p4")],
    _fact("x5", "exposure", "p5", "2026-11-01T09:00:00+00:00", "holdout"),
    _fact("x6", "exposure", "p6", "2026-11-01T09:00:00+00:00", "holdout"),
    _fact("k1", "conversion", "p1", "2026-11-02T10:11:00+00:00", revenue=100.0),
    _fact("k5", "conversion", "p5", "2026-11-15T12:00:00+00:00", "holdout", revenue=20.0),
]  # fmt: skip


def _ticket(fid: str, kind: str, ticket: str, at: str, **more: Any) -> dict[str, Any]:
    base = {"t1": ("delivery", "high"), "t2": ("refund", "normal")}[ticket]
    return {"fact_id": fid, "type": kind, "ticket_id": ticket, "customer_pid": "p1",
            "occurred_at": at, "category": base[0], "priority": base[1], "channel": "app",
            **more}  # fmt: skip


TICKET_FACTS: list[dict[str, Any]] = [
    _ticket("t1o", "opened", "t1", "2026-11-02T11:00:00+00:00"),
    _ticket("t1f", "first_response", "t1", "2026-11-02T11:30:00+00:00", seconds=1800),
    _ticket("t1r", "resolved", "t1", "2026-11-02T16:33:20+00:00", seconds=20000),
    _ticket("t2o", "opened", "t2", "2026-11-03T11:00:00+00:00"),
    _ticket("t2b", "breached", "t2", "2026-11-03T13:00:00+00:00", metric="first_response"),
    _ticket("t2e", "escalated", "t2", "2026-11-04T09:00:00+00:00"),
    _ticket("t2f", "first_response", "t2", "2026-11-03T13:00:00+00:00", seconds=7200),
]


def _score(run: str, pid: str, tier: str, warning: bool = False) -> dict[str, Any]:
    return {"run_id": run, "customer_pid": pid, "tier": tier, "rfm_segment": "x",
            "churn_warning": warning, "p_alive": 0.5}  # fmt: skip


RUN_1 = "20261101T020000000000Z-aaaaaa"
RUN_2_EARLY = "20261115T010000000000Z-cccccc"
RUN_2 = "20261115T020000000000Z-bbbbbb"
SEGMENT_SCORES: list[dict[str, Any]] = [
    _score(RUN_1, "p1", "gold"), _score(RUN_1, "p2", "silver"), _score(RUN_1, "p3", "silver"),
    _score(RUN_1, "p4", "bronze", True),
    _score(RUN_2_EARLY, "p1", "bronze", True),  # an earlier run the same day: not the month's last
    _score(RUN_2, "p1", "gold"), _score(RUN_2, "p2", "gold"), _score(RUN_2, "p3", "silver", True),
    _score(RUN_2, "p4", "silver", True),
]  # fmt: skip

SOURCES: dict[str, list[dict[str, Any]]] = {
    "events": EVENTS,
    "campaign_facts": CAMPAIGN_FACTS,
    "ticket_facts": TICKET_FACTS,
    "segment_scores": SEGMENT_SCORES,
}


def partitions() -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(source, type, day) -> the raw rows of that lake partition."""
    from crm.analytics.tables import SCORES_TYPE, run_day

    parts: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for source, rows in SOURCES.items():
        for row in rows:
            if source == "segment_scores":
                key = (source, SCORES_TYPE, run_day(row["run_id"]))
            else:
                key = (source, row["type"], row["occurred_at"][:10])
            parts.setdefault(key, []).append(row)
    return parts


def lake_key(source: str, kind: str, day: str, run: str | None = None) -> str:
    if source == "segment_scores":
        return f"segment_scores/run={run}/shard-0000000.jsonl"
    return f"{source}/type={kind}/dt={day}/part-test.jsonl"


def arrow_tables() -> dict[str, Any]:
    """The dataset as the embedded engine's tables (normalized as compaction would)."""
    import pyarrow as pa

    from crm.analytics import parquet
    from crm.analytics.tables import BY_NAME, TABLES, normalize

    pieces: dict[str, list[pa.Table]] = {t.name: [] for t in TABLES}
    for (source, kind, day), rows in partitions().items():
        for name, table_rows in normalize(source, rows).items():
            data = parquet.arrow_table(BY_NAME[name], table_rows)
            pieces[name].append(parquet.with_partitions(data, kind, day))
    return {
        name: pa.concat_tables(parts)
        if parts
        else parquet.schema(BY_NAME[name], partitions=True).empty_table()
        for name, parts in pieces.items()
    }
